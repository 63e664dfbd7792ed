//! Latency statistics: a fixed-size, lock-free log-linear histogram (about 3 % resolution),
//! so recording costs one atomic add and memory stays bounded however long a run is.
//!
//! ```
//! use std::time::Duration;
//! use webhook_bench::stats::Histogram;
//!
//! let histogram = Histogram::new();
//! for ms in 1..=100 {
//!     histogram.record(Duration::from_millis(ms));
//! }
//! let p50 = histogram.percentile(50.0).unwrap().as_secs_f64() * 1000.0;
//! assert!((48.0..=52.0).contains(&p50), "{p50}");
//! assert_eq!(histogram.count(), 100);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two: 2^5 = 32, so a bucket spans at most 1/32 of its value.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this are recorded exactly.
const LINEAR: u64 = SUB << 1;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) << SUB_BITS;

/// A histogram of durations in nanoseconds.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn record(&self, value: Duration) {
        self.record_nanos(u64::try_from(value.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in nanoseconds.
    pub fn record_nanos(&self, nanos: u64) {
        self.counts[index(nanos)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// How many values were recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The `p`th percentile (0 to 100), or `None` when nothing was recorded. The answer is
    /// the middle of the bucket holding it.
    #[must_use]
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * total as f64)
            .ceil()
            .max(1.0) as u64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count.load(Ordering::Relaxed);
            if seen >= rank {
                return Some(Duration::from_nanos(middle(bucket)));
            }
        }
        Some(Duration::from_nanos(middle(BUCKETS - 1)))
    }

    /// The percentile in milliseconds, for reports.
    #[must_use]
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        self.percentile(p).map(|d| d.as_secs_f64() * 1000.0)
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        // Lossless: below 64.
        return usize::try_from(value).unwrap_or(0);
    }
    let msb = 63 - value.leading_zeros();
    let shift = msb - SUB_BITS;
    let top = value >> shift; // in [SUB, 2 * SUB)
    usize::try_from(u64::from(shift + 1) * SUB + (top - SUB)).unwrap_or(BUCKETS - 1)
}

fn bounds(bucket: usize) -> (u64, u64) {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return (bucket, bucket);
    }
    let shift = bucket / SUB - 1;
    let top = bucket % SUB + SUB;
    let low = top << shift;
    let high = low.saturating_add((1u64 << shift) - 1);
    (low, high)
}

fn middle(bucket: usize) -> u64 {
    let (low, high) = bounds(bucket);
    low + (high - low) / 2
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it() {
        let mut value = 1u64;
        while value < u64::MAX / 3 {
            for v in [value - 1, value, value + 1, value * 3 / 2] {
                let (low, high) = bounds(index(v));
                assert!(low <= v && v <= high, "{v} not in [{low}, {high}]");
                assert!(high - low <= low / 16 + 1, "bucket too wide at {v}");
            }
            value *= 2;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let histogram = Histogram::new();
        for micros in 1..=10_000 {
            histogram.record(Duration::from_micros(micros));
        }
        let p99 = histogram.percentile(99.0).unwrap().as_micros();
        assert!((9_700..=10_200).contains(&p99), "{p99}");
        let p0 = histogram.percentile(0.0).unwrap().as_micros();
        assert!(p0 <= 2, "{p0}");
        assert!(Histogram::new().percentile(50.0).is_none());
    }
}
