//! `/v1/organizations`: create and list (admin), read, API tokens, webhook secrets.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webhook_sender::OrganizationInfo;

use super::Caller;
use crate::api::AppState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::keys;
use crate::page::{ListParams, ListResponse};
use crate::wire::time_of_ms;

/// The longest overlap of a secret rotation: 30 days.
const MAX_OVERLAP_SECONDS: u64 = 30 * 86_400;

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CreateOrganization {
    /// Its id: 1 to 256 bytes without control characters.
    #[schema(example = "acme")]
    id: String,
    /// A display name, at most 256 bytes.
    name: Option<String>,
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrganizationOut {
    id: String,
    name: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// Whether it has a webhook secret (event-style endpoints sign with it).
    has_secret: bool,
    /// Its API tokens, oldest first (ids only).
    tokens: Vec<TokenOut>,
}

/// An API token, without its text.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenOut {
    id: String,
    created_at: String,
}

/// A token just issued: the text is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IssuedTokenOut {
    id: String,
    /// The bearer token. Store it now: only its hash is kept.
    token: String,
    created_at: String,
}

/// A webhook secret to set.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SetSecret {
    /// `whsec_…`, or 16 to 512 bytes of text.
    secret: String,
}

/// A webhook secret rotation.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RotateSecret {
    /// The new secret: `whsec_…`, or 16 to 512 bytes of text.
    secret: String,
    /// How long the current secret keeps signing beside the new one, 0 to 2592000.
    #[schema(maximum = 2_592_000)]
    overlap_seconds: u64,
}

fn view(info: OrganizationInfo) -> OrganizationOut {
    OrganizationOut {
        id: info.id.as_str().to_owned(),
        name: info.name,
        created_at: time_of_ms(info.created_at_ms),
        has_secret: info.has_secret,
        tokens: info
            .tokens
            .into_iter()
            .map(|t| TokenOut {
                id: t.id,
                created_at: time_of_ms(t.created_at_ms),
            })
            .collect(),
    }
}

/// Creates an organization (admin).
#[utoipa::path(post, path = "/v1/organizations", operation_id = "create_organization", tag = "organizations",
    request_body = CreateOrganization,
    responses(
        (status = 201, body = OrganizationOut),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrganization>,
) -> ApiResult<(StatusCode, Json<OrganizationOut>)> {
    caller.admin()?;
    let info = state
        .sender
        .organizations()
        .create(body.id, body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(view(info))))
}

/// Lists organizations by id (admin).
#[utoipa::path(get, path = "/v1/organizations", operation_id = "list_organizations", tag = "organizations",
    params(ListParams),
    responses(
        (status = 200, body = ListResponse<OrganizationOut>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ListResponse<OrganizationOut>>> {
    caller.admin()?;
    let all = state.sender.organizations().list();
    Ok(Json(params.by_key(
        all,
        |o| o.id.as_str().to_owned(),
        view,
    )?))
}

/// Reads an organization.
#[utoipa::path(get, path = "/v1/organizations/{org}", operation_id = "get_organization", tag = "organizations",
    params(("org" = String, Path, description = "Organization id")),
    responses(
        (status = 200, body = OrganizationOut),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
) -> ApiResult<Json<OrganizationOut>> {
    let org = caller.organization(&state, &org)?;
    let info = state
        .sender
        .organizations()
        .get(&org)
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(Json(view(info)))
}

/// Issues an API token for the organization (admin). The token is in this answer only.
#[utoipa::path(post, path = "/v1/organizations/{org}/tokens", operation_id = "issue_token", tag = "organizations",
    params(("org" = String, Path, description = "Organization id")),
    responses(
        (status = 201, body = IssuedTokenOut),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<IssuedTokenOut>)> {
    let org = caller.organization(&state, &org)?;
    caller.admin()?;
    let issued = state.sender.organizations().issue_token(&org).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedTokenOut {
            id: issued.id.clone(),
            token: issued.token.to_string(),
            created_at: time_of_ms(issued.created_at_ms),
        }),
    ))
}

/// Revokes one of the organization's API tokens, at once.
#[utoipa::path(delete, path = "/v1/organizations/{org}/tokens/{token_id}", operation_id = "revoke_token", tag = "organizations",
    params(
        ("org" = String, Path, description = "Organization id"),
        ("token_id" = String, Path, description = "Token id (`tok_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((org, token_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = caller.organization(&state, &org)?;
    state
        .sender
        .organizations()
        .revoke_token(&org, &token_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the organization's webhook secret, replacing any others at once.
#[utoipa::path(put, path = "/v1/organizations/{org}/secret", operation_id = "set_organization_secret", tag = "organizations",
    params(("org" = String, Path, description = "Organization id")),
    request_body = SetSecret,
    responses(
        (status = 204, description = "Set"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn set_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<SetSecret>,
) -> ApiResult<StatusCode> {
    let org = caller.organization(&state, &org)?;
    let secret = keys::hmac(&body.secret)?;
    state.sender.organizations().set_secret(org, secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates the organization's webhook secret: the new one signs from now on, the current
/// one beside it for `overlap_seconds`.
#[utoipa::path(post, path = "/v1/organizations/{org}/secret/rotate", operation_id = "rotate_organization_secret", tag = "organizations",
    params(("org" = String, Path, description = "Organization id")),
    request_body = RotateSecret,
    responses(
        (status = 204, description = "Rotated"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<RotateSecret>,
) -> ApiResult<StatusCode> {
    let org = caller.organization(&state, &org)?;
    if body.overlap_seconds > MAX_OVERLAP_SECONDS {
        return Err(ApiError::invalid(
            "`overlap_seconds` must be at most 2592000 (30 days)",
        ));
    }
    let secret = keys::hmac(&body.secret)?;
    state
        .sender
        .organizations()
        .rotate_secret(org, secret, Duration::from_secs(body.overlap_seconds))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
