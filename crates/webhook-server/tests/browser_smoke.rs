//! The browser harness (`tests/browser/`) against a tiny page served on 127.0.0.1: it
//! navigates, fills a form, clicks, reads text, sees that a `<script>` submitted as text
//! stayed text (and, as a control, that a script the page does run is seen running), saves
//! screenshots, and leaves no chromedriver or Chromium process behind.

#![allow(clippy::unwrap_used)]

mod browser;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use browser::Browser;

/// What the form submits: a script that sets `window.__xss` and opens a dialog if it runs.
const PAYLOAD: &str = "<script>window.__xss = true; alert('xss')</script>\
                       <img src=\"/nothing\" onerror=\"window.__xss = true\">";

const STYLE: &str = "<style>body{font-family:sans-serif;margin:2rem;background:#f4f6f8}\
                     main{background:#fff;border:1px solid #ccd;padding:1rem 1.5rem;border-radius:6px}\
                     h1{color:#1a4d8f}#echo{font-family:monospace;background:#fffbe6;padding:.5rem}</style>";

/// Escapes text for HTML, as the console's template engine does.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The page under test: `/` a form, `/echo` the comment escaped, `/control` a page that
/// does run a script (to show the checks can fail).
fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                Html(format!(
                    "<!doctype html><html><head><title>Smoke</title>{STYLE}</head><body><main>\
                     <h1>Browser harness smoke test</h1>\
                     <form method=\"get\" action=\"/echo\">\
                     <label>Comment <input id=\"comment\" name=\"comment\" size=\"60\"></label> \
                     <button id=\"send\" type=\"submit\">Send</button></form></main></body></html>"
                ))
            }),
        )
        .route(
            "/echo",
            get(|Query(query): Query<HashMap<String, String>>| async move {
                let comment = query.get("comment").map(String::as_str).unwrap_or_default();
                Html(format!(
                    "<!doctype html><html><head><title>Echo</title>{STYLE}</head><body><main>\
                     <h1>You said</h1><p id=\"echo\">{}</p>\
                     <p id=\"length\">{} characters</p></main></body></html>",
                    escape(comment),
                    comment.chars().count()
                ))
            }),
        )
        .route(
            "/control",
            get(|| async {
                Html(
                    "<!doctype html><html><body><p id=\"control\">control</p>\
                     <script>window.__xss = true; alert('control')</script></body></html>",
                )
            }),
        )
}

/// Serves [`app`] on a free loopback port.
async fn serve() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    addr
}

/// Asserts that nothing of a closed browser is left: chromedriver reaped, no process
/// naming its profile, the profile removed.
fn assert_gone(driver: u32, profile: &Path) {
    assert!(
        !Path::new(&format!("/proc/{driver}")).exists(),
        "chromedriver {driver} is still there"
    );
    let stray = browser::processes_mentioning(&profile.to_string_lossy());
    assert!(stray.is_empty(), "Chromium processes left: {stray:?}");
    assert!(!profile.exists(), "{} was not removed", profile.display());
}

#[tokio::test]
async fn the_harness_drives_a_real_chromium_on_loopback() {
    let addr = serve().await;
    let browser = Browser::start(1024, 768).await;
    let driver = browser.driver_pid().unwrap();
    let profile = browser.profile_dir().to_owned();
    assert!(browser.startup() < Duration::from_secs(60));

    browser.goto(&format!("http://{addr}/")).await;
    assert_eq!(browser.text("h1").await, "Browser harness smoke test");
    assert!(browser.exists("form #comment").await);
    assert!(!browser.exists("#echo").await);

    browser.fill("#comment", PAYLOAD).await;
    browser.click("#send").await;
    browser.wait_for("#echo", Duration::from_secs(10)).await;
    assert!(browser.current_url().await.contains("/echo?comment="));

    // The script arrived as text, is shown as text, and did nothing.
    assert_eq!(browser.text("#echo").await, PAYLOAD);
    assert_eq!(
        browser.text("#length").await,
        format!("{} characters", PAYLOAD.chars().count())
    );
    assert!(
        !browser.alert_open().await,
        "an injected script opened a dialog"
    );
    assert!(
        browser
            .eval_bool("typeof window.__xss === 'undefined'")
            .await
    );
    assert!(!browser.exists("#echo script, #echo img").await);
    assert!(browser.html().await.contains("&lt;script&gt;window.__xss"));

    let wide = browser.screenshot("browser-smoke").await;
    assert!(std::fs::metadata(&wide).unwrap().len() > 1000);
    assert!(
        browser
            .eval_bool("window.innerWidth === 1024 && window.innerHeight === 768")
            .await
    );
    browser.set_size(480, 800).await;
    assert!(
        browser
            .eval_bool("window.innerWidth === 480 && window.innerHeight === 800")
            .await
    );
    browser.screenshot("browser-smoke-narrow").await;

    // The control: a script that does run is seen by both checks.
    browser.goto(&format!("http://{addr}/control")).await;
    assert!(
        browser.alert_open().await,
        "the control's alert was not seen"
    );
    browser.dismiss_alert().await;
    assert!(!browser.alert_open().await);
    assert!(browser.eval_bool("window.__xss === true").await);

    browser.close().await;
    assert_gone(driver, &profile);
}

#[tokio::test]
async fn dropping_a_browser_stops_chromedriver_and_chromium() {
    let addr = serve().await;
    let browser = Browser::start(800, 600).await;
    let driver = browser.driver_pid().unwrap();
    let profile = browser.profile_dir().to_owned();
    browser.goto(&format!("http://{addr}/")).await;
    assert!(
        !browser::processes_mentioning(&profile.to_string_lossy()).is_empty(),
        "Chromium runs with the profile on its command line"
    );
    drop(browser);
    assert_gone(driver, &profile);
}

#[test]
fn only_loopback_urls_are_opened() {
    for url in [
        "about:blank",
        "http://127.0.0.1:8080/console/",
        "http://localhost/",
        "https://[::1]:3000/x",
        "http://127.0.0.1?q=1",
    ] {
        assert!(browser::is_loopback_url(url), "{url}");
    }
    for url in [
        "http://example.com/",
        "http://127.0.0.1.example.com/",
        "http://127.0.0.1@example.com/",
        "http://[::1].example.com/",
        "file:///etc/passwd",
        "data:text/html,hi",
        "ftp://127.0.0.1/",
    ] {
        assert!(!browser::is_loopback_url(url), "{url}");
    }
}
