//! The embedded durable [`Store`](super::Store): one redb file, written by one thread that
//! commits operations in batches.
//!
//! Every state change is sent to the writer thread over a channel. The thread takes whatever
//! has queued up (up to 512 operations), applies it in one write transaction,
//! commits once (one fsync) and only then answers each caller. Many concurrent publishes
//! and acknowledgements therefore share one fsync, and a caller that got an answer knows
//! its change is on disk.
//!
//! Claims do not wait for a commit: they are served from the in-memory [`Queue`] under a
//! mutex, with the records and payloads read in a redb read transaction, and the lease is
//! written to the file later, in the writer's next batch. That is safe because the queue
//! only ever holds what is durable: a new delivery enters it once its enqueue is committed,
//! and a finished lease takes effect in the queue (the retry's new due time, or the next
//! delivery of the chain becoming the head) once the finish is committed; between release
//! and commit the delivery is parked, neither claimable nor in flight. A lease that never
//! reached the file (a crash right after the claim) only makes the delivery due again at
//! once on restart, which at-least-once delivery allows. Until its lease is written,
//! [`Store::delivery`](super::Store::delivery) shows a just-claimed delivery as pending.
//!
//! The queue's indexes ([`Queue`]) live in memory and are rebuilt from the `open` table
//! when the file is opened, so opening costs time proportional to the open deliveries. They
//! hold about 100 bytes per open delivery; the records themselves (attempt history and
//! all) stay on disk and are read back when a claim or finish changes them.
//! If a commit fails, memory and disk may disagree; the store then refuses all further
//! work (it is *poisoned*) and must be reopened, which reloads the truth from disk.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use redb::{Database, ReadableDatabase as _, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::{mpsc, oneshot};
use webhook_core::idempotency::{WindowStarts, triple_key};

use super::queue::{Entry, Leased, Parked, Queue, due_again, reopen, settle};
use super::{
    Claim, ClaimRequest, Claimed, Finish, NewDelivery, Payload, Snapshot, Store, StoreError,
    StoreFuture, StoredEndpoint, StoredOrganization,
};
use crate::delivery::{Delivery, DeliveryStatus};
use crate::ids::{DeliveryId, EndpointId, OrganizationId};

/// At most this many operations share one transaction.
const MAX_BATCH: usize = 512;
const CHANNEL_CAPACITY: usize = 4096;

const OPEN: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("open_deliveries");
const FINISHED: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("finished_deliveries");
const FAILED: TableDefinition<'_, (u128, i64, u128), ()> = TableDefinition::new("failed_index");
const DELIVERED: TableDefinition<'_, (i64, u128), ()> = TableDefinition::new("delivered_index");
/// At most this many delivered deliveries are pruned per call, so a prune never stalls the
/// writer for long.
const PRUNE_LIMIT: usize = 10_000;
const PAYLOADS: TableDefinition<'_, u128, (Option<&str>, &[u8])> = TableDefinition::new("payloads");
const ENDPOINTS: TableDefinition<'_, u128, (u32, bool, &[u8])> = TableDefinition::new("endpoints");
const ORGANIZATIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("organizations");
const WINDOWS: TableDefinition<'_, &str, i64> = TableDefinition::new("idempotency_windows");

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Op {
    Load(Reply<Snapshot>),
    PutEndpoint(StoredEndpoint, Reply<()>),
    PutOrganization(StoredOrganization, Reply<()>),
    PutWindow(String, i64),
    PruneWindows(i64),
    Enqueue(Vec<NewDelivery>, Reply<()>),
    Lease(Vec<Leased>),
    Finish(DeliveryId, Parked, Finish, Reply<()>),
    Get(DeliveryId, Reply<Option<Delivery>>),
    Redrive(DeliveryId, i64, Reply<bool>),
    FailedSince(EndpointId, i64, Reply<Vec<DeliveryId>>),
    PruneDelivered(i64, Reply<u64>),
    Close(Reply<()>),
}

/// The embedded durable store: a single redb file. Cheap to clone; clones share the file.
///
/// Only one `RedbStore` can have a file open at a time; the file is closed when the last
/// clone is dropped (or by [`Store::close`](super::Store::close)).
#[derive(Clone)]
pub struct RedbStore {
    inner: Arc<Inner>,
}

struct Inner {
    ops: Mutex<Option<mpsc::Sender<Op>>>,
    /// The file, for claims' read transactions; `None` once closed.
    db: Mutex<Option<Arc<Database>>>,
    queue: Arc<Mutex<Queue>>,
    /// Set by the writer when a commit failed: memory and disk may disagree.
    poisoned: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    windows: Mutex<WindowStarts>,
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
    /// open) or holds corrupt records.
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
        let writer = Writer {
            db: Some(db.clone()),
            queue: queue.clone(),
            poisoned: poisoned.clone(),
            commits: commits.clone(),
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
                windows: Mutex::new(windows),
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

    /// Leases due deliveries from the in-memory queue and reads their records and payloads
    /// in a read transaction; the leases reach the file in the writer's next batch.
    fn claim_now(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        if self.inner.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::backend(
                "store is poisoned by an earlier failed commit",
            ));
        }
        let db = self
            .inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(StoreError::closed)?;
        let (leases, next_due_ms, open) = {
            let mut queue = self.queue();
            let (leases, next_due_ms) = queue.claim(request);
            (leases, next_due_ms, queue.len())
        };
        let open = u64::try_from(open).unwrap_or(u64::MAX);
        if leases.is_empty() {
            return Ok(Claim {
                deliveries: Vec::new(),
                next_due_ms,
                open,
            });
        }
        // On an error below the leases taken simply run out and the deliveries become due
        // again.
        let txn = db.begin_read().map_err(StoreError::backend)?;
        let records = txn.open_table(OPEN).map_err(StoreError::backend)?;
        let payloads = txn.open_table(PAYLOADS).map_err(StoreError::backend)?;
        let mut deliveries = Vec::with_capacity(leases.len());
        for leased in &leases {
            let mut record = open_record(&records, leased.id)?;
            leased.apply(&mut record);
            let payload = read_payload(&payloads, leased.id)?;
            deliveries.push(Claimed { record, payload });
        }
        self.send_without_reply(Op::Lease(leases));
        Ok(Claim {
            deliveries,
            next_due_ms,
            open,
        })
    }

    fn send_without_reply(&self, op: Op) {
        if let Some(sender) = self.sender() {
            // Best effort: a window that is not persisted only means a restarted sender may
            // start a new window a little early.
            let _ = sender.try_send(op);
        }
    }
}

impl Store for RedbStore {
    fn load(&self) -> StoreFuture<'_, Snapshot> {
        self.call(Op::Load)
    }

    fn put_endpoint(&self, endpoint: StoredEndpoint) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::PutEndpoint(endpoint, reply))
    }

    fn put_organization(&self, organization: StoredOrganization) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::PutOrganization(organization, reply))
    }

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

    fn enqueue(&self, deliveries: Vec<NewDelivery>) -> StoreFuture<'_, ()> {
        self.call(|reply| Op::Enqueue(deliveries, reply))
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

    fn delivery(&self, id: DeliveryId) -> StoreFuture<'_, Option<Delivery>> {
        self.call(|reply| Op::Get(id, reply))
    }

    fn redrive(&self, id: DeliveryId, now_ms: i64) -> StoreFuture<'_, bool> {
        self.call(|reply| Op::Redrive(id, now_ms, reply))
    }

    fn failed_since(
        &self,
        endpoint: EndpointId,
        since_ms: i64,
    ) -> StoreFuture<'_, Vec<DeliveryId>> {
        self.call(|reply| Op::FailedSince(endpoint, since_ms, reply))
    }

    fn prune_delivered(&self, before_ms: i64) -> StoreFuture<'_, u64> {
        self.call(|reply| Op::PruneDelivered(before_ms, reply))
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

/// Reads the queue and idempotency windows from the file, creating missing tables.
fn load(db: &Database) -> Result<(Queue, WindowStarts), StoreError> {
    let txn = db.begin_write().map_err(StoreError::backend)?;
    {
        // Creates every table, so that reads below and later batches find them.
        let tables = Tables::open(&txn)?;
        drop(tables);
    }
    txn.commit().map_err(StoreError::backend)?;

    let txn = db.begin_read().map_err(StoreError::backend)?;
    let mut queue = Queue::default();
    let endpoints = txn.open_table(ENDPOINTS).map_err(StoreError::backend)?;
    for row in endpoints.iter().map_err(StoreError::backend)? {
        let (id, value) = row.map_err(StoreError::backend)?;
        let (cap, enabled, _) = value.value();
        queue.set_endpoint(EndpointId::from_u128(id.value()), cap, enabled);
    }
    let open = txn.open_table(OPEN).map_err(StoreError::backend)?;
    for row in open.iter().map_err(StoreError::backend)? {
        let (_, value) = row.map_err(StoreError::backend)?;
        queue.load(&decode(value.value())?);
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

fn decode(bytes: &[u8]) -> Result<Delivery, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::corrupt)
}

fn encode(record: &Delivery) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(StoreError::corrupt)
}

/// The record stored under `id` in one of the delivery tables, in a read or a write
/// transaction.
fn read_record(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    table
        .get(id.as_u128())
        .map_err(StoreError::backend)?
        .map(|bytes| decode(bytes.value()))
        .transpose()
}

/// An open delivery's record. The queue knows it is open, so a missing record means the
/// file and the queue disagree.
fn open_record(
    table: &impl ReadableTable<u128, &'static [u8]>,
    id: DeliveryId,
) -> Result<Delivery, StoreError> {
    read_record(table, id)?
        .ok_or_else(|| StoreError::corrupt(format!("open delivery {id} has no record")))
}

/// What an open delivery sends; missing means the file is inconsistent.
fn read_payload(
    table: &impl ReadableTable<u128, (Option<&'static str>, &'static [u8])>,
    id: DeliveryId,
) -> Result<Payload, StoreError> {
    let guard = table
        .get(id.as_u128())
        .map_err(StoreError::backend)?
        .ok_or_else(|| StoreError::corrupt(format!("delivery {id} has no payload")))?;
    let (domain, content) = guard.value();
    Ok(Payload {
        content: content.to_vec(),
        domain: domain.map(str::to_owned),
    })
}

/// Every table, open in one write transaction.
struct Tables<'txn> {
    open: redb::Table<'txn, u128, &'static [u8]>,
    finished: redb::Table<'txn, u128, &'static [u8]>,
    failed: redb::Table<'txn, (u128, i64, u128), ()>,
    delivered: redb::Table<'txn, (i64, u128), ()>,
    payloads: redb::Table<'txn, u128, (Option<&'static str>, &'static [u8])>,
    endpoints: redb::Table<'txn, u128, (u32, bool, &'static [u8])>,
    organizations: redb::Table<'txn, &'static str, &'static [u8]>,
    windows: redb::Table<'txn, &'static str, i64>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            open: txn.open_table(OPEN).map_err(StoreError::backend)?,
            finished: txn.open_table(FINISHED).map_err(StoreError::backend)?,
            failed: txn.open_table(FAILED).map_err(StoreError::backend)?,
            delivered: txn.open_table(DELIVERED).map_err(StoreError::backend)?,
            payloads: txn.open_table(PAYLOADS).map_err(StoreError::backend)?,
            endpoints: txn.open_table(ENDPOINTS).map_err(StoreError::backend)?,
            organizations: txn.open_table(ORGANIZATIONS).map_err(StoreError::backend)?,
            windows: txn.open_table(WINDOWS).map_err(StoreError::backend)?,
        })
    }

    fn upsert(&mut self, record: &Delivery) -> Result<(), StoreError> {
        self.open
            .insert(record.id.as_u128(), encode(record)?.as_slice())
            .map_err(StoreError::backend)?;
        Ok(())
    }

    /// Moves a delivered or failed record from the open table to the finished one.
    fn finished(&mut self, record: &Delivery) -> Result<(), StoreError> {
        let id = record.id.as_u128();
        self.open.remove(id).map_err(StoreError::backend)?;
        self.finished
            .insert(id, encode(record)?.as_slice())
            .map_err(StoreError::backend)?;
        let at = record.finished_at_ms.unwrap_or_default();
        if record.status == DeliveryStatus::Failed {
            self.failed
                .insert((record.endpoint.as_u128(), at, id), ())
                .map_err(StoreError::backend)?;
        } else {
            self.delivered
                .insert((at, id), ())
                .map_err(StoreError::backend)?;
        }
        Ok(())
    }
}

/// The writer thread's state.
struct Writer {
    db: Option<Arc<Database>>,
    queue: Arc<Mutex<Queue>>,
    poisoned: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
}

/// A queue change that takes effect only once the batch that wrote it is committed.
enum Effect {
    /// A new or redriven delivery enters its chain.
    Insert(Entry),
    /// A finished lease's delivery is due again, or leaves its chain.
    Settle(Parked, Option<i64>),
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
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(mut self, mut ops: mpsc::Receiver<Op>) {
        while let Some(first) = ops.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let close = self.run_batch(batch);
            if close {
                break;
            }
        }
        // Anything still queued after a close is refused.
        ops.close();
        while let Ok(op) = ops.try_recv() {
            refuse(op, StoreError::closed);
        }
        drop(self.db.take());
    }

    /// Applies one batch in one transaction; returns whether a close was requested.
    fn run_batch(&mut self, batch: Vec<Op>) -> bool {
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
            return false;
        };
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(error) => {
                let message = error.to_string();
                for op in batch {
                    refuse(op, || StoreError::backend(message.clone()));
                }
                return false;
            }
        };
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let mut effects: Vec<Effect> = Vec::new();
        let mut close: Option<Reply<()>> = None;
        let mut failure: Option<String> = None;
        {
            let mut tables = match Tables::open(&txn) {
                Ok(tables) => tables,
                Err(error) => {
                    let message = error.to_string();
                    for op in batch {
                        refuse(op, || StoreError::backend(message.clone()));
                    }
                    return false;
                }
            };
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
            }
        }
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
            let mut queue = self.queue();
            for effect in effects {
                match effect {
                    Effect::Insert(entry) => queue.insert(entry),
                    Effect::Settle(parked, due_again) => {
                        queue.settle_parked(parked, due_again);
                    }
                }
            }
        }
        for done in answers {
            done(commit_error.as_deref());
        }
        if let Some(reply) = close {
            let _ = reply.send(match commit_error {
                Some(message) => Err(StoreError::backend(message)),
                None => Ok(()),
            });
            return true;
        }
        false
    }

    /// Applies one operation. `Ok(None)` for operations without an answer; `Err` when the
    /// storage failed and the batch must be abandoned.
    fn apply(
        &mut self,
        tables: &mut Tables<'_>,
        effects: &mut Vec<Effect>,
        op: Op,
    ) -> Result<Option<Answer>, (Answer, StoreError)> {
        macro_rules! run {
            ($reply:expr, $body:expr) => {{
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
        let queue = &self.queue;
        let queue = || queue.lock().unwrap_or_else(PoisonError::into_inner);
        match op {
            Op::Load(reply) => run!(reply, {
                let mut snapshot = Snapshot::default();
                for row in tables.endpoints.iter().map_err(StoreError::backend)? {
                    let (id, value) = row.map_err(StoreError::backend)?;
                    let (max_concurrency, enabled, data) = value.value();
                    snapshot.endpoints.push(StoredEndpoint {
                        id: EndpointId::from_u128(id.value()),
                        max_concurrency,
                        enabled,
                        data: data.to_vec(),
                    });
                }
                for row in tables.organizations.iter().map_err(StoreError::backend)? {
                    let (id, data) = row.map_err(StoreError::backend)?;
                    snapshot.organizations.push(StoredOrganization {
                        id: OrganizationId::new(id.value()),
                        data: data.value().to_vec(),
                    });
                }
                Ok(snapshot)
            }),
            Op::PutEndpoint(endpoint, reply) => run!(reply, {
                tables
                    .endpoints
                    .insert(
                        endpoint.id.as_u128(),
                        (
                            endpoint.max_concurrency,
                            endpoint.enabled,
                            endpoint.data.as_slice(),
                        ),
                    )
                    .map_err(StoreError::backend)?;
                queue().set_endpoint(endpoint.id, endpoint.max_concurrency, endpoint.enabled);
                Ok(())
            }),
            Op::PutOrganization(organization, reply) => run!(reply, {
                tables
                    .organizations
                    .insert(organization.id.as_str(), organization.data.as_slice())
                    .map_err(StoreError::backend)?;
                Ok(())
            }),
            Op::PutWindow(key, start) => {
                let (done, _) = oneshot::channel();
                run!(done, {
                    tables
                        .windows
                        .insert(key.as_str(), start)
                        .map_err(StoreError::backend)?;
                    Ok(())
                })
                .map(|_| None)
            }
            Op::PruneWindows(before) => {
                let (done, _) = oneshot::channel();
                run!(done, {
                    tables
                        .windows
                        .retain(|_, start| start >= before)
                        .map_err(StoreError::backend)?;
                    Ok(())
                })
                .map(|_| None)
            }
            Op::Enqueue(mut deliveries, reply) => run!(reply, {
                {
                    let mut queue = queue();
                    for new in &mut deliveries {
                        queue.prepare(&mut new.record);
                        effects.push(Effect::Insert(queue.entry(&new.record)));
                    }
                }
                for new in deliveries {
                    let record = new.record;
                    let id = record.id.as_u128();
                    tables
                        .payloads
                        .insert(
                            id,
                            (
                                new.payload.domain.as_deref(),
                                new.payload.content.as_slice(),
                            ),
                        )
                        .map_err(StoreError::backend)?;
                    tables.upsert(&record)?;
                }
                Ok(())
            }),
            Op::Lease(leases) => {
                let (done, _) = oneshot::channel();
                run!(done, {
                    for leased in leases {
                        // A delivery finished before its lease was written has left the
                        // table: nothing to do.
                        if let Some(mut record) = read_record(&tables.open, leased.id)? {
                            leased.apply(&mut record);
                            tables.upsert(&record)?;
                        }
                    }
                    Ok(())
                })
                .map(|_| None)
            }
            Op::Finish(id, parked, finish, reply) => run!(reply, {
                effects.push(Effect::Settle(parked, due_again(&finish)));
                let mut record = open_record(&tables.open, id)?;
                if settle(&mut record, finish) {
                    tables.finished(&record)
                } else {
                    tables.upsert(&record)
                }
            }),
            Op::Get(id, reply) => run!(reply, {
                match read_record(&tables.open, id)? {
                    Some(record) => Ok(Some(record)),
                    None => read_record(&tables.finished, id),
                }
            }),
            Op::Redrive(id, now_ms, reply) => run!(reply, {
                let Some(record) = read_record(&tables.finished, id)? else {
                    return Ok(false);
                };
                if record.status != DeliveryStatus::Failed {
                    return Ok(false);
                }
                tables
                    .finished
                    .remove(id.as_u128())
                    .map_err(StoreError::backend)?;
                let failed_at = record.finished_at_ms.unwrap_or_default();
                tables
                    .failed
                    .remove((record.endpoint.as_u128(), failed_at, id.as_u128()))
                    .map_err(StoreError::backend)?;
                let mut record = record;
                reopen(&mut record, now_ms);
                let entry = {
                    let mut queue = queue();
                    queue.prepare(&mut record);
                    queue.entry(&record)
                };
                effects.push(Effect::Insert(entry));
                tables.upsert(&record)?;
                Ok(true)
            }),
            Op::FailedSince(endpoint, since_ms, reply) => run!(reply, {
                let e = endpoint.as_u128();
                let mut ids = Vec::new();
                for row in tables
                    .failed
                    .range((e, since_ms, 0)..=(e, i64::MAX, u128::MAX))
                    .map_err(StoreError::backend)?
                {
                    let (key, _) = row.map_err(StoreError::backend)?;
                    ids.push(DeliveryId::from_u128(key.value().2));
                }
                Ok(ids)
            }),
            Op::PruneDelivered(before_ms, reply) => run!(reply, {
                let mut old = Vec::new();
                for row in tables
                    .delivered
                    .range(..(before_ms, 0))
                    .map_err(StoreError::backend)?
                    .take(PRUNE_LIMIT)
                {
                    let (key, _) = row.map_err(StoreError::backend)?;
                    old.push(key.value());
                }
                for (at, id) in &old {
                    tables
                        .delivered
                        .remove((*at, *id))
                        .map_err(StoreError::backend)?;
                    tables.finished.remove(*id).map_err(StoreError::backend)?;
                    tables.payloads.remove(*id).map_err(StoreError::backend)?;
                }
                Ok(u64::try_from(old.len()).unwrap_or(u64::MAX))
            }),
            Op::Close(reply) => Ok(Some(answer(reply, Ok(())))),
        }
    }
}

/// Answers an operation with an error without running it.
fn refuse(op: Op, error: impl Fn() -> StoreError) {
    match op {
        Op::Load(reply) => drop(reply.send(Err(error()))),
        Op::PutEndpoint(_, reply) | Op::PutOrganization(_, reply) | Op::Enqueue(_, reply) => {
            drop(reply.send(Err(error())));
        }
        Op::Finish(_, _, _, reply) | Op::Close(reply) => drop(reply.send(Err(error()))),
        Op::Get(_, reply) => drop(reply.send(Err(error()))),
        Op::Redrive(_, _, reply) => drop(reply.send(Err(error()))),
        Op::FailedSince(_, _, reply) => drop(reply.send(Err(error()))),
        Op::PruneDelivered(_, reply) => drop(reply.send(Err(error()))),
        Op::PutWindow(..) | Op::PruneWindows(..) | Op::Lease(..) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::delivery::{AttemptRecord, AttemptResult};
    use crate::store::fixture;

    fn new_delivery(endpoint: EndpointId, key: &str) -> NewDelivery {
        fixture::new_delivery(endpoint, key, 0, br#"{"id":"t1"}"#, Some("TRANSACTION"))
    }

    fn request(now_ms: i64) -> ClaimRequest {
        ClaimRequest {
            now_ms,
            limit: 100,
            lease: Duration::from_secs(10),
            overrides: HashMap::new(),
        }
    }

    fn failed_attempt() -> AttemptRecord {
        AttemptRecord {
            number: 1,
            at_ms: 1_000,
            latency_ms: 5,
            result: AttemptResult::Response {
                status: 400,
                body: "bad".into(),
            },
        }
    }

    async fn endpoint(store: &RedbStore) -> EndpointId {
        let id = EndpointId::generate();
        store
            .put_endpoint(StoredEndpoint {
                id,
                max_concurrency: 4,
                enabled: true,
                data: b"{}".to_vec(),
            })
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let store = RedbStore::open(&path).unwrap();
        let e = endpoint(&store).await;
        let window = store
            .claim_idempotency_window("org", "TRANSACTION", "t1", 1_000)
            .await
            .unwrap();
        let leased = new_delivery(e, "a");
        let failed = new_delivery(e, "b");
        let waiting = new_delivery(e, "a");
        let (leased_id, failed_id, waiting_id) =
            (leased.record.id, failed.record.id, waiting.record.id);
        store.enqueue(vec![leased, failed, waiting]).await.unwrap();
        let claim = store.claim(request(0)).await.unwrap();
        assert_eq!(claim.deliveries.len(), 2);
        assert_eq!(claim.open, 3);
        let b = claim
            .deliveries
            .iter()
            .find(|c| c.record.id == failed_id)
            .unwrap();
        assert_eq!(b.payload.content, br#"{"id":"t1"}"#);
        store
            .finish(failed_id, b.record.lease, Finish::Failed(failed_attempt()))
            .await
            .unwrap();
        // No close: as if the process died.
        drop(store);

        let store = RedbStore::open(&path).unwrap();
        let snapshot = store.load().await.unwrap();
        assert_eq!(snapshot.endpoints.len(), 1);
        assert_eq!(
            store
                .claim_idempotency_window("org", "TRANSACTION", "t1", 1_059)
                .await
                .unwrap(),
            window,
            "the window survived"
        );
        assert!(
            store
                .claim(request(5_000))
                .await
                .unwrap()
                .deliveries
                .is_empty()
        );
        let again = store.claim(request(10_000)).await.unwrap();
        assert_eq!(again.deliveries.len(), 1, "the lease ran out");
        assert_eq!(again.deliveries[0].record.id, leased_id);
        let failed = store.delivery(failed_id).await.unwrap().unwrap();
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(failed.attempts, vec![failed_attempt()]);
        assert_eq!(store.failed_since(e, 0).await.unwrap(), vec![failed_id]);
        assert_eq!(store.failed_since(e, 1_006).await.unwrap(), vec![]);
        assert!(store.redrive(failed_id, 10_000).await.unwrap());
        assert!(
            !store.redrive(failed_id, 10_000).await.unwrap(),
            "only once"
        );
        assert!(
            !store.redrive(waiting_id, 10_000).await.unwrap(),
            "not failed"
        );
        let redriven = store.claim(request(10_001)).await.unwrap();
        assert_eq!(redriven.deliveries.len(), 1);
        assert_eq!(redriven.deliveries[0].record.id, failed_id);
        store.close().await.unwrap();
        assert!(store.claim(request(0)).await.unwrap_err().is_closed());
    }

    #[tokio::test]
    async fn delivered_deliveries_are_pruned_and_failed_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
        let e = endpoint(&store).await;
        let (ok, bad) = (new_delivery(e, "a"), new_delivery(e, "b"));
        let (ok_id, bad_id) = (ok.record.id, bad.record.id);
        store.enqueue(vec![ok, bad]).await.unwrap();
        for claimed in store.claim(request(0)).await.unwrap().deliveries {
            let mut attempt = failed_attempt();
            let finish = if claimed.record.id == ok_id {
                attempt.result = AttemptResult::Response {
                    status: 200,
                    body: String::new(),
                };
                Finish::Delivered(attempt)
            } else {
                Finish::Failed(attempt)
            };
            store
                .finish(claimed.record.id, claimed.record.lease, finish)
                .await
                .unwrap();
        }
        assert_eq!(
            store.prune_delivered(1_005).await.unwrap(),
            0,
            "not old enough"
        );
        assert_eq!(store.prune_delivered(1_006).await.unwrap(), 1);
        assert!(store.delivery(ok_id).await.unwrap().is_none());
        assert!(store.delivery(bad_id).await.unwrap().is_some());
        assert_eq!(store.prune_delivered(i64::MAX).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn concurrent_operations_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path().join("store.redb")).unwrap();
        let e = endpoint(&store).await;
        let before = store.commits();
        let publishes = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(
                async move { store.enqueue(vec![new_delivery(e, &format!("r{i}"))]).await },
            )
        });
        for publish in publishes.collect::<Vec<_>>() {
            publish.await.unwrap().unwrap();
        }
        let commits = store.commits() - before;
        assert!(commits < 200, "200 enqueues took {commits} commits");
        let claim = store.claim(request(0)).await.unwrap();
        assert_eq!(claim.open, 200);
        assert_eq!(claim.deliveries.len(), 4, "the endpoint's cap");
    }

    #[tokio::test]
    async fn a_second_open_of_the_same_file_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let first = RedbStore::open(&path).unwrap();
        assert!(RedbStore::open(&path).is_err());
        drop(first);
        RedbStore::open(&path).unwrap();
    }
}
