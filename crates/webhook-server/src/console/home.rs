//! Signing in and out, and the organization list (admin).

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode, header};
use maud::html;
use serde::Deserialize;

use super::page::{ErrorPage, PageResult, page};
use super::session::{
    CsrfForm, SignedIn, csrf_matches, same_origin, sign_in_cookie, sign_out_cookie, token_of,
};
use super::when;
use crate::api::AppState;
use crate::auth::Access;

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    token: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexQuery {
    signed_out: Option<String>,
    failed: Option<String>,
}

fn sign_in_page(status: StatusCode, notice: Option<&str>) -> Response {
    let content = html! {
        @if let Some(notice) = notice {
            p.notice role="status" { (notice) }
        }
        form.signin method="post" action="/console/sign-in" {
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="off" required
                placeholder="whtok_… or the admin token";
            button type="submit" { "Sign in" }
        }
        p.hint { "The token stays in an HttpOnly cookie for 12 hours, or until you sign out." }
    };
    (status, page("Sign in", None, None, &content)).into_response()
}

/// Where a viewer starts.
fn home_of(access: &Access) -> String {
    match access {
        Access::Admin => "/console/organizations".to_owned(),
        Access::Organization(org) => format!("{}/endpoints", super::org_base(org)),
    }
}

/// A path segment, percent-encoded.
pub(crate) fn urlencode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The sign-in page, or the viewer's start page when signed in.
pub(crate) async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<IndexQuery>,
) -> Response {
    if let Some(token) = token_of(&headers)
        && let Ok(Some(principal)) = state.authorizer.authorize(&token).await
    {
        return Redirect::to(&home_of(&principal.access)).into_response();
    }
    let notice = if query.failed.is_some() {
        Some("That token is not valid.")
    } else if query.signed_out.is_some() {
        Some("Signed out.")
    } else {
        None
    };
    sign_in_page(StatusCode::OK, notice)
}

/// Signs in: checks the token with the API's authorizer, then sets the cookie.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> PageResult {
    if !same_origin(&headers) {
        return Err(ErrorPage::forbidden("sign-in from another site refused"));
    }
    let token = form.token.trim();
    let principal = match state.authorizer.authorize(token).await {
        Ok(Some(principal)) if !token.is_empty() => principal,
        Ok(_) => {
            return Ok(sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("That token is not valid."),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let cookie = sign_in_cookie(&headers, token)
        .ok_or_else(|| ErrorPage::invalid("that token cannot be kept in a cookie"))?;
    Ok((
        [(header::SET_COOKIE, cookie)],
        Redirect::to(&home_of(&principal.access)),
    )
        .into_response())
}

/// Signs out (a POST with the CSRF token, so another site cannot sign you out).
pub(crate) async fn sign_out(headers: HeaderMap, Form(form): Form<CsrfForm>) -> PageResult {
    if let Some(token) = token_of(&headers)
        && !csrf_matches(&token, &form.csrf)
    {
        return Err(ErrorPage::forbidden(
            "the form expired or came from elsewhere; reload the page",
        ));
    }
    Ok((
        [(header::SET_COOKIE, sign_out_cookie())],
        Redirect::to("/console/?signed_out=1"),
    )
        .into_response())
}

/// Every organization (admin).
pub(crate) async fn organizations(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
) -> PageResult {
    if !viewer.is_admin() {
        return Err(ErrorPage::not_found());
    }
    let all = state.sender.organizations().list();
    let content = html! {
        @if all.is_empty() {
            p { "No organizations yet. Create one with " code { "POST /v1/organizations" } "." }
        } @else {
            div.scroll {
                table {
                    thead { tr { th scope="col" { "Organization" } th scope="col" { "Name" } th scope="col" { "Endpoints" } th scope="col" { "Created" } } }
                    tbody {
                        @for org in &all {
                            tr {
                                td { a href={ "/console/o/" (urlencode(org.id.as_str())) "/endpoints" } { (org.id.as_str()) } }
                                td { (org.name.as_deref().unwrap_or("")) }
                                td { (state.sender.endpoints().list(&org.id).len()) }
                                td { (when(org.created_at_ms)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Organizations", Some(&viewer), None, &content).into_response())
}
