//! How values look on the wire: RFC 3339 UTC times, and ids parsed from paths (an id that
//! cannot exist is simply not found).

use std::str::FromStr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use webhook_sender::TimeRange;

use crate::error::{ApiError, ApiResult};

/// Unix ms as RFC 3339 UTC (`2026-12-01T18:40:20.123Z`).
pub(crate) fn time_of_ms(ms: i64) -> String {
    let nanos = i128::from(ms).saturating_mul(1_000_000);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A query parameter's RFC 3339 time; `name` is for the error.
pub(crate) fn parse_time(name: &str, text: &str) -> ApiResult<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| ApiError::invalid(format!("`{name}` must be an RFC 3339 time")))
}

/// An id from a path; what does not parse does not exist.
pub(crate) fn path_id<T: FromStr>(text: &str, what: &str) -> ApiResult<T> {
    text.parse().map_err(|_| ApiError::not_found(what))
}

/// The range from `since` (inclusive) until `until` (exclusive), either open.
pub(crate) fn span(since: Option<OffsetDateTime>, until: Option<OffsetDateTime>) -> TimeRange {
    let mut range = TimeRange::default();
    if let Some(since) = since {
        range = range.from(since);
    }
    if let Some(until) = until {
        range = range.until(until);
    }
    range
}
