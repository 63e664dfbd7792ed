//! Typed views of a verified delivery in the handler's own types: an event whose `data`
//! is your struct ([`WebhookEvent`]), a domain-style resource as your struct
//! ([`WebhookResource`]); with feature `axum`, both are extractors.
//!
//! Decoding happens when the handler asks for it, never in the middleware: a handler
//! that reads only [`VerifiedWebhook::body`] pays nothing for it. Data that does not fit
//! the type is [`Rejection::UnexpectedPayload`] (422: the sender does not retry, since
//! the same bytes would fail again); asking for the wrong style's view is
//! [`Rejection::WrongStyle`] (500: the receiver is misconfigured, and the sender retries
//! until it is fixed). Neither ever panics, and neither quotes the payload.
//!
//! ```
//! use serde::Deserialize;
//! use webhook_receiver::typed::WebhookEvent;
//! use webhook_receiver::VerifiedWebhook;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct WalletCreated {
//!     wallet_id: String,
//! }
//!
//! fn handle(webhook: &VerifiedWebhook) -> Result<String, webhook_receiver::Rejection> {
//!     let event: WebhookEvent<WalletCreated> = webhook.event_data()?;
//!     Ok(format!("{} {}", event.event().event_type, event.data().wallet_id))
//! }
//! # let _ = handle;
//! ```
#![cfg_attr(feature = "axum", doc = "")]
#![cfg_attr(feature = "axum", doc = "As axum extractors (feature `axum`):")]
#![cfg_attr(feature = "axum", doc = "")]
#![cfg_attr(feature = "axum", doc = "```")]
#![cfg_attr(feature = "axum", doc = "use axum::{Router, routing::post};")]
#![cfg_attr(feature = "axum", doc = "use webhook_core::domain::Transaction;")]
#![cfg_attr(
    feature = "axum",
    doc = "use webhook_receiver::typed::{WebhookEvent, WebhookResource};"
)]
#![cfg_attr(
    feature = "axum",
    doc = "use webhook_receiver::{Verifier, WebhookLayer};"
)]
#![cfg_attr(feature = "axum", doc = "")]
#![cfg_attr(
    feature = "axum",
    doc = "async fn events(event: WebhookEvent<Transaction>) -> String { event.data().id.clone() }"
)]
#![cfg_attr(
    feature = "axum",
    doc = "async fn resources(tx: WebhookResource<Transaction>) -> String { tx.resource().id.clone() }"
)]
#![cfg_attr(feature = "axum", doc = "")]
#![cfg_attr(feature = "axum", doc = "let app: Router = Router::new()")]
#![cfg_attr(feature = "axum", doc = "    .route(\"/events\", post(events))")]
#![cfg_attr(
    feature = "axum",
    doc = "    .layer(WebhookLayer::new(Verifier::event_secrets([\"my-org-secret\"])?));"
)]
#![cfg_attr(feature = "axum", doc = "# let _ = resources;")]
#![cfg_attr(feature = "axum", doc = "# Ok::<(), webhook_core::KeyError>(())")]
#![cfg_attr(feature = "axum", doc = "```")]

use std::fmt;

use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use webhook_core::domain::Domain;
use webhook_core::event::Event;
use webhook_core::{Style, VerifiedMessage};

use crate::{Rejection, VerifiedWebhook, shape};

/// An event-style or Standard Webhooks event whose `data` is decoded into `D`.
///
/// For the event style, `data` is decoded straight from the verified body into `D`
/// (no JSON `Value` tree is built); the envelope, core's [`Event`], is decoded only if
/// [`event`](Self::event) is called. For Standard Webhooks the body is decoded as an
/// `Event` first.
#[derive(Clone)]
pub struct WebhookEvent<D> {
    webhook: VerifiedWebhook,
    event: Option<Box<Event>>,
    data: D,
}

impl<D> WebhookEvent<D> {
    /// The event's envelope (id, type, idempotency key, organization, creation time) and
    /// its `data` as JSON.
    #[must_use]
    pub fn event(&self) -> &Event {
        match &self.event {
            Some(event) => event,
            // Invariant: without an own copy, the delivery is an event-style one.
            None => self
                .webhook
                .event()
                .unwrap_or_else(|| unreachable!("WebhookEvent built from a non-event")),
        }
    }

    /// The decoded `data`.
    #[must_use]
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The decoded `data`, by value.
    #[must_use]
    pub fn into_data(self) -> D {
        self.data
    }

    /// The verified delivery it came from.
    #[must_use]
    pub fn webhook(&self) -> &VerifiedWebhook {
        &self.webhook
    }
}

impl<D> fmt::Debug for WebhookEvent<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `data` may hold personal data: like `VerifiedWebhook`, show only identifiers.
        f.debug_struct("WebhookEvent")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

/// A domain-style resource decoded into `R` (core's [`Transaction`], [`Wallet`] and
/// [`ApprovalSet`], or your own type), from the verified payload.
///
/// [`Transaction`]: webhook_core::domain::Transaction
/// [`Wallet`]: webhook_core::domain::Wallet
/// [`ApprovalSet`]: webhook_core::domain::ApprovalSet
#[derive(Clone)]
pub struct WebhookResource<R> {
    webhook: VerifiedWebhook,
    domain: Domain,
    resource: R,
}

impl<R> WebhookResource<R> {
    /// The envelope's domain.
    #[must_use]
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// The decoded resource.
    #[must_use]
    pub fn resource(&self) -> &R {
        &self.resource
    }

    /// The decoded resource, by value.
    #[must_use]
    pub fn into_resource(self) -> R {
        self.resource
    }

    /// The verified delivery it came from.
    #[must_use]
    pub fn webhook(&self) -> &VerifiedWebhook {
        &self.webhook
    }
}

impl<R> fmt::Debug for WebhookResource<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookResource")
            .field("webhook", &self.webhook)
            .finish_non_exhaustive()
    }
}

/// An event body's `data` alone, decoded into `D`; every other field is skipped.
#[derive(serde::Deserialize)]
struct DataOnly<D> {
    data: D,
}

impl VerifiedWebhook {
    /// The event with its `data` decoded into `D`, for the event style and Standard
    /// Webhooks (whose body is the same event JSON).
    ///
    /// # Errors
    /// [`Rejection::UnexpectedPayload`] (422) when the body or its `data` does not fit;
    /// [`Rejection::WrongStyle`] (500) for a domain-style delivery.
    pub fn event_data<D: DeserializeOwned>(&self) -> Result<WebhookEvent<D>, Rejection> {
        let unexpected = |error: serde_json::Error| {
            tracing::debug!(
                line = error.line(),
                column = error.column(),
                "webhook payload does not fit the handler's type"
            );
            Rejection::UnexpectedPayload
        };
        if self.style() == Style::Event {
            // Straight from the verified bytes into `D`, without a `Value` tree: the
            // envelope's other fields are skipped (the middleware checked them). Where
            // that fails, `D` is decoded from the event's `data` as JSON, which is what
            // decides: a payload that fits only that way (an object with a repeated
            // key, whose last value counts) is still accepted.
            let data = match shape::parse::<DataOnly<D>>(self.body()) {
                Ok(DataOnly { data }) => data,
                Err(_) => match self.message() {
                    VerifiedMessage::Event(event) => {
                        D::deserialize(&event.data).map_err(unexpected)?
                    }
                    _ => return Err(Rejection::WrongStyle),
                },
            };
            return Ok(WebhookEvent {
                data,
                webhook: self.clone(),
                event: None,
            });
        }
        match self.message() {
            VerifiedMessage::Standard { payload, .. } => {
                let event = Event::deserialize(payload).map_err(unexpected)?;
                Ok(WebhookEvent {
                    data: D::deserialize(&event.data).map_err(unexpected)?,
                    webhook: self.clone(),
                    event: Some(Box::new(event)),
                })
            }
            _ => Err(Rejection::WrongStyle),
        }
    }

    /// The domain-style resource decoded into `R` from the verified payload.
    ///
    /// # Errors
    /// [`Rejection::UnexpectedPayload`] (422) when the resource does not fit `R`;
    /// [`Rejection::WrongStyle`] (500) for the other styles.
    pub fn resource_as<R: DeserializeOwned>(&self) -> Result<WebhookResource<R>, Rejection> {
        let Some((envelope, _)) = self.domain() else {
            return Err(Rejection::WrongStyle);
        };
        // Verified already decodes, so this cannot fail; stay total anyway.
        let json = envelope
            .payload_bytes()
            .map_err(|_| Rejection::UnexpectedPayload)?;
        let resource = serde_json::from_slice(&json).map_err(|error| {
            tracing::debug!(
                line = error.line(),
                column = error.column(),
                "webhook resource does not fit the handler's type"
            );
            Rejection::UnexpectedPayload
        })?;
        Ok(WebhookResource {
            webhook: self.clone(),
            domain: envelope.domain.clone(),
            resource,
        })
    }
}

#[cfg(feature = "axum")]
mod extract {
    use axum::extract::FromRequestParts;
    use http::request::Parts;
    use serde::de::DeserializeOwned;

    use super::{WebhookEvent, WebhookResource};
    use crate::{Rejection, VerifiedWebhook, telemetry};

    fn decoded<T>(
        parts: &Parts,
        decode: impl FnOnce(&VerifiedWebhook) -> Result<T, Rejection>,
    ) -> Result<T, Rejection> {
        let result = match parts.extensions.get::<VerifiedWebhook>() {
            Some(webhook) => decode(webhook),
            None => Err(Rejection::NotVerified),
        };
        if let Err(rejection) = &result {
            telemetry::rejected(rejection);
        }
        result
    }

    impl<S: Send + Sync, D: DeserializeOwned + Send> FromRequestParts<S> for WebhookEvent<D> {
        type Rejection = Rejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
            decoded(parts, VerifiedWebhook::event_data)
        }
    }

    impl<S: Send + Sync, R: DeserializeOwned + Send> FromRequestParts<S> for WebhookResource<R> {
        type Rejection = Rejection;

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Rejection> {
            decoded(parts, VerifiedWebhook::resource_as)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Payment {
        id: String,
        cents: u64,
    }

    fn checked(data: &str) -> VerifiedWebhook {
        let body = format!(
            r#"{{"id":"e1","type":"transaction.confirmed","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{data}}}"#
        );
        let head = shape::event_head(body.as_bytes()).unwrap();
        VerifiedWebhook::event_checked(head, 1_746_714_600, Bytes::from(body))
    }

    #[test]
    fn event_data_decodes_from_the_body_and_the_envelope_on_demand() {
        let webhook = checked(r#"{"id":"p1","cents":250,"note":"ignored"}"#);
        let event: WebhookEvent<Payment> = webhook.event_data().unwrap();
        assert_eq!(
            event.data(),
            &Payment {
                id: "p1".into(),
                cents: 250
            }
        );
        // The envelope is decoded when asked for, and agrees with the body.
        assert_eq!(event.event().idempotency_key, "k1");
        assert_eq!(event.event().data["note"], "ignored");
        assert_eq!(webhook.kind(), "transaction.confirmed");
    }

    #[test]
    fn event_data_still_takes_what_only_the_json_value_accepts() {
        // A struct refuses a repeated key, a JSON object keeps the last one: as before
        // this change (when `data` was decoded from the `Value`), the last one counts.
        let webhook = checked(r#"{"id":"p1","cents":1,"cents":2}"#);
        let event: WebhookEvent<Payment> = webhook.event_data().unwrap();
        assert_eq!(event.data().cents, 2);
    }

    #[test]
    fn event_data_that_does_not_fit_is_unexpected_payload() {
        let webhook = checked(r#"{"id":"p1","cents":-5}"#);
        assert!(matches!(
            webhook.event_data::<Payment>(),
            Err(Rejection::UnexpectedPayload)
        ));
        assert!(matches!(
            checked("[]").event_data::<Payment>(),
            Err(Rejection::UnexpectedPayload)
        ));
    }
}
