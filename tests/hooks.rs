//! End-to-end HTTP hooks: a real hook server (a std::net listener thread in the test) records
//! every call and answers by token: `token=good` allows, `token=map` allows with
//! `{"room": "mapped"}`, `token=revocable` allows until the test revokes it, anything else
//! gets 403; notifications get 200. Publish and play over
//! RTMP, HTTP-FLV and HLS are allowed and denied through it, notifications arrive with their
//! fields, and a hook server that hangs or is down denies within `hooks.timeout_ms` while
//! another stream flows without losing a frame.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::ffmpeg::quiet_ffmpeg;
use common::hostile::HealthyStream;
use common::server::scratch_dir;
use common::*;
use serde_json::Value;

/// How long a hook call, a status or a log line may take to show up.
const WAIT: Duration = Duration::from_secs(15);
/// `hooks.timeout_ms` of the servers under test.
const HOOK_TIMEOUT_MS: u64 = 1000;

/// What the test hook server does with a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer by token.
    Answer,
    /// Accept, read the request and never answer.
    Hang,
}

/// A hook server on 127.0.0.1: records each call's JSON body (with the request path under
/// `"_path"`) and answers per [`Mode`].
struct HookServer {
    addr: SocketAddr,
    calls: Arc<(Mutex<Vec<Value>>, Condvar)>,
    /// Connections held open by a hanging server (never read: holding is the point).
    _held: Arc<Mutex<Vec<Box<dyn Send>>>>,
    /// Whether `token=revocable` is refused.
    revoked: Arc<AtomicBool>,
}

impl HookServer {
    fn start(mode: Mode) -> HookServer {
        Self::start_with(mode, None)
    }

    /// An HTTPS hook server with this certificate and key (PEM files).
    fn start_tls(cert: &Path, key: &Path) -> HookServer {
        Self::start_with(Mode::Answer, Some(tls_config(cert, key)))
    }

    fn start_with(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> HookServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls: Arc<(Mutex<Vec<Value>>, Condvar)> = Arc::default();
        let held: Arc<Mutex<Vec<Box<dyn Send>>>> = Arc::default();
        let revoked: Arc<AtomicBool> = Arc::default();
        let (c, h, r) = (calls.clone(), held.clone(), revoked.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                stream.set_read_timeout(Some(WAIT)).unwrap();
                let (c, h, r, tls) = (c.clone(), h.clone(), r.clone(), tls.clone());
                thread::spawn(move || match tls {
                    None => serve_hook(stream, mode, &c, &h, &r),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config).unwrap();
                        let stream = rustls::StreamOwned::new(session, stream);
                        serve_hook(stream, mode, &c, &h, &r);
                    }
                });
            }
        });
        HookServer {
            addr,
            calls,
            _held: held,
            revoked,
        }
    }

    /// From now on (`true`) or no longer, `token=revocable` is refused.
    fn revoke(&self, revoked: bool) {
        self.revoked.store(revoked, Ordering::SeqCst);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn calls(&self) -> Vec<Value> {
        self.calls.0.lock().unwrap().clone()
    }

    /// Calls of `action` so far.
    fn count(&self, action: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c["action"] == action)
            .count()
    }

    /// Waits (on the recorder's condition variable) for a call matching `pred`.
    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        let (lock, cond) = &*self.calls;
        let mut calls = lock.lock().unwrap();
        loop {
            if let Some(found) = calls.iter().find(|c| pred(c)) {
                return found.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no hook call {what}; calls: {calls:#?}");
            calls = cond.wait_timeout(calls, left).unwrap().0;
        }
    }
}

/// A server configuration for the certificate and key (PEM files).
fn tls_config(cert: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    Arc::new(config)
}

/// Read one hook request from `stream` (plain or TLS), record it and answer per `mode`.
fn serve_hook<S: Read + Write + Send + 'static>(
    stream: S,
    mode: Mode,
    calls: &(Mutex<Vec<Value>>, Condvar),
    held: &Mutex<Vec<Box<dyn Send>>>,
    revoked: &AtomicBool,
) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let mut call: Value = serde_json::from_slice(&body).expect("hook body is JSON");
    assert!(request_line.starts_with("POST "), "{request_line}");
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    call["_path"] = Value::String(path);
    let (status, answer) = match call["action"].as_str().unwrap_or("") {
        "on_connect" | "on_publish" | "on_play" | "on_update" => {
            match call["query"]["token"].as_str() {
                Some("good") => (200, "{}".to_owned()),
                Some("map") => (200, r#"{"room":"mapped"}"#.to_owned()),
                Some("revocable") if !revoked.load(Ordering::SeqCst) => (200, "{}".to_owned()),
                _ => (403, "go away".to_owned()),
            }
        }
        _ => (200, String::new()),
    };
    {
        let (lock, cond) = calls;
        lock.lock().unwrap().push(call);
        cond.notify_all();
    }
    if mode == Mode::Hang {
        held.lock().unwrap().push(Box::new(reader));
        return;
    }
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    );
    let stream = reader.get_mut();
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// Waits until the sum of metric `name` over samples with `labels` is `want` (/metrics is
/// refreshed once a second); panics with the last value otherwise.
fn wait_metric(server: &Server, name: &str, labels: &[&str], want: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = metric_sum(server, name, labels);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} is {got}, expected {want}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// A config file under a scratch directory; returns its path.
fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = scratch_dir("hooks-config", name);
    let path = dir.join("shardcast.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An HTTP-FLV viewer of `path`, past the status (200) and the FLV signature.
fn flv_viewer(server: &Server, path: &str) -> HttpResponse {
    let mut viewer = http_open(server.httpflv_addr(), "GET", path, &[]).unwrap();
    assert_eq!(viewer.status, 200, "{path}");
    let mut head = [0u8; 3];
    viewer.body.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"FLV", "{path}");
    viewer
}

fn start(name: &str, config: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2", "--config_file", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Server::start(name, &args)
}

/// RTMP publish and play decided by the hook (project's RTMP client): denied by token,
/// allowed by token with the channel-key check still applying, and a hook-mapped room that
/// needs no key; on_unpublish and on_stop arrive with their fields; /metrics counts it all.
#[test]
fn rtmp_publish_and_play_are_decided_by_the_hook() {
    let hook = HookServer::start(Mode::Answer);
    let config = config_file(
        "rtmp",
        &format!(
            "[hooks]\non_publish = [\"{}\"]\non_unpublish = [\"{}\"]\n\
             on_play = [\"{}\"]\non_stop = [\"{}\"]\ntimeout_ms = {HOOK_TIMEOUT_MS}\n\
             server_id = \"node-a\"\n",
            hook.url("/publish"),
            hook.url("/unpublish"),
            hook.url("/play"),
            hook.url("/stop"),
        ),
    );
    let server = start("hooks-rtmp", &config, &[]);
    let addr = server.rtmp_addr();

    // Denied by the hook: Unauthorized, and the hook saw the name, query and client.
    let mut p = RtmpClient::connect(addr, "live").unwrap();
    assert_eq!(
        p.publish("movie?token=bad&x=1"),
        Err("NetStream.Publish.Unauthorized".to_owned())
    );
    let call = hook.wait_for("on_publish bad", |c| c["query"]["token"] == "bad");
    assert_eq!(call["_path"], "/publish");
    assert_eq!(call["action"], "on_publish");
    assert_eq!(call["app"], "live");
    assert_eq!(call["stream"], "movie");
    assert_eq!(call["query"]["x"], "1");
    assert_eq!(call["query_string"], "token=bad&x=1");
    assert_eq!(call["protocol"], "rtmp");
    assert_eq!(call["server_id"], "node-a");
    assert!(call["shard"].as_u64().is_some_and(|s| s < 2), "{call}");
    assert!(call["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(server
        .wait_for_line(|l| l.contains("refused by on_publish hook"), WAIT)
        .is_some());

    // Allowed by the hook without a room: the channel-key check still applies.
    let mut p = RtmpClient::connect(addr, "live").unwrap();
    assert_eq!(
        p.publish("nokey?token=good"),
        Err("NetStream.Publish.BadName".to_owned()),
        "a name that is no key is still refused"
    );
    // The hook allowed it, so it hears that the publish did not happen.
    let refused = hook.wait_for("on_unpublish of the refused publish", |c| {
        c["action"] == "on_unpublish" && c["stream"] == "nokey"
    });
    assert_eq!(refused["query"]["token"], "good");
    let key = key_of(&server, "movie");
    let mut keyed = RtmpClient::connect(addr, "live").unwrap();
    keyed.publish(&format!("{key}?token=good")).unwrap();
    keyed.delete_stream().unwrap();
    let unpub = hook.wait_for("on_unpublish movie", |c| {
        c["action"] == "on_unpublish" && c["stream"] == "movie"
    });
    assert_eq!(unpub["_path"], "/unpublish");
    assert_eq!(unpub["query"]["token"], "good");

    // A hook-mapped room needs no key; players are decided by the hook too.
    let mut publisher = RtmpClient::connect(addr, "live").unwrap();
    publisher.publish("anything?token=map").unwrap();
    publish_frames(&mut publisher, 0, 30, 0);
    let mut denied = RtmpClient::connect(addr, "live").unwrap();
    assert_eq!(
        denied.play("mapped?token=bad"),
        Err("NetStream.Play.Failed".to_owned())
    );
    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("mapped?token=good").unwrap();
    let media = player.read_media(WAIT, 3);
    assert!(
        media.len() >= 3,
        "the allowed player gets media: {}",
        media.len()
    );
    let play = hook.wait_for("on_play good", |c| {
        c["action"] == "on_play" && c["query"]["token"] == "good"
    });
    assert_eq!(
        (play["stream"].as_str(), play["protocol"].as_str()),
        (Some("mapped"), Some("rtmp"))
    );
    drop(player);
    let stop = hook.wait_for("on_stop", |c| c["action"] == "on_stop");
    assert_eq!(stop["_path"], "/stop");
    assert_eq!(stop["stream"], "mapped");
    assert_eq!(stop["query"]["token"], "good");
    assert_eq!(stop["conn_id"], play["conn_id"]);
    assert_eq!(stop["shard"], play["shard"]);
    drop(publisher);
    hook.wait_for("on_unpublish mapped", |c| {
        c["action"] == "on_unpublish" && c["stream"] == "mapped"
    });

    // /metrics: calls by action and result, latency, denials.
    let calls = |action: &str, result: &str, want: u64| {
        let labels = [
            format!("action=\"{action}\""),
            format!("result=\"{result}\""),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        wait_metric(&server, "shardcast_hook_calls_total", &labels, want);
    };
    calls("on_publish", "deny", 1);
    calls("on_publish", "allow", 3);
    calls("on_play", "deny", 1);
    calls("on_play", "allow", 1);
    calls("on_unpublish", "allow", 3); // the refused one, `movie`, `mapped`
    calls("on_stop", "allow", 1);
    let on_publish = ["action=\"on_publish\""];
    wait_metric(
        &server,
        "shardcast_hook_latency_milliseconds_count",
        &on_publish,
        4,
    );
    for action in ["on_publish", "on_play"] {
        let labels = [
            format!("action=\"{action}\""),
            "reason=\"denied\"".to_owned(),
        ];
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        wait_metric(&server, "shardcast_hook_denials_total", &labels, 1);
    }
}

/// on_connect: the query of the app (`live?token=`) reaches the hook; a denial rejects the
/// connection. The hook URL names `localhost`, so the call goes through the resolver and tries
/// each address (`::1` may come first; the hook server listens on 127.0.0.1 only).
#[test]
fn rtmp_connect_is_decided_by_the_hook() {
    let hook = HookServer::start(Mode::Answer);
    let by_name = hook.url("/connect").replace("127.0.0.1", "localhost");
    let config = config_file(
        "connect",
        &format!("[hooks]\non_connect = [\"{by_name}\"]\n"),
    );
    let server = start("hooks-connect", &config, &["--rtmp_noauth"]);
    let addr = server.rtmp_addr();
    let connect = |query: &str| {
        let app = format!("live?{query}");
        let cfg = shardcast::rtmp::client::ClientConfig::new(&app, &format!("rtmp://{addr}/{app}"));
        RtmpClient::connect_with(addr, cfg)
    };
    assert_eq!(
        connect("token=bad").err(),
        Some("NetConnection.Connect.Rejected".to_owned())
    );
    let mut ok = connect("token=good").unwrap();
    ok.publish("room1").unwrap();
    let call = hook.wait_for("on_connect good", |c| c["query"]["token"] == "good");
    assert_eq!(
        (call["action"].as_str(), call["app"].as_str()),
        (Some("on_connect"), Some("live"))
    );
    assert!(call["tc_url"]
        .as_str()
        .unwrap()
        .ends_with("/live?token=good"));
    // A long query (past the 1,024 bytes of tcUrl kept for stats) reaches the hook whole.
    let long = format!("pad={}&token=good", "x".repeat(2000));
    connect(&long).expect("the token at the end of a long query is seen");
    let call = hook.wait_for("on_connect with a long query", |c| {
        c["query"]["pad"].as_str().is_some_and(|p| p.len() == 2000)
    });
    assert_eq!(call["query"]["token"], "good");
}

/// A real encoder (ffmpeg) pushes with a token; HTTP-FLV and HLS viewers are allowed and
/// denied by theirs, an HLS viewer is hooked once (segment URLs carry its session), and
/// on_stop, on_unpublish and on_record_done arrive.
#[test]
fn ffmpeg_publish_flv_and_hls_viewers_and_notifications() {
    require_ffmpeg();
    let hook = HookServer::start(Mode::Answer);
    let config = config_file(
        "media",
        &format!(
            "rtmp_noauth = true\nflv_dir = \"rec\"\nhls_fragment = 1\n\
             [hooks]\non_publish = [\"{u}\"]\non_unpublish = [\"{u}\"]\non_play = [\"{u}\"]\n\
             on_stop = [\"{u}\"]\non_record_done = [\"{u}\"]\n\
             [[server]]\nappname = \"live\"\nlive = true\nflv = true\nhls = true\napi = true\n\
             record = true\n",
            u = hook.url("/hook")
        ),
    );
    let server = start("hooks-media", &config, &[]);

    // Denied push: ffmpeg gives up, and no stream appears.
    let mut bad = push(&server.rtmp_url("live/show?token=bad"), &test_media(), true);
    hook.wait_for("on_publish bad", |c| {
        c["action"] == "on_publish" && c["query"]["token"] == "bad"
    });
    let status = wait_exit(&mut bad, WAIT).expect("a refused ffmpeg exits");
    assert!(!status.success());

    let mut ffmpeg = push_looped(&server.rtmp_url("live/show?token=good"), &test_media());
    let published = hook.wait_for("on_publish good", |c| {
        c["action"] == "on_publish" && c["query"]["token"] == "good"
    });
    assert_eq!(published["stream"], "show");
    server
        .wait_for_line(
            |l| l.contains("publish started") && l.contains("live/show"),
            WAIT,
        )
        .expect("the allowed push publishes");

    // HTTP-FLV.
    let (status, _, body) = http_get(server.httpflv_addr(), "/live/show.flv?token=bad");
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("on_play hook denied"));
    let viewer = flv_viewer(&server, "/live/show.flv?token=good");
    let play = hook.wait_for("flv on_play", |c| {
        c["protocol"] == "flv" && c["query"]["token"] == "good"
    });
    assert_eq!(
        (play["action"].as_str(), play["stream"].as_str()),
        (Some("on_play"), Some("show"))
    );
    drop(viewer);
    let stop = hook.wait_for("flv on_stop", |c| {
        c["action"] == "on_stop" && c["protocol"] == "flv"
    });
    assert_eq!(stop["query"]["token"], "good");

    // HLS: denied, then allowed once; segments and reloads are not hooked again.
    let hls = server.hls_addr();
    let (status, _, _) = http_get(hls, "/live/show.m3u8?token=bad");
    assert_eq!(status, 403);
    let (status, _, body) = http_get(hls, "/live/show.m3u8?token=good");
    assert_eq!(status, 200);
    let playlist = String::from_utf8(body).unwrap();
    let segments: Vec<&str> = playlist
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!segments.is_empty(), "{playlist}");
    assert!(
        segments.iter().all(|s| s.contains("?hls_session=")),
        "{playlist}"
    );
    let hls_plays = || {
        hook.calls()
            .iter()
            .filter(|c| c["action"] == "on_play" && c["protocol"] == "hls")
            .count()
    };
    assert_eq!(hls_plays(), 2, "the bad and the good playlist request");
    for segment in &segments {
        let (status, _, data) = http_get(hls, &format!("/live/{segment}"));
        assert_eq!(status, 200, "{segment}");
        assert_eq!(data.first(), Some(&0x47), "a TS segment");
    }
    for _ in 0..3 {
        let (status, _, _) = http_get(hls, "/live/show.m3u8?token=good");
        assert_eq!(status, 200);
    }
    assert_eq!(hls_plays(), 2, "segments and reloads are not hooked again");
    // A segment without a session, or with a forged one, is hooked (and denied).
    let bare = segments[0].split('?').next().unwrap();
    let (status, _, _) = http_get(hls, &format!("/live/{bare}"));
    assert_eq!(status, 403);
    let (status, _, _) = http_get(
        hls,
        &format!("/live/{bare}?hls_session=99999999999.0123456789abcdef0123456789abcdef"),
    );
    assert_eq!(status, 403);
    assert_eq!(hls_plays(), 4);
    // A valid session id opens segments only: the playlist without the token is hooked (and
    // denied), so a leaked segment URL does not give the stream away.
    let session = segments[0].split("hls_session=").nth(1).unwrap();
    let (status, _, _) = http_get(hls, &format!("/live/show.m3u8?hls_session={session}"));
    assert_eq!(status, 403);
    assert_eq!(hls_plays(), 5);
    // A stream that does not exist is a 404 without asking the hook server.
    let (status, _, _) = http_get(hls, "/live/nothing.m3u8?token=good");
    assert_eq!(status, 404);
    assert_eq!(hls_plays(), 5);

    // The publisher ends: on_unpublish, then on_record_done with the file.
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let unpub = hook.wait_for("on_unpublish", |c| c["action"] == "on_unpublish");
    assert_eq!(
        (unpub["stream"].as_str(), unpub["query"]["token"].as_str()),
        (Some("show"), Some("good"))
    );
    let done = hook.wait_for("on_record_done", |c| c["action"] == "on_record_done");
    assert_eq!(
        (done["app"].as_str(), done["stream"].as_str()),
        (Some("live"), Some("show"))
    );
    let file = PathBuf::from(done["file"].as_str().unwrap());
    assert!(
        file.is_absolute() && file.extension().is_some_and(|e| e == "flv"),
        "{file:?}"
    );
    assert!(std::fs::metadata(&file).unwrap().len() > 1000, "{file:?}");
}

/// Waits for a child to exit (polling its status, bounded).
fn wait_exit(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// The hook calls of HLS viewer session `conn_id` (on shard `shard`) for `action`.
fn hls_calls(hook: &HookServer, action: &str, (shard, conn_id): (&Value, &Value)) -> usize {
    hook.calls()
        .iter()
        .filter(|c| c["action"] == action && c["protocol"] == "hls")
        .filter(|c| (&c["shard"], &c["conn_id"]) == (shard, conn_id))
        .count()
}

/// HLS viewers are virtual connections: a real player (ffmpeg reading the playlist with a
/// token) keeps its session while it reloads, is asked again after `hls_session_secs` under
/// the same connection id, and gets one `on_stop` with that id once it stops; a viewer whose
/// token is revoked is refused at its re-check and gets its `on_stop` then; beyond
/// `max_hls_sessions`, a new viewer gets 503 without a hook call.
#[test]
fn hls_viewers_get_on_stop_when_they_stop_or_are_refused() {
    require_ffmpeg();
    let hook = HookServer::start(Mode::Answer);
    let config = config_file(
        "hls-sessions",
        &format!(
            "rtmp_noauth = true\nhls_fragment = 1\n\
             [hooks]\non_play = [\"{u}\"]\non_stop = [\"{u}\"]\nhls_session_secs = 2\n\
             max_hls_sessions = 1\n\
             [[server]]\nappname = \"live\"\nlive = true\nhls = true\nflv = true\napi = true\n",
            u = hook.url("/hook")
        ),
    );
    let server = start("hooks-hls-sessions", &config, &[]);
    let mut ffmpeg = push_looped(&server.rtmp_url("live/show"), &test_media());
    let hls = server.hls_addr();
    let playlist = |token: &str| http_get(hls, &format!("/live/show.m3u8?token={token}")).0;
    // Up once a playlist exists: a 404 before, then a refusal for an unknown token.
    wait_until("the stream over HLS", WAIT, || playlist("nobody") != 404);
    assert_eq!(playlist("nobody"), 403);
    let id_of = |c: &Value| (c["shard"].clone(), c["conn_id"].clone());
    let play_of = |token: &'static str| {
        move |c: &Value| {
            c["action"] == "on_play" && c["protocol"] == "hls" && c["query"]["token"] == token
        }
    };

    // The revocable viewer: allowed, then revoked; its reloads are served until its
    // authorization runs out, then the re-check (same connection id) refuses it.
    assert_eq!(playlist("revocable"), 200);
    let first = id_of(&hook.wait_for("on_play revocable", play_of("revocable")));
    hook.revoke(true);
    let deadline = Instant::now() + WAIT;
    loop {
        match playlist("revocable") {
            200 => assert!(Instant::now() < deadline, "never re-checked"),
            403 => break,
            other => panic!("revocable viewer: {other}"),
        }
        thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        hls_calls(&hook, "on_play", (&first.0, &first.1)),
        2,
        "{:#?}",
        hook.calls()
    );
    let stop = hook.wait_for("on_stop revocable", |c| {
        c["action"] == "on_stop" && id_of(c) == first
    });
    assert_eq!(
        (stop["stream"].as_str(), stop["query"]["token"].as_str()),
        (Some("show"), Some("revocable"))
    );
    // The refusal ended that session: allowed again, it is a new one.
    hook.revoke(false);
    assert_eq!(playlist("revocable"), 200);
    let plays: Vec<_> = hook
        .calls()
        .iter()
        .filter(|c| play_of("revocable")(c))
        .map(id_of)
        .collect();
    assert_eq!(
        plays.len(),
        3,
        "allowed, refused at its re-check, allowed: {plays:?}"
    );
    assert_ne!(plays[2], first);

    // That session is the one the table holds: another viewer is turned away unasked.
    let (status, _, body) = http_get(hls, "/live/show.m3u8?token=good");
    assert_eq!(status, 503);
    assert_eq!(body, b"limit reached: hooks.max_hls_sessions\n");
    assert_eq!(
        hook.calls().iter().filter(|c| play_of("good")(c)).count(),
        0
    );
    wait_metric(
        &server,
        "shardcast_limit_refusals_total",
        &["limit=\"hooks.max_hls_sessions\""],
        1,
    );
    wait_metric(&server, "shardcast_hls_hook_sessions", &[], 1);
    // Left alone, it ends after its idle time, and the place is free again.
    let second = plays[2].clone();
    let stop = hook.wait_for("on_stop of the idle viewer", |c| {
        c["action"] == "on_stop" && id_of(c) == second
    });
    assert_eq!(stop["query"]["token"], "revocable");
    wait_metric(&server, "shardcast_hls_hook_sessions", &[], 0);

    // A real player over several re-checks.
    let url = format!("{}?token=good", server.hls_url("live/show.m3u8"));
    let player = quiet_ffmpeg("ffmpeg")
        .args(["-i", &url, "-t", "7", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(player.status.success(), "{player:?}");
    let good: Vec<_> = hook
        .calls()
        .iter()
        .filter(|c| play_of("good")(c))
        .map(id_of)
        .collect();
    let session = good[0].clone();
    assert!(good.iter().all(|id| *id == session), "{good:?}");
    assert!(good.len() >= 2, "re-checked under its id: {good:?}");
    assert_eq!(
        hls_calls(&hook, "on_stop", (&session.0, &session.1)),
        0,
        "no on_stop while it reloads"
    );
    let stop = hook.wait_for("on_stop of the player", |c| {
        c["action"] == "on_stop" && id_of(c) == session
    });
    assert_eq!(stop["query"]["token"], "good");
    assert_eq!(stop["app"], "live");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

/// `https://` hooks: the call goes over TLS with the certificate checked against the URL's
/// host (trusted here through `SSL_CERT_FILE`, as an operator's private CA would be), and
/// decides as over HTTP. A server that does not trust the certificate fails the call, which
/// denies under the default policy, with the reason logged.
#[test]
fn https_hooks_decide_over_verified_tls() {
    let (cert, key) = common::certs::self_signed(&scratch_dir("hooks-tls", "cert"));
    let hook = HookServer::start_tls(&cert, &key);
    let url = format!("https://localhost:{}/publish", hook.addr.port());
    let config = config_file(
        "tls",
        &format!("[hooks]\non_publish = [\"{url}\"]\ntimeout_ms = {HOOK_TIMEOUT_MS}\n"),
    );
    let args = ["--shards", "2", "--config_file", config.to_str().unwrap()];
    let trusting = Server::start_with_env(
        "hooks-tls",
        &args,
        &[("SSL_CERT_FILE", cert.to_str().unwrap())],
    );
    let addr = trusting.rtmp_addr();
    let mut p = RtmpClient::connect(addr, "live").unwrap();
    assert_eq!(
        p.publish("show?token=bad"),
        Err("NetStream.Publish.Unauthorized".to_owned())
    );
    let call = hook.wait_for("on_publish over TLS", |c| c["query"]["token"] == "bad");
    assert_eq!(
        (call["_path"].as_str(), call["stream"].as_str()),
        (Some("/publish"), Some("show"))
    );
    let mut p = RtmpClient::connect(addr, "live").unwrap();
    p.publish("show?token=map")
        .expect("allowed over TLS, mapped to a room");
    assert!(trusting
        .wait_for_line(
            |l| l.contains("publish started") && l.contains("live/mapped"),
            WAIT
        )
        .is_some());

    // The system store does not hold the test certificate: the call fails and denies.
    let wary = start("hooks-tls-untrusted", &config, &[]);
    let mut p = RtmpClient::connect(wary.rtmp_addr(), "live").unwrap();
    assert_eq!(
        p.publish("show?token=map"),
        Err("NetStream.Publish.Unauthorized".to_owned())
    );
    let line = wary
        .wait_for_line(|l| l.contains("hook failed: denied"), WAIT)
        .expect("the failed call is logged");
    assert!(line.contains("certificate"), "{line}");
    assert_eq!(
        hook.count("on_publish"),
        2,
        "the wary server's call never got through"
    );
}

/// A graceful shutdown (SIGTERM) ends every publish and play: before the process exits, the
/// hook server hears `on_unpublish` for the publisher, `on_stop` for the RTMP player, the
/// HTTP-FLV viewer and the HLS viewer (each with the `conn_id` of its `on_play`), and
/// `on_record_done` for the recording shutdown closed.
#[test]
fn sigterm_tells_the_hooks_of_every_end() {
    let hook = HookServer::start(Mode::Answer);
    let config = config_file(
        "sigterm",
        &format!(
            "rtmp_noauth = true\nflv_dir = \"rec\"\nhls_fragment = 1\n\
             [hooks]\non_unpublish = [\"{u}\"]\non_play = [\"{u}\"]\non_stop = [\"{u}\"]\n\
             on_record_done = [\"{u}\"]\n\
             [[server]]\nappname = \"live\"\nlive = true\nflv = true\nhls = true\napi = true\n\
             record = true\n",
            u = hook.url("/hook")
        ),
    );
    let mut server = start("hooks-sigterm", &config, &[]);
    let addr = server.rtmp_addr();
    let mut publisher = RtmpClient::connect(addr, "live").unwrap();
    publisher.publish("show").unwrap();
    // Three 1 s GOPs: enough for an HLS segment.
    publish_frames(&mut publisher, 0, 90, 0);
    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("show?token=good").unwrap();
    assert!(!player.read_media(WAIT, 1).is_empty());
    let _viewer = flv_viewer(&server, "/live/show.flv?token=good");
    wait_until("the HLS playlist", WAIT, || {
        http_get(server.hls_addr(), "/live/show.m3u8?token=good").0 == 200
    });
    let plays: Vec<(String, Value)> = ["rtmp", "flv", "hls"]
        .iter()
        .map(|proto| {
            let play = hook.wait_for(&format!("{proto} on_play"), |c| {
                c["action"] == "on_play" && c["protocol"] == *proto
            });
            (proto.to_string(), play["conn_id"].clone())
        })
        .collect();
    assert_eq!(hook.count("on_stop") + hook.count("on_unpublish"), 0);

    server.signal("TERM");
    let status = server.wait_exit(WAIT).expect("shardcast exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    // Everything arrived before the process ended: read the record, no waiting.
    let calls = hook.calls();
    let find = |action: &str, proto: &str| {
        calls
            .iter()
            .filter(|c| c["action"] == action && c["protocol"] == proto)
            .cloned()
            .collect::<Vec<Value>>()
    };
    let unpublished = find("on_unpublish", "rtmp");
    assert_eq!(unpublished.len(), 1, "{calls:#?}");
    assert_eq!(unpublished[0]["stream"], "show");
    for (proto, conn_id) in &plays {
        let stops = find("on_stop", proto);
        assert_eq!(stops.len(), 1, "{proto}: {calls:#?}");
        assert_eq!(&stops[0]["conn_id"], conn_id, "{proto}");
        assert_eq!(stops[0]["query"]["token"], "good", "{proto}");
    }
    let done = find("on_record_done", "rtmp");
    assert_eq!(done.len(), 1, "{calls:#?}");
    assert!(done[0]["file"]
        .as_str()
        .is_some_and(|f| f.ends_with(".flv")));
}

/// Nodes behind one load balancer: with the same `hooks.hls_session_key`, a segment URL
/// from node A's playlist is served by node B without a hook call; a node with another key
/// hooks it (without the token, so it is refused).
#[test]
fn a_shared_hls_session_key_lets_any_node_serve_the_segments() {
    let hook = HookServer::start(Mode::Answer);
    let config = |name: &str, key: &str| {
        config_file(
            name,
            &format!(
                "rtmp_noauth = true\nhls_fragment = 1\n[hooks]\non_play = [\"{}\"]\n\
                 hls_session_key = \"{key}\"\n",
                hook.url("/play")
            ),
        )
    };
    let shared = "a-secret-the-nodes-share";
    let a = start("hooks-node-a", &config("node-a", shared), &[]);
    let b = start("hooks-node-b", &config("node-b", shared), &[]);
    let c = start(
        "hooks-node-c",
        &config("node-c", "another-secret-of-node-c"),
        &[],
    );
    // The same stream on every node, as a fan-out (static_push) gives it.
    let _publishers: Vec<RtmpClient> = [&a, &b, &c]
        .iter()
        .map(|node| {
            let mut p = RtmpClient::connect(node.rtmp_addr(), "live").unwrap();
            p.publish("show").unwrap();
            publish_frames(&mut p, 0, 90, 0);
            p
        })
        .collect();
    let mut playlist = String::new();
    wait_until("node A's playlist", WAIT, || {
        let (status, _, body) = http_get(a.hls_addr(), "/live/show.m3u8?token=good");
        playlist = String::from_utf8_lossy(&body).into_owned();
        status == 200
    });
    let segment = playlist
        .lines()
        .find(|l| l.contains("hls_session="))
        .expect("a segment URL with a session id")
        .to_owned();
    assert_eq!(hook.count("on_play"), 1);
    // Node B cuts the same segments from the same stream: wait for it, then fetch A's URL.
    let bare = segment.split('?').next().unwrap();
    wait_until("node B listing the segment", WAIT, || {
        let listed = http_get(b.hls_addr(), "/live/show.m3u8?token=good").2;
        listed.windows(bare.len()).any(|w| w == bare.as_bytes())
    });
    let asked = hook.count("on_play");
    let (status, _, data) = http_get(b.hls_addr(), &format!("/live/{segment}"));
    assert_eq!(status, 200);
    assert_eq!(data.first(), Some(&0x47), "a TS segment");
    assert_eq!(
        hook.count("on_play"),
        asked,
        "node B served it without asking"
    );
    let (status, _, _) = http_get(c.hls_addr(), &format!("/live/{segment}"));
    assert_eq!(status, 403);
    assert_eq!(
        hook.count("on_play"),
        asked + 1,
        "node C asked, and was refused"
    );
}

/// `on_update` (nginx-rtmp's): every `update_secs` each running RTMP publish and play and
/// HTTP-FLV play is asked again. Once the token is revoked, its publisher and viewer are
/// closed, and the hook server hears their ends. Meanwhile a stream with a good token keeps
/// every frame.
#[test]
fn on_update_ends_revoked_sessions_and_keeps_the_others() {
    let hook = HookServer::start(Mode::Answer);
    let config = config_file(
        "update",
        &format!(
            "rtmp_noauth = true\n[hooks]\non_update = [\"{u}\"]\non_unpublish = [\"{u}\"]\n\
             on_stop = [\"{u}\"]\nupdate_secs = 1\ntimeout_ms = {HOOK_TIMEOUT_MS}\n",
            u = hook.url("/update")
        ),
    );
    let server = start("hooks-update", &config, &[]);
    let addr = server.rtmp_addr();
    let healthy = HealthyStream::start(addr, "good?token=good", "good?token=good");
    let mut revocable = RtmpClient::connect(addr, "live").unwrap();
    revocable.publish("bad?token=revocable").unwrap();
    publish_frames(&mut revocable, 0, 30, 0);
    let mut viewer = flv_viewer(&server, "/live/good.flv?token=revocable");
    let updated = |proto: &'static str, token: &'static str| {
        move |c: &Value| {
            c["action"] == "on_update" && c["protocol"] == proto && c["query"]["token"] == token
        }
    };
    // Asked and allowed while the token is good.
    hook.wait_for("on_update of the FLV viewer", updated("flv", "revocable"));
    let first = hook.wait_for("on_update of the publisher", |c| {
        updated("rtmp", "revocable")(c) && c["stream"] == "bad"
    });
    hook.revoke(true);
    let closed = server
        .wait_for_line(|l| l.contains("refused by on_update hook"), WAIT)
        .expect("a revoked session is closed with the reason");
    assert!(closed.contains("403"), "{closed}");
    let unpublished = hook.wait_for("on_unpublish of the revoked publisher", |c| {
        c["action"] == "on_unpublish" && c["stream"] == "bad"
    });
    assert_eq!(unpublished["conn_id"], first["conn_id"]);
    let stop = hook.wait_for("on_stop of the revoked viewer", |c| {
        c["action"] == "on_stop" && c["protocol"] == "flv"
    });
    assert_eq!(stop["query"]["token"], "revocable");
    // The viewer's response ends: the server closed it (a read timeout would be an error).
    let mut rest = Vec::new();
    assert!(
        viewer.body.read_to_end(&mut rest).is_ok(),
        "the viewer's stream ends"
    );
    // The publisher's connection was closed too.
    assert!(
        revocable.wait_closed(WAIT),
        "the revoked publisher is closed"
    );
    let good_updates = hook
        .calls()
        .iter()
        .filter(|c| c["action"] == "on_update" && c["query"]["token"] == "good")
        .count();
    assert!(
        good_updates >= 2,
        "the good publisher and player were asked: {good_updates}"
    );
    let frames = healthy.finish();
    assert!(frames > 30, "{frames}");
}

/// A hook server that hangs denies within `hooks.timeout_ms`, one that is down denies at
/// once, and meanwhile a stream of an app without hooks loses no frame.
#[test]
fn hung_or_down_hook_server_denies_in_time_and_others_keep_flowing() {
    let hung = HookServer::start(Mode::Hang);
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
        // Dropped: nothing listens there any more.
    };
    let config = config_file(
        "hung",
        &format!(
            "rtmp_noauth = true\n[hooks]\ntimeout_ms = {HOOK_TIMEOUT_MS}\n\
             [[server]]\nappname = \"live\"\nlive = true\napi = true\n\
             [[server]]\nappname = \"hung\"\nlive = true\nflv = true\non_play = [\"{h}\"]\n\
             [[server]]\nappname = \"hungpub\"\nlive = true\non_publish = [\"{h}\"]\n\
             [[server]]\nappname = \"down\"\nlive = true\non_publish = [\"http://{down}/x\"]\n",
            h = hung.url("/hang"),
        ),
    );
    let server = start("hooks-hung", &config, &["--hls_addr", ""]);
    let addr = server.rtmp_addr();
    let key = key_of(&server, "healthy");
    let healthy = HealthyStream::start(addr, "healthy", &key);
    // A stream of the app whose on_play hangs (its publish is not hooked).
    let mut guarded = RtmpClient::connect(addr, "hung").unwrap();
    guarded.publish("s").unwrap();
    publish_frames(&mut guarded, 0, 10, 0);

    // Hung publishes and plays at once, on both shards, and an HTTP-FLV viewer.
    let timeout = Duration::from_millis(HOOK_TIMEOUT_MS);
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            thread::spawn(move || {
                let (app, publish) = if i % 2 == 0 {
                    ("hungpub", true)
                } else {
                    ("hung", false)
                };
                let mut c = RtmpClient::connect(addr, app).unwrap();
                let started = Instant::now();
                let result = if publish {
                    c.publish(&format!("p{i}?token=good"))
                } else {
                    c.play("s?token=good")
                };
                (i, result, started.elapsed())
            })
        })
        .collect();
    let flv_started = Instant::now();
    let (status, _, body) = http_get(server.httpflv_addr(), "/hung/s.flv?token=good");
    let flv_took = flv_started.elapsed();
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("could not be asked"));
    assert!(
        flv_took >= timeout - Duration::from_millis(50),
        "{flv_took:?}"
    );
    assert!(flv_took < timeout + Duration::from_secs(3), "{flv_took:?}");
    for attempt in attempts {
        let (i, result, took) = attempt.join().unwrap();
        let want = if i % 2 == 0 {
            "NetStream.Publish.Unauthorized"
        } else {
            "NetStream.Play.Failed"
        };
        assert_eq!(result, Err(want.to_owned()), "attempt {i}");
        assert!(
            took >= timeout - Duration::from_millis(50),
            "attempt {i} waited the timeout: {took:?}"
        );
        assert!(
            took < timeout + Duration::from_secs(3),
            "attempt {i} denied in time: {took:?}"
        );
    }
    assert_eq!(hung.count("on_publish"), 3);
    assert_eq!(hung.count("on_play"), 4);

    // Down: refused connection, denied at once.
    let mut c = RtmpClient::connect(addr, "down").unwrap();
    let started = Instant::now();
    assert_eq!(
        c.publish("x"),
        Err("NetStream.Publish.Unauthorized".to_owned())
    );
    assert!(started.elapsed() < timeout, "{:?}", started.elapsed());

    let frames = healthy.finish();
    assert!(frames > 30, "{frames}");
    let calls = "shardcast_hook_calls_total";
    wait_metric(&server, calls, &["result=\"timeout\""], 7);
    wait_metric(&server, calls, &["result=\"error\""], 1);
    let denials = "shardcast_hook_denials_total";
    wait_metric(&server, denials, &["reason=\"failed\""], 8);
    assert!(server
        .wait_for_line(|l| l.contains("hook failed: denied"), WAIT)
        .is_some());
}

/// With `publish_failure = "allow"` and `play_failure = "allow"`, a hook server that is down
/// lets publishers and players through (logged and counted, not denied); a non-2xx answer
/// would still deny.
#[test]
fn allow_failure_policy_lets_through_when_the_hook_server_is_down() {
    let down = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = config_file(
        "allow",
        &format!(
            "rtmp_noauth = true\n[hooks]\non_publish = [\"http://{down}/p\"]\n\
             on_play = [\"http://{down}/p\"]\npublish_failure = \"allow\"\n\
             play_failure = \"allow\"\n"
        ),
    );
    let server = start("hooks-allow", &config, &[]);
    let addr = server.rtmp_addr();
    let mut publisher = RtmpClient::connect(addr, "live").unwrap();
    publisher.publish("open").unwrap();
    publish_frames(&mut publisher, 0, 10, 0);
    let mut player = RtmpClient::connect(addr, "live").unwrap();
    player.play("open").unwrap();
    assert!(!player.read_media(WAIT, 3).is_empty());
    assert!(server
        .wait_for_line(|l| l.contains("allowed by the failure policy"), WAIT)
        .is_some());
    wait_metric(
        &server,
        "shardcast_hook_calls_total",
        &["result=\"error\""],
        2,
    );
    wait_metric(&server, "shardcast_hook_denials_total", &[], 0);
}

/// `hooks.timeout_ms` bounds a whole decision, not each of its URLs: after a hanging first
/// URL (allowed past by the failure policy) the next one is not called at all, and the client
/// gets its answer within one timeout.
#[test]
fn timeout_ms_bounds_a_decision_over_several_urls() {
    let hung = HookServer::start(Mode::Hang);
    let config = config_file(
        "two-urls",
        &format!(
            "rtmp_noauth = true\n[hooks]\non_publish = [\"{}\", \"{}\"]\n\
             publish_failure = \"allow\"\ntimeout_ms = {HOOK_TIMEOUT_MS}\n",
            hung.url("/first"),
            hung.url("/second"),
        ),
    );
    let server = start("hooks-two-urls", &config, &[]);
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    let started = Instant::now();
    publisher.publish("two").unwrap();
    let took = started.elapsed();
    let timeout = Duration::from_millis(HOOK_TIMEOUT_MS);
    assert!(
        took < 2 * timeout,
        "one timeout for the decision, not one per URL: {took:?}"
    );
    let line = server
        .wait_for_line(|l| l.contains("not called"), WAIT)
        .expect("the second URL's skip is logged");
    assert!(line.contains("/second"), "{line}");
    let paths: Vec<Value> = hung.calls().iter().map(|c| c["_path"].clone()).collect();
    assert_eq!(paths, ["/first"]);
    wait_metric(
        &server,
        "shardcast_hook_calls_total",
        &["result=\"timeout\""],
        2,
    );
}
