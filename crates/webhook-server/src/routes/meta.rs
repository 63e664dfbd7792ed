//! What is not a resource: the event types and domains (`/v1/event-types`), the liveness
//! and readiness probes, and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webhook_core::domain::Domain;
use webhook_core::event::EventType;

use crate::api::AppState;
use crate::error::{ApiError, ErrorBody};

/// The probes and `/metrics` (no authentication: they tell nothing about tenants).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// What can be subscribed to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventTypes {
    /// Event-style and Standard Webhooks event types.
    event_types: Vec<String>,
    /// Domain-style domains.
    domains: Vec<String>,
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// The event types and domains endpoints can subscribe to.
#[utoipa::path(get, path = "/v1/event-types", operation_id = "list_event_types", tag = "meta",
    responses(
        (status = 200, body = EventTypes),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn event_types() -> Json<EventTypes> {
    Json(EventTypes {
        event_types: EventType::KNOWN
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        domains: Domain::KNOWN
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect(),
    })
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "meta", security(()),
    responses((status = 200, body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "meta", security(()),
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.sender.check_ready().await?;
    Ok(Json(Health {
        status: "ok".to_owned(),
    }))
}

/// Prometheus text exposition of the sender's and the API's metrics.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "meta", security(()),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state
        .metrics
        .as_ref()
        .map(metrics_exporter_prometheus::PrometheusHandle::render)
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}
