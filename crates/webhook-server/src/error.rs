//! The API's error answer: a status and `{"code": "...", "message": "..."}`.
//!
//! | status | `code` | when |
//! |---|---|---|
//! | 400 | `malformed_json`, `malformed_request` | the body is not JSON, a header is unreadable |
//! | 401 | `unauthorized` | no `Authorization: Bearer`, or a token nobody issued (or revoked) |
//! | 403 | `forbidden` | an organization token on an admin-only route of its own organization |
//! | 404 | `not_found` | no such thing, or it belongs to another organization |
//! | 405 | `method_not_allowed` | the route has no such method |
//! | 408 | `request_timeout` | the body did not arrive within the server's body deadline |
//! | 409 | `conflict`, `not_failed` | the id is taken; a redrive of a delivery that has not failed |
//! | 413 | `payload_too_large` | a body over the limit (1 MiB by default) |
//! | 415 | `unsupported_media_type` | a body without `Content-Type: application/json` |
//! | 422 | `invalid`, `forbidden_address` | valid JSON, invalid value; an endpoint address the SSRF guard refuses |
//! | 429 | `rate_limited` | the token's request budget is spent; `Retry-After` says when to come back |
//! | 503 | `store_unavailable`, `shutting_down` | the store cannot be reached; the service is stopping |

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Serialize;
use utoipa::ToSchema;

/// What every error answer's body holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code.
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence for people; never contains secrets or tokens.
    #[schema(example = "endpoint not found")]
    pub message: String,
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400: the body is not JSON.
    #[must_use]
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 400: something of the request other than its JSON body is unreadable.
    #[must_use]
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", message)
    }

    /// 401: no valid token.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid `Authorization: Bearer <token>` header is required",
        )
    }

    /// 403: the route needs the admin token.
    #[must_use]
    pub fn admin_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the admin token",
        )
    }

    /// 404: `what` does not exist for this caller.
    #[must_use]
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 408: the body did not arrive in time.
    #[must_use]
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    }

    /// 405: the route has no such method.
    #[must_use]
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route has no such method",
        )
    }

    /// 409 with `code`.
    #[must_use]
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is over the limit.
    #[must_use]
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is over the size limit",
        )
    }

    /// 415: the body is not declared as JSON.
    #[must_use]
    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be `Content-Type: application/json`",
        )
    }

    /// 422: a value is invalid.
    #[must_use]
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 429: come back in `retry_after_secs`.
    #[must_use]
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this token",
            )
        }
    }

    /// 503: the store cannot be reached.
    #[must_use]
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store is unavailable; nothing was done, try again",
        )
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<webhook_sender::Error> for ApiError {
    fn from(error: webhook_sender::Error) -> Self {
        if error.is_not_found() {
            Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
        } else if error.is_forbidden_address() {
            Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "forbidden_address",
                error.to_string(),
            )
        } else if error.is_invalid() {
            Self::invalid(error.to_string())
        } else if error.is_conflict() {
            Self::conflict("conflict", error.to_string())
        } else if error.is_store() {
            tracing::warn!(error = %error, "store failed during an API call");
            Self::store_unavailable()
        } else if error.is_shutdown() {
            Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down",
            )
        } else {
            tracing::error!(error = %error, "internal error during an API call");
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(RETRY_AFTER, secs.into());
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;
