//! The cross-shard channel mesh: one bounded lock-free channel per ordered pair of shards.
//!
//! Senders never wait on another shard on the hot path: [`Mesh::try_send`] fails fast when the
//! peer's channel is full, and the caller decides (drop and resync for media). Messages that
//! must not be lost go through [`Mesh::send_or_spawn`], which parks them in a per-peer backlog
//! drained by a background task when the channel is full. Order per peer is kept: while a
//! backlog exists, later messages join it (or, for `try_send`, are refused), so nothing
//! overtakes what was sent before it.

use glommio::channels::channel_mesh::{Receivers, Senders};
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

/// This shard's view of the mesh.
pub struct Mesh<M: Send + 'static> {
    senders: Rc<Senders<M>>,
    receivers: RefCell<Option<Receivers<M>>>,
    /// Per peer: reliable messages waiting for room, oldest first.
    backlog: Rc<RefCell<Vec<VecDeque<M>>>>,
}

impl<M: Send + 'static> Mesh<M> {
    pub(crate) fn new(senders: Senders<M>, receivers: Receivers<M>) -> Self {
        let peers = senders.nr_consumers();
        Mesh {
            senders: Rc::new(senders),
            receivers: RefCell::new(Some(receivers)),
            backlog: Rc::new(RefCell::new((0..peers).map(|_| VecDeque::new()).collect())),
        }
    }

    /// This shard's index.
    pub fn id(&self) -> usize {
        self.senders.peer_id()
    }

    /// Number of shards in the mesh.
    pub fn count(&self) -> usize {
        self.senders.nr_consumers()
    }

    fn has_backlog(&self, to: usize) -> bool {
        self.backlog.borrow().get(to).is_some_and(|q| !q.is_empty())
    }

    /// Queue `msg` for shard `to` without waiting.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        if self.has_backlog(to) {
            return Err(SendError::Full(msg));
        }
        self.senders.try_send_to(to, msg).map_err(into_send_error)
    }

    /// Queue `msg` now if there is room, else park it for a background task that sends it
    /// (and everything parked after it) as room appears. The executor never blocks.
    pub fn send_or_spawn(&self, to: usize, msg: M) {
        if self.has_backlog(to) {
            self.park(to, msg);
            return;
        }
        match self.senders.try_send_to(to, msg).map_err(into_send_error) {
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
                if senders.send_to(to, msg).await.is_err() {
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
        let Some(mut receivers) = self.receivers.borrow_mut().take() else {
            return;
        };
        let handler = Rc::new(handler);
        for (from, receiver) in receivers.streams() {
            let handler = handler.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = receiver.recv().await {
                    handler(from, msg);
                }
            })
            .detach();
        }
    }

    /// Receive the next message from any peer (test helper and simple consumers).
    /// Returns `None` when this shard has no peers or the receivers were handed to
    /// [`Mesh::spawn_receivers`].
    pub async fn recv_any(&self) -> Option<(usize, M)> {
        let receivers = self.receivers.borrow_mut().take()?;
        let peers: Vec<usize> = (0..receivers.nr_producers())
            .filter(|&p| p != self.id())
            .collect();
        let mut result = None;
        'outer: loop {
            for &p in &peers {
                if let Ok(Some(msg)) = receivers.recv_from(p).await {
                    result = Some((p, msg));
                    break 'outer;
                }
            }
            if peers.is_empty() {
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
