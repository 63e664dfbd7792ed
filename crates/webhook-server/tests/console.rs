//! The console in a real headless Chromium: sign in, create an endpoint at a receiver that
//! fails its first attempt, publish through the API, see the failed attempt, redrive it,
//! see it delivered; search by event id; hostile payloads render as text and run nothing;
//! another organization's pages answer 404. Screenshots of every page, wide and narrow,
//! go to `target/console-screenshots/`.

#![allow(clippy::unwrap_used)]

mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use common::{Options, Receiver, Service};
use http::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const HOSTILE: &str =
    "\"><img src=x onerror=\"window.__xss=1\"><script>window.__xss=1;alert(1)</script>";

/// Both widths the console must read well at.
const WIDTHS: [(u32, u32, &str); 2] = [(1280, 900, "wide"), (390, 844, "narrow")];

async fn shots(browser: &Browser, name: &str) {
    for (width, height, label) in WIDTHS {
        browser.set_size(width, height).await;
        browser.screenshot(&format!("{name}-{label}")).await;
    }
    browser.set_size(1280, 900).await;
}

async fn no_script_ran(browser: &Browser, page: &str) {
    assert!(!browser.alert_open().await, "{page}: an alert opened");
    assert!(
        browser.eval_bool("window.__xss === undefined").await,
        "{page}: injected script ran"
    );
    assert!(
        browser
            .eval_bool("document.querySelectorAll('img').length === 0")
            .await,
        "{page}: an injected element reached the DOM"
    );
}

async fn reload_until(browser: &Browser, url: &str, css: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto(url).await;
        if browser.text(css).await.contains(wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "{css} never showed {wanted}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_and_customers_see_and_act_on_deliveries() {
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let other = api.organization("globex").await;
    let receiver = Receiver::failing_first(2, StatusCode::OK).await;
    let browser = Browser::start(1280, 900).await;
    let console = format!("{}/console/", api.base);

    // Sign in with the organization's token.
    browser.goto(&console).await;
    browser.wait_for("#token", WAIT).await;
    shots(&browser, "sign-in").await;
    browser.fill("#token", &token).await;
    browser.click("form.signin button").await;
    browser.wait_for("form.create", WAIT).await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with("/console/o/acme/endpoints")
    );
    assert!(
        browser
            .eval_bool("document.cookie.indexOf('webhook_console') === -1")
            .await,
        "the session cookie is HttpOnly: scripts cannot read it"
    );

    // Create an endpoint with the form; its secret is shown once.
    browser.fill("#url", &receiver.url).await;
    browser.click("input[name='type:wallet.created']").await;
    browser.fill("#description", HOSTILE).await;
    browser.click("form.create button[type=submit]").await;
    browser.wait_for("pre.secret", WAIT).await;
    assert!(browser.text("pre.secret").await.starts_with("whsec_"));
    shots(&browser, "endpoint-created").await;
    let endpoints = api.get("/v1/organizations/acme/endpoints", &token).await;
    let endpoint = endpoints.json["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(endpoints.json["data"][0]["description"], HOSTILE);
    // One attempt only, so the first failure is final and needs a redrive.
    api.call(
        http::Method::PATCH,
        &format!("/v1/organizations/acme/endpoints/{endpoint}"),
        &token,
        Some(json!({"retry_schedule_seconds": [0]})),
    )
    .await;

    // Publish through the API: the first attempt fails.
    let published = api
        .post(
            "/v1/organizations/acme/messages",
            &token,
            json!({
                "type": "wallet.created", "entity_id": "wallet-7",
                "data": {"id": "wallet-7", "label": HOSTILE, "link": "javascript:alert(1)"},
            }),
        )
        .await;
    assert_eq!(published.status, StatusCode::ACCEPTED);
    let event = published.json["event_id"].as_str().unwrap().to_owned();
    let delivery = published.json["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery_url = format!("{console}o/acme/deliveries/{delivery}");
    reload_until(&browser, &delivery_url, "#delivery-status", "failed").await;
    assert!(browser.text(".timeline .answer").await.contains("HTTP 500"));
    assert!(
        browser
            .text("pre.excerpt")
            .await
            .contains("database <b>down</b>"),
        "the excerpt as text"
    );
    no_script_ran(&browser, "delivery").await;
    shots(&browser, "delivery-failed").await;

    // A second message fails too (the receiver refuses its first two requests).
    let second = api
        .post(
            "/v1/organizations/acme/messages",
            &token,
            json!({"type": "wallet.created", "entity_id": "wallet-8", "data": {"id": "wallet-8"}}),
        )
        .await;
    let second = second.json["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_url = format!("{console}o/acme/deliveries/{second}");
    reload_until(&browser, &second_url, "#delivery-status", "failed").await;

    // The endpoints page and the endpoint's page show it.
    browser.goto(&format!("{console}o/acme/endpoints")).await;
    assert!(
        browser.text("table.endpoints").await.contains("HTTP 500"),
        "last error"
    );
    no_script_ran(&browser, "endpoints").await;
    shots(&browser, "endpoints").await;
    browser
        .goto(&format!("{console}o/acme/endpoints/{endpoint}"))
        .await;
    assert!(browser.exists("figure.chart svg").await);
    assert!(browser.text("table.deliveries").await.contains("failed"));
    no_script_ran(&browser, "endpoint").await;
    shots(&browser, "endpoint-detail").await;

    // Redrive from the delivery page: it turns delivered.
    browser.goto(&delivery_url).await;
    browser.click("#redrive").await;
    browser.wait_for(".notice", WAIT).await;
    reload_until(&browser, &delivery_url, "#delivery-status", "delivered").await;
    shots(&browser, "delivery-redriven").await;

    // The second, with "every failure of the endpoint since" from its page: a dry-run
    // count, then the confirmation.
    browser.goto(&second_url).await;
    browser.click("form.redrive button").await;
    browser.wait_for("#redrive-count", WAIT).await;
    assert!(
        browser
            .text("#redrive-count")
            .await
            .starts_with("1 delivery failed since")
    );
    shots(&browser, "redrive-confirm").await;
    browser.click("main form[action$='/redrive'] button").await;
    browser.wait_for(".notice", WAIT).await;
    assert!(
        browser
            .text(".notice")
            .await
            .contains("1 delivery sent again")
    );
    reload_until(&browser, &second_url, "#delivery-status", "delivered").await;
    assert_eq!(
        receiver.seen().len(),
        4,
        "two failures, two redriven deliveries"
    );

    // Search by event id: straight to the message, payload as text.
    browser.goto(&format!("{console}o/acme/messages")).await;
    browser.fill("#event_id", &event).await;
    browser.click("form.filters button").await;
    browser.wait_for("#event-id", WAIT).await;
    assert_eq!(browser.text("#event-id").await, event);
    let payload = browser.text("pre.payload").await;
    assert!(
        payload.contains("<script>window.__xss=1;alert(1)</script>"),
        "{payload}"
    );
    assert!(payload.contains("javascript:alert(1)"));
    no_script_ran(&browser, "message").await;
    shots(&browser, "message").await;
    browser
        .goto(&format!("{console}o/acme/messages?kind=wallet.created"))
        .await;
    assert!(browser.text("table.messages").await.contains(&event));
    shots(&browser, "messages").await;

    // Another organization: sign out, sign in as globex; acme's pages are not found.
    browser.click("form.signout button").await;
    browser.wait_for("#token", WAIT).await;
    browser.fill("#token", &other).await;
    browser.click("form.signin button").await;
    browser.wait_for("form.create", WAIT).await;
    for path in [
        format!("o/acme/endpoints/{endpoint}"),
        format!("o/acme/deliveries/{delivery}"),
        format!("o/acme/messages/{event}"),
        format!("o/globex/endpoints/{endpoint}"),
        format!("o/globex/deliveries/{delivery}"),
        "organizations".to_owned(),
    ] {
        browser.goto(&format!("{console}{path}")).await;
        assert_eq!(browser.text("h1").await, "Not Found", "{path}");
        assert!(!browser.html().await.contains("wallet-7"), "{path} leaks");
    }
    shots(&browser, "not-found").await;
    browser.close().await;
    api.stop().await;
}
