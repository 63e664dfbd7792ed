//! Per-endpoint rate limits as token buckets: a bucket holds up to `rate` tokens, refills
//! at `rate` per second, and every attempt takes one. An empty bucket lowers the
//! endpoint's claimable concurrency to zero until a token is back.

use std::collections::HashMap;

use crate::endpoint::RateLimit;
use crate::ids::EndpointId;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    tokens: f64,
    updated_ms: Option<i64>,
}

impl Bucket {
    fn refill(&mut self, now_ms: i64) {
        if let Some(updated) = self.updated_ms {
            #[allow(clippy::cast_precision_loss)]
            let elapsed = now_ms.saturating_sub(updated).max(0) as f64 / 1000.0;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        }
        self.updated_ms = Some(now_ms);
    }
}

/// Every rate-limited endpoint's bucket.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    buckets: HashMap<EndpointId, Bucket>,
}

impl RateLimits {
    /// Sets or removes an endpoint's limit.
    pub(crate) fn configure(&mut self, endpoint: EndpointId, limit: Option<RateLimit>) {
        match limit {
            Some(limit) => {
                let rate = f64::from(limit.rate());
                let bucket = self.buckets.entry(endpoint).or_insert(Bucket {
                    rate,
                    tokens: rate,
                    updated_ms: None,
                });
                bucket.rate = rate;
                bucket.tokens = bucket.tokens.min(rate);
            }
            None => {
                self.buckets.remove(&endpoint);
            }
        }
    }

    /// Claim caps from the tokens available, and when the next empty bucket has a token.
    pub(crate) fn overrides(&mut self, now_ms: i64) -> (Vec<(EndpointId, usize)>, Option<i64>) {
        let mut overrides = Vec::new();
        let mut wake = None::<i64>;
        for (endpoint, bucket) in &mut self.buckets {
            bucket.refill(now_ms);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let available = bucket.tokens.floor().max(0.0) as usize;
            overrides.push((*endpoint, available));
            if available == 0 {
                #[allow(clippy::cast_possible_truncation)]
                let wait_ms = (((1.0 - bucket.tokens) / bucket.rate) * 1000.0).ceil() as i64;
                let at = now_ms.saturating_add(wait_ms.max(1));
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        (overrides, wake)
    }

    /// Takes a token for an attempt.
    pub(crate) fn take(&mut self, endpoint: EndpointId) {
        if let Some(bucket) = self.buckets.get_mut(&endpoint) {
            bucket.tokens -= 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_caps_bursts_and_refills() {
        let mut limits = RateLimits::default();
        let e = EndpointId::generate();
        limits.configure(e, Some(RateLimit::per_second(2)));
        assert_eq!(limits.overrides(0), (vec![(e, 2)], None));
        limits.take(e);
        limits.take(e);
        assert_eq!(limits.overrides(0), (vec![(e, 0)], Some(500)));
        assert_eq!(limits.overrides(500).0, vec![(e, 1)]);
        assert_eq!(
            limits.overrides(10_000).0,
            vec![(e, 2)],
            "never above the burst"
        );
        limits.configure(e, None);
        assert!(limits.overrides(10_000).0.is_empty());
    }
}
