//! Percentiles and a log-linear histogram (HDR-style, ~1.6 % relative precision) that
//! executors fill without allocating and merge at the end.

/// Sub-buckets per power of two (64: bucket width ≤ 1/64 of the value).
const SUB: u64 = 64;
const SUB_BITS: u32 = 6;
/// Buckets: values up to 2^40 (e.g. µs: 12 days).
const BUCKETS: usize = ((40 - SUB_BITS as usize) + 2) * SUB as usize;

/// Counts of non-negative integer values (e.g. microseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    // v >> shift lies in [SUB, 2 SUB).
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    let i = (u64::from(shift) + 1) * SUB + ((v >> shift) - SUB);
    (i as usize).min(BUCKETS - 1)
}

/// The middle of bucket `i`.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value at percentile `p` (0..=100), within the bucket precision; `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                if i == BUCKETS - 1 {
                    return Some(self.max);
                }
                return Some(value_of(i).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Percentile `p` (0..=100) of sorted values, nearest rank; `None` when empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// Sorts values (NaN last) and returns them.
pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Median of a small set of integers (sorts in place); `None` when empty.
pub fn median_u32(v: &mut [u32]) -> Option<u32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v = sorted((1..=100).rev().map(f64::from).collect());
        assert_eq!(percentile_sorted(&v, 50.0), Some(50.0));
        assert_eq!(percentile_sorted(&v, 99.0), Some(99.0));
        assert_eq!(percentile_sorted(&v, 100.0), Some(100.0));
        assert_eq!(percentile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(percentile_sorted(&[], 50.0), None);
        assert_eq!(percentile_sorted(&[7.0], 90.0), Some(7.0));
        assert_eq!(median_u32(&mut [5, 1, 3]), Some(3));
        assert_eq!(median_u32(&mut [4, 1, 3, 2]), Some(2));
        assert_eq!(median_u32(&mut []), None);
    }

    #[test]
    fn histogram_is_precise_and_merges() {
        for v in [0, 1, 127, 128, 129, 1000, 65_537, 3_000_000, 1 << 39] {
            let i = index(v);
            let mid = value_of(i);
            let err = mid.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 1.0 / 64.0, "{v} -> bucket {i} -> {mid}");
            assert!(index(mid) == i);
        }
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        for v in 1..=1000 {
            if v % 2 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
        }
        a.merge(&b);
        assert_eq!(a.count(), 1000);
        assert_eq!(a.max(), 1000);
        let p50 = a.percentile(50.0).unwrap();
        assert!((490..=510).contains(&p50), "{p50}");
        let p99 = a.percentile(99.0).unwrap();
        assert!((975..=1000).contains(&p99), "{p99}");
        assert_eq!(a.percentile(100.0), Some(1000));
        assert_eq!(Histogram::new().percentile(50.0), None);
        // Huge values land in the last bucket without panicking.
        a.record(u64::MAX);
        assert_eq!(a.percentile(100.0), Some(u64::MAX));
    }
}
