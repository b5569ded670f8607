//! Waiting for what a test cannot be told of (a file, a log line, an HTTP status), bounded.

use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}
