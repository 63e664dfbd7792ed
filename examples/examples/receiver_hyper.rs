//! A webhook receiver on plain hyper 1: the `webhook-receiver` tower layer in front of a
//! `service_fn` handler (event style, HMAC-SHA256).
//!
//! ```text
//! cargo run -p webhook-examples --example receiver_hyper
//! ```
//!
//! Environment:
//! - `WEBHOOK_SECRET`: the organization's webhook secret; several, comma-separated, during
//!   a rotation. Default `dev-secret-change-me` (for trying it out only).
//! - `WEBHOOK_ADDR`: where to listen. Default `127.0.0.1:3000`.
//!
//! Try it with a hand-signed request:
//!
//! ```text
//! ts=$(date +%s)
//! body='{"id":"e1","type":"wallet.created","idempotencyKey":"k1","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{}}'
//! sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac dev-secret-change-me | sed 's/^.* //')
//! curl -i http://127.0.0.1:3000/ -H "X-Webhook-Timestamp: $ts" -H "X-Webhook-Signature: $sig" -d "$body"
//! ```
//!
//! The first request prints the event and answers `ok`; repeating it answers
//! `{"status":"duplicate"}`; changing a byte answers 401.
//!
//! The accept loop is `webhook_receiver::server::serve` (hyper's HTTP/1.1 connection
//! underneath) with its recommended limits: head and whole-body deadlines, an idle
//! timeout, a connection cap, and a back-off when file descriptors run out. A bare
//! `loop { listener.accept() … }` has none of them.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::Layer as _;
use webhook_receiver::server::{ServerConfig, serve};
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};

const DEFAULT_SECRET: &str = "dev-secret-change-me";
const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// Runs only for authentic, fresh, first-seen deliveries. Answer 2xx when done: any other
/// answer releases the delivery so that the sender's retry is handled again.
async fn handle(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(webhook) = request.extensions().get::<VerifiedWebhook>() else {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not verified")));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(response);
    };
    if let Some(event) = webhook.event() {
        println!(
            "{} for organization {} (key {})",
            event.event_type.as_str(),
            event.organization_id,
            webhook.dedup_key()
        );
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secrets = std::env::var("WEBHOOK_SECRET").unwrap_or_else(|_| DEFAULT_SECRET.to_owned());
    let addr = std::env::var("WEBHOOK_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_owned());
    // Domain style: `Verifier::domain_public_keys([...])`; Standard Webhooks:
    // `Verifier::standard_keys(["whsec_..."])`.
    let verifier = Verifier::event_secrets(secrets.split(',').map(str::trim))?;
    let service = WebhookLayer::new(verifier).layer(tower::service_fn(handle));

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "receiving webhooks on http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    serve(listener, service, ServerConfig::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
