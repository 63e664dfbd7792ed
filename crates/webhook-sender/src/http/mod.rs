//! The HTTP side of an attempt: a pooled hyper 1 client (HTTP/1.1 and HTTP/2, HTTPS through
//! rustls), the SSRF-guarded connector, capped response reading, and error classification.
//!
//! Nothing here is public except the guard's and resolver's types; hyper's types stay inside.
//!
//! ```
//! use webhook_sender::{AllowList, Cidr};
//!
//! // Tests and local development opt in to loopback; a staging network might add a range.
//! let allow = AllowList::loopback().allow("10.20.0.0/16".parse::<Cidr>()?);
//! # drop(allow);
//! # Ok::<(), webhook_sender::InvalidCidr>(())
//! ```

mod connector;
mod guard;
mod resolve;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use self::connector::{ConnectError, GuardedConnector};
pub use self::guard::{AllowList, Cidr, ForbiddenAddress, InvalidCidr};
pub use self::resolve::{Resolve, ResolveFuture, StaticResolver, SystemResolver};
use crate::delivery::AttemptErrorKind;
use crate::error::Error;

/// Response bodies are read up to this many bytes; a longer body is dropped unread (and its
/// connection closed rather than reused).
pub(crate) const BODY_READ_CAP: usize = 8 * 1024;
/// This much of the body is kept in the attempt history.
pub(crate) const BODY_KEEP: usize = 1024;

/// What came back from an endpoint.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

/// Why no response came back.
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) kind: AttemptErrorKind,
    pub(crate) message: String,
}

/// Settings for [`HttpClient::new`].
#[derive(Debug, Clone)]
pub(crate) struct ClientSettings {
    pub(crate) allow: AllowList,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) pool_max_idle_per_host: usize,
}

/// The pooled client every attempt goes through.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<GuardedConnector>, Full<Bytes>>,
    connector: GuardedConnector,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    pub(crate) fn new(settings: ClientSettings) -> Result<Self, Error> {
        let tls = tls::client_config(&settings.extra_roots)?;
        let connector = GuardedConnector::new(
            settings.resolver,
            Arc::new(settings.allow),
            settings.connect_timeout,
        );
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector.clone());
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_max_idle_per_host(settings.pool_max_idle_per_host)
            .build(https);
        Ok(Self { client, connector })
    }

    /// Checks a host before an endpoint is saved: at least one of its addresses must be
    /// allowed. The connector checks again on every connection.
    pub(crate) async fn check_host(&self, host: &str) -> Result<(), Error> {
        match self.connector.allowed_addresses(host).await {
            Ok(_) => Ok(()),
            Err(ConnectError::Forbidden(class)) => Err(Error::forbidden(class)),
            // A name that does not resolve yet is allowed: it is checked at connect time.
            Err(_) => Ok(()),
        }
    }

    /// Sends one request and reads the start of the response, all within `timeout`.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response, SendError> {
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(SendError {
                kind: AttemptErrorKind::Timeout,
                message: format!("no response within {} ms", timeout.as_millis()),
            }),
        }
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Response, SendError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| classify(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut kept = Vec::new();
        let mut read = 0usize;
        // A body that ends early or breaks does not change the verdict: the status is in.
        while read < BODY_READ_CAP {
            let Some(Ok(frame)) = body.frame().await else {
                break;
            };
            if let Ok(data) = frame.into_data() {
                read += data.len();
                let room = BODY_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(Response {
            status,
            retry_after,
            body: String::from_utf8_lossy(&kept).into_owned(),
        })
    }
}

/// The attempt error kind of a client error, found by walking its source chain.
fn classify(error: &hyper_util::client::legacy::Error) -> SendError {
    let kind = if error.is_connect() {
        AttemptErrorKind::Connect
    } else {
        AttemptErrorKind::Protocol
    };
    let mut message = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        // io::Error hides what it wraps from `source()`; look inside, however deep.
        let mut candidate = Some(current);
        while let Some(error) = candidate {
            if let Some(connect) = error.downcast_ref::<ConnectError>() {
                let kind = match connect {
                    ConnectError::Dns(_) => AttemptErrorKind::Dns,
                    ConnectError::Forbidden(_) => AttemptErrorKind::Forbidden,
                    ConnectError::NoHost => AttemptErrorKind::Request,
                    ConnectError::Connect(_) => AttemptErrorKind::Connect,
                };
                return SendError {
                    kind,
                    message: connect.to_string(),
                };
            }
            if error.downcast_ref::<rustls::Error>().is_some() {
                return SendError {
                    kind: AttemptErrorKind::Tls,
                    message: format!("TLS: {error}"),
                };
            }
            candidate = error
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .map(|inner| inner as &(dyn std::error::Error + 'static));
        }
        message = format!("{message}: {current}");
        source = current.source();
    }
    SendError { kind, message }
}

/// The `User-Agent` every request carries.
pub(crate) fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("webhook-sender/", env!("CARGO_PKG_VERSION")))
}
