//! Message search and a message's page: its redacted payload, pretty-printed, and its
//! deliveries.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::html;
use serde::Deserialize;
use webhook_sender::{EventId, MessageFilter};

use super::page::{ErrorPage, PageResult, page};
use super::session::SignedIn;
use super::{form_time, form_value, next_link, org_base, page_after, when};
use crate::api::AppState;
use crate::wire::span;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    event_id: Option<String>,
    resource_id: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Search by event id (straight to the message), resource, type or domain, and time.
pub(crate) async fn search(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(org): Path<String>,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    let base = org_base(&org);
    let mut notice = None;
    if let Some(event) = given(query.event_id.as_ref()) {
        match event.parse::<EventId>() {
            Ok(id) if state.sender.message(&org, id).await?.is_some() => {
                return Ok(Redirect::to(&format!("{base}/messages/{id}")).into_response());
            }
            _ => notice = Some("No message with that event id."),
        }
    }
    let mut filter = MessageFilter::default();
    if let Some(kind) = given(query.kind.as_ref()) {
        filter = filter.kind(kind);
    }
    if let Some(resource) = given(query.resource_id.as_ref()) {
        filter = filter.resource(resource);
    }
    let since = query.since.as_deref().and_then(form_time);
    let until = query.until.as_deref().and_then(form_time);
    filter = filter.created(span(since, until));
    let request = page_after(given(query.cursor.as_ref()))?;
    let found = state.sender.messages(&org, &filter, &request).await?;
    let next = next_link(
        &format!("{base}/messages"),
        found.next_cursor.as_ref(),
        &[
            ("resource_id", &query.resource_id),
            ("kind", &query.kind),
            ("since", &query.since),
            ("until", &query.until),
        ],
    );
    let content = html! {
        form.filters role="search" method="get" action={ (base) "/messages" } {
            label for="event_id" { "Event id" }
            input #event_id type="search" name="event_id" value=(query.event_id.as_deref().unwrap_or(""));
            label for="resource_id" { "Resource id" }
            input #resource_id type="search" name="resource_id" value=(query.resource_id.as_deref().unwrap_or(""));
            label for="kind" { "Type or domain" }
            input #kind type="search" name="kind" list="kinds" value=(query.kind.as_deref().unwrap_or(""));
            datalist #kinds {
                @for kind in webhook_core::event::EventType::KNOWN { option value=(kind.as_str()) {} }
                @for domain in webhook_core::domain::Domain::KNOWN { option value=(domain.as_str()) {} }
            }
            label for="since" { "Since (UTC)" }
            input #since type="datetime-local" name="since" value=(since.map(form_value).unwrap_or_default());
            label for="until" { "Until (UTC)" }
            input #until type="datetime-local" name="until" value=(until.map(form_value).unwrap_or_default());
            button type="submit" { "Search" }
        }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        @if found.items.is_empty() {
            p { "No messages." }
        } @else {
            div.scroll {
                table.messages {
                    thead { tr { th scope="col" { "Event" } th scope="col" { "Kind" } th scope="col" { "Resource" } th scope="col" { "Deliveries" } th scope="col" { "Published" } } }
                    tbody {
                        @for m in &found.items {
                            tr {
                                td { a href={ (base) "/messages/" (m.event_id) } { code { (m.event_id) } } }
                                td { (m.kind) }
                                td { (m.resource_key) }
                                td { (m.deliveries.len()) }
                                td { (when(m.created_at_ms)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next { p { a rel="next" href=(link) { "Older messages →" } } }
    };
    Ok(page("Messages", Some(&viewer), Some(&org), &content).into_response())
}

/// A message: its payload as delivered (after redaction) and its deliveries.
pub(crate) async fn detail(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, event)): Path<(String, String)>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    let event: EventId = event.parse().map_err(|_| ErrorPage::not_found())?;
    let found = state
        .sender
        .message(&org, event)
        .await?
        .ok_or_else(ErrorPage::not_found)?;
    let base = org_base(&org);
    let payload = serde_json::from_slice::<serde_json::Value>(&found.message.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&found.message.payload).into_owned());
    let content = html! {
        dl.facts {
            dt { "Event id" } dd { code #event-id { (found.message.event_id) } }
            dt { "Kind" } dd { (found.message.kind) }
            dt { "Resource" } dd { (found.message.resource_key) }
            dt { "Idempotency key" } dd { code { (found.message.idempotency_key) } }
            dt { "Published" } dd { (when(found.message.created_at_ms)) }
        }
        h2 { "Payload (as delivered, after redaction)" }
        pre.payload { code { (payload) } }
        h2 { "Deliveries" }
        (super::deliveries::table(&base, &found.deliveries))
    };
    Ok(page("Message", Some(&viewer), Some(&org), &content).into_response())
}
