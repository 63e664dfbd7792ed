//! The Redis [`Store`](super::Store) (feature `redis`): several sender nodes share one
//! queue, one set of idempotency windows and one configuration. [`RedisStore`] documents
//! the model.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use webhook_core::idempotency::WINDOW_SECS;
use webhook_redis::{RedisConfig, RedisConnection};

use super::{
    Claim, ClaimRequest, Claimed, Finish, NewDelivery, Payload, Snapshot, Store, StoreError,
    StoreFuture, StoredEndpoint, StoredOrganization,
};
use crate::delivery::{AttemptRecord, Delivery, DeliveryStatus, duration_millis};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

macro_rules! script {
    ($file:literal) => {
        concat!(
            include_str!("redis/common.lua"),
            include_str!(concat!("redis/", $file))
        )
    };
}

/// Counts configuration changes (endpoints, organizations) made by any node.
const CONFIG_VERSION: &str = "cfgver";
/// At most this many delivered deliveries are pruned per call.
const PRUNE_LIMIT: usize = 1_000;
/// A node's set of known endpoints expires this long after its last claim.
const KNOWN_TTL: Duration = Duration::from_secs(24 * 3600);
/// The marker that keeps a node's known-endpoints set present while it knows none.
const KNOWN_MARKER: &str = "*";
/// Entries idle this long (or twice the lease, if longer) count as orphaned by default.
const MIN_ORPHANED_AFTER: Duration = Duration::from_secs(60);

/// The Redis store: every sender node on one Redis and key prefix shares its queue,
/// idempotency windows and configuration. Cheap to clone; clones share the connection and
/// the node's name.
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
/// The same chains as every backend (see [the queue model](crate::store#the-queue-model)), kept in
/// Redis and changed only by Lua scripts, each of which runs atomically, so that any
/// number of nodes can claim and finish concurrently:
///
/// | key (under `{prefix}sender:`) | type | holds |
/// |---|---|---|
/// | `d:{delivery}` | hash | one delivery: its record's fields, attempts (JSON), payload |
/// | `chain:{endpoint}:{resource key}` | list | open deliveries of one chain, in publish order |
/// | `sched:{endpoint}` | sorted set | pending chain heads by due time: the *scheduled* set |
/// | `leases:{endpoint}` | sorted set | leased deliveries by lease end |
/// | `due` | sorted set | endpoints by their earliest scheduled head or lease end |
/// | `ready` | stream, group `senders` | one entry per lease, pending in the claiming node's consumer |
/// | `failed:{endpoint}`, `delivered` | sorted sets | finished deliveries by finish time |
/// | `ep:{endpoint}`, `eps`, `orgs` | hash, set, hash | configuration |
/// | `win:{org}␟{type}␟{entity}` | string | an idempotency window's start, expiring after two windows |
/// | `node:{consumer}:endpoints` | set | the endpoints one node has loaded |
///
/// - **Claim** (one script) walks the endpoints in `due` order as the in-memory queue
///   does, gives each up to its free concurrency (cap, lowered by this node's breaker and
///   rate-limit overrides, minus unexpired leases, counted over all nodes), and moves due
///   heads from the scheduled set into the `ready` stream, reading them at once into
///   this node's consumer: a stream entry pending in the group *is* a lease, and
///   `XPENDING` shows which node holds what and how often each was delivered. Each claim
///   gets a fresh token from a counter, so a finish with a stale token is refused.
/// - **Finish** (one script) checks the token, acknowledges and deletes the entry, records
///   the attempt, and either puts the delivery back into the scheduled set (retry,
///   release) or closes it, which makes the next delivery of its chain the head.
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
///   derive the same keys.
/// - **Configuration** is stored in Redis, and every change increments `cfgver`
///   ([`Store::config_version`](super::Store::config_version)). Senders compare it before
///   each publish and at every idle poll and [`load`](super::Store::load) again when it
///   moved, so a node fans out to an endpoint created on another node and signs with
///   another node's rotated secrets. A node claims deliveries only for endpoints it has
///   loaded or created itself (`node:{consumer}:endpoints`), so a delivery is never held
///   back for a minute by a node that does not know its endpoint yet. Caps and the enabled flag are read from Redis at every claim, so
///   disabling an endpoint or changing its cap applies to every node at once.
///
/// # Requirements
///
/// Redis 6.2 or newer (`XAUTOCLAIM`; tested with 7.0), standalone or a Sentinel-managed
/// primary: the scripts build key names at run time, which Redis Cluster does not allow.
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
    prune: redis::Script,
    window: redis::Script,
    close: redis::Script,
}

#[derive(Default)]
struct State {
    closed: AtomicBool,
    /// Set once [`Store::load`] ran: from then on this node claims only known endpoints.
    loaded: AtomicBool,
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

/// The static part of a delivery record, written once by `enqueue`.
#[derive(Serialize, Deserialize)]
struct Meta {
    id: DeliveryId,
    event: EventId,
    endpoint: EndpointId,
    organization: OrganizationId,
    kind: String,
    resource_key: String,
    created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
}

/// One claimed delivery as the claim script returns it: id, meta, seq, lease token,
/// round attempts, attempts, body.
type ClaimedRow = (String, Vec<u8>, String, u64, String, Vec<u8>, Vec<u8>);

impl RedisStore {
    /// Connects with `config` (URL, key prefix, timeouts; see
    /// [`RedisConfig`]) and checks that Redis answers.
    ///
    /// # Errors
    /// [`StoreError`] when the URL is unusable or Redis cannot be reached.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let redis = config.connect().await.map_err(StoreError::backend)?;
        redis.ping().await.map_err(StoreError::backend)?;
        Ok(Self::new(redis))
    }

    /// A store on an existing connection; keys go under the connection's prefix followed
    /// by `sender:`.
    #[must_use]
    pub fn new(redis: RedisConnection) -> Self {
        let prefix = redis.keys().child("sender:").as_str().to_owned();
        Self {
            redis,
            prefix,
            consumer: format!("sender-{}", uuid::Uuid::new_v4().simple()),
            orphaned_after: None,
            scripts: Arc::new(Scripts {
                enqueue: redis::Script::new(script!("enqueue.lua")),
                claim: redis::Script::new(script!("claim.lua")),
                finish: redis::Script::new(script!("finish.lua")),
                redrive: redis::Script::new(script!("redrive.lua")),
                prune: redis::Script::new(script!("prune.lua")),
                window: redis::Script::new(script!("window.lua")),
                close: redis::Script::new(script!("close.lua")),
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

    fn known_key(&self) -> String {
        self.key(&format!("node:{}:endpoints", self.consumer))
    }

    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if self.state.closed.load(Ordering::SeqCst) {
            return Err(StoreError::closed());
        }
        Ok(self.redis.manager())
    }

    /// Runs a script with the prefix as its first argument.
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        args: impl FnOnce(&mut redis::ScriptInvocation<'_>),
    ) -> Result<T, StoreError> {
        let mut manager = self.manager()?;
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
        let mut manager = self.manager()?;
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
        let mut manager = self.manager()?;
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
            endpoints.push(StoredEndpoint {
                id: id.parse().map_err(StoreError::corrupt)?,
                max_concurrency: cap,
                enabled: on == "1",
                data,
            });
        }
        let organizations: Vec<(String, Vec<u8>)> =
            redis::from_redis_value(organizations).map_err(StoreError::corrupt)?;
        Ok(Snapshot {
            endpoints,
            organizations: organizations
                .into_iter()
                .map(|(id, data)| StoredOrganization {
                    id: OrganizationId::from(id),
                    data,
                })
                .collect(),
        })
    }
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

fn record(
    meta: &[u8],
    seq: &str,
    round: &str,
    attempts: &[u8],
) -> Result<(Meta, Delivery), StoreError> {
    let meta: Meta = serde_json::from_slice(meta).map_err(StoreError::corrupt)?;
    let attempts: Vec<AttemptRecord> =
        serde_json::from_slice(attempts).map_err(StoreError::corrupt)?;
    let delivery = Delivery {
        id: meta.id,
        event: meta.event,
        endpoint: meta.endpoint,
        organization: meta.organization.clone(),
        kind: meta.kind.clone(),
        resource_key: meta.resource_key.clone(),
        seq: u64::try_from(number(seq)?).unwrap_or_default(),
        status: DeliveryStatus::Pending,
        due_at_ms: 0,
        lease: 0,
        round_attempts: u32::try_from(number(round)?).unwrap_or(u32::MAX),
        attempts,
        created_at_ms: meta.created_at_ms,
        finished_at_ms: None,
    };
    Ok((meta, delivery))
}

fn status(text: &str) -> Result<DeliveryStatus, StoreError> {
    Ok(match text {
        "pending" => DeliveryStatus::Pending,
        "in_flight" => DeliveryStatus::InFlight,
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        other => return Err(StoreError::corrupt(format!("unknown status {other:?}"))),
    })
}

fn json(attempt: &AttemptRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(attempt).map_err(StoreError::corrupt)
}

impl Store for RedisStore {
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
                .arg(if endpoint.enabled { "1" } else { "0" })
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

    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let triple = format!("{organization}\u{1f}{kind}\u{1f}{entity}");
            let start: String = self
                .run(&self.scripts.window, |call| {
                    call.arg(triple).arg(now).arg(WINDOW_SECS);
                })
                .await?;
            number(&start)
        })
    }

    fn enqueue(&self, deliveries: Vec<NewDelivery>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if deliveries.is_empty() {
                return Ok(());
            }
            let mut rows = Vec::with_capacity(deliveries.len());
            for new in deliveries {
                let record = new.record;
                let meta = Meta {
                    id: record.id,
                    event: record.event,
                    endpoint: record.endpoint,
                    organization: record.organization,
                    kind: record.kind,
                    resource_key: record.resource_key,
                    created_at_ms: record.created_at_ms,
                    domain: new.payload.domain,
                };
                let meta_json = serde_json::to_vec(&meta).map_err(StoreError::corrupt)?;
                rows.push((meta, meta_json, record.due_at_ms, new.payload.content));
            }
            let _added: u64 = self
                .run(&self.scripts.enqueue, |call| {
                    for (meta, meta_json, due, body) in &rows {
                        call.arg(meta.id.to_string())
                            .arg(meta_json.as_slice())
                            .arg(meta.endpoint.to_string())
                            .arg(meta.resource_key.as_str())
                            .arg(*due)
                            .arg(body.as_slice());
                    }
                })
                .await?;
            Ok(())
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
            for (_id, meta, seq, token, round, attempts, body) in rows {
                let (meta, mut record) = record(&meta, &seq, &round, &attempts)?;
                record.status = DeliveryStatus::InFlight;
                record.due_at_ms = lease_end;
                record.lease = token;
                deliveries.push(Claimed {
                    record,
                    payload: Payload {
                        content: body,
                        domain: meta.domain,
                    },
                });
            }
            Ok(Claim {
                deliveries,
                next_due_ms: next_due.as_deref().map(number).transpose()?,
                open: u64::try_from(number(&open)?).unwrap_or_default(),
            })
        })
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let (outcome, at, attempt) = match &finish {
                Finish::Delivered(attempt) | Finish::Failed(attempt) => {
                    let finished = attempt
                        .at_ms
                        .saturating_add(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX));
                    let outcome = if matches!(finish, Finish::Delivered(_)) {
                        "delivered"
                    } else {
                        "failed"
                    };
                    (outcome, finished, json(attempt)?)
                }
                Finish::Retry { attempt, at_ms } => ("retry", *at_ms, json(attempt)?),
                Finish::Release { at_ms } => ("release", *at_ms, Vec::new()),
            };
            let done: i64 = self
                .run(&self.scripts.finish, |call| {
                    call.arg(id.to_string())
                        .arg(lease)
                        .arg(outcome)
                        .arg(at)
                        .arg(attempt);
                })
                .await?;
            if done == 1 {
                Ok(())
            } else {
                Err(StoreError::lease_lost())
            }
        })
    }

    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            #[allow(clippy::type_complexity)]
            let (meta, seq, round, attempts, st, due, lease, fin): (
                Option<Vec<u8>>,
                Option<String>,
                Option<String>,
                Option<Vec<u8>>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            ) = self
                .command(
                    redis::cmd("HMGET")
                        .arg(self.key(&format!("d:{id}")))
                        .arg(&["meta", "seq", "round", "att", "st", "due", "lease", "fin"]),
                )
                .await?;
            let (Some(meta), Some(seq), Some(round), Some(attempts), Some(st)) =
                (meta, seq, round, attempts, st)
            else {
                return Ok(None);
            };
            let (_, mut record) = record(&meta, &seq, &round, &attempts)?;
            record.status = status(&st)?;
            record.due_at_ms = due.as_deref().map(number).transpose()?.unwrap_or_default();
            record.lease = lease
                .as_deref()
                .map(number)
                .transpose()?
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_default();
            record.finished_at_ms = fin.as_deref().map(number).transpose()?;
            Ok(Some(record))
        })
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let done: i64 = self
                .run(&self.scripts.redrive, |call| {
                    call.arg(id.to_string()).arg(now_ms);
                })
                .await?;
            Ok(done == 1)
        })
    }

    fn failed_since(
        &self,
        endpoint: EndpointId,
        since_ms: i64,
    ) -> StoreFuture<'_, Vec<DeliveryId>> {
        Box::pin(async move {
            let ids: Vec<String> = self
                .command(
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(self.key(&format!("failed:{endpoint}")))
                        .arg(since_ms)
                        .arg("+inf"),
                )
                .await?;
            ids.iter()
                .map(|id| id.parse().map_err(StoreError::corrupt))
                .collect()
        })
    }

    fn prune_delivered(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            self.run(&self.scripts.prune, |call| {
                call.arg(before_ms).arg(PRUNE_LIMIT);
            })
            .await
        })
    }

    /// Marks the store closed for every clone; forgets this node's known-endpoints set
    /// and, if it holds no lease, its consumer. Nothing needs flushing: every write was
    /// acknowledged by Redis when its call returned. The clean-up is best effort.
    fn config_version(&self) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let version: Option<u64> = self
                .command(redis::cmd("GET").arg(self.key(CONFIG_VERSION)))
                .await?;
            Ok(version.unwrap_or(0))
        })
    }

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use webhook_testkit::RedisServer;

    use super::*;
    use crate::store::fixture;

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

    async fn endpoint(store: &RedisStore, cap: u32) -> EndpointId {
        let id = EndpointId::generate();
        let stored = StoredEndpoint {
            id,
            max_concurrency: cap,
            enabled: true,
            data: b"{}".to_vec(),
        };
        store.put_endpoint(stored).await.unwrap();
        id
    }

    fn new(endpoint: EndpointId, key: &str) -> NewDelivery {
        fixture::new_delivery(endpoint, key, 0, b"\x00binary\xff", Some("TRANSACTION"))
    }

    async fn claim(store: &RedisStore, now_ms: i64) -> Vec<Claimed> {
        let request = ClaimRequest {
            now_ms,
            limit: 10,
            lease: Duration::from_millis(100),
            overrides: HashMap::new(),
        };
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
        let d = new(e, "r");
        let id = d.record.id;
        a.enqueue(vec![d]).await.unwrap();

        let first = claim(&a, 0).await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].payload.content, b"\x00binary\xff");
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
        let d = new(e, "r");
        let id = d.record.id;
        ahead.enqueue(vec![d]).await.unwrap();
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
        prod.enqueue(vec![new(e, "r")]).await.unwrap();
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
        early
            .enqueue(vec![new(new_endpoint, "r"), new(old, "r")])
            .await
            .unwrap();

        let got = claim(&early, 0).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.endpoint, old);
        let got = claim(&late, 0).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].record.endpoint, new_endpoint);
    }

    #[tokio::test]
    async fn close_forgets_the_node_and_refuses_later_calls() {
        let server = server().await;
        let store = store(&server, "t:").await.consumer("leaving");
        store.load().await.unwrap();
        let e = endpoint(&store, 4).await;
        store.enqueue(vec![new(e, "r")]).await.unwrap();
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
        let request = ClaimRequest {
            now_ms: 0,
            limit: 1,
            lease: Duration::from_secs(1),
            overrides: HashMap::new(),
        };
        store.claim(request).await.unwrap_err()
    }
}
