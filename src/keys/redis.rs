//! Room keys in Redis (`redis_addr`), so that several nodes behind a load balancer accept the
//! same keys (livego.md §3.3, fixed).
//!
//! Layout: `{prefix}room:{room}` holds a room's key and `{prefix}key:{key}` a key's room. The
//! two namespaces differ right after the prefix (`r` / `k`), so a room name can never be taken
//! for a key (livego kept both directions in one namespace). Every change is one Lua script, run
//! atomically by Redis: two nodes creating or resetting the same room at once agree on one key,
//! and the two directions are never seen out of step. Scripts touch the old key's entry, whose
//! name they only learn inside the script, so this needs a standalone Redis (or a primary), not
//! Redis Cluster.
//!
//! Every call blocks on the network ([`KeyStore::is_blocking`]): callers run it off the
//! executor. A down Redis answers within [`CONNECT_TIMEOUT`] or [`IO_TIMEOUT`] with
//! [`KeyError::Unavailable`], and the next call reconnects by itself.

use std::fmt::{self, Write as _};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{Client, Connection, FromRedisValue, IntoConnectionInfo, RedisError, RedisResult};
use tracing::{info, warn};

use super::{new_key, KeyError, KeyStore, KEY_LEN};

/// Longest wait for a TCP connection to Redis, including AUTH (SELECT then takes at most
/// [`IO_TIMEOUT`]).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one command to be written or answered.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, calls fail at once for this long instead of each waiting up to
/// [`CONNECT_TIMEOUT`]: each shard has a single blocking thread, and a blackholed Redis would
/// otherwise queue every key check behind 2 s attempts.
pub const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Idle connections kept for reuse (at most one call per shard runs at a time).
const MAX_IDLE: usize = 8;
/// Fresh keys tried when the drawn one is already taken (never happens with 62^48 keys).
const MINT_ATTEMPTS: usize = 4;
/// Redis's port when `redis_addr` names none.
const DEFAULT_PORT: u16 = 6379;

/// `get_key`. KEYS: the room's entry, the candidate key's entry; ARGV: candidate key, room.
/// Returns the room's key, creating it with the candidate if the room has none (the whole
/// script is atomic: a `SET NX` on the room, and its reverse entry with it); nil when the
/// candidate is already taken.
const GET_KEY: &str = r"
local current = redis.call('GET', KEYS[1])
if current then return current end
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
";

/// `reset_key`. KEYS and ARGV as [`GET_KEY`], plus ARGV[3]: the key namespace. Replaces the
/// room's key and removes the old key's entry in the same step, so the old key is refused from
/// the moment the new one exists. Two resets at once run one after the other: the last wins
/// and no old entry is left behind. Nil when the candidate is taken.
const RESET_KEY: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local old = redis.call('GET', KEYS[1])
if old and redis.call('GET', ARGV[3] .. old) == ARGV[2] then
  redis.call('DEL', ARGV[3] .. old)
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return ARGV[1]
";

/// `delete_room`. KEYS: the room's entry; ARGV: the key namespace, the room. Removes both
/// directions; 1 if the room existed, else 0 (livego's Redis store inverted this).
const DELETE_ROOM: &str = r"
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', ARGV[1] .. old) == ARGV[2] then
  redis.call('DEL', ARGV[1] .. old)
end
return 1
";

/// Where Redis is: `redis_addr` (`HOST:PORT` as livego, or a `redis://` URL) with `redis_pwd`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// The URL handed to the client; holds the password.
    url: String,
    /// The address without credentials, for logs.
    shown: String,
}

impl RedisTarget {
    /// Checks `addr` and builds the client URL, adding `password` (AUTH) when non-empty:
    /// - `HOST:PORT`, `[IPv6]:PORT`, `HOST` (port 6379), `:PORT` (127.0.0.1), as livego;
    /// - `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`: a URL can also pick a database.
    ///
    /// A password given both in the URL and as `password` is refused rather than guessed.
    pub fn parse(addr: &str, password: &str) -> Result<RedisTarget, String> {
        let target = match addr.split_once("://") {
            Some((scheme, rest)) => Self::from_url(scheme, rest, password)?,
            None => Self::from_host_port(addr, password)?,
        };
        // The client parses the URL without connecting; its verdict is the one that counts.
        Client::open(target.url.as_str())
            .map_err(|e| format!("`{}` is not a usable Redis address: {e}", target.shown))?;
        Ok(target)
    }

    fn from_url(scheme: &str, rest: &str, password: &str) -> Result<RedisTarget, String> {
        match scheme.to_ascii_lowercase().as_str() {
            "redis" => {}
            "rediss" => return Err("TLS (rediss://) is not supported: use redis://".to_owned()),
            _ => {
                return Err(format!(
                    "`{scheme}://` is not supported: use HOST:PORT or redis://HOST:PORT[/DB]"
                ))
            }
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("the redis:// URL names no host".to_owned());
        }
        let credentials = credentials(userinfo, password)?;
        Ok(RedisTarget {
            url: format!("redis://{credentials}{host}{tail}"),
            shown: format!("redis://{host}{tail}"),
        })
    }

    fn from_host_port(addr: &str, password: &str) -> Result<RedisTarget, String> {
        let (host, port) = split_host_port(addr)?;
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        let credentials = credentials(None, password)?;
        Ok(RedisTarget {
            url: format!("redis://{credentials}{host}:{port}"),
            shown: format!("{host}:{port}"),
        })
    }
}

/// `HOST:PORT`, `[IPv6]:PORT` or `HOST` into host (brackets kept) and port.
fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let bad = || format!("`{addr}` is not a Redis address (use HOST:PORT or redis://HOST:PORT)");
    let (host, port) = if addr.starts_with('[') {
        let close = addr.find(']').ok_or_else(bad)?;
        match &addr[close + 1..] {
            "" => (&addr[..=close], None),
            rest => (
                &addr[..=close],
                Some(rest.strip_prefix(':').ok_or_else(bad)?),
            ),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => return Err(bad()),
            Some((host, port)) => (host, Some(port)),
            None => (addr, None),
        }
    };
    if host.contains(['/', '@', '?', '#']) || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    match port.map(str::parse::<u16>) {
        None => Ok((host, DEFAULT_PORT)),
        Some(Ok(port)) if port != 0 => Ok((host, port)),
        Some(_) => Err(bad()),
    }
}

/// The `USER:PASSWORD@` part of the URL: the URL's own, plus `password` when it has none.
fn credentials(userinfo: Option<&str>, password: &str) -> Result<String, String> {
    match (userinfo, password.is_empty()) {
        (None, true) => Ok(String::new()),
        (None, false) => Ok(format!(":{}@", percent_encode(password))),
        (Some(userinfo), true) => Ok(format!("{userinfo}@")),
        (Some(userinfo), false) if userinfo.contains(':') => Err(
            "redis_pwd is set and the redis_addr URL holds a password too: give it once".to_owned(),
        ),
        (Some(user), false) => Ok(format!("{user}:{}@", percent_encode(password))),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so any password fits
/// in the URL's userinfo (the client decodes it).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Shows the address only: the password never reaches a log line.
impl fmt::Display for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisTarget({})", self.shown)
    }
}

/// The Redis names of the two directions, under one prefix (`redis_prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    prefix: String,
}

impl KeyNames {
    /// Names under `prefix` (may be empty).
    pub fn new(prefix: &str) -> Self {
        KeyNames {
            prefix: prefix.to_owned(),
        }
    }

    /// `{prefix}room:{room}`: holds the room's key.
    pub fn room(&self, room: &str) -> String {
        format!("{}room:{room}", self.prefix)
    }

    /// `{prefix}key:{key}`: holds the key's room.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.key_namespace())
    }

    /// `{prefix}key:`, which the scripts prepend to a key they read from Redis.
    pub fn key_namespace(&self) -> String {
        format!("{}key:", self.prefix)
    }
}

/// True if `name` could be a key made by [`new_key`]: anything else is refused without
/// asking Redis (a publish with a room name or garbage costs no round trip).
fn looks_like_key(name: &str) -> bool {
    name.len() == KEY_LEN && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Room keys in Redis.
pub struct RedisKeyStore {
    client: Client,
    /// The database to SELECT on each new connection (`redis://…/DB`; 0 needs none).
    db: i64,
    target: RedisTarget,
    names: KeyNames,
    /// Idle connections and the outage state. Held only to take or return a connection, never
    /// during I/O, and touched only by the API and at publish time, never per packet.
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    /// After a failed connect, no new attempt before this instant.
    retry_at: Option<Instant>,
    /// Why the last call failed, while Redis is failing (logged once per outage).
    down: Option<String>,
}

impl RedisKeyStore {
    /// A store on `target` under `prefix`. No connection is made until the first call.
    pub fn new(target: &RedisTarget, prefix: &str) -> Result<Self, String> {
        let (client, db) = client_for(&target.url)
            .map_err(|e| format!("`{target}` is not a usable Redis address: {e}"))?;
        Ok(RedisKeyStore {
            client,
            db,
            target: target.clone(),
            names: KeyNames::new(prefix),
            pool: Mutex::default(),
        })
    }

    /// One PING: whether Redis answers now (the start-up check).
    pub fn ping(&self) -> Result<(), KeyError> {
        self.with_conn(|con| redis::cmd("PING").query::<String>(con))
            .map(drop)
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // The pool is valid whatever a panicking holder was doing: at worst a connection is lost.
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `op` on a pooled connection, or a new one. A pooled connection that turns out to
    /// be dead (Redis restarted since) is dropped and `op` runs once more on a new one.
    fn with_conn<T>(
        &self,
        mut op: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, KeyError> {
        let pooled = self.lock().idle.pop();
        if let Some(mut con) = pooled {
            match op(&mut con) {
                Ok(value) => return Ok(self.succeeded(con, value)),
                Err(e) if is_dead_connection(&e) => {}
                Err(e) => return Err(self.failed(&e)),
            }
        }
        let mut con = self.connect()?;
        match op(&mut con) {
            Ok(value) => Ok(self.succeeded(con, value)),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// A new connection with read and write timeouts, unless a connect failed less than
    /// [`RECONNECT_PAUSE`] ago.
    fn connect(&self) -> Result<Connection, KeyError> {
        {
            let pool = self.lock();
            if let (Some(at), Some(why)) = (pool.retry_at, &pool.down) {
                if Instant::now() < at {
                    return Err(KeyError::Unavailable(why.clone()));
                }
            }
        }
        let made = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|mut con| {
                con.set_read_timeout(Some(IO_TIMEOUT))?;
                con.set_write_timeout(Some(IO_TIMEOUT))?;
                if self.db != 0 {
                    redis::cmd("SELECT").arg(self.db).exec(&mut con)?;
                }
                Ok(con)
            });
        made.map_err(|e| {
            let err = self.failed(&e);
            self.lock().retry_at = Some(Instant::now() + RECONNECT_PAUSE);
            err
        })
    }

    /// Keeps a connection that just worked, and ends an outage.
    fn succeeded<T>(&self, con: Connection, value: T) -> T {
        let mut pool = self.lock();
        if pool.idle.len() < MAX_IDLE {
            pool.idle.push(con);
        }
        pool.retry_at = None;
        if pool.down.take().is_some() {
            info!(redis = %self.target, "Redis answers again: room keys are back");
        }
        value
    }

    /// The error to return for a failed call; the connection it used is dropped. The first
    /// failure of an outage is logged.
    fn failed(&self, e: &RedisError) -> KeyError {
        // A read timeout shows as EAGAIN ("Resource temporarily unavailable"): say what it is.
        let why = match e.is_timeout() {
            true => format!("Redis: no answer within {} s", IO_TIMEOUT.as_secs()),
            false => format!("Redis: {e}"),
        };
        let mut pool = self.lock();
        if pool.down.is_none() {
            warn!(
                redis = %self.target,
                error = %why,
                "Redis fails: the key API answers 503 and publishes are refused until it answers"
            );
        }
        pool.down = Some(why.clone());
        KeyError::Unavailable(why)
    }

    /// Draws candidate keys until `script` (with KEYS room, candidate and ARGV candidate, room,
    /// `extra`) returns one: nil means the candidate was taken.
    fn mint(&self, script: &str, room: &str, extra: &[&str]) -> Result<String, KeyError> {
        let room_entry = self.names.room(room);
        for _ in 0..MINT_ATTEMPTS {
            let candidate = new_key();
            let key_entry = self.names.key(&candidate);
            let mut args = vec![candidate.as_str(), room];
            args.extend_from_slice(extra);
            let keys = [room_entry.as_str(), key_entry.as_str()];
            let minted: Option<String> = self.with_conn(|con| eval(con, script, &keys, &args))?;
            if let Some(key) = minted {
                return Ok(key);
            }
        }
        Err(KeyError::Unavailable(format!(
            "no unused key after {MINT_ATTEMPTS} attempts"
        )))
    }
}

/// The client for `url`, set to send nothing but AUTH when it connects, and the database
/// number, which [`RedisKeyStore::connect`] selects itself. The client sends its setup commands
/// as one pipeline and reads every reply even after one timed out, so each extra command there
/// (CLIENT SETINFO twice, SELECT) would add a whole timeout against a Redis that accepts
/// connections but never answers (seen: 6 s instead of 2).
fn client_for(url: &str) -> RedisResult<(Client, i64)> {
    let info = url.into_connection_info()?;
    let db = info.redis_settings().db();
    let settings = info
        .redis_settings()
        .clone()
        .set_skip_set_lib_name()
        .set_db(0);
    Ok((Client::open(info.set_redis_settings(settings))?, db))
}

/// True when the error says the connection itself is gone (closed, reset), not that Redis is
/// slow: a timeout is not retried, so a hung Redis costs one [`IO_TIMEOUT`], not two.
fn is_dead_connection(e: &RedisError) -> bool {
    e.is_connection_dropped() || (e.is_io_error() && !e.is_timeout())
}

/// `EVAL script numkeys keys... args...`. Plain EVAL (not the client's `Script`, which needs
/// an extra feature): the scripts are a few hundred bytes and run only on key changes.
fn eval<T: FromRedisValue>(
    con: &mut Connection,
    script: &str,
    keys: &[&str],
    args: &[&str],
) -> RedisResult<T> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len());
    for word in keys.iter().chain(args) {
        cmd.arg(*word);
    }
    cmd.query(con)
}

impl KeyStore for RedisKeyStore {
    fn get_key(&self, room: &str) -> Result<String, KeyError> {
        self.mint(GET_KEY, room, &[])
    }

    fn reset_key(&self, room: &str) -> Result<String, KeyError> {
        let namespace = self.names.key_namespace();
        self.mint(RESET_KEY, room, &[namespace.as_str()])
    }

    fn delete_room(&self, room: &str) -> Result<bool, KeyError> {
        let room_entry = self.names.room(room);
        let namespace = self.names.key_namespace();
        let (keys, args) = ([room_entry.as_str()], [namespace.as_str(), room]);
        let existed: i64 = self.with_conn(|con| eval(con, DELETE_ROOM, &keys, &args))?;
        Ok(existed == 1)
    }

    fn room_for_key(&self, key: &str) -> Result<Option<String>, KeyError> {
        if !looks_like_key(key) {
            return Ok(None);
        }
        let entry = self.names.key(key);
        self.with_conn(|con| redis::cmd("GET").arg(&entry).query(con))
    }

    fn is_blocking(&self) -> bool {
        true
    }
}

/// Shows where, never a key or the password.
impl fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("redis", &self.target.shown)
            .field("prefix", &self.names.prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(addr: &str, password: &str) -> (String, String) {
        let t = RedisTarget::parse(addr, password).unwrap_or_else(|e| panic!("{addr}: {e}"));
        (t.url, t.shown)
    }

    fn refused(addr: &str, password: &str) -> String {
        match RedisTarget::parse(addr, password) {
            Ok(t) => panic!("{addr} was accepted as {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn livego_host_port() {
        let url = |addr| target(addr, "").0;
        assert_eq!(
            target("127.0.0.1:6379", ""),
            ("redis://127.0.0.1:6379".into(), "127.0.0.1:6379".into())
        );
        assert_eq!(url("redis.internal:6380"), "redis://redis.internal:6380");
        assert_eq!(url("localhost"), "redis://localhost:6379");
        assert_eq!(url(":6390"), "redis://127.0.0.1:6390");
        assert_eq!(url("[::1]:6391"), "redis://[::1]:6391");
        assert_eq!(url("[::1]"), "redis://[::1]:6379");
    }

    #[test]
    fn bad_host_port() {
        for addr in [
            "host:port",
            "host:0",
            "host:70000",
            "::1:6379",
            "[::1",
            "[::1]6379",
            "a/b:1",
            "user@host:1",
            "a b:1",
        ] {
            let e = refused(addr, "");
            assert!(e.contains(addr), "{addr}: {e}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            target("redis://10.0.0.1:6379/2", ""),
            (
                "redis://10.0.0.1:6379/2".into(),
                "redis://10.0.0.1:6379/2".into()
            )
        );
        assert_eq!(target("REDIS://h", "").0, "redis://h");
        assert_eq!(target("redis://h:1/3", "pw").0, "redis://:pw@h:1/3");
        assert_eq!(target("redis://alice@h:1", "pw").0, "redis://alice:pw@h:1");
        let (url, shown) = target("redis://alice:s3cret@h:1/0", "");
        assert_eq!(url, "redis://alice:s3cret@h:1/0");
        assert_eq!(shown, "redis://h:1/0");
    }

    #[test]
    fn bad_urls() {
        assert!(refused("rediss://h:6379", "").contains("TLS"));
        assert!(refused("http://h:6379", "").contains("`http://` is not supported"));
        assert!(refused("redis:///0", "").contains("no host"));
        assert!(refused("redis://h:1/notadb", "").contains("not a usable Redis address"));
        let twice = refused("redis://:a@h:1", "b");
        assert!(twice.contains("give it once"), "{twice}");
        assert!(!twice.contains(":a@"), "{twice}");
    }

    #[test]
    fn passwords_are_encoded_and_never_shown() {
        let password = "p@ss:w/rd %é";
        let (url, shown) = target("127.0.0.1:6379", password);
        assert_eq!(url, "redis://:p%40ss%3Aw%2Frd%20%25%C3%A9@127.0.0.1:6379");
        assert!(!shown.contains("p%40ss") && !shown.contains("p@ss"));
        let t = RedisTarget::parse("redis://h:1", password).unwrap();
        assert_eq!(t.to_string(), "redis://h:1");
        assert_eq!(format!("{t:?}"), "RedisTarget(redis://h:1)");
        assert_eq!(percent_encode("Az09-._~"), "Az09-._~");
    }

    #[test]
    fn rooms_and_keys_have_separate_names() {
        let names = KeyNames::new("shardcast:");
        assert_eq!(names.room("movie"), "shardcast:room:movie");
        assert_eq!(names.key("abc"), "shardcast:key:abc");
        assert_eq!(names.key_namespace(), "shardcast:key:");
        // The namespaces part right after the prefix, whatever the names hold.
        for (room, key) in [("x", "x"), ("key:x", "x"), ("x", "room:x"), ("", "")] {
            assert_ne!(names.room(room), names.key(key), "{room} / {key}");
        }
        let bare = KeyNames::new("");
        assert_eq!(
            (bare.room("a"), bare.key("a")),
            ("room:a".into(), "key:a".into())
        );
    }

    #[test]
    fn only_key_shaped_names_reach_redis() {
        assert!(looks_like_key(&new_key()));
        assert!(!looks_like_key("movie"));
        assert!(!looks_like_key(&"a".repeat(KEY_LEN + 1)));
        assert!(!looks_like_key(&format!("{}-", "a".repeat(KEY_LEN - 1))));
    }

    #[test]
    fn a_down_redis_is_unavailable_quickly() {
        // A port nothing listens on: refused at once, then the pause answers without trying.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = RedisTarget::parse(&format!("127.0.0.1:{port}"), "secret").unwrap();
        let store = RedisKeyStore::new(&t, "shardcast:").unwrap();
        assert!(store.is_blocking());
        let started = Instant::now();
        for _ in 0..3 {
            match store.get_key("movie") {
                Err(KeyError::Unavailable(why)) => assert!(why.starts_with("Redis: "), "{why}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(store.room_for_key(&new_key()).is_err());
        assert_eq!(store.room_for_key("movie"), Ok(None), "no round trip");
        assert!(started.elapsed() < CONNECT_TIMEOUT);
        let shown = format!("{store:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
