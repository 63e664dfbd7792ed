//! A delivery's page (its attempts as a timeline, redrive) and the delivery table the
//! endpoint and message pages share.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use webhook_sender::{AttemptResult, Delivery, DeliveryId, DeliveryStatus};

use super::page::{ErrorPage, PageResult, page};
use super::session::{CsrfForm, SignedIn};
use super::{badge, org_base, when};
use crate::api::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoneQuery {
    done: Option<String>,
}

/// Deliveries as a table, linking each to its page.
pub(crate) fn table(base: &str, deliveries: &[Delivery]) -> Markup {
    html! {
        @if deliveries.is_empty() {
            p { "No deliveries." }
        } @else {
            div.scroll {
                table.deliveries {
                    thead { tr {
                        th scope="col" { "Delivery" } th scope="col" { "Status" } th scope="col" { "Kind" }
                        th scope="col" { "Resource" } th scope="col" { "Attempts" } th scope="col" { "Last answer" }
                        th scope="col" { "Created" }
                    } }
                    tbody {
                        @for d in deliveries {
                            tr {
                                td { a href={ (base) "/deliveries/" (d.id) } { code { (d.id.to_string().get(..13).unwrap_or("")) "…" } } }
                                td { (badge(d.status.as_str())) }
                                td { (d.kind) }
                                td { (d.resource_key) }
                                td { (d.attempts.len()) }
                                td { (d.last_attempt().map_or_else(|| "—".to_owned(), answer)) }
                                td { (when(d.created_at_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn answer(attempt: &webhook_sender::AttemptRecord) -> String {
    match &attempt.result {
        AttemptResult::Response { status, .. } => format!("HTTP {status}"),
        AttemptResult::Error { kind, .. } => kind.as_str().to_owned(),
    }
}

/// One delivery with its attempts.
pub(crate) async fn detail(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    let id: DeliveryId = id.parse().map_err(|_| ErrorPage::not_found())?;
    let delivery = state
        .sender
        .delivery(&org, id)
        .await?
        .ok_or_else(ErrorPage::not_found)?;
    let base = org_base(&org);
    let content = html! {
        @if query.done.as_deref() == Some("redriven") {
            p.notice role="status" { "Sent again with a fresh retry round." }
        }
        dl.facts {
            dt { "Status" } dd #delivery-status { (badge(delivery.status.as_str())) }
            dt { "Endpoint" } dd { a href={ (base) "/endpoints/" (delivery.endpoint) } { code { (delivery.endpoint) } } }
            dt { "Message" } dd { a href={ (base) "/messages/" (delivery.event) } { code { (delivery.event) } } }
            dt { "Kind" } dd { (delivery.kind) }
            dt { "Resource" } dd { (delivery.resource_key) }
            dt { "Created" } dd { (when(delivery.created_at_ms)) }
            @if let Some(at) = delivery.finished_at_ms { dt { "Finished" } dd { (when(at)) } }
            @if delivery.status == DeliveryStatus::Pending && delivery.attempts.is_empty() {
                dt { "Due" } dd { (when(delivery.due_at_ms)) }
            }
            @if let Some(reason) = &delivery.cancel_reason { dt { "Cancelled" } dd { (reason) } }
        }
        section.actions aria-label="Actions" {
            @if delivery.status == DeliveryStatus::Failed {
                form method="post" action={ (base) "/deliveries/" (id) "/redrive" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button #redrive type="submit" { "Redrive this delivery" }
                }
            }
            @if state.sender.endpoints().get(&org, delivery.endpoint).is_some() {
                (super::endpoints::redrive_since_form(&viewer, &format!("{base}/endpoints/{}", delivery.endpoint)))
            }
        }
        h2 { "Attempts" }
        @if delivery.attempts.is_empty() {
            p { "No attempt yet." }
        } @else {
            ol.timeline {
                @for attempt in &delivery.attempts {
                    li class=(if matches!(attempt.result, AttemptResult::Response { status, .. } if (200..300).contains(&status)) { "ok" } else { "failed" }) {
                        p.attempt-head {
                            strong { "#" (attempt.number) } " " (when(attempt.at_ms)) " · " (attempt.latency_ms) " ms · "
                            span.answer { (answer(attempt)) }
                        }
                        @match &attempt.result {
                            AttemptResult::Response { body, .. } => {
                                @if !body.is_empty() { pre.excerpt { (body) } }
                            }
                            AttemptResult::Error { message, .. } => { p.error-text { (message) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Delivery", Some(&viewer), Some(&org), &content).into_response())
}

/// Redrives a failed delivery.
pub(crate) async fn redrive(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    viewer.check_csrf(&form.csrf)?;
    let id: DeliveryId = id.parse().map_err(|_| ErrorPage::not_found())?;
    state.sender.redrive(&org, id).await?;
    let path = format!("{}/deliveries/{id}?done=redriven", org_base(&org));
    Ok(Redirect::to(&path).into_response())
}
