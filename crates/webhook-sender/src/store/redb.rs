//! The embedded durable store: one redb file, written by one thread that commits
//! operations in batches.
//!
//! Every state change is sent to the writer thread over a channel. The thread takes whatever
//! has queued up (up to 512 operations), applies it in one write transaction, commits once
//! (one fsync) and only then answers each caller. Many concurrent publishes and
//! acknowledgements therefore share one fsync, and a caller that got an answer knows its
//! change is on disk. In a batch of 8 or more operations a second thread writes the
//! index entries the operations produce, into the same transaction, while the writer
//! writes the records (redb allows separate tables of one write transaction to be
//! written from several threads); both commit together.
//!
//! Claims do not wait for a commit: they are served from the in-memory [`Queue`] under a
//! mutex, with the records and payloads read in a redb read transaction, and the lease is
//! written to the file later, in the writer's next batch. That is safe because the queue
//! only ever holds what is durable: a new delivery enters it once its enqueue is committed,
//! and a finished lease takes effect in the queue (the retry's new due time, or the next
//! delivery of the chain becoming the head) once the finish is committed; between release
//! and commit the delivery is parked, neither claimable nor in flight. A lease that never
//! reached the file (a crash right after the claim) only makes the delivery due again at
//! once on restart, which at-least-once delivery allows. Until its lease is written, a
//! just-claimed delivery reads as pending. History reads (records, index scans) are read
//! transactions too: they never wait for the writer.
//!
//! The file carries a schema version in its `meta` table; a file of a newer version is
//! refused with [`StoreError::is_incompatible`]. If a commit fails, memory and disk may
//! disagree; the store then refuses all further work (it is *poisoned*) and must be
//! reopened, which reloads the truth from disk.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use redb::{
    Database, ReadTransaction, ReadableDatabase as _, ReadableTable, TableDefinition,
    WriteTransaction,
};
use tokio::sync::{mpsc, oneshot};
use webhook_core::idempotency::{WindowStarts, triple_key};

use super::index::{IndexEntry, Scan};
use super::queue::{Entry, Parked, Queue, due_again};
use super::record::{DeliveryRecord, MessageRecord, Payload};
use super::tables::{self, NewMessage, Tables};
use super::{
    Claim, ClaimRequest, Claimed, ConfigStore, Enqueued, Finish, HistoryStore, QueueStore,
    Snapshot, StoreError, StoreFuture, StoredEndpoint, StoredOrganization, WindowStore,
};
use crate::ids::{DeliveryId, EndpointId, EventId, OrganizationId};

/// At most this many operations share one transaction.
const MAX_BATCH: usize = 512;
/// From this many operations on, a batch writes its index entries on a second thread.
const THREADED_BATCH: usize = 8;
const CHANNEL_CAPACITY: usize = 4096;

/// The file layout this build writes and the newest it opens. Version 2 (one index
/// table keyed by set and member bytes) is upgraded when opened.
pub(crate) const SCHEMA_VERSION: i64 = 3;
/// The layout with one index table of byte-string members, upgraded at open.
const SCHEMA_BYTE_INDEX: i64 = 2;
const SCHEMA_KEY: &str = "schema_version";
const LAST_PRUNED_KEY: &str = "last_pruned_ms";

const META: TableDefinition<'_, &str, i64> = TableDefinition::new("meta");
const OPEN: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("open_deliveries");
const FINISHED: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("finished_deliveries");
const MESSAGES: TableDefinition<'_, (&str, u128), &[u8]> = TableDefinition::new("messages");
/// Message payloads, raw, apart from the records: claims read only these.
const PAYLOADS: TableDefinition<'_, (&str, u128), PayloadRow> =
    TableDefinition::new("message_payloads");
/// Index entries of time-and-id members (every set but unrouted retention), keyed by
/// (a 128-bit digest of the set's name, the member's time, its id): fixed-width keys,
/// which redb compares and updates without decoding lengths. Records read through a scan
/// are checked against the query's organization, so even a digest collision could not
/// show another tenant's record.
const INDEX: TableDefinition<'_, (u128, u64, u128), ()> = TableDefinition::new("index_fixed");
/// Index entries of other members (unrouted retention's carry the organization), keyed
/// by (set digest, member).
const INDEX_BYTES: TableDefinition<'_, (u128, &[u8]), ()> = TableDefinition::new("index_bytes");
/// Schema 2's single index table, keyed as [`INDEX_BYTES`]; its entries move to the two
/// tables above when the file is upgraded.
const INDEX_V2: TableDefinition<'_, (u128, &[u8]), ()> = TableDefinition::new("index");

/// A 24-byte member as (time, id); `None` for any other length.
fn fixed_member(member: &[u8]) -> Option<(u64, u128)> {
    let time: [u8; 8] = member.get(..8)?.try_into().ok()?;
    let id: [u8; 16] = member.get(8..)?.try_into().ok()?;
    Some((u64::from_be_bytes(time), u128::from_be_bytes(id)))
}

/// A bound of a scan (`start` inclusive or `end` exclusive, any length) as a bound on
/// 24-byte members: up to 24 bytes it is padded with zeros (a member at or after the
/// padded bound is at or after the bound, bytewise); a longer one lies just after its
/// first 24 bytes.
fn fixed_bound(bound: &[u8], start: bool) -> std::ops::Bound<(u64, u128)> {
    use std::ops::Bound;
    let mut padded = [0_u8; 24];
    let n = bound.len().min(24);
    padded[..n].copy_from_slice(&bound[..n]);
    let Some(member) = fixed_member(&padded) else {
        return Bound::Unbounded;
    };
    match (bound.len() > 24, start) {
        (false, true) => Bound::Included(member),
        (true, true) => Bound::Excluded(member),
        (false, false) => Bound::Excluded(member),
        (true, false) => Bound::Included(member),
    }
}

/// The 128-bit key of an index set: the first half of its name's SHA-256. A thread keeps
/// the keys of the sets it used last (the writer writes the same few sets over and
/// over: those of one organization, endpoint, event type), so most index writes hash no
/// name.
fn set_key(set: &[u8]) -> u128 {
    /// At most this many names per thread; when full, the cache starts over.
    const CACHED: usize = 4096;
    thread_local! {
        static KEYS: std::cell::RefCell<std::collections::HashMap<Vec<u8>, u128>> =
            std::cell::RefCell::default();
    }
    KEYS.with_borrow_mut(|keys| {
        if let Some(&key) = keys.get(set) {
            return key;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, set);
        let mut half = [0_u8; 16];
        half.copy_from_slice(&digest.as_ref()[..16]);
        let key = u128::from_be_bytes(half);
        if keys.len() >= CACHED {
            keys.clear();
        }
        keys.insert(set.to_vec(), key);
        key
    })
}
const ENDPOINTS: TableDefinition<'_, u128, (u32, bool, &[u8])> = TableDefinition::new("endpoints");
const ORGANIZATIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("organizations");
const WINDOWS: TableDefinition<'_, &str, i64> = TableDefinition::new("idempotency_windows");

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    Load(Reply<Snapshot>),
    PutEndpoint(StoredEndpoint, Reply<()>),
    RemoveEndpoint(EndpointId, Reply<()>),
    PutOrganization(StoredOrganization, Reply<()>),
    PutWindow(String, i64),
    PruneWindows(i64),
    Enqueue(Box<NewMessage>, Reply<Enqueued>),
    /// Leased records, encoded on the claiming thread.
    Lease(Vec<(DeliveryId, Vec<u8>)>),
    Finish(DeliveryId, Parked, Finish, Reply<()>),
    Redrive(DeliveryId, i64, Reply<bool>),
    Cancel(EndpointId, String, i64, usize, Reply<u64>),
    RemoveFinished(Vec<DeliveryId>, Reply<u64>),
    RemoveUnrouted(Vec<(OrganizationId, EventId)>, Reply<u64>),
    SetLastPruned(i64, Reply<()>),
    Close(Reply<()>),
}

/// The embedded durable store: a single redb file. Cheap to clone; clones share the file.
///
/// Only one `RedbStore` can have a file open at a time; the file is closed when the last
/// clone is dropped (or by [`QueueStore::close`]).
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    ops: Mutex<Option<mpsc::Sender<Op>>>,
    /// The file, for read transactions; `None` once closed.
    db: Mutex<Option<Arc<Database>>>,
    queue: Arc<Mutex<Queue>>,
    /// Set by the writer when a commit failed: memory and disk may disagree.
    poisoned: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    /// Batches whose index entries a second thread wrote (read by tests).
    #[cfg(test)]
    index_threads: Arc<AtomicU64>,
    windows: Mutex<WindowStarts>,
    config_version: Arc<AtomicU64>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(
            self.db
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        // Closing the channel ends the writer after its current batch; waiting for it means
        // the file is closed (and can be reopened) once the last handle is gone.
        drop(
            self.ops
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(writer) = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = writer.join();
        }
    }
}

/// redb's page cache unless configured otherwise.
const DEFAULT_CACHE_BYTES: usize = 32 << 20;

impl RedbStore {
    /// Opens the store at `path`, creating the file if needed, and loads the open deliveries.
    ///
    /// # Errors
    /// [`StoreError`] when the file cannot be opened (for instance, another store has it
    /// open) or holds corrupt records; [`StoreError::is_incompatible`] when a newer
    /// version of this crate wrote it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// As [`RedbStore::open`], with redb's page cache limited to `cache_bytes`. Default is
    /// 32 MiB ([`RedbStore::open`]); redb's own default of 1 GiB made a sender with a
    /// million queued deliveries peak at 2.4 GiB of RSS (BENCHMARKS.md); with 50,000
    /// queued, 32 MiB cut the peak from 178 to 94 MiB at unchanged enqueue and drain rates.
    ///
    /// # Errors
    /// As [`RedbStore::open`].
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path.as_ref())
            .map_err(StoreError::backend)?;
        let (queue, windows) = load(&db)?;
        let db = Arc::new(db);
        let queue = Arc::new(Mutex::new(queue));
        let poisoned = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let commits = Arc::new(AtomicU64::new(0));
        let index_threads = Arc::new(AtomicU64::new(0));
        let config_version = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            db: Some(db.clone()),
            queue: queue.clone(),
            poisoned: poisoned.clone(),
            commits: commits.clone(),
            index_threads: index_threads.clone(),
            config_version: config_version.clone(),
        };
        let writer = std::thread::Builder::new()
            .name("webhook-redb-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(StoreError::backend)?;
        Ok(Self {
            inner: Arc::new(Inner {
                ops: Mutex::new(Some(sender)),
                db: Mutex::new(Some(db)),
                queue,
                poisoned,
                commits,
                #[cfg(test)]
                index_threads,
                windows: Mutex::new(windows),
                config_version,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// How many write transactions have been committed since the store was opened: one
    /// per batch, however many operations it held.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    fn sender(&self) -> Option<mpsc::Sender<Op>> {
        self.inner
            .ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn call<T: Send + 'static>(&self, op: impl FnOnce(Reply<T>) -> Op) -> StoreFuture<'_, T> {
        let sender = self.sender();
        let (reply, answer) = oneshot::channel();
        let op = op(reply);
        Box::pin(async move {
            let sender = sender.ok_or_else(StoreError::closed)?;
            sender.send(op).await.map_err(|_| StoreError::closed())?;
            answer.await.map_err(|_| StoreError::closed())?
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every queue change is applied whole under the lock, so a poisoned lock still
        // holds consistent data.
        self.inner
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        if self.inner.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::backend(
                "store is poisoned by an earlier failed commit",
            ));
        }
        self.inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(StoreError::closed)
    }

    /// Runs `read` in a read transaction, now.
    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> StoreFuture<'_, T> {
        let result = self.db().and_then(|db| {
            let txn = db.begin_read().map_err(StoreError::backend)?;
            read(&txn)
        });
        Box::pin(std::future::ready(result))
    }

    /// Leases due deliveries from the in-memory queue and reads their records and payloads
    /// in a read transaction; the leases reach the file in the writer's next batch.
    fn claim_now(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        let db = self.db()?;
        let (leases, next_due_ms, open) = {
            let mut queue = self.queue();
            let (leases, next_due_ms) = queue.claim(request);
            (leases, next_due_ms, queue.len())
        };
        let open = u64::try_from(open).unwrap_or(u64::MAX);
        if leases.is_empty() {
            return Ok(Claim::new(Vec::new(), next_due_ms, open));
        }
        // On an error below the leases taken simply run out and the deliveries become due
        // again.
        let txn = db.begin_read().map_err(StoreError::backend)?;
        let records = txn.open_table(OPEN).map_err(StoreError::backend)?;
        let payloads = txn.open_table(PAYLOADS).map_err(StoreError::backend)?;
        let mut deliveries = Vec::with_capacity(leases.len());
        let mut written = Vec::with_capacity(leases.len());
        for leased in &leases {
            let mut record = open_record(&records, leased.id)?;
            leased.apply(&mut record);
            written.push((record.id, record.encode()));
            let payload =
                read_payload(&payloads, &record.organization, record.event)?.ok_or_else(|| {
                    StoreError::corrupt(format!("delivery {} has no message", record.id))
                })?;
            deliveries.push(Claimed::new(record, payload));
        }
        self.send_without_reply(Op::Lease(written));
        Ok(Claim::new(deliveries, next_due_ms, open))
    }

    fn send_without_reply(&self, op: Op) {
        if let Some(sender) = self.sender() {
            // Best effort: a window that is not persisted only means a restarted sender may
            // start a new window a little early; a lease not written only makes the
            // delivery due again at once after a crash.
            let _ = sender.try_send(op);
        }
    }
}

impl ConfigStore for RedbStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.call(Op::Load)
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::PutEndpoint(endpoint, reply))
    }

    fn remove_endpoint(&self, id: EndpointId) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::RemoveEndpoint(id, reply))
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::PutOrganization(organization, reply))
    }

    /// Counts the changes made through this handle: only one process can open the file.
    fn config_version(&self) -> StoreFuture<'_, u64> {
        let version = self.inner.config_version.load(Ordering::SeqCst);
        Box::pin(std::future::ready(Ok(version)))
    }
}

impl WindowStore for RedbStore {
    fn claim_idempotency_window<'a>(
        &'a self,
        organization: &'a str,
        kind: &'a str,
        entity: &'a str,
        now: i64,
    ) -> StoreFuture<'a, i64> {
        let key = triple_key(organization, kind, entity);
        let (start, prune) = {
            let mut windows = self
                .inner
                .windows
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let prune = windows.prune(now);
            (windows.claim(&key, now), prune)
        };
        // The window reaches disk in the same or an earlier batch than the publish that uses
        // it, because both go through the one writer in order.
        self.send_without_reply(Op::PutWindow(key, start));
        if let Some(before) = prune {
            self.send_without_reply(Op::PruneWindows(before));
        }
        Box::pin(std::future::ready(Ok(start)))
    }
}

impl QueueStore for RedbStore {
    fn enqueue(
        &self,
        message: MessageRecord,
        deliveries: Vec<DeliveryRecord>,
    ) -> StoreFuture<'_, Enqueued> {
        // Index entries are computed here, on the caller's thread, not the writer's.
        let new = Box::new(NewMessage::new(message, deliveries));
        self.call(|reply| Op::Enqueue(new, reply))
    }

    fn claim(&self, request: ClaimRequest) -> StoreFuture<'_, Claim> {
        let claim = self.claim_now(&request);
        Box::pin(std::future::ready(claim))
    }

    fn finish(&self, id: DeliveryId, lease: u64, finish: Finish) -> StoreFuture<'_, ()> {
        if self.sender().is_none() {
            return Box::pin(std::future::ready(Err(StoreError::closed())));
        }
        match self.queue().release(id, lease) {
            Ok(parked) => self.call(|reply| Op::Finish(id, parked, finish, reply)),
            Err(error) => Box::pin(std::future::ready(Err(error))),
        }
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        self.call(|reply| Op::Redrive(id, now_ms, reply))
    }

    fn cancel_open(
        &self,
        endpoint: EndpointId,
        reason: String,
        now_ms: i64,
        limit: usize,
    ) -> StoreFuture<'_, u64> {
        self.call(|reply| Op::Cancel(endpoint, reason, now_ms, limit, reply))
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        drop(
            self.inner
                .db
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let sender = self.sender();
        let (reply, answer) = oneshot::channel();
        Box::pin(async move {
            let Some(sender) = sender else {
                return Ok(());
            };
            if sender.send(Op::Close(reply)).await.is_err() {
                return Ok(());
            }
            answer.await.unwrap_or(Ok(()))
        })
    }
}

impl HistoryStore for RedbStore {
    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<DeliveryRecord>> {
        self.read(move |txn| {
            let open = txn.open_table(OPEN).map_err(StoreError::backend)?;
            let finished = txn.open_table(FINISHED).map_err(StoreError::backend)?;
            any_record(&open, &finished, id)
        })
    }

    fn deliveries(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, Vec<DeliveryRecord>> {
        self.read(move |txn| {
            let open = txn.open_table(OPEN).map_err(StoreError::backend)?;
            let finished = txn.open_table(FINISHED).map_err(StoreError::backend)?;
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(record) = any_record(&open, &finished, id)? {
                    found.push(record);
                }
            }
            Ok(found)
        })
    }

    fn message(
        &self,
        organization: OrganizationId,
        event: EventId,
    ) -> StoreFuture<'_, Option<MessageRecord>> {
        self.read(move |txn| {
            let messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            let payloads = txn.open_table(PAYLOADS).map_err(StoreError::backend)?;
            read_message(&messages, &payloads, &organization, event)
        })
    }

    fn messages(
        &self,
        organization: OrganizationId,
        events: Vec<EventId>,
    ) -> StoreFuture<'_, Vec<MessageRecord>> {
        self.read(move |txn| {
            let messages = txn.open_table(MESSAGES).map_err(StoreError::backend)?;
            let payloads = txn.open_table(PAYLOADS).map_err(StoreError::backend)?;
            let mut found = Vec::with_capacity(events.len());
            for event in events {
                if let Some(message) = read_message(&messages, &payloads, &organization, event)? {
                    found.push(message);
                }
            }
            Ok(found)
        })
    }

    fn scan(&self, scan: Scan) -> StoreFuture<'_, Vec<Vec<u8>>> {
        self.read(move |txn| {
            let fixed = txn.open_table(INDEX).map_err(StoreError::backend)?;
            let bytes = txn.open_table(INDEX_BYTES).map_err(StoreError::backend)?;
            scan_index(&fixed, &bytes, &scan)
        })
    }

    fn remove_finished(&self, ids: Vec<DeliveryId>) -> StoreFuture<'_, u64> {
        self.call(|reply| Op::RemoveFinished(ids, reply))
    }

    fn remove_unrouted(&self, messages: Vec<(OrganizationId, EventId)>) -> StoreFuture<'_, u64> {
        self.call(|reply| Op::RemoveUnrouted(messages, reply))
    }

    fn last_pruned(&self) -> StoreFuture<'_, Option<i64>> {
        self.read(|txn| {
            let meta = txn.open_table(META).map_err(StoreError::backend)?;
            Ok(meta
                .get(LAST_PRUNED_KEY)
                .map_err(StoreError::backend)?
                .map(|v| v.value()))
        })
    }

    fn set_last_pruned(&self, at_ms: i64) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::SetLastPruned(at_ms, reply))
    }
}

/// Checks the schema version, creates missing tables, and reads the queue and idempotency
/// windows from the file.
fn load(db: &Database) -> Result<(Queue, WindowStarts), StoreError> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    {
        let mut meta = txn.open_table(META).map_err(StoreError::backend)?;
        let version = meta
            .get(SCHEMA_KEY)
            .map_err(StoreError::backend)?
            .map(|v| v.value());
        match version {
            Some(SCHEMA_VERSION) => {}
            Some(SCHEMA_BYTE_INDEX) => {
                upgrade_byte_index(&txn)?;
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                    .map_err(StoreError::backend)?;
            }
            Some(version) if version > SCHEMA_VERSION => {
                return Err(StoreError::incompatible(format!(
                    "the file has schema version {version}; this build reads up to \
                     {SCHEMA_VERSION}: open it with a newer version of webhook-sender"
                )));
            }
            Some(version) => {
                return Err(StoreError::incompatible(format!(
                    "the file has schema version {version}, which this build cannot upgrade"
                )));
            }
            None => {
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION)
                    .map_err(StoreError::backend)?;
            }
        }
        drop(meta);
        // Creates every table, so that reads below and later batches find them.
        create_tables(&txn)?;
    }
    txn.commit().map_err(StoreError::backend)?;

    let txn = db.begin_read().map_err(StoreError::backend)?;
    let mut queue = Queue::default();
    let endpoints = txn.open_table(ENDPOINTS).map_err(StoreError::backend)?;
    for row in endpoints.iter().map_err(StoreError::backend)? {
        let (id, value) = row.map_err(StoreError::backend)?;
        let (cap, claimable, _) = value.value();
        queue.set_endpoint(EndpointId::from_u128(id.value()), cap, claimable);
    }
    let open = txn.open_table(OPEN).map_err(StoreError::backend)?;
    for row in open.iter().map_err(StoreError::backend)? {
        let (_, value) = row.map_err(StoreError::backend)?;
        queue.load(&DeliveryRecord::decode(value.value())?);
    }
    queue.rebuild();
    let mut windows = WindowStarts::new();
    let table = txn.open_table(WINDOWS).map_err(StoreError::backend)?;
    for row in table.iter().map_err(StoreError::backend)? {
        let (key, start) = row.map_err(StoreError::backend)?;
        windows.restore(key.value(), start.value());
    }
    Ok((queue, windows))
}

/// The members of a scan: those of both index tables within its bounds, merged in byte
/// order (a set's members are all of one kind, so one of the two is empty).
fn scan_index(
    fixed: &impl ReadableTable<(u128, u64, u128), ()>,
    bytes: &impl ReadableTable<(u128, &'static [u8]), ()>,
    scan: &Scan,
) -> Result<Vec<Vec<u8>>, StoreError> {
    use std::ops::Bound;
    let set = set_key(&scan.set);
    let mut members = Vec::new();
    if let (Some(start), Some(end)) = (&scan.start, &scan.end) {
        if start >= end {
            return Ok(members);
        }
    }
    let first = (set, 0, 0);
    let last = (set, u64::MAX, u128::MAX);
    let with_set = |bound: Option<Bound<(u64, u128)>>, open: (u128, u64, u128)| match bound {
        Some(Bound::Included((t, id))) => Bound::Included((set, t, id)),
        Some(Bound::Excluded((t, id))) => Bound::Excluded((set, t, id)),
        Some(Bound::Unbounded) | None => Bound::Included(open),
    };
    let from = with_set(scan.start.as_deref().map(|s| fixed_bound(s, true)), first);
    let to = with_set(scan.end.as_deref().map(|e| fixed_bound(e, false)), last);
    // redb refuses a range whose start lies after its end.
    let empty = match (from, to) {
        (Bound::Included(low), Bound::Included(high)) => low > high,
        (
            Bound::Included(low) | Bound::Excluded(low),
            Bound::Included(high) | Bound::Excluded(high),
        ) => low >= high,
        _ => false,
    };
    let rows = if empty {
        None
    } else {
        Some(fixed.range((from, to)).map_err(StoreError::backend)?)
    };
    for row in rows.into_iter().flatten() {
        if members.len() >= scan.limit {
            break;
        }
        let (key, _) = row.map_err(StoreError::backend)?;
        let (_, time, id) = key.value();
        let mut member = Vec::with_capacity(24);
        member.extend_from_slice(&time.to_be_bytes());
        member.extend_from_slice(&id.to_be_bytes());
        members.push(member);
    }
    let start: &[u8] = scan.start.as_deref().unwrap_or(&[]);
    let mut longer = Vec::new();
    for row in bytes.range((set, start)..).map_err(StoreError::backend)? {
        let (key, _) = row.map_err(StoreError::backend)?;
        let (key_set, member) = key.value();
        if key_set != set || !scan.contains(member) || longer.len() >= scan.limit {
            break;
        }
        longer.push(member.to_vec());
    }
    if !longer.is_empty() {
        members.extend(longer);
        members.sort_unstable();
        members.truncate(scan.limit);
    }
    Ok(members)
}

/// Moves schema 2's index entries to the fixed-width and byte-string index tables.
fn upgrade_byte_index(txn: &WriteTransaction) -> Result<(), StoreError> {
    let old = txn.open_table(INDEX_V2).map_err(StoreError::backend)?;
    let mut fixed = txn.open_table(INDEX).map_err(StoreError::backend)?;
    let mut bytes = txn.open_table(INDEX_BYTES).map_err(StoreError::backend)?;
    for row in old.iter().map_err(StoreError::backend)? {
        let (key, _) = row.map_err(StoreError::backend)?;
        let (set, member) = key.value();
        match fixed_member(member) {
            Some((time, id)) => fixed.insert((set, time, id), ()),
            None => bytes.insert((set, member), ()),
        }
        .map_err(StoreError::backend)?;
    }
    drop(old);
    txn.delete_table(INDEX_V2).map_err(StoreError::backend)?;
    Ok(())
}

/// The record stored under `id` in one of the delivery tables.
fn read_record(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: DeliveryId,
) -> Result<Option<DeliveryRecord>, StoreError> {
    table
        .get(id.as_u128())
        .map_err(StoreError::backend)?
        .map(|bytes| DeliveryRecord::decode(bytes.value()))
        .transpose()
}

/// The record of `id`, open or finished.
fn any_record(
    open: &impl ReadableTable<u128, &'static [u8]>,
    finished: &impl ReadableTable<u128, &'static [u8]>,
    id: DeliveryId,
) -> Result<Option<DeliveryRecord>, StoreError> {
    match read_record(open, id)? {
        Some(record) => Ok(Some(record)),
        None => read_record(finished, id),
    }
}

/// An open delivery's record. The queue knows it is open, so a missing record means the
/// file and the queue disagree.
fn open_record(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: DeliveryId,
) -> Result<DeliveryRecord, StoreError> {
    read_record(table, id)?
        .ok_or_else(|| StoreError::corrupt(format!("open delivery {id} has no record")))
}

type PayloadRow = (Option<&'static str>, &'static [u8]);

/// A message: its record (stored without the payload) and its payload.
fn read_message(
    table: &impl ReadableTable<(&'static str, u128), &'static [u8]>,
    payloads: &impl ReadableTable<(&'static str, u128), PayloadRow>,
    organization: &OrganizationId,
    event: EventId,
) -> Result<Option<MessageRecord>, StoreError> {
    let Some(bytes) = table
        .get((organization.as_str(), event.as_u128()))
        .map_err(StoreError::backend)?
    else {
        return Ok(None);
    };
    let mut message = MessageRecord::decode(bytes.value())?;
    message.payload = read_payload(payloads, organization, event)?
        .ok_or_else(|| StoreError::corrupt(format!("message {event} has no payload")))?;
    Ok(Some(message))
}

/// A message's payload.
fn read_payload(
    payloads: &impl ReadableTable<(&'static str, u128), PayloadRow>,
    organization: &OrganizationId,
    event: EventId,
) -> Result<Option<Payload>, StoreError> {
    Ok(payloads
        .get((organization.as_str(), event.as_u128()))
        .map_err(StoreError::backend)?
        .map(|row| {
            let (domain, content) = row.value();
            Payload::new(content.to_vec(), domain.map(str::to_owned))
        }))
}

/// Every table, open in one write transaction.
struct WriteTables<'txn> {
    meta: redb::Table<'txn, &'static str, i64>,
    open: redb::Table<'txn, u128, &'static [u8]>,
    finished: redb::Table<'txn, u128, &'static [u8]>,
    messages: redb::Table<'txn, (&'static str, u128), &'static [u8]>,
    payloads: redb::Table<'txn, (&'static str, u128), PayloadRow>,
    /// Where index changes go.
    index: IndexSink<'txn>,
    endpoints: redb::Table<'txn, u128, (u32, bool, &'static [u8])>,
    organizations: redb::Table<'txn, &'static str, &'static [u8]>,
    windows: redb::Table<'txn, &'static str, i64>,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction, index: IndexSink<'txn>) -> Result<Self, StoreError> {
        Ok(Self {
            meta: txn.open_table(META).map_err(StoreError::backend)?,
            open: txn.open_table(OPEN).map_err(StoreError::backend)?,
            finished: txn.open_table(FINISHED).map_err(StoreError::backend)?,
            messages: txn.open_table(MESSAGES).map_err(StoreError::backend)?,
            payloads: txn.open_table(PAYLOADS).map_err(StoreError::backend)?,
            index,
            endpoints: txn.open_table(ENDPOINTS).map_err(StoreError::backend)?,
            organizations: txn.open_table(ORGANIZATIONS).map_err(StoreError::backend)?,
            windows: txn.open_table(WINDOWS).map_err(StoreError::backend)?,
        })
    }
}

impl Tables for WriteTables<'_> {
    fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        any_record(&self.open, &self.finished, id)
    }

    fn put_delivery(
        &mut self,
        record: DeliveryRecord,
        was_open: Option<bool>,
    ) -> Result<(), StoreError> {
        let id = record.id.as_u128();
        let bytes = record.encode();
        let (table, other) = if record.is_open() {
            (&mut self.open, &mut self.finished)
        } else {
            (&mut self.finished, &mut self.open)
        };
        table
            .insert(id, bytes.as_slice())
            .map_err(StoreError::backend)?;
        if was_open.is_some_and(|was_open| was_open != record.is_open()) {
            other.remove(id).map_err(StoreError::backend)?;
        }
        Ok(())
    }

    fn delete_delivery(&mut self, record: &DeliveryRecord) -> Result<(), StoreError> {
        let table = if record.is_open() {
            &mut self.open
        } else {
            &mut self.finished
        };
        table
            .remove(record.id.as_u128())
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn message(
        &self,
        organization: &OrganizationId,
        event: EventId,
    ) -> Result<Option<MessageRecord>, StoreError> {
        read_message(&self.messages, &self.payloads, organization, event)
    }

    fn put_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        let key = (record.organization.as_str(), record.event.as_u128());
        let payload = &record.payload;
        self.payloads
            .insert(key, (payload.domain.as_deref(), &payload.content[..]))
            .map_err(StoreError::backend)?;
        let mut without_payload = record.clone();
        without_payload.payload.content = bytes::Bytes::new();
        self.messages
            .insert(key, without_payload.encode().as_slice())
            .map_err(StoreError::backend)?;
        Ok(())
    }

    fn delete_message(&mut self, record: &MessageRecord) -> Result<(), StoreError> {
        let key = (record.organization.as_str(), record.event.as_u128());
        self.messages.remove(key).map_err(StoreError::backend)?;
        self.payloads.remove(key).map_err(StoreError::backend)?;
        Ok(())
    }

    fn insert_entry(&mut self, entry: IndexEntry) -> Result<(), StoreError> {
        self.index.apply(IndexChange::Insert(entry))
    }

    fn remove_entry(&mut self, entry: &IndexEntry) -> Result<(), StoreError> {
        self.index.apply(IndexChange::Remove(entry.clone()))
    }
}

/// A change to the index tables.
enum IndexChange {
    Insert(IndexEntry),
    Remove(IndexEntry),
}

/// The index tables of one write transaction.
struct IndexTables<'txn> {
    fixed: redb::Table<'txn, (u128, u64, u128), ()>,
    bytes: redb::Table<'txn, (u128, &'static [u8]), ()>,
}

impl<'txn> IndexTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            fixed: txn.open_table(INDEX).map_err(StoreError::backend)?,
            bytes: txn.open_table(INDEX_BYTES).map_err(StoreError::backend)?,
        })
    }

    fn apply(&mut self, change: IndexChange) -> Result<(), StoreError> {
        let (insert, entry) = match change {
            IndexChange::Insert(entry) => (true, entry),
            IndexChange::Remove(entry) => (false, entry),
        };
        let set = set_key(&entry.set);
        match (fixed_member(&entry.member), insert) {
            (Some((time, id)), true) => self.fixed.insert((set, time, id), ()).map(|_| ()),
            (Some((time, id)), false) => self.fixed.remove((set, time, id)).map(|_| ()),
            (None, true) => self
                .bytes
                .insert((set, entry.member.as_slice()), ())
                .map(|_| ()),
            (None, false) => self
                .bytes
                .remove((set, entry.member.as_slice()))
                .map(|_| ()),
        }
        .map_err(StoreError::backend)
    }
}

/// Where a batch's operations put their index changes: straight into the index tables
/// (small batches), or collected per operation and sent to the batch's index thread
/// ([`write_index`]).
enum IndexSink<'txn> {
    Inline(Box<IndexTables<'txn>>),
    Thread {
        changes: Vec<IndexChange>,
        to: std::sync::mpsc::Sender<Vec<IndexChange>>,
    },
}

impl IndexSink<'_> {
    fn apply(&mut self, change: IndexChange) -> Result<(), StoreError> {
        match self {
            Self::Inline(tables) => tables.apply(change),
            Self::Thread { changes, .. } => {
                changes.push(change);
                Ok(())
            }
        }
    }

    /// Sends the changes collected so far to the index thread.
    ///
    /// # Errors
    /// When the index thread stopped (it failed to write).
    fn flush(&mut self) -> Result<(), StoreError> {
        match self {
            Self::Thread { changes, to } if !changes.is_empty() => to
                .send(std::mem::take(changes))
                .map_err(|_| StoreError::backend("the index writer stopped")),
            _ => Ok(()),
        }
    }
}

/// Writes a batch's index changes, in the order they arrive, into the index tables of the
/// batch's transaction. It runs on its own thread beside the writer, which applies the
/// records meanwhile: redb lets separate tables of one write transaction be written from
/// several threads, and both halves commit together, so records and index entries never
/// disagree on disk.
fn write_index(
    txn: &WriteTransaction,
    changes: &std::sync::mpsc::Receiver<Vec<IndexChange>>,
) -> Result<(), StoreError> {
    let mut tables = IndexTables::open(txn)?;
    for chunk in changes {
        for change in chunk {
            tables.apply(change)?;
        }
    }
    Ok(())
}

/// Creates every table (a new file's, or those a new version added).
fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    drop(WriteTables::open(
        txn,
        IndexSink::Inline(Box::new(IndexTables::open(txn)?)),
    )?);
    Ok(())
}

/// The writer thread's state.
struct Writer {
    db: Option<Arc<Database>>,
    queue: Arc<Mutex<Queue>>,
    poisoned: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    index_threads: Arc<AtomicU64>,
    config_version: Arc<AtomicU64>,
}

/// A queue change that takes effect only once the batch that wrote it is committed.
enum Effect {
    /// A new or redriven delivery enters its chain.
    Insert(Entry),
    /// A finished lease's delivery is due again, or leaves its chain.
    Settle(Parked, Option<i64>),
    /// The configuration changed.
    ConfigChanged,
}

/// An operation's answer, sent once the batch is committed.
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

fn answer<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Answer {
    Box::new(move |commit_error: Option<&str>| {
        let result = match commit_error {
            Some(message) => Err(StoreError::backend(message.to_owned())),
            None => result,
        };
        let _ = reply.send(result);
    })
}

impl Writer {
    fn run(mut self, mut ops: mpsc::Receiver<Op>) {
        let mut closed = None;
        while let Some(first) = ops.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if let Some(close) = self.run_batch(batch) {
                closed = Some(close);
                break;
            }
        }
        // Anything still queued after a close is refused.
        ops.close();
        while let Ok(op) = ops.try_recv() {
            refuse(op, StoreError::closed);
        }
        drop(self.db.take());
        // Answered once the file is closed, so that it can be reopened at once.
        if let Some((reply, result)) = closed {
            let _ = reply.send(result);
        }
    }

    /// Applies one batch in one transaction; returns the close request, with its answer,
    /// when the batch held one.
    fn run_batch(&mut self, batch: Vec<Op>) -> Option<(Reply<()>, Result<(), StoreError>)> {
        let poisoned = self.poisoned.load(Ordering::SeqCst);
        let Some(db) = self.db.clone().filter(|_| !poisoned) else {
            for op in batch {
                refuse(op, || {
                    if poisoned {
                        StoreError::backend("store is poisoned by an earlier failed commit")
                    } else {
                        StoreError::closed()
                    }
                });
            }
            return None;
        };
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(error) => {
                let message = error.to_string();
                for op in batch {
                    refuse(op, || StoreError::backend(message.clone()));
                }
                return None;
            }
        };
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let mut effects: Vec<Effect> = Vec::new();
        let mut close: Option<Reply<()>> = None;
        let txn_ref = &txn;
        // The records are written here; in a batch of many operations the index entries
        // are written by a second thread in the same transaction ([`write_index`]), so
        // the two halves of the batch's work run side by side.
        let threaded = batch.len() >= THREADED_BATCH;
        if threaded {
            self.index_threads.fetch_add(1, Ordering::Relaxed);
        }
        let outcome = std::thread::scope(|scope| {
            let (sink, helper) = if threaded {
                let (to, changes) = std::sync::mpsc::channel();
                let helper = std::thread::Builder::new()
                    .name("webhook-redb-index".into())
                    .spawn_scoped(scope, move || write_index(txn_ref, &changes));
                match helper {
                    Ok(helper) => (
                        IndexSink::Thread {
                            changes: Vec::new(),
                            to,
                        },
                        Some(helper),
                    ),
                    Err(error) => return Err((batch, error.to_string())),
                }
            } else {
                match IndexTables::open(txn_ref) {
                    Ok(tables) => (IndexSink::Inline(Box::new(tables)), None),
                    Err(error) => return Err((batch, error.to_string())),
                }
            };
            let mut tables = match WriteTables::open(txn_ref, sink) {
                Ok(tables) => tables,
                Err(error) => return Err((batch, error.to_string())),
            };
            let mut failure: Option<String> = None;
            for op in batch {
                if close.is_some() {
                    refuse(op, StoreError::closed);
                    continue;
                }
                if let Op::Close(reply) = op {
                    close = Some(reply);
                    continue;
                }
                match self.apply(&mut tables, &mut effects, op) {
                    Ok(Some(done)) => answers.push(done),
                    Ok(None) => {}
                    Err((done, error)) => {
                        // A storage error may have left the transaction half-written.
                        failure = Some(error.to_string());
                        answers.push(done);
                        break;
                    }
                }
                if let Err(error) = tables.index.flush() {
                    failure = Some(error.to_string());
                    break;
                }
            }
            // Closing the sink lets the index thread finish the last changes.
            drop(tables);
            if let Some(helper) = helper {
                let index = helper
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::backend("the index writer panicked")));
                if let (None, Err(error)) = (&failure, index) {
                    failure = Some(error.to_string());
                }
            }
            Ok(failure)
        });
        let failure = match outcome {
            Ok(failure) => failure,
            Err((batch, message)) => {
                for op in batch {
                    refuse(op, || StoreError::backend(message.clone()));
                }
                return None;
            }
        };
        let commit_error = match failure {
            Some(message) => {
                drop(txn);
                Some(message)
            }
            None => {
                let result = txn.commit();
                self.commits.fetch_add(1, Ordering::Relaxed);
                result.err().map(|error| error.to_string())
            }
        };
        if commit_error.is_some() {
            // Memory may already hold some of this batch's changes and disk does not: stop
            // here.
            self.poisoned.store(true, Ordering::SeqCst);
        } else if !effects.is_empty() {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            for effect in effects {
                match effect {
                    Effect::Insert(entry) => queue.insert(entry),
                    Effect::Settle(parked, due_again) => {
                        queue.settle_parked(parked, due_again);
                    }
                    Effect::ConfigChanged => {
                        self.config_version.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
        for done in answers {
            done(commit_error.as_deref());
        }
        close.map(|reply| {
            let result = match commit_error {
                Some(message) => Err(StoreError::backend(message)),
                None => Ok(()),
            };
            (reply, result)
        })
    }

    /// Applies one operation. `Ok(None)` for operations without an answer; `Err` when the
    /// storage failed and the batch must be abandoned.
    fn apply(
        &mut self,
        tables: &mut WriteTables<'_>,
        effects: &mut Vec<Effect>,
        op: Op,
    ) -> Result<Option<Answer>, (Answer, StoreError)> {
        macro_rules! run {
            ($reply:expr, $body:expr) => {{
                // A closure, so that `?` and `return` in the body end only this operation.
                #[allow(clippy::redundant_closure_call)]
                let result: Result<_, StoreError> = (|| $body)();
                match result {
                    Ok(value) => Ok(Some(answer($reply, Ok(value)))),
                    Err(error) if error.is_lease_lost() => Ok(Some(answer($reply, Err(error)))),
                    Err(error) => {
                        let message = error.to_string();
                        Err((answer($reply, Err(StoreError::backend(message))), error))
                    }
                }
            }};
        }
        macro_rules! quietly {
            ($body:expr) => {{
                let (done, _) = oneshot::channel::<Result<(), StoreError>>();
                run!(done, $body).map(|_| None)
            }};
        }
        let queue = &self.queue;
        let queue = || queue.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            Op::Load(reply) => run!(reply, {
                let mut endpoints = Vec::new();
                for row in tables.endpoints.iter().map_err(StoreError::backend)? {
                    let (id, value) = row.map_err(StoreError::backend)?;
                    let (max_concurrency, claimable, data) = value.value();
                    endpoints.push(StoredEndpoint::new(
                        EndpointId::from_u128(id.value()),
                        max_concurrency,
                        claimable,
                        data.to_vec(),
                    ));
                }
                let mut organizations = Vec::new();
                for row in tables.organizations.iter().map_err(StoreError::backend)? {
                    let (id, data) = row.map_err(StoreError::backend)?;
                    organizations.push(StoredOrganization::new(
                        OrganizationId::new(id.value()),
                        data.value().to_vec(),
                    ));
                }
                Ok(Snapshot::new(endpoints, organizations))
            }),
            Op::PutEndpoint(endpoint, reply) => run!(reply, {
                tables
                    .endpoints
                    .insert(
                        endpoint.id.as_u128(),
                        (
                            endpoint.max_concurrency,
                            endpoint.claimable,
                            endpoint.data.as_slice(),
                        ),
                    )
                    .map_err(StoreError::backend)?;
                queue().set_endpoint(endpoint.id, endpoint.max_concurrency, endpoint.claimable);
                effects.push(Effect::ConfigChanged);
                Ok(())
            }),
            Op::RemoveEndpoint(id, reply) => run!(reply, {
                tables
                    .endpoints
                    .remove(id.as_u128())
                    .map_err(StoreError::backend)?;
                queue().remove_endpoint(id);
                effects.push(Effect::ConfigChanged);
                Ok(())
            }),
            Op::PutOrganization(organization, reply) => run!(reply, {
                tables
                    .organizations
                    .insert(organization.id.as_str(), organization.data.as_slice())
                    .map_err(StoreError::backend)?;
                effects.push(Effect::ConfigChanged);
                Ok(())
            }),
            Op::PutWindow(key, start) => quietly!({
                tables
                    .windows
                    .insert(key.as_str(), start)
                    .map_err(StoreError::backend)?;
                Ok(())
            }),
            Op::PruneWindows(before) => quietly!({
                tables
                    .windows
                    .retain(|_, start| start >= before)
                    .map_err(StoreError::backend)?;
                Ok(())
            }),
            Op::Enqueue(mut new, reply) => run!(reply, {
                if let Some(existing) = tables::existing(tables, &new.message)? {
                    return Ok(Enqueued::Existing(existing));
                }
                {
                    let mut queue = queue();
                    for record in &mut new.deliveries {
                        queue.prepare(record);
                        effects.push(Effect::Insert(queue.entry(record)));
                    }
                }
                tables::insert_message(tables, *new)
            }),
            Op::Lease(leases) => quietly!({
                // The claim read each record as committed and leased it; nothing else
                // changes an open record before the lease is written (its finish comes
                // later through this channel), so the bytes are what this thread would
                // write. A delivery cancelled before its lease was written has left the
                // table: nothing to do.
                for (id, bytes) in leases {
                    let id = id.as_u128();
                    if tables.open.get(id).map_err(StoreError::backend)?.is_some() {
                        tables
                            .open
                            .insert(id, bytes.as_slice())
                            .map_err(StoreError::backend)?;
                    }
                }
                Ok(())
            }),
            Op::Finish(id, parked, finish, reply) => run!(reply, {
                effects.push(Effect::Settle(parked, due_again(&finish)));
                let record = open_record(&tables.open, id)?;
                tables::finish(tables, record, finish)
            }),
            Op::Redrive(id, now_ms, reply) => run!(reply, {
                let mut queue = queue();
                match tables::redrive(tables, &mut queue, id, now_ms)? {
                    Some(record) => {
                        effects.push(Effect::Insert(queue.entry(&record)));
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }),
            Op::Cancel(endpoint, reason, now_ms, limit, reply) => run!(reply, {
                let mut queue = queue();
                tables::cancel_open(tables, &mut queue, endpoint, &reason, now_ms, limit)
            }),
            Op::RemoveFinished(ids, reply) => run!(reply, tables::remove_finished(tables, &ids)),
            Op::RemoveUnrouted(keys, reply) => {
                run!(reply, tables::remove_unrouted(tables, &keys))
            }
            Op::SetLastPruned(at_ms, reply) => run!(reply, {
                tables
                    .meta
                    .insert(LAST_PRUNED_KEY, at_ms)
                    .map_err(StoreError::backend)?;
                Ok(())
            }),
            Op::Close(reply) => Ok(Some(answer(reply, Ok(())))),
        }
    }
}

/// Answers an operation with an error without running it.
fn refuse(op: Op, error: impl Fn() -> StoreError) {
    match op {
        Op::Load(reply) => drop(reply.send(Err(error()))),
        Op::PutEndpoint(_, reply)
        | Op::RemoveEndpoint(_, reply)
        | Op::PutOrganization(_, reply)
        | Op::Finish(_, _, _, reply)
        | Op::SetLastPruned(_, reply)
        | Op::Close(reply) => drop(reply.send(Err(error()))),
        Op::Enqueue(_, reply) => drop(reply.send(Err(error()))),
        Op::Redrive(_, _, reply) => drop(reply.send(Err(error()))),
        Op::Cancel(_, _, _, _, reply)
        | Op::RemoveFinished(_, reply)
        | Op::RemoveUnrouted(_, reply) => drop(reply.send(Err(error()))),
        Op::PutWindow(..) | Op::PruneWindows(..) | Op::Lease(..) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A store in a new directory, with one endpoint of concurrency `cap`.
    async fn store_with_endpoint(
        cap: u32,
    ) -> (tempfile::TempDir, std::path::PathBuf, RedbStore, EndpointId) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = RedbStore::open(&path).unwrap();
        let endpoint = EndpointId::generate();
        store
            .put_endpoint(StoredEndpoint::new(endpoint, cap, true, b"{}".to_vec()))
            .await
            .unwrap();
        (dir, path, store, endpoint)
    }

    #[test]
    fn a_file_of_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        drop(RedbStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_KEY, SCHEMA_VERSION + 1)
                .unwrap();
            txn.commit().unwrap();
        }
        let error = RedbStore::open(&path).unwrap_err();
        assert!(error.is_incompatible(), "{error}");
        assert!(error.to_string().contains("newer version"), "{error}");
    }

    #[tokio::test]
    async fn windows_leases_and_failures_survive_a_reopen() {
        let (_dir, path, store, endpoint) = store_with_endpoint(4).await;
        let window = store
            .claim_idempotency_window("org", "TRANSACTION", "t1", 1_000)
            .await
            .unwrap();
        let (first, second) = (
            crate::store::fixture::message("org", "a", 0, b"a"),
            crate::store::fixture::message("org", "b", 0, b"b"),
        );
        let (leased, failed) = (
            DeliveryRecord::new(&first, endpoint, 0),
            DeliveryRecord::new(&second, endpoint, 0),
        );
        let (leased_id, failed_id) = (leased.id, failed.id);
        store.enqueue(first, vec![leased]).await.unwrap();
        store.enqueue(second, vec![failed]).await.unwrap();
        let lease = std::time::Duration::from_secs(10);
        let claim = store.claim(ClaimRequest::new(0, 10, lease)).await.unwrap();
        assert_eq!(claim.deliveries.len(), 2);
        let b = claim
            .deliveries
            .iter()
            .find(|c| c.record.id == failed_id)
            .unwrap();
        let attempt = crate::store::fixture::response(400, 1_000, 5);
        store
            .finish(failed_id, b.record.lease, Finish::Failed(attempt.clone()))
            .await
            .unwrap();
        // No close: as if the process died.
        drop(store);

        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.load().await.unwrap().endpoints.len(), 1);
        let again = store
            .claim_idempotency_window("org", "TRANSACTION", "t1", 1_059)
            .await
            .unwrap();
        assert_eq!(again, window, "the window survived");
        let early = store
            .claim(ClaimRequest::new(5_000, 10, lease))
            .await
            .unwrap();
        assert!(early.deliveries.is_empty(), "still leased");
        let late = store
            .claim(ClaimRequest::new(10_000, 10, lease))
            .await
            .unwrap();
        assert_eq!(late.deliveries.len(), 1, "the lease ran out");
        assert_eq!(late.deliveries[0].record.id, leased_id);
        let record = store.delivery(failed_id).await.unwrap().unwrap();
        assert_eq!(record.status, crate::delivery::DeliveryStatus::Failed);
        assert_eq!(record.attempts, vec![attempt]);
        let failures = store
            .scan(Scan {
                set: crate::store::index::failed_of(&OrganizationId::from("org"), Some(endpoint)),
                start: None,
                end: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(failures.len(), 1, "the failure index survived");
    }

    #[tokio::test]
    async fn concurrent_enqueues_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
        let endpoint = EndpointId::generate();
        store
            .put_endpoint(StoredEndpoint::new(endpoint, 4, true, b"{}".to_vec()))
            .await
            .unwrap();
        let before = store.commits();
        let publishes: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let message = crate::store::fixture::message("org", &format!("r{i}"), 0, b"{}");
                    let delivery = DeliveryRecord::new(&message, endpoint, 0);
                    store.enqueue(message, vec![delivery]).await
                })
            })
            .collect();
        for publish in publishes {
            assert_eq!(publish.await.unwrap().unwrap(), Enqueued::Stored);
        }
        let commits = store.commits() - before;
        assert!(commits < 200, "200 enqueues took {commits} commits");
        let claim = store
            .claim(ClaimRequest::new(
                0,
                100,
                std::time::Duration::from_secs(10),
            ))
            .await
            .unwrap();
        assert_eq!(claim.open, 200);
        assert_eq!(claim.deliveries.len(), 4, "the endpoint's cap");
    }

    /// Every index set the test below reads, each scanned whole.
    async fn scans(store: &RedbStore, endpoint: EndpointId) -> Vec<Vec<Vec<u8>>> {
        use crate::store::index::{self, RetentionClass, StatusGroup};
        let org = OrganizationId::from("org");
        let sets = [
            index::deliveries_of_organization(&org, None),
            index::deliveries_of_organization(&org, Some(StatusGroup::Pending)),
            index::deliveries_of_organization(&org, Some(StatusGroup::Delivered)),
            index::deliveries_of_endpoint(endpoint, None),
            index::messages_of(&org, None, None),
            index::retention(RetentionClass::Delivered),
            index::retention(RetentionClass::Unrouted),
        ];
        let mut found = Vec::new();
        for set in sets {
            let scan = Scan {
                set,
                start: None,
                end: None,
                limit: 100,
            };
            found.push(store.scan(scan).await.unwrap());
        }
        found
    }

    #[tokio::test]
    async fn a_schema_2_file_is_upgraded_with_every_entry_found_once() {
        let (_dir, path, store, endpoint) = store_with_endpoint(4).await;
        for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
            let message =
                crate::store::fixture::message("org", key, i64::try_from(i).unwrap(), b"{}");
            let delivery = DeliveryRecord::new(&message, endpoint, 0);
            store.enqueue(message, vec![delivery]).await.unwrap();
        }
        // Unrouted: its retention member is longer than a time and an id.
        let unrouted = crate::store::fixture::message("org", "u", 7, b"{}");
        store.enqueue(unrouted, Vec::new()).await.unwrap();
        let lease = std::time::Duration::from_secs(10);
        let claim = store.claim(ClaimRequest::new(0, 1, lease)).await.unwrap();
        let first = &claim.deliveries[0].record;
        let attempt = crate::store::fixture::response(200, 1_000, 5);
        store
            .finish(first.id, first.lease, Finish::Delivered(attempt))
            .await
            .unwrap();
        let before = scans(&store, endpoint).await;
        assert_eq!(before[0].len(), 3);
        assert_eq!(before[1].len(), 2);
        assert_eq!(before[2].len(), 1);
        assert_eq!(before[6].len(), 1);
        store.close().await.unwrap();
        drop(store);

        // Write the entries back in schema 2's layout: one table of (set, member bytes).
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut old = txn.open_table(INDEX_V2).unwrap();
                let fixed = txn.open_table(INDEX).unwrap();
                for row in fixed.iter().unwrap() {
                    let (set, time, id) = row.unwrap().0.value();
                    let mut member = time.to_be_bytes().to_vec();
                    member.extend_from_slice(&id.to_be_bytes());
                    old.insert((set, member.as_slice()), ()).unwrap();
                }
                let bytes = txn.open_table(INDEX_BYTES).unwrap();
                for row in bytes.iter().unwrap() {
                    let key = row.unwrap().0;
                    let (set, member) = key.value();
                    old.insert((set, member), ()).unwrap();
                }
                txn.open_table(META)
                    .unwrap()
                    .insert(SCHEMA_KEY, SCHEMA_BYTE_INDEX)
                    .unwrap();
            }
            txn.delete_table(INDEX).unwrap();
            txn.delete_table(INDEX_BYTES).unwrap();
            txn.commit().unwrap();
        }

        let store = RedbStore::open(&path).unwrap();
        assert_eq!(scans(&store, endpoint).await, before, "every entry, once");
        store.close().await.unwrap();
        drop(store);
        let db = Database::create(&path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get(SCHEMA_KEY).unwrap().unwrap().value(),
            SCHEMA_VERSION
        );
        assert!(txn.open_table(INDEX_V2).is_err(), "the old table is gone");
    }

    #[tokio::test]
    async fn batches_written_with_an_index_thread_index_every_record_once() {
        use crate::store::index::{self, StatusGroup};
        let (_dir, path, store, endpoint) = store_with_endpoint(200).await;
        let before = store.commits();
        let publishes: Vec<_> = (0..200)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let message = crate::store::fixture::message("org", &format!("r{i}"), i, b"{}");
                    let delivery = DeliveryRecord::new(&message, endpoint, 0);
                    store.enqueue(message, vec![delivery]).await
                })
            })
            .collect();
        for publish in publishes {
            publish.await.unwrap().unwrap();
        }
        assert!(store.commits() > before);
        assert!(
            store.inner.index_threads.load(Ordering::Relaxed) > 0,
            "some batch had an index thread"
        );
        let lease = std::time::Duration::from_secs(10);
        let claim = store.claim(ClaimRequest::new(0, 200, lease)).await.unwrap();
        assert_eq!(claim.deliveries.len(), 200);
        let finishes: Vec<_> = claim
            .deliveries
            .iter()
            .map(|claimed| {
                let store = store.clone();
                let (id, lease) = (claimed.record.id, claimed.record.lease);
                tokio::spawn(async move {
                    let attempt = crate::store::fixture::response(200, 1_000, 5);
                    store.finish(id, lease, Finish::Delivered(attempt)).await
                })
            })
            .collect();
        for finish in finishes {
            finish.await.unwrap().unwrap();
        }
        // No close: as if the process died; the index is what was committed.
        drop(store);
        let store = RedbStore::open(&path).unwrap();
        let org = OrganizationId::from("org");
        let scan = |set| Scan {
            set,
            start: None,
            end: None,
            limit: 1_000,
        };
        let all = store
            .scan(scan(index::deliveries_of_organization(&org, None)))
            .await
            .unwrap();
        let mut unique = all.clone();
        unique.dedup();
        assert_eq!((all.len(), unique.len()), (200, 200));
        let delivered = store
            .scan(scan(index::deliveries_of_organization(
                &org,
                Some(StatusGroup::Delivered),
            )))
            .await
            .unwrap();
        assert_eq!(delivered, all, "every one moved to delivered");
        let pending = store
            .scan(scan(index::deliveries_of_endpoint(
                endpoint,
                Some(StatusGroup::Pending),
            )))
            .await
            .unwrap();
        assert!(pending.is_empty());
        let messages = store
            .scan(scan(index::messages_of(&org, None, None)))
            .await
            .unwrap();
        assert_eq!(messages.len(), 200);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let first = RedbStore::open(&path).unwrap();
        assert!(RedbStore::open(&path).is_err());
        drop(first);
        RedbStore::open(&path).unwrap();
    }
}
