//! The axum extractor: [`VerifiedWebhook`] as a handler argument (feature `axum`).
//!
//! It reads the extension that [`WebhookLayer`](crate::WebhookLayer) put on the request,
//! so the layer must wrap the route; without it the extractor answers 500
//! ([`Rejection::NotVerified`]), a programming error rather than a bad request.
//! `Option<VerifiedWebhook>` never fails.
//!
//! ```
//! use axum::{Router, routing::post};
//! use webhook_receiver::{Verifier, VerifiedWebhook, WebhookLayer};
//!
//! async fn handle(webhook: VerifiedWebhook) -> &'static str {
//!     println!("{}", webhook.kind());
//!     "ok"
//! }
//!
//! let app: Router = Router::new()
//!     .route("/webhook", post(handle))
//!     .layer(WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?));
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::{Rejection, VerifiedWebhook};

impl<S: Send + Sync> FromRequestParts<S> for VerifiedWebhook {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedWebhook>()
            .cloned()
            .ok_or_else(|| {
                crate::telemetry::rejected(&Rejection::NotVerified);
                Rejection::NotVerified
            })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for VerifiedWebhook {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<VerifiedWebhook>().cloned())
    }
}
