//! Messages per second published over the HTTP API and delivered to a local receiver, next
//! to the plain hyper client of [`e2e`] posting the same event bodies to the
//! same server over the same number of connections.
//!
//! **Service side.** The API runs in-process the way `webhook serve` runs it: a sender on
//! the embedded store (redb, in a temporary directory under `target/bench`) with loopback
//! endpoints allowed and the default 64 worker slots, [`Api`] with the per-token rate
//! limit off, served by the hardened server of `webhook-receiver`
//! ([`webhook_receiver::server::serve`] with its default limits) on a loopback port. It is
//! set up through its own API with an admin token: an organization, its webhook secret, an
//! API token, and one event-style endpoint at the counting server (`max_concurrency` = the
//! settings' HTTP concurrency, 16, as in e2e). Then [`Settings::api_connections`] (32)
//! closed-loop clients on HTTP/1.1 keep-alive connections each
//! `POST /v1/organizations/{org}/messages` a `transaction.confirmed` event about a distinct
//! transaction (about 1 KiB of JSON, [`Template::publish_request`]) with the
//! organization's token, and wait for the answer before sending the next.
//!
//! **Counted.** Messages accepted (202) and delivered (first receipt at the counting
//! server) inside the measured window. The delivered rate is the scenario's figure (a
//! message counts once its endpoint has it); the row's latency is the 202's, from sending
//! the request to reading the answer. The publish → delivery latency, the accepted rate and
//! the time the queue took to drain after the window are in the JSON report. Any answer
//! other than 202, and any failed request, is an error. The clients do not wait for
//! deliveries, so when acceptance outruns delivery the queue grows during the window and
//! the delivered rate is the sender's under that publishing load.
//!
//! **Left out**, unlike `webhook serve`: writing the access log lines (the benchmark installs
//! no `tracing` subscriber, so they are filtered out before formatting) and the Prometheus
//! recorder behind `/metrics`.
//!
//! **Baseline.** [`e2e::baseline`] with the concurrency set to the connection count: 32
//! tasks posting the delivered event's body to the same kind of counting server with a
//! plain pooled hyper client.

use std::borrow::Borrow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use webhook_receiver::server::ServerConfig;
use webhook_server::{Api, TokenAuthorizer};

use super::e2e::{self, Store};
use super::window::{Run, drain, per_delivery};
use super::{BoxError, Failures, Measurement, Settings, best_of_rounds, both_sides, closing_notes};
use crate::http::{
    PlainClient, Tracker, counting_server, fetch, json_post, loopback_listener, plain_client,
};
use crate::payload::{EVENT_TYPE, ORGANIZATION, SECRET, Template};
use crate::report::{Row, Target};
use crate::stats::Histogram;

/// The scenario's name.
pub const SCENARIO: &str = "serve-redb";

/// The goal of issue 13: delivered messages/s at least this share of the baseline's.
pub const TARGET: f64 = 0.12;

const DESCRIPTION: &str =
    "messages/s, HTTP publish (202) → delivered 2xx, the `webhook serve` service on redb";

/// The admin token the in-process service accepts; only the set-up uses it.
const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// What one run of the service measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// Delivered messages/s in the window as the rate, the 202's latency as p50/p99,
    /// non-202 answers and failed requests as errors, the CPU busy, redb commits per
    /// accepted message.
    pub measurement: Measurement,
    /// Messages accepted (202) per second in the window.
    pub accepted_per_sec: f64,
    /// Publish request sent → first receipt at the endpoint, median (ms).
    pub delivery_p50_ms: Option<f64>,
    /// Publish request sent → first receipt at the endpoint, 99th percentile (ms).
    pub delivery_p99_ms: Option<f64>,
    /// From the window's end until every accepted message had arrived.
    pub drain: Duration,
}

impl Borrow<Measurement> for Published {
    fn borrow(&self) -> &Measurement {
        &self.measurement
    }
}

/// Runs the scenario: baseline and service, `settings.rounds` times each, alternating; the
/// best of each side counts.
pub async fn run(settings: &Settings) -> Row {
    let connections = settings.api_connections;
    let baseline_settings = &Settings {
        concurrency: connections,
        ..settings.clone()
    };
    let best = best_of_rounds(
        settings.rounds,
        "baseline",
        |round| async move {
            e2e::baseline(baseline_settings, &format!("{SCENARIO} baseline #{round}")).await
        },
        "service",
        |round| async move { service(settings, &format!("{SCENARIO} service #{round}")).await },
    )
    .await;
    let (base, ours): (Measurement, Published) = match best {
        Ok(best) => best,
        Err(why) => return Row::failed(SCENARIO, DESCRIPTION, why),
    };
    let measured = &ours.measurement;
    let body_bytes = Template::publish_request().render(0).len();
    let mut row = Row::measured(SCENARIO, DESCRIPTION)
        .ops(measured.ops_per_sec)
        .latency(measured.p50_ms, measured.p99_ms)
        .baseline(
            format!("plain hyper client, same server and bodies, {connections} connections"),
            base.ops_per_sec,
        )
        .target(Target::ratio_at_least(TARGET))
        .extra("accepted_per_sec", ours.accepted_per_sec)
        .extra("delivery_p50_ms", ours.delivery_p50_ms)
        .extra("delivery_p99_ms", ours.delivery_p99_ms)
        .extra("drain_secs", ours.drain.as_secs_f64())
        .extra("connections", connections)
        .extra("body_bytes", body_bytes)
        .note(format!(
            "{connections} keep-alive connections, {body_bytes} B requests; latency is the 202's"
        ))
        .note(format!(
            "accepted {:.0}/s; delivered p50 {} ms, p99 {} ms after the request; drained {:.2} s after the window",
            ours.accepted_per_sec,
            millis(ours.delivery_p50_ms),
            millis(ours.delivery_p99_ms),
            ours.drain.as_secs_f64(),
        ));
    row = both_sides(row, settings, measured, &base);
    if let Some(commits) = measured.commits_per_delivery {
        row = row.note(format!("{commits:.2} redb commits per message"));
    }
    closing_notes(
        row,
        settings.rounds,
        (measured, "non-202 answers"),
        (&base, "baseline errors"),
    )
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |ms| format!("{ms:.2}"))
}

/// The service on redb, published to over HTTP as described in the module docs.
///
/// # Errors
/// When the receiver, the store, the sender or the service cannot be set up, when the
/// set-up calls are refused, or when the accepted messages do not all arrive within 60 s
/// of the window's end.
pub async fn service(settings: &Settings, label: &str) -> Result<Published, BoxError> {
    let capacity = settings.e2e_capacity();
    let tracker = Arc::new(Tracker::new(capacity));
    let receiver = counting_server(loopback_listener().await?, Arc::clone(&tracker));
    let (sender, guard) = e2e::build_sender(settings, Store::Redb).await?;
    let authorizer = TokenAuthorizer::new(sender.clone()).with_admin_token(ADMIN_TOKEN)?;
    let router = Api::new(sender.clone(), authorizer)
        .rate_per_token(None)
        .router();
    let listener = loopback_listener().await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(webhook_receiver::server::serve(
        listener,
        router,
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let client = plain_client(settings.api_connections);
    let token = set_up(&client, &base, &receiver.url(), settings.concurrency).await?;
    let uri: http::Uri = format!("{base}/v1/organizations/{ORGANIZATION}/messages").parse()?;
    let authorization = Arc::new(HeaderValue::try_from(format!("Bearer {token}"))?);
    let template = Arc::new(Template::publish_request());

    let commits_before = guard.commits().unwrap_or(0);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(Accepted::default());
    let failures = Arc::new(Failures::default());
    let run = Run::start(label, &tracker, settings);
    let window = run.window;

    let mut tasks = JoinSet::new();
    for _ in 0..settings.api_connections {
        let (tracker, client, uri, authorization, template, next, accepted, failures) = (
            Arc::clone(&tracker),
            client.clone(),
            uri.clone(),
            Arc::clone(&authorization),
            Arc::clone(&template),
            Arc::clone(&next),
            Arc::clone(&accepted),
            Arc::clone(&failures),
        );
        tasks.spawn(async move {
            while tracker.now_ns() < window.end_ns {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= capacity as u64 {
                    break;
                }
                let mut request = json_post(&uri, template.render(seq));
                request
                    .headers_mut()
                    .insert(header::AUTHORIZATION, HeaderValue::clone(&authorization));
                let sent = tracker.now_ns();
                tracker.mark_sent(seq);
                match fetch(&client, request).await {
                    Ok((StatusCode::ACCEPTED, _)) => {
                        let now = tracker.now_ns();
                        accepted.total.fetch_add(1, Ordering::Relaxed);
                        if window.contains(now) {
                            accepted.in_window.fetch_add(1, Ordering::Relaxed);
                            accepted.latency.record_nanos(now - sent);
                        }
                    }
                    Ok((status, body)) => {
                        failures.record(format!("{status}: {}", String::from_utf8_lossy(&body)));
                    }
                    Err(error) => failures.record(error),
                }
            }
        });
    }
    let (cores, clients_done) = run
        .finish(&tracker, &mut tasks, "draining", Duration::from_secs(30))
        .await;
    let total = accepted.total.load(Ordering::Relaxed);
    let drained = drain(&tracker, total, "accepted messages").await;
    let drain_ns = tracker.last_receipt_ns().saturating_sub(window.end_ns);
    run.stop();
    let commits = guard
        .commits()
        .map(|commits| commits.saturating_sub(commits_before));
    let _ = stop.send(());
    let served = server.await;
    let shutdown = sender.shutdown().await;
    drop(receiver);
    drop(guard);
    if !clients_done {
        return Err("the clients did not finish within 30 s of the window's end".into());
    }
    drained?;
    served??;
    shutdown?;
    failures.report(label, "publish requests");

    let mut measurement = window.measure(&tracker, failures.count(), cores);
    let (delivery_p50_ms, delivery_p99_ms) = (measurement.p50_ms, measurement.p99_ms);
    measurement.p50_ms = accepted.latency.percentile_ms(50.0);
    measurement.p99_ms = accepted.latency.percentile_ms(99.0);
    measurement.commits_per_delivery = per_delivery(commits, total);
    Ok(Published {
        measurement,
        accepted_per_sec: window.rate(accepted.in_window.load(Ordering::Relaxed)),
        delivery_p50_ms,
        delivery_p99_ms,
        drain: Duration::from_nanos(drain_ns),
    })
}

/// The 202 answers of a run: all of them, those inside the window, and the latency of
/// those.
#[derive(Debug, Default)]
struct Accepted {
    total: AtomicU64,
    in_window: AtomicU64,
    latency: Histogram,
}

/// Sets the service up through its own API with the admin token: the organization, its
/// webhook secret, one event-style endpoint at `receiver`, and an API token, which it
/// returns.
async fn set_up(
    client: &PlainClient,
    base: &str,
    receiver: &str,
    max_concurrency: usize,
) -> Result<String, BoxError> {
    let organization = format!("{base}/v1/organizations/{ORGANIZATION}");
    let organizations = format!("{base}/v1/organizations");
    call(
        client,
        Method::POST,
        &organizations,
        &json!({"id": ORGANIZATION}),
    )
    .await?;
    let secret = json!({ "secret": SECRET });
    call(
        client,
        Method::PUT,
        &format!("{organization}/secret"),
        &secret,
    )
    .await?;
    let endpoint = json!({
        "url": receiver,
        "style": "event",
        "event_types": [EVENT_TYPE.as_str()],
        "max_concurrency": max_concurrency,
    });
    call(
        client,
        Method::POST,
        &format!("{organization}/endpoints"),
        &endpoint,
    )
    .await?;
    let issued = call(
        client,
        Method::POST,
        &format!("{organization}/tokens"),
        &json!({}),
    )
    .await?;
    issued["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no token in the answer to POST {organization}/tokens").into())
}

/// One admin call: `method` on `url` with `body`; the answer's JSON (`null` when empty),
/// or an error naming the call when it is not a 2xx.
async fn call(
    client: &PlainClient,
    method: Method,
    url: &str,
    body: &Value,
) -> Result<Value, BoxError> {
    let mut request = json_post(&url.parse()?, serde_json::to_vec(body)?);
    *request.method_mut() = method.clone();
    request.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::try_from(format!("Bearer {ADMIN_TOKEN}"))?,
    );
    let (status, answer) = fetch(client, request).await?;
    if !status.is_success() {
        return Err(format!(
            "{method} {url}: {status} {}",
            String::from_utf8_lossy(&answer)
        )
        .into());
    }
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}
