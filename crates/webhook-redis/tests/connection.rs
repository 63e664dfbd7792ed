//! The shared connection against `redis-server` processes these tests start: prefixes,
//! errors while Redis is away, reconnection after it comes back, bounded calls.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use webhook_redis::{RedisConfig, RedisConnection, redis};
use webhook_testkit::RedisServer;

/// The longest any bounded wait here may take.
const WAIT: Duration = Duration::from_secs(15);

async fn start(append_only: bool) -> RedisServer {
    tokio::task::spawn_blocking(move || {
        if append_only {
            RedisServer::start_with_aof()
        } else {
            RedisServer::start()
        }
    })
    .await
    .unwrap()
}

fn quick(url: String) -> RedisConfig {
    RedisConfig::new(url)
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .reconnect_max_delay(Duration::from_millis(100))
}

async fn set(
    connection: &RedisConnection,
    name: &str,
    value: &str,
) -> Result<(), webhook_redis::Error> {
    let mut manager = connection.manager();
    let key = connection.keys().key(name);
    connection
        .bounded(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query_async::<()>(&mut manager),
        )
        .await
}

async fn get(
    connection: &RedisConnection,
    name: &str,
) -> Result<Option<String>, webhook_redis::Error> {
    let mut manager = connection.manager();
    let key = connection.keys().key(name);
    connection
        .bounded(redis::cmd("GET").arg(key).query_async(&mut manager))
        .await
}

/// Reads `name`, retrying while the connection is unavailable (it reconnects by itself),
/// for at most [`WAIT`].
async fn get_once_reconnected(connection: &RedisConnection, name: &str) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        match get(connection, name).await {
            Ok(value) => return value,
            Err(error) => {
                assert!(error.is_unavailable(), "{error}");
                assert!(Instant::now() < deadline, "never reconnected: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Connects once (no retries) to `127.0.0.1:port`, where no Redis answers: the error
/// is "unavailable".
async fn connect_fails_as_unavailable(port: u16) {
    let error = quick(format!("redis://127.0.0.1:{port}/"))
        .reconnect_retries(0)
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_unavailable(), "{error}");
}

#[tokio::test]
async fn prefixes_keep_environments_apart() {
    let server = start(false).await;
    let prod = quick(server.url()).prefix("prod:").connect().await.unwrap();
    let staging = quick(server.url())
        .prefix("staging:")
        .connect()
        .await
        .unwrap();
    set(&prod, "k", "p").await.unwrap();
    set(&staging, "k", "s").await.unwrap();
    assert_eq!(get(&prod, "k").await.unwrap().as_deref(), Some("p"));
    assert_eq!(get(&staging, "k").await.unwrap().as_deref(), Some("s"));
    let raw = quick(server.url()).prefix("").connect().await.unwrap();
    assert_eq!(get(&raw, "prod:k").await.unwrap().as_deref(), Some("p"));
    let child = prod.clone().with_keys(prod.keys().child("sender:"));
    set(&child, "k", "c").await.unwrap();
    assert_eq!(
        get(&raw, "prod:sender:k").await.unwrap().as_deref(),
        Some("c")
    );
    assert!(format!("{prod:?}").contains("prod:"));
}

/// While Redis is down every call fails (fast, and never hangs); once it is back the same
/// connection works again, and with the append-only file on it kept what it acknowledged.
#[tokio::test]
async fn calls_fail_while_redis_is_down_and_work_again_after_a_restart() {
    let mut server = start(true).await;
    let connection = quick(server.url()).connect().await.unwrap();
    set(&connection, "kept", "yes").await.unwrap();
    server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();

    for _ in 0..3 {
        let started = Instant::now();
        let error = set(&connection, "lost", "no").await.unwrap_err();
        assert!(error.is_unavailable(), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3), "bounded");
        assert!(connection.ping().await.unwrap_err().is_unavailable());
    }

    let server = tokio::task::spawn_blocking(move || {
        server.launch();
        server
    })
    .await
    .unwrap();
    let value = get_once_reconnected(&connection, "kept").await;
    assert_eq!(
        value.as_deref(),
        Some("yes"),
        "acknowledged before the kill"
    );
    assert_eq!(get(&connection, "lost").await.unwrap(), None);
    drop(server);
}

#[tokio::test]
async fn connecting_to_nothing_fails_as_unavailable_and_a_bad_url_as_config() {
    connect_fails_as_unavailable(webhook_testkit::free_port().unwrap()).await;
    let error = RedisConfig::new("definitely not a url")
        .connect()
        .await
        .unwrap_err();
    assert!(error.is_config(), "{error}");
}

/// A peer that accepts connections but never answers: connecting times out instead of
/// hanging.
#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    connect_fails_as_unavailable(port).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

/// The server drops every client connection: the next calls reconnect by themselves.
#[tokio::test]
async fn a_dropped_connection_is_made_again() {
    let server = start(false).await;
    let connection = quick(server.url()).connect().await.unwrap();
    let admin = quick(server.url()).connect().await.unwrap();
    set(&connection, "k", "v").await.unwrap();
    let mut manager = admin.manager();
    // SKIPME yes (the default): the admin connection survives its own command.
    let killed: u64 = admin
        .bounded(
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async(&mut manager),
        )
        .await
        .unwrap();
    assert!(killed >= 1);
    assert_eq!(
        get_once_reconnected(&connection, "k").await.as_deref(),
        Some("v")
    );
}
