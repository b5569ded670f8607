//! A modern FFmpeg (9.x, with Enhanced RTMP) for the HEVC/AV1/VP9 and Opus/FLAC/AC-3/E-AC-3
//! tests: the static
//! build inside the `imageio-ffmpeg` wheel (`scripts/setup` installs it). It has no ffprobe,
//! so streams are described from `ffmpeg -i` output and frames counted from `-f null`.

use super::ffmpeg::encode_once;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

/// Video frames of each [`ertmp_media`] clip (2 s at 30 fps).
pub const CLIP_FRAMES: usize = 60;
/// Keyframe interval of the clips, in frames.
pub const CLIP_GOP: usize = 30;
/// Picture size of the clips.
pub const CLIP_SIZE: &str = "320x240";

/// The codec pairs of the Enhanced RTMP tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clip {
    HevcAac,
    HevcOpus,
    Av1Opus,
    Vp9Opus,
    /// The E-RTMP v2 audio codecs FFmpeg's FLV muxer writes besides Opus.
    HevcAc3,
    Av1Flac,
    Vp9Eac3,
}

impl Clip {
    pub const ALL: [Clip; 7] = [
        Clip::HevcAac,
        Clip::HevcOpus,
        Clip::Av1Opus,
        Clip::Vp9Opus,
        Clip::HevcAc3,
        Clip::Av1Flac,
        Clip::Vp9Eac3,
    ];

    /// FFmpeg's names of the video and audio codecs.
    pub fn codecs(self) -> (&'static str, &'static str) {
        match self {
            Clip::HevcAac => ("hevc", "aac"),
            Clip::HevcOpus => ("hevc", "opus"),
            Clip::Av1Opus => ("av1", "opus"),
            Clip::Vp9Opus => ("vp9", "opus"),
            Clip::HevcAc3 => ("hevc", "ac3"),
            Clip::Av1Flac => ("av1", "flac"),
            Clip::Vp9Eac3 => ("vp9", "eac3"),
        }
    }

    /// The E-RTMP FourCCs of the clip's codecs, as FFmpeg's `-rtmp_enhanced_codecs` takes
    /// them (FFmpeg then sends them in `connect` as `fourCcList`).
    pub fn fourccs(self) -> &'static str {
        match self {
            Clip::HevcAac => "hvc1,mp4a",
            Clip::HevcOpus => "hvc1,Opus",
            Clip::Av1Opus => "av01,Opus",
            Clip::Vp9Opus => "vp09,Opus",
            Clip::HevcAc3 => "hvc1,ac-3",
            Clip::Av1Flac => "av01,fLaC",
            Clip::Vp9Eac3 => "vp09,ec-3",
        }
    }

    fn file_name(self) -> String {
        let (v, a) = self.codecs();
        format!("ertmp-{v}-{a}-{CLIP_SIZE}-2s.flv")
    }

    fn encoder_args(self) -> Vec<&'static str> {
        let gop = "30";
        let mut args = match self.codecs().0 {
            "hevc" => vec![
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error:keyint=30:min-keyint=30:scenecut=0",
            ],
            "av1" => vec![
                "-c:v",
                "libsvtav1",
                "-preset",
                "12",
                "-svtav1-params",
                "keyint=30:scd=0",
            ],
            _ => vec![
                "-c:v",
                "libvpx-vp9",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-g",
                gop,
            ],
        };
        args.extend(match self.codecs().1 {
            "aac" => ["-c:a", "aac", "-b:a", "64k"],
            "ac3" => ["-c:a", "ac3", "-b:a", "96k"],
            "eac3" => ["-c:a", "eac3", "-b:a", "96k"],
            "flac" => ["-c:a", "flac", "-compression_level", "0"],
            _ => ["-c:a", "libopus", "-b:a", "48k"],
        });
        args
    }
}

/// Path of the modern FFmpeg; panics (tests never skip) when `imageio-ffmpeg` is missing.
pub fn modern_ffmpeg() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
            ])
            .stdin(Stdio::null())
            .output()
            .expect("python3");
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            out.status.success() && Path::new(&path).exists(),
            "the modern FFmpeg is missing: pip install imageio-ffmpeg (scripts/setup does it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(path)
    })
    .clone()
}

/// The clip of `kind`, encoded once per `target/` (2 s, 320x240, 30 fps, a keyframe every
/// 30 frames; 48 kHz mono audio) into an FLV file by the modern FFmpeg.
pub fn ertmp_media(kind: Clip) -> PathBuf {
    static MEDIA: [OnceLock<PathBuf>; Clip::ALL.len()] =
        [const { OnceLock::new() }; Clip::ALL.len()];
    MEDIA[kind as usize]
        .get_or_init(|| {
            encode_once(&kind.file_name(), |tmp| {
                let mut cmd = Command::new(modern_ffmpeg());
                cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
                cmd.args(["-f", "lavfi", "-i"])
                    .arg(format!("testsrc2=size={CLIP_SIZE}:rate=30"));
                cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
                cmd.args(["-t", "2", "-pix_fmt", "yuv420p", "-threads", "1"]);
                cmd.args(kind.encoder_args());
                cmd.args(["-shortest", "-f", "flv"]).arg(tmp);
                run_quietly(&mut cmd)
            })
        })
        .clone()
}

/// Runs `cmd` to its end without input; its stderr is the error when it fails.
fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The tags FFmpeg publishes for `kind` with `-c copy -f flv`: the clip remuxed by the same
/// FLV muxer that feeds its RTMP output (which regenerates the E-RTMP video `colorInfo`
/// metadata, so the clip file itself differs there). Made once per `target/`.
pub fn published_form(kind: Clip) -> PathBuf {
    static MEDIA: [OnceLock<PathBuf>; Clip::ALL.len()] =
        [const { OnceLock::new() }; Clip::ALL.len()];
    MEDIA[kind as usize]
        .get_or_init(|| {
            let source = ertmp_media(kind);
            let name = kind.file_name().replace(".flv", "-copy.flv");
            encode_once(&name, |tmp| {
                let mut cmd = Command::new(modern_ffmpeg());
                cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
                    .arg(&source)
                    .args(["-c", "copy", "-f", "flv"])
                    .arg(tmp);
                run_quietly(&mut cmd)
            })
        })
        .clone()
}

/// Starts `ffmpeg -re [-stream_loop -1] -i file -c copy -rtmp_enhanced_codecs <fourccs>
/// -f flv url` with the modern FFmpeg: an Enhanced RTMP publisher that declares its codecs
/// in `connect` (`fourCcList`), as OBS does.
pub fn modern_push(url: &str, file: &Path, kind: Clip, looped: bool) -> Child {
    let mut cmd = super::ffmpeg::quiet_ffmpeg(modern_ffmpeg());
    cmd.arg("-re");
    if looped {
        cmd.args(["-stream_loop", "-1"]);
    }
    cmd.arg("-i")
        .arg(file)
        .args(["-c", "copy", "-rtmp_enhanced_codecs", kind.fourccs()])
        .args(["-f", "flv", url]);
    super::ffmpeg::spawn(&mut cmd)
}

/// What `ffmpeg -i input -f null -` saw: the stream lines and the decoded video frames.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// `Stream #0:N: Video: hevc (Main), yuv420p(...), 320x240 ...` lines of the input.
    pub streams: Vec<String>,
    /// Frames of the last `frame=` progress figure (video frames decoded).
    pub frames: usize,
    pub stderr: String,
}

impl Decoded {
    /// The input's video stream line.
    pub fn video(&self) -> Option<&str> {
        self.streams
            .iter()
            .find(|l| l.contains(": Video: "))
            .map(String::as_str)
    }

    /// The input's audio stream line.
    pub fn audio(&self) -> Option<&str> {
        self.streams
            .iter()
            .find(|l| l.contains(": Audio: "))
            .map(String::as_str)
    }

    /// The codec name of a stream line (`hevc` in `Stream #0:0: Video: hevc (Main), ...`).
    pub fn codec_of(line: Option<&str>) -> Option<String> {
        let rest = line?
            .split_once(": Video: ")
            .or_else(|| line?.split_once(": Audio: "))?
            .1;
        Some(rest.split([' ', ',']).next()?.to_string())
    }

    /// Panics with the whole output unless video and audio codecs, size and frame count are
    /// as expected.
    pub fn check(&self, what: &str, video: &str, audio: Option<&str>, frames: usize) {
        let fail = |why: String| panic!("{what}: {why}\n{}", self.stderr);
        if Self::codec_of(self.video()).as_deref() != Some(video) {
            fail(format!("video codec {:?}, want {video}", self.video()));
        }
        if !self
            .video()
            .is_some_and(|l| l.contains(&format!(" {CLIP_SIZE}")))
        {
            fail(format!("size {:?}, want {CLIP_SIZE}", self.video()));
        }
        if Self::codec_of(self.audio()).as_deref() != audio {
            fail(format!("audio codec {:?}, want {audio:?}", self.audio()));
        }
        if self.frames != frames {
            fail(format!("{} frames, want {frames}", self.frames));
        }
    }
}

/// Decode `input` (a file or URL) with the modern FFmpeg to `-f null`, reading at most
/// `timeout_s` without data (network inputs).
pub fn decode(input: &str, timeout_s: u32) -> Decoded {
    let mut cmd = Command::new(modern_ffmpeg());
    cmd.args(["-hide_banner", "-nostdin"]);
    if input.contains("://") {
        cmd.args([
            "-rw_timeout",
            &(u64::from(timeout_s) * 1_000_000).to_string(),
        ]);
    }
    cmd.args(["-i", input, "-f", "null", "-"]);
    parse_decode(&run(&mut cmd))
}

/// Starts [`decode`] in a thread (a player that runs while the test publishes).
pub fn decode_in_background(input: String, timeout_s: u32) -> std::thread::JoinHandle<Decoded> {
    std::thread::spawn(move || decode(&input, timeout_s))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("modern ffmpeg")
}

/// Stream lines of the first input and the last `frame=` figure.
pub fn parse_decode(out: &Output) -> Decoded {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut streams = Vec::new();
    let mut in_input = false;
    for line in stderr.lines() {
        if line.starts_with("Input #0") {
            in_input = true;
        } else if line.starts_with("Output #") || line.starts_with("Stream mapping") {
            in_input = false;
        } else if in_input && line.trim_start().starts_with("Stream #0:") {
            streams.push(line.trim().to_string());
        }
    }
    let frames = stderr
        .rsplit("frame=")
        .next()
        .filter(|_| stderr.contains("frame="))
        .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Decoded {
        streams,
        frames,
        stderr,
    }
}
