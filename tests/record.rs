//! End-to-end recording: `flv_archive` and the per-app `record` switch write
//! `flv_dir/{app}/{room}_{unix}.flv`, which ffprobe reads to the end; a SIGTERM finalises the
//! file and a `kill -9` leaves it readable up to its last whole tag.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The `.flv` files under `dir/app`, sorted.
fn recordings(dir: &Path, app: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join(app))
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "flv"));
    files.sort();
    files
}

/// ffprobe's container duration of `path`, in seconds.
fn duration_secs(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("duration of {}: {text:?}", path.display()))
}

/// Walks an FLV file strictly: header, then tags whose PreviousTagSize matches. Returns the
/// whole tags and how many bytes follow the last one (a partial tag).
fn strict_tags(data: &[u8]) -> (usize, usize) {
    assert_eq!(&data[..3], b"FLV", "FLV signature");
    let mut pos = 13;
    let mut tags = 0;
    while pos + 11 <= data.len() {
        let len = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let end = pos + 11 + len + 4;
        if end > data.len() {
            break;
        }
        let prev = u32::from_be_bytes(data[end - 4..end].try_into().unwrap()) as usize;
        assert_eq!(prev, len + 11, "PreviousTagSize of tag {tags}");
        assert!([8, 9, 18].contains(&data[pos]), "tag type {}", data[pos]);
        tags += 1;
        pos = end;
    }
    (tags, data.len() - pos)
}

#[test]
fn flv_archive_records_the_whole_stream() {
    require_ffmpeg();
    let server = Server::start("record-archive", &["--flv_archive", "--flv_dir", "rec"]);
    let key = key_of(&server, "movie");
    let mut push = push(
        &server.rtmp_url(&format!("live/{key}")),
        &test_media(),
        false,
    );
    assert!(push.wait().expect("ffmpeg").success());
    assert!(
        server
            .wait_for_line(|l| l.contains("recording finished"), WAIT)
            .is_some(),
        "recording closed at stream end"
    );
    let files = recordings(&server.dir().join("rec"), "live");
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let unix: u64 = name
        .strip_prefix("movie_")
        .and_then(|r| r.strip_suffix(".flv"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("file name {name}"));
    assert!(unix > 1_700_000_000, "{name}");
    let data = fs::read(&files[0]).unwrap();
    let (tags, rest) = strict_tags(&data);
    assert_eq!(rest, 0, "the file ends on a whole tag");
    assert!(tags > FRAMES, "{tags} tags");
    assert_eq!(data[4], 0x05, "audio and video announced");
    let mut codecs = ffprobe_streams(&files[0].to_string_lossy());
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"]);
    let (frames, _) = count_video_frames(&files[0]);
    assert_eq!(frames, FRAMES, "every video frame recorded");
    let secs = duration_secs(&files[0]);
    assert!(
        (secs - DURATION_SECS as f64).abs() <= 1.0,
        "duration {secs} s, pushed {DURATION_SECS} s"
    );
}

#[test]
fn only_apps_with_record_on_are_recorded_and_unsafe_names_are_refused() {
    require_ffmpeg();
    let config = "[[server]]\nappname = \"live\"\nlive = true\n\n\
                  [[server]]\nappname = \"rec\"\nlive = true\nrecord = true\n";
    let dir = std::env::temp_dir().join(format!("shardcast-record-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("apps.toml");
    fs::write(&file, config).unwrap();
    let server = Server::start(
        "record-apps",
        &[
            "--config_file",
            file.to_str().unwrap(),
            "--rtmp_noauth",
            "--flv_dir",
            "rec",
            "--hls_addr",
            "",
            "--httpflv_addr",
            "",
            "--api_addr",
            "",
        ],
    );
    for app in ["live", "rec"] {
        let mut p = push(
            &server.rtmp_url(&format!("{app}/show")),
            &test_media(),
            false,
        );
        assert!(p.wait().expect("ffmpeg").success(), "push to {app}");
    }
    assert!(server
        .wait_for_line(|l| l.contains("recording finished"), WAIT)
        .is_some());
    let root = server.dir().join("rec");
    assert_eq!(recordings(&root, "rec").len(), 1);
    assert!(recordings(&root, "live").is_empty());

    // Names that would leave flv_dir never publish.
    for name in ["..", "a/../../x", "."] {
        let mut client = RtmpClient::connect(server.rtmp_addr(), "rec").expect("connect");
        assert!(client.publish(name).is_err(), "publish {name:?} refused");
    }
    let entries: Vec<_> = fs::read_dir(&root).unwrap().collect();
    assert_eq!(entries.len(), 1, "only rec/ under flv_dir");
    let _ = fs::remove_dir_all(&dir);
}

/// Starts a looped real-time push to `live/{room}` and waits until its recording has grown
/// past 2 s of data.
fn recording_in_progress(server: &Server, room: &str) -> (std::process::Child, PathBuf) {
    let push = push_looped(&server.rtmp_url(&format!("live/{room}")), &test_media());
    let root = server.dir().join("rec");
    let mut file = None;
    wait_until("the recording grows", WAIT, || {
        file = recordings(&root, "live").pop();
        file.as_ref()
            .and_then(|f| fs::metadata(f).ok())
            .is_some_and(|m| m.len() > 64 * 1024)
    });
    (push, file.unwrap())
}

#[test]
fn sigterm_finalises_and_kill_9_leaves_a_readable_file() {
    require_ffmpeg();
    let args = ["--flv_archive", "--flv_dir", "rec", "--rtmp_noauth"];

    let mut server = Server::start("record-term", &args);
    let (mut push, file) = recording_in_progress(&server, "term");
    server.signal("TERM");
    assert!(server.wait_exit(WAIT).is_some_and(|s| s.success()));
    let _ = push.kill();
    let _ = push.wait();
    let data = fs::read(&file).unwrap();
    assert_eq!(
        strict_tags(&data).1,
        0,
        "SIGTERM: the file ends on a whole tag"
    );
    assert!(count_video_frames(&file).0 > 0);

    let mut server = Server::start("record-kill", &args);
    let (mut push, file) = recording_in_progress(&server, "kill");
    server.signal("KILL");
    server.wait_exit(WAIT).expect("killed");
    let _ = push.kill();
    let _ = push.wait();
    let data = fs::read(&file).unwrap();
    let (tags, _) = strict_tags(&data);
    assert!(tags > 0, "kill -9: whole tags up to the last one");
    let (frames, _) = count_video_frames(&file);
    assert!(frames > 0, "ffprobe reads the frames");
}
