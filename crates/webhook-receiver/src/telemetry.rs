//! The names of the metrics the middleware records, through the [`metrics`] facade.
//!
//! Install any `metrics` recorder (Prometheus exporter, StatsD, …) to collect them; without
//! one they cost next to nothing. Tracing events use the `webhook_receiver` target, at
//! `debug` (accepted, rejected, duplicate) and `trace` level; they carry reason codes,
//! styles and dedup keys, never a secret, a signature or a body.
//!
//! | metric | kind | labels | counts |
//! |---|---|---|---|
//! | [`ACCEPTED`] | counter | | verified, new deliveries handed to the handler |
//! | [`REJECTED`] | counter | `reason` | rejections, by [`Rejection::code`](crate::Rejection::code) |
//! | [`DUPLICATES`] | counter | | duplicates answered 2xx without calling the handler |
//! | [`HANDLER_FAILURES`] | counter | | handler answers that were not 2xx (or errors); their keys were released |
//! | [`VERIFY_SECONDS`] | histogram | | time spent in signature and body verification |
//!
//! ```
//! assert_eq!(webhook_receiver::telemetry::ACCEPTED, "webhook_receiver_accepted_total");
//! ```

/// Counter: verified, new deliveries handed to the handler.
pub const ACCEPTED: &str = "webhook_receiver_accepted_total";
/// Counter with a `reason` label: rejected requests.
pub const REJECTED: &str = "webhook_receiver_rejected_total";
/// Counter: duplicates answered 2xx without calling the handler.
pub const DUPLICATES: &str = "webhook_receiver_duplicates_total";
/// Counter: handler answers that were not 2xx, or handler errors.
pub const HANDLER_FAILURES: &str = "webhook_receiver_handler_failures_total";
/// Histogram, seconds: time spent verifying a request (timestamp, signature, body).
pub const VERIFY_SECONDS: &str = "webhook_receiver_verify_seconds";

/// Counts one rejection and logs it at debug level.
pub(crate) fn rejected(rejection: &crate::Rejection) {
    metrics::counter!(REJECTED, "reason" => rejection.code()).increment(1);
    tracing::debug!(
        reason = rejection.code(),
        status = rejection.status().as_u16(),
        "webhook rejected"
    );
}
