//! A wallet platform confirms a transaction and publishes `transaction.confirmed` in the
//! same Postgres transaction ([`Sender::publish_in`]): the status change and its webhook
//! commit together, or neither does. Run with `cargo run -p webhook-examples --example
//! transactions` (a throwaway PostgreSQL server, or `DATABASE_URL`).
//!
//! Two confirmations are attempted. The first commits: its webhook is delivered once. The
//! second publishes, then the platform's own ledger constraint refuses the debit, so the
//! transaction rolls back: its status stays `PENDING` and no webhook is ever sent.
//!
//! A tokio-postgres application cannot hand its transaction over: a transaction lives on
//! one connection, and the sender writes through sqlx. It runs the transactions that
//! publish on a sqlx connection to the same database instead (both drivers live happily
//! in one process; only the statements that must commit with the webhook move), as
//! ARCHITECTURE.md ("Postgres store") describes.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::json;
use sqlx::PgPool;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_receiver::server::{ServerConfig, serve};
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};
use webhook_sender::store::{PostgresConfig, PostgresStore};
use webhook_sender::{AllowList, EndpointConfig, EventId, Publish, Sender};

/// The organization and its webhook secret in this example.
const ORG: &str = "wallet-platform";
const SECRET: &str = "transactions-example-secret";
/// How long the example waits for the committed webhook.
const WAIT: Duration = Duration::from_secs(10);
/// How long it then watches that the rolled-back one never comes.
const QUIET: Duration = Duration::from_millis(500);

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `(transaction id, status)` in the platform's table after both attempts.
    pub statuses: Vec<(String, String)>,
    /// The transaction ids of the `transaction.confirmed` webhooks the receiver got.
    pub delivered: Vec<String>,
}

/// Runs the example against `database_url` (tables `example_transactions` and
/// `example_ledger`, the sender's tables in schema `webhook_example`).
///
/// # Errors
/// When Postgres, the sender or the receiver fails.
pub async fn run(database_url: &str) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    let pool = PgPool::connect(database_url).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS example_transactions (
             id text PRIMARY KEY, amount_cents bigint NOT NULL, status text NOT NULL);
         CREATE TABLE IF NOT EXISTS example_ledger (
             transaction_id text PRIMARY KEY,
             amount_cents bigint NOT NULL CHECK (amount_cents <= 1000000));",
    )
    .execute(&pool)
    .await?;

    // The receiver: verifies, then records which transaction each webhook confirmed.
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&delivered);
    let handler = move |webhook: VerifiedWebhook| {
        let seen = Arc::clone(&seen);
        async move {
            if let Some(event) = webhook.event() {
                let id = event.data["id"].as_str().unwrap_or_default().to_owned();
                println!("receiver: {} for {id}", event.event_type.as_str());
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            }
            "ok"
        }
    };
    let app = Router::new()
        .route("/webhook", post(handler))
        .layer(WebhookLayer::new(Verifier::event_secrets([SECRET])?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhook", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(serve(listener, app, ServerConfig::default(), async {
        let _ = stopped.await;
    }));

    // The sender, on the platform's own database.
    let store =
        PostgresStore::connect(&PostgresConfig::new(database_url).schema("webhook_example"))
            .await?;
    let sender = Sender::builder()
        .store(store)
        .allow_private_networks(AllowList::loopback())
        .idle_poll(Duration::from_millis(200))
        .build()
        .await?;
    sender
        .organizations()
        .set_secret(ORG, HmacSecret::from_utf8(SECRET)?)
        .await?;
    sender
        .endpoints()
        .create(EndpointConfig::event(
            ORG,
            url,
            [EventType::TransactionConfirmed],
        ))
        .await?;

    let small = format!("tx-{}", EventId::generate());
    let large = format!("tx-{}", EventId::generate());
    for (id, amount) in [(&small, 12_50), (&large, 5_000_000)] {
        sqlx::query("INSERT INTO example_transactions VALUES ($1, $2, 'PENDING')")
            .bind(id)
            .bind(amount)
            .execute(&pool)
            .await?;
        match confirm(&pool, &sender, id, amount).await {
            Ok(()) => println!("platform: {id} confirmed, webhook committed with it"),
            Err(error) => println!("platform: {id} not confirmed ({error}); rolled back"),
        }
    }

    let deadline = Instant::now() + WAIT;
    while delivered
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(QUIET).await;
    sender.shutdown().await?;
    let _ = stop.send(());
    receiver.await??;

    let mut statuses = Vec::new();
    for id in [&small, &large] {
        let status: String =
            sqlx::query_scalar("SELECT status FROM example_transactions WHERE id = $1")
                .bind(id)
                .fetch_one(&pool)
                .await?;
        statuses.push((id.clone(), status));
    }
    let delivered = delivered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Summary {
        statuses,
        delivered,
    })
}

/// Confirms a transaction: its status, its ledger debit and its webhook, in one
/// transaction. Any failure rolls all three back (the transaction is dropped unfinished).
async fn confirm(
    pool: &PgPool,
    sender: &Sender,
    id: &str,
    amount_cents: i64,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE example_transactions SET status = 'CONFIRMED' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let event = Publish::event(
        ORG,
        EventType::TransactionConfirmed,
        id,
        json!({"id": id, "status": "CONFIRMED", "amountCents": amount_cents}),
    );
    sender.publish_in(&mut tx, event).await?;
    // The platform's own write after the publish; its CHECK refuses large debits.
    sqlx::query("INSERT INTO example_ledger VALUES ($1, $2)")
        .bind(id)
        .bind(amount_cents)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
