//! Receiver requests per second: the `WebhookLayer` (body limit, timestamp window, HMAC
//! verification, the body's shape check, dedup claim and completion in the memory store) in front
//! of a handler, next to the same handler served bare by hyper.
//!
//! The load generator signs every request before the clock starts (event style, a
//! distinct `idempotencyKey` each, so every request is a new delivery for dedup), then
//! `concurrency` client tasks send them with a plain pooled hyper client, each waiting for
//! its answer. Both servers get the very same requests in the same order: a warm-up, then
//! the measured ones. The rate is measured requests ÷ elapsed time; latency is per
//! request, client side. Any answer but 200 counts as an error.
//!
//! Two more layered runs show what decoding costs, and that it is paid only by a
//! handler that asks for it: one handler reads the event's `data` as a JSON `Value`
//! (`VerifiedWebhook::event`, which decodes the event on first use), one decodes it
//! into core's typed `Transaction` (`WebhookEvent<Transaction>`, straight from the
//! body); the main layered handler reads only the body.
//!
//! [`run_sustained`] (scenario `receiver-dedup`) is the dedup store's rate: distinct
//! deliveries at 1,000 per second of a simulated clock through the layer's default
//! memory store, long past its capacity, counting `503 dedup_full` answers and RSS.

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
use webhook_core::clock::{Clock as _, ManualClock};
use webhook_core::domain::Transaction;
use webhook_core::keys::HmacSecret;
use webhook_core::{Outgoing, SigningKeys};
use webhook_receiver::dedup::{DEFAULT_CAPACITY, MemoryStore};
use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};

use super::{BoxError, Measurement, Mode, Settings, best_of_rounds, closing_notes};
use crate::http::{PlainClient, Server, exchange, loopback_listener, plain_client, serve};
use crate::payload::{self, SECRET};
use crate::report::{Row, Target};
use crate::stats::Histogram;
use crate::system;

const NAME: &str = "receiver";
const DESCRIPTION: &str = "requests/s through WebhookLayer (verify HMAC + dedup, memory store)";
/// The issue's goal: at least 85 % of the bare handler's rate.
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
    let mut decoding = Vec::new();
    for handler in [Handler::ReadsValue, Handler::DecodesTyped] {
        match measure(settings, requests, handler, 1).await {
            Ok(measured) => decoding.push(measured),
            Err(why) => return Row::failed(NAME, DESCRIPTION, format!("{handler:?}: {why}")),
        }
    }
    let (value, typed) = (decoding[0], decoding[1]);
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
        .extra("reads_value_ops_per_sec", value.ops_per_sec)
        .extra("reads_value_errors", value.errors)
        .extra("decodes_typed_ops_per_sec", typed.ops_per_sec)
        .extra("decodes_typed_errors", typed.errors)
        .note(format!(
            "handler reading data as Value: {:.0}/s; decoding WebhookEvent<Transaction>: {:.0}/s",
            value.ops_per_sec, typed.ops_per_sec
        ))
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
    /// Behind the layer, a handler that reads the event's `data` as a JSON `Value`
    /// (decoded on first use).
    ReadsValue,
    /// Behind the layer, a handler that decodes `WebhookEvent<Transaction>`.
    DecodesTyped,
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
        layered => layered_server(listener, requests.len(), layered)?,
    };
    let label = match handler {
        Handler::Bare => format!("{NAME} bare #{round}"),
        Handler::Layered => format!("{NAME} layered #{round}"),
        Handler::ReadsValue => format!("{NAME} layered, reads Value #{round}"),
        Handler::DecodesTyped => format!("{NAME} layered, decodes typed #{round}"),
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
                let request = requests[i].to_request(&uri);
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

/// A handler that reads what `handler` says, then answers 200 (500 when decoding failed).
async fn decoding_handler(
    request: Request<Full<Bytes>>,
    handler: Handler,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let decoded = match (handler, request.extensions().get::<VerifiedWebhook>()) {
        (Handler::ReadsValue, Some(webhook)) => webhook
            .event()
            .is_some_and(|event| event.data.get("id").is_some()),
        (Handler::DecodesTyped, Some(webhook)) => webhook
            .event_data::<Transaction>()
            .is_ok_and(|event| !event.data().id.is_empty()),
        (_, Some(_)) => true,
        (_, None) => false,
    };
    let mut response = handler_body(request).await?;
    if !decoded {
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}

fn layered_server(
    listener: tokio::net::TcpListener,
    keys: usize,
    handler: Handler,
) -> Result<Server, BoxError> {
    let verifier = Verifier::event_secrets([SECRET])?;
    // Room for every request: a full store would answer 503 rather than forget a key.
    let layer = WebhookLayer::new(verifier).dedup_store(MemoryStore::with_capacity(keys + 1_000));
    Ok(if handler == Handler::Layered {
        let handler = tower::service_fn(|request: Request<Full<Bytes>>| handler_body(request));
        serve(listener, TowerToHyperService::new(layer.layer(handler)))
    } else {
        let handler = tower::service_fn(move |request| decoding_handler(request, handler));
        serve(listener, TowerToHyperService::new(layer.layer(handler)))
    })
}

/// A fixed number of requests through one of the servers, for instruction counts (the
/// `callgrind` binary): the server and the client's connections are set up by
/// [`FixedRun::start`] and a warm-up, so that [`FixedRun::send`] does the per-request
/// work only, on whatever runtime drives it.
#[derive(Debug)]
pub struct FixedRun {
    requests: Arc<Vec<Prepared>>,
    client: PlainClient,
    uri: http::Uri,
    _server: Server,
}

impl FixedRun {
    /// Starts `handler`'s server on a loopback port for `requests` (the layered ones get a
    /// dedup store with room for every request).
    ///
    /// # Errors
    /// When no port can be bound or the verifier cannot be built.
    pub async fn start(
        handler: Handler,
        requests: Arc<Vec<Prepared>>,
        concurrency: usize,
    ) -> Result<Self, BoxError> {
        let listener = loopback_listener().await?;
        let server = match handler {
            Handler::Bare => bare_server(listener),
            layered => layered_server(listener, requests.len(), layered)?,
        };
        let uri = server.url().parse()?;
        Ok(Self {
            requests,
            client: plain_client(concurrency),
            uri,
            _server: server,
        })
    }

    /// Sends `requests[range]` with `concurrency` closed-loop client tasks and returns
    /// the number of answers other than 200.
    ///
    /// # Errors
    /// When a client task panics.
    pub async fn send(
        &self,
        range: std::ops::Range<usize>,
        concurrency: usize,
    ) -> Result<u64, BoxError> {
        let next = Arc::new(AtomicUsize::new(range.start));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..concurrency {
            let (client, uri, requests, next, errors) = (
                self.client.clone(),
                self.uri.clone(),
                Arc::clone(&self.requests),
                Arc::clone(&next),
                Arc::clone(&errors),
            );
            let end = range.end;
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    let request = requests[i].to_request(&uri);
                    let ok = matches!(exchange(&client, request).await, Ok(status) if status == http::StatusCode::OK);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined?;
        }
        Ok(errors.load(Ordering::Relaxed))
    }
}

/// The statuses-only service of [`InProcess`].
type StatusService = tower::util::BoxService<Request<Full<Bytes>>, http::StatusCode, Infallible>;

/// One of the handlers called in process, without HTTP: the bare handler called
/// directly, or the same handler behind `WebhookLayer` (the middleware's own cost), for
/// instruction counts.
pub struct InProcess {
    service: StatusService,
    requests: Arc<Vec<Prepared>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess").finish_non_exhaustive()
    }
}

impl InProcess {
    /// `handler` as a tower service for `requests`.
    ///
    /// # Errors
    /// When the verifier cannot be built.
    pub fn new(handler: Handler, requests: Arc<Vec<Prepared>>) -> Result<Self, BoxError> {
        use tower::ServiceExt;

        let service = match handler {
            Handler::Bare => StatusService::new(
                tower::service_fn(|request: Request<Full<Bytes>>| handler_body(request))
                    .map_response(|response| response.status()),
            ),
            layered => {
                let verifier = Verifier::event_secrets([SECRET])?;
                let layer = WebhookLayer::new(verifier)
                    .dedup_store(MemoryStore::with_capacity(requests.len() + 1_000));
                let handler = tower::service_fn(move |request| decoding_handler(request, layered));
                StatusService::new(ServiceExt::<Request<Full<Bytes>>>::map_response(
                    layer.layer(handler),
                    |response| response.status(),
                ))
            }
        };
        Ok(Self { service, requests })
    }

    /// Calls the service with `requests[range]`, one after the other; returns the number
    /// of answers other than 200.
    ///
    /// # Errors
    /// Never in practice (the services are infallible); a poll error is passed on.
    pub async fn send(&mut self, range: std::ops::Range<usize>) -> Result<u64, BoxError> {
        use tower::{Service as _, ServiceExt as _};

        let uri = http::Uri::from_static("http://127.0.0.1/webhook");
        let mut errors = 0;
        for i in range {
            let request = self.requests[i].to_request(&uri);
            let status = self.service.ready().await?.call(request).await?;
            if status != http::StatusCode::OK {
                errors += 1;
            }
        }
        Ok(errors)
    }
}

impl Prepared {
    /// The request as the load generator sends it: `POST uri`, the signed headers.
    fn to_request(&self, uri: &http::Uri) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

const SUSTAINED_NAME: &str = "receiver-dedup";
const SUSTAINED_DESCRIPTION: &str = "distinct deliveries at 1,000/s (simulated clock) through the default memory dedup store, far past its capacity";
/// The goal: RSS grows by at most this much while the store fills and then stays full.
const SUSTAINED_RSS_LIMIT_MIB: f64 = 256.0;
/// Deliveries per simulated second.
const SUSTAINED_RATE: u64 = 1_000;

/// Sustained distinct deliveries through `WebhookLayer` with the default memory store:
/// every delivery is signed at the simulated clock's time, which advances 1 ms per
/// delivery (1,000/s), and handed to the layer in process (no HTTP, so the run takes
/// seconds per simulated hour). Full mode sends 3,000,000 (50 simulated minutes: the
/// 1,000,000-key store is full after 1,000 s and makes room from then on), quick mode
/// 1,500,000 (full from 1,000 s on, evicting for the last 500 s), smoke mode 5,000 (the
/// store never fills: plumbing only).
///
/// The target is met with zero `503 dedup_full` (or any other non-200) answers and an RSS
/// growth of at most 256 MiB; the row says from which delivery on the store was full.
pub async fn run_sustained(settings: &Settings) -> Row {
    let (deliveries, capacity) = match settings.mode {
        Mode::Full => (3_000_000_u64, DEFAULT_CAPACITY),
        Mode::Quick => (1_500_000, DEFAULT_CAPACITY),
        // Plumbing only: far below the capacity.
        Mode::Smoke => (5_000, DEFAULT_CAPACITY),
    };
    match sustained(deliveries, capacity).await {
        Ok(row) => row,
        Err(why) => Row::failed(SUSTAINED_NAME, SUSTAINED_DESCRIPTION, why.to_string()),
    }
}

async fn sustained(deliveries: u64, capacity: usize) -> Result<Row, BoxError> {
    use tower::ServiceExt;

    let clock = ManualClock::at_unix(1_746_714_600);
    let verifier = Verifier::event_secrets([SECRET])?.clock(clock.clone());
    let store = MemoryStore::with_capacity(capacity).clock(clock.clone());
    let mut service = WebhookLayer::new(verifier)
        .dedup_store(store.clone())
        .layer(tower::service_fn(|_request: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        }));
    let keys = SigningKeys::Event(vec![HmacSecret::from_utf8(SECRET)?]);
    let rss_before = system::rss_kib(None).unwrap_or(0);
    let mut peak_rss = rss_before;
    let (mut ok, mut full, mut other) = (0_u64, 0_u64, 0_u64);
    let mut full_from = None;
    let step = Duration::from_millis(1_000 / SUSTAINED_RATE);
    eprintln!(
        "[{SUSTAINED_NAME}] {deliveries} distinct deliveries at {SUSTAINED_RATE}/s simulated, store of {capacity} keys"
    );
    let started = Instant::now();
    for seq in 0..deliveries {
        clock.advance(step);
        let body = format!(
            r#"{{"id":"e-{seq}","type":"transaction.confirmed","idempotencyKey":"sustained-{seq:016x}","organizationId":"o1","createdAt":"2025-05-08T14:30:00Z","data":{{"seq":{seq}}}}}"#
        );
        let signed = keys.sign(&Outgoing::new("e", body.as_bytes()), clock.now())?;
        let mut request: Request<Full<Bytes>> = Request::new(Full::new(Bytes::from(signed.body)));
        *request.method_mut() = http::Method::POST;
        request.headers_mut().extend(signed.headers);
        let status = tower::Service::<Request<Full<Bytes>>>::call(
            ServiceExt::<Request<Full<Bytes>>>::ready(&mut service).await?,
            request,
        )
        .await?
        .status();
        match status.as_u16() {
            200 => ok += 1,
            503 => full += 1,
            _ => other += 1,
        }
        if full_from.is_none() && store.len() >= capacity {
            full_from = Some(seq);
        }
        if seq % 100_000 == 99_999 {
            let rss = system::rss_kib(None).unwrap_or(0);
            peak_rss = peak_rss.max(rss);
            eprintln!(
                "[{SUSTAINED_NAME}] {} delivered, {} simulated s, store {} keys, {full} dedup_full, RSS {} MiB",
                seq + 1,
                (seq + 1) / SUSTAINED_RATE,
                store.len(),
                rss / 1024
            );
        }
    }
    let elapsed = started.elapsed();
    peak_rss = peak_rss.max(system::rss_kib(None).unwrap_or(0));
    #[allow(clippy::cast_precision_loss)]
    let (rate, growth_mib) = (
        deliveries as f64 / elapsed.as_secs_f64(),
        peak_rss.saturating_sub(rss_before) as f64 / 1024.0,
    );
    let met = full == 0 && other == 0 && growth_mib <= SUSTAINED_RSS_LIMIT_MIB;
    Ok(Row::measured(SUSTAINED_NAME, SUSTAINED_DESCRIPTION)
        .ops(rate)
        .target(Target::checked(
            format!("0 dedup_full over {deliveries} deliveries at {SUSTAINED_RATE}/s, store full from delivery {}, RSS growth ≤ {SUSTAINED_RSS_LIMIT_MIB} MiB", full_from.map_or_else(|| "never".to_owned(), |s| s.to_string())),
            met,
        ))
        .extra("deliveries", deliveries)
        .extra("simulated_seconds", deliveries / SUSTAINED_RATE)
        .extra("capacity", capacity)
        .extra("store_full_from_delivery", full_from)
        .extra("accepted", ok)
        .extra("dedup_full_503s", full)
        .extra("other_non_200", other)
        .extra("store_len_at_end", store.len())
        .extra("rss_before_mib", rss_before / 1024)
        .extra("peak_rss_mib", peak_rss / 1024)
        .extra("rss_growth_mib", growth_mib)
        .note(format!(
            "{deliveries} deliveries in {:.1} s of wall time ({rate:.0}/s in process); {full} dedup_full, {other} other non-200; RSS +{growth_mib:.0} MiB",
            elapsed.as_secs_f64()
        )))
}
