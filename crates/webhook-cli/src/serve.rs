//! `webhook serve`: the dispatcher as an HTTP service ([`webhook_server::serve::run`]).
//!
//! The admin token comes from the environment variable `WEBHOOK_ADMIN_TOKEN`, never a
//! flag (every user of the machine can read a process's arguments). Without it the
//! service starts, but only organization tokens work, so nobody can create an
//! organization; it says so on stderr. Access logs go to stderr (`RUST_LOG` filters,
//! default `info`).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Parser;
use webhook_server::serve::{ServeConfig, StoreChoice};

use crate::Failure;

/// The environment variable holding the admin token.
const ADMIN_TOKEN_VAR: &str = "WEBHOOK_ADMIN_TOKEN";

#[derive(Debug, Parser)]
pub(crate) struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: SocketAddr,
    /// The embedded redb store file (the default store).
    #[arg(
        long,
        value_name = "FILE.redb",
        default_value = "webhook.redb",
        conflicts_with_all = ["redis", "postgres"]
    )]
    store: PathBuf,
    /// A Redis URL instead of the redb file, for several nodes on one store.
    #[arg(long, value_name = "URL", conflicts_with = "postgres")]
    redis: Option<String>,
    /// A PostgreSQL URL (`postgres://user@host/db`) instead of the redb file, for several
    /// nodes on one store. Keep the password out of the command line (other users see it):
    /// give it in `PGPASSWORD` or `~/.pgpass`, as for `psql`.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Allow endpoints on loopback and private addresses (development and tests).
    #[arg(long)]
    allow_private: bool,
    /// Requests per second each token may make (0: no limit).
    #[arg(long, default_value_t = webhook_server::api::DEFAULT_RATE_PER_TOKEN)]
    rate_limit: u32,
    /// The request body limit in bytes.
    #[arg(long, default_value_t = webhook_server::api::DEFAULT_BODY_LIMIT)]
    max_body: usize,
    /// The connection cap.
    #[arg(long, default_value_t = webhook_receiver::server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// How long a claimed delivery stays leased, in seconds: after a crash, what was in
    /// flight is sent again once its lease ends. Endpoint timeouts may be at most half.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(2..=86_400))]
    lease_seconds: u64,
}

pub(crate) fn run(args: &Args) -> Result<(), Failure> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let admin = std::env::var(ADMIN_TOKEN_VAR)
        .ok()
        .filter(|t| !t.is_empty());
    if admin.is_none() {
        eprintln!("{ADMIN_TOKEN_VAR} is not set: only organization tokens are accepted");
    }
    let store = match (&args.redis, &args.postgres) {
        (Some(url), _) => StoreChoice::Redis(url.clone()),
        (None, Some(url)) => StoreChoice::Postgres(url.clone()),
        (None, None) => StoreChoice::Redb(args.store.clone()),
    };
    let mut config = ServeConfig::new(args.addr, store);
    config.allow_private = args.allow_private;
    config.rate_per_token = NonZeroU32::new(args.rate_limit);
    config.body_limit = args.max_body;
    config.max_connections = args.max_connections;
    config.lease = std::time::Duration::from_secs(args.lease_seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Failure::failed)?;
    runtime
        .block_on(webhook_server::serve::run(
            config,
            admin.as_deref(),
            async {
                crate::signal::shutdown().await;
                eprintln!("stopping: answering requests in progress, then draining the sender");
            },
        ))
        .map_err(|e| match e {
            webhook_server::serve::ServeError::AdminToken(e) => {
                Failure::usage(format!("{ADMIN_TOKEN_VAR}: {e}"))
            }
            e => Failure::failed(e),
        })
}
