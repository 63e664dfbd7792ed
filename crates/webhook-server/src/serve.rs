//! What `webhook serve` runs: open the store, start the sender, serve the API with the
//! hardened server of `webhook-receiver` (head and body deadlines, idle timeout,
//! connection cap), and on shutdown drain the requests in progress, then the sender.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use webhook_receiver::server::ServerConfig;
use webhook_sender::store::{PostgresConfig, PostgresStore, RedbStore, RedisConfig, RedisStore};
use webhook_sender::{AllowList, Sender};

use crate::api::{Api, DEFAULT_BODY_LIMIT, DEFAULT_RATE_PER_TOKEN};
use crate::auth::{TokenAuthorizer, WeakAdminToken};

/// Where the service keeps its queue, history and configuration. The URLs may hold
/// passwords, so `Debug` leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded redb file (one process).
    Redb(PathBuf),
    /// A Redis server shared by several nodes (`redis://…`).
    Redis(String),
    /// A PostgreSQL database shared by several nodes (`postgres://…`; the password may
    /// also come from `PGPASSWORD` or `~/.pgpass`, as for `psql`).
    Postgres(String),
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb(path) => f.debug_tuple("Redb").field(path).finish(),
            Self::Redis(_) => f.write_str("Redis(<redacted>)"),
            Self::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

/// How to run the service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The store.
    pub store: StoreChoice,
    /// Allow loopback and private endpoint addresses (development, tests).
    pub allow_private: bool,
    /// The per-credential request rate (`None`: no limit).
    pub rate_per_token: Option<NonZeroU32>,
    /// The request body limit.
    pub body_limit: usize,
    /// The connection cap.
    pub max_connections: usize,
    /// How long requests in progress get at shutdown.
    pub shutdown_grace: Duration,
    /// How long a claimed delivery stays leased: after a crash, what was in flight is
    /// sent again once its lease ends. Endpoint timeouts may be at most half of it.
    pub lease: Duration,
}

impl ServeConfig {
    /// Serving on `addr` from `store`, with the defaults otherwise.
    #[must_use]
    pub fn new(addr: SocketAddr, store: StoreChoice) -> Self {
        Self {
            addr,
            store,
            allow_private: false,
            rate_per_token: NonZeroU32::new(DEFAULT_RATE_PER_TOKEN),
            body_limit: DEFAULT_BODY_LIMIT,
            max_connections: webhook_receiver::server::DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(10),
            lease: webhook_sender::builder::DEFAULT_LEASE,
        }
    }
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The admin token is too weak.
    #[error(transparent)]
    AdminToken(#[from] WeakAdminToken),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// The sender could not start or stop.
    #[error("sender: {0}")]
    Sender(#[from] webhook_sender::Error),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// The process-wide Prometheus recorder, installed on first use (`None` when another
/// recorder was installed first).
fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// Runs the service until `shutdown` resolves. `admin_token` (from
/// `WEBHOOK_ADMIN_TOKEN`) reaches every organization; without it only organization
/// tokens work, and nobody can create organizations.
///
/// # Errors
/// [`ServeError`] when the store, the address or the admin token is refused.
pub async fn run(
    config: ServeConfig,
    admin_token: Option<&str>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let allow = if config.allow_private {
        AllowList::private_networks()
    } else {
        AllowList::none()
    };
    let builder = Sender::builder()
        .allow_private_networks(allow)
        .lease(config.lease);
    let builder = match &config.store {
        StoreChoice::Redb(path) => {
            builder.store(RedbStore::open(path).map_err(|e| ServeError::Store(e.to_string()))?)
        }
        StoreChoice::Redis(url) => builder.store(
            RedisStore::connect(&RedisConfig::new(url.clone()))
                .await
                .map_err(|e| ServeError::Store(e.to_string()))?,
        ),
        StoreChoice::Postgres(url) => builder.store(
            PostgresStore::connect(&PostgresConfig::new(url.clone()))
                .await
                .map_err(|e| ServeError::Store(e.to_string()))?,
        ),
    };
    let sender = builder.build().await?;
    let mut authorizer = TokenAuthorizer::new(sender.clone());
    if let Some(token) = admin_token {
        authorizer = authorizer.with_admin_token(token)?;
    }
    let mut api = Api::new(sender.clone(), authorizer)
        .body_limit(config.body_limit)
        .rate_per_token(config.rate_per_token);
    if let Some(handle) = prometheus() {
        api = api.metrics(handle);
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    eprintln!("listening on http://{local}");
    let server = ServerConfig::default()
        .max_connections(config.max_connections)
        .shutdown_grace(config.shutdown_grace);
    let served = webhook_receiver::server::serve(listener, api.router(), server, shutdown).await;
    let stopped = sender.shutdown().await;
    served.map_err(ServeError::Serve)?;
    stopped?;
    Ok(())
}
