//! End-to-end deliveries per second, from `publish` to the receiver's 2xx on 127.0.0.1,
//! next to a plain hyper client posting the same bodies to the same server at the same
//! concurrency.
//!
//! **Sender side.** One event-style endpoint with `max_concurrency` = the concurrency;
//! `publishers` tasks publish `transaction.confirmed` events about distinct transactions
//! (so per-resource ordering never holds one back), keeping at most `window` events
//! published but not yet received: a publisher takes a permit before publishing and the
//! server returns it on the event's first receipt. The window (4 × the concurrency) keeps
//! the sender's queue from running dry without letting it grow without bound, so the rate
//! is the sender's and the latency is publish → 2xx under saturation (Little's law: about
//! window ÷ rate).
//!
//! **Baseline.** `concurrency` tasks, each posting the same event body (same size, same
//! sequence marker) with a plain pooled hyper client and waiting for the answer.
//!
//! **Both.** The same counting server (reads the body, finds the sequence number, answers
//! 200); a warm-up, then the measured window; the rate is the number of distinct events
//! first received inside the window divided by its length, and the latency is from just
//! before `publish` (or the request) to the server's receipt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::{MemoryStore, PostgresConfig, PostgresStore, RedbStore};
use webhook_sender::{AllowList, EndpointConfig, Publish, Sender};

use super::window::{Run, drain, per_delivery};
use super::{BoxError, Failures, Measurement, Settings, best_of_rounds, both_sides, closing_notes};
use crate::http::{Tracker, counting_server, exchange, json_post, loopback_listener, plain_client};
use crate::payload::{self, ORGANIZATION, SECRET, Template};
use crate::report::{Row, Target};

/// Where the sender queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `webhook_sender::store::MemoryStore`.
    Memory,
    /// `webhook_sender::store::RedbStore`: one fsync per batch of commits.
    Redb,
    /// The Redis store, on a `redis-server` without persistence that this scenario starts.
    Redis,
    /// The Redis store, on a `redis-server` with `appendonly yes`, `appendfsync always`
    /// (acknowledged writes survive a Redis crash, like redb's fsynced commits).
    RedisAof,
    /// The Postgres store, on a PostgreSQL server this scenario starts (`fsync` and
    /// `synchronous_commit` on: acknowledged means committed to disk).
    Postgres,
}

impl Store {
    /// The scenario's name.
    #[must_use]
    pub fn scenario(self) -> &'static str {
        match self {
            Self::Memory => "e2e-memory",
            Self::Redb => "e2e-redb",
            Self::Redis => "e2e-redis",
            Self::RedisAof => "e2e-redis-aof",
            Self::Postgres => "e2e-postgres",
        }
    }

    /// The target ratio to the plain hyper baseline.
    #[must_use]
    pub fn target(self) -> f64 {
        match self {
            Self::Memory => 0.60,
            Self::Redb => 0.40,
            Self::Redis | Self::RedisAof => 0.25,
            Self::Postgres => 0.15,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Memory => "deliveries/s, publish → 2xx, memory store",
            Self::Redb => "deliveries/s, publish → 2xx, embedded durable store (redb)",
            Self::Redis => {
                "deliveries/s, publish → 2xx, Redis store (redis-server without persistence)"
            }
            Self::RedisAof => {
                "deliveries/s, publish → 2xx, Redis store (redis-server with appendfsync always)"
            }
            Self::Postgres => {
                "deliveries/s, publish → 2xx, Postgres store (fsync and synchronous_commit on)"
            }
        }
    }
}

/// Runs the scenario for `store`: baseline and sender, `settings.rounds` times each,
/// alternating; the best of each side counts.
pub async fn run(settings: &Settings, store: Store) -> Row {
    let name = store.scenario();
    if let Some(why) = unavailable(store) {
        return Row::skipped(name, store.description(), why)
            .target(Target::ratio_at_least(store.target()));
    }
    let best = best_of_rounds(
        settings.rounds,
        "baseline",
        |round| async move { baseline(settings, &format!("{name} baseline #{round}")).await },
        "sender",
        |round| async move { sender(settings, store, &format!("{name} sender #{round}")).await },
    )
    .await;
    let (base, ours) = match best {
        Ok(best) => best,
        Err(why) => return Row::failed(name, store.description(), why),
    };
    let mut row = Row::measured(name, store.description())
        .ops(ours.ops_per_sec)
        .latency(ours.p50_ms, ours.p99_ms)
        .baseline(
            format!(
                "plain hyper client, same server and bodies, concurrency {}",
                settings.concurrency
            ),
            base.ops_per_sec,
        )
        .target(Target::ratio_at_least(store.target()))
        .extra("concurrency", settings.concurrency)
        .extra("window", settings.window)
        .note(format!(
            "window {} events, HTTP concurrency {}",
            settings.window, settings.concurrency
        ));
    row = both_sides(row, settings, &ours, &base);
    if let Some(commits) = ours.commits_per_delivery {
        row = row.note(format!("{commits:.2} redb commits per delivery"));
    }
    closing_notes(
        row,
        settings.rounds,
        (&ours, "publish errors"),
        (&base, "baseline errors"),
    )
}

/// Why the scenario cannot run in this build, if it cannot.
#[must_use]
pub fn unavailable(store: Store) -> Option<String> {
    match store {
        Store::Memory | Store::Redb | Store::Postgres => None,
        Store::Redis | Store::RedisAof => redis::unavailable(),
    }
}

/// The plain hyper client posting event bodies at the settings' concurrency.
///
/// # Errors
/// When the server cannot be started.
pub async fn baseline(settings: &Settings, label: &str) -> Result<Measurement, BoxError> {
    let capacity = settings.e2e_capacity();
    let tracker = Arc::new(Tracker::new(capacity));
    let server = counting_server(loopback_listener().await?, Arc::clone(&tracker));
    let uri: http::Uri = server.url().parse()?;
    let client = plain_client(settings.concurrency);
    let template = Arc::new(Template::event());
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let run = Run::start(label, &tracker, settings);
    let window = run.window;

    let mut tasks = JoinSet::new();
    for _ in 0..settings.concurrency {
        let (tracker, client, template, next, errors, uri) = (
            Arc::clone(&tracker),
            client.clone(),
            Arc::clone(&template),
            Arc::clone(&next),
            Arc::clone(&errors),
            uri.clone(),
        );
        tasks.spawn(async move {
            while tracker.now_ns() < window.end_ns {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= capacity as u64 {
                    break;
                }
                let request = json_post(&uri, template.render(seq));
                tracker.mark_sent(seq);
                match exchange(&client, request).await {
                    Ok(status) if status.is_success() => {}
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let (cores, joined) = run
        .finish(&tracker, &mut tasks, "finishing", Duration::from_secs(30))
        .await;
    run.stop();
    drop(server);
    if !joined {
        return Err("baseline clients did not finish within 30 s of the window's end".into());
    }
    Ok(window.measure(&tracker, errors.load(Ordering::Relaxed), cores))
}

/// The sender on `store`, publishing as described in the module docs.
///
/// # Errors
/// When the server, the store or the sender cannot be set up, or the events published
/// are not all received within 60 s of the window's end.
pub async fn sender(
    settings: &Settings,
    store: Store,
    label: &str,
) -> Result<Measurement, BoxError> {
    let capacity = settings.e2e_capacity();
    let permits = Arc::new(Semaphore::new(settings.window));
    let tracker = Arc::new(Tracker::with_window(capacity, Arc::clone(&permits)));
    let server = counting_server(loopback_listener().await?, Arc::clone(&tracker));
    let (sender, guard) = build_sender(settings, store).await?;
    sender
        .organizations()
        .set_secret(ORGANIZATION, HmacSecret::from_utf8(SECRET)?)
        .await?;
    let concurrency = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
    sender
        .endpoints()
        .create(
            EndpointConfig::event(ORGANIZATION, server.url(), [payload::EVENT_TYPE])
                .max_concurrency(concurrency),
        )
        .await?;

    let commits_before = guard.commits().unwrap_or(0);
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Failures::default());
    let run = Run::start(label, &tracker, settings);
    let window = run.window;

    let mut tasks = JoinSet::new();
    for _ in 0..settings.publishers {
        let (tracker, sender, permits, next, failures) = (
            Arc::clone(&tracker),
            sender.clone(),
            Arc::clone(&permits),
            Arc::clone(&next),
            Arc::clone(&failures),
        );
        tasks.spawn(async move {
            while tracker.now_ns() < window.end_ns {
                let Ok(permit) = permits.acquire().await else {
                    break;
                };
                permit.forget();
                if tracker.now_ns() >= window.end_ns {
                    break;
                }
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= capacity as u64 {
                    break;
                }
                tracker.mark_sent(seq);
                let publish = Publish::event(
                    ORGANIZATION,
                    payload::EVENT_TYPE,
                    payload::entity(seq),
                    payload::transaction(seq),
                );
                if let Err(error) = sender.publish(publish).await {
                    permits.add_permits(1);
                    failures.record(error);
                }
            }
        });
    }
    let (cores, publishers_done) = run
        .finish(&tracker, &mut tasks, "draining", Duration::from_secs(60))
        .await;
    // Publishers blocked on the window wake as deliveries arrive; past the window they stop.
    permits.close();
    let taken = next.load(Ordering::Relaxed).min(capacity as u64);
    let failed = failures.count();
    let published = taken.saturating_sub(failed);
    let drained = drain(&tracker, published, "published events").await;
    run.stop();
    let commits = guard
        .commits()
        .map(|commits| commits.saturating_sub(commits_before));
    let shutdown = sender.shutdown().await;
    drop(server);
    drop(guard);
    if !publishers_done {
        return Err("publishers did not finish within 60 s of the window's end".into());
    }
    drained?;
    shutdown?;
    failures.report(label, "publishes");
    let mut measurement = window.measure(&tracker, failed, cores);
    measurement.commits_per_delivery = per_delivery(commits, published);
    Ok(measurement)
}

/// What must outlive the sender: a temporary directory, a Redis or PostgreSQL server.
#[derive(Debug)]
#[allow(dead_code)]
pub(crate) enum Guard {
    None,
    Dir(tempfile::TempDir, RedbStore),
    Redis(webhook_testkit::RedisServer),
    Postgres(webhook_testkit::PostgresServer),
}

impl Guard {
    /// The redb store's write transactions so far (each one fsync); `None` for the other
    /// stores.
    pub(crate) fn commits(&self) -> Option<u64> {
        match self {
            Self::Dir(_, store) => Some(store.commits()),
            Self::None | Self::Redis(_) | Self::Postgres(_) => None,
        }
    }
}

/// A sender on `store` as the scenarios run it: loopback endpoints allowed, the settings'
/// worker slots, the store in a temporary directory under the scratch directory (redb) or
/// on a throwaway `redis-server` or PostgreSQL server.
pub(crate) async fn build_sender(
    settings: &Settings,
    store: Store,
) -> Result<(Sender, Guard), BoxError> {
    let builder = Sender::builder()
        .allow_private_networks(AllowList::loopback())
        .workers(settings.workers);
    let (builder, guard) = match store {
        Store::Memory => (builder.store(MemoryStore::new()), Guard::None),
        Store::Redb => {
            std::fs::create_dir_all(&settings.scratch)?;
            let dir = tempfile::Builder::new()
                .prefix("webhook-bench-e2e-")
                .tempdir_in(&settings.scratch)?;
            let store = RedbStore::open(dir.path().join("e2e.redb"))?;
            (builder.store(store.clone()), Guard::Dir(dir, store))
        }
        Store::Redis | Store::RedisAof => {
            let (builder, server) = redis::configure(builder, store == Store::RedisAof).await?;
            (builder, Guard::Redis(server))
        }
        Store::Postgres => {
            let server = start_postgres().await?;
            let store =
                PostgresStore::connect(&PostgresConfig::new(server.url()).schema("bench")).await?;
            (builder.store(store), Guard::Postgres(server))
        }
    };
    let started = Instant::now();
    let sender = builder.build().await?;
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!("note: the sender took {:?} to start", started.elapsed());
    }
    Ok((sender, guard))
}

/// Starts a throwaway PostgreSQL server (the testkit fails loudly when none is installed).
pub(crate) async fn start_postgres() -> Result<webhook_testkit::PostgresServer, BoxError> {
    tokio::task::spawn_blocking(webhook_testkit::PostgresServer::start)
        .await
        .map_err(|_| "PostgreSQL could not be started (is it installed?)".into())
}

#[cfg(not(feature = "redis"))]
mod redis {
    use webhook_sender::Builder;

    use super::BoxError;

    pub(super) fn unavailable() -> Option<String> {
        Some("Redis store not available: built without the `redis` feature".to_owned())
    }

    pub(super) async fn configure(
        _builder: Builder,
        _aof: bool,
    ) -> Result<(Builder, webhook_testkit::RedisServer), BoxError> {
        Err("Redis store not available: built without the `redis` feature".into())
    }
}

#[cfg(feature = "redis")]
mod redis {
    use webhook_sender::Builder;
    use webhook_sender::store::{RedisConfig, RedisStore};
    use webhook_testkit::RedisServer;

    use super::BoxError;

    pub(super) fn unavailable() -> Option<String> {
        None
    }

    /// Starts a throwaway `redis-server` (it fails loudly when none is installed) and
    /// connects the store to it.
    pub(super) async fn configure(
        builder: Builder,
        aof: bool,
    ) -> Result<(Builder, RedisServer), BoxError> {
        let server = tokio::task::spawn_blocking(move || {
            if aof {
                RedisServer::start_with_aof()
            } else {
                RedisServer::start()
            }
        })
        .await
        .map_err(|_| "redis-server could not be started (is it installed?)")?;
        let store = RedisStore::connect(&RedisConfig::new(server.url()).prefix("bench:")).await?;
        Ok((builder.store(store), server))
    }
}
