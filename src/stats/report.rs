//! Rendering the shards' reports: `/stat/livestat` JSON and `/metrics` text.

use super::{Proto, Role, SessionReport, ShardReport, StreamCodecs};
use crate::limits::Limit;
use crate::media::Codec;
use serde_json::{json, Value};
use std::fmt::Write;

/// Why `/stat/livestat?room=` has nothing to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LivestatError {
    /// No publisher or player of that stream (livego's 404 text).
    RoomNotFound,
}

/// livego's `data` object: `{"publishers":[...],"players":[...]}` over every shard, only the
/// stream `room` (`app/room`) when given.
pub fn livestat(reports: &[ShardReport], room: Option<&str>) -> Result<Value, LivestatError> {
    let sessions: Vec<&SessionReport> = reports
        .iter()
        .flat_map(|r| &r.sessions)
        .filter(|s| room.is_none_or(|k| s.key == k))
        .collect();
    if room.is_some() && sessions.is_empty() {
        return Err(LivestatError::RoomNotFound);
    }
    let mut sessions = merge_hls(sessions);
    let codecs: ahash::AHashMap<&str, &StreamCodecs> = reports
        .iter()
        .flat_map(|r| &r.streams)
        .map(|c| (c.key.as_str(), c))
        .collect();
    for s in &mut sessions {
        if let Some(c) = codecs.get(s.key.as_str()) {
            s.video_codec = c.video.map(Codec::name);
            s.audio_codec = c.audio.map(Codec::name);
            s.hls = Some(c.hls());
        }
    }
    sessions.sort_by(|a, b| {
        (&a.key, &a.connected_at, &a.remote).cmp(&(&b.key, &b.connected_at, &b.remote))
    });
    let of = |role| -> Vec<&SessionReport> { sessions.iter().filter(|s| s.role == role).collect() };
    Ok(json!({ "publishers": of(Role::Publisher), "players": of(Role::Player) }))
}

/// An HLS viewer's requests come over several connections, which may land on different
/// shards: list it once, with its figures summed (shard: where it was first seen).
fn merge_hls(sessions: Vec<&SessionReport>) -> Vec<SessionReport> {
    let mut out: Vec<SessionReport> = Vec::with_capacity(sessions.len());
    let mut hls: ahash::AHashMap<(&str, &str), usize> = ahash::AHashMap::new();
    for s in sessions {
        if s.protocol != "hls" {
            out.push(s.clone());
            continue;
        }
        match hls.get(&(s.key.as_str(), s.remote.as_str())) {
            Some(&i) => {
                let m = &mut out[i];
                m.total_bytes += s.total_bytes;
                m.speed += s.speed;
                if s.connected_at < m.connected_at {
                    m.connected_at.clone_from(&s.connected_at);
                    m.shard = s.shard;
                }
            }
            None => {
                hls.insert((&s.key, &s.remote), out.len());
                out.push(s.clone());
            }
        }
    }
    out
}

/// One metric family: HELP, TYPE, then its samples.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// A label value as the text format wants it (backslash, quote and newline escaped).
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A family with one sample per (listener, shard).
fn per_proto(
    out: &mut String,
    reports: &[ShardReport],
    (name, kind, help): (&str, &str, &str),
    field: fn(&ShardReport) -> &[u64; 4],
) {
    let mut f = Family::start(out, name, kind, help);
    for r in reports {
        let shard = r.shard.to_string();
        for p in Proto::ALL {
            let v = field(r)[p as usize];
            f.sample(name, &[("protocol", p.label()), ("shard", &shard)], v);
        }
    }
}

/// One sample per live stream and track: its codec, and whether HLS carries it.
fn stream_codecs(out: &mut String, reports: &[ShardReport]) {
    let name = "shardcast_stream_codec_info";
    let mut f = Family::start(
        out,
        name,
        "gauge",
        "Codec of each live stream's tracks (1 per track); hls=\"no\" when HLS cannot carry it.",
    );
    let mut streams: Vec<&StreamCodecs> = reports.iter().flat_map(|r| &r.streams).collect();
    streams.sort_by(|a, b| a.key.cmp(&b.key));
    for s in streams {
        for (track, codec) in [("video", s.video), ("audio", s.audio)] {
            let Some(codec) = codec else { continue };
            let hls = if codec.over_hls() { "yes" } else { "no" };
            f.sample(
                name,
                &[
                    ("stream", &s.key),
                    ("track", track),
                    ("codec", codec.name()),
                    ("hls", hls),
                ],
                1,
            );
        }
    }
}

/// A family with one sample per shard.
fn per_shard(
    out: &mut String,
    reports: &[ShardReport],
    (name, kind, help): (&str, &str, &str),
    field: fn(&ShardReport) -> u64,
) {
    let mut f = Family::start(out, name, kind, help);
    for r in reports {
        f.sample(name, &[("shard", &r.shard.to_string())], field(r));
    }
}

/// Every shard's figures in the Prometheus text format (version 0.0.4), then the relay
/// sessions per (kind, state) (process-wide: a relay is not a shard's figure).
pub fn metrics_text(reports: &[ShardReport], relays: &[(&str, &str, u64)]) -> String {
    let mut out = String::new();
    let o = &mut out;
    per_proto(
        o,
        reports,
        (
            "shardcast_connections",
            "gauge",
            "Open connections, by listener and shard.",
        ),
        |r| &r.open,
    );
    per_proto(
        o,
        reports,
        (
            "shardcast_connections_accepted_total",
            "counter",
            "Connections accepted.",
        ),
        |r| &r.accepted,
    );
    per_proto(
        o,
        reports,
        (
            "shardcast_connections_refused_total",
            "counter",
            "Connections refused at accept (max_connections or max_connections_per_ip).",
        ),
        |r| &r.refused,
    );
    per_proto(
        o,
        reports,
        (
            "shardcast_received_bytes_total",
            "counter",
            "Bytes read from peers.",
        ),
        |r| &r.bytes_in,
    );
    per_proto(
        o,
        reports,
        (
            "shardcast_sent_bytes_total",
            "counter",
            "Bytes written to peers.",
        ),
        |r| &r.bytes_out,
    );
    sessions(o, reports);
    stream_codecs(o, reports);
    per_shard(
        o,
        reports,
        (
            "shardcast_streams",
            "gauge",
            "Streams a shard holds (home or replica).",
        ),
        |r| r.hub.streams,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_live_streams",
            "gauge",
            "Streams with a live publisher, on their home shard.",
        ),
        |r| r.hub.live_streams,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_dropped_frames_total",
            "counter",
            "Frames skipped for players that fell behind.",
        ),
        |r| r.dropped_frames,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_slow_players_closed_total",
            "counter",
            "Players closed because they could not keep up.",
        ),
        |r| r.slow_closed,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_mesh_sent_total",
            "counter",
            "Messages sent to other shards.",
        ),
        |r| r.hub.mesh_sent,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_mesh_received_total",
            "counter",
            "Messages received from other shards.",
        ),
        |r| r.hub.mesh_received,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_mesh_full_total",
            "counter",
            "Media messages not sent because the peer shard's channel was full.",
        ),
        |r| r.hub.mesh_full,
    );
    http_responses(o, reports);
    limit_refusals(o, reports);
    per_shard(
        o,
        reports,
        (
            "shardcast_pending_message_bytes",
            "gauge",
            "Bytes of incomplete RTMP messages held (bounded by max_shard_pending_bytes).",
        ),
        |r| r.hub.pending_bytes,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_tasks",
            "gauge",
            "Tasks the shard runs: one per connection, plus writers, relays, recordings, timers.",
        ),
        |r| r.hub.tasks,
    );
    per_shard(
        o,
        reports,
        (
            "shardcast_hls_hook_sessions",
            "gauge",
            "HLS viewers allowed by on_play and followed until on_stop (all shards: at most hooks.max_hls_sessions).",
        ),
        |r| r.hub.hls_hook_sessions,
    );
    hook_metrics(o, reports);
    relay_gauge(o, relays);
    out
}

/// Hook calls by action and result, their summed latency, and refusals because of hooks.
fn hook_metrics(out: &mut String, reports: &[ShardReport]) {
    use crate::hooks::Action;
    use crate::stats::HookResult;
    let name = "shardcast_hook_calls_total";
    let mut f = Family::start(
        out,
        name,
        "counter",
        "HTTP hook calls, by action and result (allow = 2xx, deny = other status, timeout, \
         error = unreachable or not HTTP, dropped = notification over hooks.max_in_flight).",
    );
    for r in reports {
        let shard = r.shard.to_string();
        for action in Action::ALL {
            for result in HookResult::ALL {
                let n = r.hooks.calls[action.index()][result as usize];
                let labels = [
                    ("action", action.name()),
                    ("result", result.label()),
                    ("shard", shard.as_str()),
                ];
                f.sample(name, &labels, n);
            }
        }
    }
    let sum = "shardcast_hook_latency_milliseconds_sum";
    let mut f = Family::start(
        out,
        sum,
        "counter",
        "Summed duration of hook calls (answered or timed out), in milliseconds; divide by \
         shardcast_hook_latency_milliseconds_count for the mean.",
    );
    for r in reports {
        let shard = r.shard.to_string();
        for action in Action::ALL {
            let labels = [("action", action.name()), ("shard", shard.as_str())];
            f.sample(sum, &labels, r.hooks.latency_ms[action.index()]);
        }
    }
    let count = "shardcast_hook_latency_milliseconds_count";
    let mut f = Family::start(
        out,
        count,
        "counter",
        "Hook calls counted in shardcast_hook_latency_milliseconds_sum.",
    );
    for r in reports {
        let shard = r.shard.to_string();
        for action in Action::ALL {
            let calls = &r.hooks.calls[action.index()];
            let timed: u64 = calls.iter().sum::<u64>() - calls[HookResult::Dropped as usize];
            let labels = [("action", action.name()), ("shard", shard.as_str())];
            f.sample(count, &labels, timed);
        }
    }
    let name = "shardcast_hook_denials_total";
    let mut f = Family::start(
        out,
        name,
        "counter",
        "Connects, publishes and plays refused because of a hook: denied (non-2xx answer) or \
         failed (no usable answer, with a deny failure policy).",
    );
    for r in reports {
        let shard = r.shard.to_string();
        for action in Action::ALL.into_iter().filter(|a| a.decides()) {
            for (i, why) in ["denied", "failed"].into_iter().enumerate() {
                let labels = [
                    ("action", action.name()),
                    ("reason", why),
                    ("shard", shard.as_str()),
                ];
                f.sample(name, &labels, r.hooks.denials[action.index()][i]);
            }
        }
    }
}

fn relay_gauge(out: &mut String, relays: &[(&str, &str, u64)]) {
    let name = "shardcast_relays";
    let mut f = Family::start(
        out,
        name,
        "gauge",
        "Relay sessions (pull, push, static_push), by state.",
    );
    for (kind, state, n) in relays {
        f.sample(name, &[("kind", kind), ("state", state)], *n);
    }
}

/// Refusals at each configured limit, by shard.
fn limit_refusals(out: &mut String, reports: &[ShardReport]) {
    let name = "shardcast_limit_refusals_total";
    let mut f = Family::start(
        out,
        name,
        "counter",
        "Connections, publishes and plays refused at a configured limit (the config key).",
    );
    for limit in Limit::ALL {
        for r in reports {
            let shard = r.shard.to_string();
            let labels = [("limit", limit.label()), ("shard", shard.as_str())];
            f.sample(name, &labels, r.limit_refusals[limit.index()]);
        }
    }
}

/// Sessions by role and protocol.
fn sessions(out: &mut String, reports: &[ShardReport]) {
    let name = "shardcast_sessions";
    let mut f = Family::start(out, name, "gauge", "Publishing and playing sessions.");
    for r in reports {
        let mut counts: Vec<((&str, &str), u64)> = Vec::new();
        for s in &r.sessions {
            let role = match s.role {
                Role::Publisher => "publisher",
                Role::Player => "player",
            };
            match counts.iter_mut().find(|(k, _)| *k == (role, s.protocol)) {
                Some((_, n)) => *n += 1,
                None => counts.push(((role, s.protocol), 1)),
            }
        }
        counts.sort();
        let shard = r.shard.to_string();
        for ((role, protocol), n) in counts {
            f.sample(
                name,
                &[("role", role), ("protocol", protocol), ("shard", &shard)],
                n,
            );
        }
    }
}

fn http_responses(out: &mut String, reports: &[ShardReport]) {
    let name = "shardcast_http_responses_total";
    let mut f = Family::start(
        out,
        name,
        "counter",
        "HTTP responses, by listener and status.",
    );
    for r in reports {
        let shard = r.shard.to_string();
        for (p, status, n) in &r.http {
            let status = status.to_string();
            f.sample(
                name,
                &[
                    ("listener", p.label()),
                    ("status", &status),
                    ("shard", &shard),
                ],
                *n,
            );
        }
    }
}
