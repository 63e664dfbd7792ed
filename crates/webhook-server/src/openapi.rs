//! The OpenAPI document's frame: title, security scheme, tags. The paths and schemas are
//! collected from the handlers' `#[utoipa::path]` attributes by the router
//! ([`Api::openapi`](crate::Api::openapi)), never written by hand; [`Links`] then adds
//! the OpenAPI links from what a create answers to the operations on what it created
//! (clients and stateful fuzzers such as Schemathesis follow them).

use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response};

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

/// The OpenAPI links: from each answer that names a new resource's id to the operations on
/// it. Applied to the whole document, after the routes' paths are collected.
pub(crate) struct Links;

/// `(operation, status, link name, target operation, [(parameter, runtime expression)])`.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const ORG_FROM_BODY: &[(&str, &str)] = &[("org", "$response.body#/id")];
const ENDPOINT: &[(&str, &str)] = &[
    ("org", "$response.body#/organization_id"),
    ("id", "$response.body#/id"),
];
const FIRST_DELIVERY: &[(&str, &str)] = &[
    ("org", "$request.path.org"),
    ("id", "$response.body#/deliveries/0/id"),
];

const LINKS: &[LinkSpec] = &[
    (
        "create_organization",
        "201",
        "GetOrganization",
        "get_organization",
        ORG_FROM_BODY,
    ),
    (
        "create_organization",
        "201",
        "IssueToken",
        "issue_token",
        ORG_FROM_BODY,
    ),
    (
        "create_organization",
        "201",
        "SetSecret",
        "set_organization_secret",
        ORG_FROM_BODY,
    ),
    (
        "create_organization",
        "201",
        "CreateEndpoint",
        "create_endpoint",
        ORG_FROM_BODY,
    ),
    (
        "create_organization",
        "201",
        "PublishMessage",
        "publish_message",
        ORG_FROM_BODY,
    ),
    (
        "issue_token",
        "201",
        "RevokeToken",
        "revoke_token",
        &[
            ("org", "$request.path.org"),
            ("token_id", "$response.body#/id"),
        ],
    ),
    (
        "create_endpoint",
        "201",
        "GetEndpoint",
        "get_endpoint",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "UpdateEndpoint",
        "update_endpoint",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "DeleteEndpoint",
        "delete_endpoint",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "PauseEndpoint",
        "pause_endpoint",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "ResumeEndpoint",
        "resume_endpoint",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "RotateEndpointSecret",
        "rotate_endpoint_secret",
        ENDPOINT,
    ),
    (
        "create_endpoint",
        "201",
        "RedriveEndpoint",
        "redrive_endpoint",
        ENDPOINT,
    ),
    (
        "publish_message",
        "202",
        "GetMessage",
        "get_message",
        &[
            ("org", "$request.path.org"),
            ("event_id", "$response.body#/event_id"),
        ],
    ),
    (
        "publish_message",
        "202",
        "GetDelivery",
        "get_delivery",
        FIRST_DELIVERY,
    ),
    (
        "publish_message",
        "202",
        "RedriveDelivery",
        "redrive_delivery",
        FIRST_DELIVERY,
    ),
    (
        "list_deliveries",
        "200",
        "GetFirstDelivery",
        "get_delivery",
        &[
            ("org", "$request.path.org"),
            ("id", "$response.body#/data/0/id"),
        ],
    ),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                item.get.as_mut(),
                item.put.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let Some(id) = operation.operation_id.clone() else {
                    continue;
                };
                for &(_, status, name, target, parameters) in
                    LINKS.iter().filter(|link| link.0 == id)
                {
                    let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status)
                    else {
                        continue;
                    };
                    add_link(response, name, target, parameters);
                }
            }
        }
    }
}

/// Adds the link `name` to `target` with `parameters`.
///
/// utoipa 5.5 serializes [`Link`](utoipa::openapi::link::Link)'s own fields in snake case
/// (`operation_id`), which is not OpenAPI and which no client reads, so the link's fields
/// go in as its (flattened) extensions, under their OpenAPI names.
fn add_link(response: &mut Response, name: &str, target: &str, parameters: &[(&str, &str)]) {
    let parameters: serde_json::Map<String, serde_json::Value> = parameters
        .iter()
        .map(|&(parameter, expression)| (parameter.to_owned(), expression.into()))
        .collect();
    let fields: Extensions = [
        ("operationId", serde_json::Value::from(target)),
        ("parameters", serde_json::Value::Object(parameters)),
    ]
    .into_iter()
    .collect();
    response.links.insert(
        name.to_owned(),
        RefOr::T(LinkBuilder::new().extensions(Some(fields)).build()),
    );
}

/// The schema of one event type: the catalogue's 13 names, from `webhook-core`.
pub(crate) fn event_type_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            webhook_core::event::EventType::KNOWN
                .iter()
                .map(|t| t.as_str().to_owned()),
        ))
        .build()
}

/// The schema of a list of event types.
pub(crate) fn event_types_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(event_type_schema())
        .build()
}

/// The schema of one domain: `TRANSACTION`, `WALLET`, `APPROVAL`, from `webhook-core`.
pub(crate) fn domain_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(
            webhook_core::domain::Domain::KNOWN
                .iter()
                .map(|d| d.as_str().to_owned()),
        ))
        .build()
}

/// The schema of a list of domains.
pub(crate) fn domains_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(domain_schema())
        .build()
}
