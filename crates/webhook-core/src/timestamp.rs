//! The replay window: a timestamp must lie within a tolerance of now, both ways; and the
//! two forms a timestamp travels in (Unix seconds in a header, or the domain envelope's
//! `YYYY-MM-DDTHH:MM:SSZ`), each parsed strictly.
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::timestamp::{check_window, parse_unix_seconds, parse_utc_seconds};
//!
//! let sent = parse_unix_seconds("1700000000")?;
//! assert!(check_window(sent, 1_700_000_300, Duration::from_secs(300)).is_ok());
//! assert!(check_window(sent, 1_700_000_301, Duration::from_secs(300)).is_err());
//! assert_eq!(parse_utc_seconds("2023-11-14T22:13:20Z")?, 1_700_000_000);
//! assert!(parse_utc_seconds("2023-11-14T22:13:20+00:00").is_err());
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

/// Parses the domain envelope's timestamp (SPEC §2: RFC 3339 UTC, whole seconds, `Z`
/// suffix) into Unix seconds. Exactly `YYYY-MM-DDTHH:MM:SSZ` is accepted: an uppercase
/// `T` and `Z`, no offset (`+00:00` included), no fractional seconds, no space separator,
/// no leap second (`:60`), and a real calendar date.
///
/// RFC 3339 allows all of those variants; the envelope is written by one sender
/// ([`crate::domain::format_timestamp`]) in one form, so any other form is not ours.
///
/// # Errors
/// [`VerifyError::MalformedTimestamp`] for anything else.
pub fn parse_utc_seconds(text: &str) -> Result<i64, VerifyError> {
    const SHAPE: &[u8; 20] = b"dddd-dd-ddTdd:dd:ddZ";
    let bytes = text.as_bytes();
    let shaped = bytes.len() == SHAPE.len()
        && bytes.iter().zip(SHAPE).all(|(&byte, &want)| match want {
            b'd' => byte.is_ascii_digit(),
            literal => byte == literal,
        });
    if !shaped {
        return Err(VerifyError::MalformedTimestamp);
    }
    let number = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u16, |n, digit| n * 10 + u16::from(digit - b'0'))
    };
    let month = u8::try_from(number(5..7))
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or(VerifyError::MalformedTimestamp)?;
    let byte = |range| u8::try_from(number(range)).map_err(|_| VerifyError::MalformedTimestamp);
    let date = time::Date::from_calendar_date(i32::from(number(0..4)), month, byte(8..10)?)
        .map_err(|_| VerifyError::MalformedTimestamp)?;
    let time = time::Time::from_hms(byte(11..13)?, byte(14..16)?, byte(17..19)?)
        .map_err(|_| VerifyError::MalformedTimestamp)?;
    Ok(date.with_time(time).assume_utc().unix_timestamp())
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
    fn envelope_timestamps_are_exactly_yyyy_mm_ddthh_mm_ssz() {
        let accepted = [
            ("2023-11-14T22:13:20Z", 1_700_000_000),
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T23:59:59Z", 1_709_251_199),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
            ("0000-01-01T00:00:00Z", -62_167_219_200),
        ];
        let envelope = |timestamp: &str| crate::domain::Envelope {
            domain: crate::domain::Domain::Wallet,
            timestamp: timestamp.to_owned(),
            payload: String::new(),
        };
        for (text, unix) in accepted {
            assert_eq!(parse_utc_seconds(text), Ok(unix), "{text}");
            assert_eq!(envelope(text).unix_timestamp(), Ok(unix), "{text}");
        }
        let refused = [
            ("2023-11-14T22:13:20+00:00", "numeric offset, even zero"),
            ("2023-11-14T22:13:20-00:00", "unknown local offset"),
            ("2023-11-14T23:13:20+01:00", "non-UTC offset"),
            ("2023-11-14t22:13:20Z", "lowercase t"),
            ("2023-11-14T22:13:20z", "lowercase z"),
            ("2023-11-14T22:13:20.5Z", "fractional seconds"),
            ("2023-11-14T22:13:20.000Z", "zero fraction"),
            ("2023-11-14 22:13:20Z", "space separator"),
            ("2023-11-14_22:13:20Z", "other separator"),
            ("2023-11-14T22:13:20", "no zone"),
            ("2023-11-14T22:13Z", "no seconds"),
            ("2023-11-14", "date only"),
            (" 2023-11-14T22:13:20Z", "leading space"),
            ("2023-11-14T22:13:20Z ", "trailing space"),
            ("+2023-11-14T22:13:20Z", "signed year"),
            ("12023-11-14T22:13:20Z", "five-digit year"),
            ("2023-1-14T22:13:20Z", "one-digit month"),
            ("2023-13-14T22:13:20Z", "month 13"),
            ("2023-00-14T22:13:20Z", "month 0"),
            ("2023-02-29T22:13:20Z", "not a leap year"),
            ("2023-04-31T22:13:20Z", "April 31"),
            ("2023-11-00T22:13:20Z", "day 0"),
            ("2023-11-14T24:00:00Z", "hour 24"),
            ("2023-11-14T22:60:00Z", "minute 60"),
            ("2016-12-31T23:59:60Z", "leap second"),
            ("2023-11-14T22:13:2OZ", "letter O for zero"),
            ("２023-11-14T22:13:20Z", "full-width digit"),
            ("1700000000", "Unix seconds"),
            ("", "empty"),
        ];
        for (text, why) in refused {
            assert_eq!(
                parse_utc_seconds(text),
                Err(VerifyError::MalformedTimestamp),
                "{text:?}: {why}"
            );
            assert_eq!(
                envelope(text).unix_timestamp(),
                Err(VerifyError::MalformedTimestamp),
                "envelope {text:?}: {why}"
            );
        }
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
