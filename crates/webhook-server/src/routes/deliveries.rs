//! `/v1/organizations/{org}/deliveries`: list with filters, read with attempts, redrive.

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use webhook_sender::{
    AttemptRecord, AttemptResult, Delivery, DeliveryFilter, DeliveryId, DeliveryStatus, EndpointId,
    StatusFilter,
};

use super::Caller;
use crate::api::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::page::{ListParams, ListResponse, from_history};
use crate::wire::{parse_time, path_id, span, time_of_ms};

/// One delivery: one message to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryOut {
    id: String,
    event_id: String,
    endpoint_id: String,
    /// The event type or domain.
    kind: String,
    /// The entity or resource id.
    resource_id: String,
    /// `pending`, `in_flight`, `delivered`, `failed` or `cancelled`.
    #[schema(example = "delivered")]
    status: String,
    /// Attempts made so far.
    attempt_count: usize,
    /// When the next attempt is due (open deliveries).
    next_attempt_at: Option<String>,
    created_at: String,
    finished_at: Option<String>,
    /// Why it was cancelled.
    cancel_reason: Option<String>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptOut {
    /// 1-based over the delivery's life.
    number: u32,
    at: String,
    latency_ms: u64,
    /// The HTTP status, when a response came.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// What went wrong without a response (`timeout`, `connect`, …) and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The start of the response body (at most 1 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    response_excerpt: Option<String>,
}

/// A delivery with its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryOut,
    attempts: Vec<AttemptOut>,
}

/// The filters of the delivery list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryQuery {
    /// Only this endpoint's.
    endpoint_id: Option<String>,
    /// `pending` (in flight included), `delivered`, `failed` or `cancelled`.
    status: Option<String>,
    /// RFC 3339: created at or after.
    since: Option<String>,
    /// RFC 3339: created before.
    until: Option<String>,
    /// Items per page, 1 to 250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn view(delivery: &Delivery) -> DeliveryOut {
    DeliveryOut {
        id: delivery.id.to_string(),
        event_id: delivery.event.to_string(),
        endpoint_id: delivery.endpoint.to_string(),
        kind: delivery.kind.clone(),
        resource_id: delivery.resource_key.clone(),
        status: delivery.status.as_str().to_owned(),
        attempt_count: delivery.attempts.len(),
        next_attempt_at: matches!(delivery.status, DeliveryStatus::Pending)
            .then(|| time_of_ms(delivery.due_at_ms)),
        created_at: time_of_ms(delivery.created_at_ms),
        finished_at: delivery.finished_at_ms.map(time_of_ms),
        cancel_reason: delivery.cancel_reason.clone(),
    }
}

fn attempt(record: &AttemptRecord) -> AttemptOut {
    let (status, error, response_excerpt) = match &record.result {
        AttemptResult::Response { status, body } => (
            Some(*status),
            None,
            (!body.is_empty()).then(|| body.clone()),
        ),
        AttemptResult::Error { kind, message } => {
            (None, Some(format!("{}: {message}", kind.as_str())), None)
        }
    };
    AttemptOut {
        number: record.number,
        at: time_of_ms(record.at_ms),
        latency_ms: record.latency_ms,
        status,
        error,
        response_excerpt,
    }
}

/// A `status` parameter.
pub(crate) fn status_filter(name: &str) -> ApiResult<StatusFilter> {
    match name {
        "pending" => Ok(StatusFilter::Pending),
        "delivered" => Ok(StatusFilter::Delivered),
        "failed" => Ok(StatusFilter::Failed),
        "cancelled" => Ok(StatusFilter::Cancelled),
        _ => Err(ApiError::invalid(
            "`status` must be pending, delivered, failed or cancelled",
        )),
    }
}

/// A time range from `since` and `until` query parameters.
pub(crate) fn range(
    since: Option<&str>,
    until: Option<&str>,
) -> ApiResult<webhook_sender::TimeRange> {
    Ok(span(
        since.map(|t| parse_time("since", t)).transpose()?,
        until.map(|t| parse_time("until", t)).transpose()?,
    ))
}

/// Lists the organization's deliveries, newest first.
#[utoipa::path(get, path = "/v1/organizations/{org}/deliveries", operation_id = "list_deliveries", tag = "deliveries",
    params(("org" = String, Path, description = "Organization id"), DeliveryQuery),
    responses(
        (status = 200, body = ListResponse<DeliveryOut>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<ListResponse<DeliveryOut>>> {
    let org = caller.organization(&state, &org)?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .history()?;
    let mut filter =
        DeliveryFilter::default().created(range(query.since.as_deref(), query.until.as_deref())?);
    if let Some(endpoint) = &query.endpoint_id {
        let endpoint: EndpointId = path_id(endpoint, "endpoint")?;
        filter = filter.endpoint(endpoint);
    }
    if let Some(status) = &query.status {
        filter = filter.status(status_filter(status)?);
    }
    let found = state.sender.deliveries(&org, &filter, &page).await?;
    Ok(Json(from_history(found, |d| view(&d))))
}

/// Reads a delivery with its attempts.
#[utoipa::path(get, path = "/v1/organizations/{org}/deliveries/{id}", operation_id = "get_delivery", tag = "deliveries",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, body = DeliveryDetail),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<DeliveryDetail>> {
    let org = caller.organization(&state, &org)?;
    let id: DeliveryId = path_id(&id, "delivery")?;
    let delivery = state
        .sender
        .delivery(&org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok(Json(DeliveryDetail {
        delivery: view(&delivery),
        attempts: delivery.attempts.iter().map(attempt).collect(),
    }))
}

/// Sends a failed delivery again, with a fresh retry round.
#[utoipa::path(post, path = "/v1/organizations/{org}/deliveries/{id}/redrive", operation_id = "redrive_delivery", tag = "deliveries",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 202, body = DeliveryOut),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<DeliveryOut>)> {
    let org = caller.organization(&state, &org)?;
    let id: DeliveryId = path_id(&id, "delivery")?;
    let delivery = state
        .sender
        .delivery(&org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    if delivery.status != DeliveryStatus::Failed {
        return Err(ApiError::conflict(
            "not_failed",
            format!(
                "the delivery is {}; only failed ones are redriven",
                delivery.status.as_str()
            ),
        ));
    }
    match state.sender.redrive(&org, id).await {
        Ok(()) => {}
        // Redriven by someone else meanwhile.
        Err(e) if e.is_not_found() => {
            return Err(ApiError::conflict(
                "not_failed",
                "the delivery is no longer failed",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let delivery = state
        .sender
        .delivery(&org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    Ok((StatusCode::ACCEPTED, Json(view(&delivery))))
}
