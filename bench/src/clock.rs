//! CLOCK_MONOTONIC in nanoseconds: the clock of the stamps.
//!
//! `std::time::Instant` reads the same clock on Linux but is opaque; stamps cross process
//! boundaries (publisher → server → player, or raw-fanout → player), so they carry the raw
//! clock value, which is system-wide.

use std::time::Duration;

/// Nanoseconds of CLOCK_MONOTONIC (a vDSO call, no syscall).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps on the current glommio executor until CLOCK_MONOTONIC reaches `deadline_ns`.
/// (glommio's timers may fire a little early; this never returns before the deadline.)
pub async fn sleep_until(deadline_ns: u64) {
    loop {
        let now = mono_ns();
        if now >= deadline_ns {
            return;
        }
        glommio::timer::sleep(Duration::from_nanos(deadline_ns - now)).await;
    }
}

/// Blocks the current thread until CLOCK_MONOTONIC reaches `deadline_ns`.
pub fn block_until(deadline_ns: u64) {
    let now = mono_ns();
    if deadline_ns > now {
        std::thread::sleep(Duration::from_nanos(deadline_ns - now));
    }
}

/// Seconds as nanoseconds (negative and NaN count as 0).
pub fn secs_ns(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1e9) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_close_to_instant() {
        let a = mono_ns();
        let i = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        let b = mono_ns();
        assert!(b >= a + 2_000_000);
        assert!(b - a < 1_000_000_000);
        assert!(i.elapsed() <= Duration::from_nanos(b - a + 1_000_000_000));
        assert_eq!(secs_ns(1.5), 1_500_000_000);
        assert_eq!(secs_ns(-1.0), 0);
    }
}
