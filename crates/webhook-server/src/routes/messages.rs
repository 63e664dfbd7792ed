//! `/v1/organizations/{org}/messages`: publish (with `Idempotency-Key`), read one with
//! its deliveries, list with filters.

use axum::Json;
use axum::extract::State;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_sender::{EventId, Message, MessageFilter, Publish};

use super::Caller;
use super::deliveries::{DeliveryOut, range, view as delivery_view};
use crate::api::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::idempotency;
use crate::page::{ListParams, ListResponse, from_history};
use crate::wire::{path_id, time_of_ms};

/// An event to publish: event style (`type`, `entity_id`) or domain style (`domain`,
/// with `data` the resource, which has a string `id`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PublishMessage {
    /// An event type (event style).
    #[serde(rename = "type")]
    #[schema(schema_with = crate::openapi::event_type_schema)]
    event_type: Option<String>,
    /// The entity the event is about (event style), 1 to 512 bytes.
    entity_id: Option<String>,
    /// A domain (domain style): `TRANSACTION`, `WALLET`, `APPROVAL`.
    #[schema(schema_with = crate::openapi::domain_schema)]
    domain: Option<String>,
    /// The event's data (event style) or the resource (domain style); redacted before
    /// it is stored or sent.
    data: Value,
    /// A UUID to use as the event id; publishing an id the organization already has
    /// returns the first answer.
    event_id: Option<String>,
}

/// One delivery a publish queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueuedOut {
    id: String,
    endpoint_id: String,
}

/// What a publish did. Every delivery named is durably queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublishedOut {
    event_id: String,
    /// The SPEC §1 idempotency key receivers deduplicate on.
    idempotency_key: String,
    deliveries: Vec<QueuedOut>,
}

/// A message (a published event).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageOut {
    event_id: String,
    /// The event type or domain.
    kind: String,
    /// The entity or resource id.
    resource_id: String,
    idempotency_key: String,
    created_at: String,
    /// What every delivery sends, after redaction: the event JSON, or the resource JSON
    /// for the domain style.
    payload: Value,
}

/// A message with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageDetail {
    #[serde(flatten)]
    message: MessageOut,
    deliveries: Vec<DeliveryOut>,
}

/// The filters of the message list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessageQuery {
    /// Only this event type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Only this domain.
    domain: Option<String>,
    /// Only about this entity or resource.
    resource_id: Option<String>,
    /// RFC 3339: published at or after.
    since: Option<String>,
    /// RFC 3339: published before.
    until: Option<String>,
    /// Items per page, 1 to 250 (default 50).
    #[param(minimum = 1, maximum = 250)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn view(message: Message) -> MessageOut {
    let payload = serde_json::from_slice(&message.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&message.payload).into_owned()));
    MessageOut {
        event_id: message.event_id.to_string(),
        kind: message.kind,
        resource_id: message.resource_key,
        idempotency_key: message.idempotency_key,
        created_at: time_of_ms(message.created_at_ms),
        payload,
    }
}

/// Publishes an event to every subscribed endpoint of the organization; answers once
/// every delivery is durably queued.
#[utoipa::path(post, path = "/v1/organizations/{org}/messages", operation_id = "publish_message", tag = "messages",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the call safe to retry: the same key returns the first answer and queues nothing new"),
    ),
    request_body = PublishMessage,
    responses(
        (status = 202, body = PublishedOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PublishMessage>,
) -> ApiResult<(StatusCode, Json<PublishedOut>)> {
    let org = caller.organization(&state, &org)?;
    let keyed = idempotency::event_id(&headers, org.as_str())?;
    let publish = match (&body.event_type, &body.domain) {
        (Some(kind), None) => {
            let kind = EventType::from(kind.as_str());
            if !kind.is_known() {
                return Err(ApiError::invalid(format!("unknown event type `{kind}`")));
            }
            let entity = body
                .entity_id
                .ok_or_else(|| ApiError::invalid("an event needs `entity_id`"))?;
            Publish::event(org, kind, entity, body.data)
        }
        (None, Some(domain)) => {
            let domain = Domain::from(domain.as_str());
            if !domain.is_known() {
                return Err(ApiError::invalid(format!("unknown domain `{domain}`")));
            }
            if body.entity_id.is_some() {
                return Err(ApiError::invalid(
                    "a domain message takes its id from `data.id`, not `entity_id`",
                ));
            }
            Publish::domain(org, domain, body.data)
        }
        _ => {
            return Err(ApiError::invalid(
                "give either `type` (event style) or `domain` (domain style)",
            ));
        }
    };
    let event_id = match &body.event_id {
        Some(text) => Some(
            text.parse::<EventId>()
                .map_err(|_| ApiError::invalid("`event_id` must be a UUID"))?,
        ),
        None => keyed,
    };
    let publish = match event_id {
        Some(id) => publish.with_event_id(id),
        None => publish,
    };
    let receipt = state.sender.publish(publish).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublishedOut {
            event_id: receipt.event_id.to_string(),
            idempotency_key: receipt.idempotency_key,
            deliveries: receipt
                .deliveries
                .iter()
                .map(|d| QueuedOut {
                    id: d.id.to_string(),
                    endpoint_id: d.endpoint.to_string(),
                })
                .collect(),
        }),
    ))
}

/// Reads a message with its deliveries.
#[utoipa::path(get, path = "/v1/organizations/{org}/messages/{event_id}", operation_id = "get_message", tag = "messages",
    params(("org" = String, Path, description = "Organization id"), ("event_id" = String, Path, description = "Event id")),
    responses(
        (status = 200, body = MessageDetail),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, event_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<MessageDetail>> {
    let org = caller.organization(&state, &org)?;
    let event_id: EventId = path_id(&event_id, "message")?;
    let found = state
        .sender
        .message(&org, event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    Ok(Json(MessageDetail {
        deliveries: found.deliveries.iter().map(delivery_view).collect(),
        message: view(found.message),
    }))
}

/// Lists the organization's messages, newest first.
#[utoipa::path(get, path = "/v1/organizations/{org}/messages", operation_id = "list_messages", tag = "messages",
    params(("org" = String, Path, description = "Organization id"), MessageQuery),
    responses(
        (status = 200, body = ListResponse<MessageOut>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> ApiResult<Json<ListResponse<MessageOut>>> {
    let org = caller.organization(&state, &org)?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor,
    }
    .history()?;
    let mut filter =
        MessageFilter::default().created(range(query.since.as_deref(), query.until.as_deref())?);
    match (query.event_type, query.domain) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "filter by `type` or by `domain`, not both",
            ));
        }
        (Some(kind), None) | (None, Some(kind)) => filter = filter.kind(kind),
        (None, None) => {}
    }
    if let Some(resource) = query.resource_id {
        filter = filter.resource(resource);
    }
    let found = state.sender.messages(&org, &filter, &page).await?;
    Ok(Json(from_history(found, view)))
}
