//! The sender's error: an opaque struct with predicates, in the manner of hyper's `Error`.
//!
//! What went wrong with a delivery *attempt* (timeouts, refused connections, HTTP statuses)
//! is not an error of the API: it is recorded in the delivery's history, see
//! [`AttemptRecord::is_timeout`](crate::AttemptRecord::is_timeout),
//! [`AttemptRecord::is_connect`](crate::AttemptRecord::is_connect) and
//! [`AttemptRecord::status`](crate::AttemptRecord::status).
//!
//! ```
//! # async fn demo() -> Result<(), webhook_sender::Error> {
//! use webhook_sender::{EndpointConfig, Sender};
//! use webhook_core::event::EventType;
//! use webhook_core::keys::HmacSecret;
//!
//! let sender = Sender::builder().store(webhook_sender::store::MemoryStore::new()).build().await?;
//! let secret = HmacSecret::from_utf8("s3cret").expect("secret");
//! let metadata = EndpointConfig::event("org", "http://169.254.169.254/", [EventType::WalletCreated])
//!     .secret(secret);
//! let err = sender.endpoints().create(metadata).await.unwrap_err();
//! assert!(err.is_forbidden_address());
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

use std::fmt;

use crate::http::ForbiddenAddress;
use crate::store::StoreError;

/// An error from the sender's API.
pub struct Error {
    kind: Kind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug)]
enum Kind {
    Config(String),
    Forbidden(ForbiddenAddress),
    NotFound(&'static str),
    Conflict(&'static str),
    Store,
    Shutdown,
    Internal(&'static str),
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Config(message.into()),
            source: None,
        }
    }

    pub(crate) fn forbidden(class: ForbiddenAddress) -> Self {
        Self {
            kind: Kind::Forbidden(class),
            source: None,
        }
    }

    pub(crate) fn not_found(what: &'static str) -> Self {
        Self {
            kind: Kind::NotFound(what),
            source: None,
        }
    }

    pub(crate) fn conflict(what: &'static str) -> Self {
        Self {
            kind: Kind::Conflict(what),
            source: None,
        }
    }

    pub(crate) fn shutdown() -> Self {
        Self {
            kind: Kind::Shutdown,
            source: None,
        }
    }

    pub(crate) fn internal(what: &'static str) -> Self {
        Self {
            kind: Kind::Internal(what),
            source: None,
        }
    }

    /// Whether a configuration or input was invalid (bad URL, missing secret, …).
    #[must_use]
    pub fn is_invalid(&self) -> bool {
        matches!(self.kind, Kind::Config(_))
    }

    /// Whether an endpoint's address is refused by the SSRF guard.
    #[must_use]
    pub fn is_forbidden_address(&self) -> bool {
        matches!(self.kind, Kind::Forbidden(_))
    }

    /// The class of the refused address, when [`Error::is_forbidden_address`].
    #[must_use]
    pub fn forbidden_address(&self) -> Option<ForbiddenAddress> {
        match self.kind {
            Kind::Forbidden(class) => Some(class),
            _ => None,
        }
    }

    /// Whether an endpoint, organization or delivery does not exist.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        matches!(self.kind, Kind::NotFound(_))
    }

    /// Whether the call would create something that already exists (an organization id
    /// taken).
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self.kind, Kind::Conflict(_))
    }

    /// Whether the store failed; nothing was (durably) done.
    #[must_use]
    pub fn is_store(&self) -> bool {
        matches!(self.kind, Kind::Store)
    }

    /// Whether the sender has been shut down.
    #[must_use]
    pub fn is_shutdown(&self) -> bool {
        matches!(self.kind, Kind::Shutdown)
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Self {
            kind: Kind::Store,
            source: Some(Box::new(error)),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("webhook_sender::Error");
        debug.field("kind", &self.kind);
        if let Some(source) = &self.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Config(message) => write!(f, "invalid configuration: {message}"),
            Kind::Forbidden(class) => write!(f, "endpoint address is forbidden ({class})"),
            Kind::NotFound(what) => write!(f, "{what} not found"),
            Kind::Conflict(what) => write!(f, "{what} already exists"),
            Kind::Store => match &self.source {
                Some(source) => write!(f, "store failed: {source}"),
                None => f.write_str("store failed"),
            },
            Kind::Shutdown => f.write_str("sender is shut down"),
            Kind::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
