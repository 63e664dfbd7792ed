//! Fixed-count runs of the in-process paths, for instruction counts under callgrind:
//! `cargo xtask bench --callgrind` runs each path under
//! `valgrind --tool=callgrind --toggle-collect='*callgrind_measured_phase*'` and divides
//! the instructions by the count.
//!
//! ```text
//! cargo build --release -p webhook-bench --bin callgrind
//! valgrind --tool=callgrind --toggle-collect='*callgrind_measured_phase*' \
//!     target/release/callgrind receiver-layer 5000
//! ```
//!
//! Everything runs on one current-thread Tokio runtime (so every instruction of the
//! measured work is on the thread callgrind collects, and none is spent spinning between
//! worker threads). Set-up (signing the requests, starting servers and the sender, a
//! warm-up that opens the client's connections and fills the caches) happens outside
//! [`callgrind_measured_phase`]; only the `count` measured requests or deliveries run
//! inside it. Paths:
//!
//! | path | what runs `count` times |
//! |---|---|
//! | `receiver-bare` | a pooled hyper client posts a signed event to the bare hyper handler (reads the body, 200) over loopback: client and server |
//! | `receiver-layer` | the same, the handler behind `WebhookLayer` (verify + timestamp window + dedup in the memory store) |
//! | `receiver-value` | behind the layer, a handler that reads `event().data` as JSON `Value` |
//! | `receiver-typed` | behind the layer, a handler that decodes `WebhookEvent<Transaction>` |
//! | `middleware-bare`, `middleware-layer`, `middleware-value`, `middleware-typed` | the same handlers called in process, no HTTP: the middleware's own cost |
//! | `e2e-sender` | `Sender::publish` on the memory store → signed HTTP attempt → counting server's 200, a window of 64 events outstanding, 16 connections |
//! | `e2e-baseline` | a plain hyper client posts the same event bodies to the same counting server, 16 tasks |
//!
//! It prints one JSON line on stdout: the path, the count and the number of failures
//! (which must be 0 for the count to mean anything).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use webhook_bench::http::{
    Tracker, counting_server, exchange, json_post, loopback_listener, plain_client,
};
use webhook_bench::payload::{self, ORGANIZATION, SECRET, Template};
use webhook_bench::scenario::receiver::{self, FixedRun, Handler, InProcess};
use webhook_core::keys::HmacSecret;
use webhook_sender::store::MemoryStore;
use webhook_sender::{AllowList, EndpointConfig, Publish, Sender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// HTTP concurrency of every path: the client tasks, the endpoint's `max_concurrency`.
const CONCURRENCY: usize = 16;
/// End-to-end: events published but not yet received, at most.
const WINDOW: usize = 64;
/// Requests or deliveries before the measured ones.
const WARMUP: usize = 500;

/// Every path, in the order `cargo xtask bench --callgrind` runs them.
const PATHS: [&str; 10] = [
    "receiver-bare",
    "receiver-layer",
    "receiver-value",
    "receiver-typed",
    "middleware-bare",
    "middleware-layer",
    "middleware-value",
    "middleware-typed",
    "e2e-baseline",
    "e2e-sender",
];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: callgrind <path> <count>\npaths: {}",
            PATHS.join(", ")
        );
        return ExitCode::from(2);
    };
    let Ok(count) = count.parse::<usize>() else {
        eprintln!("error: the count must be a number, not {count:?}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let failures = match path.as_str() {
        "receiver-bare" => http_receiver(&runtime, Handler::Bare, count),
        "receiver-layer" => http_receiver(&runtime, Handler::Layered, count),
        "receiver-value" => http_receiver(&runtime, Handler::ReadsValue, count),
        "receiver-typed" => http_receiver(&runtime, Handler::DecodesTyped, count),
        "middleware-bare" => in_process(&runtime, Handler::Bare, count),
        "middleware-layer" => in_process(&runtime, Handler::Layered, count),
        "middleware-value" => in_process(&runtime, Handler::ReadsValue, count),
        "middleware-typed" => in_process(&runtime, Handler::DecodesTyped, count),
        "e2e-baseline" => e2e_baseline(&runtime, count),
        "e2e-sender" => e2e_sender(&runtime, count),
        other => {
            eprintln!("error: unknown path {other:?}; known: {}", PATHS.join(", "));
            return ExitCode::from(2);
        }
    };
    match failures {
        Ok(failures) => {
            println!(
                "{}",
                serde_json::json!({"path": path, "count": count, "failures": failures})
            );
            if failures == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: {path}: {failures} of {count} failed");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {path}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `future` to completion; callgrind collects only inside this function.
#[inline(never)]
fn callgrind_measured_phase<T>(runtime: &Runtime, future: impl Future<Output = T>) -> T {
    runtime.block_on(future)
}

fn http_receiver(runtime: &Runtime, handler: Handler, count: usize) -> Result<u64, BoxError> {
    let requests = Arc::new(receiver::prepare(WARMUP + count)?);
    let run = runtime.block_on(FixedRun::start(handler, requests, CONCURRENCY))?;
    let warm = runtime.block_on(run.send(0..WARMUP, CONCURRENCY))?;
    if warm > 0 {
        return Err(format!("{warm} warm-up requests were not answered 200").into());
    }
    callgrind_measured_phase(runtime, run.send(WARMUP..WARMUP + count, CONCURRENCY))
}

fn in_process(runtime: &Runtime, handler: Handler, count: usize) -> Result<u64, BoxError> {
    let requests = Arc::new(receiver::prepare(WARMUP + count)?);
    let mut service = InProcess::new(handler, requests)?;
    let warm = runtime.block_on(service.send(0..WARMUP))?;
    if warm > 0 {
        return Err(format!("{warm} warm-up requests were not answered 200").into());
    }
    callgrind_measured_phase(runtime, service.send(WARMUP..WARMUP + count))
}

fn e2e_baseline(runtime: &Runtime, count: usize) -> Result<u64, BoxError> {
    let total = WARMUP + count;
    let (tracker, server) = runtime.block_on(async {
        let tracker = Arc::new(Tracker::new(total));
        let listener = loopback_listener().await?;
        Ok::<_, BoxError>((
            Arc::clone(&tracker),
            counting_server(listener, Arc::clone(&tracker)),
        ))
    })?;
    let uri: http::Uri = server.url().parse()?;
    let client = plain_client(CONCURRENCY);
    let template = Arc::new(Template::event());
    let post = |range: std::ops::Range<u64>| {
        let next = Arc::new(AtomicU64::new(range.start));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (client, template, next, errors, uri) = (
                client.clone(),
                Arc::clone(&template),
                Arc::clone(&next),
                Arc::clone(&errors),
                uri.clone(),
            );
            let end = range.end;
            tasks.spawn_on(
                async move {
                    loop {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= end {
                            break;
                        }
                        let request = json_post(&uri, template.render(seq));
                        if !matches!(exchange(&client, request).await, Ok(status) if status.is_success())
                        {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                },
                runtime.handle(),
            );
        }
        async move {
            while tasks.join_next().await.is_some() {}
            errors.load(Ordering::Relaxed)
        }
    };
    let warm = runtime.block_on(post(0..WARMUP as u64));
    if warm > 0 {
        return Err(format!("{warm} warm-up requests failed").into());
    }
    let failed = callgrind_measured_phase(runtime, post(WARMUP as u64..total as u64));
    let missing = (total as u64).saturating_sub(tracker.unique());
    drop(server);
    Ok(failed + missing)
}

fn e2e_sender(runtime: &Runtime, count: usize) -> Result<u64, BoxError> {
    let total = WARMUP + count;
    let permits = Arc::new(Semaphore::new(WINDOW));
    let tracker = Arc::new(Tracker::with_window(total, Arc::clone(&permits)));
    let (sender, server) = runtime.block_on(async {
        let server = counting_server(loopback_listener().await?, Arc::clone(&tracker));
        let sender = Sender::builder()
            .allow_private_networks(AllowList::loopback())
            .workers(64)
            .store(MemoryStore::new())
            .build()
            .await?;
        sender
            .organizations()
            .set_secret(ORGANIZATION, HmacSecret::from_utf8(SECRET)?)
            .await?;
        sender
            .endpoints()
            .create(
                EndpointConfig::event(ORGANIZATION, server.url(), [payload::EVENT_TYPE])
                    .max_concurrency(u32::try_from(CONCURRENCY)?),
            )
            .await?;
        Ok::<_, BoxError>((sender, server))
    })?;
    // Publishes `range` from WINDOW tasks, each waiting for a permit (returned by the
    // server on the first receipt), then waits until all of `..range.end` arrived.
    let publish = |range: std::ops::Range<u64>| {
        let next = Arc::new(AtomicU64::new(range.start));
        let failed = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..WINDOW {
            let (sender, permits, next, failed) = (
                sender.clone(),
                Arc::clone(&permits),
                Arc::clone(&next),
                Arc::clone(&failed),
            );
            let end = range.end;
            tasks.spawn_on(
                async move {
                    loop {
                        let Ok(permit) = permits.acquire().await else {
                            break;
                        };
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= end {
                            break;
                        }
                        permit.forget();
                        let publish = Publish::event(
                            ORGANIZATION,
                            payload::EVENT_TYPE,
                            payload::entity(seq),
                            payload::transaction(seq),
                        );
                        if sender.publish(publish).await.is_err() {
                            permits.add_permits(1);
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                },
                runtime.handle(),
            );
        }
        let tracker = Arc::clone(&tracker);
        async move {
            while tasks.join_next().await.is_some() {}
            let failed = failed.load(Ordering::Relaxed);
            let expected = range.end.saturating_sub(failed);
            if !tracker.wait_for(expected, Duration::from_secs(600)).await {
                return failed + expected.saturating_sub(tracker.unique());
            }
            failed
        }
    };
    let warm = runtime.block_on(publish(0..WARMUP as u64));
    if warm > 0 {
        return Err(format!("{warm} warm-up deliveries failed").into());
    }
    let failed = callgrind_measured_phase(runtime, publish(WARMUP as u64..total as u64));
    runtime.block_on(sender.shutdown())?;
    drop(server);
    Ok(failed)
}
