//! Crash safety and server faults with the Postgres store (a PostgreSQL server started by
//! the test in a temporary directory, `fsync` on, `synchronous_commit` on):
//!
//! - two sender processes share one database; one is killed with SIGKILL mid-stream and
//!   restarted; every event reaches the receiver's handler exactly once;
//! - the server terminates the store's connections (`pg_terminate_backend`), then is
//!   stopped with `pg_ctl -m immediate` (no checkpoint, like a power cut for the server
//!   process) and started again on the same data: `publish` fails with a store error while
//!   it is down, and every publish that was acknowledged is delivered exactly once.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use webhook_e2e::crash::{self, Backend, CrashSender};
use webhook_e2e::outage::{self, Outage};
use webhook_e2e::receiver::{CountingReceiver, event_entity};
use webhook_receiver::{Verifier, WebhookLayer};
use webhook_sender::store::{PostgresConfig, PostgresStore};
use webhook_testkit::PostgresServer;

const SECRET: &str = "postgres-crash-organization-secret";
const SCHEMA: &str = "crash";
const EVENTS: usize = 10_000;
const PHASE_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn two_sender_processes_on_postgres_one_killed_with_sigkill_lose_nothing() {
    let postgres = PostgresServer::start();
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
    let database = postgres.url();
    let node = |_name| Backend::Postgres {
        url: &database,
        schema: SCHEMA,
    };
    let run = crash::two_nodes_one_killed(&launcher, &node, receiver.tally(), EVENTS);
    rt.block_on(async {
        let store = PostgresStore::connect(&PostgresConfig::new(postgres.url()).schema(SCHEMA))
            .await
            .unwrap();
        crash::check_two_node_run(
            "postgres crash test",
            &store,
            &run,
            receiver.tally(),
            EVENTS,
        )
        .await;
    });
}

/// The PostgreSQL server as the outage scenario breaks it.
struct PostgresOutage<'a>(&'a mut PostgresServer);

impl Outage for PostgresOutage<'_> {
    fn drop_connections(&mut self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        let url = self.0.url();
        Box::pin(async move {
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            let terminated: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND backend_type = 'client backend') AS t",
            )
            .fetch_one(&admin)
            .await
            .unwrap();
            admin.close().await;
            usize::try_from(terminated).unwrap_or(0)
        })
    }

    fn kill(&mut self) {
        self.0.stop_immediate();
    }

    fn relaunch(&mut self) {
        self.0.launch();
    }
}

#[test]
fn postgres_connections_terminated_and_postgres_stopped_immediately_lose_nothing_acknowledged() {
    let mut postgres = PostgresServer::start();
    crash::runtime().block_on(async {
        let config = PostgresConfig::new(postgres.url())
            .schema("faults")
            .acquire_timeout(Duration::from_millis(500));
        let store = PostgresStore::connect(&config).await.unwrap();
        outage::publishes_survive_an_outage(
            "postgres faults",
            store,
            &mut PostgresOutage(&mut postgres),
        )
        .await;
    });
}
