//! End-to-end control API and configuration: the real binary, spoken to as livego users and
//! their tools do (curl, browsers, scripts), plus hostile HTTP and bad configurations.

mod common;

use common::http::read_response;
use common::*;
use serde_json::Value;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
/// `--http_header_timeout` of the hostile-HTTP test, in seconds.
const HEADER_TIMEOUT: u64 = 2;
/// Slack on top of a server timeout.
const MARGIN: Duration = Duration::from_secs(2);
/// A response: status, headers, body.
type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn start(name: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--shards", "2"];
    args.extend_from_slice(extra);
    Server::start(name, &args)
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("TCP connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream
}

/// Sends `raw` on a new connection and reads one response.
fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut stream = tcp(addr);
    stream.write_all(raw).unwrap();
    let mut resp = read_response(BufReader::new(stream), false).expect("a response");
    let body = resp.read_body().expect("the body");
    (resp.status, resp.headers, body)
}

/// `GET target` with `Connection: close`.
fn get(addr: SocketAddr, target: &str) -> Reply {
    http_get(addr, target)
}

/// Checks livego's envelope as a client sees it: JSON body `{"status":N,"data":...}` with
/// `N` equal to the HTTP status, `Content-Type: application/json`, CORS open to any origin;
/// returns `data`.
fn envelope(reply: &Reply) -> Value {
    let (status, headers, body) = reply;
    let text = String::from_utf8_lossy(body);
    assert_eq!(
        header(headers, "content-type"),
        Some("application/json"),
        "{text}"
    );
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some("*"),
        "{text}"
    );
    assert_eq!(
        header(headers, "content-length"),
        Some(body.len().to_string().as_str())
    );
    let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {text}"));
    let object = json.as_object().expect("a JSON object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["data", "status"],
        "{text}"
    );
    assert!(
        text.starts_with(&format!("{{\"status\":{status},\"data\":")),
        "livego's field order and status == HTTP status: {text}"
    );
    json["data"].clone()
}

/// The key in a 200 envelope, checked to be 48 ASCII letters and digits.
fn key_in(reply: &Reply) -> String {
    assert_eq!(reply.0, 200, "{}", String::from_utf8_lossy(&reply.2));
    let key = envelope(reply).as_str().expect("a key string").to_owned();
    assert_eq!(key.len(), 48, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    key
}

/// `(status, data as a string)` of an envelope reply.
fn status_and_data(reply: &Reply) -> (u16, String) {
    let data = envelope(reply);
    (reply.0, data.as_str().expect("string data").to_owned())
}

#[test]
fn control_get_mints_one_key_per_room() {
    let server = start("api-get", &[]);
    let api = server.api_addr();
    let key = key_in(&get(api, "/control/get?room=movie"));
    assert_eq!(key_in(&get(api, "/control/get?room=movie")), key, "stable");
    let form = b"POST /control/get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nroom=movie";
    assert_eq!(key_in(&exchange(api, form)), key, "a form POST works too");
    let other = b"POST /control/get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
        Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nroom=other";
    assert_ne!(key_in(&exchange(api, other)), key, "one key per room");
    // The key is what RTMP publishers use.
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher.publish(&key).expect("the minted key publishes");
}

#[test]
fn reset_delete_and_bad_room_names() {
    let server = start("api-rooms", &[]);
    let api = server.api_addr();
    let key = key_in(&get(api, "/control/get?room=movie"));
    let new_key = key_in(&get(api, "/control/reset?room=movie"));
    assert_ne!(new_key, key, "reset gives a new key");
    assert_eq!(key_in(&get(api, "/control/get?room=movie")), new_key);

    assert_eq!(
        status_and_data(&get(api, "/control/delete?room=movie")),
        (200, "Ok".to_owned())
    );
    assert_eq!(
        status_and_data(&get(api, "/control/delete?room=movie")),
        (404, "room not found".to_owned())
    );
    let after = key_in(&get(api, "/control/get?room=movie"));
    assert!(
        after != key && after != new_key,
        "a deleted room starts over"
    );

    for route in ["get", "reset", "delete"] {
        let usage = format!("url: /control/{route}?room=<ROOM_NAME>");
        for target in [
            format!("/control/{route}"),
            format!("/control/{route}?room="),
            format!("/control/{route}?name=movie"),
        ] {
            assert_eq!(
                status_and_data(&get(api, &target)),
                (400, usage.clone()),
                "{target}"
            );
        }
    }
    for room in ["a/b", "a%2Fb", "..", "%2e%2e", ".", "x%00y"] {
        let (status, data) = status_and_data(&get(api, &format!("/control/get?room={room}")));
        assert_eq!(status, 400, "{room}: {data}");
        assert!(data.starts_with("invalid room name: "), "{room}: {data}");
    }
    assert_eq!(
        status_and_data(&get(api, "/control/delete?room=..")).0,
        400,
        "delete validates too"
    );
}

#[test]
fn unknown_paths_preflight_and_head() {
    let server = start("api-misc", &[]);
    let api = server.api_addr();
    for target in [
        "/",
        "/nope",
        "/control/pulls?room=x",
        "/control/get/extra?room=x",
    ] {
        assert_eq!(
            status_and_data(&get(api, target)),
            (404, "not found".to_owned()),
            "{target}"
        );
    }

    // A browser's CORS preflight.
    let (status, headers, body) = exchange(
        api,
        b"OPTIONS /control/reset?room=movie HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
          Origin: https://example.com\r\nAccess-Control-Request-Method: POST\r\n\
          Access-Control-Request-Headers: x-token\r\n\r\n",
    );
    assert_eq!(status, 204);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let methods = header(&headers, "access-control-allow-methods").unwrap_or_default();
    for m in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    assert_eq!(
        header(&headers, "access-control-allow-headers"),
        Some("x-token")
    );
    // The preflight reset nothing: the room still does not exist.
    assert_eq!(get(api, "/control/delete?room=movie").0, 404);

    // HEAD: the head GET would have, and not a byte of body.
    let get_reply = get(api, "/control/get?room=movie");
    let mut stream = tcp(api);
    stream
        .write_all(b"HEAD /control/get?room=movie HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let head_end = text.find("\r\n\r\n").expect("a complete head") + 4;
    assert_eq!(head_end, raw.len(), "no body after the head: {text}");
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    let head = read_response(&raw[..], true).unwrap();
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(head.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        head.header("content-length"),
        Some(get_reply.2.len().to_string().as_str()),
        "Content-Length of the GET body"
    );
}

#[test]
fn keep_alive_and_pipelined_requests() {
    let server = start("api-keepalive", &[]);
    let api = server.api_addr();
    let stream = tcp(api);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let next = |reader: &mut BufReader<TcpStream>| -> Reply {
        let mut resp = read_response(reader, false).expect("a response");
        let body = resp.read_body().unwrap();
        (resp.status, resp.headers, body)
    };

    // One after the other on one HTTP/1.1 connection.
    writer
        .write_all(b"GET /control/get?room=a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let first = next(&mut reader);
    let key = key_in(&first);
    assert_eq!(header(&first.1, "connection"), Some("keep-alive"));
    writer
        .write_all(b"GET /control/get?room=a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(
        key_in(&next(&mut reader)),
        key,
        "second answer, same connection"
    );

    // Pipelined: three requests in one write, answered in order; the last closes.
    writer
        .write_all(
            b"GET /control/delete?room=a HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /control/delete?room=a HTTP/1.1\r\nHost: x\r\n\r\n\
              POST /control/get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 6\r\n\r\nroom=b",
        )
        .unwrap();
    assert_eq!(status_and_data(&next(&mut reader)), (200, "Ok".to_owned()));
    assert_eq!(
        status_and_data(&next(&mut reader)),
        (404, "room not found".to_owned())
    );
    let last = next(&mut reader);
    assert_ne!(key_in(&last), key);
    assert_eq!(header(&last.1, "connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(
        reader.read_to_end(&mut rest).unwrap(),
        0,
        "closed after `Connection: close`"
    );
}

#[test]
fn hostile_http_closes_only_its_connection() {
    let server = start(
        "api-hostile",
        &["--http_header_timeout", &HEADER_TIMEOUT.to_string()],
    );
    let api = server.api_addr();
    // A well-behaved keep-alive client, open across the whole test.
    let stream = tcp(api);
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut ask = |target: &str| -> Reply {
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        writer.write_all(req.as_bytes()).unwrap();
        let mut resp = read_response(&mut reader, false).expect("the keep-alive client is served");
        let body = resp.read_body().unwrap();
        (resp.status, resp.headers, body)
    };
    let key = key_in(&ask("/control/get?room=calm"));

    // Slowloris: one byte of a request head, then nothing.
    let mut stalled = tcp(api);
    let stalled_peer = stalled.local_addr().unwrap();
    stalled.write_all(b"G").unwrap();
    let stalled_since = Instant::now();

    // A 20,000-byte URL.
    let long = format!(
        "GET /control/get?room={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20_000)
    );
    let reply = exchange(api, long.as_bytes());
    let reason = envelope(&reply);
    assert!(reply.0 == 414 || reply.0 == 431, "{}: {reason}", reply.0);

    // Garbage instead of a request line: a TLS ClientHello, and words.
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n"[..],
        b"hello there\r\n\r\n",
    ] {
        let mut stream = tcp(api);
        stream.write_all(garbage).unwrap();
        let answer = read_until_closed(&mut stream, WAIT).expect("closed after the answer");
        let mut resp = read_response(&answer[..], false).expect("an HTTP answer");
        let reply = (resp.status, resp.headers.clone(), resp.read_body().unwrap());
        let reason = envelope(&reply);
        assert_eq!(reply.0, 400, "{reason}");
    }

    // Meanwhile a normal request on a new connection, and on the keep-alive one, are served
    // at once, while the slowloris connection is still open.
    let served = Instant::now();
    assert_eq!(key_in(&get(api, "/control/get?room=calm")), key);
    assert_eq!(key_in(&ask("/control/get?room=calm")), key);
    assert!(
        served.elapsed() < Duration::from_secs(1),
        "not held up by the hostile clients: {:?}",
        served.elapsed()
    );
    assert!(
        stalled_since.elapsed() < Duration::from_secs(HEADER_TIMEOUT),
        "the test ran the normal requests while the stalled client was still open"
    );

    // The slowloris connection is closed when http_header_timeout runs out.
    let answer = read_until_closed(&mut stalled, Duration::from_secs(HEADER_TIMEOUT) + MARGIN)
        .expect("a stalled request head is cut off");
    let waited = stalled_since.elapsed();
    assert!(
        waited >= Duration::from_secs(HEADER_TIMEOUT) - Duration::from_millis(300),
        "closed by the header timeout, not earlier: {waited:?}"
    );
    let mut resp = read_response(&answer[..], false).expect("an HTTP answer before the close");
    let reply = (resp.status, resp.headers.clone(), resp.read_body().unwrap());
    let reason = envelope(&reply);
    assert_eq!(reply.0, 408, "{reason}");
    let span = format!("peer={stalled_peer}}}");
    let line = server
        .wait_for_line(|l| l.contains(&span) && l.contains("closing reason="), WAIT)
        .expect("the close is logged");
    assert!(line.contains("request head not received in time"), "{line}");

    // Everyone else is still served.
    assert_eq!(key_in(&ask("/control/get?room=calm")), key);
    assert_eq!(key_in(&get(api, "/control/get?room=calm")), key);
}

#[test]
fn idle_connections_are_closed_after_the_keepalive_timeout() {
    let server = start("api-idle", &["--http_keepalive_timeout", "2"]);
    let api = server.api_addr();
    let mut silent = tcp(api);
    let since = Instant::now();
    let mut used = tcp(api);
    used.write_all(b"GET /control/get?room=x HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let limit = Duration::from_secs(2) + MARGIN;
    let answer = read_until_closed(&mut used, limit).expect("an idle keep-alive connection ends");
    let resp = read_response(&answer[..], false).expect("its one answer");
    assert_eq!(resp.status, 200);
    let nothing = read_until_closed(&mut silent, limit.saturating_sub(since.elapsed()))
        .expect("a connection that never sends a byte ends");
    assert!(nothing.is_empty(), "nothing is sent to a silent client");
    assert!(since.elapsed() >= Duration::from_millis(1700));
}

/// A new empty directory for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    common::server::scratch_dir("api-scratch", name)
}

#[test]
fn configuration_errors_name_the_culprit() {
    let dir = scratch_dir("config-errors");
    // Listeners on free ports, should a bad run start serving after all.
    let free = ["--rtmp_addr", "127.0.0.1:0", "--api_addr", "127.0.0.1:0"];
    let with_free = |args: &[&'static str]| -> Vec<&'static str> {
        let mut all = args.to_vec();
        all.extend_from_slice(&free);
        all
    };

    let (code, _, err) = run_to_exit(&with_free(&["--gop_num", "abc"]), &dir);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(err.contains("gop_num") && err.contains("abc"), "{err}");

    let (code, _, err) = run_to_exit(
        &["--rtmp_addr", "nonsense", "--api_addr", "127.0.0.1:0"],
        &dir,
    );
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        err.contains("rtmp_addr") && err.contains("nonsense"),
        "{err}"
    );

    let (code, _, err) = run_to_exit(&with_free(&["--rtmp_adr", ":1935"]), &dir);
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(err.contains("--rtmp_adr"), "unknown flags are named: {err}");

    let toml = dir.join("bad.toml");
    std::fs::write(&toml, "gop_num = 2\nrtmp_adr = \":1935\"\n").unwrap();
    let toml_arg = toml.to_str().unwrap();
    let (code, _, err) = run_to_exit(
        &[
            "--config_file",
            toml_arg,
            "--rtmp_addr",
            "127.0.0.1:0",
            "--api_addr",
            "127.0.0.1:0",
        ],
        &dir,
    );
    assert!(code.is_some_and(|c| c != 0), "exit code {code:?}");
    assert!(
        err.contains("unknown key `rtmp_adr`") && err.contains("bad.toml"),
        "{err}"
    );

    let (code, out, _) = run_to_exit(&["--help"], &dir);
    assert_eq!(code, Some(0));
    for flag in ["--rtmp_addr", "--api_addr", "--gop_num", "--config_file"] {
        assert!(out.contains(flag), "--help lists {flag}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// livego's sample `livego.yaml` (its comments included).
const LIVEGO_YAML: &str = "\
# # Logger level
# level: info

# # FLV Options
# flv_archive: false
# flv_dir: \"./tmp\"
# httpflv_addr: \":7001\"

# # RTMP Options
# rtmp_noauth: false
# rtmp_addr: \":1935\"
# enable_rtmps: true
# rtmps_cert: server.crt
# rtmps_key: server.key
# read_timeout: 10
# write_timeout: 10

# # HLS Options
# hls_addr: \":7002\"
#use_hls_https: true

# # API Options
# api_addr: \":8090\"
server:
- appname: live
  live: true
  hls: true
  api: true
  flv: true
";

#[test]
fn livego_sample_yaml_is_accepted() {
    let dir = scratch_dir("livego-yaml");
    let yaml = dir.join("livego.yaml");
    std::fs::write(&yaml, LIVEGO_YAML).unwrap();
    let server = start("api-livego", &["--config_file", yaml.to_str().unwrap()]);
    assert!(
        server
            .wait_for_line(|l| l.contains("read config file"), WAIT)
            .is_some(),
        "the file is read"
    );
    let key = key_in(&get(server.api_addr(), "/control/get?room=movie"));
    let mut publisher = RtmpClient::connect(server.rtmp_addr(), "live").unwrap();
    publisher
        .publish(&key)
        .expect("app `live` of the file serves");
    let other = RtmpClient::connect(server.rtmp_addr(), "other").err();
    assert_eq!(other.as_deref(), Some("NetConnection.Connect.Rejected"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
