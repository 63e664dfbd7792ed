//! The shared core of the webhook toolkit: event and envelope types, signature schemes,
//! idempotency keys and redaction. No I/O, no async.
//!
//! Both sides depend on this crate: `webhook-sender` signs with [`SigningKeys`] and
//! `webhook-receiver` verifies with [`TrustedKeys`], so a wire format is written once.
//!
//! | module | holds |
//! |---|---|
//! | [`event`] | event style (seed 000): [`Event`](event::Event), the 13 [`EventType`](event::EventType)s |
//! | [`domain`] | domain style (seed 001): [`Envelope`](domain::Envelope), Transaction / Wallet / Approval |
//! | [`scheme`] | the three signature schemes behind [`SigningKeys`] / [`TrustedKeys`] |
//! | [`keys`] | HMAC secrets, ECDSA P-256 and Ed25519 keys; `Debug` never shows secrets |
//! | [`timestamp`] | the replay window check; strict Unix-seconds and envelope-timestamp parsing |
//! | [`idempotency`] | deterministic idempotency keys and their 60 s window |
//! | [`redaction`] | e-mail masking and dropped fields, per event type |
//! | [`clock`] | the one place that reads the wall clock |
//!
//! This crate has no cargo features.
//!
//! # Example
//!
//! Sign a domain-style wallet update and verify it as a customer would, with only the
//! base64 public key:
//!
//! ```
//! use std::time::Duration;
//! use webhook_core::domain::{Domain, Resource};
//! use webhook_core::keys::{EcdsaPublicKey, EcdsaSigningKey};
//! use webhook_core::{Outgoing, SigningKeys, TrustedKeys, VerifiedMessage};
//!
//! let (key, _pkcs8) = EcdsaSigningKey::generate()?;
//! let customer_key = key.public_key().to_spki_base64(); // what the customer is given
//! let signer = SigningKeys::Domain(Box::new(key));
//!
//! let wallet = br#"{"id":"0196153b","status":"PROVISIONED","createdAt":"2025-04-08T11:48:56Z","updatedAt":"2025-04-08T11:48:57Z"}"#;
//! let now = time::OffsetDateTime::now_utc();
//! let request = signer.sign(&Outgoing::new("msg-1", wallet).with_domain(&Domain::Wallet), now)?;
//!
//! let trusted = TrustedKeys::Domain(vec![EcdsaPublicKey::from_spki_base64(&customer_key)?]);
//! let headers: http::HeaderMap = request.headers.into_iter().map(|(k, v)| (k, v)).collect();
//! let verified = trusted.verify(&headers, &request.body, now.unix_timestamp(), Duration::from_secs(300))?;
//! assert_eq!(verified.dedup_key, "0196153b@2025-04-08T11:48:57Z");
//! let VerifiedMessage::Domain { resource: Resource::Wallet(wallet), .. } = verified.message else { panic!() };
//! assert!(wallet.status.is_terminal());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod clock;
pub mod domain;
mod error;
pub mod event;
pub mod idempotency;
pub mod keys;
pub mod redaction;
pub mod scheme;
mod string_enum;
pub mod timestamp;

pub use error::{KeyError, SignError, VerifyError};
pub use scheme::{
    Outgoing, SignedRequest, SigningKeys, Style, TrustedKeys, Verified, VerifiedMessage,
};
