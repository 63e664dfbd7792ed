//! What Schemathesis (`cargo xtask test`, step `openapi`) found wrong with the generated
//! OpenAPI document, each kept fixed by a test of the document itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use webhook_server::Api;

/// The document as clients read it: its JSON.
fn document() -> Value {
    serde_json::to_value(Api::openapi()).expect("the document serializes")
}

/// Every operation: `(method, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// utoipa named each operation after its handler (`create`, `get`, `list`, …), so five
/// operations shared `get` and links could not name their target. OpenAPI requires
/// operation ids to be unique.
#[test]
fn every_operation_has_a_unique_id() {
    let doc = document();
    let mut seen = BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId `{id}` is used by {other} and {method} {path}");
        }
    }
    assert_eq!(seen.len(), 26, "{seen:?}");
}

/// The stateful phase follows links; utoipa 5.5 writes a `Link`'s fields in snake case
/// (`operation_id`), which Schemathesis (and any client) rejects as a link without a
/// target. Every link must name an existing operation by `operationId` and pass only
/// parameters that operation has, from runtime expressions.
#[test]
fn links_name_existing_operations_and_their_parameters() {
    let doc = document();
    let mut parameters_of = BTreeMap::new();
    for (_, path, operation) in operations(&doc) {
        let names: BTreeSet<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect();
        let id = operation["operationId"].as_str().expect("id").to_owned();
        parameters_of.insert(id, (path, names));
    }
    let mut links = 0;
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            let Some(found) = response.get("links").and_then(Value::as_object) else {
                continue;
            };
            assert!(
                status.starts_with('2'),
                "{method} {path} links from {status}"
            );
            for (name, link) in found {
                links += 1;
                let link = link.as_object().expect("link object");
                assert!(
                    link.keys()
                        .all(|k| ["operationId", "parameters", "description"].contains(&k.as_str())),
                    "{name} of {method} {path} has fields OpenAPI does not know: {link:?}"
                );
                let target = link["operationId"].as_str().expect("operationId");
                let (target_path, names) = parameters_of
                    .get(target)
                    .unwrap_or_else(|| panic!("{name} targets unknown operation {target}"));
                for (parameter, expression) in link["parameters"].as_object().expect("params") {
                    assert!(
                        names.contains(parameter),
                        "{name}: {target} ({target_path}) has no parameter {parameter}"
                    );
                    let expression = expression.as_str().expect("expression");
                    assert!(
                        expression.starts_with("$response.body#/")
                            || expression.starts_with("$request.path."),
                        "{name}: {expression}"
                    );
                }
                for required in target_path
                    .split('{')
                    .skip(1)
                    .filter_map(|rest| rest.split('}').next())
                {
                    assert!(
                        link["parameters"].get(required).is_some(),
                        "{name} leaves {target}'s path parameter {required} unset"
                    );
                }
            }
        }
    }
    assert!(links >= 15, "only {links} links");
    let endpoint = &doc["paths"]["/v1/organizations/{org}/endpoints"]["post"]["responses"]["201"]["links"]
        ["GetEndpoint"];
    assert_eq!(endpoint["operationId"], "get_endpoint");
    assert_eq!(endpoint["parameters"]["id"], "$response.body#/id");
    assert_eq!(
        endpoint["parameters"]["org"],
        "$response.body#/organization_id"
    );
}

/// `POST …/endpoints/{id}/rotate-secret` takes no body (a secret is then generated), but
/// the document said the body was required; Schemathesis's call without one was answered
/// 200 against the document.
#[test]
fn the_rotate_secret_body_may_be_left_out() {
    let doc = document();
    let body = &doc["paths"]["/v1/organizations/{org}/endpoints/{id}/rotate-secret"]["post"]["requestBody"];
    assert!(body.is_object(), "the body is documented: {body}");
    assert_ne!(body["required"], Value::Bool(true), "{body}");
    // The other bodies stay required.
    let create = &doc["paths"]["/v1/organizations/{org}/endpoints"]["post"]["requestBody"];
    assert_eq!(create["required"], Value::Bool(true), "{create}");
}
