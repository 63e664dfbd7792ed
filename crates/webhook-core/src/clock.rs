//! The only place that reads the wall clock.
//!
//! Everything that depends on time (timestamp windows, idempotency windows, retry
//! schedules) takes a [`Clock`], so tests move time by hand instead of sleeping.
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::at_unix(1_700_000_000);
//! clock.advance(Duration::from_secs(61));
//! assert_eq!(clock.now().unix_timestamp(), 1_700_000_061);
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// The current time as whole Unix seconds.
    fn unix_seconds(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// A shared clock is a clock (`Arc<dyn Clock>` included).
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    unix_nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at the given Unix time in whole seconds.
    #[must_use]
    pub fn at_unix(seconds: i64) -> Self {
        Self {
            unix_nanos: Arc::new(AtomicI64::new(seconds.saturating_mul(1_000_000_000))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.unix_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to a Unix time in whole seconds (it may move backwards).
    pub fn set_unix(&self, seconds: i64) {
        self.unix_nanos
            .store(seconds.saturating_mul(1_000_000_000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let nanos = i128::from(self.unix_nanos.load(Ordering::SeqCst));
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
