//! The `load` subcommand: publishers and players on glommio executors, then a report.
//!
//! Timeline (CLOCK_MONOTONIC): publishers connect at once; when all of them have published or
//! failed (or after the connect timeout), the players' start is fixed at that moment plus
//! `settle`. Player j starts connecting at `start + join_over * j / M`. The measurement window
//! opens `warmup` after the last start and lasts `duration`. At its end every executor
//! summarizes its connections and hands the summary to the main thread, which also sampled the
//! server's CPU and memory; the report is built from whatever arrived by the window's end plus
//! [`HARD_DEADLINE_SECS`], and the process exits.

pub mod exec;
pub mod player;
pub mod publisher;
pub mod target;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};

use self::exec::{ExecReport, PlayerRec, PubRec};
use self::target::{expand, Proto, Target};
use crate::clock::{block_until, mono_ns, secs_ns, sleep_until};
use crate::flvfile::FlvFile;
use crate::procfs;
use crate::report::{self, Report};
use crate::stats::{percentile_sorted, sorted, Histogram};
use crate::track::{Track, Window};

/// Seconds after the window's end after which the report is written whatever happened.
pub const HARD_DEADLINE_SECS: f64 = 10.0;
/// Server memory sampling period.
const SAMPLE_PERIOD: Duration = Duration::from_millis(250);
/// Distinct errors listed in the report.
const REPORT_ERRORS: usize = 10;

/// What `load` does.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub file: Option<Arc<FlvFile>>,
    pub publish: usize,
    pub publish_url: Option<String>,
    pub play: usize,
    pub play_urls: Vec<String>,
    pub streams: usize,
    pub join_over: f64,
    pub settle: f64,
    pub warmup: f64,
    pub duration: f64,
    pub threads: usize,
    pub server_pids: Vec<u32>,
    pub label: String,
    /// Players connecting at once, per executor.
    pub max_connecting: usize,
    /// Limit of each connect-to-playing (and publish) sequence, and of each HLS request.
    pub connect_timeout: f64,
    /// Size of each executor's read buffer.
    pub read_buf: usize,
}

/// State shared by the executors and the main thread (atomics, and a mutex used once per
/// executor at the end).
pub struct Shared {
    pub cfg: LoadConfig,
    /// Publish target per stream index.
    pub publish_targets: Vec<Target>,
    /// Play target per template, per stream index.
    pub play_targets: Vec<Vec<Target>>,
    pub t0: u64,
    next_exec: AtomicUsize,
    /// Publishers that published or failed.
    pub pubs_settled: AtomicUsize,
    /// When players start connecting (0 = not known yet).
    players_start: AtomicU64,
    results: Mutex<Vec<ExecReport>>,
    results_ready: Condvar,
}

impl Shared {
    /// The measurement window for a players' start.
    pub fn window(&self, players_start: u64) -> Window {
        let start_ns = players_start + secs_ns(self.cfg.join_over) + secs_ns(self.cfg.warmup);
        Window {
            start_ns,
            end_ns: start_ns + secs_ns(self.cfg.duration),
        }
    }

    /// Fixes the players' start (first caller wins) once publishers are settled, or when
    /// `force`; returns it if known.
    fn try_fix_start(&self, force: bool) -> Option<u64> {
        let known = self.players_start.load(Ordering::Acquire);
        if known != 0 {
            return Some(known);
        }
        let settled = self.pubs_settled.load(Ordering::Acquire) >= self.cfg.publish;
        if !settled && !force && mono_ns() < self.publish_limit() {
            return None;
        }
        let start = mono_ns() + secs_ns(self.cfg.settle);
        match self
            .players_start
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Some(start),
            Err(other) => Some(other),
        }
    }

    /// When the players start even if publishers are still connecting.
    fn publish_limit(&self) -> u64 {
        self.t0 + secs_ns(self.cfg.connect_timeout + 1.0)
    }
}

/// Parses the URL templates and checks the configuration.
fn targets(cfg: &LoadConfig) -> Result<(Vec<Target>, Vec<Vec<Target>>), String> {
    let mut publish = Vec::new();
    if cfg.publish > 0 {
        let template = cfg
            .publish_url
            .as_deref()
            .ok_or("--publish needs --publish-url")?;
        if cfg.file.is_none() {
            return Err("--publish needs --file".into());
        }
        for i in 0..cfg.publish {
            let t = Target::parse(&expand(template, i))?;
            if t.proto() != Proto::Rtmp {
                return Err("--publish-url must be an rtmp:// URL".into());
            }
            publish.push(t);
        }
    }
    if cfg.play > 0 && cfg.play_urls.is_empty() {
        return Err("--play needs --play-url".into());
    }
    let streams = cfg.streams.min(cfg.play.max(1));
    let play = cfg
        .play_urls
        .iter()
        .map(|template| {
            (0..streams)
                .map(|i| Target::parse(&expand(template, i)))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((publish, play))
}

/// Runs the load and returns its report (the caller prints and saves it).
pub fn run(cfg: LoadConfig) -> Result<Report, String> {
    if cfg.threads == 0 || cfg.streams == 0 || cfg.max_connecting == 0 {
        return Err("--threads, --streams and the connect limit must be at least 1".into());
    }
    if cfg.duration.is_nan() || cfg.duration <= 0.0 {
        return Err("--duration must be positive".into());
    }
    let (publish_targets, play_targets) = targets(&cfg)?;
    let threads = cfg.threads;
    let shared = Arc::new(Shared {
        cfg,
        publish_targets,
        play_targets,
        t0: mono_ns(),
        next_exec: AtomicUsize::new(0),
        pubs_settled: AtomicUsize::new(0),
        players_start: AtomicU64::new(0),
        results: Mutex::new(Vec::new()),
        results_ready: Condvar::new(),
    });
    let for_pool = shared.clone();
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(threads))
        .name("bench")
        .on_all_shards(move || {
            let shared = for_pool.clone();
            async move { executor_main(shared).await }
        })
        .map_err(|e| format!("starting {threads} executors: {e}"))?;
    let report = measure(&shared);
    // The executors are dropped with the process: the caller exits right after the report.
    std::mem::forget(pool);
    Ok(report)
}

/// One executor: its share of publishers and players (round-robin), then its summary.
async fn executor_main(shared: Arc<Shared>) {
    let cfg = &shared.cfg;
    let idx = shared.next_exec.fetch_add(1, Ordering::AcqRel);
    let ex = Rc::new(exec::Exec::new(shared.clone()));
    let mut tasks = Vec::new();
    for i in (idx..cfg.publish).step_by(cfg.threads) {
        let rec = Rc::new(RefCell::new(PubRec {
            stream: i as u32,
            state: exec::ConnState::Pending,
            frames: 0,
            bytes: 0,
            disconnected: false,
        }));
        ex.pubs.borrow_mut().push(rec.clone());
        let file = cfg.file.clone().expect("checked: publishers need a file");
        let target = shared.publish_targets[i].clone();
        tasks.push(glommio::spawn_local(publisher::run(
            ex.clone(),
            rec,
            target,
            file,
        )));
    }
    let players_start = loop {
        if let Some(start) = shared.try_fix_start(false) {
            break start;
        }
        glommio::timer::sleep(Duration::from_millis(5)).await;
    };
    let window = shared.window(players_start);
    ex.window.set(Some(window));
    let join_ns = secs_ns(cfg.join_over) as u128;
    for j in (idx..cfg.play).step_by(cfg.threads) {
        let stream = j % shared.play_targets[0].len();
        let target = shared.play_targets[j % shared.play_targets.len()][stream].clone();
        let at = players_start + (join_ns * j as u128 / cfg.play as u128) as u64;
        let track = Track::new(stream as u32, window, at);
        let rec = Rc::new(RefCell::new(PlayerRec::new(target.proto(), track)));
        ex.players.borrow_mut().push(rec.clone());
        tasks.push(glommio::spawn_local(player::run(
            ex.clone(),
            rec,
            target,
            at,
        )));
    }
    sleep_until(window.end_ns).await;
    let summary = ex.snapshot();
    shared.results.lock().expect("results lock").push(summary);
    shared.results_ready.notify_all();
    drop(tasks);
}

/// Server samples of the main thread.
#[derive(Debug, Default)]
struct Samples {
    rss_baseline: u64,
    rss_peak: u64,
    rss_end: u64,
    server_cpu: Option<f64>,
    self_cpu: Option<f64>,
    /// Machine busy and softirq seconds over the window.
    system_cpu: Option<(f64, f64)>,
}

/// Main thread: samples the server and this process over the timeline, then waits for the
/// executors' summaries (at most until the hard deadline) and builds the report.
fn measure(shared: &Shared) -> Report {
    let cfg = &shared.cfg;
    let players_start = loop {
        let force = mono_ns() > shared.publish_limit() + secs_ns(1.0);
        if let Some(start) = shared.try_fix_start(force) {
            break start;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let window = shared.window(players_start);
    let pids = &cfg.server_pids;
    let rss = || procfs::mem_sum(pids).map_or(0, |m| m.rss_kib);
    let mut s = Samples::default();
    block_until(players_start.saturating_sub(secs_ns(0.02)));
    s.rss_baseline = rss();
    s.rss_peak = s.rss_baseline;
    let mut cpu_start = None;
    let mut next = mono_ns();
    loop {
        let now = mono_ns();
        if cpu_start.is_none() && now >= window.start_ns {
            cpu_start = Some((
                procfs::cpu_seconds_sum(pids),
                procfs::cpu_seconds("self"),
                procfs::system_cpu_seconds(),
            ));
        }
        if now >= window.end_ns {
            break;
        }
        if now >= next {
            s.rss_peak = s.rss_peak.max(rss());
            next += SAMPLE_PERIOD.as_nanos() as u64;
        }
        let mut wake = next.min(window.end_ns);
        if cpu_start.is_none() {
            wake = wake.min(window.start_ns);
        }
        block_until(wake);
    }
    let (server_end, self_end, system_end) = (
        procfs::cpu_seconds_sum(pids),
        procfs::cpu_seconds("self"),
        procfs::system_cpu_seconds(),
    );
    if let Some((server_start, self_start, system_start)) = cpu_start {
        s.server_cpu = server_end.zip(server_start).map(|(e, b)| e - b);
        s.self_cpu = self_end.zip(self_start).map(|(e, b)| e - b);
        s.system_cpu = system_end
            .zip(system_start)
            .map(|(e, b)| (e.0 - b.0, e.1 - b.1));
    }
    s.rss_end = rss();
    s.rss_peak = s.rss_peak.max(s.rss_end);
    // Wait for the executors' summaries.
    let deadline = window.end_ns + secs_ns(HARD_DEADLINE_SECS);
    let mut results = shared.results.lock().expect("results lock");
    while results.len() < cfg.threads {
        let now = mono_ns();
        if now >= deadline {
            break;
        }
        results = shared
            .results_ready
            .wait_timeout(results, Duration::from_nanos(deadline - now))
            .expect("results lock")
            .0;
    }
    let missing = cfg.threads - results.len();
    let results = std::mem::take(&mut *results);
    let mut report = build_report(cfg, &window, &results, &s);
    if missing > 0 {
        report.errors.push(format!(
            "{missing} executor(s) did not report by the hard deadline"
        ));
    }
    report
}

fn ms(ns_or_us: f64, per_ms: f64) -> f64 {
    ns_or_us / per_ms
}

/// Merges the executors' summaries into the report.
fn build_report(cfg: &LoadConfig, window: &Window, results: &[ExecReport], s: &Samples) -> Report {
    let secs = window.secs();
    let mut r = Report {
        label: cfg.label.clone(),
        window_secs: secs,
        ..Report::default()
    };
    // Publishers.
    let pubs: Vec<_> = results.iter().flat_map(|e| &e.pubs).collect();
    r.publishers.requested = cfg.publish as u64;
    r.publishers.connected = pubs.iter().filter(|p| p.connected).count() as u64;
    r.publishers.failed = r.publishers.requested - r.publishers.connected;
    r.publishers.video_frames_sent = pubs.iter().map(|p| p.frames).sum();
    r.publishers.bytes_sent = pubs.iter().map(|p| p.bytes).sum();
    let sent_by_stream: ahash::AHashMap<u32, u64> = pubs
        .iter()
        .filter(|p| p.connected)
        .map(|p| (p.stream, p.frames))
        .collect();
    // Players.
    let players: Vec<_> = results.iter().flat_map(|e| &e.players).collect();
    let connected: Vec<_> = players.iter().filter(|p| p.connected).collect();
    r.players.requested = cfg.play as u64;
    r.players.connected = connected.len() as u64;
    r.players.failed = r.players.requested - r.players.connected;
    r.players.disconnected = connected.iter().filter(|p| p.disconnected).count() as u64;
    for p in &connected {
        let b = &mut r.players.by_protocol;
        *match p.proto {
            Proto::Rtmp => &mut b.rtmp,
            Proto::Flv => &mut b.flv,
            Proto::Hls => &mut b.hls,
            Proto::Raw => &mut b.raw,
        } += 1;
    }
    // Delivery.
    let d = &mut r.delivered;
    d.bytes = players.iter().map(|p| p.bytes).sum();
    d.gbps = d.bytes as f64 * 8.0 / secs / 1e9;
    d.video_frames = players.iter().map(|p| p.video).sum();
    d.audio_frames = players.iter().map(|p| p.audio).sum();
    let mbps = sorted(
        connected
            .iter()
            .map(|p| p.bytes as f64 * 8.0 / secs / 1e6)
            .collect(),
    );
    d.per_player_mbps = report::MinMedMax {
        min: mbps.first().copied().unwrap_or(0.0),
        p50: percentile_sorted(&mbps, 50.0).unwrap_or(0.0),
        max: mbps.last().copied().unwrap_or(0.0),
    };
    // Frames.
    let streaming: Vec<_> = connected.iter().filter(|p| p.proto != Proto::Hls).collect();
    let f = &mut r.frames;
    f.expected_video = streaming
        .iter()
        .map(|p| match sent_by_stream.get(&p.stream) {
            Some(&sent) => sent,
            None => p.seq_range.map_or(0, |(a, b)| b - a + 1),
        })
        .sum();
    f.lost_video = streaming.iter().map(|p| p.lost).sum();
    f.players_with_loss = streaming.iter().filter(|p| p.lost > 0).count() as u64;
    f.stalls = streaming.iter().map(|p| p.stalls).sum();
    f.keyframe_violations = players.iter().map(|p| p.keyframe_violations).sum();
    f.timestamp_violations = players.iter().map(|p| p.timestamp_violations).sum();
    f.duplicate_video = players.iter().map(|p| p.duplicates).sum();
    f.foreign_stamps = players.iter().map(|p| p.foreign_stamps).sum();
    f.ts_sync_errors = players.iter().map(|p| p.hls.ts_errors).sum();
    f.validation_errors = players.iter().map(|p| p.validation_errors).sum();
    // Latency, lag, join.
    let mut latency = Histogram::new();
    for e in results {
        latency.merge(&e.latency_us);
    }
    if latency.count() > 0 {
        let p = |q| ms(latency.percentile(q).unwrap_or(0) as f64, 1e3);
        r.latency_ms = Some(report::Latency {
            p50: p(50.0),
            p90: p(90.0),
            p99: p(99.0),
            max: ms(latency.max() as f64, 1e3),
            samples: latency.count(),
        });
    }
    let lags = sorted(
        streaming
            .iter()
            .filter_map(|p| p.lag_us)
            .map(|us| ms(f64::from(us), 1e3))
            .collect(),
    );
    if !lags.is_empty() {
        r.lag_ms = Some(report::Lag {
            p50: percentile_sorted(&lags, 50.0).unwrap_or(0.0),
            p99: percentile_sorted(&lags, 99.0).unwrap_or(0.0),
            max: lags.last().copied().unwrap_or(0.0),
        });
    }
    let joins = sorted(
        streaming
            .iter()
            .filter_map(|p| p.join_ns)
            .map(|ns| ms(ns as f64, 1e6))
            .collect(),
    );
    if !joins.is_empty() {
        let p = |q| percentile_sorted(&joins, q).unwrap_or(0.0);
        r.join_ms = Some(report::Join {
            p50: p(50.0),
            p90: p(90.0),
            p99: p(99.0),
            max: joins.last().copied().unwrap_or(0.0),
            samples: joins.len() as u64,
        });
    }
    // HLS.
    let hls: Vec<_> = players.iter().filter(|p| p.proto == Proto::Hls).collect();
    if !hls.is_empty() {
        r.hls = Some(report::Hls {
            segments: hls.iter().map(|p| p.hls.segments).sum(),
            errors: hls.iter().map(|p| p.hls.errors).sum(),
            playlists: hls.iter().map(|p| p.hls.playlists).sum(),
        });
    }
    // Server and bench CPU.
    let gbits = r.delivered.bytes as f64 * 8.0 / 1e9;
    if !cfg.server_pids.is_empty() {
        let cpu = s.server_cpu.unwrap_or(0.0);
        r.server = Some(report::Server {
            pids: cfg.server_pids.clone(),
            cpu_seconds: cpu,
            cpu_pct: cpu / secs * 100.0,
            cpu_sec_per_gbit: if gbits > 0.0 { cpu / gbits } else { 0.0 },
            rss_baseline_kib: s.rss_baseline,
            rss_peak_kib: s.rss_peak,
            rss_end_kib: s.rss_end,
            rss_per_player_kib: if r.players.connected > 0 {
                (s.rss_end as f64 - s.rss_baseline as f64) / r.players.connected as f64
            } else {
                0.0
            },
        });
        if s.server_cpu.is_none() {
            r.errors
                .push("server CPU could not be read from /proc (wrong --server-pid?)".into());
        }
    }
    let (system, softirq) = s.system_cpu.unwrap_or_default();
    r.bench = report::Bench {
        threads: cfg.threads as u64,
        cpu_pct: s.self_cpu.unwrap_or(0.0) / secs * 100.0,
        system_cpu_pct: system / secs * 100.0,
        softirq_pct: softirq / secs * 100.0,
        cpus: procfs::online_cpus() as u64,
        rss_peak_kib: procfs::mem("self").map_or(0, |m| m.hwm_kib),
    };
    // Errors: distinct messages, first occurrence first, with counts.
    let mut errors: Vec<(String, u64)> = Vec::new();
    for (msg, n) in results.iter().flat_map(|e| &e.errors) {
        match errors.iter_mut().find(|e| &e.0 == msg) {
            Some(e) => e.1 += n,
            None => errors.push((msg.clone(), *n)),
        }
    }
    let listed: Vec<String> = errors
        .into_iter()
        .take(REPORT_ERRORS)
        .map(|(msg, n)| if n > 1 { format!("{msg} (x{n})") } else { msg })
        .collect();
    r.errors.splice(0..0, listed);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{self, FanoutConfig};
    use crate::flvfile::synth_file;

    /// raw-fanout in this process, four raw players: every frame arrives, stamped.
    #[test]
    fn raw_players_against_the_fanout() {
        let file = Arc::new(FlvFile::parse(synth_file(300)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let fanout = FanoutConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            file: file.clone(),
            threads: 1,
            max_behind: 4 << 20,
            exit_after: 8.0,
        };
        std::thread::spawn(move || fanout::run(fanout, move |a| tx.send(a).unwrap()));
        let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let cfg = LoadConfig {
            file: Some(file),
            publish: 0,
            publish_url: None,
            play: 4,
            play_urls: vec![format!("tcp://{addr}")],
            streams: 1,
            join_over: 0.2,
            settle: 0.1,
            warmup: 1.5,
            duration: 2.0,
            threads: 2,
            server_pids: vec![std::process::id()],
            label: "test".into(),
            max_connecting: 256,
            connect_timeout: 5.0,
            read_buf: 64 * 1024,
        };
        let r = run(cfg).unwrap();
        assert_eq!(r.players.connected, 4, "{:?}", r.errors);
        assert_eq!(r.players.by_protocol.raw, 4);
        assert_eq!(r.frames.lost_video, 0);
        assert_eq!(r.frames.validation_errors, 0);
        assert_eq!(r.frames.stalls, 0);
        // 2 s of 30 fps video per player, give or take the window's edges.
        let expected = r.frames.expected_video;
        assert!((4 * 55..=4 * 65).contains(&expected), "{expected}");
        assert!(r.delivered.video_frames.abs_diff(expected) <= 4);
        let latency = r.latency_ms.expect("stamped frames");
        assert_eq!(latency.samples, r.delivered.video_frames);
        assert!(latency.p50 < 100.0, "{latency:?}");
        assert_eq!(r.join_ms.unwrap().samples, 4);
        assert!(r.server.is_some());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
}
