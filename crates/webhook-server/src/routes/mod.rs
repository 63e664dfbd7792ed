//! The routes, one module per resource, and [`Caller`]: the authenticated principal with
//! the two checks every route makes (may it see this organization; is it admin).

pub(crate) mod deliveries;
pub(crate) mod endpoints;
pub(crate) mod messages;
pub(crate) mod meta;
pub(crate) mod organizations;

use axum::extract::FromRequestParts;
use http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use webhook_sender::OrganizationId;

use crate::api::AppState;
use crate::auth::{Access, Principal};
use crate::error::{ApiError, ApiResult};

/// Every `/v1` route (authenticated by the router).
pub(crate) fn v1(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(organizations::create, organizations::list))
        .routes(routes!(organizations::get))
        .routes(routes!(organizations::issue_token))
        .routes(routes!(organizations::revoke_token))
        .routes(routes!(organizations::set_secret))
        .routes(routes!(organizations::rotate_secret))
        .routes(routes!(endpoints::create, endpoints::list))
        .routes(routes!(
            endpoints::get,
            endpoints::update,
            endpoints::delete
        ))
        .routes(routes!(endpoints::pause))
        .routes(routes!(endpoints::resume))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(endpoints::redrive))
        .routes(routes!(messages::publish, messages::list))
        .routes(routes!(messages::get))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::redrive))
        .routes(routes!(meta::event_types))
}

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Self)
            .ok_or_else(ApiError::unauthorized)
    }
}

impl Caller {
    /// The organization of a path, if this caller may see it and it exists; 404 alike
    /// otherwise, so another tenant's existence does not leak.
    pub(crate) fn organization(&self, state: &AppState, id: &str) -> ApiResult<OrganizationId> {
        self.0
            .organization(&state.sender, id)
            .ok_or_else(|| ApiError::not_found("organization"))
    }

    /// Refuses callers other than the admin (403).
    pub(crate) fn admin(&self) -> ApiResult<()> {
        match self.0.access {
            Access::Admin => Ok(()),
            Access::Organization(_) => Err(ApiError::admin_only()),
        }
    }
}
