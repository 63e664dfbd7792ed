//! Retry policies and response classification (SPEC §4).
//!
//! A [`RetryPolicy`] says how long to wait before each attempt and when to give up;
//! [`Verdict::of_status`] says what an HTTP status means for the delivery; and
//! [`parse_retry_after`] reads a `Retry-After` header.
//!
//! A policy makes 1 to [`MAX_ATTEMPTS`] attempts, never waits longer than [`MAX_DELAY`]
//! before one, and its waits add up to at most [`MAX_TOTAL_WAIT`];
//! [`RetryPolicy::validate`] checks it, the checked constructors
//! ([`RetryPolicy::try_schedule`], [`RetryPolicy::exponential`]) refuse anything else with
//! an [`InvalidRetryPolicy`], and endpoints are only created with a valid policy.
//!
//! ```
//! use std::time::Duration;
//! use webhook_sender::RetryPolicy;
//!
//! let seed = RetryPolicy::domain_default();
//! assert_eq!(seed.delay_before(1), Some(Duration::ZERO));
//! assert_eq!(seed.delay_before(2), Some(Duration::from_secs(60)));
//! assert_eq!(seed.delay_before(10), Some(Duration::from_secs(5400)));
//! assert_eq!(seed.delay_before(11), None); // failed after 10 attempts
//!
//! let backoff = RetryPolicy::event_default();
//! let third = backoff.delay_before(3).unwrap();
//! assert!(third <= Duration::from_secs(10)); // full jitter: anywhere in [0, 5 s * 2]
//!
//! // A wait of u64::MAX seconds would never end: refused, not scheduled.
//! let forever = RetryPolicy::try_schedule([Duration::ZERO, Duration::from_secs(u64::MAX)]);
//! assert!(forever.is_err());
//! ```

use std::time::Duration;

use rand::Rng as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::delivery::AttemptErrorKind;
use time::format_description::well_known::Rfc2822;

/// The seed 001 schedule: delays in seconds before attempts 1..10.
const SEED_001_SCHEDULE: [u64; 10] = [0, 60, 120, 180, 320, 480, 840, 1500, 2820, 5400];

/// The longest wait a policy may ask for before one attempt: 7 days.
///
/// The defaults wait at most 1 h (event style) and 5400 s (seed 001); a week is far beyond
/// any deliberate schedule (a receiver down over a long weekend is retried), while a
/// longer wait is a unit mistake or an overflow (`u64::MAX` seconds would never end and
/// would overflow the due time) and would keep a delivery open past any record retention.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The most attempts a policy may make: 100,000. Every attempt adds a record to the
/// delivery's history, so this bounds it (short waits with many attempts are a legitimate
/// "keep trying for a while" policy; the event-style default makes 30, seed 001 10).
pub const MAX_ATTEMPTS: u32 = 100_000;

/// The longest a policy may keep a delivery open: its waits add up to at most 30 days
/// (the event-style default at most 20.4 h, seed 001 about 3 h 16 min). With a 7-day
/// [`MAX_DELAY`] alone, 100,000 attempts could span nearly two thousand years.
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why a retry policy was refused ([`RetryPolicy::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidRetryPolicy {
    /// The policy makes no attempt at all (an empty schedule, `max_attempts` 0).
    NoAttempts,
    /// More attempts than [`MAX_ATTEMPTS`].
    TooManyAttempts {
        /// How many the policy asked for.
        attempts: u64,
    },
    /// A wait longer than [`MAX_DELAY`].
    DelayTooLong {
        /// Which wait: `"the wait before attempt 3"`, `"base"`, `"max_delay"`.
        what: String,
        /// The wait asked for.
        delay: Duration,
    },
    /// Waits that add up to more than [`MAX_TOTAL_WAIT`] in the worst case.
    TotalWaitTooLong {
        /// [`RetryPolicy::longest_total_wait`].
        total: Duration,
    },
}

impl std::fmt::Display for InvalidRetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAttempts => f.write_str("a retry policy must allow at least one attempt"),
            Self::TooManyAttempts { attempts } => write!(
                f,
                "a retry policy makes at most {MAX_ATTEMPTS} attempts, not {attempts}"
            ),
            Self::DelayTooLong { what, delay } => write!(
                f,
                "{what} is {} s, longer than the maximum of {} s (7 days)",
                delay.as_secs(),
                MAX_DELAY.as_secs()
            ),
            Self::TotalWaitTooLong { total } => write!(
                f,
                "the waits of a retry policy add up to {} s at most, longer than the maximum \
                 of {} s (30 days)",
                total.as_secs(),
                MAX_TOTAL_WAIT.as_secs()
            ),
        }
    }
}

impl std::error::Error for InvalidRetryPolicy {}

/// How long to wait before each attempt, and how many attempts to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RetryPolicy {
    /// A fixed schedule: `delays[i]` is the wait before attempt `i + 1` (the first is
    /// counted from publishing). The delivery fails after `delays.len()` attempts.
    Schedule {
        /// Waits before attempts 1..n.
        delays: Vec<Duration>,
    },
    /// Exponential backoff with full jitter: the first attempt goes at once; before attempt
    /// `k ≥ 2` the wait is uniform in `[0, min(max_delay, base × 2^(k−2))]`.
    Exponential {
        /// The cap of the wait before the second attempt.
        base: Duration,
        /// No wait is longer than this.
        max_delay: Duration,
        /// The delivery fails after this many attempts.
        max_attempts: u32,
    },
}

impl RetryPolicy {
    /// The domain-style default (seed 001): 0, 60, 120, 180, 320, 480, 840, 1500, 2820 and
    /// 5400 s before attempts 1 to 10, about 3 h 16 min in all, then failed.
    #[must_use]
    pub fn domain_default() -> Self {
        Self::Schedule {
            delays: SEED_001_SCHEDULE
                .iter()
                .copied()
                .map(Duration::from_secs)
                .collect(),
        }
    }

    /// The event-style and Standard Webhooks default: exponential backoff with full jitter,
    /// base 5 s, waits capped at 1 h, 30 attempts. The longest possible span is about
    /// 20.4 h (5 s + 10 s + … + 2560 s, then 19 waits of at most 1 h); with full jitter the
    /// expected span is about half that. Like Standard Webhooks' example schedule, it keeps
    /// trying for most of a day.
    #[must_use]
    pub fn event_default() -> Self {
        Self::Exponential {
            base: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            max_attempts: 30,
        }
    }

    /// A schedule from its delays, unchecked: endpoint creation refuses it if it breaks
    /// the limits ([`RetryPolicy::validate`]). [`RetryPolicy::try_schedule`] checks at once.
    #[must_use]
    pub fn schedule(delays: impl IntoIterator<Item = Duration>) -> Self {
        Self::Schedule {
            delays: delays.into_iter().collect(),
        }
    }

    /// A schedule from its delays, checked: 1 to [`MAX_ATTEMPTS`] delays of at most
    /// [`MAX_DELAY`] each.
    ///
    /// # Errors
    /// [`InvalidRetryPolicy`] naming the first limit broken.
    pub fn try_schedule(
        delays: impl IntoIterator<Item = Duration>,
    ) -> Result<Self, InvalidRetryPolicy> {
        let policy = Self::schedule(delays);
        policy.validate()?;
        Ok(policy)
    }

    /// Exponential backoff with full jitter (see [`RetryPolicy::Exponential`]), checked:
    /// `base` and `max_delay` at most [`MAX_DELAY`], 1 to [`MAX_ATTEMPTS`] attempts.
    ///
    /// # Errors
    /// [`InvalidRetryPolicy`] naming the first limit broken.
    pub fn exponential(
        base: Duration,
        max_delay: Duration,
        max_attempts: u32,
    ) -> Result<Self, InvalidRetryPolicy> {
        let policy = Self::Exponential {
            base,
            max_delay,
            max_attempts,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the limits: at least one attempt, at most [`MAX_ATTEMPTS`], no wait (a
    /// schedule's delay, an exponential policy's `base` or `max_delay`) above [`MAX_DELAY`],
    /// and [`RetryPolicy::longest_total_wait`] at most [`MAX_TOTAL_WAIT`].
    /// However a policy was built (the enum itself, [`RetryPolicy::schedule`], serde), an
    /// endpoint is only created with one that passes.
    ///
    /// # Errors
    /// [`InvalidRetryPolicy`] naming the first limit broken.
    pub fn validate(&self) -> Result<(), InvalidRetryPolicy> {
        let attempts = match self {
            Self::Schedule { delays } => u64::try_from(delays.len()).unwrap_or(u64::MAX),
            Self::Exponential { max_attempts, .. } => u64::from(*max_attempts),
        };
        if attempts == 0 {
            return Err(InvalidRetryPolicy::NoAttempts);
        }
        if attempts > u64::from(MAX_ATTEMPTS) {
            return Err(InvalidRetryPolicy::TooManyAttempts { attempts });
        }
        let too_long = |what: String, delay: Duration| {
            if delay > MAX_DELAY {
                Err(InvalidRetryPolicy::DelayTooLong { what, delay })
            } else {
                Ok(())
            }
        };
        match self {
            Self::Schedule { delays } => {
                for (n, delay) in delays.iter().enumerate() {
                    too_long(format!("the wait before attempt {}", n + 1), *delay)?;
                }
            }
            Self::Exponential {
                base, max_delay, ..
            } => {
                too_long("base".to_owned(), *base)?;
                too_long("max_delay".to_owned(), *max_delay)?;
            }
        }
        let total = self.longest_total_wait();
        if total > MAX_TOTAL_WAIT {
            return Err(InvalidRetryPolicy::TotalWaitTooLong { total });
        }
        Ok(())
    }

    /// The longest time the waits can add up to, from publishing to the last attempt
    /// (attempts' own durations not counted; exponential waits at their caps). Saturates
    /// at `Duration::MAX`.
    #[must_use]
    pub fn longest_total_wait(&self) -> Duration {
        match self {
            Self::Schedule { delays } => delays
                .iter()
                .fold(Duration::ZERO, |sum, delay| sum.saturating_add(*delay)),
            Self::Exponential { max_attempts, .. } => (2..=*max_attempts)
                .map_while(|attempt| self.delay_with(attempt, |cap| cap))
                .try_fold(Duration::ZERO, |sum, cap| {
                    // Past the limit the exact sum does not matter; stop early.
                    let sum = sum.saturating_add(cap);
                    if sum > MAX_TOTAL_WAIT {
                        Err(sum)
                    } else {
                        Ok(sum)
                    }
                })
                .unwrap_or_else(|over| over),
        }
    }

    /// The wait before attempt `attempt` (1-based), or `None` when no such attempt is made.
    /// Exponential waits are drawn at random (full jitter).
    #[must_use]
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        self.delay_with(attempt, |cap| {
            let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rand::rng().random_range(0..=nanos))
        })
    }

    /// As [`RetryPolicy::delay_before`], with the jitter drawn by `jitter(cap)`.
    fn delay_with(
        &self,
        attempt: u32,
        jitter: impl FnOnce(Duration) -> Duration,
    ) -> Option<Duration> {
        if attempt == 0 {
            return None;
        }
        match self {
            Self::Schedule { delays } => delays.get(usize::try_from(attempt - 1).ok()?).copied(),
            Self::Exponential {
                base,
                max_delay,
                max_attempts,
            } => {
                if attempt > *max_attempts {
                    return None;
                }
                if attempt == 1 {
                    return Some(Duration::ZERO);
                }
                let factor = 1u32.checked_shl(attempt - 2).unwrap_or(u32::MAX);
                let cap = base.saturating_mul(factor).min(*max_delay);
                Some(jitter(cap).min(cap))
            }
        }
    }

    /// The same policy with at most `attempts` attempts: a schedule keeps its first
    /// `attempts` delays, an exponential policy its base and cap.
    #[must_use]
    pub fn with_max_attempts(self, attempts: u32) -> Self {
        match self {
            Self::Schedule { delays } => Self::schedule(
                delays
                    .into_iter()
                    .take(usize::try_from(attempts).unwrap_or(usize::MAX)),
            ),
            Self::Exponential {
                base, max_delay, ..
            } => Self::Exponential {
                base,
                max_delay,
                max_attempts: attempts,
            },
        }
    }

    /// How many attempts are made at most.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        match self {
            Self::Schedule { delays } => u32::try_from(delays.len()).unwrap_or(u32::MAX),
            Self::Exponential { max_attempts, .. } => *max_attempts,
        }
    }

    /// The longest wait the policy can ask for; `Retry-After` is capped by it.
    #[must_use]
    pub fn longest_delay(&self) -> Duration {
        match self {
            Self::Schedule { delays } => delays.iter().copied().max().unwrap_or_default(),
            Self::Exponential { max_delay, .. } => *max_delay,
        }
    }

    /// The wait before the attempt after `attempts_made`, honouring a `Retry-After` hint
    /// (never sooner than the hint, capped by [`RetryPolicy::longest_delay`]); `None` when the
    /// delivery has had all its attempts.
    #[must_use]
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let delay = self.delay_before(attempts_made.saturating_add(1))?;
        let hinted = retry_after.map_or(Duration::ZERO, |hint| hint.min(self.longest_delay()));
        Some(delay.max(hinted))
    }
}

/// What a response means for the delivery (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 408, 429, 5xx, and every transport failure: try again.
    Retry,
    /// Any other status (including 3xx, since redirects are not followed): failed at once.
    Fail,
    /// 410 Gone: failed at once, and the endpoint is disabled.
    FailAndDisable,
}

impl Verdict {
    /// The verdict for an attempt that got no response: a refused address (SSRF guard) or a
    /// request that could not be built fails at once, everything else (timeouts, DNS,
    /// connection and TLS errors) is retried.
    #[must_use]
    pub fn of_error(kind: AttemptErrorKind) -> Self {
        match kind {
            AttemptErrorKind::Forbidden | AttemptErrorKind::Request => Self::Fail,
            _ => Self::Retry,
        }
    }

    /// The verdict for an HTTP status code.
    #[must_use]
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Delivered,
            410 => Self::FailAndDisable,
            408 | 429 | 500..=599 => Self::Retry,
            _ => Self::Fail,
        }
    }

    /// Whether `Retry-After` is honoured for this status (429 and 503).
    #[must_use]
    pub fn honours_retry_after(status: u16) -> bool {
        matches!(status, 429 | 503)
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (IMF-fixdate, as RFC 9110 asks; the
/// obsolete forms are accepted where RFC 2822 parsing covers them). A date in the past means
/// no wait. `None` for anything else.
#[must_use]
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = OffsetDateTime::parse(value, &Rfc2822).ok()?;
    let wait = at - now;
    Some(if wait.is_negative() {
        Duration::ZERO
    } else {
        wait.unsigned_abs()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_with_a_typed_error_never_a_panic() {
        let day = Duration::from_secs(86_400);
        assert!(RetryPolicy::domain_default().validate().is_ok());
        assert!(RetryPolicy::event_default().validate().is_ok());
        assert!(RetryPolicy::try_schedule([Duration::ZERO, MAX_DELAY]).is_ok());
        assert!(RetryPolicy::exponential(MAX_DELAY, MAX_DELAY, 5).is_ok());
        assert!(
            RetryPolicy::exponential(
                Duration::from_millis(100),
                Duration::from_secs(1),
                MAX_ATTEMPTS
            )
            .is_ok(),
            "many quick attempts are fine"
        );
        // Worst cases: 4 waits of 7 days (28 d) pass, 5 (35 d) do not.
        assert_eq!(
            RetryPolicy::try_schedule([MAX_DELAY; 5]),
            Err(InvalidRetryPolicy::TotalWaitTooLong {
                total: MAX_DELAY * 5
            })
        );
        assert_eq!(
            RetryPolicy::event_default().longest_total_wait(),
            Duration::from_secs(5115 + 19 * 3600)
        );
        assert_eq!(
            RetryPolicy::domain_default().longest_total_wait(),
            Duration::from_secs(11_720),
            "seed 001: 11,720 s"
        );
        // The event default with 1,000 attempts would keep going for about 41 days.
        assert!(matches!(
            RetryPolicy::event_default()
                .with_max_attempts(1000)
                .validate(),
            Err(InvalidRetryPolicy::TotalWaitTooLong { .. })
        ));
        let just_over = MAX_DELAY + Duration::from_nanos(1);
        let refused: [(
            &str,
            Result<RetryPolicy, InvalidRetryPolicy>,
            InvalidRetryPolicy,
        ); 8] = [
            (
                "empty schedule",
                RetryPolicy::try_schedule([]),
                InvalidRetryPolicy::NoAttempts,
            ),
            (
                "u64::MAX seconds",
                RetryPolicy::try_schedule([Duration::ZERO, Duration::from_secs(u64::MAX)]),
                InvalidRetryPolicy::DelayTooLong {
                    what: "the wait before attempt 2".into(),
                    delay: Duration::from_secs(u64::MAX),
                },
            ),
            (
                "Duration::MAX",
                RetryPolicy::try_schedule([Duration::MAX]),
                InvalidRetryPolicy::DelayTooLong {
                    what: "the wait before attempt 1".into(),
                    delay: Duration::MAX,
                },
            ),
            (
                "a nanosecond over 7 days",
                RetryPolicy::try_schedule([day, just_over]),
                InvalidRetryPolicy::DelayTooLong {
                    what: "the wait before attempt 2".into(),
                    delay: just_over,
                },
            ),
            (
                "100,001 delays",
                RetryPolicy::try_schedule(vec![Duration::ZERO; 100_001]),
                InvalidRetryPolicy::TooManyAttempts { attempts: 100_001 },
            ),
            (
                "no attempts",
                RetryPolicy::exponential(day, day, 0),
                InvalidRetryPolicy::NoAttempts,
            ),
            (
                "u32::MAX attempts",
                RetryPolicy::exponential(day, day, u32::MAX),
                InvalidRetryPolicy::TooManyAttempts {
                    attempts: u64::from(u32::MAX),
                },
            ),
            (
                "base over the cap",
                RetryPolicy::exponential(Duration::from_secs(u64::MAX), day, 3),
                InvalidRetryPolicy::DelayTooLong {
                    what: "base".into(),
                    delay: Duration::from_secs(u64::MAX),
                },
            ),
        ];
        for (name, result, expected) in refused {
            assert_eq!(result, Err(expected), "{name}");
        }
        assert_eq!(
            RetryPolicy::exponential(day, Duration::MAX, 3),
            Err(InvalidRetryPolicy::DelayTooLong {
                what: "max_delay".into(),
                delay: Duration::MAX
            })
        );
        // Built without a check (the enum, `schedule`, `with_max_attempts`, serde), the
        // same rule refuses it where an endpoint is created.
        assert!(
            RetryPolicy::schedule([Duration::from_secs(u64::MAX)])
                .validate()
                .is_err()
        );
        assert!(
            RetryPolicy::event_default()
                .with_max_attempts(u32::MAX)
                .validate()
                .is_err()
        );
        let stored: RetryPolicy = serde_json::from_str(
            r#"{"type":"exponential","base":{"secs":5,"nanos":0},"max_delay":{"secs":18446744073709551615,"nanos":0},"max_attempts":3}"#,
        )
        .unwrap();
        assert!(stored.validate().is_err());
        assert_eq!(
            InvalidRetryPolicy::DelayTooLong {
                what: "the wait before attempt 2".into(),
                delay: Duration::from_secs(604_801)
            }
            .to_string(),
            "the wait before attempt 2 is 604801 s, longer than the maximum of 604800 s (7 days)"
        );
    }

    #[test]
    fn max_attempts_shortens_either_policy() {
        let schedule = RetryPolicy::domain_default().with_max_attempts(3);
        assert_eq!(schedule.max_attempts(), 3);
        assert_eq!(
            schedule.next_delay(2, None),
            RetryPolicy::domain_default().next_delay(2, None)
        );
        assert_eq!(schedule.next_delay(3, None), None);
        let exponential = RetryPolicy::event_default().with_max_attempts(2);
        assert_eq!(exponential.max_attempts(), 2);
        assert_eq!(exponential.next_delay(2, None), None);
        assert_eq!(
            exponential.longest_delay(),
            RetryPolicy::event_default().longest_delay(),
            "base and cap are kept"
        );
    }

    #[test]
    fn errors_without_a_response_are_retried_unless_refused_or_unbuildable() {
        use AttemptErrorKind::{Connect, Dns, Forbidden, Protocol, Request, Timeout, Tls};
        for kind in [Timeout, Connect, Dns, Tls, Protocol] {
            assert_eq!(Verdict::of_error(kind), Verdict::Retry, "{kind:?}");
        }
        for kind in [Forbidden, Request] {
            assert_eq!(Verdict::of_error(kind), Verdict::Fail, "{kind:?}");
        }
    }

    #[test]
    fn seed_001_schedule_is_exact() {
        let policy = RetryPolicy::domain_default();
        let delays: Vec<u64> = (1..=10)
            .map(|n| policy.delay_before(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, SEED_001_SCHEDULE);
        assert_eq!(policy.delay_before(11), None);
        assert_eq!(policy.delay_before(0), None);
        assert_eq!(policy.max_attempts(), 10);
        assert_eq!(policy.longest_delay(), Duration::from_secs(5400));
        // After attempt n failed, the next wait is the schedule's entry n+1.
        assert_eq!(policy.next_delay(1, None), Some(Duration::from_secs(60)));
        assert_eq!(policy.next_delay(9, None), Some(Duration::from_secs(5400)));
        assert_eq!(policy.next_delay(10, None), None);
    }

    #[test]
    fn exponential_bounds_and_full_jitter() {
        let policy = RetryPolicy::event_default();
        let caps: Vec<Duration> = (1..=31)
            .map(|n| policy.delay_with(n, |cap| cap).unwrap_or(Duration::MAX))
            .collect();
        assert_eq!(caps[0], Duration::ZERO);
        assert_eq!(caps[1], Duration::from_secs(5));
        assert_eq!(caps[2], Duration::from_secs(10));
        assert_eq!(caps[10], Duration::from_secs(2560));
        assert_eq!(caps[11], Duration::from_secs(3600));
        assert_eq!(caps[29], Duration::from_secs(3600));
        assert_eq!(caps[30], Duration::MAX, "no 31st attempt");
        let worst: Duration = caps[..30].iter().sum();
        assert_eq!(worst.as_secs(), 5115 + 19 * 3600);
        assert_eq!(
            policy.delay_with(5, |_| Duration::ZERO),
            Some(Duration::ZERO)
        );
        for _ in 0..200 {
            let d = policy.delay_before(4).unwrap();
            assert!(d <= Duration::from_secs(20));
        }
        // Huge attempt numbers neither overflow nor exceed the cap.
        let long = RetryPolicy::Exponential {
            base: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            max_attempts: u32::MAX,
        };
        assert_eq!(
            long.delay_with(200, |cap| cap),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn jittered_waits_spread_over_the_interval() {
        let policy = RetryPolicy::Exponential {
            base: Duration::from_secs(8),
            max_delay: Duration::from_secs(8),
            max_attempts: 3,
        };
        let mut low = 0;
        let mut total = Duration::ZERO;
        for _ in 0..100 {
            let wait = policy.delay_before(2).unwrap();
            assert!(wait <= Duration::from_secs(8));
            if wait < Duration::from_secs(4) {
                low += 1;
            }
            total += wait;
        }
        assert!((10..=90).contains(&low), "jitter is not uniform-ish: {low}");
        // Full jitter averages half the cap: 100 waits sum to about 400 s (standard
        // deviation about 23 s), so this bound fails only for a skewed distribution.
        let total = total.as_secs();
        assert!((250..=550).contains(&total), "waits sum to {total} s");
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let policy = RetryPolicy::schedule([
            Duration::ZERO,
            Duration::from_secs(1),
            Duration::from_secs(10),
        ]);
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(5))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            policy.next_delay(1, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(10)),
            "capped by the longest delay"
        );
        assert_eq!(
            policy.next_delay(2, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(10)),
            "never sooner than the policy"
        );
        assert_eq!(policy.next_delay(3, Some(Duration::from_secs(1))), None);
    }

    #[test]
    fn classification_follows_spec_section_4() {
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(Verdict::of_status(status), Verdict::Delivered, "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(Verdict::of_status(status), Verdict::Retry, "{status}");
        }
        for status in [
            100, 301, 302, 307, 308, 400, 401, 403, 404, 409, 413, 422, 451,
        ] {
            assert_eq!(Verdict::of_status(status), Verdict::Fail, "{status}");
        }
        assert_eq!(Verdict::of_status(410), Verdict::FailAndDisable);
        assert!(Verdict::honours_retry_after(429));
        assert!(Verdict::honours_retry_after(503));
        assert!(!Verdict::honours_retry_after(500));
    }

    #[test]
    fn retry_after_forms() {
        let now = OffsetDateTime::from_unix_timestamp(1_445_412_480).unwrap(); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 21 Oct 2015"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}
