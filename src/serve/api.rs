//! The control API listener: HTTP/1.1 keep-alive connections on the sans-IO parser, routed
//! by `crate::api::route` (JWT check first) to the control routes or `/statics/`.

use super::io::{Conn, Io};
use super::{statics, within, ShardState};
use crate::api::{self, ApiContext, Route};
use crate::http::{self, HttpError, Limits, Request, Response};
use crate::stats::Proto;
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{debug, Instrument};

/// Serve one API connection until it closes, errs or idles out.
pub(crate) async fn serve(st: Rc<ShardState>, stream: TcpStream, peer: SocketAddr) {
    let conn_id = st.next_conn_id();
    let span = tracing::debug_span!("api", shard = st.id, conn = conn_id, %peer);
    async move {
        let io = Conn::new(stream);
        io.set_write_timeout(Some(Duration::from_secs(st.cfg.write_timeout)));
        let handler = |req: Request| {
            let st = st.clone();
            async move { respond(&st, &req).await }
        };
        if let Err(why) = serve_requests(&st, Proto::Api, &io, handler).await {
            debug!(reason = %why, "closing");
        }
        // Half-close and drain, so a final error reply is not lost to a reset.
        super::io::linger_close(&io, super::io::LINGER).await;
    }
    .instrument(span)
    .await
}

/// Answer the requests of one keep-alive connection with `handler`, in order (pipelining
/// safe). A response body is written as its own `Bytes`, never copied per request.
pub(super) async fn serve_requests<S, H, F>(
    st: &ShardState,
    proto: Proto,
    io: &S,
    handler: H,
) -> Result<(), String>
where
    S: Io,
    H: Fn(Request) -> F,
    F: std::future::Future<Output = Response>,
{
    let limits = Limits {
        max_header_bytes: st.cfg.http_max_header_bytes,
        max_body_bytes: st.cfg.http_max_body_bytes,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    loop {
        let (req, used) = match read_request(st, io, &mut buf, &limits).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                out.clear();
                let resp = e.to_response();
                st.stats.counters.http_response(proto, resp.status);
                resp.write_to(&mut out, false, false);
                io.write_all(&out).await.map_err(|e| e.to_string())?;
                return Err(e.to_string());
            }
        };
        buf.drain(..used);
        st.stats.counters.bytes_in(proto, used);
        let keep_alive = req.keep_alive();
        let head_only = req.method == "HEAD";
        let (method, path) = (req.method.clone(), req.path.clone());
        let resp = handler(req).await;
        debug!(%method, %path, status = resp.status, "request");
        let counters = &st.stats.counters;
        counters.http_response(proto, resp.status);
        out.clear();
        resp.write_to(&mut out, true, keep_alive);
        io.write_all(&out).await.map_err(|e| e.to_string())?;
        counters.bytes_out(proto, out.len());
        if !head_only {
            io.write_all(&resp.body).await.map_err(|e| e.to_string())?;
            counters.bytes_out(proto, resp.body.len());
        }
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Read until one whole request is buffered. `Ok(None)`: the peer closed or idled out
/// between requests. A request head must arrive within `http_header_timeout` of its first
/// byte (slowloris), an idle keep-alive connection lasts `http_keepalive_timeout`.
pub(super) async fn read_request(
    st: &ShardState,
    io: &impl Io,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<(Request, usize)>, HttpError> {
    let header_timeout = Duration::from_secs(st.cfg.http_header_timeout);
    let idle_timeout = Duration::from_secs(st.cfg.http_keepalive_timeout);
    let mut first_byte = (!buf.is_empty()).then(Instant::now);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if let Some(parsed) = http::parse_request(buf, limits)? {
            return Ok(Some(parsed));
        }
        let wait = match first_byte {
            None => idle_timeout,
            Some(t) => header_timeout.saturating_sub(t.elapsed()),
        };
        let n = match within(wait, io.read(&mut chunk)).await {
            None if first_byte.is_none() => return Ok(None),
            None => return Err(HttpError::Timeout),
            Some(Ok(0)) | Some(Err(_)) => return Ok(None),
            Some(Ok(n)) => n,
        };
        first_byte.get_or_insert_with(Instant::now);
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Route a request: the JWT check, then a preflight, a static file or a control route.
async fn respond(st: &Rc<ShardState>, req: &Request) -> Response {
    match api::route(req, st.jwt.as_deref(), unix_now()) {
        Route::Answer(resp) => resp,
        Route::Statics(path) => statics::serve(st, path).await,
        Route::Control => control(st, req).await,
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it), for `exp` and `nbf`.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A control route; key-store calls run off the executor when the store may block. Relay
/// requests wait on the network, so they are served here rather than by `api::handle`.
async fn control(st: &Rc<ShardState>, req: &Request) -> Response {
    if let Some(kind) = req
        .decoded_path()
        .ok()
        .as_deref()
        .and_then(api::relay::route)
    {
        return super::relay::api_request(st, req, kind).await;
    }
    if st.keys.is_blocking() {
        let (keys, stats, relays) = (st.keys.clone(), st.board.clone(), st.relays.clone());
        let req = req.clone();
        glommio::executor()
            .spawn_blocking(move || {
                let ctx = ApiContext {
                    keys: &*keys,
                    stats: &stats,
                    relays: &relays,
                };
                api::handle(&req, &ctx)
            })
            .await
    } else {
        let ctx = ApiContext {
            keys: &*st.keys,
            stats: &st.board,
            relays: &st.relays,
        };
        api::handle(req, &ctx)
    }
}
