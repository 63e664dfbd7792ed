//! The page frame every console page shares (maud, which escapes every value it
//! interpolates), and the error page.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use webhook_sender::OrganizationId;

use super::session::Viewer;
use crate::error::ApiError;

/// A whole page: title, navigation for the viewer, the content.
pub(crate) fn page(
    title: &str,
    viewer: Option<&Viewer>,
    org: Option<&OrganizationId>,
    content: &Markup,
) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · webhook console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console/" { "webhook console" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Main" {
                            @if viewer.is_admin() {
                                a href="/console/organizations" { "Organizations" }
                            }
                            @if let Some(org) = org {
                                a href={ "/console/o/" (org.as_str()) "/endpoints" } { "Endpoints" }
                                a href={ "/console/o/" (org.as_str()) "/messages" } { "Messages" }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            span.who title=(viewer.principal.credential) {
                                @if viewer.is_admin() { "admin" } @else { "token " (short(&viewer.principal.credential)) }
                            }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    @if let Some(org) = org {
                        p.org { "Organization " strong { (org.as_str()) } }
                    }
                    h1 { (title) }
                    (content)
                }
            }
        }
    };
    Html(markup.into_string())
}

/// The start of a long id, for display.
fn short(id: &str) -> String {
    match id.get(..12) {
        Some(start) if id.len() > 14 => format!("{start}…"),
        _ => id.to_owned(),
    }
}

/// An error shown as a page.
#[derive(Debug)]
pub(crate) struct ErrorPage {
    status: StatusCode,
    message: String,
}

impl ErrorPage {
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: "Not found.".to_owned(),
        }
    }

    pub(crate) fn forbidden(message: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.to_owned(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }
}

impl From<ApiError> for ErrorPage {
    fn from(error: ApiError) -> Self {
        Self {
            status: error.status(),
            message: error.message().to_owned(),
        }
    }
}

impl From<webhook_sender::Error> for ErrorPage {
    fn from(error: webhook_sender::Error) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = page(
            title,
            None,
            None,
            &html! {
                p.error role="alert" { (self.message) }
                p { a href="/console/" { "Back to the console" } }
            },
        );
        (self.status, body).into_response()
    }
}

/// What a console handler returns.
pub(crate) type PageResult = Result<Response, ErrorPage>;
