//! The verified webhook the middleware hands to the handler as a request extension.
//!
//! ```
//! use webhook_receiver::VerifiedWebhook;
//!
//! fn handle(request: &http::Request<http_body_util::Full<bytes::Bytes>>) -> String {
//!     match request.extensions().get::<VerifiedWebhook>() {
//!         Some(webhook) => format!("{} {}", webhook.kind(), webhook.dedup_key()),
//!         None => "the webhook layer is not installed".to_owned(),
//!     }
//! }
//! # let _ = handle;
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use webhook_core::domain::{Envelope, Resource};
use webhook_core::event::{Event, EventType};
use webhook_core::{Style, Verified, VerifiedMessage};

use crate::shape::{self, EventHead};

/// A request that passed the timestamp window, the signature check, the body's shape
/// check and dedup. Cheap to clone (one reference count).
///
/// Only the middleware makes these, so holding one means the bytes were verified.
///
/// An event-style body is checked for its shape in the middleware but decoded into an
/// [`Event`] only when the handler first asks for it ([`event`](Self::event),
/// [`message`](Self::message), [`verified`](Self::verified)): a handler that reads only
/// [`body`](Self::body), [`dedup_key`](Self::dedup_key) or [`kind`](Self::kind) never
/// pays for decoding `data`. The check accepts exactly the bodies that decode, so the
/// decoding cannot fail when it happens.
#[derive(Clone)]
pub struct VerifiedWebhook {
    inner: Arc<Inner>,
}

struct Inner {
    style: Style,
    timestamp: i64,
    body: Bytes,
    /// Event style: what the shape check kept; the rest is decoded on first use.
    head: Option<EventHead>,
    /// Core's result: set at once for the domain style and Standard Webhooks, on first
    /// use for the event style.
    verified: OnceLock<Verified>,
}

impl VerifiedWebhook {
    /// A delivery core verified and decoded in full.
    pub(crate) fn new(verified: Verified, body: Bytes) -> Self {
        Self {
            inner: Arc::new(Inner {
                style: verified.style,
                timestamp: verified.timestamp,
                body,
                head: None,
                verified: OnceLock::from(verified),
            }),
        }
    }

    /// An event-style delivery whose signature and window were checked and whose body
    /// passed [`shape::event_head`](crate::shape::event_head).
    pub(crate) fn event_checked(head: EventHead, timestamp: i64, body: Bytes) -> Self {
        Self {
            inner: Arc::new(Inner {
                style: Style::Event,
                timestamp,
                body,
                head: Some(head),
                verified: OnceLock::new(),
            }),
        }
    }

    /// The style it arrived in.
    #[must_use]
    pub fn style(&self) -> Style {
        self.inner.style
    }

    /// The signed timestamp in Unix seconds (for the domain style, the envelope's).
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.inner.timestamp
    }

    /// The key deduplication used: `idempotencyKey` (event style), `id@updatedAt` of the
    /// resource (domain style) or `webhook-id` (Standard Webhooks).
    #[must_use]
    pub fn dedup_key(&self) -> &str {
        match &self.inner.head {
            Some(head) => &head.dedup_key,
            None => &self.verified().dedup_key,
        }
    }

    /// The event type (event style), the domain (domain style) or the body's `type`
    /// field (Standard Webhooks, empty when absent).
    #[must_use]
    pub fn kind(&self) -> &str {
        match &self.inner.head {
            Some(head) => head.event_type.as_str(),
            None => self.verified().message.kind(),
        }
    }

    /// The event type, for the event style, without decoding the event.
    #[must_use]
    pub fn event_type(&self) -> Option<&EventType> {
        match &self.inner.head {
            Some(head) => Some(&head.event_type),
            None => self.event().map(|event| &event.event_type),
        }
    }

    /// The decoded message (for the event style, decoded now if it was not yet).
    #[must_use]
    pub fn message(&self) -> &VerifiedMessage {
        &self.verified().message
    }

    /// The event, for the event style (decoded now if it was not yet).
    #[must_use]
    pub fn event(&self) -> Option<&Event> {
        if self.inner.style != Style::Event {
            return None;
        }
        match &self.verified().message {
            VerifiedMessage::Event(event) => Some(event),
            _ => None,
        }
    }

    /// The envelope and its typed resource, for the domain style.
    #[must_use]
    pub fn domain(&self) -> Option<(&Envelope, &Resource)> {
        match &self.verified().message {
            VerifiedMessage::Domain { envelope, resource } => Some((envelope, resource)),
            _ => None,
        }
    }

    /// The JSON body, for Standard Webhooks.
    #[must_use]
    pub fn standard_payload(&self) -> Option<&serde_json::Value> {
        match &self.verified().message {
            VerifiedMessage::Standard { payload, .. } => Some(payload),
            _ => None,
        }
    }

    /// Parses the verified body into your own type (the whole event, envelope or
    /// Standard Webhooks body, as sent).
    ///
    /// # Errors
    /// When the body does not fit `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.inner.body)
    }

    /// The raw body exactly as it was verified.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// Core's verification result (for the event style, decoded now if it was not yet).
    #[must_use]
    pub fn verified(&self) -> &Verified {
        let inner = &*self.inner;
        inner.verified.get_or_init(|| {
            let Some(head) = &inner.head else {
                // Invariant: without a head, `verified` was set at construction.
                unreachable!("a fully decoded VerifiedWebhook always holds its Verified")
            };
            // Invariant: the shape check accepted the body, and it accepts exactly what
            // decodes as `Event` (`shape`'s tests compare the two on every kind of body).
            let event: Event = shape::parse(&inner.body).unwrap_or_else(|error| {
                unreachable!(
                    "a body that passed the event shape check failed to decode (line {}, column {})",
                    error.line(),
                    error.column()
                )
            });
            debug_assert_eq!(event.idempotency_key, head.dedup_key);
            Verified {
                style: Style::Event,
                timestamp: inner.timestamp,
                dedup_key: head.dedup_key.clone(),
                message: VerifiedMessage::Event(Box::new(event)),
            }
        })
    }
}

impl fmt::Debug for VerifiedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The payload may hold personal data: show only what identifies the delivery.
        f.debug_struct("VerifiedWebhook")
            .field("style", &self.style())
            .field("kind", &self.kind())
            .field("dedup_key", &self.dedup_key())
            .field("timestamp", &self.timestamp())
            .field("body_len", &self.inner.body.len())
            .finish()
    }
}
