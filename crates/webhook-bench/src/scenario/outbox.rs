//! What a transactional publish ([`Sender::publish_in`]) adds to the caller's own
//! transaction (`txn-postgres`), next to what one more single-row `INSERT` adds to it.
//!
//! **The transactions.** On a PostgreSQL server this scenario starts (`fsync` and
//! `synchronous_commit` on), one client runs, one after another:
//!
//! - *base*: `BEGIN; UPDATE transactions SET status = … WHERE id = …; COMMIT` (a wallet
//!   platform's status change);
//! - *insert*: the same plus one `INSERT INTO ledger …` of one row;
//! - *publish*: the same plus `publish_in` of its `transaction.confirmed` event to one
//!   subscribed endpoint (paused, so that no delivery competes with the transactions: a
//!   paused endpoint still receives its deliveries into the queue).
//!
//! Variants alternate in short batches so that drift on a shared machine hits all three
//! alike. The cost of a variant is its mean time per transaction minus the base's; the
//! figure is `publish cost ÷ insert cost` (goal ≤ 2), for the statements before `COMMIT`
//! (what the caller's transaction holds its locks for) and for the whole transaction with
//! its commit. One client, so there is no group commit to blur the figures.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;
use webhook_core::event::EventType;
use webhook_sender::store::PostgresStore;
use webhook_sender::{AllowList, EndpointConfig, Publish, Sender};

use super::{BoxError, Mode, Settings};
use crate::payload::{ORGANIZATION, SECRET};
use crate::report::{Row, Target};

/// The scenario's name.
pub const SCENARIO: &str = "txn-postgres";
/// The goal: a publish adds at most this many single-row `INSERT`s' worth of time.
const GOAL: f64 = 2.0;
const DESCRIPTION: &str = "time a transactional publish adds to the caller's transaction \
                           ÷ what one single-row INSERT adds (Postgres, one client)";
/// Transactions per variant in one batch.
const BATCH: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Base,
    Insert,
    Publish,
}

/// Time spent per variant: before the commit, and in all.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    statements: Duration,
    total: Duration,
    count: u32,
}

impl Spent {
    fn mean_us(self, total: bool) -> f64 {
        let spent = if total { self.total } else { self.statements };
        spent.as_secs_f64() * 1e6 / f64::from(self.count.max(1))
    }
}

/// Runs the scenario.
pub async fn run(settings: &Settings) -> Row {
    match measure(settings).await {
        Ok(row) => row,
        Err(error) => Row::failed(SCENARIO, DESCRIPTION, error.to_string()),
    }
}

#[allow(clippy::cast_precision_loss)]
async fn measure(settings: &Settings) -> Result<Row, BoxError> {
    let server = super::e2e::start_postgres().await?;
    let pool = sqlx::PgPool::connect(&server.url()).await?;
    for table in [
        "CREATE TABLE transactions (id text PRIMARY KEY, status text NOT NULL)",
        "CREATE TABLE ledger (id bigserial PRIMARY KEY, transaction_id text NOT NULL, \
         amount bigint NOT NULL)",
    ] {
        sqlx::query(table).execute(&pool).await?;
    }
    let store = PostgresStore::open(pool.clone(), "outbox").await?;
    let sender = Sender::builder()
        .store(store)
        .allow_private_networks(AllowList::loopback())
        .build()
        .await?;
    sender
        .organizations()
        .set_secret(
            ORGANIZATION,
            webhook_core::keys::HmacSecret::from_utf8(SECRET)?,
        )
        .await?;
    let endpoint = sender
        .endpoints()
        .create(EndpointConfig::event(
            ORGANIZATION,
            "http://127.0.0.1:9/unused",
            [EventType::TransactionConfirmed],
        ))
        .await?;
    sender
        .endpoints()
        .pause(&ORGANIZATION.into(), endpoint)
        .await?;

    let batches = match settings.mode {
        Mode::Smoke => 1,
        Mode::Quick => 6,
        Mode::Full => 30,
    };
    let mut connection = pool.acquire().await?;
    let mut spent = [Spent::default(); 3];
    let mut n: u64 = 0;
    // One unmeasured batch of each warms the caches and the prepared statements.
    for round in 0..=batches {
        for (slot, variant) in [Variant::Base, Variant::Insert, Variant::Publish]
            .into_iter()
            .enumerate()
        {
            for _ in 0..BATCH {
                n += 1;
                let id = format!("tx-{n}");
                sqlx::query("INSERT INTO transactions (id, status) VALUES ($1, 'PENDING')")
                    .bind(&id)
                    .execute(&mut *connection)
                    .await?;
                let started = Instant::now();
                let mut tx = connection.begin().await?;
                sqlx::query("UPDATE transactions SET status = 'CONFIRMED' WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                match variant {
                    Variant::Base => {}
                    Variant::Insert => {
                        sqlx::query("INSERT INTO ledger (transaction_id, amount) VALUES ($1, 100)")
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Variant::Publish => {
                        sender
                            .publish_in(
                                &mut tx,
                                Publish::event(
                                    ORGANIZATION,
                                    EventType::TransactionConfirmed,
                                    id.as_str(),
                                    json!({"id": id, "status": "CONFIRMED", "amount": "100"}),
                                ),
                            )
                            .await?;
                    }
                }
                let statements = started.elapsed();
                tx.commit().await?;
                if round > 0 {
                    let entry = &mut spent[slot];
                    entry.statements += statements;
                    entry.total += started.elapsed();
                    entry.count += 1;
                }
            }
        }
    }
    drop(connection);
    sender.shutdown().await?;
    pool.close().await;
    drop(server);

    let [base, insert, publish] = spent;
    let cost = |variant: Spent, total: bool| variant.mean_us(total) - base.mean_us(total);
    let ratio = |total: bool| cost(publish, total) / cost(insert, total).max(1.0);
    let statements_ratio = ratio(false);
    let total_ratio = ratio(true);
    let per_second = 1e6 / publish.mean_us(true);
    Ok(Row::measured(SCENARIO, DESCRIPTION)
    .ops(per_second)
    .target(Target::checked(
        format!("publish adds ≤ {GOAL}× a single-row INSERT"),
        statements_ratio <= GOAL,
    ))
    .extra("base_us", base.mean_us(true))
    .extra("base_statements_us", base.mean_us(false))
    .extra("insert_added_us", cost(insert, true))
    .extra("insert_added_statements_us", cost(insert, false))
    .extra("publish_added_us", cost(publish, true))
    .extra("publish_added_statements_us", cost(publish, false))
    .extra("ratio_statements", statements_ratio)
    .extra("ratio_total", total_ratio)
    .note(format!(
        "before COMMIT: base {:.0} µs, +INSERT {:.0} µs, +publish_in {:.0} µs → {statements_ratio:.1}×; \
         with COMMIT: base {:.0} µs, +INSERT {:.0} µs, +publish_in {:.0} µs → {total_ratio:.1}×; \
         {} transactions per variant; ops/s = publishing transactions per second",
        base.mean_us(false),
        cost(insert, false),
        cost(publish, false),
        base.mean_us(true),
        cost(insert, true),
        cost(publish, true),
        base.count,
    )))
}
