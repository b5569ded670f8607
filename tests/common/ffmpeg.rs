//! ffmpeg and ffprobe: the shared test recording, pushing, probing and recording streams.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// Video frames of [`test_media`].
pub const FRAMES: usize = 360;
/// Frame rate of [`test_media`].
pub const FPS: usize = 30;
/// Keyframe interval of [`test_media`], in frames (one keyframe per second).
pub const GOP: usize = 30;
/// Duration of [`test_media`], in seconds.
pub const DURATION_SECS: u32 = 12;
/// Width and height of [`test_media`].
pub const SIZE: (u32, u32) = (320, 240);
/// Audio sample rate of [`test_media`] (AAC, mono 440 Hz sine).
pub const AUDIO_RATE: u32 = 44_100;

/// File name of the shared recording in `target/test-media/`.
const MEDIA_NAME: &str = "testsrc2-320x240-30fps-12s.flv";
/// A lock file older than this is left over from a killed run and is taken over.
const STALE_LOCK: Duration = Duration::from_secs(120);
/// How long a test waits for another process to finish encoding.
const ENCODE_WAIT: Duration = Duration::from_secs(180);

/// True if both `ffmpeg` and `ffprobe` run.
pub fn ffmpeg_available() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Panics unless ffmpeg and ffprobe are installed: tests never skip silently.
pub fn require_ffmpeg() {
    assert!(
        ffmpeg_available(),
        "ffmpeg/ffprobe not found: install ffmpeg: scripts/test does it"
    );
}

/// The kinds of test recording: all 12 s, video 320x240 30 fps H.264 with a keyframe every
/// 30 frames, audio 44.1 kHz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// H.264 + AAC (the walkthrough's stream).
    H264Aac,
    /// AAC only, no video.
    AacOnly,
    /// H.264 + MP3.
    H264Mp3,
}

impl Variant {
    fn file_name(self) -> &'static str {
        match self {
            Variant::H264Aac => MEDIA_NAME,
            Variant::AacOnly => "aac-only-12s.flv",
            Variant::H264Mp3 => "h264-mp3-12s.flv",
        }
    }
}

/// The shared 12 s test recording (H.264 320x240 30 fps, keyframe every 30 frames, AAC
/// 44.1 kHz): [`FRAMES`] video frames.
pub fn test_media() -> PathBuf {
    test_media_variant(Variant::H264Aac)
}

/// A test recording of the given kind. Encoded once per `target/`: the first process to take
/// `test-media/<name>.lock` encodes to a temporary name and renames it into place; others
/// wait for the file.
pub fn test_media_variant(variant: Variant) -> PathBuf {
    static MEDIA: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    MEDIA[variant as usize]
        .get_or_init(|| {
            require_ffmpeg();
            encode_once(variant.file_name(), |tmp| encode_test_media(tmp, variant))
        })
        .clone()
}

/// `target/test-media/<name>`, made once per `target/` by `encode(tmp_path)`: the first
/// process to take `<name>.lock` encodes to a temporary name and renames it into place;
/// others wait for the file. Panics with `encode`'s error.
pub fn encode_once(name: &str, encode: impl Fn(&Path) -> Result<(), String>) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("test-media");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(name);
    let lock = dir.join(format!("{name}.lock"));
    let deadline = Instant::now() + ENCODE_WAIT;
    while !path.exists() {
        if take_lock(&lock) {
            let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
            let result = encode(&tmp).and_then(|()| {
                fs::rename(&tmp, &path).map_err(|e| format!("rename {}: {e}", tmp.display()))
            });
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(&lock);
            result.unwrap_or_else(|e| panic!("encoding {}: {e}", path.display()));
        } else {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}",
                lock.display()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
    path
}

/// Creates `lock` exclusively, first removing it if it is stale; true if we own it.
fn take_lock(lock: &Path) -> bool {
    let age = fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    if age.is_some_and(|age| age > STALE_LOCK) {
        let _ = fs::remove_file(lock);
    }
    match OpenOptions::new().write(true).create_new(true).open(lock) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => false,
        Err(e) => panic!("create {}: {e}", lock.display()),
    }
}

/// Encodes the test recording to `tmp`.
fn encode_test_media(tmp: &Path, variant: Variant) -> Result<(), String> {
    let (w, h) = SIZE;
    let video = format!("testsrc2=size={w}x{h}:rate={FPS}");
    let audio = format!("sine=frequency=440:sample_rate={AUDIO_RATE}");
    let duration = DURATION_SECS.to_string();
    let gop = GOP.to_string();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    if variant != Variant::AacOnly {
        cmd.args(["-f", "lavfi", "-i", &video]);
    }
    cmd.args(["-f", "lavfi", "-i", &audio, "-t", &duration]);
    if variant != Variant::AacOnly {
        // -sc_threshold 0: no scene-cut keyframes, so every GOP is exactly GOP frames.
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ]);
        cmd.args(["-g", &gop, "-sc_threshold", "0", "-pix_fmt", "yuv420p"]);
    }
    match variant {
        Variant::H264Mp3 => cmd.args(["-c:a", "libmp3lame", "-b:a", "96k"]),
        _ => cmd.args(["-c:a", "aac", "-b:a", "64k"]),
    };
    cmd.args(["-shortest", "-f", "flv"]);
    let output = run(cmd.arg(tmp))?;
    if !output.status.success() {
        return Err(format!(
            "ffmpeg failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))
}

/// `program` (an ffmpeg) with no banner, no progress, no stdin, warnings and errors only.
pub fn quiet_ffmpeg(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostats",
        "-nostdin",
    ]);
    cmd
}

/// Starts `cmd` without stdin or stdout (its stderr goes to the test's).
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Starts `ffmpeg [-re] -i file -c copy -f flv url` (publishing to an RTMP URL). Warnings
/// and errors go to the test's stderr; kill or wait the child as the test requires.
pub fn push(url: &str, file: &Path, realtime: bool) -> Child {
    let mut cmd = quiet_ffmpeg("ffmpeg");
    if realtime {
        cmd.arg("-re");
    }
    cmd.arg("-i").arg(file);
    cmd.args(["-c", "copy", "-f", "flv", url]);
    spawn(&mut cmd)
}

/// Starts `ffmpeg -re -stream_loop -1 -i file -c copy -f flv url`: a live stream that runs
/// until the child is killed (ffmpeg keeps the timestamps increasing across loops).
pub fn push_looped(url: &str, file: &Path) -> Child {
    let mut cmd = quiet_ffmpeg("ffmpeg");
    cmd.args(["-re", "-stream_loop", "-1", "-i"]).arg(file);
    cmd.args(["-c", "copy", "-f", "flv", url]);
    spawn(&mut cmd)
}

/// Starts `ffmpeg -i url -c copy -t seconds -f flv out_path` (recording a stream, RTMP or
/// HTTP-FLV), with a 15 s I/O timeout.
pub fn record(url: &str, seconds: u32, out_path: &Path) -> Child {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "warning",
        "-nostats",
        "-nostdin",
        "-y",
    ]);
    cmd.args(["-rw_timeout", "15000000", "-i", url, "-c", "copy"]);
    cmd.args(["-t", &seconds.to_string(), "-f", "flv"])
        .arg(out_path);
    spawn(&mut cmd)
}

/// Codec names of the streams ffprobe finds at `url` (e.g. `["h264", "aac"]`); empty if it
/// finds none or fails (its stderr is echoed).
pub fn ffprobe_streams(url: &str) -> Vec<String> {
    let output = run(Command::new("ffprobe").args([
        "-v",
        "error",
        "-rw_timeout",
        "15000000",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        url,
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    echo_stderr("ffprobe", &output);
    csv_values(&String::from_utf8_lossy(&output.stdout))
}

/// Video packets of a media file: their count and presentation times in milliseconds
/// (packets without a pts are counted but have no time).
pub fn count_video_frames(path: &Path) -> (usize, Vec<i64>) {
    let output = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v"])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(path))
    .unwrap_or_else(|e| panic!("{e}"));
    echo_stderr("ffprobe", &output);
    let values = csv_values(&String::from_utf8_lossy(&output.stdout));
    let pts = values.iter().filter_map(|v| seconds_to_ms(v)).collect();
    (values.len(), pts)
}

fn echo_stderr(tool: &str, output: &Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() || !output.status.success() {
        eprintln!("[{tool}] {}: {}", output.status, stderr.trim_end());
    }
}

/// Non-empty lines of `csv=p=0` output, trailing separators removed.
pub fn csv_values(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().trim_end_matches(',').to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `"1.033000"` seconds as 1033 ms; `None` for `N/A` or junk.
pub fn seconds_to_ms(value: &str) -> Option<i64> {
    let seconds: f64 = value.trim().parse().ok()?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_times() {
        assert_eq!(csv_values("h264\naac,\n\n"), ["h264", "aac"]);
        assert_eq!(seconds_to_ms("1.033000"), Some(1033));
        assert_eq!(seconds_to_ms("0.000000"), Some(0));
        assert_eq!(seconds_to_ms("-0.021"), Some(-21));
        assert_eq!(seconds_to_ms("N/A"), None);
    }

    #[test]
    fn stale_lock_is_taken_over() {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let lock = dir.join("x.lock");
        let _ = fs::remove_file(&lock);
        assert!(take_lock(&lock));
        assert!(!take_lock(&lock), "held");
        let old = SystemTime::now() - STALE_LOCK * 2;
        fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(take_lock(&lock), "stale");
        fs::remove_dir_all(&dir).unwrap();
    }
}
