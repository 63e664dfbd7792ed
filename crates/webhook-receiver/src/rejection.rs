//! Why a request was turned away, and the short JSON answer it gets.
//!
//! Every rejection is a response, never a panic or a service error: a status, a stable
//! reason code (also the `reason` label of `webhook_receiver_rejected_total`) and a
//! body `{"error":"<code>","message":"<short text>"}` that never echoes a secret, a
//! signature or the request body.
//!
//! ```
//! use webhook_core::VerifyError;
//! use webhook_receiver::Rejection;
//!
//! let rejection = Rejection::Verify(VerifyError::NoMatchingSignature);
//! assert_eq!(rejection.status().as_u16(), 401);
//! assert_eq!(rejection.code(), "no_matching_signature");
//! assert_eq!(
//!     rejection.body_text(),
//!     r#"{"error":"no_matching_signature","message":"no matching signature"}"#
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use webhook_core::VerifyError;

/// `Retry-After` for answers that clear up within seconds (a delivery in progress, a full
/// queue, a dedup store that did not answer).
pub(crate) const RETRY_SOON: Duration = Duration::from_secs(5);
/// `Retry-After` for a full dedup store: entries must expire before it takes more.
pub(crate) const RETRY_LATER: Duration = Duration::from_secs(30);

/// The reason a webhook request was not handed to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a `POST` (405, with `Allow: POST`).
    MethodNotAllowed,
    /// The body, or its declared `Content-Length`, exceeds the limit (413).
    PayloadTooLarge,
    /// `Content-Length` is not a number (400).
    InvalidContentLength,
    /// The body could not be read to its end (400), e.g. a broken chunked encoding.
    BodyUnreadable,
    /// The body did not arrive completely within its deadline (408; see
    /// [`deadline`](crate::deadline)). The sender retries 408.
    BodyTimeout,
    /// Verification failed: 400 for malformed headers or bodies, 401 for a bad or
    /// missing signature, an unknown key or a timestamp outside the window.
    Verify(VerifyError),
    /// Domain style: the resource's signed `updatedAt` is older than the verifier's
    /// maximum resource age, or more than the tolerance in the future (401, like a
    /// timestamp outside the window). Seed 001 does not sign the envelope timestamp, so
    /// this is the check that bounds how long a captured delivery can be replayed.
    StaleResource,
    /// Domain style: the resource's `updatedAt` is not an RFC 3339 time (400), so its
    /// age cannot be checked.
    MalformedUpdatedAt,
    /// The same delivery is being handled right now (503 with `Retry-After`): once that
    /// attempt answers, a retry is either a duplicate (2xx) or handled anew.
    InProgress,
    /// The dedup store failed to answer (503 with `Retry-After`).
    DedupUnavailable,
    /// The in-memory dedup store holds its maximum of unexpired keys (503 with `Retry-After`).
    DedupFull,
    /// The quick-ack queue is full (503 with `Retry-After`): back-pressure to the sender.
    QueueFull,
    /// The quick-ack worker has stopped (503 with `Retry-After`).
    QueueClosed,
    /// The verified payload does not fit the handler's type (422; see
    /// [`typed`](crate::typed)): the same bytes would fail again, so the sender should
    /// not retry.
    UnexpectedPayload,
    /// The handler asked for another style's typed view (500, a configuration error:
    /// the sender retries until the receiver is fixed).
    WrongStyle,
    /// The extractor found no verified webhook: the middleware is not installed in front
    /// of this handler (500, a programming error).
    NotVerified,
}

impl Rejection {
    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidContentLength | Self::BodyUnreadable | Self::MalformedUpdatedAt => {
                StatusCode::BAD_REQUEST
            }
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Verify(error) => error.status(),
            Self::StaleResource => StatusCode::UNAUTHORIZED,
            Self::InProgress
            | Self::DedupUnavailable
            | Self::DedupFull
            | Self::QueueFull
            | Self::QueueClosed => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnexpectedPayload => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotVerified | Self::WrongStyle => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, stable reason code: the JSON `error` field and the metrics label.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::InvalidContentLength => "invalid_content_length",
            Self::BodyUnreadable => "body_unreadable",
            Self::BodyTimeout => "body_timeout",
            Self::Verify(error) => error.code(),
            Self::StaleResource => "stale_resource",
            Self::MalformedUpdatedAt => "malformed_updated_at",
            Self::InProgress => "in_progress",
            Self::DedupUnavailable => "dedup_unavailable",
            Self::DedupFull => "dedup_full",
            Self::QueueFull => "queue_full",
            Self::QueueClosed => "queue_closed",
            Self::UnexpectedPayload => "unexpected_payload",
            Self::WrongStyle => "wrong_style",
            Self::NotVerified => "not_verified",
        }
    }

    /// A short human-readable explanation. Fixed texts only: no request content, no
    /// signature, no key material, no parser message (those can quote the body).
    #[must_use]
    pub fn message(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::MethodNotAllowed => "only POST is accepted",
            Self::PayloadTooLarge => "body exceeds the size limit",
            Self::InvalidContentLength => "invalid content-length",
            Self::BodyUnreadable => "body could not be read",
            Self::BodyTimeout => "body not received in time",
            Self::Verify(error) => return verify_message(error),
            Self::StaleResource => "resource updatedAt outside the accepted age",
            Self::MalformedUpdatedAt => "resource updatedAt is not an RFC 3339 time",
            Self::InProgress => "this delivery is being processed; retry later",
            Self::DedupUnavailable => "deduplication store unavailable; retry later",
            Self::DedupFull => "deduplication store full; retry later",
            Self::QueueFull => "processing queue full; retry later",
            Self::QueueClosed => "processing queue closed; retry later",
            Self::UnexpectedPayload => {
                "payload does not have the fields and types the receiver expects"
            }
            Self::WrongStyle => "receiver expects another webhook style",
            Self::NotVerified => "webhook verification middleware is not installed",
        })
    }

    /// How long the sender should wait before retrying (the `Retry-After` header), for
    /// the 503 answers.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::InProgress | Self::DedupUnavailable | Self::QueueFull => Some(RETRY_SOON),
            Self::DedupFull | Self::QueueClosed => Some(RETRY_LATER),
            _ => None,
        }
    }

    /// The JSON body: `{"error":"<code>","message":"<short text>"}`.
    #[must_use]
    pub fn body_text(&self) -> String {
        serde_json::json!({ "error": self.code(), "message": self.message() }).to_string()
    }

    /// The complete HTTP answer: status, `Content-Type: application/json`, `Allow` on 405,
    /// `Retry-After` on 503, and [`Rejection::body_text`].
    #[must_use]
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let mut response = json_response(self.status(), self.body_text());
        let headers = response.headers_mut();
        if matches!(self, Self::MethodNotAllowed) {
            headers.insert(ALLOW, HeaderValue::from_static("POST"));
        }
        if let Some(after) = self.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        response
    }
}

/// A JSON answer: `status`, `Content-Type: application/json` and `body`.
pub(crate) fn json_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Short texts for core's reasons. Header names are not secret; a signature mismatch
/// says nothing more than that (see ring's `error::Unspecified`).
fn verify_message(error: &VerifyError) -> Cow<'static, str> {
    match error {
        VerifyError::MissingHeader(name) => Cow::Owned(format!("missing header {name}")),
        VerifyError::DuplicateHeader(name) => {
            Cow::Owned(format!("header {name} appears more than once"))
        }
        VerifyError::MalformedHeader(name) => Cow::Owned(format!("malformed header {name}")),
        VerifyError::MalformedTimestamp => Cow::Borrowed("malformed timestamp"),
        VerifyError::TimestampTooOld { .. } | VerifyError::TimestampTooNew { .. } => {
            Cow::Borrowed("timestamp outside the tolerance")
        }
        VerifyError::MissingSignature => Cow::Borrowed("missing signature"),
        VerifyError::NoMatchingSignature => Cow::Borrowed("no matching signature"),
        VerifyError::MalformedBody(_) => Cow::Borrowed("body is not the expected JSON"),
        VerifyError::NoKeys => Cow::Borrowed("receiver has no verification keys"),
        _ => Cow::Borrowed("request could not be verified"),
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Rejection {}

impl From<VerifyError> for Rejection {
    fn from(error: VerifyError) -> Self {
        Self::Verify(error)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Rejection {
    fn into_response(self) -> axum::response::Response {
        self.to_response().map(axum::body::Body::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn statuses_codes_and_headers() {
        let cases = [
            (Rejection::MethodNotAllowed, 405, "method_not_allowed"),
            (Rejection::PayloadTooLarge, 413, "payload_too_large"),
            (
                Rejection::InvalidContentLength,
                400,
                "invalid_content_length",
            ),
            (Rejection::BodyUnreadable, 400, "body_unreadable"),
            (Rejection::BodyTimeout, 408, "body_timeout"),
            (Rejection::StaleResource, 401, "stale_resource"),
            (Rejection::MalformedUpdatedAt, 400, "malformed_updated_at"),
            (
                Rejection::Verify(VerifyError::MissingHeader("x-webhook-timestamp")),
                400,
                "missing_header",
            ),
            (
                Rejection::Verify(VerifyError::TimestampTooNew { ahead_secs: 9 }),
                401,
                "timestamp_out_of_window",
            ),
            (Rejection::InProgress, 503, "in_progress"),
            (Rejection::DedupUnavailable, 503, "dedup_unavailable"),
            (Rejection::DedupFull, 503, "dedup_full"),
            (Rejection::QueueFull, 503, "queue_full"),
            (Rejection::QueueClosed, 503, "queue_closed"),
            (Rejection::NotVerified, 500, "not_verified"),
            (Rejection::UnexpectedPayload, 422, "unexpected_payload"),
            (Rejection::WrongStyle, 500, "wrong_style"),
        ];
        for (rejection, status, code) in cases {
            let response = rejection.to_response();
            assert_eq!(response.status().as_u16(), status, "{rejection:?}");
            assert_eq!(rejection.code(), code);
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(
                response.headers().contains_key(RETRY_AFTER),
                status == 503,
                "{rejection:?}"
            );
            assert_eq!(response.headers().contains_key(ALLOW), status == 405);
            let body: serde_json::Value = serde_json::from_str(&rejection.body_text()).unwrap();
            assert_eq!(body["error"], code);
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[test]
    fn malformed_body_message_does_not_quote_the_body() {
        let rejection = Rejection::Verify(VerifyError::MalformedBody(
            "invalid type: string \"card-4242\"".into(),
        ));
        assert!(!rejection.body_text().contains("4242"));
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
    }
}
