//! The queue's bookkeeping in memory, shared by [`MemoryStore`](super::MemoryStore) and
//! [`RedbStore`](super::RedbStore): chains, due heads, leases and claims.
//!
//! The durable backend keeps records on disk and replays them into a [`Queue`] when it
//! opens; every change the queue makes is reported as a [`Change`] for the backend to write.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{ClaimRequest, Finish, StoreError};
use crate::delivery::{Delivery, DeliveryStatus, duration_millis};
use crate::ids::{DeliveryId, EndpointId};

const MIN_ID: DeliveryId = DeliveryId::MIN;

/// What an operation changed, for the backend to persist.
#[derive(Debug)]
pub(crate) enum Change {
    /// An open delivery was added or changed.
    Upsert(Delivery),
    /// A delivery finished and left the queue.
    Finished(Delivery),
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    cap: usize,
    enabled: bool,
}

/// Open deliveries and their indexes.
#[derive(Debug)]
pub(crate) struct Queue {
    open: HashMap<DeliveryId, Delivery>,
    /// Per (endpoint, resource key): open deliveries by seq. The first is the head.
    chains: HashMap<(EndpointId, String), BTreeMap<u64, DeliveryId>>,
    /// Per endpoint: chain heads by due time (lease end for in-flight ones).
    due: HashMap<EndpointId, BTreeSet<(i64, DeliveryId)>>,
    /// Endpoints by their earliest due head.
    endpoint_due: BTreeSet<(i64, EndpointId)>,
    endpoint_min: HashMap<EndpointId, i64>,
    /// Per endpoint: in-flight deliveries by lease end.
    leased: HashMap<EndpointId, BTreeSet<(i64, DeliveryId)>>,
    endpoints: HashMap<EndpointId, Limits>,
    next_seq: u64,
    next_lease: u64,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            chains: HashMap::new(),
            due: HashMap::new(),
            endpoint_due: BTreeSet::new(),
            endpoint_min: HashMap::new(),
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

    /// Adds a stored open record at startup, in any order; call [`Queue::rebuild`] after.
    pub(crate) fn load(&mut self, record: Delivery) {
        self.next_seq = self.next_seq.max(record.seq.saturating_add(1));
        self.next_lease = self.next_lease.max(record.lease.saturating_add(1));
        if record.status == DeliveryStatus::InFlight {
            self.leased
                .entry(record.endpoint)
                .or_default()
                .insert((record.due_at_ms, record.id));
        }
        self.chains
            .entry((record.endpoint, record.resource_key.clone()))
            .or_default()
            .insert(record.seq, record.id);
        self.open.insert(record.id, record);
    }

    /// Indexes every chain's head after [`Queue::load`].
    pub(crate) fn rebuild(&mut self) {
        self.due.clear();
        self.endpoint_due.clear();
        self.endpoint_min.clear();
        let heads: Vec<(EndpointId, i64, DeliveryId)> = self
            .chains
            .values()
            .filter_map(|chain| chain.values().next())
            .filter_map(|id| self.open.get(id))
            .map(|record| (record.endpoint, record.due_at_ms, record.id))
            .collect();
        for (endpoint, due_at, id) in heads {
            self.due.entry(endpoint).or_default().insert((due_at, id));
        }
        let endpoints: Vec<EndpointId> = self.due.keys().copied().collect();
        for endpoint in endpoints {
            self.refresh(endpoint);
        }
    }

    /// Adds a new delivery at the end of its chain; returns the record with its seq.
    pub(crate) fn push(&mut self, mut record: Delivery) -> Delivery {
        record.seq = self.next_seq;
        self.next_seq += 1;
        record.status = DeliveryStatus::Pending;
        record.lease = 0;
        let chain = self
            .chains
            .entry((record.endpoint, record.resource_key.clone()))
            .or_default();
        chain.insert(record.seq, record.id);
        if chain.len() == 1 {
            self.due
                .entry(record.endpoint)
                .or_default()
                .insert((record.due_at_ms, record.id));
            self.refresh(record.endpoint);
        }
        self.open.insert(record.id, record.clone());
        record
    }

    /// Puts a failed delivery back at the end of its chain, due at `now_ms`.
    pub(crate) fn requeue(&mut self, mut record: Delivery, now_ms: i64) -> Delivery {
        record.due_at_ms = now_ms;
        record.round_attempts = 0;
        record.finished_at_ms = None;
        self.push(record)
    }

    /// An open delivery.
    pub(crate) fn get(&self, id: DeliveryId) -> Option<&Delivery> {
        self.open.get(&id)
    }

    /// How many deliveries are open.
    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Leases due heads, fairly across endpoints. Returns the leased records and when the
    /// next claim could find more.
    pub(crate) fn claim(&mut self, request: &ClaimRequest) -> (Vec<Delivery>, Option<i64>) {
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
            let due_now: Vec<(i64, DeliveryId)> = self
                .due
                .get(&endpoint)
                .map(|heads| {
                    heads
                        .range(..(now.saturating_add(1), MIN_ID))
                        .take(take)
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            for (due_at, id) in due_now {
                let Some(record) = self.open.get_mut(&id) else {
                    continue;
                };
                let heads = self.due.entry(endpoint).or_default();
                heads.remove(&(due_at, id));
                heads.insert((lease_end, id));
                let leases = self.leased.entry(endpoint).or_default();
                if record.status == DeliveryStatus::InFlight {
                    leases.remove(&(record.due_at_ms, id));
                }
                leases.insert((lease_end, id));
                record.status = DeliveryStatus::InFlight;
                record.due_at_ms = lease_end;
                record.lease = self.next_lease;
                self.next_lease += 1;
                claimed.push(record.clone());
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

    /// Ends a lease.
    pub(crate) fn finish(
        &mut self,
        id: DeliveryId,
        lease: u64,
        finish: Finish,
    ) -> Result<Change, StoreError> {
        let (endpoint, old_due) = self
            .open
            .get(&id)
            .filter(|record| record.status == DeliveryStatus::InFlight && record.lease == lease)
            .map(|record| (record.endpoint, record.due_at_ms))
            .ok_or_else(StoreError::lease_lost)?;
        if let Some(leases) = self.leased.get_mut(&endpoint) {
            leases.remove(&(old_due, id));
            if leases.is_empty() {
                self.leased.remove(&endpoint);
            }
        }
        if let Some(heads) = self.due.get_mut(&endpoint) {
            heads.remove(&(old_due, id));
        }
        let change = match finish {
            Finish::Delivered(attempt) => self.close(id, attempt, DeliveryStatus::Delivered),
            Finish::Failed(attempt) => self.close(id, attempt, DeliveryStatus::Failed),
            Finish::Retry { attempt, at_ms } => self.reschedule(id, Some(attempt), at_ms),
            Finish::Release { at_ms } => self.reschedule(id, None, at_ms),
        };
        self.refresh(endpoint);
        change.ok_or_else(StoreError::lease_lost)
    }

    /// Takes a finished delivery out of the queue; the next in its chain becomes the head.
    fn close(
        &mut self,
        id: DeliveryId,
        attempt: crate::delivery::AttemptRecord,
        status: DeliveryStatus,
    ) -> Option<Change> {
        let mut record = self.open.remove(&id)?;
        record.lease = 0;
        record.round_attempts = record.round_attempts.saturating_add(1);
        record.finished_at_ms = Some(
            attempt
                .at_ms
                .saturating_add(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX)),
        );
        record.attempts.push(attempt);
        record.status = status;
        let key = (record.endpoint, record.resource_key.clone());
        let next_head = self.chains.get_mut(&key).and_then(|chain| {
            chain.remove(&record.seq);
            chain.values().next().copied()
        });
        match next_head.and_then(|head| self.open.get(&head)) {
            Some(head) => {
                let entry = (head.due_at_ms, head.id);
                self.due.entry(record.endpoint).or_default().insert(entry);
            }
            None => {
                self.chains.remove(&key);
            }
        }
        Some(Change::Finished(record))
    }

    /// Keeps a delivery at the head of its chain with a new due time.
    fn reschedule(
        &mut self,
        id: DeliveryId,
        attempt: Option<crate::delivery::AttemptRecord>,
        at_ms: i64,
    ) -> Option<Change> {
        let record = self.open.get_mut(&id)?;
        record.lease = 0;
        if let Some(attempt) = attempt {
            record.round_attempts = record.round_attempts.saturating_add(1);
            record.attempts.push(attempt);
        }
        record.status = DeliveryStatus::Pending;
        record.due_at_ms = at_ms;
        let endpoint = record.endpoint;
        let change = Change::Upsert(record.clone());
        self.due.entry(endpoint).or_default().insert((at_ms, id));
        Some(change)
    }

    /// Keeps `endpoint_due` in step with the endpoint's earliest head.
    fn refresh(&mut self, endpoint: EndpointId) {
        let earliest = self
            .due
            .get(&endpoint)
            .and_then(|heads| heads.first())
            .map(|(due_at, _)| *due_at);
        let previous = self.endpoint_min.get(&endpoint).copied();
        if previous == earliest {
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
    use crate::delivery::{AttemptRecord, AttemptResult};
    use crate::ids::{EventId, OrganizationId};

    fn record(endpoint: EndpointId, key: &str, due_at_ms: i64) -> Delivery {
        Delivery {
            id: DeliveryId::generate(),
            event: EventId::generate(),
            endpoint,
            organization: OrganizationId::from("org"),
            kind: "wallet.created".into(),
            resource_key: key.into(),
            seq: 0,
            status: DeliveryStatus::Pending,
            due_at_ms,
            lease: 0,
            round_attempts: 0,
            attempts: Vec::new(),
            created_at_ms: 0,
            finished_at_ms: None,
        }
    }

    fn attempt(status: u16) -> AttemptRecord {
        AttemptRecord {
            number: 1,
            at_ms: 0,
            latency_ms: 1,
            result: AttemptResult::Response {
                status,
                body: String::new(),
            },
        }
    }

    fn claim(queue: &mut Queue, now_ms: i64, limit: usize) -> Vec<Delivery> {
        claim_with(queue, now_ms, limit, HashMap::new()).0
    }

    fn claim_with(
        queue: &mut Queue,
        now_ms: i64,
        limit: usize,
        overrides: HashMap<EndpointId, usize>,
    ) -> (Vec<Delivery>, Option<i64>) {
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
        let first = queue.push(record(e, "r1", 0));
        let second = queue.push(record(e, "r1", 0));
        let other = queue.push(record(e, "r2", 0));
        let claimed: Vec<DeliveryId> = claim(&mut queue, 0, 10).iter().map(|d| d.id).collect();
        assert_eq!(claimed.len(), 2);
        assert!(claimed.contains(&first.id) && claimed.contains(&other.id));
        assert!(
            claim(&mut queue, 1, 10).is_empty(),
            "second waits for first"
        );

        // A retry keeps the head: the second still waits.
        let lease = queue.get(first.id).unwrap().lease;
        queue
            .finish(
                first.id,
                lease,
                Finish::Retry {
                    attempt: attempt(503),
                    at_ms: 5,
                },
            )
            .unwrap();
        assert!(claim(&mut queue, 4, 10).is_empty());
        let again = claim(&mut queue, 5, 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, first.id);

        // Delivered: the second becomes the head.
        queue
            .finish(first.id, again[0].lease, Finish::Delivered(attempt(200)))
            .unwrap();
        let next = claim(&mut queue, 6, 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, second.id);
    }

    #[test]
    fn expired_leases_are_claimed_again_and_old_tokens_refused() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 1, true);
        let d = queue.push(record(e, "r", 0));
        let first = claim(&mut queue, 0, 10);
        assert_eq!(first.len(), 1);
        assert!(
            claim(&mut queue, 9_999, 10).is_empty(),
            "leased, and the cap is 1"
        );
        let second = claim(&mut queue, 10_000, 10);
        assert_eq!(second.len(), 1, "lease ran out");
        assert_ne!(first[0].lease, second[0].lease);
        let stale = queue.finish(d.id, first[0].lease, Finish::Delivered(attempt(200)));
        assert!(stale.unwrap_err().is_lease_lost());
        assert!(matches!(
            queue.finish(d.id, second[0].lease, Finish::Delivered(attempt(200))),
            Ok(Change::Finished(_))
        ));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn caps_overrides_and_fairness_between_endpoints() {
        let mut queue = Queue::default();
        let dead = EndpointId::generate();
        let healthy = EndpointId::generate();
        queue.set_endpoint(dead, 2, true);
        queue.set_endpoint(healthy, 8, true);
        for i in 0..100 {
            queue.push(record(dead, &format!("r{i}"), i));
        }
        let fresh = queue.push(record(healthy, "h", 200));
        let claimed = claim(&mut queue, 200, 10);
        let to_dead = claimed.iter().filter(|d| d.endpoint == dead).count();
        assert_eq!(to_dead, 2, "the dead endpoint's backlog is capped");
        assert!(
            claimed.iter().any(|d| d.id == fresh.id),
            "first attempt not stuck"
        );

        let paused: HashMap<_, _> = [(dead, 0)].into();
        let (more, next_due) = claim_with(&mut queue, 300, 10, paused);
        assert!(more.is_empty());
        assert_eq!(next_due, Some(10_200), "only the lease ends remain ahead");

        queue.set_endpoint(dead, 2, false);
        assert!(
            claim(&mut queue, 20_000, 10)
                .iter()
                .all(|d| d.endpoint != dead)
        );
    }

    #[test]
    fn reload_rebuilds_chains_and_leases() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 8, true);
        let a = queue.push(record(e, "r", 0));
        let b = queue.push(record(e, "r", 0));
        let leased = claim(&mut queue, 0, 10);
        assert_eq!(leased.len(), 1);
        let mut records = vec![
            queue.get(b.id).unwrap().clone(),
            queue.get(a.id).unwrap().clone(),
        ];
        records.reverse();

        let mut reloaded = Queue::default();
        reloaded.set_endpoint(e, 8, true);
        for r in records.into_iter().rev() {
            reloaded.load(r);
        }
        reloaded.rebuild();
        assert!(
            claim(&mut reloaded, 5_000, 10).is_empty(),
            "a is still leased"
        );
        let again = claim(&mut reloaded, 10_000, 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, a.id);
        assert!(again[0].lease > leased[0].lease, "tokens never repeat");
    }

    #[test]
    fn redrive_goes_to_the_end_of_the_chain() {
        let mut queue = Queue::default();
        let e = EndpointId::generate();
        queue.set_endpoint(e, 8, true);
        let a = queue.push(record(e, "r", 0));
        let claimed = claim(&mut queue, 0, 10);
        let Change::Finished(failed) = queue
            .finish(a.id, claimed[0].lease, Finish::Failed(attempt(400)))
            .unwrap()
        else {
            panic!("finished")
        };
        assert_eq!(failed.status, DeliveryStatus::Failed);
        assert_eq!(failed.round_attempts, 1);
        let b = queue.push(record(e, "r", 0));
        let again = queue.requeue(failed, 50);
        assert_eq!(again.round_attempts, 0);
        assert!(again.seq > b.seq);
        let next = claim(&mut queue, 100, 10);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, b.id);
    }
}
