//! The cross-shard channel mesh: one bounded lock-free channel per ordered pair of shards.
//!
//! Senders never wait on another shard on the hot path: [`Mesh::try_send`] fails fast when the
//! peer's channel is full, and the caller decides (drop and resync for media). Messages that
//! must not be lost go through [`Mesh::send_or_spawn`], which parks them in a per-peer backlog
//! drained by a background task when the channel is full. Order per peer is kept: while a
//! backlog exists, later messages join it (or, for `try_send`, are refused), so nothing
//! overtakes what was sent before it.

use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};
use glommio::{GlommioError, ResourceType};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Messages parked per peer before further reliable sends are dropped (with a log line).
const MAX_BACKLOG: usize = 65_536;

/// Why a message could not be queued for another shard; the message comes back.
#[derive(Debug)]
pub enum SendError<M> {
    /// The peer's channel is at capacity (or a backlog to it is waiting).
    Full(M),
    /// The peer is gone (shutting down) or the index is not a peer.
    Closed(Option<M>),
}

/// One shard's unconnected ends of the mesh, made on the main thread and moved, each to its
/// own executor (every end is owned by exactly one thread).
///
/// glommio's own `channel_mesh::MeshBuilder` is not used: it shares an `Rc` between the
/// executor threads it is cloned into, and its reference count races (seen as a rare
/// SIGSEGV at start-up). Plain `shared_channel`s have a single owner each.
pub(crate) struct Endpoints<M: Send + 'static> {
    senders: Vec<Option<SharedSender<M>>>,
    receivers: Vec<Option<SharedReceiver<M>>>,
}

/// Build the ends of a full mesh of `n` shards with `capacity` messages per channel:
/// element `i` belongs to shard `i`.
pub(crate) fn build<M: Send + 'static>(n: usize, capacity: usize) -> Vec<Endpoints<M>> {
    let mut ends: Vec<Endpoints<M>> = (0..n)
        .map(|_| Endpoints {
            senders: (0..n).map(|_| None).collect(),
            receivers: (0..n).map(|_| None).collect(),
        })
        .collect();
    for from in 0..n {
        for to in (0..n).filter(|&to| to != from) {
            let (tx, rx) = shared_channel::new_bounded(capacity);
            ends[from].senders[to] = Some(tx);
            ends[to].receivers[from] = Some(rx);
        }
    }
    ends
}

/// The receiving ends of one shard, with the peer each comes from.
type Inbound<M> = Vec<(usize, ConnectedReceiver<M>)>;

/// This shard's view of the mesh.
pub struct Mesh<M: Send + 'static> {
    id: usize,
    senders: Rc<Vec<Option<ConnectedSender<M>>>>,
    receivers: RefCell<Option<Inbound<M>>>,
    /// Per peer: reliable messages waiting for room, oldest first.
    backlog: Rc<RefCell<Vec<VecDeque<M>>>>,
}

impl<M: Send + 'static> Mesh<M> {
    /// Connect this shard's ends. Every shard must call this: a channel is usable once both
    /// of its ends are connected, so all ends are connected concurrently.
    pub(crate) async fn connect(id: usize, ends: Endpoints<M>) -> Self {
        let peers = ends.senders.len();
        let senders: Vec<_> = ends
            .senders
            .into_iter()
            .map(|tx| tx.map(|tx| glommio::spawn_local(tx.connect())))
            .collect();
        let receivers: Vec<_> = ends
            .receivers
            .into_iter()
            .enumerate()
            .filter_map(|(from, rx)| Some((from, glommio::spawn_local(rx?.connect()))))
            .collect();
        let mut connected_senders = Vec::with_capacity(peers);
        for task in senders {
            connected_senders.push(match task {
                Some(t) => Some(t.await),
                None => None,
            });
        }
        let mut connected_receivers = Vec::with_capacity(peers);
        for (from, task) in receivers {
            connected_receivers.push((from, task.await));
        }
        Mesh {
            id,
            senders: Rc::new(connected_senders),
            receivers: RefCell::new(Some(connected_receivers)),
            backlog: Rc::new(RefCell::new((0..peers).map(|_| VecDeque::new()).collect())),
        }
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Number of shards in the mesh.
    pub fn count(&self) -> usize {
        self.senders.len()
    }

    fn has_backlog(&self, to: usize) -> bool {
        self.backlog.borrow().get(to).is_some_and(|q| !q.is_empty())
    }

    /// Queue `msg` for shard `to` without waiting.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if self.has_backlog(to) {
            return Err(SendError::Full(msg));
        }
        match self.senders.get(to) {
            Some(Some(tx)) => tx.try_send(msg).map_err(into_send_error),
            _ => Err(SendError::Closed(Some(msg))),
        }
    }

    /// Queue `msg` now if there is room, else park it for a background task that sends it
    /// (and everything parked after it) as room appears. The executor never blocks.
    pub fn send_or_spawn(&self, to: usize, msg: M) {
        if self.has_backlog(to) {
            self.park(to, msg);
            return;
        }
        match self.try_send(to, msg) {
            Ok(()) | Err(SendError::Closed(_)) => {}
            Err(SendError::Full(msg)) => {
                self.park(to, msg);
                self.spawn_drain(to);
            }
        }
    }

    fn park(&self, to: usize, msg: M) {
        let mut backlog = self.backlog.borrow_mut();
        let Some(q) = backlog.get_mut(to) else { return };
        if q.len() >= MAX_BACKLOG {
            tracing::error!(to, "cross-shard backlog full: dropping a control message");
            return;
        }
        q.push_back(msg);
    }

    fn spawn_drain(&self, to: usize) {
        let senders = self.senders.clone();
        let backlog = self.backlog.clone();
        glommio::spawn_local(async move {
            loop {
                let next = backlog.borrow_mut().get_mut(to).and_then(|q| q.pop_front());
                let Some(msg) = next else { break };
                let Some(Some(tx)) = senders.get(to) else {
                    break;
                };
                if tx.send(msg).await.is_err() {
                    // The peer is gone: nothing parked for it can be delivered.
                    if let Some(q) = backlog.borrow_mut().get_mut(to) {
                        q.clear();
                    }
                    break;
                }
            }
        })
        .detach();
    }

    /// Start one task per peer that hands every arriving message to `handler(from, msg)`.
    /// Can be called once; later calls do nothing.
    pub fn spawn_receivers(&self, handler: impl Fn(usize, M) + 'static) {
        let Some(receivers) = self.receivers.borrow_mut().take() else {
            return;
        };
        let handler = Rc::new(handler);
        for (from, receiver) in receivers {
            let handler = handler.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = receiver.recv().await {
                    handler(from, msg);
                }
            })
            .detach();
        }
    }

    /// Receive the next message from the first peer that has one, trying peers in order
    /// (a test helper; servers use [`Mesh::spawn_receivers`]). `None` when this shard has no
    /// peers or the receivers were handed to `spawn_receivers`.
    pub async fn recv_first(&self) -> Option<(usize, M)> {
        let receivers = self.receivers.borrow_mut().take()?;
        let mut result = None;
        for (from, rx) in &receivers {
            if let Some(msg) = rx.recv().await {
                result = Some((*from, msg));
                break;
            }
        }
        *self.receivers.borrow_mut() = Some(receivers);
        result
    }
}

fn into_send_error<M>(e: GlommioError<M>) -> SendError<M> {
    match e {
        GlommioError::WouldBlock(ResourceType::Channel(m)) => SendError::Full(m),
        GlommioError::Closed(ResourceType::Channel(m)) => SendError::Closed(Some(m)),
        _ => SendError::Closed(None),
    }
}
