//! `server::serve` against slow, idle and greedy clients on 127.0.0.1: a half-sent head,
//! a trickled body, idle keep-alive connections, and more connections than the cap.
//! Every wait is bounded by `IO_DEADLINE`; the timeouts under test are a few hundred ms.

#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Fixture, IO_DEADLINE, Recorder, event_body, recording_handler, send};
use http::{Request, Response};
use http_body_util::Full;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower::Layer as _;
use webhook_receiver::WebhookLayer;
use webhook_receiver::server::{RequestBody, ServerConfig, serve};

/// A `serve` task on 127.0.0.1:0; stops (gracefully) on drop.
struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start<S>(service: S, config: ServerConfig) -> Self
    where
        S: tower::Service<
                Request<RequestBody>,
                Response = Response<webhook_receiver::ResponseBody<Full<Bytes>>>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, service, config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// Reads until the server closes the connection (or `IO_DEADLINE`); returns what was read
/// and how long it took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(IO_DEADLINE, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {IO_DEADLINE:?}"
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// `serve` with `config` running the webhook layer over a recording handler.
async fn start_webhook(
    fixture: &Fixture,
    recorder: &Arc<Recorder>,
    config: ServerConfig,
) -> Served {
    let service =
        WebhookLayer::new(fixture.verifier.clone()).layer(recording_handler(Arc::clone(recorder)));
    Served::start(service, config).await
}

/// A keep-alive request that completes, so the connection is then idle and known to be
/// accepted by the server.
async fn keep_alive_exchange(stream: &mut TcpStream, fixture: &Fixture, key: &str) {
    let mut bytes = fixture.signed("", &event_body(key)).to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    bytes = text.replacen("Connection: close\r\n", "", 1).into_bytes();
    stream.write_all(&bytes).await.unwrap();
    let mut buffer = [0u8; 4096];
    let n = tokio::time::timeout(IO_DEADLINE, stream.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buffer[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn a_half_sent_head_is_closed_within_the_header_timeout() {
    let fixture = Fixture::event();
    let recorder = Recorder::new();
    let config = ServerConfig::default()
        .header_read_timeout(Duration::from_millis(300))
        .idle_timeout(Duration::from_secs(60));
    let server = start_webhook(&fixture, &recorder, config).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Webhook-Timest")
        .await
        .unwrap();
    let (_, took) = read_until_closed(&mut stream).await;
    // Closed by the 300 ms head timer, far below the 60 s idle timeout.
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert_eq!(recorder.calls(), 0);

    // A connection that sends nothing at all is closed by the same timer.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let (received, took) = read_until_closed(&mut silent).await;
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert!(!received.contains("200"), "{received}");
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_with_408_within_the_body_timeout() {
    let fixture = Fixture::event();
    let recorder = Recorder::new();
    let config = ServerConfig::default().body_read_timeout(Duration::from_millis(500));
    let server = start_webhook(&fixture, &recorder, config).await;

    let request = fixture.signed("", &event_body("k-trickle")).to_bytes();
    let split = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, body) = request.split_at(split);
    let body = body.to_vec();
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head).await.unwrap();
    // One byte every 20 ms: the whole body would take several seconds.
    assert!(body.len() > 100, "{}", body.len());
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    });
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(IO_DEADLINE, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    let took = started.elapsed();
    trickle.abort();
    assert!(
        read.is_ok(),
        "the trickled request was still open after {IO_DEADLINE:?}"
    );
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(recorder.calls(), 0);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let fixture = Fixture::event();
    let recorder = Recorder::new();
    let config = ServerConfig::default().idle_timeout(Duration::from_millis(300));
    let server = start_webhook(&fixture, &recorder, config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    keep_alive_exchange(&mut stream, &fixture, "k-idle").await;
    let (_, took) = read_until_closed(&mut stream).await;
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    assert_eq!(recorder.calls(), 1);
}

#[tokio::test]
async fn a_request_is_served_while_the_caps_worth_of_idle_connections_is_open() {
    const CAP: usize = 4;
    let fixture = Fixture::event();
    let recorder = Recorder::new();
    let config = ServerConfig::default()
        .max_connections(CAP)
        .idle_timeout(Duration::from_secs(60))
        .header_read_timeout(Duration::from_secs(60));
    let server = start_webhook(&fixture, &recorder, config).await;

    // CAP kept-alive connections, each accepted and now idle.
    let mut idle = Vec::new();
    for i in 0..CAP {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        keep_alive_exchange(&mut stream, &fixture, &format!("k-idle-{i}")).await;
        idle.push(stream);
    }
    // One more client: served, because idle connections make room at the cap.
    let response = send(server.addr, &fixture.signed("", &event_body("k-new"))).await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(recorder.calls(), CAP + 1);
    // At least one idle connection was closed to make that room.
    let mut closed = 0;
    for stream in &mut idle {
        let mut buffer = [0u8; 16];
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await
        {
            closed += 1;
        }
    }
    assert!(closed >= 1, "no idle connection was closed");
}

#[tokio::test]
async fn at_the_cap_busy_connections_keep_their_requests_and_the_next_one_waits() {
    const CAP: usize = 2;
    let fixture = Fixture::event();
    let recorder = Recorder::gated();
    let config = ServerConfig::default().max_connections(CAP);
    let server = start_webhook(&fixture, &recorder, config).await;

    let mut busy = Vec::new();
    for i in 0..CAP {
        let request = fixture.signed("", &event_body(&format!("k-busy-{i}")));
        let addr = server.addr;
        busy.push(tokio::spawn(async move { send(addr, &request).await }));
    }
    common::wait_until("both requests reach the handler", || {
        recorder.calls() == CAP
    })
    .await;
    let request = fixture.signed("", &event_body("k-waiting"));
    let addr = server.addr;
    let mut waiting = tokio::spawn(async move { send(addr, &request).await });
    // Over the cap: not accepted (nor answered) while both connections are busy.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(
        early.is_err(),
        "a connection over the cap was served: {early:?}"
    );
    assert_eq!(recorder.calls(), CAP);

    recorder.gate.as_ref().unwrap().add_permits(CAP + 1);
    for task in busy {
        assert_eq!(task.await.unwrap().status, 200);
    }
    assert_eq!(waiting.await.unwrap().status, 200);
    assert_eq!(recorder.calls(), CAP + 1);
}

#[tokio::test]
async fn a_connection_waiting_at_the_cap_gets_the_slot_of_one_that_turns_idle() {
    const CAP: usize = 2;
    let fixture = Arc::new(Fixture::event());
    let recorder = Recorder::gated();
    let config = ServerConfig::default()
        .max_connections(CAP)
        .idle_timeout(Duration::from_secs(60))
        .header_read_timeout(Duration::from_secs(60));
    let server = start_webhook(&fixture, &recorder, config).await;

    // CAP kept-alive connections, each with a request held in the handler.
    let mut held = Vec::new();
    for i in 0..CAP {
        let (fixture, addr) = (Arc::clone(&fixture), server.addr);
        held.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            keep_alive_exchange(&mut stream, &fixture, &format!("k-keep-{i}")).await;
            stream // stays open, idle, after its answer
        }));
    }
    common::wait_until("both requests reach the handler", || {
        recorder.calls() == CAP
    })
    .await;
    let request = fixture.signed("", &event_body("k-next"));
    let addr = server.addr;
    let mut waiting = tokio::spawn(async move { send(addr, &request).await });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut waiting)
            .await
            .is_err()
    );
    // The held requests are answered; their connections stay open but idle, and one of
    // them makes room long before the 60 s idle timeout.
    recorder.gate.as_ref().unwrap().add_permits(CAP + 1);
    let mut streams = Vec::new();
    for task in held {
        streams.push(task.await.unwrap());
    }
    assert_eq!(waiting.await.unwrap().status, 200);
    assert_eq!(recorder.calls(), CAP + 1);
}
