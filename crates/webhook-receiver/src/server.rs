//! A hardened HTTP/1.1 server for the middleware (feature `server`): head and body
//! deadlines, an idle timeout, a connection cap, and an accept loop that survives running
//! out of file descriptors.
//!
//! [`serve`] runs any tower service (a [`WebhookLayer`](crate::WebhookLayer)-wrapped
//! handler, an axum `Router`) on a `TcpListener` until `shutdown` resolves, then lets the
//! requests in progress finish. It is what `webhook listen` and the receiver examples
//! use, and what a platform embedding the receiver should use instead of a bare accept
//! loop, which a single client can starve:
//!
//! | setting | default | what a slow or greedy client meets |
//! |---|---|---|
//! | [`header_read_timeout`](ServerConfig::header_read_timeout) | 10 s | a request head not complete 10 s after the connection began waiting for it: connection closed (hyper's `header_read_timeout`) |
//! | [`body_read_timeout`](ServerConfig::body_read_timeout) | 20 s | a body not complete 20 s after its head: `408` from the webhook layer, connection closed ([`BodyDeadlineLayer`]) |
//! | [`idle_timeout`](ServerConfig::idle_timeout) | 5 s | a kept-alive connection without a request for 5 s: closed |
//! | [`max_connections`](ServerConfig::max_connections) | 1024 | at the cap, no further connection is accepted (they wait in the listen backlog) and idle connections are closed at once to make room; requests in progress are never cut |
//! | accept errors | | `EMFILE`/`ENFILE` and other resource errors pause accepting (10 ms, doubling to 1 s, until an accept succeeds) instead of spinning; reported at most once a second, with a count of those not reported |
//!
//! The three deadlines bound what one connection can hold: at most `max_connections`
//! sockets, each for at most `header_read_timeout + body_read_timeout` before its request
//! reaches the handler. Size `max_connections` below the process's file-descriptor
//! limit (`ulimit -n`) minus what the rest of the program uses; above it the accept loop
//! meets `EMFILE` and backs off, which is safe but slower to recover.
//!
//! **HTTP/1.1 only.** The toolkit's sender speaks HTTP/1.1 to plain-HTTP endpoints, and
//! hyper's HTTP/2 server has no head or idle timeout for cleartext (h2c) connections.
//! Terminate TLS and HTTP/2 in a proxy in front if you need them.
//!
//! **The idle and head timers overlap.** hyper starts the head timer when a connection
//! begins waiting for a request (also between requests on a kept-alive connection), so
//! an `idle_timeout` above `header_read_timeout` has no effect.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower::Layer as _;
//! use webhook_receiver::server::{ServerConfig, serve};
//! use webhook_receiver::{VerifiedWebhook, Verifier, WebhookLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let handler = tower::service_fn(|request: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
//!     let _webhook = request.extensions().get::<VerifiedWebhook>();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
//! });
//! let service = WebhookLayer::new(Verifier::event_secrets(["my-org-secret"])?).layer(handler);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let config = ServerConfig::default().max_connections(256).body_read_timeout(Duration::from_secs(10));
//! serve(listener, service, config, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::{Layer as _, Service};

use crate::BoxError;
use crate::deadline::{BodyDeadlineLayer, DEFAULT_BODY_READ_TIMEOUT, DeadlineBody};

/// The request body type the served service receives: hyper's body under the
/// whole-body deadline.
pub type RequestBody = DeadlineBody<Incoming>;

/// Head deadline unless configured otherwise: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle keep-alive timeout unless configured otherwise: 5 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connection cap unless configured otherwise: 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long shutdown waits for requests in progress unless configured otherwise: 10 s.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The first pause after an accept error that is not about one connection.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between accept attempts while errors go on.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// At the cap, idle connections are asked to close this often until a slot frees.
const PRESSURE_REPEAT: Duration = Duration::from_millis(50);
/// Accept errors are reported at most once per this interval.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The server's limits and timeouts; `ServerConfig::default()` is the recommended setting
/// (see the [module docs](self) for what each one defends against).
#[derive(Clone)]
pub struct ServerConfig {
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    shutdown_grace: Duration,
    reporter: Arc<dyn Fn(&AcceptErrorReport<'_>) + Send + Sync>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            reporter: Arc::new(|report| {
                tracing::warn!(
                    error = %report.error,
                    not_reported = report.not_reported,
                    pause_ms = u64::try_from(report.pause.as_millis()).unwrap_or(u64::MAX),
                    "accept failed"
                );
            }),
        }
    }
}

impl ServerConfig {
    /// How long a connection may take to send a complete request head, counted from
    /// when it begins waiting for one. Default is 10 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request's whole body may take, counted from its head. Default is 20 s
    /// ([`DEFAULT_BODY_READ_TIMEOUT`]).
    #[must_use]
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How long a kept-alive connection may wait for its next request. Default is 5 s;
    /// values above the header timeout have no effect (see the module docs).
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The most connections served at once (at least 1, at most `u32::MAX`). Default is
    /// 1024.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        let most = usize::try_from(u32::MAX)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        self.max_connections = max.clamp(1, most);
        self
    }

    /// How long [`serve`] waits for requests in progress after `shutdown` resolved.
    /// Default is 10 s.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Where accept errors are reported (at most once a second; see
    /// [`AcceptErrorReport`]). Default is a `tracing` warning.
    #[must_use]
    pub fn on_accept_error(
        mut self,
        reporter: impl Fn(&AcceptErrorReport<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.reporter = Arc::new(reporter);
        self
    }

    /// The configured head deadline.
    #[must_use]
    pub fn get_header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }

    /// The configured whole-body deadline.
    #[must_use]
    pub fn get_body_read_timeout(&self) -> Duration {
        self.body_read_timeout
    }

    /// The configured idle timeout.
    #[must_use]
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The configured connection cap.
    #[must_use]
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// One report of failing accepts, at most one a second.
#[derive(Debug)]
#[non_exhaustive]
pub struct AcceptErrorReport<'a> {
    /// The latest error.
    pub error: &'a io::Error,
    /// Errors since the previous report that were not reported on their own.
    pub not_reported: u64,
    /// How long the loop now waits before accepting again.
    pub pause: Duration,
}

impl fmt::Display for AcceptErrorReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "accept failed: {}", self.error)?;
        if self.not_reported > 0 {
            write!(f, " ({} more since the last report)", self.not_reported)?;
        }
        if !self.pause.is_zero() {
            write!(f, "; pausing {} ms", self.pause.as_millis())?;
        }
        Ok(())
    }
}

/// Serves `service` on `listener` with `config`'s limits until `shutdown` resolves, then
/// stops accepting, lets requests in progress finish (closing idle connections at once)
/// for up to the shutdown grace, and returns.
///
/// The service gets `Request<`[`RequestBody`]`>`: hyper's body under the configured
/// whole-body deadline. Any `Clone` tower service fits, an axum `Router` included.
///
/// # Errors
/// None today: accept errors are reported and retried, never returned. The `Result`
/// leaves room for errors that would make serving impossible.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Service<Request<RequestBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let service = BodyDeadlineLayer::new(config.body_read_timeout).layer(service);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    let shared = Arc::new(Shared {
        permits: Arc::new(Semaphore::new(config.max_connections)),
        pressure: Notify::new(),
        stop: watch::channel(false).0,
        idle_timeout: config.idle_timeout,
    });
    let mut errors = AcceptErrors::default();
    let mut shutdown = pin!(shutdown);

    loop {
        let permit = loop {
            if let Ok(permit) = Arc::clone(&shared.permits).try_acquire_owned() {
                break Some(permit);
            }
            // At the cap: ask idle connections to make room, and ask again every
            // `PRESSURE_REPEAT` (a busy connection may have become idle meanwhile).
            shared.pressure.notify_waiters();
            tokio::select! {
                permit = Arc::clone(&shared.permits).acquire_owned() => break permit.ok(),
                () = tokio::time::sleep(PRESSURE_REPEAT) => {}
                () = &mut shutdown => break None,
            }
        };
        let Some(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                errors.succeeded();
                stream
            }
            Err(error) => {
                let now = Instant::now();
                let pause = errors.failed(&error, now, |report| (config.reporter)(report));
                if !pause.is_zero() {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = &mut shutdown => break,
                    }
                }
                continue;
            }
        };
        let activity = Arc::new(Activity::new());
        let tracked = Tracked {
            inner: service.clone(),
            activity: Arc::clone(&activity),
        };
        let builder = Arc::clone(&builder);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(tracked));
            shared.drive(connection, &activity).await;
            drop(permit);
        });
    }

    // Stop: no more accepts; idle connections close now, busy ones after their request.
    drop(listener);
    shared.stop.send_replace(true);
    let everyone = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    let drained =
        tokio::time::timeout(config.shutdown_grace, shared.permits.acquire_many(everyone)).await;
    if drained.is_err() {
        tracing::warn!(
            grace_ms = u64::try_from(config.shutdown_grace.as_millis()).unwrap_or(u64::MAX),
            "some connections did not finish within the shutdown grace"
        );
    }
    Ok(())
}

/// What every connection task shares with the accept loop.
struct Shared {
    permits: Arc<Semaphore>,
    /// Notified when the cap is reached: idle connections close to make room.
    pressure: Notify,
    /// `true` once shutdown began.
    stop: watch::Sender<bool>,
    idle_timeout: Duration,
}

impl Shared {
    /// Runs one connection to its end, shutting it down gracefully when it has been idle
    /// too long, when the cap is reached while it is idle, or when the server stops.
    async fn drive<C>(&self, connection: C, activity: &Activity)
    where
        C: GracefulConnection,
    {
        let mut connection = pin!(connection);
        let mut stop = self.stop.subscribe();
        let mut closing = false;
        loop {
            let idle_check = tokio::time::sleep_until(activity.idle_deadline(self.idle_timeout));
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = async { stop.wait_for(|stopped| *stopped).await.is_ok() }, if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                () = self.pressure.notified(), if !closing => {
                    if activity.is_idle() {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
                () = idle_check, if !closing => {
                    if activity.is_idle()
                        && Instant::now() >= activity.idle_deadline(self.idle_timeout)
                    {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when it last became idle.
struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection counts as idle for too long (if it stays idle).
    fn idle_deadline(&self, idle_timeout: Duration) -> Instant {
        if self.is_idle() {
            let since =
                self.base + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            since + idle_timeout
        } else {
            Instant::now() + idle_timeout
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        let millis = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(millis, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The served service, counting its requests in flight on the connection's [`Activity`].
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, B> Service<Request<B>> for Tracked<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let busy = Busy::new(Arc::clone(&self.activity));
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            drop(busy);
            result
        })
    }
}

/// One request in flight; dropping it (answered, failed or cancelled) ends it.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.begin();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The accept loop's error state: backoff and rate-limited reporting.
#[derive(Debug, Default)]
struct AcceptErrors {
    pause: Duration,
    last_report: Option<Instant>,
    not_reported: u64,
}

impl AcceptErrors {
    /// Records a failed accept at `now`; reports it through `report` unless one was
    /// reported less than a second ago; returns how long to pause before the next accept.
    fn failed(
        &mut self,
        error: &io::Error,
        now: Instant,
        report: impl FnOnce(&AcceptErrorReport<'_>),
    ) -> Duration {
        let pause = if is_per_connection(error) {
            Duration::ZERO
        } else {
            self.pause = (self.pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
            self.pause
        };
        let due = self
            .last_report
            .is_none_or(|last| now.saturating_duration_since(last) >= REPORT_INTERVAL);
        if due {
            report(&AcceptErrorReport {
                error,
                not_reported: self.not_reported,
                pause,
            });
            self.last_report = Some(now);
            self.not_reported = 0;
        } else {
            self.not_reported += 1;
        }
        pause
    }

    fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }
}

/// Errors about one connection that went away before it was accepted: accept again at once.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(24)
    }

    #[test]
    fn resource_errors_back_off_and_are_reported_once_a_second() {
        let mut errors = AcceptErrors::default();
        let start = Instant::now();
        let mut reports = Vec::new();
        let mut pauses = Vec::new();
        // 10,000 failures within 2.5 s of clock time.
        for i in 0..10_000u32 {
            let now = start + Duration::from_micros(u64::from(i) * 250);
            pauses.push(errors.failed(&emfile(), now, |r| {
                reports.push((r.not_reported, r.pause, r.to_string()));
            }));
        }
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!(reports[0].0, 0);
        assert!(reports[1].0 > 3_000, "{reports:?}");
        assert!(
            reports[1].2.contains("more since the last report"),
            "{}",
            reports[1].2
        );
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert_eq!(pauses[1], FIRST_PAUSE * 2);
        assert_eq!(*pauses.last().unwrap(), LONGEST_PAUSE);

        // A success resets the backoff; a lost connection does not pause at all.
        errors.succeeded();
        let later = start + Duration::from_secs(10);
        assert_eq!(errors.failed(&emfile(), later, |_| {}), FIRST_PAUSE);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(errors.failed(&aborted, later, |_| {}), Duration::ZERO);
    }
}
