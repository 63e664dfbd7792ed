//! Plain servers on 127.0.0.1: the accept loop every test server shares, and
//! [`HttpServer`], a hyper HTTP/1.1 server around any service (for answers the real
//! receiver never gives: redirects, endless bodies…).
//!
//! ```no_run
//! # async fn demo() {
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use webhook_e2e::server::HttpServer;
//!
//! let server = HttpServer::start(hyper::service::service_fn(|_request| async {
//!     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
//! }))
//! .await;
//! println!("POST to {}", server.url());
//! # }
//! ```

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Accepts connections on `listener` until the returned future is dropped, running
/// `connection(stream)` for each (with `TCP_NODELAY` set). The connections live in a
/// [`JoinSet`] owned by the future: dropping it (aborting the task that runs it) closes
/// every connection too. A failed accept (out of file descriptors, say) is retried after a
/// short sleep rather than in a busy loop.
pub async fn accept_loop<F, C>(listener: TcpListener, mut connection: C)
where
    C: FnMut(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        while connections.try_join_next().is_some() {}
    }
}

/// A hyper HTTP/1.1 server on 127.0.0.1:0 answering every request with a service. Stopped
/// (with every connection) when dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// Starts serving `service` (cloned for each connection).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start<S, B>(service: S) -> Self
    where
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        let task = tokio::spawn(accept_loop(listener, move |stream| {
            let service = service.clone();
            async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        }));
        Self { addr, task }
    }

    /// The server's address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/webhook`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }
}
