//! The publishes and plays whose end the hooks are to hear, per shard: the [`Opened`] guard a
//! connection keeps (its drop sends `on_unpublish`/`on_stop`), the `on_update` rounds that
//! may revoke one, and what shutdown tells and waits for.

use super::{Decision, HookClient};
use crate::hooks::{Action, HookEvent};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// An open publish or play: the action that tells its end, its event, and why `on_update`
/// ended it, once it did.
pub(super) struct OpenEntry {
    end: Action,
    ev: HookEvent,
    revoked: Revoked,
}

/// Set by a refusing `on_update`; the connection's sweeper check reads it.
type Revoked = Rc<RefCell<Option<String>>>;

/// A publish or play whose end the hooks are to hear (`on_unpublish`, `on_stop`). The end is
/// told once: when this is dropped (the connection ended) or at shutdown, whichever comes
/// first.
pub(crate) struct Opened {
    hooks: Rc<HookClient>,
    id: u64,
    revoked: Revoked,
}

impl Opened {
    /// Why `on_update` refused this session, if it did: the connection must end.
    pub fn revoked(&self) -> Option<String> {
        self.revoked.borrow().clone()
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        let open = self.hooks.open.borrow_mut().remove(&self.id);
        if let Some(entry) = open {
            self.hooks.notify(entry.end, &entry.ev);
        }
    }
}

/// Counts a running notification task while it lives.
pub(super) struct Running(Rc<Cell<usize>>);

impl Running {
    pub(super) fn new(count: &Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl HookClient {
    /// A publish or play has started: its end, `end` with `ev`, is told when the returned
    /// guard drops, or at shutdown, and it is asked `on_update` every `hooks.update_secs`.
    /// `None` when `ev.app` has hooks for neither.
    pub fn open(self: &Rc<Self>, end: Action, ev: HookEvent) -> Option<Opened> {
        let watched = self.has(&ev.app, end) || self.has(&ev.app, Action::Update);
        if !watched || self.stopped.get() {
            return None;
        }
        let id = self.next_open.get() + 1;
        self.next_open.set(id);
        let revoked = Revoked::default();
        let entry = OpenEntry {
            end,
            ev,
            revoked: revoked.clone(),
        };
        self.open.borrow_mut().insert(id, entry);
        Some(Opened {
            hooks: self.clone(),
            id,
            revoked,
        })
    }

    /// Every `hooks.update_secs`, ask `on_update` about each open publish and play of an app
    /// that has it (all at once, each waiting for a slot like any decision), and mark the
    /// ones refused; the next round starts when every call of this one is over. `None` when
    /// no app has `on_update`.
    pub fn spawn_updater(self: &Rc<Self>) -> Option<glommio::Task<()>> {
        let any = self
            .cfg
            .server
            .iter()
            .any(|app| self.has(&app.appname, Action::Update));
        let me = self.clone();
        any.then(|| {
            super::super::spawn(async move {
                let every = Duration::from_secs(me.cfg.hooks.update_secs);
                loop {
                    glommio::timer::sleep(every).await;
                    me.update_round().await;
                }
            })
        })
    }

    async fn update_round(self: &Rc<Self>) {
        let due: Vec<(HookEvent, Revoked)> = self
            .open
            .borrow()
            .values()
            .filter(|e| e.revoked.borrow().is_none() && self.has(&e.ev.app, Action::Update))
            .map(|e| (e.ev.clone(), e.revoked.clone()))
            .collect();
        let calls: Vec<glommio::Task<()>> = due
            .into_iter()
            .map(|(ev, revoked)| {
                let me = self.clone();
                super::super::spawn(async move {
                    // A failed call allows (Action::Update's failure policy): a hook server
                    // outage must not end every stream.
                    if let Decision::Deny { reason, .. } = me.decide(Action::Update, &ev).await {
                        *revoked.borrow_mut() =
                            Some(format!("refused by on_update hook: {reason}"));
                    }
                })
            })
            .collect();
        for call in calls {
            call.await;
        }
    }

    /// At shutdown: tell the end of every publish and play still open on this shard and of
    /// its HLS sessions. These calls wait (at most `hooks.timeout_ms`) for a free slot
    /// instead of being dropped at `hooks.max_in_flight`.
    pub fn end_all(self: &Rc<Self>) {
        let deadline = Instant::now() + self.timeout();
        let open: Vec<(Action, HookEvent)> = self
            .open
            .borrow_mut()
            .drain()
            .map(|(_, e)| (e.end, e.ev))
            .collect();
        let (hls, _) = self
            .hls_viewers()
            .expire(self.shard, Instant::now(), Duration::ZERO);
        for (action, ev) in &open {
            self.send(*action, ev, self.shard, Some(deadline));
        }
        for ev in &hls {
            self.send(Action::Stop, ev, self.shard, Some(deadline));
        }
        let ends = open.len() + hls.len();
        if ends > 0 {
            info!(
                shard = self.shard,
                ends, "telling hooks of the publishes and plays shutdown ends"
            );
        }
    }

    /// At shutdown, after [`Self::end_all`] and the recordings' close: wait, at most
    /// `hooks.timeout_ms`, for every notification running (`on_record_done` included). Then
    /// no more calls are made: the executor is about to end.
    pub async fn drain(&self) {
        let deadline = Instant::now() + self.timeout();
        while self.running.get() > 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let unfinished = self.running.get();
        if unfinished > 0 {
            warn!(
                shard = self.shard,
                unfinished, "hook notifications cut short by shutdown"
            );
        }
        self.stopped.set(true);
    }
}
