//! Connection timeouts checked by one sweeper per shard instead of one timer per connection.
//!
//! A player's task is woken for every frame it is sent. With a timer future raced beside the
//! writer (the first design), every one of those wake-ups re-armed the timer in glommio's
//! timer tree: a few percent of the CPU at 1,000 players, and a timer per connection besides.
//! Now each connection registers once in its shard's [`Watchlist`]; a single task calls every
//! live connection's [`Watched::check`] every [`TICK`] and ends the ones that report a reason
//! through their [`Alarm`], which the connection awaits like any other future.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How often the sweeper checks the connections of its shard.
pub const TICK: Duration = Duration::from_millis(250);

/// A connection whose timeouts the shard's sweeper checks.
pub(crate) trait Watched {
    /// `Some(reason)` when the connection must end now.
    fn check(&self, now: Instant) -> Option<String>;
    /// Where the reason goes.
    fn alarm(&self) -> &Alarm;
}

/// A connection's side of the sweeper: the reason it must end, once known.
#[derive(Default)]
pub(crate) struct Alarm {
    state: RefCell<(Option<String>, Option<Waker>)>,
}

impl Alarm {
    /// Ends when the sweeper raised the alarm, with its reason.
    pub async fn wait(&self) -> String {
        poll_fn(|cx| {
            let mut state = self.state.borrow_mut();
            if let Some(reason) = state.0.take() {
                return Poll::Ready(reason);
            }
            // The task is polled for every frame it sends: keep the waker unless it changed.
            if !state.1.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                state.1 = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    fn raise(&self, reason: String) {
        let waker = {
            let mut state = self.state.borrow_mut();
            state.0 = Some(reason);
            state.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The connections of one shard that the sweeper checks.
#[derive(Default)]
pub(crate) struct Watchlist {
    conns: RefCell<Vec<Weak<dyn Watched>>>,
}

impl Watchlist {
    /// Check `conn` every tick for as long as it lives.
    pub fn add(&self, conn: Weak<dyn Watched>) {
        self.conns.borrow_mut().push(conn);
    }

    /// One sweep: forget the connections that ended, raise the alarm of those whose check
    /// fails. Returns how many are still watched.
    pub fn sweep(&self, now: Instant) -> usize {
        let live: Vec<Rc<dyn Watched>> = {
            let mut conns = self.conns.borrow_mut();
            conns.retain(|w| w.strong_count() > 0);
            conns.iter().filter_map(Weak::upgrade).collect()
        };
        // Checks run without the list borrowed: a check may register or drop connections.
        for conn in &live {
            if let Some(reason) = conn.check(now) {
                conn.alarm().raise(reason);
            }
        }
        live.len()
    }
}

/// Sweep the shard's connections every [`TICK`], forever.
pub(crate) fn spawn_sweeper(list: Rc<Watchlist>) -> glommio::Task<()> {
    super::spawn(async move {
        loop {
            glommio::timer::sleep(TICK).await;
            list.sweep(Instant::now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::future::Future;
    use std::task::Context;

    struct Conn {
        expires: Instant,
        alarm: Alarm,
        checks: Cell<u32>,
    }

    impl Watched for Conn {
        fn check(&self, now: Instant) -> Option<String> {
            self.checks.set(self.checks.get() + 1);
            (now >= self.expires).then(|| "timed out".to_string())
        }
        fn alarm(&self) -> &Alarm {
            &self.alarm
        }
    }

    fn conn(expires: Instant) -> Rc<Conn> {
        Rc::new(Conn {
            expires,
            alarm: Alarm::default(),
            checks: Cell::new(0),
        })
    }

    #[test]
    fn sweeps_raise_the_alarm_of_expired_connections_and_forget_ended_ones() {
        let t0 = Instant::now();
        let list = Watchlist::default();
        let early = conn(t0 + Duration::from_secs(1));
        let late = conn(t0 + Duration::from_secs(5));
        let gone = conn(t0);
        for c in [&early, &late, &gone] {
            let c: Rc<dyn Watched> = c.clone();
            list.add(Rc::downgrade(&c));
        }
        drop(gone);
        let mut wait = Box::pin(early.alarm.wait());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(wait.as_mut().poll(&mut cx).is_pending());

        assert_eq!(list.sweep(t0), 2, "the dropped connection is forgotten");
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert_eq!(list.sweep(t0 + Duration::from_secs(2)), 2);
        assert_eq!(
            wait.as_mut().poll(&mut cx),
            Poll::Ready("timed out".to_string())
        );
        assert_eq!(late.checks.get(), 2);
        assert!(late.alarm.state.borrow().0.is_none(), "not expired yet");
    }
}
