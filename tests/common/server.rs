//! The real `shardcast` binary on free ports, with its log captured.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Listeners the harness knows, by the `proto=` name of their `listening` line; the flag is
/// `--<proto>_addr`.
pub const PROTOCOLS: [&str; 4] = ["rtmp", "httpflv", "hls", "api"];
/// How long the server may take to print every `listening` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Environment variables passed through to the server.
const KEPT_ENV: [&str; 4] = ["PATH", "HOME", "RUST_BACKTRACE", "LLVM_PROFILE_FILE"];
/// How long a run of the binary that should exit at once ([`run_to_exit`]) may take.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Poll period of the waits on log lines and process exit.
const POLL: Duration = Duration::from_millis(20);

/// A running `shardcast` process, killed on drop.
///
/// Every listener the caller does not configure gets `127.0.0.1:0` (the server binds a free
/// port and logs it); `--level debug` unless given. The process runs in a fresh directory
/// ([`dir`](Self::dir)) with stdin closed and a clean environment (PATH, HOME, RUST_BACKTRACE,
/// LLVM_PROFILE_FILE and the caller's variables): no `livego.yaml` or variable from the
/// developer's shell leaks into its configuration. Its stdout and stderr are captured line by
/// line (ANSI colors stripped) and echoed to the test's stderr prefixed with `[name]`.
pub struct Server {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    addrs: HashMap<String, SocketAddr>,
    dir: PathBuf,
}

impl Server {
    /// Starts the server with `args` and waits until every enabled listener is up. To turn a
    /// listener off pass its flag with an empty value (`"--hls_addr", ""`). Panics (with the
    /// log) if the process exits or does not come up within [`START_TIMEOUT`].
    pub fn start(name: &str, args: &[&str]) -> Server {
        Self::start_with_env(name, args, &[])
    }

    /// Like [`start`](Self::start) with extra environment variables for the server.
    pub fn start_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = scratch_dir("servers", name);
        let full_args = full_args(args);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardcast"));
        cmd.args(&full_args)
            .current_dir(&dir)
            .env_clear()
            .envs(
                KEPT_ENV
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("[{name}] cannot start shardcast: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            capture(name, out, lines.clone());
        }
        if let Some(err) = child.stderr.take() {
            capture(name, err, lines.clone());
        }
        eprintln!("[{name}] started pid {} with {full_args:?}", child.id());
        let mut server = Server {
            name: name.to_owned(),
            child,
            lines,
            addrs: HashMap::new(),
            dir,
        };
        server.wait_listening(&enabled_protocols(&full_args));
        server
    }

    /// Polls the log until every protocol in `protos` logged its address.
    fn wait_listening(&mut self, protos: &[&str]) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            for line in self.lines() {
                if let Some((proto, addr)) = parse_listening(&line) {
                    self.addrs.entry(proto).or_insert(addr);
                }
            }
            if protos.iter().all(|p| self.addrs.contains_key(*p)) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("[{}] exited with {status} before listening", self.name);
            }
            if Instant::now() >= deadline {
                panic!(
                    "[{}] not listening on {protos:?} after {START_TIMEOUT:?}; saw {:?}",
                    self.name, self.addrs
                );
            }
            thread::sleep(POLL);
        }
    }

    /// The address a listener logged, if it is enabled.
    pub fn addr(&self, proto: &str) -> Option<SocketAddr> {
        self.addrs.get(proto).copied()
    }

    fn required_addr(&self, proto: &str) -> SocketAddr {
        self.addr(proto)
            .unwrap_or_else(|| panic!("[{}] has no {proto} listener", self.name))
    }

    /// RTMP listener address.
    pub fn rtmp_addr(&self) -> SocketAddr {
        self.required_addr("rtmp")
    }

    /// HTTP-FLV listener address.
    pub fn httpflv_addr(&self) -> SocketAddr {
        self.required_addr("httpflv")
    }

    /// HLS listener address.
    pub fn hls_addr(&self) -> SocketAddr {
        self.required_addr("hls")
    }

    /// API listener address.
    pub fn api_addr(&self) -> SocketAddr {
        self.required_addr("api")
    }

    /// `rtmp://127.0.0.1:PORT/<path>`, e.g. `rtmp_url("live/x")`.
    pub fn rtmp_url(&self, path: &str) -> String {
        format!(
            "rtmp://{}/{}",
            self.rtmp_addr(),
            path.trim_start_matches('/')
        )
    }

    /// `http://127.0.0.1:PORT/<path>` on the HTTP-FLV listener, e.g. `httpflv_url("live/x.flv")`.
    pub fn httpflv_url(&self, path: &str) -> String {
        format!(
            "http://{}/{}",
            self.httpflv_addr(),
            path.trim_start_matches('/')
        )
    }

    /// `http://127.0.0.1:PORT/<path>` on the HLS listener, e.g. `hls_url("live/x.m3u8")`.
    pub fn hls_url(&self, path: &str) -> String {
        format!(
            "http://{}/{}",
            self.hls_addr(),
            path.trim_start_matches('/')
        )
    }

    /// The name given at start (prefix of the echoed log).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's working directory (removed on drop unless the test panicked).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every log line so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// Number of log lines so far: a start index for
    /// [`wait_for_line_from`](Self::wait_for_line_from).
    pub fn line_count(&self) -> usize {
        lock(&self.lines).len()
    }

    /// The first log line (from the start) matching `pred`, waiting up to `timeout`.
    pub fn wait_for_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.wait_for_line_from(0, pred, timeout)
    }

    /// The first log line at index `start` or later matching `pred`, waiting up to `timeout`.
    pub fn wait_for_line_from(
        &self,
        start: usize,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = lock(&self.lines)
                .iter()
                .skip(start)
                .find(|l| pred(l))
                .cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            thread::sleep(POLL);
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory (VmRSS of `/proc/<pid>/status`) in KiB; 0 if it cannot be read.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Sends a signal by name (`"TERM"`, `"INT"`, `"HUP"`, `"KILL"`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL),
                _ => return None,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("[{}] kept its directory {}", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// VmRSS of process `pid` in KiB; 0 if it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn lock(lines: &Mutex<Vec<String>>) -> MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `source` line by line on a thread into `lines`, echoing each line.
fn capture(name: &str, source: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    let name = name.to_owned();
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut raw = Vec::new();
        while matches!(reader.read_until(b'\n', &mut raw), Ok(n) if n > 0) {
            let text = String::from_utf8_lossy(&raw);
            let line = strip_ansi(text.trim_end_matches(['\r', '\n']));
            eprintln!("[{name}] {line}");
            lock(&lines).push(line);
            raw.clear();
        }
    });
}

/// A new empty directory under the cargo target's tmp dir, `{group}/{name}-{pid}-{n}`,
/// unique per process and call.
pub fn scratch_dir(group: &str, name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(group)
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// The value of `--flag value` or `--flag=value` in `args`, last one winning.
pub fn flag_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        if *arg == flag {
            found = Some(args.get(i + 1).copied().unwrap_or(""));
        } else if let Some(v) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
    }
    found
}

/// The caller's args plus `--<proto>_addr 127.0.0.1:0` for each listener it did not set and
/// `--level debug` unless set.
pub fn full_args(args: &[&str]) -> Vec<String> {
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for proto in PROTOCOLS {
        let flag = format!("--{proto}_addr");
        if flag_value(args, &flag).is_none() {
            full.extend([flag, "127.0.0.1:0".to_owned()]);
        }
    }
    if flag_value(args, "--level").is_none() {
        full.extend(["--level".to_owned(), "debug".to_owned()]);
    }
    full
}

/// The protocols whose `--<proto>_addr` is non-empty in `args` (as built by [`full_args`]).
pub fn enabled_protocols(args: &[String]) -> Vec<&'static str> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    PROTOCOLS
        .into_iter()
        .filter(|p| flag_value(&args, &format!("--{p}_addr")).is_some_and(|v| !v.is_empty()))
        .collect()
}

/// Parses `... listening proto=<p> addr=<ip:port> ...` into `(p, addr)`.
pub fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "listening")?;
    let mut proto = None;
    let mut addr = None;
    for word in words {
        if let Some(p) = word.strip_prefix("proto=") {
            proto = Some(p.to_owned());
        } else if let Some(a) = word.strip_prefix("addr=") {
            addr = a.parse().ok();
        }
    }
    Some((proto?, addr?))
}

/// Removes ANSI escape sequences (CSI `ESC [ ... final`, and lone `ESC x` pairs).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            // Parameters and intermediates, up to the final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Runs the binary with `args` in `dir` (clean environment, stdin closed); it must exit
/// within [`EXIT_TIMEOUT`] (killed and the test failed otherwise). Returns exit code, stdout
/// and stderr.
pub fn run_to_exit(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(
            ["PATH", "HOME"]
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shardcast");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shardcast {args:?} did not exit within {EXIT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines() {
        let line = "2024-05-01T10:00:00Z  INFO shardcast::serve: \
            listening proto=rtmp addr=127.0.0.1:40123 shards=2";
        assert_eq!(
            parse_listening(line),
            Some(("rtmp".to_owned(), "127.0.0.1:40123".parse().unwrap()))
        );
        let colored = "\x1b[2m2024\x1b[0m \x1b[32m INFO\x1b[0m x: listening \
            \x1b[3mproto\x1b[0m\x1b[2m=\x1b[0mapi addr=[::1]:8090";
        assert_eq!(
            parse_listening(&strip_ansi(colored)),
            Some(("api".to_owned(), "[::1]:8090".parse().unwrap()))
        );
        assert_eq!(parse_listening("listening proto=rtmp addr=nope"), None);
        assert_eq!(
            parse_listening("not listening: proto=rtmp addr=1.2.3.4:5"),
            None
        );
        assert_eq!(parse_listening("proto=rtmp addr=127.0.0.1:1"), None);
    }

    #[test]
    fn ansi_stripping() {
        assert_eq!(strip_ansi("a\x1b[1;31mb\x1b[0mc"), "abc");
        assert_eq!(strip_ansi("plain é"), "plain é");
        assert_eq!(strip_ansi("cut\x1b[1"), "cut");
        assert_eq!(strip_ansi("\x1b"), "");
    }

    #[test]
    fn args_fill_in_missing_listeners() {
        let full = full_args(&["--shards", "2", "--hls_addr", "", "--api_addr=127.0.0.1:9"]);
        assert_eq!(
            full,
            [
                "--shards",
                "2",
                "--hls_addr",
                "",
                "--api_addr=127.0.0.1:9",
                "--rtmp_addr",
                "127.0.0.1:0",
                "--httpflv_addr",
                "127.0.0.1:0",
                "--level",
                "debug"
            ]
        );
        assert_eq!(enabled_protocols(&full), ["rtmp", "httpflv", "api"]);
        let full = full_args(&["--level", "info", "--rtmp_addr=127.0.0.1:0"]);
        assert_eq!(full.iter().filter(|a| a.contains("level")).count(), 1);
        assert_eq!(full.iter().filter(|a| a.contains("rtmp_addr")).count(), 1);
        assert_eq!(enabled_protocols(&full), PROTOCOLS);
        assert_eq!(flag_value(&["--x", "1", "--x=2"], "--x"), Some("2"));
        assert_eq!(flag_value(&["--xy=1"], "--x"), None);
        assert_eq!(flag_value(&["--x"], "--x"), Some(""));
    }
}
