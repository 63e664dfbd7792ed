//! The tower middleware: read the body once, verify, dedup, and hand the handler a
//! [`VerifiedWebhook`](crate::VerifiedWebhook).
//!
//! [`WebhookLayer`] holds the configuration ([`Verifier`](crate::Verifier), dedup store,
//! TTL, lease); [`Webhook`] wraps the handler service. For each request it
//!
//! 1. answers 405 (`Allow: POST`) to anything but `POST`;
//! 2. answers 413 when `Content-Length` exceeds the body limit, else reads the body
//!    through [`http_body_util::Limited`] (413 when it turns out larger, 400 when it
//!    cannot be read);
//! 3. verifies it (timestamp window, signature, body shape): 400 or 401 on failure;
//! 4. claims its dedup key: a done key is answered `200 {"status":"duplicate"}` without
//!    calling the handler; a key being handled right now gets 503 with `Retry-After`;
//! 5. calls the handler with the verified body as [`Full<Bytes>`](http_body_util::Full)
//!    and the [`VerifiedWebhook`](crate::VerifiedWebhook) in the request extensions;
//! 6. marks the key done when the handler answered 2xx, and releases it otherwise (also
//!    when the handler errs, panics, or the connection drops), so a retry is handled anew.
//!
//! Rejections are responses (see [`Rejection`](crate::Rejection)); the service's error
//! type is the handler's.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use http_body_util::Full;
//! use tower::{Layer, Service, ServiceExt};
//! use webhook_receiver::{Verifier, VerifiedWebhook, WebhookLayer};
//!
//! let verifier = Verifier::event_secrets(["my-org-secret"])?;
//! let handler = tower::service_fn(|request: Request<Full<Bytes>>| async move {
//!     let webhook = request.extensions().get::<VerifiedWebhook>().expect("set by the layer");
//!     println!("{} {}", webhook.kind(), webhook.dedup_key());
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
//! });
//! let service = WebhookLayer::new(verifier).layer(handler);
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let unsigned = Request::post("/webhook").body(Full::new(Bytes::from_static(b"{}"))).unwrap();
//! let response = service.oneshot(unsigned).await.unwrap();
//! assert_eq!(response.status(), 400); // no X-Webhook-Timestamp
//! # });
//! # Ok::<(), webhook_core::KeyError>(())
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{DEFAULT_DEDUP_TTL, DEFAULT_PROCESSING_LEASE, WebhookLayer};
pub use service::Webhook;
