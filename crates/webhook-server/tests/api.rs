//! The REST API over real HTTP on 127.0.0.1: every route's status codes, a pagination
//! walk, `Idempotency-Key` replay, another tenant's paths and ids answering 404 on every
//! route, revoked tokens, admin-only routes, the SSRF guard at creation, limits and
//! garbage input.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{ADMIN, Options, Receiver, Service, eventually, standard_endpoint, wallet};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use webhook_sender::AllowList;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_tokens_and_secrets() {
    let api = Service::start(Options::default()).await;
    let created = api
        .post(
            "/v1/organizations",
            ADMIN,
            json!({"id": "acme", "name": "Acme"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json["id"], "acme");
    assert_eq!(created.json["name"], "Acme");
    assert!(created.json["created_at"].as_str().unwrap().ends_with('Z'));
    let again = api
        .post("/v1/organizations", ADMIN, json!({"id": "acme"}))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "conflict")
    );
    for bad in [
        json!({"id": ""}),
        json!({"id": "a\u{7}b"}),
        json!({"id": "x".repeat(257)}),
    ] {
        let refused = api.post("/v1/organizations", ADMIN, bad).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.json
        );
    }
    let missing_field = api
        .post("/v1/organizations", ADMIN, json!({"name": "x"}))
        .await;
    assert_eq!(missing_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong_type = api.post("/v1/organizations", ADMIN, json!({"id": 7})).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    let not_json = api
        .send(
            Method::POST,
            "/v1/organizations",
            Some(ADMIN),
            Some(Bytes::from_static(b"{\"id\":")),
            &[],
        )
        .await;
    assert_eq!(
        (not_json.status, not_json.code()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let no_type = api
        .send(
            Method::POST,
            "/v1/organizations",
            Some(ADMIN),
            None,
            &[("content-type", "text/plain")],
        )
        .await;
    assert_eq!(no_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let got = api.get("/v1/organizations/acme", ADMIN).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json["has_secret"], false);
    assert_eq!(
        api.get("/v1/organizations/nobody", ADMIN).await.status,
        StatusCode::NOT_FOUND
    );

    // Tokens: shown once, listed by id only, revoked at once.
    let issued = api
        .call(Method::POST, "/v1/organizations/acme/tokens", ADMIN, None)
        .await;
    assert_eq!(issued.status, StatusCode::CREATED);
    let token = issued.json["token"].as_str().unwrap().to_owned();
    let token_id = issued.json["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("whtok_"));
    let own = api.get("/v1/organizations/acme", &token).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.json["tokens"][0]["id"], token_id.as_str());
    assert!(
        !own.json.to_string().contains(&token),
        "the token text is never shown again"
    );
    assert_eq!(
        api.call(Method::POST, "/v1/organizations/acme/tokens", &token, None)
            .await
            .status,
        StatusCode::FORBIDDEN,
        "an organization token does not issue tokens"
    );
    assert_eq!(
        api.get("/v1/organizations", &token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.post("/v1/organizations", &token, json!({"id": "mine"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Secrets.
    let put = |secret: Value| {
        api.call(
            Method::PUT,
            "/v1/organizations/acme/secret",
            &token,
            Some(secret),
        )
    };
    assert_eq!(
        put(json!({"secret": "short"})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put(json!({"secret": "whsec_not-base64!"})).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        put(json!({"secret": "acme-org-secret-long-enough"}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get("/v1/organizations/acme", ADMIN).await.json["has_secret"],
        true
    );
    let rotate = |body: Value| api.post("/v1/organizations/acme/secret/rotate", &token, body);
    assert_eq!(
        rotate(json!({"secret": "acme-second-secret-value", "overlap_seconds": 2_592_001}))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        rotate(json!({"secret": "acme-second-secret-value", "overlap_seconds": -1}))
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        rotate(json!({"secret": "acme-second-secret-value", "overlap_seconds": 3600}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    // Unauthenticated and revoked.
    let none = api
        .send(Method::GET, "/v1/organizations/acme", None, None, &[])
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers["www-authenticate"], "Bearer");
    let basic = api
        .send(
            Method::GET,
            "/v1/organizations/acme",
            None,
            None,
            &[("authorization", "Basic YTpi")],
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.get("/v1/organizations/acme", "whtok_forged")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let revoke = api
        .call(
            Method::DELETE,
            &format!("/v1/organizations/acme/tokens/{token_id}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/v1/organizations/acme", &token).await.status,
        StatusCode::UNAUTHORIZED,
        "revoked at once"
    );
    let twice = api
        .call(
            Method::DELETE,
            &format!("/v1/organizations/acme/tokens/{token_id}"),
            ADMIN,
            None,
        )
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);

    // The organization list pages by id.
    for n in 0..5 {
        api.post(
            "/v1/organizations",
            ADMIN,
            json!({"id": format!("org-{n}")}),
        )
        .await;
    }
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/organizations?limit=2&cursor={c}"),
            None => "/v1/organizations?limit=2".to_owned(),
        };
        let page = api.get(&path, ADMIN).await;
        assert_eq!(page.status, StatusCode::OK);
        let data = page.json["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        ids.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(ids, ["acme", "org-0", "org-1", "org-2", "org-3", "org-4"]);
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_every_route() {
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let base = "/v1/organizations/acme/endpoints";

    // Event style signs with the organization's secret; no key material comes back.
    let event = api
        .post(base, &token, json!({
            "url": "http://127.0.0.1:9/event", "style": "event",
            "event_types": ["wallet.created"], "description": "ops", "headers": {"x-team": "pay"},
            "timeout_ms": 5000, "max_concurrency": 4, "rate_limit_per_second": 10,
        }))
        .await;
    assert_eq!(event.status, StatusCode::CREATED, "{}", event.json);
    assert_eq!(event.json["status"], "active");
    assert_eq!(event.json["style"], "event");
    assert_eq!(event.json["header_names"], json!(["x-team"]));
    assert!(event.json.get("secret").is_none() && event.json.get("public_key").is_none());
    assert!(
        !event.json.to_string().contains("pay"),
        "header values are not shown"
    );

    // Standard without a secret: a whsec_ generated and returned once.
    let standard = api
        .post(base, &token, standard_endpoint("http://127.0.0.1:9/std"))
        .await;
    assert_eq!(standard.status, StatusCode::CREATED, "{}", standard.json);
    let whsec = standard.json["secret"].as_str().unwrap();
    assert!(
        webhook_core::keys::HmacSecret::from_whsec(whsec).is_ok(),
        "{whsec}"
    );
    let standard_id = standard.json["id"].as_str().unwrap().to_owned();
    let shown = api.get(&format!("{base}/{standard_id}"), &token).await;
    assert!(!shown.json.to_string().contains(whsec), "never shown again");

    // Domain: a key pair generated, its public key returned (base64 SPKI).
    let domain = api
        .post(
            base,
            &token,
            json!({"url": "http://127.0.0.1:9/dom", "style": "domain", "domains": ["TRANSACTION"]}),
        )
        .await;
    assert_eq!(domain.status, StatusCode::CREATED, "{}", domain.json);
    let public = domain.json["public_key"].as_str().unwrap();
    assert!(webhook_core::keys::EcdsaPublicKey::from_spki_base64(public).is_ok());
    assert_eq!(domain.json["public_keys"], json!([public]));
    let domain_id = domain.json["id"].as_str().unwrap().to_owned();

    for (bad, why) in [
        (
            json!({"url": "http://127.0.0.1:9/", "style": "event", "event_types": ["nope.nope"]}),
            "unknown type",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "event", "event_types": []}),
            "no subscription",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "domain", "domains": ["TRANSACTION"], "secret": "x"}),
            "domain secret",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "domain", "domains": ["MONEY"]}),
            "unknown domain",
        ),
        (
            json!({"url": "ftp://127.0.0.1/", "style": "standard", "event_types": ["wallet.created"]}),
            "scheme",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "carrier-pigeon", "event_types": ["wallet.created"]}),
            "style",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "timeout_ms": 0}),
            "timeout 0",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "max_concurrency": 0}),
            "concurrency 0",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "rate_limit_per_second": 0}),
            "rate 0",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "retry_schedule_seconds": []}),
            "no attempts",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "retry_schedule_seconds": [u64::MAX]}),
            "huge delay",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "headers": {"content-type": "x"}}),
            "reserved header",
        ),
        (
            json!({"url": "http://127.0.0.1:9/", "style": "standard", "event_types": ["wallet.created"], "description": "d".repeat(1025)}),
            "description",
        ),
    ] {
        let refused = api.post(base, &token, bad).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            refused.json
        );
    }

    // The list pages oldest first.
    let mut listed = Vec::new();
    let mut path = format!("{base}?limit=2");
    for _ in 0..5 {
        let page = api.get(&path, &token).await;
        assert_eq!(page.status, StatusCode::OK);
        listed.extend(
            page.json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => path = format!("{base}?limit=2&cursor={c}"),
            None => break,
        }
    }
    let created = [
        event.json["id"].as_str().unwrap(),
        standard_id.as_str(),
        domain_id.as_str(),
    ];
    assert_eq!(listed, created);

    // PATCH changes what it names; null removes the rate cap.
    let patched = api
        .call(Method::PATCH, &format!("{base}/{standard_id}"), &token, Some(json!({
            "description": "new", "rate_limit_per_second": 5, "event_types": ["transaction.confirmed"],
        })))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.json);
    assert_eq!(patched.json["description"], "new");
    assert_eq!(patched.json["rate_limit_per_second"], 5);
    assert_eq!(
        patched.json["subscriptions"],
        json!(["transaction.confirmed"])
    );
    let unset = api
        .call(
            Method::PATCH,
            &format!("{base}/{standard_id}"),
            &token,
            Some(json!({"rate_limit_per_second": null})),
        )
        .await;
    assert_eq!(unset.json["rate_limit_per_second"], Value::Null);
    assert_eq!(unset.json["description"], "new", "what is left out stays");
    let wrong = api
        .call(
            Method::PATCH,
            &format!("{base}/{standard_id}"),
            &token,
            Some(json!({"domains": ["WALLET"]})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Pause, resume.
    let paused = api
        .post(&format!("{base}/{standard_id}/pause"), &token, json!({}))
        .await;
    assert_eq!(
        (paused.status, paused.json["status"].as_str()),
        (StatusCode::OK, Some("paused"))
    );
    let resumed = api
        .post(&format!("{base}/{standard_id}/resume"), &token, json!({}))
        .await;
    assert_eq!(resumed.json["status"], "active");

    // Rotation: a new secret for standard, a new key pair for domain (both keys listed).
    let rotated = api
        .call(
            Method::POST,
            &format!("{base}/{standard_id}/rotate-secret"),
            &token,
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.json);
    let next = rotated.json["secret"].as_str().unwrap();
    assert!(next.starts_with("whsec_") && next != whsec);
    let rotated = api
        .post(
            &format!("{base}/{domain_id}/rotate-secret"),
            &token,
            json!({"overlap_seconds": 60}),
        )
        .await;
    assert_eq!(rotated.json["public_keys"].as_array().unwrap().len(), 2);
    let bad_overlap = api
        .post(
            &format!("{base}/{domain_id}/rotate-secret"),
            &token,
            json!({"overlap_seconds": 2_592_001}),
        )
        .await;
    assert_eq!(bad_overlap.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Redrive with nothing failed.
    let dry = api
        .post(
            &format!("{base}/{standard_id}/redrive"),
            &token,
            json!({"since": "2026-01-01T00:00:00Z", "dry_run": true}),
        )
        .await;
    assert_eq!(
        (dry.status, dry.json["count"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    let bad_since = api
        .post(
            &format!("{base}/{standard_id}/redrive"),
            &token,
            json!({"since": "yesterday"}),
        )
        .await;
    assert_eq!(bad_since.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Delete; then it is gone everywhere.
    let deleted = api
        .call(
            Method::DELETE,
            &format!("{base}/{standard_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    for (method, suffix) in [
        (Method::GET, ""),
        (Method::DELETE, ""),
        (Method::POST, "/pause"),
    ] {
        let gone = api
            .call(
                method,
                &format!("{base}/{standard_id}{suffix}"),
                &token,
                None,
            )
            .await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(
        api.get(&format!("{base}/not-a-uuid"), &token).await.status,
        StatusCode::NOT_FOUND
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_deliver_inspect_and_redrive() {
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let ok = Receiver::start(StatusCode::OK).await;
    let refusing = Receiver::start(StatusCode::BAD_REQUEST).await;
    let endpoint = api
        .post(
            "/v1/organizations/acme/endpoints",
            &token,
            standard_endpoint(&ok.url),
        )
        .await;
    let endpoint_id = endpoint.json["id"].as_str().unwrap().to_owned();
    let failing = api
        .post(
            "/v1/organizations/acme/endpoints",
            &token,
            json!({
                "url": refusing.url, "style": "standard", "event_types": ["transaction.confirmed"],
                "retry_schedule_seconds": [0],
            }),
        )
        .await;
    let failing_id = failing.json["id"].as_str().unwrap().to_owned();

    // Idempotency-Key: the same answer, one delivery.
    let publish = |key: &'static str| {
        let body = Bytes::from(serde_json::to_vec(&wallet(1)).unwrap());
        let (api, token) = (&api, &token);
        async move {
            api.send(
                Method::POST,
                "/v1/organizations/acme/messages",
                Some(token),
                Some(body),
                &[("idempotency-key", key)],
            )
            .await
        }
    };
    let first = publish("order-1").await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.json);
    let event_id = first.json["event_id"].as_str().unwrap().to_owned();
    assert_eq!(
        first.json["deliveries"][0]["endpoint_id"],
        endpoint_id.as_str()
    );
    let replay = publish("order-1").await;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(replay.json, first.json, "the first answer again");
    let other = publish("order-2").await;
    assert_ne!(other.json["event_id"], first.json["event_id"]);
    eventually("two deliveries", async || ok.seen().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = ok.seen();
    assert_eq!(seen.len(), 2, "the replay queued nothing: {seen:?}");
    assert_eq!(seen.iter().filter(|id| **id == event_id).count(), 1);

    let too_long = api
        .send(
            Method::POST,
            "/v1/organizations/acme/messages",
            Some(&token),
            Some(Bytes::from(serde_json::to_vec(&wallet(3)).unwrap())),
            &[("idempotency-key", &"k".repeat(256))],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (bad, why) in [
        (json!({"type": "wallet.created", "data": {}}), "no entity"),
        (
            json!({"type": "nope", "entity_id": "e", "data": {}}),
            "unknown type",
        ),
        (
            json!({"domain": "WALLET", "data": {"no_id": 1}}),
            "domain without id",
        ),
        (
            json!({"domain": "WALLET", "type": "wallet.created", "entity_id": "e", "data": {}}),
            "both",
        ),
        (json!({"entity_id": "e", "data": {}}), "neither"),
        (
            json!({"type": "wallet.created", "entity_id": "", "data": {}}),
            "empty entity",
        ),
        (
            json!({"type": "wallet.created", "entity_id": "e".repeat(513), "data": {}}),
            "long entity",
        ),
        (
            json!({"type": "wallet.created", "entity_id": "e", "data": {}, "event_id": "evt-1"}),
            "event id not a uuid",
        ),
        (
            json!({"type": "wallet.created", "entity_id": "e"}),
            "no data",
        ),
    ] {
        let refused = api
            .post("/v1/organizations/acme/messages", &token, bad)
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why}: {}",
            refused.json
        );
    }

    // The message as delivered, with its delivery.
    let message = api
        .get(
            &format!("/v1/organizations/acme/messages/{event_id}"),
            &token,
        )
        .await;
    assert_eq!(message.status, StatusCode::OK);
    assert_eq!(message.json["kind"], "wallet.created");
    assert_eq!(message.json["resource_id"], "w-1");
    assert_eq!(message.json["payload"]["data"]["n"], 1);
    assert_eq!(message.json["payload"]["id"], event_id.as_str());
    let delivery_id = message.json["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(message.json["deliveries"][0]["status"], "delivered");
    let listed = api
        .get(
            "/v1/organizations/acme/messages?type=wallet.created&resource_id=w-1",
            &token,
        )
        .await;
    assert_eq!(
        listed.json["data"].as_array().unwrap().len(),
        2,
        "both keys published about w-1"
    );
    let none = api
        .get("/v1/organizations/acme/messages?domain=WALLET", &token)
        .await;
    assert_eq!(none.json["data"], json!([]));
    let both = api
        .get(
            "/v1/organizations/acme/messages?domain=WALLET&type=wallet.created",
            &token,
        )
        .await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);
    let future = api
        .get(
            "/v1/organizations/acme/messages?since=2999-01-01T00:00:00Z",
            &token,
        )
        .await;
    assert_eq!(future.json["data"], json!([]));

    // The delivery with its attempts; delivered ones are not redriven.
    let delivery = api
        .get(
            &format!("/v1/organizations/acme/deliveries/{delivery_id}"),
            &token,
        )
        .await;
    assert_eq!(delivery.status, StatusCode::OK);
    assert_eq!(delivery.json["attempts"][0]["number"], 1);
    assert_eq!(delivery.json["attempts"][0]["status"], 200);
    assert!(delivery.json["attempts"][0]["latency_ms"].is_u64());
    let redrive_delivered = api
        .post(
            &format!("/v1/organizations/acme/deliveries/{delivery_id}/redrive"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(
        (redrive_delivered.status, redrive_delivered.code()),
        (StatusCode::CONFLICT, "not_failed")
    );

    // A refused delivery fails; redriving it sends it again.
    let failed = api
        .post(
            "/v1/organizations/acme/messages",
            &token,
            json!({"type": "transaction.confirmed", "entity_id": "tx-1", "data": {"id": "tx-1"}}),
        )
        .await;
    let failed_id = failed.json["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["endpoint_id"] == failing_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed_path = format!("/v1/organizations/acme/deliveries/{failed_id}");
    eventually("the delivery fails", async || {
        api.get(&failed_path, &token).await.json["status"] == "failed"
    })
    .await;
    let by_status = api
        .get(
            &format!("/v1/organizations/acme/deliveries?status=failed&endpoint_id={failing_id}"),
            &token,
        )
        .await;
    assert_eq!(by_status.json["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_status.json["data"][0]["id"], failed_id.as_str());
    let dry = api
        .post(
            &format!("/v1/organizations/acme/endpoints/{failing_id}/redrive"),
            &token,
            json!({"since": "2020-01-01T00:00:00Z", "dry_run": true}),
        )
        .await;
    assert_eq!(dry.json["count"], 1);
    let redriven = api
        .post(&format!("{failed_path}/redrive"), &token, json!({}))
        .await;
    assert_eq!(redriven.status, StatusCode::ACCEPTED, "{}", redriven.json);
    eventually("sent again", async || refusing.seen().len() >= 2).await;
    eventually("failed again", async || {
        api.get(&failed_path, &token).await.json["attempt_count"] == 2
    })
    .await;
    let bulk = api
        .post(
            &format!("/v1/organizations/acme/endpoints/{failing_id}/redrive"),
            &token,
            json!({"since": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(bulk.json["count"], 1);

    for bad in [
        "status=lost",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "endpoint_id=nope",
        "limit=0",
        "limit=251",
        "limit=x",
        "cursor=%%%",
    ] {
        let refused = api
            .get(&format!("/v1/organizations/acme/deliveries?{bad}"), &token)
            .await;
        assert!(
            matches!(
                refused.status,
                StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST
            ),
            "{bad}: {} {}",
            refused.status,
            refused.json
        );
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_walk_sees_each_message_and_delivery_once() {
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let receiver = Receiver::start(StatusCode::OK).await;
    api.post(
        "/v1/organizations/acme/endpoints",
        &token,
        standard_endpoint(&receiver.url),
    )
    .await;
    let mut published = HashSet::new();
    for n in 0..120 {
        let reply = api
            .post("/v1/organizations/acme/messages", &token, wallet(n))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        published.insert(reply.json["event_id"].as_str().unwrap().to_owned());
    }
    for list in ["messages", "deliveries"] {
        let mut seen: Vec<String> = Vec::new();
        let mut path = format!("/v1/organizations/acme/{list}?limit=7");
        for _ in 0..100 {
            let page = api.get(&path, &token).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.json);
            let data = page.json["data"].as_array().unwrap();
            assert!(data.len() <= 7);
            seen.extend(
                data.iter()
                    .map(|m| m["event_id"].as_str().unwrap().to_owned()),
            );
            match page.json["next_cursor"].as_str() {
                Some(c) => path = format!("/v1/organizations/acme/{list}?limit=7&cursor={c}"),
                None => break,
            }
        }
        let distinct: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 120, "{list}: each once");
        assert_eq!(distinct, published, "{list}");
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_paths_and_ids_answer_404_on_every_route() {
    let api = Service::start(Options::default()).await;
    let a = api.organization("org-a").await;
    let b = api.organization("org-b").await;
    let receiver = Receiver::start(StatusCode::OK).await;
    let endpoint = api
        .post(
            "/v1/organizations/org-a/endpoints",
            &a,
            standard_endpoint(&receiver.url),
        )
        .await;
    let endpoint = endpoint.json["id"].as_str().unwrap().to_owned();
    let published = api
        .post("/v1/organizations/org-a/messages", &a, wallet(1))
        .await;
    let event = published.json["event_id"].as_str().unwrap().to_owned();
    let delivery = published.json["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_token_id = api.get("/v1/organizations/org-a", ADMIN).await.json["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("delivered", async || !receiver.seen().is_empty()).await;

    let std_body = standard_endpoint("http://127.0.0.1:9/x");
    let msg = wallet(2);
    let since = json!({"since": "2020-01-01T00:00:00Z"});
    let secret = json!({"secret": "a-secret-of-sufficient-length"});
    let rotate = json!({"secret": "a-secret-of-sufficient-length", "overlap_seconds": 1});
    // Every route, once with org-a's path and once with org-b's path and org-a's ids.
    let routes: Vec<(Method, String, Option<Value>)> = ["org-a", "org-b"]
        .iter()
        .flat_map(|org| {
            let o = format!("/v1/organizations/{org}");
            vec![
                (Method::GET, o.clone(), None),
                (Method::POST, format!("{o}/tokens"), None),
                (Method::DELETE, format!("{o}/tokens/{a_token_id}"), None),
                (Method::PUT, format!("{o}/secret"), Some(secret.clone())),
                (
                    Method::POST,
                    format!("{o}/secret/rotate"),
                    Some(rotate.clone()),
                ),
                (
                    Method::POST,
                    format!("{o}/endpoints"),
                    Some(std_body.clone()),
                ),
                (Method::GET, format!("{o}/endpoints"), None),
                (Method::GET, format!("{o}/endpoints/{endpoint}"), None),
                (
                    Method::PATCH,
                    format!("{o}/endpoints/{endpoint}"),
                    Some(json!({"description": "x"})),
                ),
                (Method::DELETE, format!("{o}/endpoints/{endpoint}"), None),
                (
                    Method::POST,
                    format!("{o}/endpoints/{endpoint}/pause"),
                    None,
                ),
                (
                    Method::POST,
                    format!("{o}/endpoints/{endpoint}/resume"),
                    None,
                ),
                (
                    Method::POST,
                    format!("{o}/endpoints/{endpoint}/rotate-secret"),
                    None,
                ),
                (
                    Method::POST,
                    format!("{o}/endpoints/{endpoint}/redrive"),
                    Some(since.clone()),
                ),
                (Method::POST, format!("{o}/messages"), Some(msg.clone())),
                (Method::GET, format!("{o}/messages"), None),
                (Method::GET, format!("{o}/messages/{event}"), None),
                (Method::GET, format!("{o}/deliveries"), None),
                (
                    Method::GET,
                    format!("{o}/deliveries?endpoint_id={endpoint}"),
                    None,
                ),
                (Method::GET, format!("{o}/deliveries/{delivery}"), None),
                (
                    Method::POST,
                    format!("{o}/deliveries/{delivery}/redrive"),
                    None,
                ),
            ]
        })
        .collect();
    let own_org_collections = [
        "/v1/organizations/org-b",
        "/v1/organizations/org-b/tokens",
        "/v1/organizations/org-b/secret",
        "/v1/organizations/org-b/secret/rotate",
        "/v1/organizations/org-b/endpoints",
        "/v1/organizations/org-b/messages",
        "/v1/organizations/org-b/deliveries",
    ];
    let mut checked = 0;
    for (method, path, body) in routes {
        if own_org_collections.contains(&path.as_str()) {
            continue; // org-b's own collections are not org-a's data
        }
        let reply = api.call(method.clone(), &path, &b, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.json
        );
        assert!(
            !reply.json.to_string().contains("org-a\""),
            "{method} {path} leaks"
        );
        checked += 1;
    }
    assert_eq!(
        checked, 33,
        "21 routes twice, less org-b's own 9 collection routes"
    );
    // Nothing of org-a changed.
    let still = api
        .get(&format!("/v1/organizations/org-a/endpoints/{endpoint}"), &a)
        .await;
    assert_eq!(
        (still.status, still.json["status"].as_str()),
        (StatusCode::OK, Some("active"))
    );
    assert_eq!(still.json["description"], "");
    assert_eq!(
        api.get("/v1/organizations/org-a", &a).await.status,
        StatusCode::OK,
        "org-a's token kept"
    );
    // And b's listings hold none of a's records.
    let b_deliveries = api.get("/v1/organizations/org-b/deliveries", &b).await;
    assert_eq!(b_deliveries.json["data"], json!([]));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_endpoints_are_refused_without_allow_private() {
    let api = Service::start(Options {
        allow: AllowList::none(),
        ..Options::default()
    })
    .await;
    let token = api.organization("acme").await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "http://localhost:8080/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
    ] {
        let refused = api
            .post(
                "/v1/organizations/acme/endpoints",
                &token,
                standard_endpoint(url),
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "forbidden_address"),
            "{url}: {}",
            refused.json
        );
    }
    let listed = api.get("/v1/organizations/acme/endpoints", &token).await;
    assert_eq!(listed.json["data"], json!([]));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_rate_and_routes() {
    let api = Service::start(Options {
        rate: NonZeroU32::new(5),
        body_limit: 64 * 1024,
        ..Options::default()
    })
    .await;
    let token = api.organization("acme").await;
    let big = Bytes::from(serde_json::to_vec(&json!({"type": "wallet.created", "entity_id": "w", "data": {"pad": "x".repeat(70_000)}})).unwrap());
    let too_big = api
        .send(
            Method::POST,
            "/v1/organizations/acme/messages",
            Some(&token),
            Some(big),
            &[],
        )
        .await;
    assert_eq!(
        (too_big.status, too_big.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // The organization token's budget: 5 a second; the admin's is its own.
    let mut limited = None;
    for _ in 0..20 {
        let reply = api.get("/v1/organizations/acme", &token).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("a 429 within 20 quick requests at 5/s");
    assert_eq!(limited.code(), "rate_limited");
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(
        api.get("/v1/organizations/acme", ADMIN).await.status,
        StatusCode::OK
    );

    let unknown = api.get("/v1/nothing-here", ADMIN).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let method = api
        .call(Method::PUT, "/v1/organizations", ADMIN, None)
        .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);

    let types = api.get("/v1/event-types", ADMIN).await;
    assert_eq!(types.json["event_types"].as_array().unwrap().len(), 13);
    assert_eq!(
        types.json["domains"],
        json!(["TRANSACTION", "WALLET", "APPROVAL"])
    );
    assert_eq!(
        api.send(Method::GET, "/v1/event-types", None, None, &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.send(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        api.send(Method::GET, "/readyz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let metrics = api.send(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let openapi = api
        .send(Method::GET, "/openapi.json", None, None, &[])
        .await;
    assert_eq!(openapi.json["openapi"], "3.1.0");
    let paths = openapi.json["paths"].as_object().unwrap();
    let expected: HashMap<&str, &[&str]> = HashMap::from([
        ("/v1/organizations", &["get", "post"][..]),
        ("/v1/organizations/{org}", &["get"][..]),
        ("/v1/organizations/{org}/tokens", &["post"][..]),
        ("/v1/organizations/{org}/tokens/{token_id}", &["delete"][..]),
        ("/v1/organizations/{org}/secret", &["put"][..]),
        ("/v1/organizations/{org}/secret/rotate", &["post"][..]),
        ("/v1/organizations/{org}/endpoints", &["get", "post"][..]),
        (
            "/v1/organizations/{org}/endpoints/{id}",
            &["delete", "get", "patch"][..],
        ),
        (
            "/v1/organizations/{org}/endpoints/{id}/pause",
            &["post"][..],
        ),
        (
            "/v1/organizations/{org}/endpoints/{id}/resume",
            &["post"][..],
        ),
        (
            "/v1/organizations/{org}/endpoints/{id}/rotate-secret",
            &["post"][..],
        ),
        (
            "/v1/organizations/{org}/endpoints/{id}/redrive",
            &["post"][..],
        ),
        ("/v1/organizations/{org}/messages", &["get", "post"][..]),
        ("/v1/organizations/{org}/messages/{event_id}", &["get"][..]),
        ("/v1/organizations/{org}/deliveries", &["get"][..]),
        ("/v1/organizations/{org}/deliveries/{id}", &["get"][..]),
        (
            "/v1/organizations/{org}/deliveries/{id}/redrive",
            &["post"][..],
        ),
        ("/v1/event-types", &["get"][..]),
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"][..]),
        ("/metrics", &["get"][..]),
    ]);
    for (path, methods) in &expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} documented"));
        let mut documented: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(k))
            .collect();
        documented.sort_unstable();
        assert_eq!(documented, *methods, "{path}");
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "nothing undocumented, nothing extra"
    );
    api.stop().await;
}

/// Every log line of this test binary, for the leak check.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logs_name_the_credential_never_a_token_or_secret() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let created = api
        .post(
            "/v1/organizations/acme/endpoints",
            &token,
            standard_endpoint("http://127.0.0.1:9/x"),
        )
        .await;
    let whsec = created.json["secret"].as_str().unwrap().to_owned();
    let published = api
        .post("/v1/organizations/acme/messages", &token,
            json!({"type": "wallet.created", "entity_id": "w", "data": {"id": "w", "email": "ann@example.com"}}))
        .await;
    let event = published.json["event_id"].as_str().unwrap();
    let message = api
        .get(&format!("/v1/organizations/acme/messages/{event}"), &token)
        .await;
    assert!(
        !message.json.to_string().contains("ann@example.com"),
        "the payload is shown redacted"
    );
    api.get("/v1/organizations/acme", "whtok_a-guessed-token-value")
        .await;
    let token_id = api.get("/v1/organizations/acme", ADMIN).await.json["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.stop().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("webhook_server::access"),
        "access lines are logged"
    );
    assert!(logs.contains(&token_id), "they name the credential's id");
    assert!(
        logs.contains("route=/v1/organizations/{org}/messages"),
        "by route template"
    );
    for secret in [
        ADMIN,
        token.as_str(),
        whsec.as_str(),
        "whtok_a-guessed-token-value",
        "acme-webhook-secret-of-some-length",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}
