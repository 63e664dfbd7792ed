//! The OpenAPI document's frame: title, security scheme, tags. The paths and schemas are
//! collected from the handlers' `#[utoipa::path]` attributes by the router
//! ([`Api::openapi`](crate::Api::openapi)), never written by hand.

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The document's frame.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "webhook-server",
        description = "Publish events, manage endpoints and inspect deliveries. Every route under /v1 takes `Authorization: Bearer <token>`: the admin token reaches every organization, an organization token only its own (anything else answers 404).",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "organizations", description = "Tenants, their API tokens and webhook secrets"),
        (name = "endpoints", description = "Where an organization's webhooks go"),
        (name = "messages", description = "Publishing events and looking them up"),
        (name = "deliveries", description = "One message to one endpoint, with its attempts"),
        (name = "meta", description = "Event types, probes, metrics"),
    )
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
