//! Watching what the middleware answers without a handler: duplicates and rejections.
//!
//! Accepted deliveries reach the handler; these two never do, so tools that log every
//! request (such as `webhook listen`) register an observer on the layer.
//!
//! ```
//! use webhook_receiver::{Observation, Verifier, WebhookLayer};
//!
//! let layer = WebhookLayer::new(Verifier::event_secrets(["s"])?).observe(|seen| match seen {
//!     Observation::Duplicate(webhook) => eprintln!("duplicate {}", webhook.dedup_key()),
//!     Observation::Rejected(rejection) => eprintln!("rejected: {}", rejection.code()),
//!     _ => {}
//! });
//! # drop(layer);
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use crate::{Rejection, VerifiedWebhook};

/// Something the middleware answered on its own.
#[derive(Debug)]
#[non_exhaustive]
pub enum Observation<'a> {
    /// A verified delivery whose key was already handled: answered 200, handler not called.
    Duplicate(&'a VerifiedWebhook),
    /// A request refused with this rejection's status.
    Rejected(&'a Rejection),
}

/// A registered observer.
#[derive(Clone)]
pub(crate) struct Observer(Arc<dyn Fn(Observation<'_>) + Send + Sync>);

impl Observer {
    pub(crate) fn new(f: impl Fn(Observation<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    pub(crate) fn notify(&self, observation: Observation<'_>) {
        (self.0)(observation);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer(..)")
    }
}
