//! The Redis store (feature `redis`): several sender nodes share one queue, one set of
//! idempotency windows, one configuration and one history. [`RedisStore`] documents the
//! model and the key layout.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use redis::aio::ConnectionManager;
use webhook_core::idempotency::WINDOW_SECS;
use webhook_redis::{RedisConfig, RedisConnection};

use super::index::{self, IndexEntry, Scan};
use super::record::{DeliveryRecord, MessageRecord, Payload};
use super::{
    Claim, ClaimRequest, Claimed, ConfigStore, Enqueued, Finish, HistoryStore, QueueStore,
    Snapshot, StoreError, StoreFuture, StoredEndpoint, StoredOrganization, WindowStore,
};
use crate::delivery::{AttemptRecord, DeliveryStatus, duration_millis};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

macro_rules! script {
    ($file:literal) => {
        redis::Script::new(concat!(
            include_str!("redis/common.lua"),
            include_str!(concat!("redis/", $file))
        ))
    };
}

/// The key layout this build writes and the newest it reads.
const SCHEMA_VERSION: i64 = 3;
/// Holds the key layout's version.
const SCHEMA_KEY: &str = "schema";
/// Counts configuration changes (endpoints, organizations) made by any node.
const CONFIG_VERSION: &str = "cfgver";
/// When retention last completed a run.
const LAST_PRUNED: &str = "pruned";
/// A node's set of known endpoints expires this long after its last claim.
const KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);
/// The marker that keeps a node's known-endpoints set present while it knows none.
const KNOWN_MARKER: &str = "*";
/// Entries idle this long (or twice the lease, if longer) count as orphaned by default.
const MIN_ORPHANED_AFTER: Duration = Duration::from_secs(60);
/// How often a change computed from a record read just before is tried again when the
/// record changed in between (another node finished, redrove or cancelled it).
const TRIES: usize = 3;
/// At most this many claimed deliveries' records are kept for their finish (see
/// [`State::leased`]).
const LEASED_CACHE: usize = 1 << 16;
/// The hash fields of a delivery that make up its record, in this order.
const DELIVERY_FIELDS: [&str; 9] = [
    "rec", "seq", "st", "due", "lease", "round", "att", "fin", "why",
];

/// The Redis store: every sender node on one Redis and key prefix shares its queue,
/// idempotency windows, configuration and history. Cheap to clone; clones share the
/// connection and the node's name.
///
/// ```no_run
/// use webhook_sender::Sender;
/// use webhook_sender::store::{RedisConfig, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// // Every node of one environment uses the same URL and prefix.
/// let store = RedisStore::connect(&RedisConfig::new("redis://127.0.0.1:6379/").prefix("prod:"))
///     .await?
///     .consumer("node-a"); // its name in the consumer group (default: random)
/// let sender = Sender::builder().store(store).build().await?;
/// # drop(sender);
/// # Ok(())
/// # }
/// ```
///
/// # The model
///
/// The same chains as every backend (ARCHITECTURE.md, "Queue model"), kept in Redis and
/// changed only by Lua scripts, each of which runs atomically, so that any number of nodes
/// can claim and finish concurrently. Keys (under `{prefix}sender:`; key names are
/// binary-safe, `{org}`, `{resource key}` and index set names are raw bytes):
///
/// | key | type | holds |
/// |---|---|---|
/// | `schema` | string | the key layout's version (3); any other one is refused |
/// | `m:{event}:{org}` | hash | one message: `rec`, its record as enqueued ([`MessageRecord::encode`]) without the payload's content; `body`, the payload's content (raw bytes); `dom`, the payload's domain (absent when none; also in `rec`) |
/// | `md:{event}:{org}` | list | the message's delivery ids, in fan-out order; retention removes from it |
/// | `d:{delivery}` | hash | one delivery: `rec` (its record as enqueued, for the fields that never change), `mk` (its message's key), `ep`, `rk`, and the changing fields `seq`, `st`, `due`, `lease`, `round`, `att` (attempts, JSON), `fin`, `why` (cancel reason), `sid` (its stream entry while leased) |
/// | `chain:{endpoint}:{resource key}` | list | open deliveries of one chain, in publish order |
/// | `chains:{endpoint}` | sorted set (score 0) | resource keys of the endpoint's non-empty chains (cancels walk them) |
/// | `sched:{endpoint}` | sorted set | pending chain heads by due time: the *scheduled* set |
/// | `leases:{endpoint}` | sorted set | leased deliveries by lease end |
/// | `due` | sorted set | endpoints by their earliest scheduled head or lease end |
/// | `ready` | stream, group `senders` | one entry per lease, pending in the claiming node's consumer |
/// | `seq`, `lease-seq`, `open`, `orphan-cursor` | strings | the `seq` and lease-token counters, the open count, the `XAUTOCLAIM` cursor |
/// | `ix:{set name}` | sorted set (score 0) | one index set of [`index`]: binary members, read with `ZRANGE … BYLEX` |
/// | `ep:{endpoint}`, `eps`, `orgs`, `cfgver` | hash, set, hash, string | configuration and its version |
/// | `win:{org}␟{type}␟{entity}` | string | an idempotency window's start, expiring after two windows |
/// | `node:{consumer}:endpoints` | set | the endpoints one node has loaded |
/// | `pruned` | string | when retention last completed a run |
///
/// - **Enqueue** (one script) stores the message once, keyed by organization and event
///   id (an existing one is returned and nothing is stored), then its deliveries and
///   every index entry of both. The payload is kept once, in the message, its content
///   raw in `body`; a claim returns it from there, with no decoding.
/// - **Index entries** are computed by the engine ([`index::delivery_entries`],
///   [`index::message_entries`]) and passed to the scripts, so the layout is defined
///   once. They depend only on fields that never change plus the status group and the
///   finish time, so a status change reads the delivery's `rec` (which never changes),
///   computes the entries before and after, and hands both to the script, which applies
///   them only if the delivery is still in the state they were computed for (in flight
///   under the lease, failed with that finish time, open, finished as read), in the same
///   script as the status change. A finish needs no read: the claim returned `rec`, and
///   the node keeps it until the finish (reading it only when it is not kept: a lease
///   taken over from elsewhere, or more than 65,536 leases open at once). Entries travel
///   grouped by member (a block: the group count, then per group the member, the set
///   count and the set names).
/// - **Claim** (one script) walks the endpoints in `due` order as the in-memory queue
///   does, gives each up to its free concurrency (cap, lowered by this node's breaker and
///   rate-limit overrides, minus unexpired leases, counted over all nodes), and moves due
///   heads from the scheduled set into the `ready` stream, reading them at once into
///   this node's consumer: a stream entry pending in the group *is* a lease, and
///   `XPENDING` shows which node holds what and how often each was delivered. Each claim
///   gets a fresh token from a counter, so a finish with a stale token is refused.
/// - **Finish** (one script) checks the token, acknowledges and deletes the entry, records
///   the attempt, and either puts the delivery back into the scheduled set (retry,
///   release) or closes it (moving its index entries), which makes the next delivery of
///   its chain the head.
/// - **Cancel** reads up to `limit` open deliveries of the endpoint chain by chain, then
///   one script cancels those still open: out of their chains, scheduled and lease sets,
///   their stream entries acknowledged and deleted (a later finish is refused), index
///   entries moved.
/// - **A node that dies** leaves its entries pending. A lease ends at its lease end by
///   the engine's clock (`ClaimRequest::now_ms`, like every due time), and the next claim
///   of any node takes the entry over with `XCLAIM` and a new token. As a safety net on
///   Redis's own clock, every claim also runs `XAUTOCLAIM` over entries idle for much
///   longer than a lease ([`RedisStore::orphaned_after`]) and ends their leases at once:
///   that covers a dead node whose clock ran ahead of the others.
/// - **Ordering** across nodes: only a chain's head is ever scheduled or leased, and
///   every change to a chain happens inside one script.
/// - **Idempotency windows** are claimed by a script implementing
///   [`next_window_start`](webhook_core::idempotency::next_window_start), so all nodes
///   derive the same keys. The same script returns `cfgver`, so a publish reads both in
///   one round trip ([`WindowStore::claim_idempotency_window_and_config_version`]).
/// - **Configuration** is stored in Redis, and every change (also removing an endpoint)
///   increments `cfgver` ([`ConfigStore::config_version`]). Senders compare it before
///   each publish's fan-out and at every idle poll and [`load`](ConfigStore::load) again when it
///   moved, so a node fans out to an endpoint created on another node and signs with
///   another node's rotated secrets. A node claims deliveries only for endpoints it has
///   loaded or created itself (`node:{consumer}:endpoints`), so a delivery is never held
///   back for a minute by a node that does not know its endpoint yet. Caps and the
///   claimable flag are read from Redis at every claim, so pausing or removing an
///   endpoint or changing its cap applies to every node at once.
///
/// # Requirements
///
/// Redis 6.2 or newer (`XAUTOCLAIM`, `ZRANGE … BYLEX LIMIT`; tested with 7.0), standalone
/// or a Sentinel-managed primary: the scripts build key names at run time, which Redis
/// Cluster does not allow.
///
/// # Durability and outages
///
/// Redis acknowledges a write once it is in memory. It survives a Redis crash only if it
/// also reached the append-only file: run Redis with `appendonly yes` and `appendfsync
/// always` for "acknowledged means kept" (`everysec` may lose the last second), and
/// `maxmemory-policy noeviction`. While Redis is unreachable every call fails within the
/// connection's timeout: `publish` returns a store error (never a silent success), the
/// scheduler backs off and claims again, and attempts whose result could not be recorded
/// are attempted again after their lease (at-least-once; receivers deduplicate). A call
/// that timed out may still have been carried out: an error does not prove that nothing
/// was stored. The scripts are re-sent after a restart emptied Redis's script cache.
#[derive(Clone)]
pub struct RedisStore {
    redis: RedisConnection,
    prefix: String,
    consumer: String,
    orphaned_after: Option<Duration>,
    scripts: Arc<Scripts>,
    state: Arc<State>,
}

struct Scripts {
    enqueue: redis::Script,
    claim: redis::Script,
    finish: redis::Script,
    redrive: redis::Script,
    open: redis::Script,
    cancel: redis::Script,
    remove: redis::Script,
    unrouted: redis::Script,
    window: redis::Script,
    close: redis::Script,
}

#[derive(Default)]
struct State {
    /// The records as enqueued (attempts left out) of deliveries this node claimed and
    /// has not finished, with the claim's lease token: what a finish computes the index
    /// changes from without reading `rec`. A record never changes, so a kept one is good
    /// whatever happened to the delivery since (the script checks the lease). Bounded by
    /// [`LEASED_CACHE`]: when full, the older half (by lease token) goes.
    leased: Mutex<HashMap<DeliveryId, (u64, DeliveryRecord)>>,
    closed: AtomicBool,
    /// Set once [`ConfigStore::load`] ran: from then on this node claims only known
    /// endpoints.
    loaded: AtomicBool,
    /// Set once the schema version was checked (at connect, or at the first call of a
    /// store made with [`RedisStore::new`]).
    checked: AtomicBool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("consumer", &self.consumer)
            .field("orphaned_after", &self.orphaned_after)
            .finish_non_exhaustive()
    }
}

/// One claimed delivery as the claim script returns it: id, record, seq, lease token,
/// round attempts, attempts, its message's payload body and domain.
type ClaimedRow = (
    String,
    Option<Vec<u8>>,
    Option<String>,
    u64,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
);

/// An existing message as the enqueue script returns it: record, delivery ids, body.
type ExistingRow = (Vec<u8>, Vec<String>, Option<Vec<u8>>);

impl RedisStore {
    /// Connects with `config` (URL, key prefix, timeouts; see [`RedisConfig`]), checks
    /// that Redis answers and that the keys under the prefix were written by a layout this
    /// build reads (recording it when the prefix is new).
    ///
    /// # Errors
    /// [`StoreError`] when the URL is unusable or Redis cannot be reached;
    /// [`StoreError::is_incompatible`] when the prefix holds a newer (or an older,
    /// unconvertible) key layout.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let redis = config.connect().await.map_err(StoreError::backend)?;
        redis.ping().await.map_err(StoreError::backend)?;
        let store = Self::new(redis);
        store.check_schema().await?;
        Ok(store)
    }

    /// A store on an existing connection; keys go under the connection's prefix followed
    /// by `sender:`. The key layout's version is checked by the first call (which fails
    /// with [`StoreError::is_incompatible`] on a newer one); [`RedisStore::connect`]
    /// checks it at once.
    #[must_use]
    pub fn new(redis: RedisConnection) -> Self {
        let prefix = redis.keys().child("sender:").as_str().to_owned();
        Self {
            redis,
            prefix,
            consumer: format!("sender-{}", uuid::Uuid::new_v4().simple()),
            orphaned_after: None,
            scripts: Arc::new(Scripts {
                enqueue: script!("enqueue.lua"),
                claim: script!("claim.lua"),
                finish: script!("finish.lua"),
                redrive: script!("redrive.lua"),
                open: script!("open.lua"),
                cancel: script!("cancel.lua"),
                remove: script!("remove.lua"),
                unrouted: script!("unrouted.lua"),
                window: script!("window.lua"),
                close: script!("close.lua"),
            }),
            state: Arc::new(State::default()),
        }
    }

    /// This node's name in the `ready` stream's consumer group. Default is
    /// `sender-<random>`, new for every store; a stable name (the host name) makes
    /// `XPENDING` easier to read. Two live nodes must not share a name.
    #[must_use]
    pub fn consumer(mut self, name: impl Into<String>) -> Self {
        self.consumer = name.into();
        self
    }

    /// The consumer name (see [`RedisStore::consumer`]).
    #[must_use]
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// How long, by Redis's clock, a leased entry may stay pending before its lease is
    /// ended whatever its lease end says (the safety net against a dead node whose clock
    /// ran ahead). Default is twice the claim's lease, at least 1 min; `Duration::ZERO`
    /// turns the net off.
    #[must_use]
    pub fn orphaned_after(mut self, after: Duration) -> Self {
        self.orphaned_after = Some(after);
        self
    }

    /// The prefix of every key of this store (`{connection prefix}sender:`).
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn delivery_key(&self, id: DeliveryId) -> String {
        self.key(&format!("d:{id}"))
    }

    fn message_keys(&self, organization: &OrganizationId, event: EventId) -> (String, String) {
        let mk = message_key(organization, event);
        (self.key(&format!("m:{mk}")), self.key(&format!("md:{mk}")))
    }

    fn index_key(&self, set: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 3 + set.len());
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(b"ix:");
        key.extend_from_slice(set);
        key
    }

    fn known_key(&self) -> String {
        self.key(&format!("node:{}:endpoints", self.consumer))
    }

    /// The connection, once the store is known to be open and of a layout this build
    /// reads.
    async fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if self.state.closed.load(Ordering::SeqCst) {
            return Err(StoreError::closed());
        }
        if !self.state.checked.load(Ordering::SeqCst) {
            self.check_schema().await?;
        }
        Ok(self.redis.manager())
    }

    /// Records the key layout's version under a new prefix, and refuses one this build
    /// does not read.
    async fn check_schema(&self) -> Result<(), StoreError> {
        let key = self.key(SCHEMA_KEY);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&key)
            .arg(SCHEMA_VERSION)
            .arg("NX")
            .ignore();
        pipe.cmd("GET").arg(&key);
        let mut manager = self.redis.manager();
        let (stored,): (Option<String>,) = self
            .redis
            .bounded(pipe.query_async(&mut manager))
            .await
            .map_err(StoreError::backend)?;
        let stored = stored.unwrap_or_default();
        let version: i64 = stored.parse().map_err(|_| {
            StoreError::corrupt(format!("{key} holds {stored:?}, not a schema version"))
        })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::incompatible(format!(
                "the Redis keys under {:?} have schema version {version}; this build reads \
                 up to {SCHEMA_VERSION}: use a newer version of webhook-sender",
                self.prefix
            )));
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::incompatible(format!(
                "the Redis keys under {:?} have schema version {version}, which this build \
                 cannot upgrade: drain it with the version that wrote it, or use a new prefix",
                self.prefix
            )));
        }
        self.state.checked.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Runs a script with the prefix as its first argument.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<T, StoreError> {
        let mut manager = self.manager().await?;
        let mut invocation = script.prepare_invoke();
        invocation.arg(&self.prefix);
        args(&mut invocation);
        self.redis
            .bounded(invocation.invoke_async(&mut manager))
            .await
            .map_err(StoreError::backend)
    }

    /// Runs one command.
    async fn command<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut manager = self.manager().await?;
        self.redis
            .bounded(command.query_async(&mut manager))
            .await
            .map_err(StoreError::backend)
    }

    /// Runs a pipeline (atomic if it says so); its replies decode into `T`.
    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipeline: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut manager = self.manager().await?;
        self.redis
            .bounded(pipeline.query_async(&mut manager))
            .await
            .map_err(StoreError::backend)
    }

    fn orphan_threshold(&self, lease: Duration) -> Duration {
        self.orphaned_after
            .unwrap_or_else(|| lease.saturating_mul(2).max(MIN_ORPHANED_AFTER))
    }

    async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        let ids: Vec<String> = self
            .command(redis::cmd("SMEMBERS").arg(self.key("eps")))
            .await?;
        let mut read = redis::pipe();
        for id in &ids {
            read.cmd("HMGET")
                .arg(self.key(&format!("ep:{id}")))
                .arg(&["cap", "on", "data"]);
        }
        read.cmd("HGETALL").arg(self.key("orgs"));
        let mut values: Vec<redis::Value> = self.pipeline(&read).await?;
        let organizations = values.pop().unwrap_or(redis::Value::Nil);
        let mut endpoints = Vec::with_capacity(ids.len());
        for (id, value) in ids.iter().zip(values) {
            let (cap, on, data): (Option<u32>, Option<String>, Option<Vec<u8>>) =
                redis::from_redis_value(value).map_err(StoreError::corrupt)?;
            let (Some(cap), Some(on), Some(data)) = (cap, on, data) else {
                continue; // an id without its hash: nothing to load
            };
            let id = id.parse().map_err(StoreError::corrupt)?;
            endpoints.push(StoredEndpoint::new(id, cap, on == "1", data));
        }
        let organizations: Vec<(String, Vec<u8>)> =
            redis::from_redis_value(organizations).map_err(StoreError::corrupt)?;
        Ok(Snapshot::new(
            endpoints,
            organizations
                .into_iter()
                .map(|(id, data)| StoredOrganization::new(OrganizationId::from(id), data))
                .collect(),
        ))
    }

    /// The records of `ids` (`None` for those that do not exist), in one round trip.
    async fn read_deliveries(
        &self,
        ids: &[DeliveryId],
    ) -> Result<Vec<Option<DeliveryRecord>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = redis::pipe();
        for id in ids {
            read.cmd("HMGET")
                .arg(self.delivery_key(*id))
                .arg(&DELIVERY_FIELDS);
        }
        let rows: Vec<Vec<Option<Vec<u8>>>> = self.pipeline(&read).await?;
        rows.into_iter().map(|row| delivery_record(&row)).collect()
    }

    /// The messages of `keys` (`None` for those that do not exist), with their current
    /// delivery lists, in one round trip. With `as_enqueued`, the records keep the
    /// delivery lists they were enqueued with (what their index entries were computed
    /// from).
    async fn read_messages(
        &self,
        keys: &[(OrganizationId, EventId)],
        as_enqueued: bool,
    ) -> Result<Vec<Option<MessageRecord>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut read = redis::pipe();
        for (organization, event) in keys {
            let (m, md) = self.message_keys(organization, *event);
            read.cmd("HMGET").arg(m).arg(&["rec", "body"]);
            read.cmd("LRANGE").arg(md).arg(0).arg(-1);
        }
        let replies: Vec<redis::Value> = self.pipeline(&read).await?;
        let mut replies = replies.into_iter();
        let mut rows = Vec::with_capacity(keys.len());
        while let (Some(fields), Some(ids)) = (replies.next(), replies.next()) {
            let (rec, body): (Option<Vec<u8>>, Option<Vec<u8>>) =
                redis::from_redis_value(fields).map_err(StoreError::corrupt)?;
            let ids: Vec<String> = redis::from_redis_value(ids).map_err(StoreError::corrupt)?;
            rows.push((rec, body, ids));
        }
        rows.into_iter()
            .map(|(rec, body, ids)| {
                rec.map(|rec| {
                    let mut message = stored_message(&rec, body)?;
                    if !as_enqueued {
                        message.deliveries = parse_ids(&ids)?;
                    }
                    Ok(message)
                })
                .transpose()
            })
            .collect()
    }

    /// A delivery's record as enqueued (its fields that never change), or `None`.
    async fn enqueued_record(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        let rec: Option<Vec<u8>> = self
            .command(redis::cmd("HGET").arg(self.delivery_key(id)).arg("rec"))
            .await?;
        rec.map(|rec| DeliveryRecord::decode(&rec)).transpose()
    }

    fn leased(&self) -> std::sync::MutexGuard<'_, HashMap<DeliveryId, (u64, DeliveryRecord)>> {
        self.state
            .leased
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The record a claim of this node kept for `id`: taken when it was kept for `lease`,
    /// copied when for another (the record is the same).
    fn kept(&self, id: DeliveryId, lease: u64) -> Option<DeliveryRecord> {
        let mut leased = self.leased();
        match leased.get(&id) {
            Some((kept, _)) if *kept == lease => leased.remove(&id).map(|(_, base)| base),
            Some((_, base)) => Some(base.clone()),
            None => None,
        }
    }

    /// Keeps the records (as enqueued) of claimed deliveries for their finish.
    fn keep_leased(&self, kept: Vec<DeliveryRecord>) {
        let Some(newest) = kept.iter().map(|record| record.lease).max() else {
            return;
        };
        let mut leased = self.leased();
        if leased.len() + kept.len() > LEASED_CACHE {
            // Leases this node claimed but never finished (taken over elsewhere, or their
            // attempt abandoned) end up here: the older half goes. Tokens are unique, so
            // at most half the bound stays.
            let cutoff = newest.saturating_sub(LEASED_CACHE as u64 / 2);
            leased.retain(|_, (lease, _)| *lease > cutoff);
        }
        for record in kept {
            leased.insert(record.id, (record.lease, record));
        }
    }

    /// One attempt at [`QueueStore::cancel_open`]: reads up to `limit` open deliveries,
    /// then cancels those still open. `None` when there were none to read.
    async fn cancel_some(
        &self,
        endpoint: EndpointId,
        reason: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Option<u64>, StoreError> {
        let open: Vec<(String, Option<Vec<u8>>)> = self
            .run(&self.scripts.open, |call| {
                call.arg(endpoint.to_string()).arg(limit);
            })
            .await?;
        if open.is_empty() {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(open.len());
        for (id, rec) in open {
            // A chain member without a record cannot be cancelled; the script skips it.
            let Some(rec) = rec else {
                rows.push((id, Vec::new(), Vec::new()));
                continue;
            };
            let base = DeliveryRecord::decode(&rec)?;
            let removed = entries_as(&base, DeliveryStatus::Pending, None);
            let added = entries_as(&base, DeliveryStatus::Cancelled, Some(now_ms));
            rows.push((id, removed, added));
        }
        let cancelled: u64 = self
            .run(&self.scripts.cancel, |call| {
                call.arg(endpoint.to_string())
                    .arg(reason)
                    .arg(now_ms)
                    .arg(rows.len());
                for (id, removed, added) in &rows {
                    call.arg(id);
                    entries_arg(call, removed);
                    entries_arg(call, added);
                }
            })
            .await?;
        Ok(Some(cancelled))
    }
}

/// A message's key under `m:` and `md:`: the event id (fixed length) then the
/// organization.
fn message_key(organization: &OrganizationId, event: EventId) -> String {
    format!("{event}:{}", organization.as_str())
}

/// The status-dependent index entries of a delivery (given by its record as enqueued) in
/// another state: what a status change removes (old state) and adds (new state).
fn entries_as(
    base: &DeliveryRecord,
    status: DeliveryStatus,
    finished_at_ms: Option<i64>,
) -> Vec<IndexEntry> {
    let mut record = base.clone();
    record.status = status;
    record.finished_at_ms = finished_at_ms;
    index::delivery_status_entries(&record)
}

/// Passes index entries as a block, grouped by member (in order of first appearance):
/// the group count, then per group the member, the set count and the set names.
fn entries_arg(call: &mut redis::ScriptInvocation<'_>, entries: &[IndexEntry]) {
    let mut members: Vec<&[u8]> = Vec::with_capacity(entries.len());
    for entry in entries {
        if !members.contains(&entry.member.as_slice()) {
            members.push(&entry.member);
        }
    }
    call.arg(members.len());
    for member in members {
        let sets = entries.iter().filter(|e| e.member == member);
        call.arg(member).arg(sets.clone().count());
        for entry in sets {
            call.arg(entry.set.as_slice());
        }
    }
}

/// A message as stored under `m:`: its record (payload content left out) and the
/// content from `body`.
fn stored_message(rec: &[u8], body: Option<Vec<u8>>) -> Result<MessageRecord, StoreError> {
    let mut message = MessageRecord::decode(rec)?;
    let body = body.ok_or_else(|| {
        StoreError::corrupt(format!(
            "message {} of {} has no body",
            message.event,
            message.organization.as_str()
        ))
    })?;
    message.payload.content = Bytes::from(body);
    Ok(message)
}

fn known_ttl_ms() -> u64 {
    u64::try_from(KNOWN_TTL.as_millis()).unwrap_or(u64::MAX)
}

/// An integer Redis returned as text (scores may come back in exponent form).
#[allow(clippy::cast_possible_truncation)] // clamped to i64's range first
fn number(text: &str) -> Result<i64, StoreError> {
    if let Ok(n) = text.parse::<i64>() {
        return Ok(n);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f.clamp(-9.2e18, 9.2e18) as i64),
        _ => Err(StoreError::corrupt(format!("not a number: {text:?}"))),
    }
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(StoreError::corrupt)
}

fn field_number(bytes: Option<&[u8]>) -> Result<Option<i64>, StoreError> {
    bytes.map(|b| text(b).and_then(number)).transpose()
}

fn parse_ids(ids: &[String]) -> Result<Vec<DeliveryId>, StoreError> {
    ids.iter()
        .map(|id| id.parse().map_err(StoreError::corrupt))
        .collect()
}

/// A delivery's record from its hash fields ([`DELIVERY_FIELDS`]); `None` when it has no
/// record.
fn delivery_record(fields: &[Option<Vec<u8>>]) -> Result<Option<DeliveryRecord>, StoreError> {
    let field = |i: usize| fields.get(i).and_then(Option::as_deref);
    let Some(rec) = field(0) else {
        return Ok(None);
    };
    let mut record = DeliveryRecord::decode(rec)?;
    let missing = |name: &str| StoreError::corrupt(format!("delivery {} has no {name}", record.id));
    let seq = field_number(field(1))?.ok_or_else(|| missing("seq"))?;
    record.seq = u64::try_from(seq).map_err(StoreError::corrupt)?;
    record.status = status(text(field(2).ok_or_else(|| missing("status"))?)?)?;
    record.due_at_ms = field_number(field(3))?.unwrap_or_default();
    record.lease = field_number(field(4))?
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default();
    record.round_attempts =
        field_number(field(5))?.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    record.attempts = match field(6) {
        Some(attempts) => serde_json::from_slice(attempts).map_err(StoreError::corrupt)?,
        None => Vec::new(),
    };
    record.finished_at_ms = field_number(field(7))?;
    record.cancel_reason = field(8)
        .map(|why| text(why).map(str::to_owned))
        .transpose()?;
    Ok(Some(record))
}

fn status(text: &str) -> Result<DeliveryStatus, StoreError> {
    DeliveryStatus::from_name(text)
        .ok_or_else(|| StoreError::corrupt(format!("unknown status {text:?}")))
}

fn json(attempt: &AttemptRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(attempt).map_err(StoreError::corrupt)
}

/// When an attempt ended: the finish time of a delivered or failed delivery.
fn ended(attempt: &AttemptRecord) -> i64 {
    attempt
        .at_ms
        .saturating_add(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
}

impl ConfigStore for RedisStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        Box::pin(async move {
            let snapshot = self.load_snapshot().await?;
            // From now on this node claims only for the endpoints it knows.
            let known = self.known_key();
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg(&known).ignore();
            let members = snapshot.endpoints.iter().map(|e| e.id.to_string());
            pipe.cmd("SADD")
                .arg(&known)
                .arg(KNOWN_MARKER)
                .arg(members.collect::<Vec<_>>())
                .ignore();
            pipe.cmd("PEXPIRE").arg(&known).arg(known_ttl_ms()).ignore();
            self.pipeline::<()>(&pipe).await?;
            self.state.loaded.store(true, Ordering::SeqCst);
            Ok(snapshot)
        })
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let id = endpoint.id.to_string();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HSET")
                .arg(self.key(&format!("ep:{id}")))
                .arg("cap")
                .arg(endpoint.max_concurrency)
                .arg("on")
                .arg(if endpoint.claimable { "1" } else { "0" })
                .arg("data")
                .arg(endpoint.data)
                .ignore();
            pipe.cmd("SADD").arg(self.key("eps")).arg(&id).ignore();
            if self.state.loaded.load(Ordering::SeqCst) {
                pipe.cmd("SADD").arg(self.known_key()).arg(&id).ignore();
            }
            pipe.cmd("INCR").arg(self.key(CONFIG_VERSION)).ignore();
            self.pipeline(&pipe).await
        })
    }

    /// Removes the endpoint's configuration (claims skip an endpoint without one) and
    /// bumps the version; its chains stay until [`QueueStore::cancel_open`] empties them.
    fn remove_endpoint(&self, id: EndpointId) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let id = id.to_string();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("DEL")
                .arg(self.key(&format!("ep:{id}")))
                .ignore();
            pipe.cmd("SREM").arg(self.key("eps")).arg(&id).ignore();
            pipe.cmd("SREM").arg(self.known_key()).arg(&id).ignore();
            pipe.cmd("INCR").arg(self.key(CONFIG_VERSION)).ignore();
            self.pipeline(&pipe).await
        })
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.atomic()
                .cmd("HSET")
                .arg(self.key("orgs"))
                .arg(organization.id.as_str())
                .arg(organization.data)
                .ignore();
            pipe.cmd("INCR").arg(self.key(CONFIG_VERSION)).ignore();
            self.pipeline(&pipe).await
        })
    }

    fn config_version(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let version: Option<u64> = self
                .command(redis::cmd("GET").arg(self.key(CONFIG_VERSION)))
                .await?;
            Ok(version.unwrap_or(0))
        })
    }
}

impl WindowStore for RedisStore {
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

    /// One script: the window and `cfgver`.
    fn claim_idempotency_window_and_config_version<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, (i64, Option<u64>)> {
        Box::pin(async move {
            let triple = format!("{organization}\u{1f}{kind}\u{1f}{entity}");
            let (start, version): (String, String) = self
                .run(&self.scripts.window, |call| {
                    call.arg(triple).arg(now).arg(WINDOW_SECS);
                })
                .await?;
            let version = version.parse().map_err(|_| {
                StoreError::corrupt(format!("cfgver holds {version:?}, not a version"))
            })?;
            Ok((number(&start)?, Some(version)))
        })
    }
}

impl QueueStore for RedisStore {
    fn enqueue(
        &self,
        mut message: MessageRecord,
        mut deliveries: Vec<DeliveryRecord>,
    ) -> StoreFuture<'_, Enqueued> {
        Box::pin(async move {
            message.deliveries = deliveries.iter().map(|d| d.id).collect();
            let mk = message_key(&message.organization, message.event);
            let message_entries = index::message_entries(&message);
            // The content goes raw into `body`; the record keeps the rest.
            let body = std::mem::take(&mut message.payload.content);
            let domain = message.payload.domain.clone();
            let mut rows = Vec::with_capacity(deliveries.len());
            for record in &mut deliveries {
                // As every backend enqueues: pending, no lease; Redis assigns `seq`.
                record.status = DeliveryStatus::Pending;
                record.lease = 0;
                rows.push((
                    record.id.to_string(),
                    record.encode(),
                    record.endpoint.to_string(),
                    index::delivery_entries(record),
                ));
            }
            let existing: Option<ExistingRow> = self
                .run(&self.scripts.enqueue, |call| {
                    call.arg(&mk).arg(message.encode()).arg(body.as_ref());
                    match &domain {
                        Some(domain) => call.arg("1").arg(domain),
                        None => call.arg("").arg(""),
                    };
                    entries_arg(call, &message_entries);
                    call.arg(rows.len());
                    for ((id, rec, endpoint, entries), record) in rows.iter().zip(&deliveries) {
                        call.arg(id)
                            .arg(rec.as_slice())
                            .arg(endpoint)
                            .arg(record.resource_key.as_str())
                            .arg(record.due_at_ms);
                        entries_arg(call, entries);
                    }
                })
                .await?;
            match existing {
                None => Ok(Enqueued::Stored),
                Some((rec, ids, body)) => {
                    let mut existing = stored_message(&rec, body)?;
                    existing.deliveries = parse_ids(&ids)?;
                    Ok(Enqueued::Existing(existing))
                }
            }
        })
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        Box::pin(async move {
            let lease_end = request
                .now_ms
                .saturating_add(duration_millis(request.lease).max(1));
            let orphaned = duration_millis(self.orphan_threshold(request.lease));
            let known = if self.state.loaded.load(Ordering::SeqCst) {
                self.known_key()
            } else {
                String::new()
            };
            let (next_due, open, rows): (Option<String>, String, Vec<ClaimedRow>) = self
                .run(&self.scripts.claim, |call| {
                    call.arg(&self.consumer)
                        .arg(request.now_ms)
                        .arg(lease_end)
                        .arg(request.limit)
                        .arg(orphaned)
                        .arg(known)
                        .arg(known_ttl_ms())
                        .arg(request.overrides.len());
                    for (endpoint, cap) in &request.overrides {
                        call.arg(endpoint.to_string()).arg(*cap);
                    }
                })
                .await?;
            let mut deliveries = Vec::with_capacity(rows.len());
            let mut kept = Vec::with_capacity(rows.len());
            for (id, rec, seq, token, round, attempts, body, domain) in rows {
                let corrupt =
                    |what: &str| StoreError::corrupt(format!("delivery {id} has no {what}"));
                let mut record = DeliveryRecord::decode(&rec.ok_or_else(|| corrupt("record"))?)?;
                let seq = number(&seq.ok_or_else(|| corrupt("seq"))?)?;
                record.seq = u64::try_from(seq).map_err(StoreError::corrupt)?;
                record.status = DeliveryStatus::InFlight;
                record.due_at_ms = lease_end;
                record.lease = token;
                // The record as enqueued (no attempts), for the finish.
                kept.push(record.clone());
                record.round_attempts = match round {
                    Some(round) => u32::try_from(number(&round)?).unwrap_or(u32::MAX),
                    None => 0,
                };
                record.attempts = match attempts {
                    Some(attempts) => {
                        serde_json::from_slice(&attempts).map_err(StoreError::corrupt)?
                    }
                    None => Vec::new(),
                };
                record.finished_at_ms = None;
                record.cancel_reason = None;
                let body = body.ok_or_else(|| corrupt("message body"))?;
                deliveries.push(Claimed::new(record, Payload::new(body, domain)));
            }
            self.keep_leased(kept);
            Ok(Claim::new(
                deliveries,
                next_due.as_deref().map(number).transpose()?,
                u64::try_from(number(&open)?).unwrap_or_default(),
            ))
        })
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (outcome, at, attempt, finished) = match &finish {
                Finish::Delivered(attempt) => (
                    "delivered",
                    ended(attempt),
                    json(attempt)?,
                    Some(DeliveryStatus::Delivered),
                ),
                Finish::Failed(attempt) => (
                    "failed",
                    ended(attempt),
                    json(attempt)?,
                    Some(DeliveryStatus::Failed),
                ),
                Finish::Retry { attempt, at_ms } => ("retry", *at_ms, json(attempt)?, None),
                Finish::Release { at_ms } => ("release", *at_ms, Vec::new(), None),
            };
            // Finishing moves the index entries from the open group to the finished one;
            // the script applies them only while the lease holds (so from the open group).
            // The claim kept the record they are computed from (forgotten now, whatever
            // the outcome, unless a later claim of this node kept it).
            let kept = self.kept(id, lease);
            let (removed, added) = match finished {
                Some(status) => {
                    let base = match kept {
                        Some(base) => Some(base),
                        None => self.enqueued_record(id).await?,
                    };
                    let Some(base) = base else {
                        return Err(StoreError::lease_lost());
                    };
                    (
                        entries_as(&base, DeliveryStatus::InFlight, None),
                        entries_as(&base, status, Some(at)),
                    )
                }
                None => (Vec::new(), Vec::new()),
            };
            let done: i64 = self
                .run(&self.scripts.finish, |call| {
                    call.arg(id.to_string())
                        .arg(lease)
                        .arg(outcome)
                        .arg(at)
                        .arg(attempt);
                    entries_arg(call, &removed);
                    entries_arg(call, &added);
                })
                .await?;
            if done == 1 {
                Ok(())
            } else {
                Err(StoreError::lease_lost())
            }
        })
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            for _ in 0..TRIES {
                let Some(record) = self.read_deliveries(&[id]).await?.pop().flatten() else {
                    return Ok(false);
                };
                if record.status != DeliveryStatus::Failed {
                    return Ok(false);
                }
                let removed = index::delivery_status_entries(&record);
                let added = entries_as(&record, DeliveryStatus::Pending, None);
                let fin = record
                    .finished_at_ms
                    .map(|fin| fin.to_string())
                    .unwrap_or_default();
                let done: i64 = self
                    .run(&self.scripts.redrive, |call| {
                        call.arg(id.to_string()).arg(now_ms).arg(fin);
                        entries_arg(call, &removed);
                        entries_arg(call, &added);
                    })
                    .await?;
                if done == 1 {
                    return Ok(true);
                }
                // Changed since it was read (redriven and failed again elsewhere): read
                // it again.
            }
            Ok(false)
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

    /// Marks the store closed for every clone; forgets this node's known-endpoints set
    /// and, if it holds no lease, its consumer. Nothing needs flushing: every write was
    /// acknowledged by Redis when its call returned. The clean-up is best effort.
    fn close(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if self.state.closed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let cleanup: Result<i64, StoreError> = self
                .run(&self.scripts.close, |call| {
                    call.arg(&self.consumer).arg(self.known_key());
                })
                .await;
            if let Err(error) = cleanup {
                tracing::warn!(%error, "forgetting this node in Redis failed");
            }
            self.state.closed.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

impl HistoryStore for RedisStore {
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryRecord>> {
        Box::pin(async move { Ok(self.read_deliveries(&[id]).await?.pop().flatten()) })
    }

    fn deliveries(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, Vec<DeliveryRecord>> {
        Box::pin(async move {
            Ok(self
                .read_deliveries(&ids)
                .await?
                .into_iter()
                .flatten()
                .collect())
        })
    }

    fn message(
        &self,
        organization: OrganizationId,
        event: EventId,
    ) -> StoreFuture<'_, Option<MessageRecord>> {
        Box::pin(async move {
            Ok(self
                .read_messages(&[(organization, event)], false)
                .await?
                .pop()
                .flatten())
        })
    }

    fn messages(
        &self,
        organization: OrganizationId,
        events: Vec<EventId>,
    ) -> StoreFuture<'_, Vec<MessageRecord>> {
        Box::pin(async move {
            let keys: Vec<_> = events
                .into_iter()
                .map(|event| (organization.clone(), event))
                .collect();
            Ok(self
                .read_messages(&keys, false)
                .await?
                .into_iter()
                .flatten()
                .collect())
        })
    }

    fn scan(&self, scan: Scan) -> StoreFuture<'_, Vec<Vec<u8>>> {
        Box::pin(async move {
            if scan.limit == 0 {
                return Ok(Vec::new());
            }
            let bound = |mark: u8, member: Option<&[u8]>, open: &[u8]| match member {
                Some(member) => {
                    let mut bound = Vec::with_capacity(member.len() + 1);
                    bound.push(mark);
                    bound.extend_from_slice(member);
                    bound
                }
                None => open.to_vec(),
            };
            let start = bound(b'[', scan.start.as_deref(), b"-");
            let end = bound(b'(', scan.end.as_deref(), b"+");
            self.command(
                redis::cmd("ZRANGE")
                    .arg(self.index_key(&scan.set))
                    .arg(start)
                    .arg(end)
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(scan.limit),
            )
            .await
        })
    }

    fn remove_finished(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let finished: Vec<DeliveryRecord> = self
                .read_deliveries(&ids)
                .await?
                .into_iter()
                .flatten()
                .filter(|record| !record.is_open())
                .collect();
            if finished.is_empty() {
                return Ok(0);
            }
            let keys: Vec<_> = finished
                .iter()
                .map(|record| (record.organization.clone(), record.event))
                .collect();
            // Entries as enqueued: what the message's last delivery takes with it.
            let messages = self.read_messages(&keys, true).await?;
            let rows: Vec<_> = finished
                .iter()
                .zip(&messages)
                .map(|(record, message)| {
                    let fin = record
                        .finished_at_ms
                        .map(|fin| fin.to_string())
                        .unwrap_or_default();
                    let message_entries = message
                        .as_ref()
                        .map(index::message_entries)
                        .unwrap_or_default();
                    (
                        record.id.to_string(),
                        record.status.as_str(),
                        fin,
                        message_key(&record.organization, record.event),
                        index::delivery_entries(record),
                        message_entries,
                    )
                })
                .collect();
            self.run(&self.scripts.remove, |call| {
                call.arg(rows.len());
                for (id, status, fin, mk, entries, message_entries) in &rows {
                    call.arg(id).arg(*status).arg(fin).arg(mk);
                    entries_arg(call, entries);
                    entries_arg(call, message_entries);
                }
            })
            .await
        })
    }

    fn remove_unrouted(&self, messages: Vec<(OrganizationId, EventId)>) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let stored = self.read_messages(&messages, false).await?;
            let rows: Vec<_> = stored
                .into_iter()
                .flatten()
                .filter(|message| message.deliveries.is_empty())
                .map(|message| {
                    (
                        message_key(&message.organization, message.event),
                        index::message_entries(&message),
                    )
                })
                .collect();
            if rows.is_empty() {
                return Ok(0);
            }
            self.run(&self.scripts.unrouted, |call| {
                call.arg(rows.len());
                for (mk, entries) in &rows {
                    call.arg(mk);
                    entries_arg(call, entries);
                }
            })
            .await
        })
    }

    fn last_pruned(&self) -> StoreFuture<'_, Option<i64>> {
        Box::pin(async move {
            let at: Option<String> = self
                .command(redis::cmd("GET").arg(self.key(LAST_PRUNED)))
                .await?;
            at.as_deref().map(number).transpose()
        })
    }

    fn set_last_pruned(&self, at_ms: i64) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.command(redis::cmd("SET").arg(self.key(LAST_PRUNED)).arg(at_ms))
                .await
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use webhook_testkit::RedisServer;

    use super::*;
    use crate::store::fixture::{self, endpoint};

    async fn server() -> RedisServer {
        tokio::task::spawn_blocking(RedisServer::start)
            .await
            .unwrap()
    }

    async fn store(server: &RedisServer, prefix: &str) -> RedisStore {
        RedisStore::connect(&RedisConfig::new(server.url()).prefix(prefix))
            .await
            .unwrap()
    }

    /// Publishes one message about `key` with a binary payload to each of `endpoints`.
    async fn publish(store: &RedisStore, endpoints: &[EndpointId], key: &str) -> Vec<DeliveryId> {
        let message = MessageRecord::new(
            EventId::generate(),
            OrganizationId::from("org"),
            "transaction",
            key,
            "idem",
            Payload::new(&b"\x00binary\xff"[..], Some("TRANSACTION".to_owned())),
            0,
        );
        let deliveries: Vec<_> = endpoints
            .iter()
            .map(|e| DeliveryRecord::new(&message, *e, 0))
            .collect();
        let ids = deliveries.iter().map(|d| d.id).collect();
        let stored = store.enqueue(message, deliveries).await.unwrap();
        assert_eq!(stored, Enqueued::Stored);
        ids
    }

    async fn claim(store: &RedisStore, now_ms: i64) -> Vec<Claimed> {
        let request = ClaimRequest::new(now_ms, 10, Duration::from_millis(100));
        store.claim(request).await.unwrap().deliveries
    }

    fn delivered(at_ms: i64) -> Finish {
        Finish::Delivered(fixture::response(200, at_ms, 1))
    }

    /// `(consumer, delivery count)` of every pending entry of the ready stream.
    async fn pending(store: &RedisStore) -> Vec<(String, u64)> {
        let rows: Vec<(String, String, u64, u64)> = store
            .command(
                redis::cmd("XPENDING")
                    .arg(store.key("ready"))
                    .arg("senders")
                    .arg("-")
                    .arg("+")
                    .arg(100),
            )
            .await
            .unwrap();
        rows.into_iter().map(|(_, c, _, n)| (c, n)).collect()
    }

    /// A lease that ran out on one node is taken over by another: a new token, the
    /// stream entry moves to the new node's consumer, the old token is refused.
    #[tokio::test]
    async fn another_node_takes_over_an_expired_lease() {
        let server = server().await;
        let a = store(&server, "t:").await.consumer("a");
        let b = store(&server, "t:").await.consumer("b");
        let e = endpoint(&a, 4).await;
        let id = publish(&a, &[e], "r").await[0];

        let first = claim(&a, 0).await;
        assert_eq!(first.len(), 1);
        assert_eq!(&first[0].payload.content[..], b"\x00binary\xff");
        assert_eq!(first[0].payload.domain.as_deref(), Some("TRANSACTION"));
        assert_eq!(pending(&a).await, vec![("a".to_owned(), 1)]);
        assert!(claim(&b, 99).await.is_empty(), "still leased");

        let second = claim(&b, 100).await;
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].record.id, id);
        assert!(second[0].record.lease > first[0].record.lease);
        assert_eq!(
            pending(&a).await,
            vec![("b".to_owned(), 2)],
            "redelivered to b"
        );

        let stale = a.finish(id, first[0].record.lease, delivered(150)).await;
        assert!(stale.unwrap_err().is_lease_lost());
        b.finish(id, second[0].record.lease, delivered(150))
            .await
            .unwrap();
        assert!(pending(&a).await.is_empty());
        let record = a.delivery(id).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Delivered);
        assert_eq!(record.finished_at_ms, Some(151));
        let len: u64 = a
            .command(redis::cmd("XLEN").arg(a.key("ready")))
            .await
            .unwrap();
        assert_eq!(len, 0, "finished entries are deleted");
    }

    /// A finish on a node that did not claim (a restart with the same name) reads the
    /// record its index changes come from; the claiming node's kept copy goes with its
    /// own finish, which is refused once the lease ended.
    #[tokio::test]
    async fn a_node_finishes_a_lease_it_did_not_claim() {
        let server = server().await;
        let a = store(&server, "t:").await.consumer("a");
        let restarted = store(&server, "t:").await.consumer("a");
        let e = endpoint(&a, 4).await;
        let id = publish(&a, &[e], "r").await[0];
        let held = claim(&a, 0).await;
        assert_eq!(a.leased().len(), 1);
        let failed = Finish::Failed(fixture::response(400, 10, 1));
        restarted
            .finish(id, held[0].record.lease, failed)
            .await
            .unwrap();
        let record = a.delivery(id).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Failed);
        let scan = |set| Scan {
            set,
            start: None,
            end: None,
            limit: 10,
        };
        let failed_of = index::failed_of(&record.organization, Some(e));
        assert_eq!(a.scan(scan(failed_of)).await.unwrap().len(), 1);
        let stale = a.finish(id, held[0].record.lease, delivered(12)).await;
        assert!(stale.unwrap_err().is_lease_lost());
        assert!(a.leased().is_empty());
    }

    /// The Redis-clock safety net: a lease whose end lies far in the future (its node's
    /// clock ran ahead, then the node died) ends once its entry has been idle too long.
    #[tokio::test]
    async fn an_orphaned_entry_is_taken_over_by_redis_clock() {
        let server = server().await;
        let ahead = store(&server, "t:").await.consumer("ahead");
        let normal = store(&server, "t:")
            .await
            .consumer("normal")
            .orphaned_after(Duration::from_millis(200));
        let e = endpoint(&ahead, 1).await;
        let id = publish(&ahead, &[e], "r").await[0];
        let held = claim(&ahead, 1_000_000_000).await;
        assert_eq!(held.len(), 1);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let taken = loop {
            let got = claim(&normal, 1_000).await;
            if !got.is_empty() {
                break got;
            }
            assert!(tokio::time::Instant::now() < deadline, "never taken over");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(taken[0].record.id, id);
        assert!(
            ahead
                .finish(id, held[0].record.lease, delivered(1))
                .await
                .unwrap_err()
                .is_lease_lost()
        );
        assert_eq!(pending(&normal).await.len(), 1);
        normal
            .finish(id, taken[0].record.lease, delivered(1_001))
            .await
            .unwrap();
    }

    /// Prefixes keep environments apart; one environment's nodes share idempotency
    /// windows.
    #[tokio::test]
    async fn prefixes_separate_environments_and_windows_are_shared() {
        let server = server().await;
        let prod = store(&server, "prod:").await;
        let prod_b = store(&server, "prod:").await;
        let staging = store(&server, "staging:").await;
        let e = endpoint(&prod, 4).await;
        publish(&prod, &[e], "r").await;
        assert!(claim(&staging, 0).await.is_empty());
        assert!(staging.load().await.unwrap().endpoints.is_empty());
        assert_eq!(claim(&prod_b, 0).await.len(), 1);

        let window = |store: RedisStore, now| async move {
            store
                .claim_idempotency_window("org", "wallet.created", "w1", now)
                .await
                .unwrap()
        };
        assert_eq!(window(prod.clone(), 1_000).await, 1_000);
        assert_eq!(window(prod_b.clone(), 1_059).await, 1_000, "shared");
        assert_eq!(window(staging.clone(), 1_059).await, 1_059, "separate");
        assert_eq!(window(prod_b.clone(), 1_060).await, 1_060, "a new window");
        assert_eq!(window(prod.clone(), 1_030).await, 1_060, "clock behind");
        assert!(format!("{prod:?}").contains("prod:sender:"));
    }

    /// After `load`, a node claims only for endpoints it knows: an endpoint created by
    /// another node later is left to that node.
    #[tokio::test]
    async fn a_loaded_node_claims_only_known_endpoints() {
        let server = server().await;
        let early = store(&server, "t:").await;
        let old = endpoint(&early, 4).await;
        assert_eq!(early.load().await.unwrap().endpoints.len(), 1);
        let late = store(&server, "t:").await;
        late.load().await.unwrap();
        let new_endpoint = endpoint(&late, 4).await;
        publish(&early, &[new_endpoint, old], "r").await;

        let got = claim(&early, 0).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.endpoint, old);
        let got = claim(&late, 0).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.endpoint, new_endpoint);
    }

    /// A cancel on one node ends a lease another node holds: its stream entry goes and
    /// the holder's finish is refused.
    #[tokio::test]
    async fn a_cancel_ends_another_nodes_lease() {
        let server = server().await;
        let holder = store(&server, "t:").await.consumer("holder");
        let admin = store(&server, "t:").await.consumer("admin");
        let e = endpoint(&holder, 4).await;
        let ids = publish(&holder, &[e], "r").await;
        let held = claim(&holder, 0).await;
        assert_eq!(held.len(), 1);
        assert_eq!(pending(&admin).await.len(), 1);
        let cancelled = admin.cancel_open(e, "gone".into(), 5, 10).await.unwrap();
        assert_eq!(cancelled, 1);
        assert!(
            pending(&admin).await.is_empty(),
            "the entry was acknowledged"
        );
        let late = holder
            .finish(ids[0], held[0].record.lease, delivered(6))
            .await;
        assert!(late.unwrap_err().is_lease_lost());
        assert_eq!(admin.cancel_open(e, "gone".into(), 7, 10).await.unwrap(), 0);
        let record = admin.delivery(ids[0]).await.unwrap().unwrap();
        assert_eq!(record.status, DeliveryStatus::Cancelled);
        assert_eq!(record.lease, 0);
    }

    /// A prefix written by a newer layout is refused at connect, and by the first call
    /// of a store made on a bare connection.
    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let server = server().await;
        let first = store(&server, "t:").await;
        let version: i64 = first
            .command(redis::cmd("GET").arg("t:sender:schema"))
            .await
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION, "recorded under a new prefix");
        let () = first
            .command(
                redis::cmd("SET")
                    .arg("t:sender:schema")
                    .arg(SCHEMA_VERSION + 1),
            )
            .await
            .unwrap();
        let config = RedisConfig::new(server.url()).prefix("t:");
        let refused = RedisStore::connect(&config).await.unwrap_err();
        assert!(refused.is_incompatible(), "{refused}");
        assert!(
            refused.to_string().contains("schema version 4"),
            "{refused}"
        );

        let bare = RedisStore::new(config.connect().await.unwrap());
        assert!(bare.config_version().await.unwrap_err().is_incompatible());

        // An older layout (2 kept the payload inside the message's `rec`) is refused too.
        let () = first
            .command(redis::cmd("SET").arg("t:sender:schema").arg(2))
            .await
            .unwrap();
        let refused = RedisStore::connect(&config).await.unwrap_err();
        assert!(refused.is_incompatible(), "{refused}");
        assert!(refused.to_string().contains("cannot upgrade"), "{refused}");
    }

    /// Every key a delivery and its message made is gone once retention removed them:
    /// records, delivery lists, chains, scheduled and lease sets, index sets.
    #[tokio::test]
    async fn retention_leaves_no_keys_behind() {
        let server = server().await;
        let store = store(&server, "t:").await;
        let (e1, e2) = (endpoint(&store, 4).await, endpoint(&store, 4).await);
        let ids = publish(&store, &[e1, e2], "r").await;
        let queued = publish(&store, &[e1], "r").await;
        assert_eq!(store.cancel_open(e1, "gone".into(), 1, 1).await.unwrap(), 1);
        for claimed in claim(&store, 2).await {
            let end = if claimed.record.endpoint == e1 {
                delivered(3)
            } else {
                Finish::Failed(fixture::response(400, 3, 0))
            };
            store
                .finish(claimed.record.id, claimed.record.lease, end)
                .await
                .unwrap();
        }
        assert!(store.redrive(ids[1], 4).await.unwrap());
        let again = claim(&store, 4).await;
        assert_eq!(again.len(), 1);
        store
            .finish(again[0].record.id, again[0].record.lease, delivered(5))
            .await
            .unwrap();
        let all = [ids.clone(), queued].concat();
        assert_eq!(store.remove_finished(all).await.unwrap(), 3);
        let keys: Vec<String> = store
            .command(redis::cmd("KEYS").arg("t:sender:*"))
            .await
            .unwrap();
        let expected = [
            "cfgver",
            "eps",
            "lease-seq",
            "open",
            "ready",
            "schema",
            "seq",
        ];
        let left: Vec<&str> = keys
            .iter()
            .map(|k| k.trim_start_matches("t:sender:"))
            .filter(|k| !k.starts_with("ep:") && !expected.contains(k))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let open: i64 = store
            .command(redis::cmd("GET").arg("t:sender:open"))
            .await
            .unwrap();
        assert_eq!(open, 0);
    }

    #[tokio::test]
    async fn close_forgets_the_node_and_refuses_later_calls() {
        let server = server().await;
        let store = store(&server, "t:").await.consumer("leaving");
        store.load().await.unwrap();
        let e = endpoint(&store, 4).await;
        publish(&store, &[e], "r").await;
        let got = claim(&store, 0).await;
        store
            .finish(got[0].record.id, got[0].record.lease, delivered(5))
            .await
            .unwrap();
        let other = self::store(&server, "t:").await;
        store.close().await.unwrap();
        assert!(claim_err(&store).await.is_closed());
        assert!(
            store
                .delivery(got[0].record.id)
                .await
                .unwrap_err()
                .is_closed()
        );
        let consumers: Vec<redis::Value> = other
            .command(
                redis::cmd("XINFO")
                    .arg("CONSUMERS")
                    .arg(other.key("ready"))
                    .arg("senders"),
            )
            .await
            .unwrap();
        assert!(consumers.is_empty(), "{consumers:?}");
        let known: bool = other
            .command(redis::cmd("EXISTS").arg(other.key("node:leaving:endpoints")))
            .await
            .unwrap();
        assert!(!known);
        store.close().await.unwrap();
    }

    async fn claim_err(store: &RedisStore) -> StoreError {
        let request = ClaimRequest::new(0, 1, Duration::from_secs(1)).overrides(HashMap::new());
        store.claim(request).await.unwrap_err()
    }
}
