//! The replay window: a timestamp must lie within a tolerance of now, both ways.
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::timestamp::{check_window, parse_unix_seconds};
//!
//! let sent = parse_unix_seconds("1700000000")?;
//! assert!(check_window(sent, 1_700_000_300, Duration::from_secs(300)).is_ok());
//! assert!(check_window(sent, 1_700_000_301, Duration::from_secs(300)).is_err());
//! # Ok::<(), webhook_core::VerifyError>(())
//! ```

use std::time::Duration;

use crate::VerifyError;

/// The tolerance receivers use unless configured otherwise: 5 minutes, both ways.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Parses a Unix timestamp header: 1 to 12 ASCII digits, nothing else (no sign, no spaces).
///
/// Twelve digits reach the year 33658, which is plenty and keeps arithmetic far from overflow.
///
/// # Errors
/// [`VerifyError::MalformedTimestamp`] for anything else.
pub fn parse_unix_seconds(text: &str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedTimestamp);
    }
    text.parse().map_err(|_| VerifyError::MalformedTimestamp)
}

/// Checks that `sent` lies within `tolerance` of `now` (Unix seconds), in the past or the future.
///
/// # Errors
/// [`VerifyError::TimestampTooOld`] or [`VerifyError::TimestampTooNew`].
pub fn check_window(sent: i64, now: i64, tolerance: Duration) -> Result<(), VerifyError> {
    let tolerance = i128::from(u32::try_from(tolerance.as_secs()).unwrap_or(u32::MAX));
    let age = i128::from(now) - i128::from(sent);
    let secs = |v: i128| u64::try_from(v.unsigned_abs()).unwrap_or(u64::MAX);
    if age > tolerance {
        Err(VerifyError::TimestampTooOld {
            age_secs: secs(age),
        })
    } else if -age > tolerance {
        Err(VerifyError::TimestampTooNew {
            ahead_secs: secs(age),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_inclusive_both_ways() {
        let tol = Duration::from_secs(300);
        assert_eq!(check_window(1000, 1300, tol), Ok(()));
        assert_eq!(check_window(1300, 1000, tol), Ok(()));
        assert_eq!(
            check_window(1000, 1301, tol),
            Err(VerifyError::TimestampTooOld { age_secs: 301 })
        );
        assert_eq!(
            check_window(1301, 1000, tol),
            Err(VerifyError::TimestampTooNew { ahead_secs: 301 })
        );
        assert!(check_window(i64::MAX, i64::MIN, tol).is_err());
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_unix_seconds("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_unix_seconds("0"), Ok(0));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1.5",
            "0x10",
            "1e9",
            "9999999999999",
            "١٢",
        ] {
            assert_eq!(
                parse_unix_seconds(bad),
                Err(VerifyError::MalformedTimestamp),
                "{bad:?}"
            );
        }
    }
}
