//! Latency histograms (microsecond resolution, 3 significant digits, up to one hour).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram.
#[derive(Debug, Clone)]
pub struct LatencyStats {
    hist: Histogram<u64>,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Summary figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

const MAX_US: u64 = 3_600_000_000;

impl LatencyStats {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
        }
    }

    /// Records one sample (clamped to [1 µs, 1 h]).
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_US);
        self.hist.record(us).expect("value within bounds");
    }

    /// Adds all samples of `other`.
    pub fn merge(&mut self, other: &LatencyStats) {
        self.hist.add(&other.hist).expect("same bounds");
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The latency at quantile `q` (0..=1).
    pub fn quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.hist.value_at_quantile(q))
    }

    /// Count, mean, p50, p99, p99.9 and max in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        if self.hist.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: self.hist.len(),
            mean_ms: self.hist.mean() / 1000.0,
            p50_ms: ms(self.hist.value_at_quantile(0.5)),
            p99_ms: ms(self.hist.value_at_quantile(0.99)),
            p999_ms: ms(self.hist.value_at_quantile(0.999)),
            max_ms: ms(self.hist.max()),
        }
    }
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={} mean={:.2}ms p50={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms",
            self.count, self.mean_ms, self.p50_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let mut s = LatencyStats::new();
        for ms in 1..=1000u64 {
            s.record(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 1000);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.002 + 0.01;
        assert!(near(sum.p50_ms, 500.0), "{sum}");
        assert!(near(sum.p99_ms, 990.0), "{sum}");
        assert!(near(sum.p999_ms, 999.0), "{sum}");
        assert!(near(sum.max_ms, 1000.0), "{sum}");
        assert!(near(sum.mean_ms, 500.5), "{sum}");
    }

    #[test]
    fn merge_and_clamping() {
        let mut a = LatencyStats::new();
        let mut b = LatencyStats::new();
        a.record(Duration::ZERO); // clamped to 1 µs
        b.record(Duration::from_secs(7200)); // clamped to 1 h
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile(0.0), Duration::from_micros(1));
        assert!(a.quantile(1.0) >= Duration::from_secs(3599));
        assert_eq!(LatencyStats::new().summary(), LatencySummary::default());
        // The tail is visible: 999 fast samples and one slow one.
        let mut t = LatencyStats::new();
        for _ in 0..999 {
            t.record(Duration::from_millis(2));
        }
        t.record(Duration::from_millis(500));
        let s = t.summary();
        assert!(s.p99_ms < 2.1 && s.max_ms > 499.0, "{s}");
    }
}
