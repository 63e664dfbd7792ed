//! Transactional publish on the Postgres store (`Sender::publish_in`): the webhook
//! commits with the caller's own write, or not at all. Each test starts its own
//! PostgreSQL server (`webhook_testkit::PostgresServer`).

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use sqlx::PgPool;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::{MemoryStore, PostgresConfig, PostgresStore};
use webhook_sender::{EndpointConfig, OrganizationId, Publish, PublishReceipt, Sender};
use webhook_testkit::PostgresServer;

const ORG: &str = "org-pg";
/// How long "nothing arrives" is watched for, after something that arrives later did.
const QUIET: Duration = Duration::from_millis(300);

/// A server, the caller's pool with its `transactions` table, and a webhook receiver.
struct Setup {
    server: PostgresServer,
    pool: PgPool,
    receiver: TestServer,
}

impl Setup {
    async fn start() -> Self {
        let server = tokio::task::spawn_blocking(PostgresServer::start)
            .await
            .unwrap();
        let pool = PgPool::connect(&server.url()).await.unwrap();
        sqlx::query("CREATE TABLE transactions (id text PRIMARY KEY, status text NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        Self {
            server,
            pool,
            receiver: TestServer::ok().await,
        }
    }

    /// A sender on the Postgres store; the first one configures the organization and an
    /// endpoint for `transaction.confirmed`.
    async fn sender(&self, configure: bool) -> Sender {
        let store = PostgresStore::connect(&PostgresConfig::new(self.server.url()))
            .await
            .unwrap();
        let sender = common::builder().store(store).build().await.unwrap();
        if configure {
            sender
                .organizations()
                .set_secret(ORG, HmacSecret::from_utf8("pg-org-secret").unwrap())
                .await
                .unwrap();
            let endpoint = EndpointConfig::event(
                ORG,
                self.receiver.url("/hook"),
                [EventType::TransactionConfirmed],
            );
            sender.endpoints().create(endpoint).await.unwrap();
        }
        sender
    }

    async fn insert(&self, id: &str) {
        sqlx::query("INSERT INTO transactions (id, status) VALUES ($1, 'PENDING')")
            .bind(id)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Inserts transaction `id` as pending, then, in a transaction left open, confirms it
    /// and publishes its `transaction.confirmed`.
    async fn confirm_in_transaction(
        &self,
        sender: &Sender,
        id: &str,
    ) -> (sqlx::Transaction<'static, sqlx::Postgres>, PublishReceipt) {
        self.insert(id).await;
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query("UPDATE transactions SET status = 'CONFIRMED' WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        let receipt = sender.publish_in(&mut tx, confirmed(id)).await.unwrap();
        (tx, receipt)
    }

    async fn status(&self, id: &str) -> String {
        sqlx::query_scalar("SELECT status FROM transactions WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Publishes a marker outside any transaction and waits until it and everything
    /// before it (`before` requests) arrived, then watches that nothing else does.
    async fn marker_arrives_alone(&self, sender: &Sender, before: usize) {
        sender.publish(confirmed("marker")).await.unwrap();
        let requests = self.receiver.wait_for(before + 1).await;
        tokio::time::sleep(QUIET).await;
        assert_eq!(self.receiver.len(), before + 1, "only the marker arrived");
        let last: serde_json::Value = serde_json::from_slice(&requests[before].body).unwrap();
        assert_eq!(last["data"]["id"], "marker");
    }
}

fn confirmed(id: &str) -> Publish {
    Publish::event(
        ORG,
        EventType::TransactionConfirmed,
        id,
        json!({"id": id, "status": "CONFIRMED", "payer": "jane@example.com",
               "metadata": {"internal": true}}),
    )
}

fn org() -> OrganizationId {
    OrganizationId::from(ORG)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_sends_nothing_and_stores_nothing() {
    let setup = Setup::start().await;
    let sender = setup.sender(true).await;
    let (tx, receipt) = setup.confirm_in_transaction(&sender, "tx-1").await;
    assert_eq!(receipt.deliveries.len(), 1);
    tx.rollback().await.unwrap();

    setup.marker_arrives_alone(&sender, 0).await;
    assert_eq!(setup.status("tx-1").await, "PENDING");
    assert!(
        sender
            .message(&org(), receipt.event_id)
            .await
            .unwrap()
            .is_none()
    );
    let delivery = sender
        .delivery(&org(), receipt.deliveries[0].id)
        .await
        .unwrap();
    assert!(delivery.is_none(), "no delivery left behind");
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_sends_exactly_once_redacted_with_its_idempotency_key() {
    let setup = Setup::start().await;
    let sender = setup.sender(true).await;
    let (tx, receipt) = setup.confirm_in_transaction(&sender, "tx-1").await;
    // Not visible to dispatch (nor to history) before the commit.
    tokio::time::sleep(QUIET).await;
    assert_eq!(setup.receiver.len(), 0, "nothing is sent before the commit");
    assert!(
        sender
            .message(&org(), receipt.event_id)
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();

    let requests = setup.receiver.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["id"], receipt.event_id.to_string());
    assert_eq!(body["idempotencyKey"], receipt.idempotency_key);
    assert_eq!(body["data"]["payer"], "j***@example.com", "redacted");
    assert!(body["data"].get("metadata").is_none(), "redacted");
    assert_eq!(setup.status("tx-1").await, "CONFIRMED");

    // The same event id again, in another transaction: the first receipt, nothing new.
    let mut again = setup.pool.begin().await.unwrap();
    let repeated = sender
        .publish_in(
            &mut again,
            confirmed("tx-1").with_event_id(receipt.event_id),
        )
        .await
        .unwrap();
    again.commit().await.unwrap();
    assert_eq!(repeated, receipt);
    // A normal publish of the same entity within the window shares the key.
    let normal = sender.publish(confirmed("tx-1")).await.unwrap();
    assert_eq!(normal.idempotency_key, receipt.idempotency_key);
    setup.receiver.wait_for(2).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        setup.receiver.len(),
        2,
        "the transactional publish was sent once"
    );
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_started_after_the_commit_delivers() {
    let setup = Setup::start().await;
    let publisher = setup.sender(true).await;
    let mut tx = setup.pool.begin().await.unwrap();
    let receipt = publisher
        .publish_in(&mut tx, confirmed("tx-1"))
        .await
        .unwrap();
    // The only sender goes away before the caller commits.
    publisher.shutdown().await.unwrap();
    drop(publisher);
    tx.commit().await.unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(setup.receiver.len(), 0, "no sender is running");

    let later = setup.sender(false).await;
    let requests = setup.receiver.wait_for(1).await;
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["id"], receipt.event_id.to_string());
    later.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_of_the_callers_own_statement_after_publishing_sends_nothing() {
    let setup = Setup::start().await;
    let sender = setup.sender(true).await;
    setup.insert("tx-1").await;

    let mut tx = setup.pool.begin().await.unwrap();
    sender.publish_in(&mut tx, confirmed("tx-2")).await.unwrap();
    // The caller's own constraint fails after the publish: the transaction is aborted.
    let duplicate = sqlx::query("INSERT INTO transactions (id, status) VALUES ('tx-1', 'X')")
        .execute(&mut *tx)
        .await;
    assert!(duplicate.is_err(), "the primary key refuses a second tx-1");
    let after = sqlx::query("SELECT 1").execute(&mut *tx).await;
    assert!(after.is_err(), "the transaction is aborted");
    drop(tx); // rolled back when dropped

    setup.marker_arrives_alone(&sender, 0).await;
    sender.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_in_needs_a_postgres_sender_and_an_open_read_committed_transaction() {
    let setup = Setup::start().await;
    let memory = common::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .unwrap();
    let mut tx = setup.pool.begin().await.unwrap();
    let refused = memory.publish_in(&mut tx, confirmed("tx-1")).await;
    let error = refused.unwrap_err();
    assert!(error.is_invalid(), "{error}");
    assert!(error.to_string().contains("PostgresStore"), "{error}");
    tx.rollback().await.unwrap();

    let sender = setup.sender(true).await;
    let mut plain = setup.pool.acquire().await.unwrap();
    let error = sender
        .publish_in(&mut plain, confirmed("tx-1"))
        .await
        .unwrap_err();
    assert!(error.is_invalid(), "{error}");
    assert!(error.to_string().contains("transaction"), "{error}");
    drop(plain);
    let mut serializable = setup.pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        .execute(&mut *serializable)
        .await
        .unwrap();
    let error = sender
        .publish_in(&mut serializable, confirmed("tx-1"))
        .await
        .unwrap_err();
    assert!(error.is_invalid(), "{error}");
    assert!(error.to_string().contains("read committed"), "{error}");
    serializable.commit().await.unwrap();
    setup.marker_arrives_alone(&sender, 0).await;
    memory.shutdown().await.unwrap();
    sender.shutdown().await.unwrap();
}
