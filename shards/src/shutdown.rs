//! Process shutdown: SIGINT/SIGTERM set a flag that every shard watches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A shared "please stop" flag, set by a signal or by [`Shutdown::trigger`].
#[derive(Clone, Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

/// How often a shard looks at the flag while waiting for it.
const POLL: Duration = Duration::from_millis(50);

impl Shutdown {
    /// A flag that nothing sets until [`Shutdown::trigger`].
    pub fn new() -> Self {
        Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A flag that SIGINT and SIGTERM set.
    pub fn install() -> std::io::Result<Self> {
        let s = Self::new();
        // A second signal while already stopping exits at once (an impatient operator).
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, 1, s.flag.clone())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGINT, s.flag.clone())?;
        signal_hook::flag::register(signal_hook::consts::SIGTERM, s.flag.clone())?;
        Ok(s)
    }

    /// Ask every shard to stop.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether stopping was requested.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolve once stopping was requested. A signal handler can only set an atomic, so the
    /// shard looks at it on a short timer (the cost is one timer per shard, not per connection).
    pub async fn wait(&self) {
        while !self.is_set() {
            glommio::timer::sleep(POLL).await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}
