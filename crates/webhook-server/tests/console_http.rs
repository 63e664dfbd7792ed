//! The console over plain HTTP: sign-in, the cookie's flags, CSRF and origin checks,
//! another tenant's pages answering 404, escaping of hostile values, security headers.
//! (The pages in a real browser are in `console.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN, Options, Receiver, Service, eventually};
use http::{Method, StatusCode};
use serde_json::json;

fn csrf_in(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_cookie_csrf_and_tenancy() {
    let api = Service::start(Options::default()).await;
    let a = api.organization("org-a").await;
    let b = api.organization("org-b").await;
    let receiver = Receiver::start(StatusCode::OK).await;
    let hostile = "\"><img src=x onerror=alert(1)><script>window.__xss=1</script>";
    let endpoint = api
        .post(
            "/v1/organizations/org-a/endpoints",
            &a,
            json!({
                "url": format!("{}?q={}", receiver.url, "%22%3E%3Cscript%3E"),
                "style": "standard", "event_types": ["wallet.created"], "description": hostile,
            }),
        )
        .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.json);
    let endpoint = endpoint.json["id"].as_str().unwrap().to_owned();
    let published = api
        .post("/v1/organizations/org-a/messages", &a, json!({
            "type": "wallet.created", "entity_id": hostile, "data": {"id": "w", "note": hostile, "link": "javascript:alert(1)"},
        }))
        .await;
    let event = published.json["event_id"].as_str().unwrap().to_owned();
    let delivery = published.json["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("delivered", async || !receiver.seen().is_empty()).await;

    // Signing in sets the cookie with its flags; a bad token does not.
    let (status, headers, _) = api
        .page(
            Method::POST,
            "/console/sign-in",
            None,
            Some(&format!("token={a}")),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers["set-cookie"].to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP here");
    assert_eq!(headers["location"], "/console/o/org-a/endpoints");
    let (_, proxied, _) = api
        .page(
            Method::POST,
            "/console/sign-in",
            None,
            Some(&format!("token={a}")),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(proxied["set-cookie"].to_str().unwrap().contains("Secure"));
    let (status, headers, _) = api
        .page(
            Method::POST,
            "/console/sign-in",
            None,
            Some("token=whtok_nope"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get("set-cookie").is_none());
    let (status, _, _) = api
        .page(
            Method::POST,
            "/console/sign-in",
            None,
            Some(&format!("token={a}")),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "sign-in posted from another site"
    );

    // Pages without a session go to sign-in; with one, they escape every value.
    let (status, headers, _) = api
        .page(Method::GET, "/console/o/org-a/endpoints", None, None, &[])
        .await;
    assert_eq!(
        (status, headers["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/")
    );
    let pages = [
        "/console/o/org-a/endpoints".to_owned(),
        format!("/console/o/org-a/endpoints/{endpoint}"),
        format!("/console/o/org-a/messages/{event}"),
        format!("/console/o/org-a/deliveries/{delivery}"),
        "/console/o/org-a/messages?kind=wallet.created".to_owned(),
    ];
    let mut csrf = String::new();
    for path in &pages {
        let (status, headers, html) = api.page(Method::GET, path, Some(&a), None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(
            !html.contains("<script>window"),
            "{path}: a script tag from data"
        );
        assert!(!html.contains("<img src=x"), "{path}: an element from data");
        assert!(
            !html.contains("href=\"javascript:"),
            "{path}: a javascript: link"
        );
        csrf = csrf_in(&html);
    }
    let (_, _, message_page) = api.page(Method::GET, &pages[2], Some(&a), None, &[]).await;
    assert!(
        message_page.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"),
        "shown as text"
    );

    // Every action needs the CSRF token.
    let pause = format!("/console/o/org-a/endpoints/{endpoint}/pause");
    let (status, _, _) = api
        .page(Method::POST, &pause, Some(&a), Some("csrf=forged"), &[])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = api
        .page(Method::POST, &pause, Some(&a), Some(""), &[])
        .await;
    assert!(status.is_client_error());
    assert_eq!(
        api.get(&format!("/v1/organizations/org-a/endpoints/{endpoint}"), &a)
            .await
            .json["status"],
        "active"
    );
    let (status, headers, _) = api
        .page(
            Method::POST,
            &pause,
            Some(&a),
            Some(&format!("csrf={csrf}")),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with("?done=paused")
    );
    assert_eq!(
        api.get(&format!("/v1/organizations/org-a/endpoints/{endpoint}"), &a)
            .await
            .json["status"],
        "paused"
    );

    // Another organization's pages and ids: 404, with its own org path too.
    for path in pages
        .iter()
        .map(String::as_str)
        .chain(["/console/organizations"])
    {
        let (status, _, html) = api.page(Method::GET, path, Some(&b), None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!html.contains(&endpoint), "{path} leaks");
        let own = path.replace("org-a", "org-b");
        if own != path && own != "/console/o/org-b/endpoints" && !own.contains("?kind") {
            let (status, _, _) = api.page(Method::GET, &own, Some(&b), None, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{own}");
        }
    }
    let b_csrf = {
        let (_, _, html) = api
            .page(
                Method::GET,
                "/console/o/org-b/endpoints",
                Some(&b),
                None,
                &[],
            )
            .await;
        csrf_in(&html)
    };
    let resume = format!("/console/o/org-b/endpoints/{endpoint}/resume");
    let (status, _, _) = api
        .page(
            Method::POST,
            &resume,
            Some(&b),
            Some(&format!("csrf={b_csrf}")),
            &[],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "org-a's endpoint through org-b's path"
    );

    // The admin sees every organization; a revoked token is signed out.
    let (status, _, html) = api
        .page(
            Method::GET,
            "/console/organizations",
            Some(ADMIN),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("org-a") && html.contains("org-b"));
    let token_id = api.get("/v1/organizations/org-b", ADMIN).await.json["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.call(
        Method::DELETE,
        &format!("/v1/organizations/org-b/tokens/{token_id}"),
        ADMIN,
        None,
    )
    .await;
    let (status, headers, _) = api
        .page(
            Method::GET,
            "/console/o/org-b/endpoints",
            Some(&b),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_deliveries_page_and_filter() {
    let api = Service::start(Options::default()).await;
    let token = api.organization("acme").await;
    let receiver = Receiver::start(StatusCode::OK).await;
    let created = api
        .post(
            "/v1/organizations/acme/endpoints",
            &token,
            common::standard_endpoint(&receiver.url),
        )
        .await;
    let endpoint = created.json["id"].as_str().unwrap().to_owned();
    for n in 0..30 {
        api.post("/v1/organizations/acme/messages", &token, common::wallet(n))
            .await;
    }
    eventually("all delivered", async || receiver.seen().len() >= 30).await;
    let page = format!("/console/o/acme/endpoints/{endpoint}");
    let (status, _, first) = api.page(Method::GET, &page, Some(&token), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let rows = |html: &str| html.matches("/console/o/acme/deliveries/").count();
    assert_eq!(rows(&first), 25, "a page of 25");
    let next = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (_, _, second) = api.page(Method::GET, &next, Some(&token), None, &[]).await;
    assert_eq!(rows(&second), 5, "the rest");
    assert!(!second.contains("rel=\"next\""));
    let (_, _, failed) = api
        .page(
            Method::GET,
            &format!("{page}?status=failed"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(rows(&failed), 0, "none failed");
    let (_, _, future) = api
        .page(
            Method::GET,
            &format!("{page}?since=2999-01-01T00:00"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(rows(&future), 0);
    let (status, _, _) = api
        .page(
            Method::GET,
            &format!("{page}?status=lost"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    api.stop().await;
}
