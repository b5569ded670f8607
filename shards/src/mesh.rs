//! The cross-shard channel mesh: one bounded lock-free channel per ordered pair of shards.
//!
//! Senders never wait on another shard on the hot path: [`Mesh::try_send`] fails fast when the
//! peer's channel is full, and the caller decides (drop and resync for media, retry from a
//! spawned task for control).

use glommio::channels::channel_mesh::{Receivers, Senders};
use glommio::GlommioError;
use glommio::ResourceType;
use std::cell::RefCell;
use std::rc::Rc;

/// Why a message could not be queued for another shard; the message comes back.
#[derive(Debug)]
pub enum SendError<M> {
    /// The peer's channel is at capacity.
    Full(M),
    /// The peer is gone (shutting down) or the index is not a peer.
    Closed(Option<M>),
}

/// This shard's view of the mesh.
pub struct Mesh<M: Send + 'static> {
    senders: Rc<Senders<M>>,
    receivers: RefCell<Option<Receivers<M>>>,
}

impl<M: Send + 'static> Mesh<M> {
    pub(crate) fn new(senders: Senders<M>, receivers: Receivers<M>) -> Self {
        Mesh {
            senders: Rc::new(senders),
            receivers: RefCell::new(Some(receivers)),
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

    /// Queue `msg` for shard `to` without waiting.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        self.senders.try_send_to(to, msg).map_err(into_send_error)
    }

    /// Queue `msg` for shard `to`, waiting (in this task only) while the channel is full.
    pub async fn send(&self, to: usize, msg: M) -> Result<(), SendError<M>> {
        self.senders.send_to(to, msg).await.map_err(into_send_error)
    }

    /// Queue `msg` now if there is room, else from a background task that waits for room.
    /// Used for rare control messages that must not be lost; the executor never blocks.
    pub fn send_or_spawn(&self, to: usize, msg: M) {
        match self.try_send(to, msg) {
            Ok(()) | Err(SendError::Closed(_)) => {}
            Err(SendError::Full(msg)) => {
                let senders = self.senders.clone();
                glommio::spawn_local(async move {
                    let _ = senders.send_to(to, msg).await;
                })
                .detach();
            }
        }
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
