//! `/v1/organizations/{org}/endpoints`: create, list, read, update, delete, pause,
//! resume, rotate the signing secret, redrive failures.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use webhook_core::Style;
use webhook_core::domain::Domain;
use webhook_core::event::EventType;
use webhook_core::keys::{EcdsaSigningKey, Ed25519SigningKey};
use webhook_sender::history::MAX_LIMIT;
use webhook_sender::{
    EndpointConfig, EndpointId, EndpointInfo, EndpointState, EndpointUpdate, OrganizationId,
    PageRequest, RateLimit, RetryPolicy, Secret,
};

use super::Caller;
use crate::api::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::keys;
use crate::page::{ListParams, ListResponse};
use crate::wire::{parse_time, path_id, time_of_ms};

/// The default overlap of an endpoint's secret rotation: 24 h.
const DEFAULT_OVERLAP_SECONDS: u64 = 86_400;
/// The longest: 30 days.
const MAX_OVERLAP_SECONDS: u64 = 30 * 86_400;

/// An endpoint's wire style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StyleName {
    /// Seed 000: `X-Webhook-Signature` HMAC, subscribed to event types.
    Event,
    /// Seed 001: ECDSA `Signature` header, subscribed to domains.
    Domain,
    /// Standard Webhooks v1 (HMAC) or v1a (Ed25519), subscribed to event types.
    Standard,
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateEndpoint {
    /// `https://…` (or `http://…`), at most 2048 bytes. Private and loopback addresses are
    /// refused unless the service allows them.
    pub(crate) url: String,
    pub(crate) style: StyleName,
    /// For `event` and `standard`: the event types (see `GET /v1/event-types`).
    #[serde(default)]
    #[schema(schema_with = crate::openapi::event_types_schema)]
    pub(crate) event_types: Vec<String>,
    /// For `domain`: `TRANSACTION`, `WALLET`, `APPROVAL`.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::domains_schema)]
    pub(crate) domains: Vec<String>,
    /// `event`: an own HMAC secret (`whsec_…` or text), else the organization's signs.
    /// `standard`: `whsec_…` (v1) or `whsk_…` (v1a); without it a `whsec_…` is generated
    /// and returned once. `domain`: not accepted (a key pair is generated).
    pub(crate) secret: Option<String>,
    /// Waits before attempts 1..n in seconds (the first counted from publishing, usually
    /// 0). Default: the style's policy.
    pub(crate) retry_schedule_seconds: Option<Vec<u64>>,
    /// Per-attempt timeout, 1 ms up to half the lease. Default 10000.
    pub(crate) timeout_ms: Option<u64>,
    /// Attempts in flight at once, at least 1. Default 16.
    #[schema(minimum = 1)]
    pub(crate) max_concurrency: Option<u32>,
    /// Attempts per second, at least 1. Default: none.
    #[schema(minimum = 1)]
    pub(crate) rate_limit_per_second: Option<u32>,
    /// Extra request headers (their values are never shown again).
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// A note for operators, at most 1024 bytes.
    pub(crate) description: Option<String>,
}

/// Changes to an endpoint; what is left out stays.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct UpdateEndpoint {
    url: Option<String>,
    /// For `event` and `standard` endpoints.
    #[schema(schema_with = crate::openapi::event_types_schema)]
    event_types: Option<Vec<String>>,
    /// For `domain` endpoints.
    #[schema(schema_with = crate::openapi::domains_schema)]
    domains: Option<Vec<String>>,
    retry_schedule_seconds: Option<Vec<u64>>,
    timeout_ms: Option<u64>,
    #[schema(minimum = 1)]
    max_concurrency: Option<u32>,
    /// A number sets the cap, `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(minimum = 1, value_type = Option<u32>)]
    rate_limit_per_second: Option<Option<u32>>,
    /// Replaces every custom header.
    headers: Option<BTreeMap<String, String>>,
    description: Option<String>,
}

/// `Some(None)` for an explicit `null`, `None` (by `default`) when left out.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A new signing secret for an endpoint.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct RotateEndpointSecret {
    /// The new secret, as at creation; without it one is generated (and returned once).
    /// Domain endpoints always get a new generated key pair.
    pub(crate) secret: Option<String>,
    /// How long the current secret keeps signing beside the new one. Default 86400, at
    /// most 2592000.
    #[schema(maximum = 2_592_000)]
    pub(crate) overlap_seconds: Option<u64>,
}

/// Which failures to send again.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Redrive {
    /// RFC 3339: deliveries that failed at or after this time.
    since: String,
    /// Count only, send nothing.
    #[serde(default)]
    dry_run: bool,
}

/// How many deliveries a redrive sent again (or would, for a dry run).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RedriveCount {
    count: u64,
}

/// How an endpoint retries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RetryOut {
    /// Fixed waits before attempts 1..n.
    Schedule { delays_seconds: Vec<f64> },
    /// Exponential backoff with full jitter.
    Exponential {
        base_seconds: f64,
        max_delay_seconds: f64,
        max_attempts: u32,
    },
}

/// An endpoint (never its secrets).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointOut {
    pub(crate) id: String,
    organization_id: String,
    url: String,
    style: StyleName,
    /// Event types (`event`, `standard`) or domains (`domain`).
    subscriptions: Vec<String>,
    /// `active`, `paused` or `disabled`.
    #[schema(example = "active")]
    status: String,
    /// Why it was disabled.
    disabled_reason: Option<String>,
    retry: RetryOut,
    timeout_ms: u64,
    max_concurrency: u32,
    rate_limit_per_second: Option<u32>,
    header_names: Vec<String>,
    description: String,
    /// Keys receivers verify with: base64 SPKI (domain), `whpk_…` (Standard v1a).
    public_keys: Vec<String>,
    created_at: String,
}

/// An endpoint with the key material created with it, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointWithKeys {
    #[serde(flatten)]
    pub(crate) endpoint: EndpointOut,
    /// A generated `whsec_…` secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<String>,
    /// A generated key pair's public key (base64 SPKI for domain, `whpk_…` for v1a).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) public_key: Option<String>,
}

impl StyleName {
    /// The lowercase name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Domain => "domain",
            Self::Standard => "standard",
        }
    }
}

/// The API name of a wire style.
pub(crate) fn style_name(style: Style) -> StyleName {
    match style {
        Style::Domain => StyleName::Domain,
        Style::Standard => StyleName::Standard,
        _ => StyleName::Event,
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(crate) fn view(info: EndpointInfo) -> EndpointOut {
    let (status, disabled_reason) = match &info.state {
        EndpointState::Disabled { reason } => ("disabled", Some(reason.clone())),
        state => (state.as_str(), None),
    };
    let retry = match &info.retry {
        RetryPolicy::Schedule { delays } => RetryOut::Schedule {
            delays_seconds: delays.iter().copied().map(seconds).collect(),
        },
        RetryPolicy::Exponential {
            base,
            max_delay,
            max_attempts,
        } => RetryOut::Exponential {
            base_seconds: seconds(*base),
            max_delay_seconds: seconds(*max_delay),
            max_attempts: *max_attempts,
        },
    };
    EndpointOut {
        id: info.id.to_string(),
        organization_id: info.organization.as_str().to_owned(),
        url: info.url,
        style: style_name(info.style),
        subscriptions: info.subscriptions,
        status: status.to_owned(),
        disabled_reason,
        retry,
        timeout_ms: u64::try_from(info.timeout.as_millis()).unwrap_or(u64::MAX),
        max_concurrency: info.max_concurrency,
        rate_limit_per_second: info.rate_limit.map(|r| r.rate()),
        header_names: info.header_names,
        description: info.description,
        public_keys: info.public_keys,
        created_at: time_of_ms(info.created_at_ms),
    }
}

/// Known event types, or 422.
fn event_types(names: &[String]) -> ApiResult<Vec<EventType>> {
    names
        .iter()
        .map(|name| {
            let kind = EventType::from(name.as_str());
            if kind.is_known() {
                Ok(kind)
            } else {
                Err(ApiError::invalid(format!("unknown event type `{name}`")))
            }
        })
        .collect()
}

/// Known domains, or 422.
fn domains(names: &[String]) -> ApiResult<Vec<Domain>> {
    names
        .iter()
        .map(|name| {
            let domain = Domain::from(name.as_str());
            if domain.is_known() {
                Ok(domain)
            } else {
                Err(ApiError::invalid(format!("unknown domain `{name}`")))
            }
        })
        .collect()
}

fn retry(delays: &[u64]) -> ApiResult<RetryPolicy> {
    let max = webhook_sender::retry::MAX_DELAY.as_secs();
    if let Some(too_long) = delays.iter().find(|&&d| d > max) {
        return Err(ApiError::invalid(format!(
            "retry delay {too_long} s is over the limit of {max} s"
        )));
    }
    RetryPolicy::try_schedule(delays.iter().copied().map(Duration::from_secs))
        .map_err(|e| ApiError::invalid(format!("retry_schedule_seconds: {e}")))
}

fn rate_limit(per_second: u32) -> ApiResult<RateLimit> {
    if per_second == 0 {
        return Err(ApiError::invalid(
            "`rate_limit_per_second` must be at least 1",
        ));
    }
    Ok(RateLimit::per_second(per_second))
}

fn overlap(seconds: Option<u64>) -> ApiResult<Duration> {
    let seconds = seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    if seconds > MAX_OVERLAP_SECONDS {
        return Err(ApiError::invalid(
            "`overlap_seconds` must be at most 2592000 (30 days)",
        ));
    }
    Ok(Duration::from_secs(seconds))
}

fn ecdsa_pair() -> ApiResult<(EcdsaSigningKey, String)> {
    let (key, _pkcs8) =
        EcdsaSigningKey::generate().map_err(|_| ApiError::invalid("no random key pair"))?;
    let public = key.public_key().to_spki_base64();
    Ok((key, public))
}

/// The endpoint of the caller's organization, or 404.
pub(crate) fn owned(
    state: &AppState,
    org: &OrganizationId,
    id: &str,
) -> ApiResult<(EndpointId, EndpointInfo)> {
    let id: EndpointId = path_id(id, "endpoint")?;
    Ok((id, fetched(state, org, id)?))
}

/// The endpoint as it is now (after a change), or 404 (deleted meanwhile).
fn fetched(state: &AppState, org: &OrganizationId, id: EndpointId) -> ApiResult<EndpointInfo> {
    state
        .sender
        .endpoints()
        .get(org, id)
        .ok_or_else(|| ApiError::not_found("endpoint"))
}

/// Creates an endpoint.
#[utoipa::path(post, path = "/v1/organizations/{org}/endpoints", operation_id = "create_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, body = EndpointWithKeys),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointWithKeys>)> {
    let org = caller.organization(&state, &org)?;
    let created = create_endpoint(&state, org, body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates an endpoint of `org` from an API or console request: key material per style,
/// the options that were given.
pub(crate) async fn create_endpoint(
    state: &AppState,
    org: OrganizationId,
    body: CreateEndpoint,
) -> ApiResult<EndpointWithKeys> {
    let mut secret_out = None;
    let mut public_key = None;
    let config = match body.style {
        StyleName::Event => {
            if !body.domains.is_empty() {
                return Err(ApiError::invalid("event endpoints take `event_types`"));
            }
            let config = EndpointConfig::event(org, body.url, event_types(&body.event_types)?);
            match &body.secret {
                Some(text) => config.secret(keys::hmac(text)?),
                None => config,
            }
        }
        StyleName::Standard => {
            if !body.domains.is_empty() {
                return Err(ApiError::invalid("standard endpoints take `event_types`"));
            }
            let secret: Secret = match &body.secret {
                Some(text) => {
                    let secret = keys::standard(text)?;
                    if let Secret::Ed25519(key) = &secret {
                        public_key = Some(key.public_key().to_whpk());
                    }
                    secret
                }
                None => {
                    let (secret, text) = keys::generate_hmac()?;
                    secret_out = Some(text);
                    secret.into()
                }
            };
            EndpointConfig::standard(org, body.url, secret, event_types(&body.event_types)?)
        }
        StyleName::Domain => {
            if body.secret.is_some() {
                return Err(ApiError::invalid(
                    "domain endpoints get a generated key pair; leave out `secret`",
                ));
            }
            if !body.event_types.is_empty() {
                return Err(ApiError::invalid("domain endpoints take `domains`"));
            }
            let (key, public) = ecdsa_pair()?;
            public_key = Some(public);
            EndpointConfig::domain(org, body.url, key, domains(&body.domains)?)
        }
    };
    let mut config = config;
    if let Some(delays) = &body.retry_schedule_seconds {
        config = config.retry(retry(delays)?);
    }
    if let Some(ms) = body.timeout_ms {
        config = config.timeout(Duration::from_millis(ms));
    }
    if let Some(n) = body.max_concurrency {
        config = config.max_concurrency(n);
    }
    if let Some(n) = body.rate_limit_per_second {
        config = config.rate_limit(rate_limit(n)?);
    }
    for (name, value) in body.headers {
        config = config.header(name, value);
    }
    if let Some(description) = body.description {
        config = config.description(description);
    }
    let organization = config.organization().clone();
    let id = state.sender.endpoints().create(config).await?;
    let info = fetched(state, &organization, id)?;
    Ok(EndpointWithKeys {
        endpoint: view(info),
        secret: secret_out,
        public_key,
    })
}

/// Lists the organization's endpoints, oldest first.
#[utoipa::path(get, path = "/v1/organizations/{org}/endpoints", operation_id = "list_endpoints", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ListParams),
    responses(
        (status = 200, body = ListResponse<EndpointOut>),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse<EndpointOut>>> {
    let org = caller.organization(&state, &org)?;
    let mut all = state.sender.endpoints().list(&org);
    // Ids are UUIDv7: by id is by creation.
    all.sort_unstable_by_key(|info| info.id.to_string());
    Ok(Json(params.by_key(
        all,
        |info| info.id.to_string(),
        view,
    )?))
}

/// Reads an endpoint.
#[utoipa::path(get, path = "/v1/organizations/{org}/endpoints/{id}", operation_id = "get_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointOut),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let org = caller.organization(&state, &org)?;
    let (_, info) = owned(&state, &org, &id)?;
    Ok(Json(view(info)))
}

/// Changes what the body names; keys and their rotation stay.
#[utoipa::path(patch, path = "/v1/organizations/{org}/endpoints/{id}", operation_id = "update_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, body = EndpointOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> ApiResult<Json<EndpointOut>> {
    let org = caller.organization(&state, &org)?;
    let (id, _) = owned(&state, &org, &id)?;
    let mut update = EndpointUpdate::default();
    if let Some(url) = body.url {
        update = update.url(url);
    }
    if let Some(types) = &body.event_types {
        update = update.event_types(event_types(types)?);
    }
    if let Some(names) = &body.domains {
        update = update.domains(domains(names)?);
    }
    if let Some(delays) = &body.retry_schedule_seconds {
        update = update.retry(retry(delays)?);
    }
    if let Some(ms) = body.timeout_ms {
        update = update.timeout(Duration::from_millis(ms));
    }
    if let Some(n) = body.max_concurrency {
        update = update.max_concurrency(n);
    }
    if let Some(limit) = body.rate_limit_per_second {
        update = update.rate_limit(limit.map(rate_limit).transpose()?);
    }
    if let Some(headers) = body.headers {
        update = update.headers(headers);
    }
    if let Some(description) = body.description {
        update = update.description(description);
    }
    state.sender.endpoints().update(&org, id, update).await?;
    let info = fetched(&state, &org, id)?;
    Ok(Json(view(info)))
}

/// Deletes an endpoint: its open deliveries are cancelled, nothing more is sent to it,
/// its history stays.
#[utoipa::path(delete, path = "/v1/organizations/{org}/endpoints/{id}", operation_id = "delete_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = caller.organization(&state, &org)?;
    let (id, _) = owned(&state, &org, &id)?;
    state.sender.endpoints().delete(&org, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Pauses an endpoint: deliveries queue, none is sent until it is resumed.
#[utoipa::path(post, path = "/v1/organizations/{org}/endpoints/{id}/pause", operation_id = "pause_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointOut),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let org = caller.organization(&state, &org)?;
    let (id, _) = owned(&state, &org, &id)?;
    state.sender.endpoints().pause(&org, id).await?;
    let info = fetched(&state, &org, id)?;
    Ok(Json(view(info)))
}

/// Resumes a paused or disabled endpoint: what queued is sent, in order.
#[utoipa::path(post, path = "/v1/organizations/{org}/endpoints/{id}/resume", operation_id = "resume_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, body = EndpointOut),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    let org = caller.organization(&state, &org)?;
    let (id, _) = owned(&state, &org, &id)?;
    state.sender.endpoints().resume(&org, id).await?;
    let info = fetched(&state, &org, id)?;
    Ok(Json(view(info)))
}

/// Rotates the endpoint's signing secret: the new one signs from now on, the current one
/// beside it for `overlap_seconds`.
#[utoipa::path(post, path = "/v1/organizations/{org}/endpoints/{id}/rotate-secret", operation_id = "rotate_endpoint_secret", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    request_body(content = Option<RotateEndpointSecret>, description = "May be left out"),
    responses(
        (status = 200, body = EndpointWithKeys),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
    body: Option<ApiJson<RotateEndpointSecret>>,
) -> ApiResult<Json<EndpointWithKeys>> {
    let org = caller.organization(&state, &org)?;
    let (id, info) = owned(&state, &org, &id)?;
    let body = body.map(|ApiJson(body)| body).unwrap_or_default();
    Ok(Json(
        rotate_endpoint_secret(&state, &org, id, &info, body).await?,
    ))
}

/// Rotates an endpoint's signing secret: the given one, or one generated for its style.
pub(crate) async fn rotate_endpoint_secret(
    state: &AppState,
    org: &OrganizationId,
    id: EndpointId,
    info: &EndpointInfo,
    body: RotateEndpointSecret,
) -> ApiResult<EndpointWithKeys> {
    let overlap = overlap(body.overlap_seconds)?;
    let mut secret_out = None;
    let mut public_key = None;
    let new: Secret = match (info.style, &body.secret) {
        (Style::Domain, Some(_)) => {
            return Err(ApiError::invalid(
                "domain endpoints get a generated key pair; leave out `secret`",
            ));
        }
        (Style::Domain, None) => {
            let (key, public) = ecdsa_pair()?;
            public_key = Some(public);
            key.into()
        }
        (Style::Standard, Some(text)) => {
            let secret = keys::standard(text)?;
            if let Secret::Ed25519(key) = &secret {
                public_key = Some(key.public_key().to_whpk());
            }
            secret
        }
        (Style::Standard, None) if info.public_keys.iter().any(|k| k.starts_with("whpk_")) => {
            let key = Ed25519SigningKey::generate()
                .map_err(|_| ApiError::invalid("no random key pair"))?;
            public_key = Some(key.public_key().to_whpk());
            key.into()
        }
        (_, Some(text)) => keys::hmac(text)?.into(),
        (_, None) => {
            let (secret, text) = keys::generate_hmac()?;
            secret_out = Some(text);
            secret.into()
        }
    };
    state
        .sender
        .endpoints()
        .rotate_secret(org, id, new, overlap)
        .await?;
    let info = fetched(state, org, id)?;
    Ok(EndpointWithKeys {
        endpoint: view(info),
        secret: secret_out,
        public_key,
    })
}

/// Sends again every delivery of this endpoint that failed at or after `since`.
#[utoipa::path(post, path = "/v1/organizations/{org}/endpoints/{id}/redrive", operation_id = "redrive_endpoint", tag = "endpoints",
    params(("org" = String, Path, description = "Organization id"), ("id" = String, Path, description = "Endpoint id")),
    request_body = Redrive,
    responses(
        (status = 200, body = RedriveCount),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn redrive(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Redrive>,
) -> ApiResult<Json<RedriveCount>> {
    let org = caller.organization(&state, &org)?;
    let (id, _) = owned(&state, &org, &id)?;
    let since = parse_time("since", &body.since)?;
    let count = redrive_failed(&state, &org, id, since, body.dry_run).await?;
    Ok(Json(RedriveCount { count }))
}

/// Redrives (or, for a dry run, counts) the endpoint's deliveries that failed at or after
/// `since`.
pub(crate) async fn redrive_failed(
    state: &AppState,
    org: &OrganizationId,
    id: EndpointId,
    since: time::OffsetDateTime,
    dry_run: bool,
) -> ApiResult<u64> {
    if dry_run {
        let mut page = PageRequest::new(MAX_LIMIT).map_err(ApiError::from)?;
        let mut count = 0u64;
        loop {
            let failed = state
                .sender
                .failed_since(org, Some(id), since, &page)
                .await?;
            count += failed.items.len() as u64;
            match failed.next_cursor {
                Some(cursor) => page = page.after(cursor),
                None => return Ok(count),
            }
        }
    }
    let redriven = state
        .sender
        .redrive_failed_since(org, Some(id), since)
        .await?;
    Ok(redriven.len() as u64)
}
