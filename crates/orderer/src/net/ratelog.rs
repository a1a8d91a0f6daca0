//! Rate-limited warnings: an attacker that makes the node refuse thousands
//! of connections a second must not turn that into thousands of log lines.
//! Each [`RateLog`] lets [`RateLog::PER_SECOND`] messages through per
//! second; the next one let through says how many were left out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// One rate-limited message kind.
#[derive(Debug)]
pub struct RateLog {
    window: Mutex<(Option<Instant>, u32)>,
    suppressed: AtomicU64,
}

impl Default for RateLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLog {
    /// Messages let through per second.
    pub const PER_SECOND: u32 = 5;

    /// A new limiter.
    pub const fn new() -> Self {
        Self {
            window: Mutex::new((None, 0)),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this message may be logged, `n` being how many were
    /// left out since the last one logged; `None` when it is left out.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        match w.0 {
            Some(start) if now.duration_since(start).as_secs() < 1 => {}
            _ => *w = (Some(now), 0),
        }
        if w.1 < Self::PER_SECOND {
            w.1 += 1;
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lets_a_few_through_per_second_and_counts_the_rest() {
        let r = RateLog::new();
        let t0 = Instant::now();
        for _ in 0..RateLog::PER_SECOND {
            assert_eq!(r.allow_at(t0), Some(0));
        }
        assert_eq!(r.allow_at(t0), None);
        assert_eq!(r.allow_at(t0 + Duration::from_millis(500)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_millis(1001)), Some(2));
        assert_eq!(r.allow_at(t0 + Duration::from_millis(1002)), Some(0));
    }
}
