//! A receiver that misbehaves on purpose: a raw HTTP/1.1 front on 127.0.0.1 that decides,
//! request by request, whether to pass the request to the real receiver service, answer a
//! status itself, hold the answer past the sender's timeout, or reset the connection
//! (before, after or in the middle of answering). It can also go down (closing its listener
//! and every connection, so connections are refused) and come back on the same port.
//!
//! HTTP/1.1 is spoken by hand so that a connection can be cut at any byte; keep-alive is
//! supported, chunked request bodies are not (the sender always sends `Content-Length`).
//!
//! ```no_run
//! # async fn demo() {
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use webhook_e2e::faults::{Fault, FaultyServer};
//!
//! let ok = tower::service_fn(|_request: http::Request<Full<Bytes>>| async {
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
//! });
//! let server = FaultyServer::start(ok, |index| match index % 3 {
//!     0 => Fault::status(503),
//!     1 => Fault::SlowAnswer(Duration::from_secs(1)),
//!     _ => Fault::Pass,
//! })
//! .await;
//! server.down().await; // connections refused from now on
//! server.up().await; // back on the same port
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tower::{Service, ServiceExt as _};

use crate::server::accept_loop;

/// Request heads larger than this close the connection.
const MAX_HEAD: usize = 64 * 1024;

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Pass the request to the receiver service and write its answer.
    Pass,
    /// Answer this status (with `Retry-After` seconds, if given) without passing the request
    /// on, as an overloaded proxy would.
    Status {
        /// The status code.
        status: u16,
        /// A `Retry-After` value in seconds.
        retry_after: Option<u64>,
    },
    /// Pass the request on, then hold the answer this long before writing it.
    SlowAnswer(Duration),
    /// Reset the connection (RST) before the request reaches the receiver service.
    ResetBeforeHandling,
    /// Pass the request on, then reset the connection without answering.
    ResetAfterHandling,
    /// Pass the request on, write the first bytes of the answer (`HTTP/1.1 2`), then reset.
    ResetMidResponse,
}

impl Fault {
    /// A plain status answer, without `Retry-After`.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// A short name, for counting.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Status {
                retry_after: None, ..
            } => "status",
            Self::Status {
                retry_after: Some(_),
                ..
            } => "status+retry-after",
            Self::SlowAnswer(_) => "slow",
            Self::ResetBeforeHandling => "reset-before",
            Self::ResetAfterHandling => "reset-after",
            Self::ResetMidResponse => "reset-mid-response",
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Handler =
    dyn Fn(Request<Full<Bytes>>) -> BoxFuture<(StatusCode, HeaderMap, Bytes)> + Send + Sync;
type Decide = dyn Fn(usize) -> Fault + Send + Sync;

struct State {
    handler: Box<Handler>,
    decide: Box<Decide>,
    count: AtomicUsize,
    applied: Mutex<HashMap<&'static str, usize>>,
}

/// The misbehaving server. Stops when dropped.
pub struct FaultyServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FaultyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        if let Some(task) = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl FaultyServer {
    /// Starts on a free loopback port; `decide(i)` picks the fault for the i-th request
    /// (0-based, over the server's whole life).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start<S, B>(
        service: S,
        decide: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> Self
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
    {
        let service = Mutex::new(service);
        let handler =
            move |request: Request<Full<Bytes>>| -> BoxFuture<(StatusCode, HeaderMap, Bytes)> {
                let service = service
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                Box::pin(async move {
                    let Ok(response) = service.oneshot(request).await;
                    let (parts, body) = response.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    (parts.status, parts.headers, body)
                })
            };
        let state = Arc::new(State {
            handler: Box::new(handler),
            decide: Box::new(decide),
            count: AtomicUsize::new(0),
            applied: Mutex::new(HashMap::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        let server = Self {
            addr,
            state,
            accept: Mutex::new(None),
        };
        server.serve(listener);
        server
    }

    fn serve(&self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        // Aborting the task drops the loop's connections too.
        let task = tokio::spawn(accept_loop(listener, move |stream| {
            connection(Arc::clone(&state), stream)
        }));
        *self.accept.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
    }

    /// `http://127.0.0.1:<port>/webhook`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// Requests received so far (each got a fault decision).
    #[must_use]
    pub fn requests(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    /// How often each fault was applied, by [`Fault::name`].
    #[must_use]
    pub fn applied(&self) -> HashMap<&'static str, usize> {
        self.state
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Goes down: closes the listener and every open connection; new connections are
    /// refused until [`FaultyServer::up`].
    pub async fn down(&self) {
        let task = self
            .accept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Comes back on the same port.
    ///
    /// # Panics
    /// When the port cannot be bound again.
    pub async fn up(&self) {
        let socket = TcpSocket::new_v4().expect("create a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(self.addr).expect("bind the same port again");
        let listener = socket.listen(1024).expect("listen");
        self.serve(listener);
    }
}

/// Serves one connection, request after request (keep-alive).
async fn connection(state: Arc<State>, mut stream: TcpStream) {
    let mut buffer = Vec::with_capacity(4096);
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let Some((method, uri, headers, length)) = parse_head(&buffer[..head_len]) else {
            return;
        };
        buffer.drain(..head_len);
        while buffer.len() < length {
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer.drain(..length).collect();
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;

        let index = state.count.fetch_add(1, Ordering::SeqCst);
        let fault = (state.decide)(index);
        *state
            .applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(fault.name())
            .or_default() += 1;
        let answer = match fault {
            Fault::ResetBeforeHandling => return reset(stream),
            Fault::Status {
                status,
                retry_after,
            } => {
                let mut headers = HeaderMap::new();
                if let Some(seconds) = retry_after {
                    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                // The body names the hint, so that tests can read it back from the sender's
                // attempt history (which keeps the start of each response body).
                let body = format!(
                    "{{\"fault\":\"injected\",\"retryAfter\":{}}}",
                    retry_after.map_or_else(|| "null".to_owned(), |s| s.to_string())
                );
                encode_response(status, &headers, body.as_bytes())
            }
            Fault::Pass
            | Fault::SlowAnswer(_)
            | Fault::ResetAfterHandling
            | Fault::ResetMidResponse => {
                let (status, headers, body) = (state.handler)(request).await;
                encode_response(status, &headers, &body)
            }
        };
        match fault {
            Fault::ResetAfterHandling => return reset(stream),
            Fault::ResetMidResponse => {
                let _ = stream.write_all(&answer[..answer.len().min(10)]).await;
                let _ = stream.flush().await;
                return reset(stream);
            }
            Fault::SlowAnswer(delay) => tokio::time::sleep(delay).await,
            _ => {}
        }
        if stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// Reads until the end of a request head; returns its length (including the blank line),
/// or `None` when the peer closed or the head is too large.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end + 4);
        }
        if buffer.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

fn parse_head(head: &[u8]) -> Option<(Method, http::Uri, HeaderMap, usize)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = Method::from_bytes(request_line.next()?.as_bytes()).ok()?;
    let uri = request_line.next()?.parse().ok()?;
    let mut headers = HeaderMap::new();
    let mut length = 0;
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = HeaderValue::from_str(value.trim()).ok()?;
        if name == http::header::CONTENT_LENGTH {
            length = value.to_str().ok()?.parse().ok()?;
        }
        if name == http::header::TRANSFER_ENCODING {
            return None;
        }
        headers.append(name, value);
    }
    Some((method, uri, headers, length))
}

fn encode_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in headers {
        if name == http::header::CONTENT_LENGTH || name == http::header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// Closes with RST (SO_LINGER 0) rather than FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
