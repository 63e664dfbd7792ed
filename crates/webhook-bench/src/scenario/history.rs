//! History: a page query's latency as the store grows, and a retention soak.
//!
//! **Page latency** (`history`, and `history-postgres` on the Postgres store with a
//! PostgreSQL server the scenario starts). A sender on the embedded store (redb) with one paused
//! event-style endpoint (so nothing is sent); deliveries are published until the store
//! holds the small size (10,000), the page queries are timed, then publishing goes on to
//! the large size (1,000,000 in the full run) and the same queries are timed again. The
//! queries, 200 of each kind, each a page of 50: the newest deliveries of the
//! organization; a page deep in the walk (after a cursor half-way through the small
//! store, the same depth at both sizes); the deliveries of one status; the messages of one
//! of the ten resources. The goal is that a page costs
//! the same at either size (ratio of medians large ÷ small ≤ 2, which leaves room for a
//! deeper B-tree and the noise of a shared machine).
//!
//! **Retention soak** (`retention-soak`). A sender delivering to a counting server at a
//! steady 500 publishes/s about 1,000 entities in turn (so that idempotency windows, kept
//! two minutes, are a fixed set), with retention at 2 s for delivered deliveries, checked every
//! 500 ms; once on redb (the file's size is sampled every second) and once on Redis
//! (`used_memory` from `INFO memory`, with the `redis` feature). What is stored must stop
//! growing: the largest sample of the second half of the run may exceed the largest of the
//! first half by at most 25 % (redb grows its file in steps and reuses freed pages, Redis's
//! allocator keeps freed memory, so both plateau rather than shrink).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_sender::store::RedbStore;
use webhook_sender::{
    AllowList, DeliveryFilter, EndpointConfig, MessageFilter, OrganizationId, PageRequest, Publish,
    Retention, Sender, StatusFilter,
};

use super::e2e::{Store, build_sender};
use super::{BoxError, Mode, Settings};
use crate::http::{Tracker, counting_server, loopback_listener};
use crate::payload::{ORGANIZATION, SECRET};
use crate::report::{Row, Target};
use crate::stats::Histogram;

/// Queries of each kind per size.
const QUERIES: usize = 200;
/// Items per page.
const PAGE: usize = 50;
/// The page-latency goal: large ÷ small median at most this.
const MAX_GROWTH: f64 = 2.0;

fn sizes(mode: Mode) -> (usize, usize) {
    match mode {
        Mode::Full => (10_000, 1_000_000),
        Mode::Quick => (10_000, 100_000),
        Mode::Smoke => (1_000, 5_000),
    }
}

fn soak_length(mode: Mode) -> Duration {
    match mode {
        Mode::Full => Duration::from_secs(120),
        Mode::Quick => Duration::from_secs(20),
        Mode::Smoke => Duration::from_secs(4),
    }
}

/// Both scenarios' rows.
pub async fn run(settings: &Settings, page: bool, page_postgres: bool, soak: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for (wanted, store) in [(page, Store::Redb), (page_postgres, Store::Postgres)] {
        if wanted {
            rows.push(match page_latency(settings, store).await {
                Ok(row) => row,
                Err(error) => Row::failed(
                    page_scenario(store),
                    "page query latency",
                    error.to_string(),
                ),
            });
        }
    }
    if soak {
        for backend in [Soaked::Redb, Soaked::Redis] {
            rows.push(match retention_soak(settings, backend).await {
                Ok(row) => row,
                Err(error) => Row::failed(backend.name(), backend.what(), error.to_string()),
            });
        }
    }
    rows
}

/// Publishes deliveries `from..to` (one per event, resource `r-{n % 10}`).
async fn fill(sender: &Sender, from: usize, to: usize) -> Result<(), BoxError> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(from));
    let mut tasks = JoinSet::new();
    for _ in 0..64 {
        let (sender, next) = (sender.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= to {
                    return Ok::<(), webhook_sender::Error>(());
                }
                let publish = Publish::event(
                    ORGANIZATION,
                    EventType::TransactionConfirmed,
                    format!("r-{}", n % 10),
                    json!({"id": format!("r-{}", n % 10), "n": n}),
                );
                sender.publish(publish).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Medians in ms of each query kind; the deep page starts `depth` pages in.
async fn time_queries(sender: &Sender, depth: usize) -> Result<[f64; 4], BoxError> {
    let org = OrganizationId::from(ORGANIZATION);
    let page = PageRequest::new(PAGE)?;
    let all = DeliveryFilter::default();
    // A cursor `depth` pages into the walk.
    let mut deep = page.clone();
    for _ in 0..depth {
        let got = sender.deliveries(&org, &all, &deep).await?;
        match got.next_cursor {
            Some(cursor) => deep = page.clone().after(cursor),
            None => break,
        }
    }
    let pending = DeliveryFilter::default().status(StatusFilter::Pending);
    let resource = MessageFilter::default().resource("r-7");
    let histograms: [Histogram; 4] = Default::default();
    for _ in 0..QUERIES {
        let started = Instant::now();
        let first = sender.deliveries(&org, &all, &page).await?;
        histograms[0].record(started.elapsed());
        let started = Instant::now();
        let later = sender.deliveries(&org, &all, &deep).await?;
        histograms[1].record(started.elapsed());
        let started = Instant::now();
        let open = sender.deliveries(&org, &pending, &page).await?;
        histograms[2].record(started.elapsed());
        let started = Instant::now();
        let messages = sender.messages(&org, &resource, &page).await?;
        histograms[3].record(started.elapsed());
        if first.items.len() != PAGE
            || later.items.len() != PAGE
            || open.items.len() != PAGE
            || messages.items.len() != PAGE
        {
            return Err("a page came back short".into());
        }
    }
    Ok(histograms.map(|h| h.percentile_ms(50.0).unwrap_or(f64::NAN)))
}

/// The page-latency scenario's name on `store`.
#[must_use]
pub fn page_scenario(store: Store) -> &'static str {
    match store {
        Store::Postgres => "history-postgres",
        _ => "history",
    }
}

async fn page_latency(settings: &Settings, store: Store) -> Result<Row, BoxError> {
    let (small, large) = sizes(settings.mode);
    let (sender, _guard) = build_sender(settings, store).await?;
    sender
        .organizations()
        .set_secret(ORGANIZATION, HmacSecret::from_utf8(SECRET)?)
        .await?;
    let endpoint = EndpointConfig::event(
        ORGANIZATION,
        "http://127.0.0.1:9/",
        [EventType::TransactionConfirmed],
    )
    .paused();
    sender.endpoints().create(endpoint).await?;
    eprintln!("[history] filling {small} deliveries");
    let started = Instant::now();
    fill(&sender, 0, small).await?;
    // The same depth at both sizes: half-way through the small store.
    let depth = (small / 2 / PAGE).clamp(1, 100);
    let at_small = time_queries(&sender, depth).await?;
    eprintln!("[history] filling up to {large} deliveries");
    fill(&sender, small, large).await?;
    let fill_secs = started.elapsed().as_secs_f64();
    let at_large = time_queries(&sender, depth).await?;
    sender.shutdown().await?;
    let names = ["newest", "deep", "status", "resource"];
    let growth = at_small
        .iter()
        .zip(&at_large)
        .map(|(s, l)| l / s)
        .fold(0.0_f64, f64::max);
    let detail = names
        .iter()
        .zip(at_small.iter().zip(&at_large))
        .map(|(name, (s, l))| format!("{name} {s:.3} → {l:.3} ms"))
        .collect::<Vec<_>>()
        .join(", ");
    #[allow(clippy::cast_precision_loss)]
    let publish_rate = large as f64 / fill_secs;
    let backend = match store {
        Store::Postgres => "Postgres",
        _ => "redb",
    };
    Ok(Row::measured(
        page_scenario(store),
        format!("page of {PAGE}: median at {small} vs {large} stored deliveries ({backend})"),
    )
    .latency(Some(at_large[0]), None)
    .target(Target::checked(
        format!("large ÷ small median ≤ {MAX_GROWTH:.1}"),
        growth <= MAX_GROWTH,
    ))
    .note(format!("worst growth {growth:.2}×; {detail}"))
    .note(format!("filled at {publish_rate:.0} publishes/s"))
    .extra("small", small)
    .extra("large", large)
    .extra("median_ms_small", at_small.to_vec())
    .extra("median_ms_large", at_large.to_vec())
    .extra("growth", growth))
}

/// Where the soak runs.
#[derive(Debug, Clone, Copy)]
enum Soaked {
    Redb,
    Redis,
}

impl Soaked {
    fn name(self) -> &'static str {
        match self {
            Self::Redb => "retention-soak-redb",
            Self::Redis => "retention-soak-redis",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Redb => "redb file size",
            Self::Redis => "Redis used_memory",
        }
    }
}

/// Reads how much the store holds: the redb file's size, or Redis's `used_memory`.
enum Gauge {
    File(std::path::PathBuf),
    #[cfg(feature = "redis")]
    Redis(redis::aio::MultiplexedConnection),
}

impl Gauge {
    async fn bytes(&mut self) -> Result<u64, BoxError> {
        match self {
            Self::File(path) => Ok(std::fs::metadata(path)?.len()),
            #[cfg(feature = "redis")]
            Self::Redis(connection) => {
                let info: String = redis::cmd("INFO")
                    .arg("memory")
                    .query_async(connection)
                    .await?;
                info.lines()
                    .find_map(|line| line.strip_prefix("used_memory:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| "no used_memory in INFO".into())
            }
        }
    }
}

/// What must outlive the soak's sender.
#[allow(dead_code)]
enum Keep {
    Dir(tempfile::TempDir),
    #[cfg(feature = "redis")]
    Redis(webhook_testkit::RedisServer),
}

async fn soak_store(
    settings: &Settings,
    backend: Soaked,
    builder: webhook_sender::Builder,
) -> Result<Option<(webhook_sender::Builder, Gauge, Keep)>, BoxError> {
    match backend {
        Soaked::Redb => {
            let dir = tempfile::tempdir_in(&settings.scratch)?;
            let path = dir.path().join("soak.redb");
            let builder = builder.store(RedbStore::open(&path)?);
            Ok(Some((builder, Gauge::File(path), Keep::Dir(dir))))
        }
        #[cfg(feature = "redis")]
        Soaked::Redis => {
            use webhook_sender::store::{RedisConfig, RedisStore};
            let server = tokio::task::spawn_blocking(webhook_testkit::RedisServer::start)
                .await
                .map_err(|_| "redis-server could not be started (is it installed?)")?;
            let client = redis::Client::open(server.url())?;
            let connection = client.get_multiplexed_async_connection().await?;
            let store =
                RedisStore::connect(&RedisConfig::new(server.url()).prefix("soak:")).await?;
            Ok(Some((
                builder.store(store),
                Gauge::Redis(connection),
                Keep::Redis(server),
            )))
        }
        #[cfg(not(feature = "redis"))]
        Soaked::Redis => Ok(None),
    }
}

async fn retention_soak(settings: &Settings, backend: Soaked) -> Result<Row, BoxError> {
    let length = soak_length(settings.mode);
    let tracker = Arc::new(Tracker::new(10_000_000));
    let listener = loopback_listener().await?;
    let addr = listener.local_addr()?;
    let _server = counting_server(listener, tracker.clone());
    let retention = Retention::default()
        .delivered(Duration::from_secs(2))
        .failed(Duration::from_secs(2))
        .interval(Duration::from_millis(500));
    let builder = Sender::builder()
        .allow_private_networks(AllowList::loopback())
        .idle_poll(Duration::from_millis(100))
        .retention(retention);
    let Some((builder, mut gauge, _keep)) = soak_store(settings, backend, builder).await? else {
        return Ok(Row::skipped(
            backend.name(),
            backend.what(),
            "built without the `redis` feature",
        ));
    };
    let sender = builder.build().await?;
    sender
        .organizations()
        .set_secret(ORGANIZATION, HmacSecret::from_utf8(SECRET)?)
        .await?;
    let endpoint = EndpointConfig::event(
        ORGANIZATION,
        format!("http://{addr}/"),
        [EventType::TransactionConfirmed],
    )
    .max_concurrency(16);
    sender.endpoints().create(endpoint).await?;
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut published = 0_u64;
    let mut next_sample = Duration::ZERO;
    // A steady 500 publishes/s: retention, not the queue, decides what is kept.
    while started.elapsed() < length {
        for _ in 0..50 {
            // 1,000 entities in turn: their idempotency windows (kept two minutes) stay a
            // fixed set, so what is measured is retention, not the windows.
            let body = crate::payload::transaction(published % 1_000);
            let entity = crate::payload::entity(published % 1_000);
            sender
                .publish(Publish::event(
                    ORGANIZATION,
                    EventType::TransactionConfirmed,
                    entity,
                    body,
                ))
                .await?;
            published += 1;
        }
        if started.elapsed() >= next_sample {
            let size = gauge.bytes().await?;
            samples.push((started.elapsed().as_secs_f64(), size));
            next_sample += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sender.shutdown().await?;
    let half = samples.len() / 2;
    let first = samples[..half].iter().map(|s| s.1).max().unwrap_or(0);
    let second = samples[half..].iter().map(|s| s.1).max().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let growth = if first == 0 {
        f64::INFINITY
    } else {
        second as f64 / first as f64
    };
    let mib = |bytes: u64| {
        #[allow(clippy::cast_precision_loss)]
        let mib = bytes as f64 / (1024.0 * 1024.0);
        mib
    };
    Ok(Row::measured(
        backend.name(),
        format!(
            "{} under a steady 500 publishes/s for {} s, delivered kept 2 s",
            backend.what(),
            length.as_secs()
        ),
    )
    .target(Target::checked(
        "2nd-half max ≤ 1.25 × 1st-half max",
        growth <= 1.25,
    ))
    .note(format!(
        "{published} published ({} distinct bodies received); max {:.1} MiB (1st half) → {:.1} MiB (2nd half)",
        tracker.unique(),
        mib(first),
        mib(second)
    ))
    .extra("samples", json!(samples))
    .extra("growth", growth))
}
