//! The Postgres store (feature `postgres`): several sender nodes share one queue, one set
//! of idempotency windows, one configuration and one history, and a publish can join the
//! caller's own transaction ([`Sender::publish_in`](crate::Sender::publish_in)).
//! [`PostgresStore`] documents the model and the tables.

mod changes;
mod schema;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use webhook_core::idempotency::WINDOW_SECS;

use self::changes::{Changes, insert_entries, message_rec, read_deliveries, read_messages};
use super::index::{self, Scan};
use super::queue::reopen;
use super::record::{DeliveryRecord, MessageRecord, Payload};
use super::{
    Claim, ClaimRequest, Claimed, ConfigStore, Enqueued, Finish, HistoryStore, QueueStore,
    Snapshot, StoreError, StoreFuture, StoredEndpoint, StoredOrganization, WindowStore, tables,
};
use crate::delivery::{DeliveryStatus, duration_millis};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// The schema a store uses unless [`PostgresConfig::schema`] says otherwise.
pub const DEFAULT_SCHEMA: &str = "webhook_sender";
/// The open count returned by claims is refreshed at most this often.
const OPEN_COUNT_EVERY: Duration = Duration::from_secs(1);
/// How long the listener waits before connecting again after losing its connection.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
/// Retention deletes at most this many ended idempotency windows per run.
const WINDOW_BATCH: i64 = 10_000;

/// How to reach Postgres: the connection URL (a secret: its password never appears in
/// `Debug`, logs or errors), the schema the store's tables live in, and the pool's size.
#[derive(Clone)]
pub struct PostgresConfig {
    url: String,
    schema: String,
    max_connections: u32,
    acquire_timeout: Duration,
}

impl PostgresConfig {
    /// A configuration for `url` (`postgres://user:password@host:port/database`), schema
    /// [`DEFAULT_SCHEMA`], 10 connections, a 10 s wait for a free connection. TLS is
    /// rustls with the webpki roots: add `?sslmode=verify-full` (or `require`) to insist
    /// on it; the default (`prefer`) uses it when the server offers it.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: DEFAULT_SCHEMA.to_owned(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }

    /// The schema the tables go in (created when missing): 1 to 48 of `a-z`, `0-9`, `_`,
    /// not starting with a digit. Nodes of one environment use the same one; another
    /// schema is another environment.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// At most this many connections, one of them held by the listener. Default 10.
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(2);
        self
    }

    /// How long a call waits for a free connection before failing. Default 10 s.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &"<redacted>")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish()
    }
}

/// The store's schema and the names derived from it.
#[derive(Debug)]
struct Names {
    schema: String,
    quoted: String,
    channel: String,
}

impl Names {
    fn new(schema: &str) -> Result<Self, StoreError> {
        let valid = (1..=48).contains(&schema.len())
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(StoreError::backend(format!(
                "{schema:?} is not a usable schema name: use 1 to 48 of a-z, 0-9 and _, \
                 not starting with a digit"
            )));
        }
        Ok(Self {
            schema: schema.to_owned(),
            quoted: format!("\"{schema}\""),
            channel: format!("webhook_sender_{schema}"),
        })
    }

    fn schema(&self) -> &str {
        &self.schema
    }

    /// A statement with `{s}` replaced by the quoted schema.
    fn sql(&self, template: &str) -> String {
        template.replace("{s}", &self.quoted)
    }

    /// An advisory lock key for `parts` within this schema: the first 8 bytes of their
    /// SHA-256 (stable across builds and nodes).
    fn lock_key(&self, parts: &[&[u8]]) -> i64 {
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(self.schema.as_bytes());
        for part in parts {
            hash.update(&[0x1f]);
            hash.update(part);
        }
        let digest = hash.finish();
        let mut key = [0u8; 8];
        key.copy_from_slice(&digest.as_ref()[..8]);
        i64::from_be_bytes(key)
    }

    /// The lock key of a chain: every change to its membership or head holds it.
    fn chain_key(&self, endpoint: &str, resource_key: &str) -> i64 {
        self.lock_key(&[b"chain", endpoint.as_bytes(), resource_key.as_bytes()])
    }
}

/// A delivery row: `rec` and the changing fields.
type DeliveryRow = (
    Vec<u8>,
    i64,
    String,
    i64,
    i64,
    i32,
    Vec<u8>,
    Option<i64>,
    Option<String>,
);

/// A delivery's record from its row: `rec` (as enqueued) with the changing fields.
fn delivery_from_row(row: DeliveryRow) -> Result<DeliveryRecord, StoreError> {
    let (rec, seq, status, due, lease, round, attempts, finished, reason) = row;
    let mut record = DeliveryRecord::decode(&rec)?;
    record.seq = u64::try_from(seq).map_err(StoreError::corrupt)?;
    record.status = DeliveryStatus::from_name(&status)
        .ok_or_else(|| StoreError::corrupt(format!("unknown status {status:?}")))?;
    record.due_at_ms = due;
    record.lease = u64::try_from(lease).map_err(StoreError::corrupt)?;
    record.round_attempts = u32::try_from(round).unwrap_or_default();
    record.attempts = serde_json::from_slice(&attempts).map_err(StoreError::corrupt)?;
    record.finished_at_ms = finished;
    record.cancel_reason = reason;
    Ok(record)
}

/// A driver error as a store error. Driver errors name no credentials (the URL is parsed
/// before connecting, and a parse failure is reported without it).
fn backend(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

fn usize_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The Postgres store: every sender node on one database and schema shares its queue,
/// idempotency windows, configuration and history, and publishes can join the caller's
/// transaction. Cheap to clone; clones share the pool.
///
/// ```no_run
/// use webhook_sender::Sender;
/// use webhook_sender::store::{PostgresConfig, PostgresStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let url = std::env::var("DATABASE_URL")?;
/// let store = PostgresStore::connect(&PostgresConfig::new(url).schema("webhooks")).await?;
/// let sender = Sender::builder().store(store).build().await?;
/// # drop(sender);
/// # Ok(())
/// # }
/// ```
///
/// # The model
///
/// The same chains as every backend (ARCHITECTURE.md, "Queue model" and "Postgres
/// store"), kept in tables of one schema and changed only in transactions:
///
/// | table | holds |
/// |---|---|
/// | `meta` | `schema` (the schema version; a newer one is refused), `config` (the configuration version), `pruned` |
/// | `endpoints`, `organizations` | configuration: cap, claimable flag, the engine's bytes |
/// | `windows` | idempotency windows per (organization, type, entity) |
/// | `messages` | one row per event: its record without the payload's content, the content raw in `body`, the domain |
/// | `deliveries` | one row per delivery: its record as enqueued (`rec`), its chain (`endpoint`, `resource_key`, `seq`), the changing fields as columns, and `head`: whether it is its chain's first open delivery |
/// | `index_entries` | the index sets of [`index`], `(set, member)` as the primary key, scanned in byte order |
///
/// - **Enqueue** inserts the message once (an existing `(organization, event)` is
///   returned and nothing is stored), its deliveries with `seq` from a sequence, every
///   index entry, marks each chain's first open delivery as its head, and sends a
///   `NOTIFY` (delivered at commit). Every change to a chain's members holds a
///   transaction-scoped advisory lock on the chain (taken in key order), so heads and
///   `seq` order follow commit order per chain, also across nodes and across callers'
///   transactions.
/// - **Claim** walks the claimable endpoints by their earliest due head, locks each
///   endpoint's row with `FOR UPDATE SKIP LOCKED` (one node claims for an endpoint at a
///   time, so caps hold across nodes), gives it up to its free concurrency (its cap,
///   lowered by this node's overrides, minus its unexpired leases) and leases due heads
///   with `FOR UPDATE SKIP LOCKED`: a head's due time is its lease end while in flight,
///   so an expired lease is claimable again by any node, under a new token from a
///   sequence. A node claims only for endpoints it has loaded or created.
/// - **Finish, cancel, redrive, retention** lock the rows they change, compute the new
///   records and index entries with the record keeping every backend shares, and write
///   them in the same transaction.
/// - **Wake-up**: a listener (`LISTEN`) wakes the local scheduler when another node (or
///   a caller's transaction) queued work; notifications are lost while disconnected, so
///   the scheduler's idle poll stays the fallback. The store's own changes are announced
///   after they commit, by one task per store that coalesces them into one `NOTIFY` at a
///   time (Postgres takes a database-wide lock from a notifying commit until its log
///   flush ends, so a `NOTIFY` inside every commit would put all commits in one line);
///   only a publish in a caller's transaction notifies inside it, delivered at its commit.
///
/// # Durability
///
/// A call returns once its transaction committed; the store's connections run with
/// `synchronous_commit = on`, so "acknowledged" means in the write-ahead log on disk (and
/// on synchronous standbys, if the server has any). Two kinds of change commit without
/// waiting for the flush, because losing them loses nothing acknowledged: a claim's
/// leases (lost in a server crash, the deliveries are claimed and sent again: at least
/// once) and idempotency windows (every acknowledged publish in a window flushes the log
/// past the window's commit). A publish inside a caller's
/// transaction sets `synchronous_commit = on` for that transaction and is acknowledged
/// when the caller's commit returns.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    names: Arc<Names>,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// Whether the pool is the store's own ([`PostgresStore::connect`]), closed with it.
    owns_pool: bool,
    closed: AtomicBool,
    /// Woken by the listener.
    wake: Arc<Notify>,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// Asks the announcer to tell the other nodes that work changed (see [`announce`]).
    announce: Arc<Notify>,
    announcer: Mutex<Option<JoinHandle<()>>>,
    /// Set once [`ConfigStore::load`] ran: from then on this node claims only these
    /// endpoints (the loaded ones and those it created).
    known: Mutex<Option<HashSet<EndpointId>>>,
    /// The last open count and when it was read.
    open: Mutex<Option<(Instant, u64)>>,
}

impl Drop for State {
    fn drop(&mut self) {
        for task in [&self.listener, &self.announcer] {
            if let Some(task) = lock(task).take() {
                task.abort();
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.names.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with `config`, creates or upgrades the schema, and starts listening for
    /// other nodes' work.
    ///
    /// # Errors
    /// [`StoreError`] when the URL does not parse (the error leaves the URL out), the
    /// schema name is unusable or Postgres cannot be reached; [`StoreError::is_incompatible`]
    /// when the schema was written by a newer version.
    pub async fn connect(config: &PostgresConfig) -> Result<Self, StoreError> {
        let options: PgConnectOptions = config.url.parse().map_err(|_| {
            StoreError::backend("the Postgres URL does not parse (expected postgres://…)")
        })?;
        let options = options
            .options([("synchronous_commit", "on")])
            .application_name("webhook-sender");
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::start(pool, &config.schema, true).await
    }

    /// A store on an existing pool (an application's own), in `schema`: creates or
    /// upgrades the schema and starts listening (on one of the pool's connections). The
    /// pool's connections should run with `synchronous_commit = on` (the server's
    /// default). Closing the store leaves the pool open: it is the application's.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn open(pool: PgPool, schema: &str) -> Result<Self, StoreError> {
        Self::start(pool, schema, false).await
    }

    async fn start(pool: PgPool, schema: &str, owns_pool: bool) -> Result<Self, StoreError> {
        let names = Arc::new(Names::new(schema)?);
        let mut connection = pool.acquire().await.map_err(backend)?;
        schema::migrate(&mut connection, &names).await?;
        drop(connection);
        let state = Arc::new(State {
            owns_pool,
            closed: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
            listener: Mutex::new(None),
            announce: Arc::new(Notify::new()),
            announcer: Mutex::new(None),
            known: Mutex::new(None),
            open: Mutex::new(None),
        });
        let listener = tokio::spawn(listen(
            pool.clone(),
            names.channel.clone(),
            state.wake.clone(),
        ));
        *lock(&state.listener) = Some(listener);
        let announcer = tokio::spawn(announce(
            pool.clone(),
            names.channel.clone(),
            state.announce.clone(),
        ));
        *lock(&state.announcer) = Some(announcer);
        Ok(Self { pool, names, state })
    }

    /// The schema the store's tables live in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.names.schema
    }

    /// The pool, once the store is known to be open.
    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.state.closed.load(Ordering::SeqCst) {
            return Err(StoreError::closed());
        }
        Ok(&self.pool)
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.pool()?.begin().await.map_err(backend)
    }

    /// A transaction whose commit does not wait for the write-ahead log to reach disk
    /// (`synchronous_commit = off`), for changes that need not survive a crash of the
    /// server on their own: a lease (lost, its delivery is claimed and sent again) and an
    /// idempotency window (lost only if no publish in it was acknowledged, since every
    /// acknowledged publish flushes the log past it).
    async fn begin_relaxed(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        begin_relaxed(self.pool()?).await.map_err(backend)
    }

    /// Tells the other nodes, soon after this commit, that work changed: the announcer
    /// sends one `NOTIFY` for any number of calls made while it was busy. Not inside the
    /// change's own transaction: Postgres holds one database-wide lock from a notifying
    /// transaction's commit until its log flush ends, so a `NOTIFY` in every commit would
    /// run the commits of every node one after another.
    fn announce(&self) {
        self.state.announce.notify_one();
    }

    /// Stores a message and its deliveries on `connection`, inside the transaction open
    /// on it (the store's own, or a caller's readied with
    /// [`ready_transaction`](Self::ready_transaction)): visible to claims, and notified,
    /// only once it commits. The transaction must be `read committed`.
    /// `notify_at_commit` sends the other nodes a `NOTIFY` delivered at commit, for a
    /// caller's transaction (whose commit this store does not see); the store's own
    /// [`announce`](Self::announce) after committing instead.
    pub(crate) async fn enqueue_in(
        &self,
        connection: &mut PgConnection,
        mut message: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
        notify_at_commit: bool,
    ) -> Result<Enqueued, StoreError> {
        self.pool()?;
        let names = &self.names;
        message.deliveries = deliveries.iter().map(|d| d.id).collect();
        let inserted = sqlx::query(&names.sql(
            "INSERT INTO {s}.messages (organization, event, rec, body, domain) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organization, event) DO NOTHING",
        ))
        .bind(message.organization.as_str())
        .bind(message.event.to_string())
        .bind(message_rec(&message))
        .bind(message.payload.content.as_ref())
        .bind(message.payload.domain.as_deref())
        .execute(&mut *connection)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            let key = [(message.organization.clone(), message.event)];
            let existing = read_messages(connection, names, &key, false).await?;
            return match existing.into_iter().next() {
                Some(existing) => Ok(Enqueued::Existing(existing)),
                None => Err(StoreError::backend(
                    "the message exists but could not be read",
                )),
            };
        }
        let mut entries = index::message_entries(&message);
        if !deliveries.is_empty() {
            let chains: Vec<(String, String)> = deliveries
                .iter()
                .map(|d| (d.endpoint.to_string(), d.resource_key.clone()))
                .collect();
            self.lock_chains(connection, &chains).await?;
            let mut ids = Vec::with_capacity(deliveries.len());
            let mut endpoints = Vec::with_capacity(deliveries.len());
            let mut dues = Vec::with_capacity(deliveries.len());
            let mut recs = Vec::with_capacity(deliveries.len());
            for mut record in deliveries {
                // As every backend enqueues: pending, no lease; Postgres assigns `seq`.
                record.status = DeliveryStatus::Pending;
                record.lease = 0;
                entries.extend(index::delivery_entries(&record));
                ids.push(record.id.to_string());
                endpoints.push(record.endpoint.to_string());
                dues.push(record.due_at_ms);
                recs.push(record.encode());
            }
            sqlx::query(&names.sql(
                "INSERT INTO {s}.deliveries (id, organization, event, endpoint, resource_key, \
                 seq, status, due_at_ms, attempts, rec) \
                 SELECT u.id, $5, $6, u.endpoint, $7, nextval('{s}.delivery_seq'), 'pending', \
                 u.due, '\\x5b5d'::bytea, u.rec \
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) \
                 AS u(id, endpoint, due, rec)",
            ))
            .bind(ids)
            .bind(endpoints)
            .bind(dues)
            .bind(recs)
            .bind(message.organization.as_str())
            .bind(message.event.to_string())
            .bind(message.resource_key.as_str())
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
            self.fix_heads(connection, &chains, notify_at_commit)
                .await?;
        }
        if !entries.is_empty() {
            insert_entries(connection, names, entries).await?;
        }
        Ok(Enqueued::Stored)
    }

    /// Readies the caller's transaction open on `connection` for
    /// [`enqueue_in`](Self::enqueue_in): `synchronous_commit = on` for the rest of it, so
    /// its commit is the acknowledgement. Returns the transaction's isolation level when
    /// it is not `read committed`, which chains need (a snapshot taken before a chain's
    /// lock could miss another node's change to the chain); nothing is changed then.
    pub(crate) async fn ready_transaction(
        &self,
        connection: &mut PgConnection,
    ) -> Result<Option<String>, StoreError> {
        self.pool()?;
        let isolation: String =
            sqlx::query_scalar("SELECT current_setting('transaction_isolation')")
                .fetch_one(&mut *connection)
                .await
                .map_err(backend)?;
        if isolation != "read committed" {
            return Ok(Some(isolation));
        }
        sqlx::query("SET LOCAL synchronous_commit TO on")
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        Ok(None)
    }

    /// The deliveries of `ids` that exist, read on `connection` (inside the caller's
    /// transaction, which sees its own uncommitted ones), in the order given.
    pub(crate) async fn deliveries_in(
        &self,
        connection: &mut PgConnection,
        ids: &[DeliveryId],
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.pool()?;
        let found = read_deliveries(connection, &self.names, ids, false).await?;
        Ok(in_order(ids, found, |d| d.id))
    }

    /// Takes the advisory locks of these chains, in key order (so two transactions never
    /// wait on each other in a circle).
    async fn lock_chains(
        &self,
        connection: &mut PgConnection,
        chains: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut keys: Vec<i64> = chains
            .iter()
            .map(|(endpoint, resource)| self.names.chain_key(endpoint, resource))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k")
            .bind(keys)
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// Marks each chain's first open delivery as its head (a no-op where it already is)
    /// and, with `notify`, tells every listening node that work may be due (delivered at
    /// commit), in one statement.
    async fn fix_heads(
        &self,
        connection: &mut PgConnection,
        chains: &[(String, String)],
        notify: bool,
    ) -> Result<(), StoreError> {
        if chains.is_empty() {
            return if notify {
                self.notify(connection).await
            } else {
                Ok(())
            };
        }
        let (endpoints, resources): (Vec<&str>, Vec<&str>) =
            chains.iter().map(|(e, r)| (e.as_str(), r.as_str())).unzip();
        // A data-modifying WITH runs whether or not the query reads it.
        sqlx::query(&self.names.sql(
            "WITH fixed AS (UPDATE {s}.deliveries d SET head = true \
               FROM unnest($1::text[], $2::text[]) AS c(endpoint, resource_key) \
               CROSS JOIN LATERAL (SELECT x.id FROM {s}.deliveries x \
                 WHERE x.endpoint = c.endpoint AND x.resource_key = c.resource_key \
                 AND x.status IN ('pending', 'in_flight') ORDER BY x.seq LIMIT 1) h \
               WHERE d.id = h.id AND NOT d.head RETURNING 1) \
             SELECT pg_notify($3, '') WHERE $4",
        ))
        .bind(endpoints)
        .bind(resources)
        .bind(&self.names.channel)
        .bind(notify)
        .execute(&mut *connection)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// Tells every listening node that work may be due, when the transaction open on
    /// `connection` commits.
    async fn notify(&self, connection: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(&self.names.channel)
            .execute(&mut *connection)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// The chain (endpoint, resource key) of a delivery, if it exists.
    async fn chain_of(
        &self,
        connection: &mut PgConnection,
        id: DeliveryId,
    ) -> Result<Option<(String, String)>, StoreError> {
        sqlx::query_as(
            &self
                .names
                .sql("SELECT endpoint, resource_key FROM {s}.deliveries WHERE id = $1"),
        )
        .bind(id.to_string())
        .fetch_optional(&mut *connection)
        .await
        .map_err(backend)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, Option<HashSet<EndpointId>>> {
        lock(&self.state.known)
    }

    /// The open count, read again when the last one is older than [`OPEN_COUNT_EVERY`].
    async fn open_count(&self, connection: &mut PgConnection) -> Result<u64, StoreError> {
        if let Some((at, open)) = *lock(&self.state.open) {
            if at.elapsed() < OPEN_COUNT_EVERY {
                return Ok(open);
            }
        }
        let open: i64 =
            sqlx::query_scalar(&self.names.sql(
                "SELECT count(*) FROM {s}.deliveries WHERE status IN ('pending', 'in_flight')",
            ))
            .fetch_one(&mut *connection)
            .await
            .map_err(backend)?;
        let open = u64::try_from(open).unwrap_or_default();
        *lock(&self.state.open) = Some((Instant::now(), open));
        Ok(open)
    }

    /// Leases due heads of one endpoint: up to its free concurrency and `left`.
    async fn claim_endpoint(
        &self,
        connection: &mut PgConnection,
        endpoint: &str,
        request: &ClaimRequest,
        lease_end: i64,
        left: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let names = &self.names;
        let limits: Option<(i32, i64)> = sqlx::query_as(&names.sql(
            "SELECT e.max_concurrency, (SELECT count(*) FROM {s}.deliveries d \
               WHERE d.head AND d.endpoint = e.id AND d.status = 'in_flight' \
               AND d.due_at_ms > $2) \
             FROM {s}.endpoints e WHERE e.id = $1 AND e.claimable FOR UPDATE SKIP LOCKED",
        ))
        .bind(endpoint)
        .bind(request.now_ms)
        .fetch_optional(&mut *connection)
        .await
        .map_err(backend)?;
        // Another node is claiming for it, or it was paused or removed meanwhile.
        let Some((cap, busy)) = limits else {
            return Ok(Vec::new());
        };
        let id: EndpointId = endpoint.parse().map_err(StoreError::corrupt)?;
        let mut cap = usize::try_from(cap).unwrap_or_default();
        if let Some(&lower) = request.overrides.get(&id) {
            cap = cap.min(lower);
        }
        let take = cap
            .saturating_sub(usize::try_from(busy).unwrap_or(usize::MAX))
            .min(left);
        if take == 0 {
            return Ok(Vec::new());
        }
        type Row = (
            Vec<u8>,
            i64,
            i64,
            i32,
            Vec<u8>,
            Option<Vec<u8>>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(&names.sql(
            "WITH picked AS (SELECT id FROM {s}.deliveries \
               WHERE head AND endpoint = $1 AND due_at_ms <= $2 \
               ORDER BY due_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             UPDATE {s}.deliveries d SET status = 'in_flight', due_at_ms = $4, \
               lease = nextval('{s}.lease_seq') \
             FROM picked WHERE d.id = picked.id \
             RETURNING d.rec, d.seq, d.lease, d.round_attempts, d.attempts, \
               (SELECT m.body FROM {s}.messages m \
                 WHERE m.organization = d.organization AND m.event = d.event), \
               (SELECT m.domain FROM {s}.messages m \
                 WHERE m.organization = d.organization AND m.event = d.event)",
        ))
        .bind(endpoint)
        .bind(request.now_ms)
        .bind(usize_i64(take))
        .bind(lease_end)
        .fetch_all(&mut *connection)
        .await
        .map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (rec, seq, token, round, attempts, body, domain) in rows {
            let mut record = DeliveryRecord::decode(&rec)?;
            record.seq = u64::try_from(seq).map_err(StoreError::corrupt)?;
            record.status = DeliveryStatus::InFlight;
            record.due_at_ms = lease_end;
            record.lease = u64::try_from(token).map_err(StoreError::corrupt)?;
            record.round_attempts = u32::try_from(round).unwrap_or_default();
            record.attempts = serde_json::from_slice(&attempts).map_err(StoreError::corrupt)?;
            record.finished_at_ms = None;
            record.cancel_reason = None;
            let body = body.ok_or_else(|| {
                StoreError::corrupt(format!("delivery {} has no message", record.id))
            })?;
            claimed.push(Claimed::new(record, Payload::new(body, domain)));
        }
        Ok(claimed)
    }

    /// One attempt at [`QueueStore::cancel_open`]: `None` when there was nothing open.
    async fn cancel_some(
        &self,
        endpoint: EndpointId,
        reason: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Option<u64>, StoreError> {
        let mut tx = self.begin().await?;
        let open: Vec<(String, String)> = sqlx::query_as(&self.names.sql(
            "SELECT id, resource_key FROM {s}.deliveries \
             WHERE endpoint = $1 AND status IN ('pending', 'in_flight') \
             ORDER BY endpoint, resource_key, seq LIMIT $2",
        ))
        .bind(endpoint.to_string())
        .bind(usize_i64(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if open.is_empty() {
            return Ok(None);
        }
        let endpoint_text = endpoint.to_string();
        let mut ids = Vec::with_capacity(open.len());
        let mut chains = Vec::with_capacity(open.len());
        for (id, resource) in open {
            ids.push(id.parse::<DeliveryId>().map_err(StoreError::corrupt)?);
            chains.push((endpoint_text.clone(), resource));
        }
        chains.dedup();
        self.lock_chains(&mut tx, &chains).await?;
        let mut changes = Changes::default();
        changes.read_deliveries(&mut tx, &self.names, &ids).await?;
        let mut cancelled = 0;
        for id in ids {
            if tables::cancel(&mut changes, id, reason, now_ms)? {
                cancelled += 1;
            }
        }
        changes.write(&mut tx, &self.names).await?;
        self.fix_heads(&mut tx, &chains, false).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(cancelled))
    }
}

/// `found` in the order of `ids` (missing ones left out).
fn in_order<T, K: std::hash::Hash + Eq>(ids: &[K], found: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut by_key: HashMap<K, T> = found.into_iter().map(|t| (key(&t), t)).collect();
    ids.iter().filter_map(|id| by_key.remove(id)).collect()
}

/// Wakes `wake` on every notification of `channel`, and whenever the connection was lost
/// (notifications may have been missed), until aborted.
async fn listen(pool: PgPool, channel: String, wake: Arc<Notify>) {
    loop {
        if let Ok(mut listener) = PgListener::connect_with(&pool).await {
            if listener.listen(&channel).await.is_ok() {
                loop {
                    match listener.try_recv().await {
                        Ok(_) => wake.notify_one(),
                        Err(error) => {
                            tracing::debug!(%error, "the Postgres listener lost its connection");
                            break;
                        }
                    }
                }
            }
        }
        if pool.is_closed() {
            return;
        }
        wake.notify_one();
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// A transaction on `pool` whose commit does not wait for the log flush
/// ([`PostgresStore::begin_relaxed`] says which changes may).
async fn begin_relaxed(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit TO off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The announcer: one `NOTIFY` on `channel` after each wake-up of `wanted`, in a
/// transaction of its own that does not wait for the log flush (a notification carries
/// nothing that must survive a crash: a listener that misses it polls). Calls made while
/// one is being sent collapse into the next one.
async fn announce(pool: PgPool, channel: String, wanted: Arc<Notify>) {
    loop {
        wanted.notified().await;
        let sent = async {
            let mut tx = begin_relaxed(&pool).await?;
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(&channel)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        };
        if let Err(error) = sent.await {
            if pool.is_closed() {
                return;
            }
            tracing::debug!(%error, "notifying the other nodes failed; they poll");
            tokio::time::sleep(LISTEN_RETRY).await;
        }
    }
}

impl ConfigStore for PostgresStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(async move {
            let pool = self.pool()?;
            let endpoints: Vec<(String, i32, bool, Vec<u8>)> =
                sqlx::query_as(&self.names.sql(
                    "SELECT id, max_concurrency, claimable, data FROM {s}.endpoints ORDER BY id",
                ))
                .fetch_all(pool)
                .await
                .map_err(backend)?;
            let organizations: Vec<(String, Vec<u8>)> = sqlx::query_as(
                &self
                    .names
                    .sql("SELECT id, data FROM {s}.organizations ORDER BY id"),
            )
            .fetch_all(pool)
            .await
            .map_err(backend)?;
            let mut stored = Vec::with_capacity(endpoints.len());
            for (id, cap, claimable, data) in endpoints {
                let id = id.parse().map_err(StoreError::corrupt)?;
                let cap = u32::try_from(cap).unwrap_or_default();
                stored.push(StoredEndpoint::new(id, cap, claimable, data));
            }
            *self.known() = Some(stored.iter().map(|e| e.id).collect());
            Ok(Snapshot::new(
                stored,
                organizations
                    .into_iter()
                    .map(|(id, data)| StoredOrganization::new(OrganizationId::from(id), data))
                    .collect(),
            ))
        })
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(&self.names.sql(
                "INSERT INTO {s}.endpoints (id, max_concurrency, claimable, data) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
                 max_concurrency = excluded.max_concurrency, claimable = excluded.claimable, \
                 data = excluded.data",
            ))
            .bind(endpoint.id.to_string())
            .bind(i32::try_from(endpoint.max_concurrency).unwrap_or(i32::MAX))
            .bind(endpoint.claimable)
            .bind(endpoint.data)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            bump_config(&mut tx, &self.names).await?;
            tx.commit().await.map_err(backend)?;
            self.announce();
            if let Some(known) = self.known().as_mut() {
                known.insert(endpoint.id);
            }
            Ok(())
        })
    }

    /// Removes the endpoint's configuration (claims skip an endpoint without one) and
    /// bumps the version; its chains stay until [`QueueStore::cancel_open`] empties them.
    fn remove_endpoint(&self, id: EndpointId) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(&self.names.sql("DELETE FROM {s}.endpoints WHERE id = $1"))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            bump_config(&mut tx, &self.names).await?;
            tx.commit().await.map_err(backend)?;
            if let Some(known) = self.known().as_mut() {
                known.remove(&id);
            }
            Ok(())
        })
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(&self.names.sql(
                "INSERT INTO {s}.organizations (id, data) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            ))
            .bind(organization.id.as_str())
            .bind(organization.data)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            bump_config(&mut tx, &self.names).await?;
            tx.commit().await.map_err(backend)
        })
    }

    fn config_version(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let version: i64 = sqlx::query_scalar(
                &self
                    .names
                    .sql("SELECT value FROM {s}.meta WHERE key = 'config'"),
            )
            .fetch_one(self.pool()?)
            .await
            .map_err(backend)?;
            Ok(u64::try_from(version).unwrap_or_default())
        })
    }
}

async fn bump_config(connection: &mut PgConnection, names: &Names) -> Result<(), StoreError> {
    sqlx::query(&names.sql("UPDATE {s}.meta SET value = value + 1 WHERE key = 'config'"))
        .execute(&mut *connection)
        .await
        .map_err(backend)?;
    Ok(())
}

impl WindowStore for PostgresStore {
    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64> {
        let both =
            self.claim_idempotency_window_and_config_version(organization, kind, entity, now);
        Box::pin(async move { Ok(both.await?.0) })
    }

    /// One statement: the window ([`next_window_start`]'s rule, applied under the row's
    /// lock) and the configuration version.
    ///
    /// [`next_window_start`]: webhook_core::idempotency::next_window_start
    fn claim_idempotency_window_and_config_version<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, (i64, Option<u64>)> {
        Box::pin(async move {
            // Every publish acknowledged in this window flushes the log past this commit.
            let mut tx = self.begin_relaxed().await?;
            let (start, version): (i64, i64) = sqlx::query_as(&self.names.sql(
                "INSERT INTO {s}.windows AS w (organization, kind, entity, start_s) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (organization, kind, entity) DO UPDATE \
                 SET start_s = CASE WHEN $4 - w.start_s < $5 THEN w.start_s ELSE $4 END \
                 RETURNING start_s, (SELECT value FROM {s}.meta WHERE key = 'config')",
            ))
            .bind(organization)
            .bind(kind)
            .bind(entity)
            .bind(now)
            .bind(WINDOW_SECS)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)?;
            Ok((start, Some(u64::try_from(version).unwrap_or_default())))
        })
    }
}

impl QueueStore for PostgresStore {
    fn enqueue(
        &self,
        message: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
    ) -> StoreFuture<'_, Enqueued> {
        Box::pin(async move {
            let queued = !deliveries.is_empty();
            let mut tx = self.begin().await?;
            let enqueued = self.enqueue_in(&mut tx, message, deliveries, false).await?;
            tx.commit().await.map_err(backend)?;
            if queued && enqueued == Enqueued::Stored {
                self.announce();
            }
            Ok(enqueued)
        })
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let lease_end = request
                .now_ms
                .saturating_add(duration_millis(request.lease).max(1));
            let known: Option<Vec<String>> = self
                .known()
                .as_ref()
                .map(|known| known.iter().map(ToString::to_string).collect());
            // A lease lost in a crash of the server only means the delivery is claimed,
            // and sent, again: at least once either way.
            let mut tx = self.begin_relaxed().await?;
            let due: Vec<String> = sqlx::query_scalar(&self.names.sql(
                "SELECT e.id FROM {s}.endpoints e CROSS JOIN LATERAL \
                   (SELECT d.due_at_ms AS due FROM {s}.deliveries d \
                     WHERE d.head AND d.endpoint = e.id AND d.due_at_ms <= $1 \
                     ORDER BY d.due_at_ms LIMIT 1) h \
                 WHERE e.claimable AND ($2::text[] IS NULL OR e.id = ANY($2)) \
                 ORDER BY h.due, e.id",
            ))
            .bind(request.now_ms)
            .bind(&known)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            let mut deliveries = Vec::new();
            let mut cut_short = false;
            for endpoint in &due {
                let left = request.limit.saturating_sub(deliveries.len());
                if left == 0 {
                    cut_short = true;
                    break;
                }
                let got = self
                    .claim_endpoint(&mut tx, endpoint, &request, lease_end, left)
                    .await?;
                deliveries.extend(got);
            }
            let next_due_ms = if cut_short || deliveries.len() >= request.limit {
                Some(request.now_ms)
            } else {
                sqlx::query_scalar(&self.names.sql(
                    "SELECT min(h.due) FROM {s}.endpoints e CROSS JOIN LATERAL \
                       (SELECT d.due_at_ms AS due FROM {s}.deliveries d \
                         WHERE d.head AND d.endpoint = e.id AND d.due_at_ms > $1 \
                         ORDER BY d.due_at_ms LIMIT 1) h \
                     WHERE e.claimable AND ($2::text[] IS NULL OR e.id = ANY($2))",
                ))
                .bind(request.now_ms)
                .bind(&known)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?
            };
            let open = self.open_count(&mut tx).await?;
            tx.commit().await.map_err(backend)?;
            Ok(Claim::new(deliveries, next_due_ms, open))
        })
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let Some(chain) = self.chain_of(&mut tx, id).await? else {
                return Err(StoreError::lease_lost());
            };
            self.lock_chains(&mut tx, std::slice::from_ref(&chain))
                .await?;
            let mut changes = Changes::default();
            changes.read_deliveries(&mut tx, &self.names, &[id]).await?;
            let Some(record) = changes.deliveries().next().cloned() else {
                return Err(StoreError::lease_lost());
            };
            if record.status != DeliveryStatus::InFlight || record.lease != lease {
                return Err(StoreError::lease_lost());
            }
            let wakes = !matches!(finish, Finish::Retry { .. });
            let closes = matches!(finish, Finish::Delivered(_) | Finish::Failed(_));
            tables::finish(&mut changes, record, finish)?;
            changes.write(&mut tx, &self.names).await?;
            if closes {
                self.fix_heads(&mut tx, &[chain], false).await?;
            }
            tx.commit().await.map_err(backend)?;
            if wakes {
                self.announce();
            }
            Ok(())
        })
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let Some(chain) = self.chain_of(&mut tx, id).await? else {
                return Ok(false);
            };
            self.lock_chains(&mut tx, std::slice::from_ref(&chain))
                .await?;
            let mut changes = Changes::default();
            changes.read_deliveries(&mut tx, &self.names, &[id]).await?;
            let Some(before) = changes.deliveries().next().cloned() else {
                return Ok(false);
            };
            if before.status != DeliveryStatus::Failed {
                return Ok(false);
            }
            let seq: i64 =
                sqlx::query_scalar(&self.names.sql("SELECT nextval('{s}.delivery_seq')"))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(backend)?;
            let mut after = before.clone();
            reopen(&mut after, now_ms);
            after.seq = u64::try_from(seq).map_err(StoreError::corrupt)?;
            tables::write_delivery(&mut changes, Some(&before), after)?;
            changes.write(&mut tx, &self.names).await?;
            self.fix_heads(&mut tx, &[chain], false).await?;
            tx.commit().await.map_err(backend)?;
            self.announce();
            Ok(true)
        })
    }

    fn cancel_open(
        &self,
        endpoint: EndpointId,
        reason: String,
        now_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            super::cancel_in_rounds(limit, || self.cancel_some(endpoint, &reason, now_ms, limit))
                .await
        })
    }

    /// Marks the store closed for every clone, stops listening and closes the pool (its
    /// own: an application's pool given to [`PostgresStore::open`] stays open). Nothing
    /// needs flushing: every write was committed when its call returned.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if self.state.closed.swap(true, Ordering::SeqCst) {
                return Ok(());
            }
            if let Some(listener) = lock(&self.state.listener).take() {
                listener.abort();
            }
            if self.state.owns_pool {
                self.pool.close().await;
            }
            Ok(())
        })
    }

    fn notified(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.state.wake.notified().await;
            Ok(())
        })
    }
}

impl HistoryStore for PostgresStore {
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryRecord>> {
        Box::pin(async move { Ok(self.deliveries(vec![id]).await?.pop()) })
    }

    fn deliveries(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, Vec<DeliveryRecord>> {
        Box::pin(async move {
            let mut connection = self.pool()?.acquire().await.map_err(backend)?;
            let found = read_deliveries(&mut connection, &self.names, &ids, false).await?;
            Ok(in_order(&ids, found, |d| d.id))
        })
    }

    fn message(
        &self,
        organization: OrganizationId,
        event: EventId,
    ) -> StoreFuture<'_, Option<MessageRecord>> {
        Box::pin(async move { Ok(self.messages(organization, vec![event]).await?.pop()) })
    }

    fn messages(
        &self,
        organization: OrganizationId,
        events: Vec<EventId>,
    ) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let keys: Vec<_> = events
                .iter()
                .map(|event| (organization.clone(), *event))
                .collect();
            let mut connection = self.pool()?.acquire().await.map_err(backend)?;
            let found = read_messages(&mut connection, &self.names, &keys, false).await?;
            Ok(in_order(&events, found, |m| m.event))
        })
    }

    fn scan(&self, scan: Scan) -> StoreFuture<'_, Vec<Vec<u8>>> {
        Box::pin(async move {
            if scan.limit == 0 {
                return Ok(Vec::new());
            }
            sqlx::query_scalar(&self.names.sql(
                "SELECT member FROM {s}.index_entries WHERE set = $1 \
                 AND ($2::bytea IS NULL OR member >= $2) AND ($3::bytea IS NULL OR member < $3) \
                 ORDER BY member LIMIT $4",
            ))
            .bind(scan.set)
            .bind(scan.start)
            .bind(scan.end)
            .bind(usize_i64(scan.limit))
            .fetch_all(self.pool()?)
            .await
            .map_err(backend)
        })
    }

    fn remove_finished(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let mut changes = Changes::default();
            changes.read_deliveries(&mut tx, &self.names, &ids).await?;
            let mut keys: Vec<_> = changes
                .deliveries()
                .map(|d| (d.organization.clone(), d.event))
                .collect();
            keys.sort();
            keys.dedup();
            changes.read_messages(&mut tx, &self.names, &keys).await?;
            let removed = tables::remove_finished(&mut changes, &ids)?;
            changes.write(&mut tx, &self.names).await?;
            tx.commit().await.map_err(backend)?;
            Ok(removed)
        })
    }

    fn remove_unrouted(&self, messages: Vec<(OrganizationId, EventId)>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let mut changes = Changes::default();
            changes
                .read_messages(&mut tx, &self.names, &messages)
                .await?;
            let removed = tables::remove_unrouted(&mut changes, &messages)?;
            changes.write(&mut tx, &self.names).await?;
            tx.commit().await.map_err(backend)?;
            Ok(removed)
        })
    }

    fn last_pruned(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            sqlx::query_scalar(
                &self
                    .names
                    .sql("SELECT value FROM {s}.meta WHERE key = 'pruned'"),
            )
            .fetch_optional(self.pool()?)
            .await
            .map_err(backend)
        })
    }

    /// Also deletes idempotency windows that ended two windows before `at_ms`, at most
    /// 10,000 a run.
    fn set_last_pruned(&self, at_ms: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(&self.names.sql(
                "INSERT INTO {s}.meta (key, value) VALUES ('pruned', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            ))
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            let ended = (at_ms / 1000).saturating_sub(2 * WINDOW_SECS);
            sqlx::query(&self.names.sql(
                "DELETE FROM {s}.windows WHERE ctid = ANY(ARRAY(SELECT ctid FROM {s}.windows \
                 WHERE start_s < $1 LIMIT $2))",
            ))
            .bind(ended)
            .bind(WINDOW_BATCH)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            tx.commit().await.map_err(backend)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use webhook_testkit::PostgresServer;

    use super::schema::SCHEMA_VERSION;
    use super::*;
    use crate::store::fixture::{self, endpoint};

    async fn server() -> PostgresServer {
        tokio::task::spawn_blocking(PostgresServer::start)
            .await
            .unwrap()
    }

    async fn store(server: &PostgresServer, schema: &str) -> PostgresStore {
        PostgresStore::connect(&PostgresConfig::new(server.url()).schema(schema))
            .await
            .unwrap()
    }

    /// Publishes one message about `key` to `endpoint`.
    async fn publish(store: &PostgresStore, endpoint: EndpointId, key: &str) -> DeliveryId {
        let message = fixture::message("org", key, 0, b"\x00binary\xff");
        let delivery = DeliveryRecord::new(&message, endpoint, 0);
        let id = delivery.id;
        let stored = store.enqueue(message, vec![delivery]).await.unwrap();
        assert_eq!(stored, Enqueued::Stored);
        id
    }

    async fn claim(store: &PostgresStore, now_ms: i64) -> Vec<Claimed> {
        let request = ClaimRequest::new(now_ms, 10, Duration::from_millis(100));
        store.claim(request).await.unwrap().deliveries
    }

    fn delivered(at_ms: i64) -> Finish {
        Finish::Delivered(fixture::response(200, at_ms, 1))
    }

    async fn count(store: &PostgresStore, table: &str) -> i64 {
        let sql = store
            .names
            .sql(&format!("SELECT count(*) FROM {{s}}.{table}"));
        sqlx::query_scalar(&sql)
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    /// A lease that ran out on one node is taken over by another with a new token; the
    /// old token is refused.
    #[tokio::test]
    async fn another_node_takes_over_an_expired_lease() {
        let server = server().await;
        let a = store(&server, "t").await;
        let b = store(&server, "t").await;
        let e = endpoint(&a, 4).await;
        let id = publish(&a, e, "r").await;

        let first = claim(&a, 0).await;
        assert_eq!(first.len(), 1);
        assert_eq!(&first[0].payload.content[..], b"\x00binary\xff");
        assert!(claim(&b, 99).await.is_empty(), "still leased");
        let second = claim(&b, 100).await;
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].record.id, id);
        assert!(second[0].record.lease > first[0].record.lease);

        let stale = a.finish(id, first[0].record.lease, delivered(150)).await;
        assert!(stale.unwrap_err().is_lease_lost());
        b.finish(id, second[0].record.lease, delivered(150))
            .await
            .unwrap();
        let record = a.delivery(id).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Delivered);
    }

    /// Nodes claiming at the same moment never exceed an endpoint's cap, nor lease two
    /// deliveries of one resource.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn caps_and_chains_hold_across_nodes_claiming_at_once() {
        let server = server().await;
        let nodes = [
            store(&server, "t").await,
            store(&server, "t").await,
            store(&server, "t").await,
        ];
        let capped = endpoint(&nodes[0], 2).await;
        let chained = endpoint(&nodes[0], 10).await;
        for i in 0..10 {
            publish(&nodes[0], capped, &format!("r{i}")).await;
            publish(&nodes[0], chained, "one-resource").await;
        }
        let (a, b, c) = tokio::join!(
            claim(&nodes[0], 0),
            claim(&nodes[1], 0),
            claim(&nodes[2], 0)
        );
        let claimed: Vec<Claimed> = [a, b, c].into_iter().flatten().collect();
        let of = |e| claimed.iter().filter(|c| c.record.endpoint == e).count();
        assert_eq!(of(capped), 2, "the cap holds across nodes");
        assert_eq!(of(chained), 1, "one head per chain");
    }

    /// A publish on one node wakes another node's listener.
    #[tokio::test]
    async fn a_publish_on_one_node_wakes_another() {
        let server = server().await;
        let a = store(&server, "t").await;
        let b = store(&server, "t").await;
        let e = endpoint(&a, 4).await;
        // The listener connects in the background: publish until it hears one.
        for attempt in 0.. {
            assert!(attempt < 25, "never woken");
            publish(&a, e, "r").await;
            let woken = tokio::time::timeout(Duration::from_millis(200), b.notified()).await;
            if woken.is_ok() {
                break;
            }
        }
    }

    /// A schema written by a newer version is refused at connect.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let server = server().await;
        let first = store(&server, "t").await;
        let again = store(&server, "t").await; // the current version: accepted
        drop(again);
        sqlx::query(
            &first
                .names
                .sql("UPDATE {s}.meta SET value = $1 WHERE key = 'schema'"),
        )
        .bind(SCHEMA_VERSION + 1)
        .execute(&first.pool)
        .await
        .unwrap();
        let config = PostgresConfig::new(server.url()).schema("t");
        let refused = PostgresStore::connect(&config).await.unwrap_err();
        assert!(refused.is_incompatible(), "{refused}");
        let expected = format!("schema version {}", SCHEMA_VERSION + 1);
        assert!(refused.to_string().contains(&expected), "{refused}");
    }

    /// The URL's password appears in no `Debug` and no error; bad schema names are
    /// refused before any statement is built from them.
    #[tokio::test]
    async fn the_password_stays_secret_and_bad_schemas_are_refused() {
        let url = "postgres://app:s3cret-pw@127.0.0.1:1/db";
        let config = PostgresConfig::new(url).acquire_timeout(Duration::from_millis(500));
        assert!(!format!("{config:?}").contains("s3cret"));
        let unreachable = PostgresStore::connect(&config).await.unwrap_err();
        assert!(!format!("{unreachable} {unreachable:?}").contains("s3cret"));
        let garbled = PostgresConfig::new("postgres://app:s3cret-pw@127.0.0.1:port/db");
        let error = PostgresStore::connect(&garbled).await.unwrap_err();
        assert!(!format!("{error} {error:?}").contains("s3cret"), "{error}");
        for bad in ["", "Upper", "9lives", "a-b", "x\"; DROP TABLE y; --"] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
    }

    /// A store on the application's own pool leaves that pool open when it closes.
    #[tokio::test]
    async fn closing_a_store_on_an_application_pool_leaves_the_pool_open() {
        let server = server().await;
        let pool = PgPool::connect(&server.url()).await.unwrap();
        let store = PostgresStore::open(pool.clone(), "app").await.unwrap();
        endpoint(&store, 1).await;
        store.close().await.unwrap();
        assert!(store.config_version().await.unwrap_err().is_closed());
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1, "the application's pool still works");
        assert!(!pool.is_closed());
    }

    /// Retention leaves no row behind, and a closed store refuses later calls.
    #[tokio::test]
    async fn retention_leaves_no_rows_behind_and_close_refuses_later_calls() {
        let server = server().await;
        let store = store(&server, "t").await;
        let e = endpoint(&store, 4).await;
        let ids = [publish(&store, e, "r").await, publish(&store, e, "s").await];
        for claimed in claim(&store, 0).await {
            let lease = claimed.record.lease;
            store
                .finish(claimed.record.id, lease, delivered(1))
                .await
                .unwrap();
        }
        assert_eq!(store.remove_finished(ids.to_vec()).await.unwrap(), 2);
        for table in ["deliveries", "messages", "index_entries"] {
            assert_eq!(count(&store, table).await, 0, "{table}");
        }
        store.close().await.unwrap();
        assert!(store.delivery(ids[0]).await.unwrap_err().is_closed());
        store.close().await.unwrap();
    }
}
