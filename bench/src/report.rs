//! The JSON report of a `load` run. Field names are a contract with the orchestrator
//! (bench/run.py); fields beyond the contract are additions, never renames.

use serde::{Deserialize, Serialize};

/// One `load` run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub label: String,
    pub window_secs: f64,
    pub publishers: Publishers,
    pub players: Players,
    pub delivered: Delivered,
    pub frames: Frames,
    pub latency_ms: Option<Latency>,
    pub lag_ms: Option<Lag>,
    pub join_ms: Option<Join>,
    pub server: Option<Server>,
    pub bench: Bench,
    /// HLS players' segment counts (an addition; `null` without HLS players).
    #[serde(default)]
    pub hls: Option<Hls>,
    /// First few distinct error messages, with their counts.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Publishers {
    pub requested: u64,
    pub connected: u64,
    pub failed: u64,
    /// Stamped video frames sent during the window.
    pub video_frames_sent: u64,
    /// Bytes written to the sockets during the window.
    pub bytes_sent: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Players {
    pub requested: u64,
    pub connected: u64,
    pub failed: u64,
    pub by_protocol: ByProtocol,
    /// Connected players whose connection ended before the window did (an addition).
    #[serde(default)]
    pub disconnected: u64,
}

/// Connected players per protocol.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ByProtocol {
    pub rtmp: u64,
    pub flv: u64,
    pub hls: u64,
    pub raw: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Delivered {
    pub bytes: u64,
    pub gbps: f64,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub per_player_mbps: MinMedMax,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MinMedMax {
    pub min: f64,
    pub p50: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Frames {
    pub expected_video: u64,
    pub lost_video: u64,
    pub players_with_loss: u64,
    pub stalls: u64,
    /// Sum of the violations below (each an addition).
    pub validation_errors: u64,
    /// First video frame after a sequence header was not a keyframe (an addition).
    #[serde(default)]
    pub keyframe_violations: u64,
    /// A track's timestamp went backwards (an addition).
    #[serde(default)]
    pub timestamp_violations: u64,
    /// Video frames received again or out of order: a stamp sequence number not above the
    /// player's last one (an addition).
    #[serde(default)]
    pub duplicate_video: u64,
    /// Frames stamped with another stream's index (an addition).
    #[serde(default)]
    pub foreign_stamps: u64,
    /// MPEG-TS packets without the sync byte, HLS (an addition).
    #[serde(default)]
    pub ts_sync_errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lag {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Join {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub samples: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Server {
    pub pids: Vec<u32>,
    pub cpu_seconds: f64,
    pub cpu_pct: f64,
    pub cpu_sec_per_gbit: f64,
    pub rss_baseline_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
    pub rss_per_player_kib: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Bench {
    pub threads: u64,
    pub cpu_pct: f64,
    /// The whole machine's busy CPU over the window, 100 = one core (an addition: what is
    /// left after the server and the generator is other load, or softirq work).
    #[serde(default)]
    pub system_cpu_pct: f64,
    /// The machine's softirq CPU over the window, 100 = one core (an addition; on loopback
    /// it is mostly TCP receive work: with tick-based CPU accounting it is charged to the
    /// process it interrupts, with IRQ time accounting to no process).
    #[serde(default)]
    pub softirq_pct: f64,
    /// Online CPUs (an addition).
    #[serde(default)]
    pub cpus: u64,
    /// Peak resident memory of the generator, KiB (an addition).
    #[serde(default)]
    pub rss_peak_kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Hls {
    /// Segments fetched completely during the window.
    pub segments: u64,
    /// Failed playlist or segment requests (whole run).
    pub errors: u64,
    /// Playlist polls during the window.
    pub playlists: u64,
}

impl Report {
    /// The human-readable table printed on stdout.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut row = |k: &str, v: String| s.push_str(&format!("{k:<14} {v}\n"));
        row("label", self.label.clone());
        row("window", format!("{:.1} s", self.window_secs));
        let p = &self.publishers;
        row(
            "publishers",
            format!(
                "{}/{} connected, {} failed, {} frames, {:.2} Mbit/s sent",
                p.connected,
                p.requested,
                p.failed,
                p.video_frames_sent,
                p.bytes_sent as f64 * 8.0 / self.window_secs.max(1e-9) / 1e6
            ),
        );
        let pl = &self.players;
        let b = &pl.by_protocol;
        row(
            "players",
            format!(
                "{}/{} connected, {} failed, {} disconnected (rtmp {}, flv {}, hls {}, raw {})",
                pl.connected, pl.requested, pl.failed, pl.disconnected, b.rtmp, b.flv, b.hls, b.raw
            ),
        );
        let d = &self.delivered;
        row(
            "delivered",
            format!(
                "{:.3} Gbit/s, {} bytes, {} video / {} audio frames",
                d.gbps, d.bytes, d.video_frames, d.audio_frames
            ),
        );
        let m = &d.per_player_mbps;
        row(
            "per player",
            format!(
                "{:.3} / {:.3} / {:.3} Mbit/s (min / p50 / max)",
                m.min, m.p50, m.max
            ),
        );
        let f = &self.frames;
        row(
            "frames",
            format!(
                "expected {}, lost {} ({} players), stalls {}, validation errors {} \
                 (keyframe {}, timestamp {}, duplicate {}, foreign {}, ts sync {})",
                f.expected_video,
                f.lost_video,
                f.players_with_loss,
                f.stalls,
                f.validation_errors,
                f.keyframe_violations,
                f.timestamp_violations,
                f.duplicate_video,
                f.foreign_stamps,
                f.ts_sync_errors
            ),
        );
        match &self.latency_ms {
            Some(l) => row(
                "latency ms",
                format!(
                    "p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2} ({} samples)",
                    l.p50, l.p90, l.p99, l.max, l.samples
                ),
            ),
            None => row("latency ms", "n/a".into()),
        }
        match &self.lag_ms {
            Some(l) => row(
                "lag ms",
                format!("p50 {:.2}, p99 {:.2}, max {:.2}", l.p50, l.p99, l.max),
            ),
            None => row("lag ms", "n/a".into()),
        }
        match &self.join_ms {
            Some(j) => row(
                "join ms",
                format!(
                    "p50 {:.1}, p90 {:.1}, p99 {:.1}, max {:.1} ({} samples)",
                    j.p50, j.p90, j.p99, j.max, j.samples
                ),
            ),
            None => row("join ms", "n/a".into()),
        }
        if let Some(h) = &self.hls {
            row(
                "hls",
                format!(
                    "{} segments, {} playlists, {} errors",
                    h.segments, h.playlists, h.errors
                ),
            );
        }
        match &self.server {
            Some(sv) => {
                row(
                    "server cpu",
                    format!(
                        "{:.2} s ({:.1} %), {:.3} s/Gbit  pids {:?}",
                        sv.cpu_seconds, sv.cpu_pct, sv.cpu_sec_per_gbit, sv.pids
                    ),
                );
                row(
                    "server rss",
                    format!(
                        "baseline {} KiB, peak {} KiB, end {} KiB, {:.1} KiB/player",
                        sv.rss_baseline_kib, sv.rss_peak_kib, sv.rss_end_kib, sv.rss_per_player_kib
                    ),
                );
            }
            None => row("server", "n/a (no --server-pid)".into()),
        }
        row(
            "bench",
            format!(
                "{} threads, {:.1} % cpu, {} MiB peak; machine {:.1} % busy of {} % \
                 ({:.1} % softirq)",
                self.bench.threads,
                self.bench.cpu_pct,
                self.bench.rss_peak_kib / 1024,
                self.bench.system_cpu_pct,
                self.bench.cpus * 100,
                self.bench.softirq_pct
            ),
        );
        for e in &self.errors {
            row("error", e.clone());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_field_names() {
        let r = Report::default();
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "label",
            "window_secs",
            "publishers",
            "players",
            "delivered",
            "frames",
            "latency_ms",
            "lag_ms",
            "join_ms",
            "server",
            "bench",
            "errors",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v["latency_ms"].is_null());
        assert!(v["players"]["by_protocol"].get("raw").is_some());
        assert!(v["delivered"]["per_player_mbps"].get("p50").is_some());
        assert!(v["frames"].get("players_with_loss").is_some());
        assert!(!r.table().is_empty());
    }
}
