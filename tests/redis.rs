//! Room keys in Redis, end to end: a real `redis-server` on a free loopback port and two
//! shardcast nodes sharing it, as behind a load balancer. Keys minted on one node publish on
//! the other, reset and delete reach every node, and a Redis outage is a 503 and a refused
//! publish that ends by itself when Redis is back.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
/// Poll period of the condition waits.
const POLL: Duration = Duration::from_millis(50);
/// Redis's `requirepass`: the nodes must AUTH (a space, so the URL form needs encoding).
const PASSWORD: &str = "s3cret pass";
/// [`PASSWORD`] inside a `redis://` URL.
const PASSWORD_IN_URL: &str = "s3cret%20pass";
/// `--redis_prefix` of the nodes (not the default, to check it is used).
const PREFIX: &str = "e2e:";
/// The longest a key-store call may take while Redis is down (the client's 2 s timeouts, with
/// slack for a loaded machine).
const OUTAGE_ANSWER: Duration = Duration::from_secs(5);

/// A `redis-server` on 127.0.0.1, without persistence, in its own directory; killed on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free port.
    fn start() -> RedisServer {
        assert!(
            Command::new("redis-server")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "redis-server not found: scripts/setup installs it (Debian package redis-server)"
        );
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: scratch_dir("redis"),
        };
        server.restart();
        server
    }

    /// Starts the process again on the same port (after [`stop`](Self::stop)); it starts empty.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server is running");
        let log = std::fs::File::create(self.dir.join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                PASSWORD,
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the server answers PING.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        while !matches!(self.command(&["PING"]), Ok(Reply::Simple(ref s)) if s == "PONG") {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "redis-server on port {} did not start ({exited:?}): {}",
                self.port,
                std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
            );
            thread::sleep(POLL);
        }
    }

    /// Kills the process (an outage: nothing is saved).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal (`"STOP"`, `"CONT"`) to the process with `kill(1)`.
    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {pid}");
    }

    /// `HOST:PORT`, livego's form of `redis_addr`.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One command in database 0, after AUTH, on a new connection.
    fn command(&self, args: &[&str]) -> std::io::Result<Reply> {
        self.command_in("0", args)
    }

    /// One command in database `db`, after AUTH and SELECT, on a new connection.
    fn command_in(&self, db: &str, args: &[&str]) -> std::io::Result<Reply> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, WAIT)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.write_all(&encode(&["AUTH", PASSWORD]))?;
        stream.write_all(&encode(&["SELECT", db]))?;
        stream.write_all(&encode(args))?;
        let mut reader = BufReader::new(stream);
        for step in ["AUTH", "SELECT"] {
            match read_reply(&mut reader)? {
                Reply::Simple(ok) if ok == "OK" => {}
                other => return Err(std::io::Error::other(format!("{step}: {other:?}"))),
            }
        }
        read_reply(&mut reader)
    }

    /// The value of a Redis key in database `db`.
    fn get_in(&self, db: &str, key: &str) -> Option<String> {
        match self.command_in(db, &["GET", key]).expect("GET") {
            Reply::Bulk(value) => value,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// The value of a Redis key.
    fn get(&self, key: &str) -> Option<String> {
        match self.command(&["GET", key]).expect("GET") {
            Reply::Bulk(value) => value,
            other => panic!("GET {key}: {other:?}"),
        }
    }

    /// The Redis keys matching `pattern`, sorted.
    fn keys(&self, pattern: &str) -> Vec<String> {
        let Reply::Array(items) = self.command(&["KEYS", pattern]).expect("KEYS") else {
            panic!("KEYS {pattern}: not an array")
        };
        let mut names: Vec<String> = items
            .into_iter()
            .filter_map(|item| match item {
                Reply::Bulk(name) => name,
                _ => None,
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A RESP reply (the kinds these tests read).
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

/// A command as a RESP array of bulk strings.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1.min(line.len()));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| std::io::Error::other(format!("bad reply line {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.to_owned()),
        "-" => Reply::Error(rest.to_owned()),
        ":" => Reply::Int(number()?),
        "$" => match usize::try_from(number()?) {
            Ok(len) => {
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data)?;
                data.truncate(len);
                Reply::Bulk(Some(String::from_utf8_lossy(&data).into_owned()))
            }
            Err(_) => Reply::Bulk(None),
        },
        "*" => {
            let items = (0..number()?.max(0)).map(|_| read_reply(reader));
            Reply::Array(items.collect::<Result<_, _>>()?)
        }
        _ => return Err(std::io::Error::other(format!("bad reply line {line:?}"))),
    })
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A new empty directory for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    common::server::scratch_dir("redis-scratch", name)
}

/// Node A: livego's `HOST:PORT` with `redis_pwd`.
fn node_a(redis: &RedisServer, name: &str) -> Server {
    let addr = redis.addr();
    Server::start(
        name,
        &[
            "--shards",
            "2",
            "--redis_addr",
            &addr,
            "--redis_pwd",
            PASSWORD,
            "--redis_prefix",
            PREFIX,
        ],
    )
}

/// Node B: a `redis://` URL holding the password, and the prefix from the environment.
fn node_b(redis: &RedisServer, name: &str) -> Server {
    let url = format!("redis://:{PASSWORD_IN_URL}@{}/0", redis.addr());
    Server::start_with_env(
        name,
        &["--shards", "2", "--redis_addr", &url],
        &[("REDIS_PREFIX", PREFIX)],
    )
}

/// `(status, data)` of an API call.
fn api(node: &Server, path: &str) -> (u16, Value) {
    let (status, json) = api_json(node, path);
    assert_eq!(json["status"], status, "{json}");
    (status, json["data"].clone())
}

/// The key a 200 answer carries.
fn key_from(node: &Server, path: &str) -> String {
    let (status, data) = api(node, path);
    assert_eq!(status, 200, "{path}: {data}");
    let key = data.as_str().expect("a key").to_owned();
    assert_eq!(key.len(), 48, "{key}");
    key
}

/// Publishes `name` on `node`'s app `live`: the connection, or the refusal's status code.
fn publish(node: &Server, name: &str) -> Result<RtmpClient, String> {
    let mut client = RtmpClient::connect(node.rtmp_addr(), "live")?;
    client.publish(name)?;
    Ok(client)
}

fn refused(node: &Server, name: &str) -> String {
    match publish(node, name) {
        Ok(_) => panic!(
            "[{}] accepted a publish that should be refused",
            node.name()
        ),
        Err(code) => code,
    }
}

/// True while the process runs.
fn alive(node: &mut Server) -> bool {
    node.wait_exit(Duration::ZERO).is_none()
}

/// Polls `path` on `node` until it answers `status`; the last answer.
fn wait_for_status(node: &Server, path: &str, status: u16) -> (u16, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = api(node, path);
        if answer.0 == status || Instant::now() >= deadline {
            return answer;
        }
        thread::sleep(POLL);
    }
}

fn no_password_in_logs(nodes: &[&Server]) {
    for node in nodes {
        let leaked = node.lines().into_iter().find(|l| l.contains("s3cret"));
        assert_eq!(leaked, None, "[{}] logged the Redis password", node.name());
    }
}

#[test]
fn keys_minted_on_one_node_publish_on_the_other() {
    let redis = RedisServer::start();
    let a = node_a(&redis, "redis-share-a");
    let b = node_b(&redis, "redis-share-b");
    let key = key_from(&a, "/control/get?room=movie");
    assert_eq!(key_from(&b, "/control/get?room=movie"), key, "one key");
    assert_eq!(redis.get(&format!("{PREFIX}room:movie")), Some(key.clone()));
    assert_eq!(
        redis.get(&format!("{PREFIX}key:{key}")),
        Some("movie".into())
    );

    // The key minted on A publishes on B, as room `movie`: a player of `movie` on B gets it.
    let mut player = RtmpClient::connect(b.rtmp_addr(), "live").unwrap();
    player.play("movie").expect("play movie on B");
    let mut publisher = publish(&b, &key).expect("A's key publishes on B");
    publish_frames(&mut publisher, 0, 31, 0);
    let media = player.read_media(WAIT, 10);
    assert_eq!(
        media.len(),
        10,
        "the player of `movie` on B gets the stream"
    );
    drop(publisher);
    drop(player);

    // A reset on A: the old key is refused on B at once, the new one works there.
    let new_key = key_from(&a, "/control/reset?room=movie");
    assert_ne!(new_key, key);
    assert_eq!(refused(&b, &key), "NetStream.Publish.BadName");
    let line = b.wait_for_line(|l| l.contains("refused: invalid key"), WAIT);
    assert!(line.is_some(), "B refused the old key as invalid");
    drop(publish(&b, &new_key).expect("the new key publishes on B"));
    assert_eq!(key_from(&b, "/control/get?room=movie"), new_key);
    assert_eq!(
        redis.keys(&format!("{PREFIX}*")),
        [
            format!("{PREFIX}key:{new_key}"),
            format!("{PREFIX}room:movie")
        ],
        "the old key's entry is gone"
    );

    // A delete on B: both directions go, a second delete is a 404, A refuses the key.
    assert_eq!(
        api(&b, "/control/delete?room=movie"),
        (200, Value::from("Ok"))
    );
    assert_eq!(
        api(&a, "/control/delete?room=movie"),
        (404, Value::from("room not found"))
    );
    assert_eq!(refused(&a, &new_key), "NetStream.Publish.BadName");
    assert_eq!(redis.keys(&format!("{PREFIX}*")), Vec::<String>::new());
    no_password_in_logs(&[&a, &b]);
}

#[test]
fn concurrent_gets_and_resets_agree_across_nodes() {
    let redis = RedisServer::start();
    let a = node_a(&redis, "redis-race-a");
    let b = node_b(&redis, "redis-race-b");
    let nodes = [&a, &b];
    let on_both = |path: &'static str| -> Vec<String> {
        thread::scope(|s| {
            let calls: Vec<_> = (0..8)
                .map(|i| s.spawn(move || key_from(nodes[i % 2], path)))
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        })
    };

    // Eight first gets of a new room, on both nodes at once: one key.
    let keys = on_both("/control/get?room=race");
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");

    // Eight resets at once: the last one wins, every other key is invalid, no entry is left.
    let resets = on_both("/control/reset?room=race");
    let current = key_from(&a, "/control/get?room=race");
    assert!(resets.contains(&current), "{current} in {resets:?}");
    assert_eq!(
        redis.keys(&format!("{PREFIX}key:*")),
        [format!("{PREFIX}key:{current}")]
    );
    let stale = resets.iter().find(|k| **k != current).expect("a stale key");
    assert_eq!(refused(&b, stale), "NetStream.Publish.BadName");
    assert_eq!(refused(&b, &keys[0]), "NetStream.Publish.BadName");
    drop(publish(&b, &current).expect("the current key publishes"));
}

#[test]
fn a_redis_outage_is_503_and_refused_publishes_until_it_returns() {
    let mut redis = RedisServer::start();
    let mut a = node_a(&redis, "redis-outage-a");
    let mut b = node_b(&redis, "redis-outage-b");
    let key = key_from(&a, "/control/get?room=movie");
    drop(publish(&b, &key).expect("publishes while Redis is up"));

    redis.stop();
    for route in ["get", "reset", "delete"] {
        let started = Instant::now();
        let (status, data) = api(&a, &format!("/control/{route}?room=movie"));
        assert_eq!(status, 503, "{route}: {data}");
        let why = data.as_str().unwrap_or_default();
        assert!(why.starts_with("key store unavailable: Redis: "), "{why}");
        assert!(started.elapsed() < OUTAGE_ANSWER, "{:?}", started.elapsed());
    }
    let started = Instant::now();
    assert_eq!(refused(&b, &key), "NetStream.Publish.BadName");
    assert!(started.elapsed() < OUTAGE_ANSWER, "{:?}", started.elapsed());
    let line = b.wait_for_line(
        |l| l.contains("publish refused: key store unavailable"),
        WAIT,
    );
    assert!(line.is_some(), "B says why it refused");

    // Nothing crashed, and what needs no key still works: B plays, A's API answers.
    assert!(alive(&mut a) && alive(&mut b));
    let mut player = RtmpClient::connect(b.rtmp_addr(), "live").unwrap();
    player.play("movie").expect("playing needs no key");
    drop(player);
    assert_eq!(api(&a, "/control/nope").0, 404);

    // Redis comes back (empty: it saved nothing); both nodes recover by themselves.
    let since = a.line_count();
    redis.restart();
    let (status, data) = wait_for_status(&a, "/control/get?room=movie", 200);
    assert_eq!(status, 200, "A recovers: {data}");
    let fresh = data.as_str().unwrap().to_owned();
    assert_ne!(fresh, key, "Redis restarted empty");
    assert_eq!(wait_for_status(&b, "/control/get?room=movie", 200).1, fresh);
    drop(publish(&b, &fresh).expect("publishes again on B"));
    assert!(
        a.wait_for_line_from(since, |l| l.contains("Redis answers again"), WAIT)
            .is_some(),
        "A logs the recovery"
    );
    assert!(alive(&mut a) && alive(&mut b));
    no_password_in_logs(&[&a, &b]);
}

#[test]
fn a_publish_in_progress_survives_a_redis_restart() {
    let mut redis = RedisServer::start();
    let a = node_a(&redis, "redis-restart-a");
    let b = node_b(&redis, "redis-restart-b");
    let key = key_from(&a, "/control/get?room=movie");
    // The key is checked once, at publish: an outage after it must not touch the stream.
    let stream = common::hostile::HealthyStream::start(b.rtmp_addr(), "movie", &key);
    redis.stop();
    assert_eq!(api(&a, "/control/get?room=movie").0, 503, "Redis is down");
    redis.restart();
    let (status, data) = wait_for_status(&a, "/control/get?room=movie", 200);
    assert_eq!(status, 200, "{data}");
    // Redis came back empty: the running stream still lost no frame and was not cut.
    let frames = stream.finish();
    assert!(frames > 0);
}

#[test]
fn a_hung_redis_is_503_within_the_timeouts_not_a_hang() {
    let redis = RedisServer::start();
    let a = node_a(&redis, "redis-hung-a");
    let b = node_b(&redis, "redis-hung-b");
    let key = key_from(&a, "/control/get?room=movie");
    drop(publish(&b, &key).expect("publishes while Redis is up"));

    // A stopped Redis still accepts TCP connections (the kernel does) but never answers.
    redis.signal("STOP");
    for _ in 0..3 {
        let started = Instant::now();
        let (status, data) = api(&a, "/control/get?room=movie");
        assert_eq!(status, 503, "{data}");
        assert!(started.elapsed() < OUTAGE_ANSWER, "{:?}", started.elapsed());
        assert_eq!(
            data, "key store unavailable: Redis: no answer within 2 s",
            "a timeout, then the pause after the failed connect"
        );
    }
    let started = Instant::now();
    assert_eq!(refused(&b, &key), "NetStream.Publish.BadName");
    assert!(started.elapsed() < OUTAGE_ANSWER, "{:?}", started.elapsed());

    redis.signal("CONT");
    let (status, data) = wait_for_status(&a, "/control/get?room=movie", 200);
    assert_eq!((status, data), (200, Value::from(key.clone())), "same data");
    drop(publish(&b, &key).expect("publishes again once Redis answers"));
}

#[test]
fn a_node_starts_while_redis_is_down_and_recovers() {
    let mut redis = RedisServer::start();
    redis.stop();
    // This node keeps its keys in database 5.
    let url = format!("redis://:{PASSWORD_IN_URL}@{}/5", redis.addr());
    let mut a = Server::start("redis-late-a", &["--redis_addr", &url]);
    let warned = a.wait_for_line(|l| l.contains("Redis does not answer at start-up"), WAIT);
    assert!(warned.is_some(), "start-up warns and keeps running");
    assert_eq!(api(&a, "/control/get?room=movie").0, 503);
    assert!(alive(&mut a));
    redis.restart();
    let (status, data) = wait_for_status(&a, "/control/get?room=movie", 200);
    assert_eq!(status, 200, "{data}");
    let key = data.as_str().unwrap().to_owned();
    assert_eq!(redis.get_in("5", "shardcast:room:movie"), Some(key.clone()));
    assert_eq!(redis.get("shardcast:room:movie"), None, "not in database 0");
    drop(publish(&a, &key).expect("publishes once Redis is up"));
}
