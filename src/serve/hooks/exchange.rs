//! One hook call over the network: resolve (cached per shard), connect, TLS for `https://`,
//! the request, and the answer read into a bounded buffer. The bytes are made and parsed by
//! `crate::hooks` (sans-IO); timeouts are the caller's.

use super::super::io::Conn;
use super::super::tls::{TlsConn, Transport};
use crate::hooks::{build_request, parse_response, HookUrl, Reply, MAX_RESPONSE_BYTES};
use glommio::net::TcpStream;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resolve, connect (over TLS for `https://`), send the request and read the answer (no
/// timeout of its own).
pub(super) async fn exchange(url: &str, body: &[u8], tls: &TlsClient) -> Result<Reply, String> {
    let url = HookUrl::parse(url)?;
    let stream = connect_any(&resolve(&url).await?).await?;
    let io = secure(Conn::new(stream), &url, tls)?;
    io.write_all(&build_request(&url, body))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = io
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let take = n.min(MAX_RESPONSE_BYTES + 1 - buf.len().min(MAX_RESPONSE_BYTES + 1));
        buf.extend_from_slice(&chunk[..take]);
        if let Some(reply) = parse_response(&buf, n == 0)? {
            io.shutdown().await;
            return Ok(reply);
        }
    }
}

/// The client TLS configuration of `https://` hooks: the relays' (system roots or
/// `SSL_CERT_FILE`, host names checked unless `enable_tls_verify` is off), or why there is
/// none.
pub(crate) type TlsClient = Result<Arc<rustls::ClientConfig>, String>;

/// The connection to speak HTTP on: as is for `http://`, TLS over it for `https://` (SNI and
/// the certificate check use the URL's host).
fn secure(conn: Conn, url: &HookUrl, tls: &TlsClient) -> Result<Transport, String> {
    if !url.tls {
        return Ok(Transport::Plain(conn));
    }
    let config = tls.clone().map_err(|why| format!("https: {why}"))?;
    TlsConn::client(conn, config, &url.host)
        .map(|t| Transport::Tls(Box::new(t)))
        .map_err(|e| format!("https: {e}"))
}

/// Connect to the first of `addrs` that accepts (`localhost` may resolve to `::1` first
/// while the hook server listens on 127.0.0.1 only).
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// How long a host name's addresses are reused before the resolver is asked again.
const RESOLVED_TTL: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered (a dead resolver is not asked once per call).
const FAILED_TTL: Duration = Duration::from_secs(5);
/// Host names remembered per shard.
const MAX_RESOLVED: usize = 256;

type Resolved = Result<Rc<[SocketAddr]>, String>;

thread_local! {
    /// This shard's lookups by (host, port), with when they expire. The system resolver may
    /// block, so it runs on the executor's one blocking thread; caching keeps hook calls from
    /// queueing one lookup each behind a slow resolver.
    static RESOLVED: std::cell::RefCell<ahash::AHashMap<(String, u16), (Instant, Resolved)>> =
        std::cell::RefCell::default();
}

/// The hook server's addresses: an IP literal as is, a host name through the system resolver
/// on the executor's blocking thread, cached for [`RESOLVED_TTL`].
async fn resolve(url: &HookUrl) -> Result<Rc<[SocketAddr]>, String> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(Rc::from([SocketAddr::new(ip, url.port)]));
    }
    let key = (url.host.clone(), url.port);
    let now = Instant::now();
    let cached = RESOLVED.with(|r| r.borrow().get(&key).cloned());
    if let Some((_, found)) = cached.filter(|(expires, _)| *expires > now) {
        return found;
    }
    let (host, port) = key.clone();
    let looked_up = glommio::executor()
        .spawn_blocking(move || (host.as_str(), port).to_socket_addrs().map(Vec::from_iter))
        .await;
    let found: Resolved = match looked_up {
        Ok(addrs) if !addrs.is_empty() => Ok(addrs.into()),
        Ok(_) => Err(format!("{}: no address", url.host)),
        Err(e) => Err(format!("resolve {}: {e}", url.host)),
    };
    let ttl = if found.is_ok() {
        RESOLVED_TTL
    } else {
        FAILED_TTL
    };
    RESOLVED.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= MAX_RESOLVED {
            r.retain(|_, (expires, _)| *expires > now);
        }
        if r.len() < MAX_RESOLVED {
            r.insert(key, (Instant::now() + ttl, found.clone()));
        }
    });
    found
}
