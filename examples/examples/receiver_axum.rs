//! A webhook receiver on axum 0.8: the `webhook-receiver` layer on a router and the
//! `VerifiedWebhook` extractor in the handler (event style, HMAC-SHA256).
//!
//! ```text
//! cargo run -p webhook-examples --example receiver_axum
//! ```
//!
//! Environment:
//! - `WEBHOOK_SECRET`: the organization's webhook secret; several, comma-separated, during
//!   a rotation. Default `dev-secret-change-me` (for trying it out only).
//! - `WEBHOOK_ADDR`: where to listen. Default `127.0.0.1:3000`.
//!
//! Deliveries go to `POST /webhook`; `GET /health` is outside the layer. See
//! `receiver_hyper.rs` for a `curl` command that signs a request by hand.
//!
//! The router is served by `webhook_receiver::server::serve` rather than `axum::serve`:
//! the same hyper underneath, plus a deadline for request heads (10 s) and whole bodies
//! (20 s, answered 408), an idle timeout (5 s), a connection cap (1024) and an accept loop
//! that backs off when file descriptors run out. `axum::serve` has none of these, so one
//! slow client could hold its connections open for ever.

use axum::Router;
use axum::routing::{get, post};
use webhook_receiver::server::{ServerConfig, serve};
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};

const DEFAULT_SECRET: &str = "dev-secret-change-me";
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// Runs only for authentic, fresh, first-seen deliveries. Return an error status (or
/// `Err`) when the work failed: the delivery is then released for the sender's retry.
async fn handle(webhook: VerifiedWebhook) -> &'static str {
    match webhook.event() {
        Some(event) => println!(
            "{} for organization {} (key {})",
            event.event_type.as_str(),
            event.organization_id,
            webhook.dedup_key()
        ),
        None => println!("{} (key {})", webhook.kind(), webhook.dedup_key()),
    }
    "ok"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secrets = std::env::var("WEBHOOK_SECRET").unwrap_or_else(|_| DEFAULT_SECRET.to_owned());
    let addr = std::env::var("WEBHOOK_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
    let verifier = Verifier::event_secrets(secrets.split(',').map(str::trim))?;

    let webhooks = Router::new()
        .route("/webhook", post(handle))
        .layer(WebhookLayer::new(verifier));
    let app = webhooks.route("/health", get(|| async { "ok" }));

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "receiving webhooks on http://{}/webhook (Ctrl-C to stop)",
        listener.local_addr()?
    );
    serve(listener, app, ServerConfig::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
