//! /proc readers: CPU time (utime + stime of /proc/PID/stat) and memory (VmRSS, VmHWM of
//! /proc/PID/status).

/// Clock ticks per second of /proc CPU times (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime, in clock ticks, from the text of /proc/PID/stat. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state (field 3) ... utime is field 14, stime field 15.
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   1234 kB` line of /proc/PID/status, in KiB.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// CPU seconds (user + system) used so far by `pid` (`"self"` for this process).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_stat_ticks(&stat)? as f64 / clk_tck() as f64)
}

/// Resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mem {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: peak resident.
    pub hwm_kib: u64,
}

/// VmRSS and VmHWM of `pid`.
pub fn mem(pid: &str) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Mem {
        rss_kib: parse_status_kib(&status, "VmRSS")?,
        hwm_kib: parse_status_kib(&status, "VmHWM").unwrap_or(0),
    })
}

/// Sum of [`cpu_seconds`] over `pids`; `None` if any cannot be read.
pub fn cpu_seconds_sum(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|p| cpu_seconds(&p.to_string())).sum()
}

/// Sum of [`mem`] over `pids`; `None` if any cannot be read.
pub fn mem_sum(pids: &[u32]) -> Option<Mem> {
    pids.iter().try_fold(Mem::default(), |acc, p| {
        let m = mem(&p.to_string())?;
        Some(Mem {
            rss_kib: acc.rss_kib + m.rss_kib,
            hwm_kib: acc.hwm_kib + m.hwm_kib,
        })
    })
}

/// Machine-wide CPU time from the first line of /proc/stat, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemTicks {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// Time in softirq handlers (on loopback, much of TCP's receive work). With IRQ time
    /// accounting it is charged to no process, so per-process CPU times miss it; with
    /// tick-based accounting it goes to the process it interrupted.
    pub softirq: u64,
}

/// Parses the `cpu` line of /proc/stat.
pub fn parse_system_ticks(stat: &str) -> Option<SystemTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice: included in user/nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some(SystemTicks {
        busy: total - idle,
        softirq: v.get(6).copied().unwrap_or(0),
    })
}

/// Machine-wide CPU time so far, seconds (busy, softirq).
pub fn system_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let t = parse_system_ticks(&stat)?;
    let hz = clk_tck() as f64;
    Some((t.busy as f64 / hz, t.softirq as f64 / hz))
}

/// Number of online CPUs.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let stat = "4242 (shard (x) 1) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 75 0 0 20 0 3 0 123456 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("1 (x) S 1"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_lines() {
        let status =
            "Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t    9000 kB\nVmRSS:\t    8123 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(8123));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(9000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // "VmRSS" must not match a longer key that starts with it.
        assert_eq!(parse_status_kib("VmRSSx: 5 kB\n", "VmRSS"), None);
    }

    #[test]
    fn system_stat() {
        let stat = "cpu  100 5 50 1000 20 3 7 0 0 0\ncpu0 50 2 25 500 10 1 3 0 0 0\n";
        assert_eq!(
            parse_system_ticks(stat),
            Some(SystemTicks {
                busy: 100 + 5 + 50 + 3 + 7,
                softirq: 7
            })
        );
        assert_eq!(parse_system_ticks("intr 1 2\n"), None);
        assert!(system_cpu_seconds().is_some());
    }

    #[test]
    fn reads_this_process() {
        assert_eq!(clk_tck(), 100);
        assert!(cpu_seconds("self").is_some());
        let m = mem("self").unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        let me = std::process::id();
        assert!(mem_sum(&[me, me]).unwrap().rss_kib >= 2 * m.rss_kib / 2);
        assert!(cpu_seconds_sum(&[me]).is_some());
        assert!(cpu_seconds_sum(&[u32::MAX]).is_none());
    }
}
