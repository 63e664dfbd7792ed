//! The web console at `/console/`: server-rendered pages (maud) over the same sender and
//! authorizer as the API, for the platform's operators (admin token: every organization)
//! and for each customer (organization token: its own only; anything else is 404).
//!
//! | page | shows | acts |
//! |---|---|---|
//! | `/console/` | sign-in | sign in with a token (kept in an HttpOnly, SameSite=Strict cookie) |
//! | `/console/organizations` | organizations (admin) | |
//! | `/console/o/{org}/endpoints` | endpoints: status, style, subscriptions, 24 h success rate, p50/p99, last error, breaker | create (secret or public key shown once) |
//! | `/console/o/{org}/endpoints/{id}` | latency histogram, attempts per hour, deliveries by status and time, paged | pause, resume, rotate secret, redrive failures since a time (dry-run count, then confirm) |
//! | `/console/o/{org}/messages` | search by event id, resource id, type/domain, time | |
//! | `/console/o/{org}/messages/{event}` | the redacted payload, its deliveries | |
//! | `/console/o/{org}/deliveries/{id}` | the attempts as a timeline | redrive |
//!
//! Every page's content is in its HTML (charts are inline SVG drawn by the server); the
//! one script only asks for confirmation before destructive buttons. Every action is a
//! POST carrying the CSRF token, from this origin. Responses carry a
//! Content-Security-Policy allowing scripts and styles from `/console/assets/` only, so
//! nothing in a payload can run even if it were ever rendered unescaped (it is not:
//! maud escapes every value).

mod charts;
mod deliveries;
mod endpoints;
mod home;
mod messages;
mod page;
mod session;
mod stats;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::header::{self, HeaderValue};
use maud::{Markup, html};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use webhook_sender::{Cursor, OrganizationId, PageRequest};

use self::page::ErrorPage;
use crate::api::AppState;
use crate::wire::time_of_ms;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .route("/console/", get(home::index))
        .route("/console/sign-in", post(home::sign_in))
        .route("/console/sign-out", post(home::sign_out))
        .route("/console/organizations", get(home::organizations))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route(
            "/console/o/{org}/endpoints",
            get(endpoints::list).post(endpoints::create),
        )
        .route("/console/o/{org}/endpoints/{id}", get(endpoints::detail))
        .route(
            "/console/o/{org}/endpoints/{id}/pause",
            post(endpoints::pause),
        )
        .route(
            "/console/o/{org}/endpoints/{id}/resume",
            post(endpoints::resume),
        )
        .route(
            "/console/o/{org}/endpoints/{id}/rotate",
            post(endpoints::rotate),
        )
        .route(
            "/console/o/{org}/endpoints/{id}/redrive",
            post(endpoints::redrive),
        )
        .route("/console/o/{org}/messages", get(messages::search))
        .route("/console/o/{org}/messages/{event}", get(messages::detail))
        .route("/console/o/{org}/deliveries/{id}", get(deliveries::detail))
        .route(
            "/console/o/{org}/deliveries/{id}/redrive",
            post(deliveries::redrive),
        )
        .layer(middleware::from_fn(security_headers))
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
}

/// Where an organization's pages are.
fn org_base(org: &OrganizationId) -> String {
    format!("/console/o/{}", home::urlencode(org.as_str()))
}

/// A page of 25 items, after the `cursor` query parameter when there is one.
fn page_after(cursor: Option<&str>) -> Result<PageRequest, ErrorPage> {
    let request = PageRequest::new(25).map_err(ErrorPage::from)?;
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(request),
        Some(text) => Cursor::decode(text)
            .map(|cursor| request.after(cursor))
            .map_err(|_| ErrorPage::invalid("bad cursor")),
    }
}

/// The link to the next page: `path?cursor=…` with the filters that made this one.
fn next_link(
    path: &str,
    cursor: Option<&Cursor>,
    filters: &[(&str, &Option<String>)],
) -> Option<String> {
    let mut link = format!("{path}?cursor={}", cursor?.encode());
    for (name, value) in filters {
        if let Some(value) = value {
            link.push_str(&format!("&{name}={}", home::urlencode(value)));
        }
    }
    Some(link)
}

/// A time as `<time>`, readable and machine-readable.
fn when(ms: i64) -> Markup {
    let text = time_of_ms(ms);
    let short = text.get(..19).unwrap_or(&text).replace('T', " ");
    html! { time datetime=(text) { (short) " UTC" } }
}

/// A status as a labelled badge.
fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status) } { (status.replace('_', " ")) } }
}

/// A time from a form: RFC 3339, or a `datetime-local` value read as UTC.
fn form_time(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
        PrimitiveDateTime::parse(text.get(..16)?, &format)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    })
}

/// A `datetime-local` value for a time.
fn form_value(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    at.format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_utc() {
        let at = form_time("2026-12-01T10:30").expect("datetime-local");
        assert_eq!(at.unix_timestamp(), 1_796_121_000);
        assert_eq!(form_time("2026-12-01T10:30:00Z"), Some(at));
        assert_eq!(form_time(""), None);
        assert_eq!(form_time("yesterday"), None);
        assert_eq!(form_value(at), "2026-12-01T10:30");
    }
}
