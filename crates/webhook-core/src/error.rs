//! Typed errors. None of them carries secret or key material.
//!
//! Structural problems (a missing header, a timestamp that is not a number) are
//! specific; a signature that does not verify is only ever "no matching signature",
//! because saying more would help an attacker (see ring's `error::Unspecified`).
//!
//! ```
//! use webhook_core::VerifyError;
//!
//! let err = VerifyError::NoMatchingSignature;
//! assert_eq!(err.status().as_u16(), 401);
//! assert_eq!(err.to_string(), "no matching signature");
//! ```

use http::StatusCode;

/// Key or secret material could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret or key is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which kind of key.
        what: &'static str,
    },
    /// The text does not start with the expected prefix (such as `whsec_`).
    #[error("{what} must start with `{prefix}`")]
    MissingPrefix {
        /// Which kind of key.
        what: &'static str,
        /// The prefix that was expected.
        prefix: &'static str,
    },
    /// The text is not valid base64.
    #[error("{what} is not valid base64")]
    InvalidBase64 {
        /// Which kind of key.
        what: &'static str,
    },
    /// The decoded key has the wrong length.
    #[error("{what} has length {actual}, expected {expected}")]
    InvalidLength {
        /// Which kind of key.
        what: &'static str,
        /// The length that was expected, in words (`"32 bytes"`, `"at least 24 bytes"`).
        expected: &'static str,
        /// The length that was found.
        actual: usize,
    },
    /// The bytes are not a key of the expected algorithm and encoding.
    #[error("{what} is not a valid {encoding}")]
    InvalidEncoding {
        /// Which kind of key.
        what: &'static str,
        /// The encoding that was expected (`"PKCS#8 document"`, `"SubjectPublicKeyInfo"`).
        encoding: &'static str,
    },
    /// The system random number generator failed while generating a key.
    #[error("key generation failed")]
    Generation,
}

/// A request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Domain-style signing needs the message's domain.
    #[error("domain-style messages need a domain")]
    MissingDomain,
    /// A domain-style resource must be a JSON object (SPEC §2); this was another JSON
    /// value (an array, a string, …) or not JSON at all.
    #[error("a domain-style resource must be a JSON object")]
    ResourceNotObject,
    /// The message id cannot go into a header, or contains a `.` (Standard Webhooks forbids it).
    #[error("message id must be non-empty visible ASCII without '.'")]
    InvalidMessageId,
    /// The signing keys list is empty.
    #[error("no signing keys configured")]
    NoKeys,
    /// The signing operation itself failed.
    #[error("signing failed")]
    Crypto,
}

/// A received request failed verification.
///
/// [`VerifyError::status`] maps each reason to the HTTP status a receiver answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header that must appear once appears several times.
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    /// A header is present but not in the expected form.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is not a valid Unix time or RFC 3339 time.
    #[error("malformed timestamp")]
    MalformedTimestamp,
    /// The timestamp is older than the tolerance allows.
    #[error("timestamp is {age_secs} s old, outside the tolerance")]
    TimestampTooOld {
        /// How old the timestamp is, in seconds.
        age_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("timestamp is {ahead_secs} s in the future, outside the tolerance")]
    TimestampTooNew {
        /// How far ahead the timestamp is, in seconds.
        ahead_secs: u64,
    },
    /// No signature header was sent.
    #[error("missing signature")]
    MissingSignature,
    /// No signature matched any trusted key or secret.
    #[error("no matching signature")]
    NoMatchingSignature,
    /// The body is not the JSON this style expects.
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The verifier has no keys configured.
    #[error("no verification keys configured")]
    NoKeys,
}

impl VerifyError {
    /// A body that does not parse as `what`. Only serde's category and position are kept:
    /// its full message can quote the body (which may hold personal data).
    #[must_use]
    pub fn malformed_body(what: &str, error: &serde_json::Error) -> Self {
        let category = match error.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "is truncated",
            serde_json::error::Category::Data => "does not have the expected fields and types",
            serde_json::error::Category::Io => "could not be read",
        };
        Self::MalformedBody(format!(
            "{what} {category} (line {}, column {})",
            error.line(),
            error.column()
        ))
    }

    /// The HTTP status a receiver answers with: 400 for malformed requests,
    /// 401 for authentication failures (signature, timestamp window), 500 for
    /// a receiver without keys.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHeader(_)
            | Self::DuplicateHeader(_)
            | Self::MalformedHeader(_)
            | Self::MalformedTimestamp
            | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::TimestampTooOld { .. }
            | Self::TimestampTooNew { .. }
            | Self::MissingSignature
            | Self::NoMatchingSignature => StatusCode::UNAUTHORIZED,
            Self::NoKeys => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, stable reason code for metrics labels and JSON error bodies.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::DuplicateHeader(_) => "duplicate_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::MalformedTimestamp => "malformed_timestamp",
            Self::TimestampTooOld { .. } | Self::TimestampTooNew { .. } => {
                "timestamp_out_of_window"
            }
            Self::MissingSignature => "missing_signature",
            Self::NoMatchingSignature => "no_matching_signature",
            Self::MalformedBody(_) => "malformed_body",
            Self::NoKeys => "no_keys",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn malformed_body_never_quotes_the_body() {
        let secret_looking = r#"{"id": 42, "note": "4111-1111-1111-1111"}"#;
        let error = serde_json::from_str::<crate::event::Event>(secret_looking).unwrap_err();
        let message = VerifyError::malformed_body("event", &error).to_string();
        assert!(!message.contains("4111"), "{message}");
        assert!(!message.contains("42"), "{message}");
        assert!(
            message.starts_with("malformed body: event does not have the expected"),
            "{message}"
        );
        let truncated = serde_json::from_str::<serde_json::Value>("{\"a\":").unwrap_err();
        assert!(
            VerifyError::malformed_body("body", &truncated)
                .to_string()
                .contains("truncated")
        );
    }
}
