//! Who is looking: the token in the console's cookie, checked by the same authorizer as
//! the API on every request (so a revoked token signs the console out at once, on every
//! node), and the CSRF token state-changing forms carry.
//!
//! The cookie is `HttpOnly; SameSite=Strict; Path=/console`, `Secure` when the request
//! came over HTTPS (`X-Forwarded-Proto: https` from the proxy terminating TLS). It holds
//! the bearer token itself: no server-side session to lose or share between nodes. The
//! CSRF token is derived from it (SHA-256 with a fixed label), so a page can only be made
//! to post by someone who can read the cookie, which scripts and other sites cannot.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq as _;
use webhook_sender::OrganizationId;

use crate::api::AppState;
use crate::auth::{Access, Principal};
use crate::console::page::ErrorPage;

/// A form that carries only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: String,
}

/// The cookie's name.
pub(crate) const COOKIE: &str = "webhook_console";

/// A signed-in viewer: who, and the CSRF token of its forms.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
}

impl Viewer {
    /// The organization of a path, if this viewer may see it and it exists.
    pub(crate) fn organization(
        &self,
        state: &AppState,
        id: &str,
    ) -> Result<OrganizationId, ErrorPage> {
        self.principal
            .organization(&state.sender, id)
            .ok_or_else(ErrorPage::not_found)
    }

    /// Whether this viewer is the admin.
    pub(crate) fn is_admin(&self) -> bool {
        self.principal.access == Access::Admin
    }

    /// Checks a form's CSRF token (constant time).
    pub(crate) fn check_csrf(&self, presented: &str) -> Result<(), ErrorPage> {
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(ErrorPage::forbidden(
                "the form expired or came from elsewhere; reload the page",
            ))
        }
    }
}

/// The CSRF token of a session token.
pub(crate) fn csrf_of(token: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"webhook-console csrf v1\0");
    context.update(token.as_bytes());
    URL_SAFE_NO_PAD.encode(context.finish())
}

/// Whether `presented` is the CSRF token of `token` (constant time).
pub(crate) fn csrf_matches(token: &str, presented: &str) -> bool {
    bool::from(csrf_of(token).as_bytes().ct_eq(presented.as_bytes()))
}

/// The session token in the request's cookie.
pub(crate) fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 512)
}

fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The `Set-Cookie` that signs in with `token`.
pub(crate) fn sign_in_cookie(headers: &HeaderMap, token: &str) -> Option<HeaderValue> {
    // Tokens are visible ASCII without `;` (admin tokens are checked, ours are base64url).
    if !token
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
    {
        return None;
    }
    let flags = if secure(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=43200{flags}"
    ))
    .ok()
}

/// The `Set-Cookie` that signs out.
pub(crate) fn sign_out_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "webhook_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// Whether a state-changing request came from this site: an `Origin` header, when
/// present, must name the request's own host.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin.split("://").nth(1);
    host.is_some() && origin_host == host
}

/// The signed-in viewer, or a redirect to the sign-in page.
pub(crate) struct SignedIn(pub(crate) Viewer);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = token_of(&parts.headers) else {
            return Err(Redirect::to("/console/").into_response());
        };
        match state.authorizer.authorize(&token).await {
            Ok(Some(principal)) => Ok(Self(Viewer {
                principal,
                csrf: csrf_of(&token),
            })),
            Ok(None) => Err((
                [(header::SET_COOKIE, sign_out_cookie())],
                Redirect::to("/console/?signed_out=1"),
            )
                .into_response()),
            Err(e) => Err(ErrorPage::from(e).into_response()),
        }
    }
}
