//! The TCP connector behind the HTTP client: resolves the host, drops every address the
//! SSRF guard refuses, and connects only to the rest; the peer address is checked again
//! once connected. Because the check happens at connect time on the addresses actually
//! used, a name that re-resolves to a forbidden address (DNS rebinding) is still refused.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::guard::{AllowList, ForbiddenAddress};
use super::resolve::Resolve;

/// Why a connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// The URI has no host.
    NoHost,
    /// The name did not resolve.
    Dns(io::Error),
    /// Every address was refused by the guard.
    Forbidden(ForbiddenAddress),
    /// No allowed address accepted the connection.
    Connect(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoHost => f.write_str("URI has no host"),
            Self::Dns(e) => write!(f, "DNS resolution failed: {e}"),
            Self::Forbidden(class) => write!(f, "address refused by SSRF guard: {class}"),
            Self::Connect(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Connects to allowed addresses only.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    resolver: Arc<dyn Resolve>,
    allow: Arc<AllowList>,
    connect_timeout: Duration,
}

impl fmt::Debug for GuardedConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedConnector")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl GuardedConnector {
    pub(crate) fn new(
        resolver: Arc<dyn Resolve>,
        allow: Arc<AllowList>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            resolver,
            allow,
            connect_timeout,
        }
    }

    /// The host's addresses that the guard allows.
    pub(crate) async fn allowed_addresses(&self, host: &str) -> Result<Vec<IpAddr>, ConnectError> {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match literal.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .resolve(host)
                .await
                .map_err(ConnectError::Dns)?,
        };
        if addrs.is_empty() {
            return Err(ConnectError::Dns(io::Error::new(
                io::ErrorKind::NotFound,
                "name has no addresses",
            )));
        }
        let mut refused = None;
        let allowed: Vec<IpAddr> = addrs
            .into_iter()
            .filter(|ip| match self.allow.check(*ip) {
                Ok(()) => true,
                Err(class) => {
                    refused.get_or_insert(class);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (true, Some(class)) => Err(ConnectError::Forbidden(class)),
            _ => Ok(allowed),
        }
    }

    async fn connect(self, uri: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let host = uri.host().ok_or(ConnectError::NoHost)?;
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let addrs = self.allowed_addresses(host).await?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for ip in addrs {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Belt and braces: judge the address the socket is really connected to.
                    let peer = stream.peer_addr().map_err(ConnectError::Connect)?;
                    self.allow
                        .check(peer.ip())
                        .map_err(ConnectError::Forbidden)?;
                    let _ = stream.set_nodelay(true);
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(error)) => last = error,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            }
        }
        Err(ConnectError::Connect(last))
    }
}

impl tower::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future =
        Pin<Box<dyn Future<Output = Result<TokioIo<TcpStream>, ConnectError>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}
