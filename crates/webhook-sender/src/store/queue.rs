//! The queue's bookkeeping in memory, shared by [`MemoryStore`](super::MemoryStore) and
//! [`RedbStore`](super::RedbStore): chains, due heads, leases and claims.
//!
//! The queue holds only what claims need, not the records: per open delivery its place
//! (endpoint, a 64-bit hash of its resource key, `seq`), its id and its due time, in
//! B-trees that grow a node at a time (no table doubling, so no moment with two copies of a
//! large table). A million deliveries queued for a dead endpoint cost about 100 MB here,
//! whatever their payloads and attempt histories. The backend keeps the records (a map, or
//! redb's `open_deliveries` table) and applies each transition the queue decides to them:
//! [`Leased::apply`] for a claim, [`settle`] for a finish.
//!
//! Two resource keys whose hashes collide share a chain: their deliveries are then sent in
//! order and one at a time together, which is stricter than needed but never wrong. The
//! hash is keyed per queue ([`RandomState`]), so nobody can aim for collisions, and is
//! recomputed from the stored key when the durable store reloads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};

use super::record::DeliveryRecord;
use super::{ClaimRequest, Finish, StoreError};
use crate::delivery::{DeliveryStatus, duration_millis};
use crate::ids::{DeliveryId, EndpointId};

const MIN_ID: DeliveryId = DeliveryId::MIN;

/// A delivery's place: its endpoint, its chain (resource-key hash) and its `seq`.
type Place = (EndpointId, u64, u64);

/// An open delivery as the queue sees it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: DeliveryId,
    /// When it is due; for an in-flight head, when its lease ends.
    due_at_ms: i64,
}

/// The lease on an in-flight delivery (possibly expired).
#[derive(Debug, Clone, Copy)]
struct Lease {
    place: Place,
    token: u64,
    until_ms: i64,
}

/// A delivery whose lease was released by [`Queue::release`] and whose next step waits for
/// [`Queue::settle_parked`]: until then it is neither claimable nor in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parked(Place);

/// A delivery ready to enter the queue with [`Queue::insert`], its `seq` already given by
/// [`Queue::reserve_seq`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    place: Place,
    slot: Slot,
}

/// A lease a claim took, for the backend to write into the delivery's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Leased {
    /// The delivery.
    pub(crate) id: DeliveryId,
    /// The token to finish it with.
    pub(crate) token: u64,
    /// When the lease ends, Unix ms.
    pub(crate) until_ms: i64,
}

impl Leased {
    /// Marks the record in flight under this lease.
    pub(crate) fn apply(&self, record: &mut DeliveryRecord) {
        record.status = DeliveryStatus::InFlight;
        record.due_at_ms = self.until_ms;
        record.lease = self.token;
    }
}

/// Applies how a lease ended to the delivery's record, as [`Queue::finish`] did to the
/// queue; returns whether the delivery is finished (delivered or failed).
pub(crate) fn settle(record: &mut DeliveryRecord, finish: Finish) -> bool {
    record.lease = 0;
    let (attempt, status, due_at_ms) = match finish {
        Finish::Delivered(attempt) => (Some(attempt), DeliveryStatus::Delivered, None),
        Finish::Failed(attempt) => (Some(attempt), DeliveryStatus::Failed, None),
        Finish::Retry { attempt, at_ms } => (Some(attempt), DeliveryStatus::Pending, Some(at_ms)),
        Finish::Release { at_ms } => (None, DeliveryStatus::Pending, Some(at_ms)),
    };
    if let Some(attempt) = attempt {
        record.round_attempts = record.round_attempts.saturating_add(1);
        if status.is_terminal() {
            record.finished_at_ms = Some(
                attempt
                    .at_ms
                    .saturating_add(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX)),
            );
        }
        record.attempts.push(attempt);
    }
    record.status = status;
    if let Some(due_at_ms) = due_at_ms {
        record.due_at_ms = due_at_ms;
    }
    status.is_terminal()
}

/// When a finished lease makes the delivery due again: `None` when it leaves its chain
/// (delivered or failed).
pub(crate) fn due_again(finish: &Finish) -> Option<i64> {
    match finish {
        Finish::Delivered(_) | Finish::Failed(_) => None,
        Finish::Retry { at_ms, .. } | Finish::Release { at_ms } => Some(*at_ms),
    }
}

/// Prepares a failed record to go back into the queue (redrive): due at `now_ms`, with a
/// fresh retry round. Pass it to [`Queue::push`] next.
pub(crate) fn reopen(record: &mut DeliveryRecord, now_ms: i64) {
    record.status = DeliveryStatus::Pending;
    record.due_at_ms = now_ms;
    record.round_attempts = 0;
    record.finished_at_ms = None;
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    cap: usize,
    enabled: bool,
}

/// Open deliveries and their indexes.
#[derive(Debug)]
pub(crate) struct Queue {
    hasher: RandomState,
    /// Every open delivery by place; the first of each (endpoint, chain) is its head.
    open: BTreeMap<Place, Slot>,
    /// Per endpoint: chain heads as (due time, chain, seq).
    due: HashMap<EndpointId, BTreeSet<(i64, u64, u64)>>,
    /// Endpoints by their earliest due head.
    endpoint_due: BTreeSet<(i64, EndpointId)>,
    endpoint_min: HashMap<EndpointId, i64>,
    /// In-flight deliveries.
    leases: HashMap<DeliveryId, Lease>,
    /// Per endpoint: in-flight deliveries by lease end.
    leased: HashMap<EndpointId, BTreeSet<(i64, DeliveryId)>>,
    endpoints: HashMap<EndpointId, Limits>,
    next_seq: u64,
    next_lease: u64,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            open: BTreeMap::new(),
            due: HashMap::new(),
            endpoint_due: BTreeSet::new(),
            endpoint_min: HashMap::new(),
            leases: HashMap::new(),
            leased: HashMap::new(),
            endpoints: HashMap::new(),
            next_seq: 0,
            // Token 0 means "no lease".
            next_lease: 1,
        }
    }
}

impl Queue {
    /// Sets an endpoint's concurrency cap and enabled flag.
    pub(crate) fn set_endpoint(&mut self, id: EndpointId, cap: u32, enabled: bool) {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        self.endpoints.insert(id, Limits { cap, enabled });
    }

    fn place(&self, record: &DeliveryRecord) -> Place {
        let chain = self.hasher.hash_one(record.resource_key.as_str());
        (record.endpoint, chain, record.seq)
    }

    /// Adds a stored open record at startup, in any order; call [`Queue::rebuild`] after.
    pub(crate) fn load(&mut self, record: &DeliveryRecord) {
        self.next_seq = self.next_seq.max(record.seq.saturating_add(1));
        self.next_lease = self.next_lease.max(record.lease.saturating_add(1));
        let place = self.place(record);
        if record.status == DeliveryStatus::InFlight {
            self.leased
                .entry(record.endpoint)
                .or_default()
                .insert((record.due_at_ms, record.id));
            self.leases.insert(
                record.id,
                Lease {
                    place,
                    token: record.lease,
                    until_ms: record.due_at_ms,
                },
            );
        }
        self.open.insert(
            place,
            Slot {
                id: record.id,
                due_at_ms: record.due_at_ms,
            },
        );
    }

    /// Indexes every chain's head after [`Queue::load`].
    pub(crate) fn rebuild(&mut self) {
        self.due.clear();
        self.endpoint_due.clear();
        self.endpoint_min.clear();
        let mut previous: Option<(EndpointId, u64)> = None;
        for (&(endpoint, chain, seq), slot) in &self.open {
            if previous == Some((endpoint, chain)) {
                continue;
            }
            previous = Some((endpoint, chain));
            self.due
                .entry(endpoint)
                .or_default()
                .insert((slot.due_at_ms, chain, seq));
        }
        let endpoints: Vec<EndpointId> = self.due.keys().copied().collect();
        for endpoint in endpoints {
            self.refresh(endpoint);
        }
    }

    /// Adds a new delivery at the end of its chain: sets its `seq`, status pending, no lease.
    pub(crate) fn push(&mut self, record: &mut DeliveryRecord) {
        self.prepare(record);
        let entry = self.entry(record);
        self.insert(entry);
    }

    /// Gives a new delivery its `seq` (status pending, no lease) without queueing it yet:
    /// a backend that must not hand it out before it is durable calls [`Queue::insert`]
    /// with its [`Queue::entry`] once it is. Entries must be inserted in `seq` order per
    /// chain, which a single writer does by inserting in the order it prepared.
    pub(crate) fn prepare(&mut self, record: &mut DeliveryRecord) {
        record.seq = self.next_seq;
        self.next_seq += 1;
        record.status = DeliveryStatus::Pending;
        record.lease = 0;
    }

    /// What [`Queue::insert`] needs of a prepared record.
    pub(crate) fn entry(&self, record: &DeliveryRecord) -> Entry {
        Entry {
            place: self.place(record),
            slot: Slot {
                id: record.id,
                due_at_ms: record.due_at_ms,
            },
        }
    }

    /// Queues a prepared delivery at the end of its chain.
    pub(crate) fn insert(&mut self, entry: Entry) {
        let Entry { place, slot } = entry;
        let (endpoint, chain, seq) = place;
        let is_head = self
            .open
            .range((endpoint, chain, 0)..=(endpoint, chain, u64::MAX))
            .next()
            .is_none();
        self.open.insert(place, slot);
        if is_head {
            self.due
                .entry(endpoint)
                .or_default()
                .insert((slot.due_at_ms, chain, seq));
            self.refresh(endpoint);
        }
    }

    /// How many deliveries are open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Leases due heads, fairly across endpoints. Returns the leases taken and when the
    /// next claim could find more.
    pub(crate) fn claim(&mut self, request: &ClaimRequest) -> (Vec<Leased>, Option<i64>) {
        let now = request.now_ms;
        let lease_end = now.saturating_add(duration_millis(request.lease).max(1));
        let candidates: Vec<EndpointId> = self
            .endpoint_due
            .range(..(now.saturating_add(1), EndpointId::MIN))
            .map(|(_, endpoint)| *endpoint)
            .collect();
        let mut claimed = Vec::new();
        let mut cut_short = false;
        for endpoint in candidates {
            let left = request.limit.saturating_sub(claimed.len());
            if left == 0 {
                cut_short = true;
                break;
            }
            let Some(limits) = self.endpoints.get(&endpoint).copied() else {
                continue;
            };
            if !limits.enabled {
                continue;
            }
            let cap = request
                .overrides
                .get(&endpoint)
                .map_or(limits.cap, |cap| (*cap).min(limits.cap));
            let in_flight = self.leased.get(&endpoint).map_or(0, |leases| {
                leases.range((now.saturating_add(1), MIN_ID)..).count()
            });
            let take = cap.saturating_sub(in_flight).min(left);
            if take == 0 {
                continue;
            }
            let due_now: Vec<(i64, u64, u64)> = self
                .due
                .get(&endpoint)
                .map(|heads| {
                    heads
                        .range(..(now.saturating_add(1), 0, 0))
                        .take(take)
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            for (due_at, chain, seq) in due_now {
                let place = (endpoint, chain, seq);
                let Some(slot) = self.open.get_mut(&place) else {
                    continue;
                };
                slot.due_at_ms = lease_end;
                let id = slot.id;
                let heads = self.due.entry(endpoint).or_default();
                heads.remove(&(due_at, chain, seq));
                heads.insert((lease_end, chain, seq));
                let token = self.next_lease;
                self.next_lease += 1;
                let lease = Lease {
                    place,
                    token,
                    until_ms: lease_end,
                };
                let leases = self.leased.entry(endpoint).or_default();
                if let Some(expired) = self.leases.insert(id, lease) {
                    leases.remove(&(expired.until_ms, id));
                }
                leases.insert((lease_end, id));
                claimed.push(Leased {
                    id,
                    token,
                    until_ms: lease_end,
                });
            }
            self.refresh(endpoint);
        }
        let next_due = if cut_short || claimed.len() >= request.limit {
            Some(now)
        } else {
            self.endpoint_due
                .range((now.saturating_add(1), EndpointId::MIN)..)
                .next()
                .map(|(due_at, _)| *due_at)
        };
        (claimed, next_due)
    }

    /// Ends the lease `token` on `id`: a delivered or failed delivery leaves its chain (the
    /// next one becomes the head), a retried or released one stays the head with a new due
    /// time. Returns whether it left. Apply the same `finish` to the record with [`settle`].
    ///
    /// # Errors
    /// [`StoreError::lease_lost`] when `id` is not in flight under `token`.
    pub(crate) fn finish(
        &mut self,
        id: DeliveryId,
        token: u64,
        finish: &Finish,
    ) -> Result<bool, StoreError> {
        let parked = self.release(id, token)?;
        Ok(self.settle_parked(parked, due_again(finish)))
    }

    /// The first half of [`Queue::finish`]: ends the lease (the endpoint's slot is free at
    /// once) and parks the delivery, which stays out of claims until
    /// [`Queue::settle_parked`]. A durable backend settles it once the finish is on disk,
    /// so that neither a retry nor the next delivery of the chain goes out before the
    /// change that allows it is durable.
    ///
    /// # Errors
    /// [`StoreError::lease_lost`] when `id` is not in flight under `token`.
    pub(crate) fn release(&mut self, id: DeliveryId, token: u64) -> Result<Parked, StoreError> {
        let lease = self
            .leases
            .get(&id)
            .copied()
            .filter(|lease| lease.token == token)
            .ok_or_else(StoreError::lease_lost)?;
        self.leases.remove(&id);
        let (endpoint, chain, seq) = lease.place;
        if let Some(leases) = self.leased.get_mut(&endpoint) {
            leases.remove(&(lease.until_ms, id));
            if leases.is_empty() {
                self.leased.remove(&endpoint);
            }
        }
        if let Some(heads) = self.due.get_mut(&endpoint) {
            heads.remove(&(lease.until_ms, chain, seq));
        }
        self.refresh(endpoint);
        Ok(Parked(lease.place))
    }

    /// The second half of [`Queue::finish`]: `due_again` is when a retried or released
    /// delivery is due ([`due_again`]); `None` means it left its chain. Returns whether it
    /// left.
    pub(crate) fn settle_parked(&mut self, parked: Parked, due_again: Option<i64>) -> bool {
        let place = parked.0;
        let (endpoint, chain, seq) = place;
        let left = match due_again {
            Some(at_ms) => {
                if let Some(slot) = self.open.get_mut(&place) {
                    slot.due_at_ms = at_ms;
                    self.due
                        .entry(endpoint)
                        .or_default()
                        .insert((at_ms, chain, seq));
                }
                false
            }
            None => {
                self.open.remove(&place);
                let next = self
                    .open
                    .range((endpoint, chain, seq)..=(endpoint, chain, u64::MAX))
                    .next()
                    .map(|(&(_, _, next_seq), slot)| (slot.due_at_ms, chain, next_seq));
                if let Some(head) = next {
                    self.due.entry(endpoint).or_default().insert(head);
                }
                true
            }
        };
        self.refresh(endpoint);
        left
    }

    /// Takes up to `limit` open deliveries of `endpoint` out of the queue (pending, leased
    /// or parked; their leases end), chain by chain from the front, and returns them. A
    /// deleted endpoint's queue is emptied this way in bounded steps.
    pub(crate) fn remove_open(&mut self, endpoint: EndpointId, limit: usize) -> Vec<DeliveryId> {
        let places: Vec<(Place, Slot)> = self
            .open
            .range((endpoint, 0, 0)..=(endpoint, u64::MAX, u64::MAX))
            .take(limit)
            .map(|(place, slot)| (*place, *slot))
            .collect();
        let mut removed = Vec::with_capacity(places.len());
        let mut last_chain = None;
        for (place, slot) in places {
            let (_, chain, seq) = place;
            if let Some(heads) = self.due.get_mut(&endpoint) {
                heads.remove(&(slot.due_at_ms, chain, seq));
            }
            if let Some(lease) = self.leases.remove(&slot.id) {
                if let Some(leases) = self.leased.get_mut(&endpoint) {
                    leases.remove(&(lease.until_ms, slot.id));
                }
            }
            self.open.remove(&place);
            removed.push(slot.id);
            last_chain = Some(chain);
        }
        if self.leased.get(&endpoint).is_some_and(BTreeSet::is_empty) {
            self.leased.remove(&endpoint);
        }
        // The limit may have cut a chain: what is left of it has a new head.
        if let Some(chain) = last_chain {
            let next = self
                .open
                .range((endpoint, chain, 0)..=(endpoint, chain, u64::MAX))
                .next()
                .map(|(&(_, _, seq), slot)| (slot.due_at_ms, chain, seq));
            if let Some(head) = next {
                self.due.entry(endpoint).or_default().insert(head);
            }
        }
        self.refresh(endpoint);
        removed
    }

    /// Forgets an endpoint's limits: nothing of it is claimed any more.
    pub(crate) fn remove_endpoint(&mut self, endpoint: EndpointId) {
        self.endpoints.remove(&endpoint);
    }

    /// Keeps `endpoint_due` in step with the endpoint's earliest head.
    fn refresh(&mut self, endpoint: EndpointId) {
        let earliest = self
            .due
            .get(&endpoint)
            .and_then(|heads| heads.first())
            .map(|(due_at, _, _)| *due_at);
        let previous = self.endpoint_min.get(&endpoint).copied();
        if previous == earliest {
            if earliest.is_none() {
                self.due.remove(&endpoint);
            }
            return;
        }
        if let Some(previous) = previous {
            self.endpoint_due.remove(&(previous, endpoint));
        }
        match earliest {
            Some(earliest) => {
                self.endpoint_due.insert((earliest, endpoint));
                self.endpoint_min.insert(endpoint, earliest);
            }
            None => {
                self.endpoint_min.remove(&endpoint);
                self.due.remove(&endpoint);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::delivery::AttemptRecord;
    use crate::store::fixture;

    fn record(endpoint: EndpointId, key: &str, due_at_ms: i64) -> DeliveryRecord {
        fixture::delivery(endpoint, key, due_at_ms)
    }

    fn push(queue: &mut Queue, endpoint: EndpointId, key: &str, due_at_ms: i64) -> DeliveryRecord {
        let mut record = record(endpoint, key, due_at_ms);
        queue.push(&mut record);
        record
    }

    fn attempt(status: u16) -> AttemptRecord {
        fixture::response(status, 0, 1)
    }

    fn claim(queue: &mut Queue, now_ms: i64, limit: usize) -> Vec<Leased> {
        claim_with(queue, now_ms, limit, HashMap::new()).0
    }

    fn claim_with(
        queue: &mut Queue,
        now_ms: i64,
        limit: usize,
        overrides: HashMap<EndpointId, usize>,
    ) -> (Vec<Leased>, Option<i64>) {
        queue.claim(&ClaimRequest {
            now_ms,
            limit,
            lease: Duration::from_secs(10),
            overrides,
        })
    }

    #[test]
    fn one_resource_goes_in_order_and_never_two_at_once() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 8, true);
        let first = push(&mut queue, e, "r1", 0);
        let second = push(&mut queue, e, "r1", 0);
        let other = push(&mut queue, e, "r2", 0);
        assert!(first.seq < second.seq && second.seq < other.seq);
        let leases = claim(&mut queue, 0, 10);
        let claimed: Vec<DeliveryId> = leases.iter().map(|l| l.id).collect();
        assert_eq!(claimed.len(), 2);
        assert!(claimed.contains(&first.id) && claimed.contains(&other.id));
        assert!(
            claim(&mut queue, 1, 10).is_empty(),
            "second waits for first"
        );

        // A retry keeps the head: the second still waits.
        let token = leases.iter().find(|l| l.id == first.id).unwrap().token;
        let retry = Finish::Retry {
            attempt: attempt(503),
            at_ms: 5,
        };
        assert!(!queue.finish(first.id, token, &retry).unwrap());
        assert!(claim(&mut queue, 4, 10).is_empty());
        let again = claim(&mut queue, 5, 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, first.id);

        // Delivered: the second becomes the head.
        let delivered = Finish::Delivered(attempt(200));
        assert!(queue.finish(first.id, again[0].token, &delivered).unwrap());
        let next = claim(&mut queue, 6, 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, second.id);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn expired_leases_are_claimed_again_and_old_tokens_refused() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 1, true);
        let d = push(&mut queue, e, "r", 0);
        let first = claim(&mut queue, 0, 10);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].until_ms, 10_000);
        assert!(
            claim(&mut queue, 9_999, 10).is_empty(),
            "leased, and the cap is 1"
        );
        let second = claim(&mut queue, 10_000, 10);
        assert_eq!(second.len(), 1, "lease ran out");
        assert_ne!(first[0].token, second[0].token);
        let delivered = Finish::Delivered(attempt(200));
        let stale = queue.finish(d.id, first[0].token, &delivered);
        assert!(stale.unwrap_err().is_lease_lost());
        assert!(queue.finish(d.id, second[0].token, &delivered).unwrap());
        assert_eq!(queue.len(), 0);
        let again = queue.finish(d.id, second[0].token, &delivered);
        assert!(again.unwrap_err().is_lease_lost(), "a lease ends once");
    }

    #[test]
    fn caps_overrides_and_fairness_between_endpoints() {
        let mut queue = Queue::default();
        let dead = EndpointId::generate();
        let healthy = EndpointId::generate();
        queue.set_endpoint(dead, 2, true);
        queue.set_endpoint(healthy, 8, true);
        for i in 0..100 {
            push(&mut queue, dead, &format!("r{i}"), i);
        }
        let fresh = push(&mut queue, healthy, "h", 200);
        let claimed = claim(&mut queue, 200, 10);
        let to_dead = claimed.iter().filter(|l| l.id != fresh.id).count();
        assert_eq!(to_dead, 2, "the dead endpoint's backlog is capped");
        assert!(
            claimed.iter().any(|l| l.id == fresh.id),
            "first attempt not stuck"
        );

        let paused: HashMap<_, _> = [(dead, 0)].into();
        let (more, next_due) = claim_with(&mut queue, 300, 10, paused);
        assert!(more.is_empty());
        assert_eq!(next_due, Some(10_200), "only the lease ends remain ahead");

        queue.set_endpoint(dead, 2, false);
        let later = claim(&mut queue, 20_000, 10);
        assert_eq!(later.len(), 1, "only the healthy endpoint's expired lease");
        assert_eq!(later[0].id, fresh.id);
    }

    #[test]
    fn reload_rebuilds_chains_and_leases() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 8, true);
        let mut a = push(&mut queue, e, "r", 0);
        let b = push(&mut queue, e, "r", 0);
        let leased = claim(&mut queue, 0, 10);
        assert_eq!(leased.len(), 1);
        leased[0].apply(&mut a);

        let mut reloaded = Queue::default();
        reloaded.set_endpoint(e, 8, true);
        reloaded.load(&b);
        reloaded.load(&a);
        reloaded.rebuild();
        assert_eq!(reloaded.len(), 2);
        assert!(
            claim(&mut reloaded, 5_000, 10).is_empty(),
            "a is still leased"
        );
        let again = claim(&mut reloaded, 10_000, 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, a.id);
        assert!(again[0].token > leased[0].token, "tokens never repeat");
        let failed = Finish::Failed(attempt(400));
        assert!(
            reloaded
                .finish(a.id, leased[0].token, &failed)
                .unwrap_err()
                .is_lease_lost(),
            "the reloaded lease was taken over"
        );
        assert!(reloaded.finish(a.id, again[0].token, &failed).unwrap());
        let next = claim(&mut reloaded, 10_001, 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, b.id);
        let mut c = record(e, "r", 0);
        reloaded.push(&mut c);
        assert!(c.seq > b.seq, "seq continues after the stored ones");
    }

    #[test]
    fn redrive_goes_to_the_end_of_the_chain() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 8, true);
        let mut a = push(&mut queue, e, "r", 0);
        let claimed = claim(&mut queue, 0, 10);
        claimed[0].apply(&mut a);
        let failed = Finish::Failed(attempt(400));
        assert!(queue.finish(a.id, claimed[0].token, &failed).unwrap());
        assert!(settle(&mut a, failed));
        assert_eq!(a.status, DeliveryStatus::Failed);
        assert_eq!(a.round_attempts, 1);
        assert_eq!(a.finished_at_ms, Some(1));
        let b = push(&mut queue, e, "r", 0);
        reopen(&mut a, 50);
        queue.push(&mut a);
        assert_eq!(a.round_attempts, 0);
        assert_eq!(a.status, DeliveryStatus::Pending);
        assert!(a.seq > b.seq);
        let next = claim(&mut queue, 100, 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, b.id);
    }

    #[test]
    fn settle_records_retries_and_releases() {
        let mut d = record(EndpointId::generate(), "r", 0);
        d.lease = 7;
        let retry = Finish::Retry {
            attempt: attempt(503),
            at_ms: 900,
        };
        assert!(!settle(&mut d, retry));
        assert_eq!(
            (d.status, d.due_at_ms, d.lease, d.round_attempts),
            (DeliveryStatus::Pending, 900, 0, 1)
        );
        assert_eq!(d.attempts.len(), 1);
        assert!(!settle(&mut d, Finish::Release { at_ms: 1_000 }));
        assert_eq!((d.due_at_ms, d.round_attempts), (1_000, 1));
        assert!(d.finished_at_ms.is_none());
        assert!(settle(&mut d, Finish::Delivered(attempt(200))));
        assert_eq!(d.status, DeliveryStatus::Delivered);
        assert_eq!(d.attempts.len(), 2);
    }
}
