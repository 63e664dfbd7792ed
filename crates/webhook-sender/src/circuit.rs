//! Per-endpoint circuit breakers: after repeated failures an endpoint is paused for a
//! cool-down, then one probe is let through; a success closes the breaker again.
//!
//! Paused deliveries stay queued and are not counted as attempts. Breakers live in the
//! sender's memory; a restarted sender starts with every breaker closed.
//!
//! ```
//! use std::time::Duration;
//! use webhook_sender::BreakerConfig;
//!
//! let config = BreakerConfig { threshold: 5, cooldown: Duration::from_secs(30) };
//! assert_eq!(config, BreakerConfig::default());
//! ```

use std::collections::HashMap;
use std::time::Duration;

use crate::ids::EndpointId;

/// When breakers open and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed attempts (transport errors, timeouts, 408, 429, 5xx) that open
    /// the breaker. 0 turns breakers off. Default is 5.
    pub threshold: u32,
    /// How long an open breaker pauses the endpoint before a probe. Default is 30 s.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// An endpoint's circuit breaker, as this sender node sees it (breakers are per node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Counting consecutive failures.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Nothing is sent until the given Unix ms.
    Open {
        /// When a probe may go, Unix ms.
        until_ms: i64,
    },
    /// One probe may go; its result decides.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed { .. } => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

use BreakerState as State;

/// Every endpoint's breaker.
#[derive(Debug)]
pub(crate) struct Breakers {
    config: BreakerConfig,
    states: HashMap<EndpointId, State>,
}

impl Breakers {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            states: HashMap::new(),
        }
    }

    /// Records an attempt's result. Returns true when this opened the breaker.
    pub(crate) fn record(&mut self, endpoint: EndpointId, failed: bool, now_ms: i64) -> bool {
        if self.config.threshold == 0 {
            return false;
        }
        if !failed {
            self.states.remove(&endpoint);
            return false;
        }
        let cooldown = crate::delivery::duration_millis(self.config.cooldown);
        let state = self
            .states
            .entry(endpoint)
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.threshold {
                    *state = State::Open {
                        until_ms: now_ms.saturating_add(cooldown),
                    };
                    true
                } else {
                    *state = State::Closed { failures };
                    false
                }
            }
            State::HalfOpen => {
                *state = State::Open {
                    until_ms: now_ms.saturating_add(cooldown),
                };
                true
            }
            // Attempts that started before the breaker opened and fail afterwards.
            State::Open { .. } => false,
        }
    }

    /// Concurrency overrides for claims (0 while open, 1 while half-open) and the earliest
    /// time an open breaker turns half-open.
    pub(crate) fn overrides(&mut self, now_ms: i64) -> (Vec<(EndpointId, usize)>, Option<i64>) {
        let mut overrides = Vec::new();
        let mut wake = None::<i64>;
        for (endpoint, state) in &mut self.states {
            match *state {
                State::Open { until_ms } if until_ms > now_ms => {
                    overrides.push((*endpoint, 0));
                    wake = Some(wake.map_or(until_ms, |w| w.min(until_ms)));
                }
                State::Open { .. } | State::HalfOpen => {
                    *state = State::HalfOpen;
                    overrides.push((*endpoint, 1));
                }
                State::Closed { .. } => {}
            }
        }
        (overrides, wake)
    }

    /// Forgets an endpoint's breaker (on re-enable or update).
    /// The endpoint's state (closed with no failures when it has none recorded).
    pub(crate) fn state(&self, endpoint: EndpointId) -> State {
        self.states
            .get(&endpoint)
            .copied()
            .unwrap_or(State::Closed { failures: 0 })
    }

    pub(crate) fn reset(&mut self, endpoint: EndpointId) {
        self.states.remove(&endpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes() {
        let mut breakers = Breakers::new(BreakerConfig {
            threshold: 3,
            cooldown: Duration::from_secs(10),
        });
        let e = EndpointId::generate();
        assert!(!breakers.record(e, true, 0));
        assert!(!breakers.record(e, true, 0));
        assert!(breakers.overrides(0).0.is_empty());
        assert!(breakers.record(e, true, 0), "third failure opens");
        assert_eq!(breakers.overrides(5_000), (vec![(e, 0)], Some(10_000)));
        // After the cool-down one probe may go.
        assert_eq!(breakers.overrides(10_000), (vec![(e, 1)], None));
        assert!(breakers.record(e, true, 10_500), "failed probe reopens");
        assert_eq!(breakers.overrides(11_000).0, vec![(e, 0)]);
        assert_eq!(breakers.overrides(20_500).0, vec![(e, 1)]);
        assert!(
            !breakers.record(e, false, 20_600),
            "successful probe closes"
        );
        assert!(breakers.overrides(20_700).0.is_empty());
    }

    #[test]
    fn a_success_resets_the_count_and_zero_disables() {
        let mut breakers = Breakers::new(BreakerConfig {
            threshold: 2,
            cooldown: Duration::from_secs(1),
        });
        let e = EndpointId::generate();
        breakers.record(e, true, 0);
        breakers.record(e, false, 0);
        assert!(!breakers.record(e, true, 0));
        let mut off = Breakers::new(BreakerConfig {
            threshold: 0,
            cooldown: Duration::from_secs(1),
        });
        for _ in 0..10 {
            assert!(!off.record(e, true, 0));
        }
        assert!(off.overrides(0).0.is_empty());
    }
}
