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
use std::sync::Arc;

use bytes::Bytes;
use webhook_core::domain::{Envelope, Resource};
use webhook_core::event::Event;
use webhook_core::{Style, Verified, VerifiedMessage};

/// A request that passed the timestamp window, the signature check, the body's shape
/// check and dedup. Cheap to clone.
///
/// Only the middleware makes these, so holding one means the bytes were verified.
#[derive(Clone)]
pub struct VerifiedWebhook {
    verified: Arc<Verified>,
    body: Bytes,
}

impl VerifiedWebhook {
    pub(crate) fn new(verified: Verified, body: Bytes) -> Self {
        Self {
            verified: Arc::new(verified),
            body,
        }
    }

    /// The style it arrived in.
    #[must_use]
    pub fn style(&self) -> Style {
        self.verified.style
    }

    /// The signed timestamp in Unix seconds (for the domain style, the envelope's).
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.verified.timestamp
    }

    /// The key deduplication used: `idempotencyKey` (event style), `id@updatedAt` of the
    /// resource (domain style) or `webhook-id` (Standard Webhooks).
    #[must_use]
    pub fn dedup_key(&self) -> &str {
        &self.verified.dedup_key
    }

    /// The event type (event style), the domain (domain style) or the body's `type`
    /// field (Standard Webhooks, empty when absent).
    #[must_use]
    pub fn kind(&self) -> &str {
        self.verified.message.kind()
    }

    /// The decoded message.
    #[must_use]
    pub fn message(&self) -> &VerifiedMessage {
        &self.verified.message
    }

    /// The event, for the event style.
    #[must_use]
    pub fn event(&self) -> Option<&Event> {
        match &self.verified.message {
            VerifiedMessage::Event(event) => Some(event),
            _ => None,
        }
    }

    /// The envelope and its typed resource, for the domain style.
    #[must_use]
    pub fn domain(&self) -> Option<(&Envelope, &Resource)> {
        match &self.verified.message {
            VerifiedMessage::Domain { envelope, resource } => Some((envelope, resource)),
            _ => None,
        }
    }

    /// The JSON body, for Standard Webhooks.
    #[must_use]
    pub fn standard_payload(&self) -> Option<&serde_json::Value> {
        match &self.verified.message {
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
        serde_json::from_slice(&self.body)
    }

    /// The raw body exactly as it was verified.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Core's verification result.
    #[must_use]
    pub fn verified(&self) -> &Verified {
        &self.verified
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
            .field("body_len", &self.body.len())
            .finish()
    }
}
