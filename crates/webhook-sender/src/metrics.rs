//! Metric names. Every metric is recorded through the `metrics` facade, so any recorder
//! (Prometheus exporter, statsd, a test recorder) sees them; with no recorder installed
//! they cost next to nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `webhook_sender_published_total` | counter | `style_family` (`event`, `domain`) |
//! | `webhook_sender_attempts_total` | counter | `result` (`delivered`, `retry`, `failed`) |
//! | `webhook_sender_delivered_total` | counter | |
//! | `webhook_sender_failed_total` | counter | |
//! | `webhook_sender_redriven_total` | counter | |
//! | `webhook_sender_breaker_opened_total` | counter | |
//! | `webhook_sender_retry_delay_seconds` | histogram | |
//! | `webhook_sender_attempt_latency_seconds` | histogram | |
//! | `webhook_sender_queue_depth` | gauge | |
//! | `webhook_sender_pruned_total` | counter | |
//! | `webhook_sender_cancelled_total` | counter | |
//!
//! ```
//! assert_eq!(webhook_sender::metrics::DELIVERED, "webhook_sender_delivered_total");
//! ```

/// Events published (one per `publish`, whatever the fan-out).
pub const PUBLISHED: &str = "webhook_sender_published_total";
/// Attempts made, labelled by `result`.
pub const ATTEMPTS: &str = "webhook_sender_attempts_total";
/// Deliveries delivered.
pub const DELIVERED: &str = "webhook_sender_delivered_total";
/// Deliveries failed for good.
pub const FAILED: &str = "webhook_sender_failed_total";
/// Deliveries redriven by hand.
pub const REDRIVEN: &str = "webhook_sender_redriven_total";
/// Circuit breakers opened.
pub const BREAKER_OPENED: &str = "webhook_sender_breaker_opened_total";
/// Waits scheduled before retries, in seconds.
pub const RETRY_DELAY: &str = "webhook_sender_retry_delay_seconds";
/// Attempt latency (request to response head and capped body), in seconds.
pub const ATTEMPT_LATENCY: &str = "webhook_sender_attempt_latency_seconds";
/// Open deliveries (pending and in flight) in the store, as of the last claim.
pub const QUEUE_DEPTH: &str = "webhook_sender_queue_depth";
/// Counter: finished deliveries and unrouted messages removed by retention.
pub const PRUNED: &str = "webhook_sender_pruned_total";
/// Counter: open deliveries cancelled because their endpoint was deleted.
pub const CANCELLED: &str = "webhook_sender_cancelled_total";
