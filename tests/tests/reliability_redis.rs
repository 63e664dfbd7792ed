//! Crash safety and Redis faults with the Redis store (a `redis-server` with the
//! append-only file on, `appendfsync always`, started by the test):
//!
//! - two sender processes share one Redis; one is killed with SIGKILL mid-stream and
//!   restarted; every event reaches the receiver's handler exactly once;
//! - the store's connections are dropped by Redis (`CLIENT KILL`), then Redis itself is
//!   killed and restarted: `publish` fails with a store error while Redis is down, and every
//!   publish that was acknowledged is delivered.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use webhook_e2e::crash::{self, Backend, CrashSender};
use webhook_e2e::outage::{self, Outage};
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_redis::RedisConfig;
use webhook_sender::store::RedisStore;
use webhook_testkit::RedisServer;

const SECRET: &str = "redis-crash-organization-secret";
const PREFIX: &str = "crash:";
const EVENTS: usize = 10_000;
const PHASE_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn two_sender_processes_on_redis_one_killed_with_sigkill_lose_nothing() {
    let redis = RedisServer::start_with_aof();
    let dir = tempfile::tempdir().unwrap();
    let rt = crash::runtime();
    let receiver = rt.block_on(CountingReceiver::start(
        WebhookLayer::new(Verifier::event_secrets([SECRET]).unwrap()),
        event_entity,
    ));
    let url = receiver.url();
    let launcher = CrashSender {
        program: env!("CARGO_BIN_EXE_crash_sender"),
        dir: dir.path(),
        url: &url,
        secret: SECRET,
        limit: PHASE_LIMIT,
    };
    let redis_url = redis.url();
    let node = |consumer| Backend::Redis {
        url: &redis_url,
        prefix: PREFIX,
        consumer,
    };
    let run = crash::two_nodes_one_killed(&launcher, &node, receiver.tally(), EVENTS);
    rt.block_on(async {
        let store = RedisStore::connect(&RedisConfig::new(redis.url()).prefix(PREFIX))
            .await
            .unwrap();
        crash::check_two_node_run("redis crash test", &store, &run, receiver.tally(), EVENTS).await;
    });
}

/// The Redis server as the outage scenario breaks it.
struct RedisOutage<'a>(&'a mut RedisServer);

impl Outage for RedisOutage<'_> {
    fn drop_connections(&mut self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        let url = self.0.url();
        Box::pin(async move {
            let admin = redis::Client::open(url).unwrap();
            let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
            let killed: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query_async(&mut admin)
                .await
                .unwrap();
            // `SKIPME` is on by default: the admin connection is not among them.
            usize::try_from(killed).unwrap_or(0)
        })
    }

    fn kill(&mut self) {
        self.0.kill();
    }

    fn relaunch(&mut self) {
        self.0.launch();
    }
}

#[test]
fn redis_connections_dropped_and_redis_restarted_lose_nothing_acknowledged() {
    let mut redis = RedisServer::start_with_aof();
    crash::runtime().block_on(async {
        let config = RedisConfig::new(redis.url())
            .prefix("faults:")
            .connect_timeout(Duration::from_millis(300))
            .response_timeout(Duration::from_millis(500));
        let store = RedisStore::connect(&config).await.unwrap();
        outage::publishes_survive_an_outage("redis faults", store, &mut RedisOutage(&mut redis))
            .await;
    });
}
