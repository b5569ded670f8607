//! The raw fan-out baseline: the ceiling of "one stream to many sockets" on this machine.
//!
//! One glommio executor per thread, each with its own SO_REUSEPORT listener and its own
//! [`Pacer`] (stamped, stream index 0). Every tag becomes one FLV tag `Bytes`, and that same
//! `Bytes` is queued to every client of the executor; each client's writer task writes its
//! queue in order. A new client gets the FLV header, the metadata and the sequence headers,
//! then tags from the next keyframe. A client more than `max_behind` bytes behind is dropped.
//! No protocol work beyond that: no HTTP, no reading from clients.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use shardcast::media::flv::write_tag;

use crate::clock::{mono_ns, secs_ns, sleep_until};
use crate::flvfile::{FlvFile, TAG_VIDEO};
use crate::net::write_all_vectored;
use crate::replay::Pacer;

/// What raw-fanout does.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub listen: SocketAddr,
    pub file: Arc<FlvFile>,
    pub threads: usize,
    /// Queued bytes after which a client is dropped.
    pub max_behind: usize,
    /// The server stops by itself after this many seconds.
    pub exit_after: f64,
}

/// One client's queue, shared by the broadcaster and the client's writer task.
struct Client {
    queue: RefCell<VecDeque<Bytes>>,
    queued: Cell<usize>,
    waker: Cell<Option<Waker>>,
    need_keyframe: Cell<bool>,
    dead: Cell<bool>,
}

impl Client {
    fn push(&self, b: Bytes, max_behind: usize) {
        if self.dead.get() {
            return;
        }
        self.queued.set(self.queued.get() + b.len());
        self.queue.borrow_mut().push_back(b);
        if self.queued.get() > max_behind {
            self.dead.set(true);
            self.queue.borrow_mut().clear();
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// Writes a client's queue until it dies or the connection fails: each wake-up takes
/// everything queued and sends it with gathered `sendmsg` calls, straight from the shared
/// `Bytes` (as shardcast's players are written).
async fn writer(client: Rc<Client>, stream: TcpStream) {
    let stream = RefCell::new(stream);
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let alive = poll_fn(|cx| {
            if client.dead.get() {
                return Poll::Ready(false);
            }
            let mut queue = client.queue.borrow_mut();
            if queue.is_empty() {
                client.waker.set(Some(cx.waker().clone()));
                return Poll::Pending;
            }
            batch.extend(queue.drain(..));
            Poll::Ready(true)
        })
        .await;
        if !alive {
            break;
        }
        let len: usize = batch.iter().map(Bytes::len).sum();
        if write_all_vectored(&stream, &mut batch).await.is_err() {
            client.dead.set(true);
            break;
        }
        client.queued.set(client.queued.get().saturating_sub(len));
    }
    client.queue.borrow_mut().clear();
}

/// One FLV tag as bytes.
fn tag_bytes(type_id: u8, timestamp: u32, body: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(body.len() + 15);
    write_tag(&mut v, type_id, timestamp, body);
    Bytes::from(v)
}

async fn executor_main(cfg: Arc<FanoutConfig>, bound: Arc<AtomicUsize>) -> Result<(), String> {
    let listener =
        TcpListener::bind(cfg.listen).map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let mut pacer = Pacer::new(cfg.file.clone(), 0)?;
    // The header tags are all due at 0: the start of every client's stream.
    let mut init = vec![cfg.file.header.clone()];
    while pacer.header_pending() {
        let tag = pacer.next_tag(mono_ns());
        init.push(tag_bytes(tag.type_id, tag.timestamp, &tag.body));
    }
    let clients: Rc<RefCell<Vec<Rc<Client>>>> = Rc::default();
    let accepting = {
        let clients = clients.clone();
        glommio::spawn_local(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok(s) => s,
                    Err(_) => {
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let client = Rc::new(Client {
                    queue: RefCell::new(init.iter().cloned().collect()),
                    queued: Cell::new(init.iter().map(Bytes::len).sum()),
                    waker: Cell::new(None),
                    need_keyframe: Cell::new(true),
                    dead: Cell::new(false),
                });
                glommio::spawn_local(writer(client.clone(), stream)).detach();
                clients.borrow_mut().push(client);
            }
        })
    };
    bound.fetch_add(1, Ordering::AcqRel);
    let start = mono_ns();
    let end = start + secs_ns(cfg.exit_after);
    loop {
        let due = start + pacer.next_ts_ms() * 1_000_000;
        if due >= end {
            break;
        }
        sleep_until(due).await;
        let now = mono_ns();
        while start + pacer.next_ts_ms() * 1_000_000 <= now {
            let tag = pacer.next_tag(mono_ns());
            let bytes = tag_bytes(tag.type_id, tag.timestamp, &tag.body);
            let keyframe = tag.type_id == TAG_VIDEO && tag.keyframe;
            let mut list = clients.borrow_mut();
            list.retain(|c| !c.dead.get());
            for c in list.iter() {
                if c.need_keyframe.get() {
                    if !keyframe {
                        continue;
                    }
                    c.need_keyframe.set(false);
                }
                c.push(bytes.clone(), cfg.max_behind);
            }
        }
    }
    drop(accepting);
    Ok(())
}

/// Runs the server until `exit_after`; `on_ready(addr)` is called once every executor
/// listens.
pub fn run(cfg: FanoutConfig, on_ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    // Fix one concrete port for the whole SO_REUSEPORT group (port 0 allowed).
    let reservation =
        shards::reserve(cfg.listen).map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let addr = reservation.addr;
    let threads = cfg.threads;
    let cfg = Arc::new(FanoutConfig {
        listen: addr,
        ..cfg
    });
    let bound = Arc::new(AtomicUsize::new(0));
    let for_pool = (cfg.clone(), bound.clone());
    let pool = LocalExecutorPoolBuilder::new(PoolPlacement::Unbound(threads))
        .name("fanout")
        .on_all_shards(move || {
            let (cfg, bound) = for_pool.clone();
            async move { executor_main(cfg, bound).await }
        })
        .map_err(|e| format!("starting {threads} executors: {e}"))?;
    let deadline = mono_ns() + secs_ns(10.0);
    while bound.load(Ordering::Acquire) < threads {
        if mono_ns() > deadline || pool.handles().iter().any(|h| h.is_finished()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if bound.load(Ordering::Acquire) == threads {
        on_ready(addr);
    }
    let mut failure = None;
    for r in pool.join_all() {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(format!("executor: {e}")),
        }
    }
    drop(reservation);
    failure.map_or(Ok(()), Err)
}
