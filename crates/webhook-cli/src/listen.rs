//! `webhook listen`: serve the receiver middleware and print each delivery as a JSON line.
//!
//! stdout gets one line per accepted delivery (duplicates included, with
//! `"duplicate": true`): `style`, `dedup_key`, `duplicate`, `type` (event and standard
//! styles) or `domain`, and `event`, the decoded event (for the domain style, the
//! decoded resource). Rejected requests get the receiver's status and one line on
//! stderr with the status and reason. Ctrl-C or SIGTERM stops the server after the
//! requests in progress are answered.
//!
//! The server is the receiver's [`webhook_receiver::server::serve`], with its limits as
//! flags (defaults from [`ServerConfig::default`]): a head must arrive within 10 s, a
//! body within 20 s, an idle connection closes after 5 s, at most 1024 connections are
//! served at once, and failing accepts (out of file descriptors) back off and are
//! reported on stderr at most once a second.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use serde_json::{Value, json};
use tower::Layer as _;
use webhook_core::VerifiedMessage;
use webhook_receiver::server::{self, ServerConfig};
use webhook_receiver::{Observation, VerifiedWebhook, Verifier, WebhookLayer};

use crate::Failure;
use crate::keys::TrustArgs;

/// Serve the receiver middleware and print each delivery as a JSON line.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on, HOST:PORT (port 0 picks a free one; the address is printed
    /// on stderr).
    #[arg(long, value_name = "HOST:PORT")]
    addr: SocketAddr,
    #[command(flatten)]
    keys: TrustArgs,
    /// Accepted distance between the signed timestamp and now, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    tolerance: u64,
    /// Domain style: the oldest accepted resource `updatedAt`, in seconds (raise it to
    /// receive a redrive of old deliveries).
    #[arg(long, value_name = "SECONDS", default_value_t = webhook_receiver::DEFAULT_MAX_RESOURCE_AGE.as_secs())]
    max_resource_age: u64,
    /// Largest accepted body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = webhook_receiver::DEFAULT_MAX_BODY_SIZE)]
    max_body: usize,
    /// Time a connection has to send a complete request head, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(server::DEFAULT_HEADER_READ_TIMEOUT))]
    header_timeout: u64,
    /// Time a request has to send its whole body, in milliseconds (answered 408 after).
    #[arg(long, value_name = "MS", default_value_t = millis(webhook_receiver::deadline::DEFAULT_BODY_READ_TIMEOUT))]
    body_timeout: u64,
    /// Time a kept-alive connection may wait for its next request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = millis(server::DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: u64,
    /// Most connections served at once; more wait in the listen backlog.
    #[arg(long, value_name = "N", default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let keys = args.keys.keys()?;
    let verifier = Verifier::new(keys)
        .tolerance(Duration::from_secs(args.tolerance))
        .max_resource_age(Duration::from_secs(args.max_resource_age))
        .max_body_size(args.max_body);
    let config = ServerConfig::default()
        .header_read_timeout(Duration::from_millis(args.header_timeout))
        .body_read_timeout(Duration::from_millis(args.body_timeout))
        .idle_timeout(Duration::from_millis(args.idle_timeout))
        .max_connections(args.max_connections)
        .on_accept_error(|report| eprintln!("{report}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::failed)?;
    runtime.block_on(serve(args.addr, verifier, config))
}

async fn serve(addr: SocketAddr, verifier: Verifier, config: ServerConfig) -> Result<(), Failure> {
    let layer = WebhookLayer::new(verifier).observe(|observation| match observation {
        Observation::Duplicate(webhook) => println!("{}", delivery_line(webhook, true)),
        Observation::Rejected(rejection) => eprintln!(
            "rejected: {} {} ({})",
            rejection.status().as_u16(),
            rejection.code(),
            rejection.message()
        ),
        _ => {}
    });
    let service = layer.layer(tower::service_fn(accept));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::failed(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().map_err(Failure::failed)?;
    eprintln!("listening on http://{local}/ (Ctrl-C to stop)");
    server::serve(listener, service, config, async {
        crate::signal::shutdown().await;
        eprintln!("stopping: answering requests in progress");
    })
    .await
    .map_err(Failure::failed)
}

/// The handler: every delivery that reaches it is verified and new.
async fn accept(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(webhook) = request.extensions().get::<VerifiedWebhook>() {
        println!("{}", delivery_line(webhook, false));
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// One stdout line for a verified delivery.
fn delivery_line(webhook: &VerifiedWebhook, duplicate: bool) -> Value {
    let mut line = json!({
        "style": webhook.style().as_str(),
        "dedup_key": webhook.dedup_key(),
        "duplicate": duplicate,
    });
    let (kind_field, event) = match webhook.message() {
        VerifiedMessage::Domain { envelope, .. } => (
            "domain",
            envelope
                .payload_bytes()
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or(Value::Null),
        ),
        VerifiedMessage::Standard { payload, .. } => ("type", payload.clone()),
        _ => ("type", webhook.json::<Value>().unwrap_or(Value::Null)),
    };
    line[kind_field] = Value::from(webhook.kind());
    line["event"] = event;
    line
}
