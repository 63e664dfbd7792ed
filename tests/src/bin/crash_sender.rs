//! Child program of the crash tests: one sender process on a redb store. It publishes the
//! events it is told to, delivers until it is killed (the tests use SIGKILL) or until its
//! stdin closes, which makes it shut down gracefully.
//!
//! ```text
//! crash_sender (--store PATH | --redis URL --prefix P --consumer NAME
//!               | --postgres URL --schema S)
//!              --url URL --secret SECRET --indices FILE [--setup]
//!              [--workers N] [--publishers N] [--lease-ms N] [--timeout-ms N]
//! ```
//!
//! The defaults of `--workers`, `--publishers` and `--lease-ms` are
//! [`webhook_e2e::crash`]'s `WORKERS`, `PUBLISHERS` and `LEASE`.
//!
//! `--store` runs on an embedded redb file; `--redis` on a Redis store shared with other
//! nodes (same URL and prefix, a consumer name of its own); `--postgres` on a Postgres
//! store shared with other nodes (same URL and schema).
//!
//! `--setup` stores the organization secret and creates the event-style endpoint (a
//! restarted process finds both in the store). `FILE` holds one event index per line; event
//! `i` is `transaction.confirmed` about entity `tx-<i>` with data `{"n": i}`.
//!
//! Standard output, one line each, written as it happens (so lines printed before a SIGKILL
//! are never lost): `ready`, then `acked <index> <delivery id>` when a publish has returned
//! (the delivery is durably queued), `published` when every index is acknowledged, and
//! `stopped` after a graceful shutdown. Errors go to standard error, with exit code 2.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use webhook_core::event::EventType;
use webhook_core::keys::HmacSecret;
use webhook_e2e::crash;
use webhook_redis::RedisConfig;
use webhook_sender::store::{PostgresConfig, PostgresStore, RedbStore, RedisStore};
use webhook_sender::{AllowList, EndpointConfig, Publish, RetryPolicy, Sender};

/// The organization every event belongs to.
const ORGANIZATION: &str = "org-crash";

#[derive(Debug)]
enum Backend {
    Redb(PathBuf),
    Redis {
        url: String,
        prefix: String,
        consumer: String,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

#[derive(Debug)]
struct Args {
    backend: Backend,
    url: String,
    secret: String,
    indices: PathBuf,
    setup: bool,
    workers: usize,
    publishers: usize,
    lease: Duration,
    timeout: Duration,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut args = std::env::args().skip(1);
        let mut store = None;
        let mut redis = None;
        let mut prefix = String::from("crash:");
        let mut consumer = String::from("node");
        let mut postgres = None;
        let mut schema = String::from("crash");
        let mut url = None;
        let mut secret = None;
        let mut indices = None;
        let mut parsed = Self {
            backend: Backend::Redb(PathBuf::new()),
            url: String::new(),
            secret: String::new(),
            indices: PathBuf::new(),
            setup: false,
            workers: crash::WORKERS,
            publishers: crash::PUBLISHERS,
            lease: crash::LEASE,
            timeout: Duration::from_millis(1500),
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let number = |text: String| {
                text.parse::<u64>()
                    .map_err(|_| format!("{flag} needs a number, not {text:?}"))
            };
            match flag.as_str() {
                "--store" => store = Some(PathBuf::from(value()?)),
                "--redis" => redis = Some(value()?),
                "--prefix" => prefix = value()?,
                "--consumer" => consumer = value()?,
                "--postgres" => postgres = Some(value()?),
                "--schema" => schema = value()?,
                "--url" => url = Some(value()?),
                "--secret" => secret = Some(value()?),
                "--indices" => indices = Some(PathBuf::from(value()?)),
                "--setup" => parsed.setup = true,
                "--workers" => {
                    parsed.workers =
                        usize::try_from(number(value()?)?).map_err(|e| e.to_string())?;
                }
                "--publishers" => {
                    parsed.publishers =
                        usize::try_from(number(value()?)?).map_err(|e| e.to_string())?;
                }
                "--lease-ms" => parsed.lease = Duration::from_millis(number(value()?)?),
                "--timeout-ms" => parsed.timeout = Duration::from_millis(number(value()?)?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        parsed.backend = match (store, redis, postgres) {
            (Some(path), None, None) => Backend::Redb(path),
            (None, Some(url), None) => Backend::Redis {
                url,
                prefix,
                consumer,
            },
            (None, None, Some(url)) => Backend::Postgres { url, schema },
            _ => return Err("give exactly one of --store, --redis and --postgres".into()),
        };
        parsed.url = url.ok_or("--url is required")?;
        parsed.secret = secret.ok_or("--secret is required")?;
        parsed.indices = indices.ok_or("--indices is required")?;
        Ok(parsed)
    }
}

fn main() -> ExitCode {
    let result = Args::parse().and_then(|args| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?
            .block_on(run(args))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crash_sender: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let builder = match &args.backend {
        Backend::Redb(path) => Sender::builder()
            .store(RedbStore::open(path).map_err(|e| format!("open the store: {e}"))?),
        Backend::Redis {
            url,
            prefix,
            consumer,
        } => {
            let store = RedisStore::connect(&RedisConfig::new(url).prefix(prefix))
                .await
                .map_err(|e| format!("connect to Redis: {e}"))?
                .consumer(consumer);
            Sender::builder().store(store)
        }
        Backend::Postgres { url, schema } => {
            let store = PostgresStore::connect(&PostgresConfig::new(url).schema(schema))
                .await
                .map_err(|e| format!("connect to Postgres: {e}"))?;
            Sender::builder().store(store)
        }
    };
    let sender = builder
        .allow_private_networks(AllowList::loopback())
        .workers(args.workers)
        .lease(args.lease)
        .idle_poll(Duration::from_millis(50))
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .await
        .map_err(|e| format!("build the sender: {e}"))?;
    if args.setup {
        let secret = HmacSecret::from_utf8(&args.secret).map_err(|e| e.to_string())?;
        sender
            .organizations()
            .set_secret(ORGANIZATION, secret)
            .await
            .map_err(|e| format!("set the secret: {e}"))?;
        let retry = RetryPolicy::schedule(
            std::iter::once(Duration::ZERO).chain((1..20).map(|n| Duration::from_millis(50 * n))),
        );
        let config =
            EndpointConfig::event(ORGANIZATION, &args.url, [EventType::TransactionConfirmed])
                .max_concurrency(u32::try_from(args.workers).unwrap_or(u32::MAX))
                .timeout(args.timeout)
                .retry(retry);
        sender
            .endpoints()
            .create(config)
            .await
            .map_err(|e| format!("create the endpoint: {e}"))?;
    }
    println!("ready");

    let indices = std::fs::read_to_string(&args.indices)
        .map_err(|e| format!("read {}: {e}", args.indices.display()))?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.trim()
                .parse::<u64>()
                .map_err(|e| format!("index {line:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let queue = Arc::new(Mutex::new(indices.into_iter()));
    let mut publishers = tokio::task::JoinSet::new();
    for _ in 0..args.publishers.max(1) {
        let queue = Arc::clone(&queue);
        let sender = sender.clone();
        publishers.spawn(async move {
            loop {
                let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
                let Some(index) = next else {
                    return Ok::<(), String>(());
                };
                let publish = Publish::event(
                    ORGANIZATION,
                    EventType::TransactionConfirmed,
                    format!("tx-{index}"),
                    json!({ "n": index }),
                );
                let receipt = sender
                    .publish(publish)
                    .await
                    .map_err(|e| format!("publish {index}: {e}"))?;
                match receipt.deliveries.first() {
                    Some(delivery) => println!("acked {index} {}", delivery.id),
                    None => return Err(format!("event {index} fanned out to no endpoint")),
                }
            }
        });
    }
    while let Some(result) = publishers.join_next().await {
        result.map_err(|e| format!("publisher task: {e}"))??;
    }
    println!("published");

    // Deliver until stdin closes, then stop gracefully.
    tokio::task::spawn_blocking(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.is_err() {
                break;
            }
        }
    })
    .await
    .map_err(|e| format!("stdin watcher: {e}"))?;
    sender
        .shutdown()
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
    println!("stopped");
    Ok(())
}
