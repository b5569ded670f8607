//! End-to-end Enhanced RTMP: HEVC+AAC, HEVC+Opus, HEVC+AC-3, AV1+Opus, AV1+FLAC, VP9+Opus
//! and VP9+E-AC-3 published by a modern FFmpeg (9.x, `imageio-ffmpeg`), read back by the same
//! FFmpeg over RTMP and HTTP-FLV and from the recording (codecs, size, every frame), HEVC
//! also over HLS; a late joiner of each starts with the sequence header, then a keyframe of
//! the cached GOP; stats and metrics name the codecs; a relay forwards HEVC as E-RTMP.

mod common;

use common::modern::*;
use common::*;
use shardcast::media::ertmp::{self, AudioPacket, VideoPacket};
use shardcast::media::flv;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// Seconds a reading FFmpeg waits for data before it gives up (it ends after the stream).
const READ_TIMEOUT_S: u32 = 4;

/// The audio and video tag bodies of an FLV file, in order.
fn media_bodies(path: &Path) -> Vec<(MediaKind, Vec<u8>)> {
    read_flv_tags(path)
        .into_iter()
        .filter(|t| t.0 != MediaKind::Data)
        .map(|(k, _, b)| (k, b))
        .collect()
}

fn recording(dir: &Path, room: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("live"))
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{room}_")))
    });
    assert_eq!(files.len(), 1, "one recording of {room}: {files:?}");
    files.remove(0)
}

/// One pass of `clip`: an `-re` push read while live by FFmpeg over RTMP and HTTP-FLV (the
/// GOP cache holds the whole clip, so each reader gets every frame), then the recording, and
/// HLS where MPEG-TS carries the codecs.
fn read_back(clip: Clip) {
    let media = ertmp_media(clip);
    let (video, audio) = clip.codecs();
    let room = format!("{video}{audio}");
    let server = Server::start(
        &format!("ertmp-{room}"),
        &[
            "--shards",
            "2",
            "--gop_num",
            "10",
            "--flv_archive",
            "--flv_dir",
            "rec",
            "--hls_fragment",
            "1",
            "--hls_keep_after_end",
        ],
    );
    let key = key_of(&server, &room);
    let mut pusher = modern_push(
        &server.rtmp_url(&format!("live/{key}")),
        &media,
        clip,
        false,
    );
    assert!(
        server
            .wait_for_line(|l| l.contains("publish started"), WAIT)
            .is_some(),
        "the publish was accepted"
    );
    let declared = format!("fourcc_list={}", clip.fourccs());
    assert!(
        server.lines().iter().any(|l| l.contains(&declared)),
        "FFmpeg declared {declared} in connect"
    );
    let rtmp = decode_in_background(server.rtmp_url(&format!("live/{room}")), READ_TIMEOUT_S);
    let flv = decode_in_background(
        server.httpflv_url(&format!("live/{room}.flv")),
        READ_TIMEOUT_S,
    );
    assert!(pusher.wait().expect("ffmpeg").success(), "the push ran");
    rtmp.join()
        .unwrap()
        .check("RTMP", video, Some(audio), CLIP_FRAMES);
    flv.join()
        .unwrap()
        .check("HTTP-FLV", video, Some(audio), CLIP_FRAMES);

    // The recording: the publisher's tags byte for byte, with both tracks announced.
    assert!(server
        .wait_for_line(|l| l.contains("recording finished"), WAIT)
        .is_some());
    let file = recording(&server.dir().join("rec"), &room);
    let data = fs::read(&file).unwrap();
    assert_eq!(data[4], 0x05, "FLV header: audio and video");
    for kind in [MediaKind::Video, MediaKind::Audio] {
        let of = |p: &Path| -> Vec<Vec<u8>> {
            media_bodies(p)
                .into_iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, b)| b)
                .collect()
        };
        let (recorded, published) = (of(&file), of(&published_form(clip)));
        assert_eq!(recorded.len(), published.len(), "{kind:?} tags recorded");
        for (i, (r, p)) in recorded.iter().zip(&published).enumerate() {
            assert!(
                r == p,
                "{kind:?} tag {i} recorded byte for byte: {:02x?} vs {:02x?}",
                &r[..r.len().min(24)],
                &p[..p.len().min(24)]
            );
        }
    }
    decode(&file.to_string_lossy(), READ_TIMEOUT_S).check(
        "recording",
        video,
        Some(audio),
        CLIP_FRAMES,
    );

    // HLS: HEVC, AAC, AC-3 and E-AC-3 go into MPEG-TS; Opus, FLAC, AV1 and VP9 do not
    // (logged once).
    let hls_audio = ["aac", "ac3", "eac3"].contains(&audio).then_some(audio);
    if video == "hevc" {
        let ts = hls_recording(&server, &room);
        decode(&ts.to_string_lossy(), READ_TIMEOUT_S).check("HLS", "hevc", hls_audio, CLIP_FRAMES);
    } else if let Some(audio) = hls_audio {
        // Audio-only HLS.
        let ts = hls_recording(&server, &room);
        let got = decode(&ts.to_string_lossy(), READ_TIMEOUT_S);
        assert!(
            got.video().is_none(),
            "HLS without video: {:?}",
            got.streams
        );
        let codec = Decoded::codec_of(got.audio());
        assert_eq!(codec.as_deref(), Some(audio), "{}", got.stderr);
    }
    let not_over_hls: Vec<&str> = [video, audio]
        .into_iter()
        .filter(|c| ["av1", "vp9", "opus", "flac"].contains(c))
        .collect();
    for codec in not_over_hls {
        let lines = server
            .lines()
            .into_iter()
            .filter(|l| l.contains(&format!("codec {codec} not available over HLS")))
            .count();
        assert_eq!(lines, 1, "{codec} reported once in the log");
    }
}

/// Wait for the ended HLS playlist of `live/room` and concatenate its segments into a file.
fn hls_recording(server: &Server, room: &str) -> PathBuf {
    let mut body = Vec::new();
    wait_until("the HLS playlist with ENDLIST", WAIT, || {
        let (status, _, b) = http_get(server.hls_addr(), &format!("/live/{room}.m3u8"));
        body = b;
        status == 200 && String::from_utf8_lossy(&body).contains("#EXT-X-ENDLIST")
    });
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut ts = Vec::new();
    for uri in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (status, _, seg) = http_get(server.hls_addr(), &format!("/live/{uri}"));
        assert_eq!(status, 200, "{uri}");
        ts.extend_from_slice(&seg);
    }
    assert!(!ts.is_empty(), "segments in {text}");
    let path = server.dir().join(format!("{room}.ts"));
    fs::write(&path, ts).unwrap();
    path
}

/// A looped live push; a watcher waits until the stream is past its first GOP, then a late
/// joiner (our RTMP client) must get the sequence headers first and then a keyframe of the
/// cached GOP, the publisher's bytes unchanged. Stats and metrics name the codecs meanwhile.
fn late_joiner(clip: Clip) {
    let media = ertmp_media(clip);
    let (video, audio) = clip.codecs();
    let room = format!("late{video}{audio}");
    let server = Server::start(&format!("ertmp-{room}"), &["--shards", "2"]);
    let key = key_of(&server, &room);
    let mut pusher = modern_push(&server.rtmp_url(&format!("live/{key}")), &media, clip, true);
    let source = media_bodies(&published_form(clip));

    // Past the first GOP: the watcher sees a keyframe at 1 s or later.
    let mut watcher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    watcher.play(&room).unwrap();
    wait_until("a keyframe past the first GOP", WAIT, || {
        watcher
            .read_media(WAIT, 1)
            .iter()
            .any(|(kind, ts, payload)| {
                *kind == MediaKind::Video
                    && *ts >= 1000
                    && ertmp::parse_video(payload).is_ok_and(|t| t.is_keyframe())
            })
    });

    let mut joiner = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    joiner.play(&room).unwrap();
    let got = joiner.read_media(WAIT, 20);
    let summary: Vec<String> = got
        .iter()
        .map(|(k, ts, p)| format!("{k:?}@{ts}:{:02x?}", &p[..p.len().min(2)]))
        .collect();
    let videos: Vec<&MediaMessage> = got.iter().filter(|m| m.0 == MediaKind::Video).collect();
    let first = ertmp::parse_video(&videos[0].2).expect("video tag");
    assert!(
        first.is_sequence_header(),
        "first video message is the sequence header: {first:?}"
    );
    assert_eq!(first.codec.name(), video);
    assert_eq!(
        videos[0].2,
        source
            .iter()
            .find(|(k, _)| *k == MediaKind::Video)
            .unwrap()
            .1,
        "the publisher's sequence header, byte for byte"
    );
    let coded = videos
        .iter()
        .map(|m| (m, ertmp::parse_video(&m.2).expect("video tag")))
        .find(|(_, t)| t.packet == VideoPacket::CodedFrames)
        .expect("a coded frame");
    assert!(
        coded.1.is_keyframe(),
        "the first picture after the header is a keyframe: {:?}",
        coded.1
    );
    assert!(coded.0 .1 >= 1000, "from the cached GOP, not the first one");
    assert!(
        source.iter().any(|(_, b)| b[..] == coded.0 .2[..]),
        "the keyframe is one of the publisher's, byte for byte"
    );
    let first_audio = got.iter().find(|m| m.0 == MediaKind::Audio).expect("audio");
    let a = ertmp::parse_audio(&first_audio.2).expect("audio tag");
    assert_eq!(
        (a.codec.name(), a.packet),
        (audio, AudioPacket::SequenceStart),
        "first audio message is the audio sequence header: {summary:?}"
    );

    // HTTP-FLV: both tracks announced, then the same start, the publisher's bytes as tags.
    let mut resp = http_open(
        server.httpflv_addr(),
        "GET",
        &format!("/live/{room}.flv"),
        &[],
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    let mut flv = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while flv::tags(&flv, 13)
        .filter(|t| {
            t.type_id == 9
                && ertmp::parse_video(&flv[t.body.clone()])
                    .is_ok_and(|v| v.packet == VideoPacket::CodedFrames)
        })
        .count()
        == 0
    {
        let n = std::io::Read::read(&mut resp.body, &mut chunk).unwrap();
        assert!(
            n > 0 && flv.len() < 1 << 20,
            "HTTP-FLV ended before a picture"
        );
        flv.extend_from_slice(&chunk[..n]);
    }
    drop(resp);
    assert_eq!(&flv[..5], b"FLV\x01\x05", "FLV header: audio and video");
    let videos: Vec<&[u8]> = flv::tags(&flv, 13)
        .filter(|t| t.type_id == 9)
        .map(|t| &flv[t.body])
        .collect();
    assert_eq!(
        videos[0],
        &source
            .iter()
            .find(|(k, _)| *k == MediaKind::Video)
            .unwrap()
            .1[..]
    );
    let picture = videos
        .iter()
        .find(|b| ertmp::parse_video(b).is_ok_and(|v| v.packet == VideoPacket::CodedFrames))
        .unwrap();
    assert!(
        ertmp::parse_video(picture).unwrap().is_keyframe(),
        "HTTP-FLV starts on a keyframe"
    );
    assert!(
        source.iter().any(|(_, b)| b[..] == picture[..]),
        "byte for byte"
    );

    // Stats and metrics.
    let audio_over_hls = ["aac", "ac3", "eac3"].contains(&audio);
    let hls = match (video == "hevc", audio_over_hls) {
        (true, true) => "yes",
        (true, false) => "video only",
        (false, true) => "audio only",
        (false, false) => "not available over HLS",
    };
    wait_until("livestat names the codecs", WAIT, || {
        let (_, body) = api_json(&server, &format!("/stat/livestat?room=live/{room}"));
        let p = &body["data"]["publishers"][0];
        p["video_codec"] == video && p["audio_codec"] == audio && p["hls"] == hls
    });
    let over_hls = |c: &str| {
        if ["hevc", "aac", "ac3", "eac3"].contains(&c) {
            "yes"
        } else {
            "no"
        }
    };
    for (track, codec) in [("video", video), ("audio", audio)] {
        let labels = [
            format!("stream=\"live/{room}\""),
            format!("track=\"{track}\""),
            format!("codec=\"{codec}\""),
            format!("hls=\"{}\"", over_hls(codec)),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        assert_eq!(
            metric_sum(&server, "shardcast_stream_codec_info", &labels),
            1,
            "{track} codec metric"
        );
    }
    let _ = pusher.kill();
    let _ = pusher.wait();
}

#[test]
fn the_clips_are_what_they_claim() {
    for clip in Clip::ALL {
        let (video, audio) = clip.codecs();
        decode(&ertmp_media(clip).to_string_lossy(), READ_TIMEOUT_S).check(
            "source",
            video,
            Some(audio),
            CLIP_FRAMES,
        );
    }
}

#[test]
fn hevc_aac_over_rtmp_httpflv_recording_and_hls() {
    read_back(Clip::HevcAac);
}

#[test]
fn hevc_opus_over_rtmp_httpflv_recording_and_hls_video_only() {
    read_back(Clip::HevcOpus);
}

#[test]
fn av1_opus_over_rtmp_httpflv_and_recording() {
    read_back(Clip::Av1Opus);
}

#[test]
fn vp9_opus_over_rtmp_httpflv_and_recording() {
    read_back(Clip::Vp9Opus);
}

#[test]
fn hevc_ac3_over_rtmp_httpflv_recording_and_hls() {
    read_back(Clip::HevcAc3);
}

#[test]
fn av1_flac_over_rtmp_httpflv_and_recording() {
    read_back(Clip::Av1Flac);
}

#[test]
fn vp9_eac3_over_rtmp_httpflv_recording_and_hls_audio_only() {
    read_back(Clip::Vp9Eac3);
}

#[test]
fn hevc_aac_late_joiner_and_stats() {
    late_joiner(Clip::HevcAac);
}

#[test]
fn hevc_opus_late_joiner_and_stats() {
    late_joiner(Clip::HevcOpus);
}

#[test]
fn av1_opus_late_joiner_and_stats() {
    late_joiner(Clip::Av1Opus);
}

#[test]
fn vp9_opus_late_joiner_and_stats() {
    late_joiner(Clip::Vp9Opus);
}

#[test]
fn hevc_ac3_late_joiner_and_stats() {
    late_joiner(Clip::HevcAc3);
}

#[test]
fn av1_flac_late_joiner_and_stats() {
    late_joiner(Clip::Av1Flac);
}

#[test]
fn vp9_eac3_late_joiner_and_stats() {
    late_joiner(Clip::Vp9Eac3);
}

/// Multitrack (E-RTMP v2) and legacy codec id 12 HEVC from our own RTMP client: the packets
/// pass through untouched, a late joiner gets every track's header (one cache slot each)
/// and then the GOP from the default track's keyframe, and stats keep the default track's
/// codec.
#[test]
fn multitrack_and_codec_id_12_pass_through_and_late_joiners_get_every_track_header() {
    let server = Server::start("ertmp-multitrack", &["--shards", "2"]);
    let key = key_of(&server, "multi");
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).unwrap();
    // Track 0: legacy codec id 12 HEVC (sequence header, key, inter). Track 1: AV1 in
    // multitrack OneTrack packets. Audio: Opus SequenceStart, MultichannelConfig, frames.
    let hevc_seq = b"\x1c\x00\x00\x00\x00\x01\x01\x60".to_vec();
    let av1_seq = b"\x96\x00av01\x01\x81\x00\x0c\x00".to_vec();
    let opus_seq = b"\x90OpusOpusHead\x01\x01\x38\x01".to_vec();
    let opus_mc = b"\x94Opus\x01\x01\x00\x00\x00\x04".to_vec();
    let hevc_frame = |key: bool, n: u8| {
        let mut b = vec![if key { 0x1c } else { 0x2c }, 1, 0, 0, 0, 0, 0, 0, 3];
        b.extend_from_slice(&[if key { 0x28 } else { 0x02 }, 0x01, n]);
        b
    };
    let av1_frame = |key: bool, n: u8| {
        let mut b = vec![if key { 0x96 } else { 0xa6 }, 0x01];
        b.extend_from_slice(b"av01\x01\x12\x00");
        b.push(n);
        b
    };
    let opus_frame = |n: u8| [&b"\x91Opus\xf8"[..], &[n]].concat();
    publisher.send_video(0, &hevc_seq).unwrap();
    publisher.send_video(0, &av1_seq).unwrap();
    publisher.send_audio(0, &opus_seq).unwrap();
    publisher.send_audio(0, &opus_mc).unwrap();
    let mut sent = Vec::new();
    for i in 0..60u8 {
        let ts = u32::from(i) * 33;
        let key = i % 30 == 0;
        for (kind, body) in [
            (MediaKind::Video, hevc_frame(key, i)),
            (MediaKind::Video, av1_frame(key, i)),
            (MediaKind::Audio, opus_frame(i)),
        ] {
            publisher.send_media(kind, ts, &body).unwrap();
            sent.push((kind, body));
        }
    }
    // A first player, after everything was sent, gets the headers and the cached GOP.
    let mut watcher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    watcher.play("multi").unwrap();
    let all = watcher.read_media(WAIT, 4 + 90);
    let bodies: Vec<Vec<u8>> = all.iter().map(|m| m.2.to_vec()).collect();
    let headers = [&hevc_seq, &av1_seq, &opus_seq, &opus_mc];
    for h in headers {
        assert!(bodies.contains(h), "header {h:02x?} replayed");
    }
    // The cache holds the GOP from the second keyframe (frame 30): its messages, in order.
    let gop: Vec<Vec<u8>> = sent[90..].iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(
        &bodies[4..],
        &gop[..],
        "the cached GOP, byte for byte, in order"
    );
    // A late joiner gets the same, headers first (one slot per track), the GOP's first
    // message the default track's keyframe.
    let mut joiner = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    joiner.play("multi").unwrap();
    let got: Vec<Vec<u8>> = joiner
        .read_media(WAIT, 4 + 90)
        .iter()
        .map(|m| m.2.to_vec())
        .collect();
    assert_eq!(got, bodies);
    let first = ertmp::parse_video(&got[4]).unwrap();
    assert!(first.is_keyframe() && !first.multitrack && first.codec.name() == "hevc");
    // More live frames reach both.
    publisher.send_video(2000, &hevc_frame(false, 99)).unwrap();
    publisher.send_video(2000, &av1_frame(false, 99)).unwrap();
    for p in [&mut watcher, &mut joiner] {
        let more = p.read_media(WAIT, 2);
        assert_eq!(more[0].2.to_vec(), hevc_frame(false, 99));
        assert_eq!(more[1].2.to_vec(), av1_frame(false, 99));
    }
    wait_until("livestat names the default track's codecs", WAIT, || {
        let (_, body) = api_json(&server, "/stat/livestat?room=live/multi");
        let p = &body["data"]["publishers"][0];
        p["video_codec"] == "hevc" && p["audio_codec"] == "opus" && p["hls"] == "video only"
    });
}

/// A relay forwards Enhanced RTMP: a `static_push` of an HEVC+AAC publish reaches the other
/// server with a `connect` that declares the FourCCs (as an E-RTMP ingest expects), and plays
/// there with every frame.
#[test]
fn hevc_is_relayed_by_static_push_as_enhanced_rtmp() {
    let media = ertmp_media(Clip::HevcAac);
    let b = Server::start(
        "ertmp-relay-b",
        &["--shards", "2", "--rtmp_noauth", "--gop_num", "10"],
    );
    let config = common::server::scratch_dir("ertmp-config", "relay").join("apps.toml");
    fs::write(
        &config,
        format!(
            "[[server]]\nappname = \"live\"\nlive = true\nflv = true\napi = true\n\
             static_push = [\"rtmp://{}/live\"]\n",
            b.rtmp_addr()
        ),
    )
    .unwrap();
    let a = Server::start(
        "ertmp-relay-a",
        &[
            "--shards",
            "2",
            "--config_file",
            config.to_str().unwrap(),
            "--hls_addr",
            "",
        ],
    );
    let key = key_of(&a, "relayed");
    let mut pusher = modern_push(
        &a.rtmp_url(&format!("live/{key}")),
        &media,
        Clip::HevcAac,
        false,
    );
    assert!(
        b.wait_for_line(
            |l| l.contains("publish started") && l.contains("live/relayed"),
            WAIT
        )
        .is_some(),
        "the static push publishes to the other server"
    );
    let declared = b
        .lines()
        .into_iter()
        .find(|l| l.contains("enhanced RTMP client"))
        .expect("the relay's connect is Enhanced RTMP");
    assert!(
        declared.contains("hvc1") && declared.contains("av01"),
        "{declared}"
    );
    let relayed = decode_in_background(b.rtmp_url("live/relayed"), READ_TIMEOUT_S);
    assert!(pusher.wait().expect("ffmpeg").success(), "the push ran");
    relayed
        .join()
        .unwrap()
        .check("relayed RTMP", "hevc", Some("aac"), CLIP_FRAMES);
}
