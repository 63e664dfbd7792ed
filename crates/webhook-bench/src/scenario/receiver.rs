//! Receiver requests per second: the `WebhookLayer` (body limit, timestamp window, HMAC
//! verification, JSON decoding, dedup claim and completion in the memory store) in front
//! of a handler, next to the same handler served bare by hyper.
//!
//! The load generator signs every request before the clock starts (event style, a
//! distinct `idempotencyKey` each, so every request is a new delivery for dedup), then
//! `concurrency` client tasks send them with a plain pooled hyper client, each waiting for
//! its answer. Both servers get the very same requests in the same order: a warm-up, then
//! the measured ones. The rate is measured requests ÷ elapsed time; latency is per
//! request, client side. Any answer but 200 counts as an error.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use time::OffsetDateTime;
use tokio::task::JoinSet;
use tower::Layer as _;
use webhook_core::keys::HmacSecret;
use webhook_core::{Outgoing, SigningKeys};
use webhook_receiver::dedup::MemoryStore;
use webhook_receiver::{Verifier, WebhookLayer};

use super::{BoxError, Measurement, Settings, best_of_rounds, closing_notes};
use crate::http::{PlainClient, Server, exchange, loopback_listener, plain_client, serve};
use crate::payload::{self, SECRET};
use crate::report::{Row, Target};
use crate::stats::Histogram;
use crate::system;

const NAME: &str = "receiver";
const DESCRIPTION: &str = "requests/s through WebhookLayer (verify HMAC + dedup, memory store)";
/// The goal: at least 85 % of the bare handler's rate.
const TARGET: f64 = 0.85;

/// A signed request, ready to send again and again.
#[derive(Debug, Clone)]
pub struct Prepared {
    headers: HeaderMap,
    body: Bytes,
}

/// Signs `count` distinct event-style deliveries now.
///
/// # Errors
/// When signing fails (it does not with a valid secret).
pub fn prepare(count: usize) -> Result<Vec<Prepared>, BoxError> {
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8(SECRET)?]);
    let now = OffsetDateTime::now_utc();
    let mut prepared = Vec::with_capacity(count);
    for seq in 0..count as u64 {
        let body = payload::event_body(seq, now);
        let id = format!("e-{seq}");
        let signed = keys.sign(&Outgoing::new(&id, &body), now)?;
        prepared.push(Prepared {
            headers: signed.headers.into_iter().collect(),
            body: Bytes::from(signed.body),
        });
    }
    Ok(prepared)
}

/// Runs both servers `settings.rounds` times, alternating; the best of each counts.
pub async fn run(settings: &Settings) -> Row {
    let total = settings.receiver_warmup + settings.receiver_requests;
    eprintln!("[{NAME}] signing {total} requests");
    let requests = match prepare(total) {
        Ok(requests) => Arc::new(requests),
        Err(e) => return Row::failed(NAME, DESCRIPTION, format!("signing: {e}")),
    };
    let requests = &requests;
    let best = best_of_rounds(
        settings.rounds,
        "bare handler",
        |round| measure(settings, requests, Handler::Bare, round),
        "layered handler",
        |round| measure(settings, requests, Handler::Layered, round),
    )
    .await;
    let (base, ours) = match best {
        Ok(best) => best,
        Err(why) => return Row::failed(NAME, DESCRIPTION, why),
    };
    let row = Row::measured(NAME, DESCRIPTION)
        .ops(ours.ops_per_sec)
        .latency(ours.p50_ms, ours.p99_ms)
        .baseline(
            format!(
                "bare hyper handler, same requests, concurrency {}",
                settings.concurrency
            ),
            base.ops_per_sec,
        )
        .target(Target::ratio_at_least(TARGET))
        .extra("baseline_p50_ms", base.p50_ms)
        .extra("baseline_p99_ms", base.p99_ms)
        .extra("concurrency", settings.concurrency)
        .extra("requests", settings.receiver_requests)
        .extra("rounds", settings.rounds)
        .extra("cpu_cores", ours.cpu_cores)
        .extra("baseline_cpu_cores", base.cpu_cores)
        .extra("errors", ours.errors)
        .extra("baseline_errors", base.errors)
        .note(format!(
            "{} requests of {} B, concurrency {}",
            settings.receiver_requests,
            requests.first().map_or(0, |r| r.body.len()),
            settings.concurrency
        ));
    closing_notes(
        row,
        settings.rounds,
        (&ours, "non-200 answers"),
        (&base, "bare"),
    )
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The handler alone: reads the body, answers 200.
    Bare,
    /// The same handler behind `WebhookLayer` with a memory dedup store.
    Layered,
}

/// One measurement of `handler` over `requests` (the settings' warm-up first).
///
/// # Errors
/// When the server cannot start or the clients do not finish within a minute of the
/// expected time.
pub async fn measure(
    settings: &Settings,
    requests: &Arc<Vec<Prepared>>,
    handler: Handler,
    round: usize,
) -> Result<Measurement, BoxError> {
    let listener = loopback_listener().await?;
    let server = match handler {
        Handler::Bare => bare_server(listener),
        Handler::Layered => layered_server(listener, requests.len())?,
    };
    let label = match handler {
        Handler::Bare => format!("{NAME} bare #{round}"),
        Handler::Layered => format!("{NAME} layered #{round}"),
    };
    let uri: http::Uri = server.url().parse()?;
    let client = plain_client(settings.concurrency);
    let warmup = settings.receiver_warmup.min(requests.len());
    eprintln!("[{label}] warm-up: {warmup} requests");
    let (_, _, warm_errors) = drive(settings, &client, &uri, requests, 0..warmup, &label).await?;
    if warm_errors > 0 {
        return Err(format!("{warm_errors} warm-up requests were not answered 200").into());
    }
    eprintln!("[{label}] measuring: {} requests", requests.len() - warmup);
    let cpu_from = system::cpu_time(None);
    let (elapsed, histogram, errors) = drive(
        settings,
        &client,
        &uri,
        requests,
        warmup..requests.len(),
        &label,
    )
    .await?;
    let cpu_cores = system::cpu_time(None)
        .zip(cpu_from)
        .map(|(to, from)| (to - from).as_secs_f64() / elapsed.as_secs_f64());
    drop(server);
    let count = (requests.len() - warmup) as u64;
    #[allow(clippy::cast_precision_loss)]
    let ops_per_sec = count as f64 / elapsed.as_secs_f64();
    eprintln!("[{label}] {ops_per_sec:.0} requests/s");
    Ok(Measurement {
        ops_per_sec,
        p50_ms: histogram.percentile_ms(50.0),
        p99_ms: histogram.percentile_ms(99.0),
        errors,
        count,
        cpu_cores,
        commits_per_delivery: None,
    })
}

/// Sends `requests[range]` with `concurrency` closed-loop tasks; returns the elapsed time,
/// the latency histogram and the number of non-200 answers.
async fn drive(
    settings: &Settings,
    client: &PlainClient,
    uri: &http::Uri,
    requests: &Arc<Vec<Prepared>>,
    range: std::ops::Range<usize>,
    label: &str,
) -> Result<(Duration, Histogram, u64), BoxError> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Histogram::new());
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..settings.concurrency {
        let (client, uri, requests, next, done, errors, histogram) = (
            client.clone(),
            uri.clone(),
            Arc::clone(requests),
            Arc::clone(&next),
            Arc::clone(&done),
            Arc::clone(&errors),
            Arc::clone(&histogram),
        );
        let end = range.end;
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let prepared = &requests[i];
                let mut request = Request::new(Full::new(prepared.body.clone()));
                *request.method_mut() = http::Method::POST;
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = prepared.headers.clone();
                let sent = Instant::now();
                let ok = matches!(exchange(&client, request).await, Ok(status) if status == http::StatusCode::OK);
                histogram.record(sent.elapsed());
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let expected = range.len() as u64;
    // Generous: even 500 requests/s finish in time.
    let limit = Duration::from_secs(60 + expected / 500);
    let ticker = {
        let (done, label) = (Arc::clone(&done), label.to_owned());
        tokio::spawn(async move {
            let mut last = 0;
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.tick().await;
            loop {
                interval.tick().await;
                let now = done.load(Ordering::Relaxed);
                eprintln!("[{label}] {now}/{expected} answered ({}/s)", now - last);
                last = now;
            }
        })
    };
    let joined =
        tokio::time::timeout(limit, async { while tasks.join_next().await.is_some() {} }).await;
    let elapsed = started.elapsed();
    ticker.abort();
    if joined.is_err() {
        return Err(format!("clients did not finish within {limit:?}").into());
    }
    let histogram = Arc::try_unwrap(histogram).unwrap_or_default();
    Ok((elapsed, histogram, errors.load(Ordering::Relaxed)))
}

async fn handler_body<B: http_body::Body>(
    request: Request<B>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    // Like any real handler, it reads the body.
    let _ = request.into_body().collect().await;
    Ok(Response::new(Empty::new()))
}

fn bare_server(listener: tokio::net::TcpListener) -> Server {
    serve(
        listener,
        hyper::service::service_fn(|request: Request<Incoming>| handler_body(request)),
    )
}

fn layered_server(listener: tokio::net::TcpListener, keys: usize) -> Result<Server, BoxError> {
    let verifier = Verifier::event_secrets([SECRET])?;
    // Room for every request: a full store would answer 503 rather than forget a key.
    let layer = WebhookLayer::new(verifier).dedup_store(MemoryStore::with_capacity(keys + 1_000));
    let handler = tower::service_fn(|request: Request<Full<Bytes>>| handler_body(request));
    Ok(serve(
        listener,
        TowerToHyperService::new(layer.layer(handler)),
    ))
}
