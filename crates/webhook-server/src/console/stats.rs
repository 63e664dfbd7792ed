//! An endpoint's last 24 hours, computed from its delivery history: success rate,
//! latency percentiles, last error, attempts per hour and a latency histogram.
//!
//! It reads at most the 2,000 newest deliveries created in the window (8 pages of 250),
//! so a page view costs a bounded number of store reads; the page says when it was cut.

use webhook_sender::{
    AttemptResult, DeliveryFilter, EndpointId, OrganizationId, PageRequest, Sender, TimeRange,
};

use time::OffsetDateTime;

/// The window: 24 hours.
const WINDOW: time::Duration = time::Duration::hours(24);
const MAX_PAGES: usize = 8;

/// Upper bounds (ms) of the latency histogram's buckets; the last is open.
pub(crate) const LATENCY_BUCKETS: [u64; 8] = [10, 50, 100, 250, 500, 1_000, 2_500, 5_000];

/// An endpoint's last 24 hours.
#[derive(Debug, Default)]
pub(crate) struct EndpointStats {
    pub(crate) attempts: usize,
    pub(crate) succeeded: usize,
    pub(crate) p50_ms: Option<u64>,
    pub(crate) p99_ms: Option<u64>,
    /// When, and what.
    pub(crate) last_error: Option<(i64, String)>,
    /// Oldest hour first: (succeeded, failed) attempts.
    pub(crate) hourly: Vec<(u32, u32)>,
    /// One count per bucket of [`LATENCY_BUCKETS`], plus the open one.
    pub(crate) latency: Vec<u32>,
    /// Whether more deliveries were in the window than were read.
    pub(crate) truncated: bool,
}

impl EndpointStats {
    /// Success rate in percent, when there were attempts.
    pub(crate) fn success_percent(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.succeeded as f64 * 100.0 / self.attempts as f64)
    }
}

/// The nearest-rank percentile, `permille` out of 1000.
fn percentile(sorted: &[u64], permille: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * permille).div_ceil(1000);
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
}

/// The endpoint's stats over the 24 hours before `now`.
pub(crate) async fn endpoint_stats(
    sender: &Sender,
    org: &OrganizationId,
    endpoint: EndpointId,
    now: OffsetDateTime,
) -> Result<EndpointStats, webhook_sender::Error> {
    let since = now - WINDOW;
    let start = i64::try_from(since.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let filter = DeliveryFilter::default()
        .endpoint(endpoint)
        .created(TimeRange::default().from(since));
    let mut stats = EndpointStats {
        hourly: vec![(0, 0); 24],
        latency: vec![0; LATENCY_BUCKETS.len() + 1],
        ..EndpointStats::default()
    };
    let mut latencies = Vec::new();
    let mut request = PageRequest::new(webhook_sender::history::MAX_LIMIT)?;
    for page_number in 0..=MAX_PAGES {
        if page_number == MAX_PAGES {
            stats.truncated = true;
            break;
        }
        let page = sender.deliveries(org, &filter, &request).await?;
        for delivery in &page.items {
            for attempt in delivery.attempts.iter().filter(|a| a.at_ms >= start) {
                stats.attempts += 1;
                let ok = matches!(attempt.result, AttemptResult::Response { status, .. } if (200..300).contains(&status));
                let hour = usize::try_from((attempt.at_ms - start) / 3_600_000)
                    .unwrap_or(0)
                    .min(23);
                if ok {
                    stats.succeeded += 1;
                    stats.hourly[hour].0 += 1;
                } else {
                    stats.hourly[hour].1 += 1;
                    let what = match &attempt.result {
                        AttemptResult::Response { status, .. } => format!("HTTP {status}"),
                        AttemptResult::Error { kind, message } => {
                            format!("{}: {message}", kind.as_str())
                        }
                    };
                    if stats
                        .last_error
                        .as_ref()
                        .is_none_or(|(at, _)| attempt.at_ms > *at)
                    {
                        stats.last_error = Some((attempt.at_ms, what));
                    }
                }
                latencies.push(attempt.latency_ms);
                let bucket = LATENCY_BUCKETS
                    .iter()
                    .position(|&bound| attempt.latency_ms < bound)
                    .unwrap_or(LATENCY_BUCKETS.len());
                stats.latency[bucket] += 1;
            }
        }
        match page.next_cursor {
            Some(cursor) => request = request.after(cursor),
            None => break,
        }
    }
    latencies.sort_unstable();
    stats.p50_ms = percentile(&latencies, 500);
    stats.p99_ms = percentile(&latencies, 990);
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 500), Some(50));
        assert_eq!(percentile(&values, 990), Some(99));
        assert_eq!(percentile(&[7], 990), Some(7));
        assert_eq!(percentile(&[], 500), None);
    }
}
