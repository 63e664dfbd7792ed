//! The management handles: [`Endpoints`] and [`Organizations`], each call scoped to an
//! organization, and what they need of the running engine ([`Control`]).

mod endpoints;
mod organizations;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use self::endpoints::Endpoints;
pub use self::organizations::Organizations;
use crate::error::Error;
use crate::ids::EndpointId;

/// What configuration changes need of the running engine. The delivery engine implements
/// it; the handles depend on this trait, not on the engine.
pub(crate) trait Control: Send + Sync + std::fmt::Debug {
    /// Fails once shutdown has begun.
    fn check_open(&self) -> Result<(), Error>;
    /// Now, Unix ms, by the engine's clock.
    fn now_ms(&self) -> i64;
    /// The longest endpoint timeout allowed.
    fn max_timeout(&self) -> Duration;
    /// Forgets an endpoint's circuit breaker (after an update or a resume).
    fn reset_breaker(&self, endpoint: EndpointId);
    /// An endpoint's circuit breaker on this node.
    fn breaker(&self, endpoint: EndpointId) -> crate::circuit::BreakerState;
    /// Stops every attempt to `endpoint` and keeps new ones from sending; resolves once
    /// the attempts in flight have stopped (bounded).
    fn abort_endpoint(&self, endpoint: EndpointId)
    -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Wakes the scheduler: something it may claim changed.
    fn wake(&self);
}
