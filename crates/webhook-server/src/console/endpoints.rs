//! The endpoints page (list with 24 h figures, create) and an endpoint's detail page
//! (charts, deliveries, pause/resume, rotate, redrive since).

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_sender::{DeliveryFilter, EndpointId, EndpointInfo, OrganizationId};

use super::charts;
use super::page::{ErrorPage, PageResult, page};
use super::session::{CsrfForm, SignedIn, Viewer};
use super::stats::{LATENCY_BUCKETS, endpoint_stats};
use super::{badge, form_time, form_value, next_link, org_base, page_after, when};
use crate::api::AppState;
use crate::routes::deliveries::status_filter;
use crate::routes::endpoints::{
    CreateEndpoint, EndpointWithKeys, RotateEndpointSecret, StyleName, create_endpoint, owned,
    redrive_failed, rotate_endpoint_secret, style_name,
};
use crate::wire::span;

#[derive(Debug, Deserialize)]
pub(crate) struct RedriveForm {
    csrf: String,
    since: String,
    confirm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
    count: Option<u64>,
}

fn endpoint_of(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
) -> Result<(EndpointId, EndpointInfo), ErrorPage> {
    owned(state, org, id).map_err(ErrorPage::from)
}

fn style_of(info: &EndpointInfo) -> &'static str {
    style_name(info.style).as_str()
}

fn deliveries_count(n: u64) -> String {
    if n == 1 {
        "1 delivery".to_owned()
    } else {
        format!("{n} deliveries")
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.1} %"))
}

fn millis(value: Option<u64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v} ms"))
}

/// The organization's endpoints with their last 24 hours, and the create form.
pub(crate) async fn list(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(org): Path<String>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    let endpoints = state.sender.endpoints().list(&org);
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    for info in endpoints {
        let stats = endpoint_stats(&state.sender, &org, info.id, now).await?;
        let breaker = state.sender.endpoints().breaker(&org, info.id);
        rows.push((info, stats, breaker));
    }
    let base = org_base(&org);
    let content = html! {
        @if rows.is_empty() {
            p { "No endpoints yet." }
        } @else {
            div.scroll {
                table.endpoints {
                    caption { "Figures over the last 24 hours" }
                    thead { tr {
                        th scope="col" { "Endpoint" } th scope="col" { "Status" } th scope="col" { "Style" }
                        th scope="col" { "Subscriptions" } th scope="col" { "Success" }
                        th scope="col" { "p50 / p99" } th scope="col" { "Last error" } th scope="col" { "Breaker" }
                    } }
                    tbody {
                        @for (info, stats, breaker) in &rows {
                            tr {
                                td {
                                    a href={ (base) "/endpoints/" (info.id) } { (info.url) }
                                    @if !info.description.is_empty() { br; small { (info.description) } }
                                }
                                td { (badge(info.state.as_str())) }
                                td { (style_of(info)) }
                                td { (info.subscriptions.join(", ")) }
                                td { (percent(stats.success_percent())) small { " of " (stats.attempts) } }
                                td { (millis(stats.p50_ms)) " / " (millis(stats.p99_ms)) }
                                td {
                                    @if let Some((at, what)) = &stats.last_error { (what) br; small { (when(*at)) } }
                                    @else { "—" }
                                }
                                td { (breaker.map_or("—", |b| b.as_str()).replace('_', " ")) }
                            }
                        }
                    }
                }
            }
        }
        (create_form(&viewer, &base))
    };
    Ok(page("Endpoints", Some(&viewer), Some(&org), &content).into_response())
}

fn create_form(viewer: &Viewer, base: &str) -> Markup {
    html! {
        section aria-labelledby="create-heading" {
            h2 #create-heading { "Create an endpoint" }
            form.create method="post" action={ (base) "/endpoints" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                label for="url" { "URL" }
                input #url type="url" name="url" required placeholder="https://example.com/webhooks";
                label for="style" { "Style" }
                select #style name="style" {
                    option value="standard" { "Standard Webhooks (HMAC, whsec_ generated)" }
                    option value="event" { "Event (the organization's secret)" }
                    option value="domain" { "Domain (ECDSA key pair generated)" }
                }
                fieldset {
                    legend { "Event types (standard and event styles)" }
                    @for kind in EventType::KNOWN {
                        label.check { input type="checkbox" name={ "type:" (kind.as_str()) } value="on"; " " (kind.as_str()) }
                    }
                }
                fieldset {
                    legend { "Domains (domain style)" }
                    @for domain in Domain::KNOWN {
                        label.check { input type="checkbox" name={ "domain:" (domain.as_str()) } value="on"; " " (domain.as_str()) }
                    }
                }
                label for="description" { "Description (optional)" }
                input #description type="text" name="description" maxlength="1024";
                button type="submit" { "Create endpoint" }
            }
        }
    }
}

/// The key material of a new or rotated endpoint, shown this once.
fn keys_shown(created: &EndpointWithKeys) -> Markup {
    html! {
        @if let Some(secret) = &created.secret {
            p { "Signing secret — copy it now, it is not shown again:" }
            pre.secret { code { (secret) } }
        }
        @if let Some(public) = &created.public_key {
            p { "Public key receivers verify with:" }
            pre.secret { code { (public) } }
        }
    }
}

/// Creates an endpoint from the form.
pub(crate) async fn create(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path(org): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    viewer.check_csrf(form.get("csrf").map_or("", String::as_str))?;
    let style = match form.get("style").map(String::as_str) {
        Some("event") => StyleName::Event,
        Some("domain") => StyleName::Domain,
        Some("standard") => StyleName::Standard,
        _ => return Err(ErrorPage::invalid("choose a style")),
    };
    let picked = |prefix: &str| -> Vec<String> {
        let mut names: Vec<String> = form
            .keys()
            .filter_map(|key| key.strip_prefix(prefix).map(str::to_owned))
            .collect();
        names.sort_unstable();
        names
    };
    let (event_types, domains) = match style {
        StyleName::Domain => (Vec::new(), picked("domain:")),
        _ => (picked("type:"), Vec::new()),
    };
    let body = CreateEndpoint {
        url: form.get("url").cloned().unwrap_or_default(),
        style,
        event_types,
        domains,
        secret: None,
        retry_schedule_seconds: None,
        timeout_ms: None,
        max_concurrency: None,
        rate_limit_per_second: None,
        headers: BTreeMap::new(),
        description: form.get("description").filter(|d| !d.is_empty()).cloned(),
    };
    let created = create_endpoint(&state, org.clone(), body)
        .await
        .map_err(ErrorPage::from)?;
    let base = org_base(&org);
    let content = html! {
        p role="status" { "Created " a href={ (base) "/endpoints/" (created.endpoint.id) } { "the endpoint" } "." }
        (keys_shown(&created))
    };
    Ok(page("Endpoint created", Some(&viewer), Some(&org), &content).into_response())
}

/// An endpoint: settings, actions, charts, deliveries.
pub(crate) async fn detail(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Query(query): Query<DetailQuery>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    let (id, info) = endpoint_of(&state, &org, &id)?;
    let stats = endpoint_stats(&state.sender, &org, id, OffsetDateTime::now_utc()).await?;
    let breaker = state.sender.endpoints().breaker(&org, id);
    let status = query.status.as_deref().filter(|s| !s.is_empty());
    let mut filter = DeliveryFilter::default().endpoint(id);
    if let Some(status) = status {
        filter = filter.status(status_filter(status).map_err(ErrorPage::from)?);
    }
    let since = query.since.as_deref().and_then(form_time);
    let until = query.until.as_deref().and_then(form_time);
    filter = filter.created(span(since, until));
    let request = page_after(query.cursor.as_deref())?;
    let deliveries = state.sender.deliveries(&org, &filter, &request).await?;
    let base = org_base(&org);
    let here = format!("{base}/endpoints/{id}");
    let latency_bars: Vec<(String, u32)> = stats
        .latency
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let label = match LATENCY_BUCKETS.get(i) {
                Some(bound) => format!("<{bound}"),
                None => format!("≥{}", LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1]),
            };
            (label, *count)
        })
        .collect();
    let next_link = next_link(
        &here,
        deliveries.next_cursor.as_ref(),
        &[
            ("status", &query.status),
            ("since", &query.since),
            ("until", &query.until),
        ],
    );
    let content = html! {
        @if let Some(done) = query.done.as_deref() {
            p.notice role="status" { (match done {
                "paused" => "Paused: deliveries queue and none is sent.".to_owned(),
                "resumed" => "Resumed: what queued is being sent, in order.".to_owned(),
                "redriven" => format!("{} sent again.", deliveries_count(query.count.unwrap_or(0))),
                _ => "Done.".to_owned(),
            }) }
        }
        dl.facts {
            dt { "URL" } dd { code { (info.url) } }
            dt { "Status" } dd { (badge(info.state.as_str()))
                @if let webhook_sender::EndpointState::Disabled { reason } = &info.state { " " (reason) } }
            dt { "Style" } dd { (style_of(&info)) }
            dt { "Subscriptions" } dd { (info.subscriptions.join(", ")) }
            dt { "Success (24 h)" } dd { (percent(stats.success_percent())) " of " (stats.attempts) " attempts"
                @if stats.truncated { " (newest 2,000 deliveries)" } }
            dt { "Latency p50 / p99" } dd { (millis(stats.p50_ms)) " / " (millis(stats.p99_ms)) }
            dt { "Breaker" } dd { (breaker.map_or("—", |b| b.as_str()).replace('_', " ")) }
            @if !info.public_keys.is_empty() {
                dt { "Public keys" } dd { @for key in &info.public_keys { code.key { (key) } br; } }
            }
            @if !info.description.is_empty() { dt { "Description" } dd { (info.description) } }
        }
        section.actions aria-label="Actions" {
            @if info.state == webhook_sender::EndpointState::Active {
                form method="post" action={ (here) "/pause" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" { "Pause" }
                }
            } @else {
                form method="post" action={ (here) "/resume" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" { "Resume" }
                }
            }
            form method="post" action={ (here) "/rotate" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                button type="submit" data-confirm="Rotate the signing secret? The current one keeps signing for 24 hours." { "Rotate secret" }
            }
            (redrive_since_form(&viewer, &here))
        }
        section aria-labelledby="charts-heading" {
            h2 #charts-heading { "Last 24 hours" }
            div.charts {
                (charts::hourly("Attempts per hour", &stats.hourly))
                (charts::bars("Latency (ms)", &latency_bars))
            }
        }
        section aria-labelledby="deliveries-heading" {
            h2 #deliveries-heading { "Deliveries" }
            form.filters method="get" action=(here) {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for name in ["pending", "delivered", "failed", "cancelled"] {
                        option value=(name) selected[status == Some(name)] { (name) }
                    }
                }
                label for="since" { "Since (UTC)" }
                input #since type="datetime-local" name="since" value=(since.map(form_value).unwrap_or_default());
                label for="until" { "Until (UTC)" }
                input #until type="datetime-local" name="until" value=(until.map(form_value).unwrap_or_default());
                button type="submit" { "Filter" }
            }
            (super::deliveries::table(&base, &deliveries.items))
            @if let Some(link) = next_link { p { a rel="next" href=(link) { "Older deliveries →" } } }
        }
    };
    Ok(page(&info.url, Some(&viewer), Some(&org), &content).into_response())
}

/// The "redrive every failure since" form of the endpoint at `endpoint_path`; it asks for a
/// dry-run count first.
pub(crate) fn redrive_since_form(viewer: &Viewer, endpoint_path: &str) -> Markup {
    let day_ago = OffsetDateTime::now_utc() - time::Duration::days(1);
    html! {
        form.redrive method="post" action={ (endpoint_path) "/redrive" } {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="redrive-since" { "Redrive the endpoint's failures since (UTC)" }
            input #redrive-since type="datetime-local" name="since" required value=(form_value(day_ago));
            button type="submit" { "Count failures…" }
        }
    }
}

async fn set_paused(
    state: &AppState,
    viewer: &Viewer,
    org: &str,
    id: &str,
    form: &CsrfForm,
    pause: bool,
) -> PageResult {
    let org = viewer.organization(state, org)?;
    viewer.check_csrf(&form.csrf)?;
    let (id, _) = endpoint_of(state, &org, id)?;
    let done = if pause {
        state.sender.endpoints().pause(&org, id).await?;
        "paused"
    } else {
        state.sender.endpoints().resume(&org, id).await?;
        "resumed"
    };
    Ok(Redirect::to(&format!("{}/endpoints/{id}?done={done}", org_base(&org))).into_response())
}

/// Pauses the endpoint.
pub(crate) async fn pause(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_paused(&state, &viewer, &org, &id, &form, true).await
}

/// Resumes the endpoint.
pub(crate) async fn resume(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    set_paused(&state, &viewer, &org, &id, &form, false).await
}

/// Rotates the signing secret; shows the new key material once.
pub(crate) async fn rotate(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    viewer.check_csrf(&form.csrf)?;
    let (id, info) = endpoint_of(&state, &org, &id)?;
    let rotated = rotate_endpoint_secret(&state, &org, id, &info, RotateEndpointSecret::default())
        .await
        .map_err(ErrorPage::from)?;
    let content = html! {
        p role="status" { "Rotated. The previous secret keeps signing for 24 hours." }
        (keys_shown(&rotated))
        p { a href={ (org_base(&org)) "/endpoints/" (id) } { "Back to the endpoint" } }
    };
    Ok(page("Secret rotated", Some(&viewer), Some(&org), &content).into_response())
}

/// Counts the failures since the chosen time and asks for confirmation; redrives them
/// once confirmed.
pub(crate) async fn redrive(
    State(state): State<AppState>,
    SignedIn(viewer): SignedIn,
    Path((org, id)): Path<(String, String)>,
    Form(form): Form<RedriveForm>,
) -> PageResult {
    let org = viewer.organization(&state, &org)?;
    viewer.check_csrf(&form.csrf)?;
    let (id, _) = endpoint_of(&state, &org, &id)?;
    let since = form_time(&form.since).ok_or_else(|| ErrorPage::invalid("choose a time"))?;
    let here = format!("{}/endpoints/{id}", org_base(&org));
    if form.confirm.as_deref() == Some("yes") {
        let count = redrive_failed(&state, &org, id, since, false)
            .await
            .map_err(ErrorPage::from)?;
        return Ok(Redirect::to(&format!("{here}?done=redriven&count={count}")).into_response());
    }
    let count = redrive_failed(&state, &org, id, since, true)
        .await
        .map_err(ErrorPage::from)?;
    let content = html! {
        p #redrive-count role="status" { (deliveries_count(count)) " failed since " (form_value(since).replace('T', " ")) " UTC." }
        @if count > 0 {
            form method="post" action={ (here) "/redrive" } {
                input type="hidden" name="csrf" value=(viewer.csrf);
                input type="hidden" name="since" value=(form.since);
                input type="hidden" name="confirm" value="yes";
                button type="submit" { "Redrive " (deliveries_count(count)) }
            }
        }
        p { a href=(here) { "Back to the endpoint" } }
    };
    Ok(page("Redrive failures", Some(&viewer), Some(&org), &content).into_response())
}
