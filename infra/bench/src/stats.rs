//! Percentiles and summaries of measured durations, and number formatting.

use std::time::Duration;

/// The nearest-rank percentile (`p` in 0–100) of samples sorted in ascending order:
/// the smallest sample such that at least `p` % of the samples are less or equal.
///
/// # Panics
/// On an empty slice.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let n = sorted.len();
    // ceil(p/100 * n) as a 1-based rank, clamped to [1, n].
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// The median of `values` (the mean of the two middle ones for an even count).
///
/// # Panics
/// On an empty slice.
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Summary of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub count: usize,
    pub min: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    /// `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Self {
            count: sorted.len(),
            min: sorted[0],
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Milliseconds with three decimals (microsecond resolution).
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A nanosecond count with thousands separators (`12,345 ns`).
pub fn ns(value: f64) -> String {
    format!("{} ns", thousands(value.round() as u64))
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        // 1..=100 ms: p50 is the 50th value, p99 the 99th.
        let samples = ms_list(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        // 1,000 samples: p99 is the 990th, so the 10 slowest are above it.
        let samples = ms_list(&(1..=1000).collect::<Vec<_>>());
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(990));
    }

    #[test]
    fn small_sets() {
        let one = ms_list(&[7]);
        assert_eq!(percentile(&one, 50.0), Duration::from_millis(7));
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
        let three = ms_list(&[1, 2, 3]);
        assert_eq!(percentile(&three, 50.0), Duration::from_millis(2));
        assert_eq!(percentile(&three, 99.0), Duration::from_millis(3));
    }

    #[test]
    fn summary_sorts_its_input() {
        let s = Summary::of(&ms_list(&[5, 1, 4, 2, 3])).unwrap();
        assert_eq!(s.count, 5);
        assert_eq!(s.min, Duration::from_millis(1));
        assert_eq!(s.p50, Duration::from_millis(3));
        assert_eq!(s.p99, Duration::from_millis(5));
        assert_eq!(s.max, Duration::from_millis(5));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ns(1234.4), "1,234 ns");
        assert_eq!(ms(Duration::from_micros(1500)), "1.500 ms");
        assert_eq!(mib(3 * 1024 * 1024), "3.0 MiB");
    }
}
