//! Status machines as data, and which of two updates of a resource is the one to keep.
//!
//! Seed 001 asks receivers to "process events independently without relying on their
//! delivery order": a retried older update can arrive after a newer one. Each status type
//! ([`TransactionStatus`](super::TransactionStatus), [`WalletStatus`](super::WalletStatus),
//! [`ApprovalSetStatus`](super::ApprovalSetStatus)) says where each status sits in its flow
//! ([`Lifecycle::step`]), and each resource says whether an incoming update supersedes the
//! one the receiver holds ([`Supersedes::supersedes`]).
//!
//! ```
//! use webhook_core::domain::{Lifecycle, Supersedes, Transaction, TransactionStatus};
//!
//! let tx = |status: &str, updated_at: &str| -> Transaction {
//!     serde_json::from_value(serde_json::json!({
//!         "id": "tx-1", "status": status, "createdAt": "2025-05-08T14:25:00Z", "updatedAt": updated_at,
//!     }))
//!     .unwrap()
//! };
//! let held = tx("CONFIRMED", "2025-05-08T14:30:00Z");
//! let late = tx("PUBLISHED", "2025-05-08T14:29:00Z"); // older, delivered after
//! assert!(!late.supersedes(&held)); // skip it
//! assert!(held.supersedes(&late));
//! assert_eq!(TransactionStatus::Confirmed.step().map(|s| s.terminal), Some(true));
//! ```
//!
//! # The rule
//!
//! An incoming update supersedes the held one of the same resource (same `id`) when
//!
//! 1. the held status is terminal and the incoming one is not: **never** (a terminal
//!    status is final; an unknown status counts as not terminal);
//! 2. otherwise, when its `updatedAt` is later: **yes**; earlier: **no**;
//! 3. with equal `updatedAt`, when both statuses are known and the incoming one is later in
//!    the flow ([`Step::place`]): **yes**; otherwise (same place, or an unknown status on
//!    either side) **no**, so the receiver keeps what it has.
//!
//! Unknown statuses (receivers must accept them) are therefore ordered by `updatedAt`
//! alone and never replace a terminal status. A terminal status is replaced by another
//! terminal one with a later `updatedAt` (the platform changed its mind, e.g. `CONFIRMED`
//! then `FAILED` after a reorg: the later word wins). The relation is a strict partial
//! order: irreflexive (an update never supersedes itself, so a duplicate is skipped),
//! asymmetric and transitive (property tests below).

use std::cmp::Ordering;

use time::OffsetDateTime;

/// Where a known status sits in its resource's flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    /// The order in the flow, from 0 for the first status. Every terminal status of a
    /// machine has the same, last, place: they are alternative ends, not a sequence.
    pub place: u8,
    /// Whether no status follows this one.
    pub terminal: bool,
}

impl Step {
    /// A status that others follow.
    #[must_use]
    pub const fn active(place: u8) -> Self {
        Self {
            place,
            terminal: false,
        }
    }

    /// A final status.
    #[must_use]
    pub const fn terminal(place: u8) -> Self {
        Self {
            place,
            terminal: true,
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::super::TransactionStatus {}
    impl Sealed for super::super::WalletStatus {}
    impl Sealed for super::super::ApprovalSetStatus {}
    impl Sealed for super::super::Transaction {}
    impl Sealed for super::super::Wallet {}
    impl Sealed for super::super::ApprovalSet {}
    impl Sealed for super::super::Resource {}
}

/// A resource's status machine (SPEC §2): every known status with its [`Step`].
pub trait Lifecycle: sealed::Sealed + Sized + 'static {
    /// Every status this version knows, in flow order.
    fn known() -> &'static [Self];

    /// This status's place and terminality; `None` for a status this version does not know.
    fn step(&self) -> Option<Step>;

    /// The whole machine as data: each known status with its step, in flow order.
    fn machine() -> Vec<(&'static Self, Step)> {
        Self::known()
            .iter()
            .filter_map(|status| status.step().map(|step| (status, step)))
            .collect()
    }
}

/// What ordering needs from one update of a resource: when it changed, and its status's
/// step (`None` when the status is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    /// The resource's `updatedAt`.
    pub updated_at: OffsetDateTime,
    /// The step of its status, if known.
    pub step: Option<Step>,
}

impl Revision {
    /// The revision of a resource whose status is `status`.
    #[must_use]
    pub fn new(updated_at: OffsetDateTime, status: &impl Lifecycle) -> Self {
        Self {
            updated_at,
            step: status.step(),
        }
    }

    fn is_terminal(&self) -> bool {
        self.step.is_some_and(|step| step.terminal)
    }

    /// Whether this (incoming) revision supersedes `held`, by the rule in the
    /// [module docs](self).
    #[must_use]
    pub fn supersedes(&self, held: &Self) -> bool {
        if held.is_terminal() && !self.is_terminal() {
            return false;
        }
        match self.updated_at.cmp(&held.updated_at) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => {
                matches!((self.step, held.step), (Some(new), Some(old)) if new.place > old.place)
            }
        }
    }
}

/// Whether an incoming update of a resource supersedes the one the receiver holds.
pub trait Supersedes: sealed::Sealed {
    /// True when `self` (just received) should replace `held`; false for an update of
    /// another resource (a different `id` or domain), an older one, a duplicate, or a
    /// non-terminal update of a resource held in a terminal status. See the
    /// [module docs](self) for the rule.
    fn supersedes(&self, held: &Self) -> bool;
}

macro_rules! supersedes_by_revision {
    ($($resource:ty),+) => {$(
        impl Supersedes for $resource {
            fn supersedes(&self, held: &Self) -> bool {
                self.id == held.id
                    && Revision::new(self.updated_at, &self.status)
                        .supersedes(&Revision::new(held.updated_at, &held.status))
            }
        }
    )+};
}

supersedes_by_revision!(super::Transaction, super::Wallet, super::ApprovalSet);

impl Supersedes for super::Resource {
    /// Compares resources of the same domain; a resource of a domain this version does not
    /// know is ordered by its `updatedAt` (RFC 3339) alone, and never supersedes when either
    /// side lacks a string `id` or a readable `updatedAt`.
    fn supersedes(&self, held: &Self) -> bool {
        use super::Resource as R;
        match (self, held) {
            (R::Transaction(new), R::Transaction(old)) => new.supersedes(old),
            (R::Wallet(new), R::Wallet(old)) => new.supersedes(old),
            (R::Approval(new), R::Approval(old)) => new.supersedes(old),
            (R::Unknown(new), R::Unknown(old)) => {
                match (unknown_revision(new), unknown_revision(old)) {
                    (Some((new_id, new)), Some((old_id, old))) => {
                        new_id == old_id && new.supersedes(&old)
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// The `id` and revision of a resource of an unknown domain: its string `id` and RFC 3339
/// `updatedAt`, status unknown.
fn unknown_revision(json: &serde_json::Value) -> Option<(&str, Revision)> {
    let id = json.get("id")?.as_str()?;
    let updated_at = json.get("updatedAt")?.as_str()?;
    let updated_at =
        OffsetDateTime::parse(updated_at, &time::format_description::well_known::Rfc3339).ok()?;
    Some((
        id,
        Revision {
            updated_at,
            step: None,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::super::{
        ApprovalSet, ApprovalSetStatus, Resource, Transaction, TransactionStatus, Wallet,
        WalletStatus,
    };
    use super::*;

    /// The machines as SPEC §2 lists them: the statuses in order, `(terminal)` marked.
    #[test]
    fn machines_are_spec_section_2() {
        let names = |machine: Vec<(&'static TransactionStatus, Step)>| {
            machine
                .into_iter()
                .map(|(status, step)| (status.as_str(), step.place, step.terminal))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(TransactionStatus::machine()),
            [
                ("REQUESTED", 0, false),
                ("POLICY_CHECK_PENDING", 1, false),
                ("POLICY_CHECK_PASSED", 2, false),
                ("APPROVAL_CHECK_PENDING", 3, false),
                ("APPROVAL_CHECK_PASSED", 4, false),
                ("COMPILATION_PENDING", 5, false),
                ("COMPILED", 6, false),
                ("SIGNATURE_PENDING", 7, false),
                ("SIGNED", 8, false),
                ("PUBLISH_PENDING", 9, false),
                ("PUBLISHED", 10, false),
                ("CONFIRMATION_PENDING", 11, false),
                ("CONFIRMED", 12, true),
                ("REJECTED", 12, true),
                ("FAILED", 12, true),
            ]
        );
        let wallet: Vec<_> = WalletStatus::machine()
            .into_iter()
            .map(|(status, step)| (status.as_str(), step.place, step.terminal))
            .collect();
        assert_eq!(
            wallet,
            [
                ("CREATED", 0, false),
                ("PROVISIONING", 1, false),
                ("PROVISIONED", 2, true),
                ("PROVISIONING_FAILED", 2, true),
            ]
        );
        let approval: Vec<_> = ApprovalSetStatus::machine()
            .into_iter()
            .map(|(status, step)| (status.as_str(), step.place, step.terminal))
            .collect();
        assert_eq!(
            approval,
            [
                ("PENDING", 0, false),
                ("MET", 1, true),
                ("NOT_MET", 1, true),
                ("EXPIRED", 1, true),
                ("FAILED", 1, true),
            ]
        );
        // Every known status has a step; unknown ones have none and are not terminal.
        assert_eq!(
            TransactionStatus::machine().len(),
            TransactionStatus::KNOWN.len()
        );
        assert_eq!(WalletStatus::machine().len(), WalletStatus::KNOWN.len());
        assert_eq!(
            ApprovalSetStatus::machine().len(),
            ApprovalSetStatus::KNOWN.len()
        );
        let unknown = TransactionStatus::from("CANCELLED");
        assert_eq!(unknown.step(), None);
        assert!(!unknown.is_terminal());
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_746_714_000 + secs).unwrap()
    }

    fn tx(id: &str, status: &str, secs: i64) -> Transaction {
        serde_json::from_value(serde_json::json!({
            "id": id, "status": status, "createdAt": "2025-05-08T14:00:00Z",
            "updatedAt": super::super::format_timestamp(at(secs)),
        }))
        .unwrap()
    }

    #[test]
    fn the_rule_case_by_case() {
        let cases = [
            // (incoming, held, supersedes, why)
            (("PUBLISHED", 10), ("SIGNED", 5), true, "later updatedAt"),
            (
                ("SIGNED", 5),
                ("PUBLISHED", 10),
                false,
                "older, arrived late",
            ),
            (
                ("PUBLISHED", 5),
                ("SIGNED", 5),
                true,
                "same time, later in the flow",
            ),
            (
                ("SIGNED", 5),
                ("PUBLISHED", 5),
                false,
                "same time, earlier in the flow",
            ),
            (("SIGNED", 5), ("SIGNED", 5), false, "a duplicate"),
            (
                ("PUBLISHED", 20),
                ("CONFIRMED", 10),
                false,
                "terminal is final",
            ),
            (
                ("CANCELLED", 20),
                ("CONFIRMED", 10),
                false,
                "unknown is not terminal",
            ),
            (
                ("FAILED", 20),
                ("CONFIRMED", 10),
                true,
                "a later terminal word wins",
            ),
            (
                ("FAILED", 10),
                ("CONFIRMED", 10),
                false,
                "two ends at once: keep",
            ),
            (
                ("CONFIRMED", 10),
                ("CANCELLED", 20),
                false,
                "older, even if terminal",
            ),
            (
                ("CONFIRMED", 20),
                ("CANCELLED", 10),
                true,
                "later terminal over unknown",
            ),
            (("CANCELLED", 20), ("SIGNED", 10), true, "unknown, later"),
            (
                ("CANCELLED", 10),
                ("SIGNED", 10),
                false,
                "unknown at a tie: keep",
            ),
            (
                ("SIGNED", 10),
                ("CANCELLED", 10),
                false,
                "tie with an unknown held: keep",
            ),
            (
                ("CONFIRMED", 10),
                ("SIGNED", 10),
                true,
                "tie, terminal is last",
            ),
        ];
        for ((new_status, new_at), (old_status, old_at), expected, why) in cases {
            let incoming = tx("tx-1", new_status, new_at);
            let held = tx("tx-1", old_status, old_at);
            assert_eq!(
                incoming.supersedes(&held),
                expected,
                "{new_status}@{new_at} over {old_status}@{old_at}: {why}"
            );
        }
        assert!(
            !tx("tx-2", "PUBLISHED", 10).supersedes(&tx("tx-1", "SIGNED", 5)),
            "another transaction"
        );
    }

    #[test]
    fn resources_compare_within_their_domain() {
        let wallet = |status: &str, updated_at: &str| -> Wallet {
            serde_json::from_value(serde_json::json!({
                "id": "w-1", "status": status, "createdAt": "2025-05-08T14:00:00Z", "updatedAt": updated_at,
            }))
            .unwrap()
        };
        let provisioned = wallet("PROVISIONED", "2025-05-08T14:02:00Z");
        let provisioning = wallet("PROVISIONING", "2025-05-08T14:03:00Z");
        assert!(!provisioning.supersedes(&provisioned), "terminal is final");
        let approval = |status: &str, updated_at: &str| -> ApprovalSet {
            serde_json::from_value(serde_json::json!({
                "id": "a-1", "status": status, "createdAt": "2025-05-08T14:00:00Z", "updatedAt": updated_at,
            }))
            .unwrap()
        };
        assert!(
            approval("MET", "2025-05-08T14:01:00Z")
                .supersedes(&approval("PENDING", "2025-05-08T14:01:00Z"))
        );
        let r = |resource: Resource| resource;
        let w = r(Resource::Wallet(Box::new(provisioned.clone())));
        let p = r(Resource::Wallet(Box::new(provisioning)));
        // A terminal status stamped before a non-terminal one: neither replaces the other
        // (the terminal one is final, the other one newer), so the first held is kept.
        assert!(!w.supersedes(&p) && !p.supersedes(&w));
        let done = r(Resource::Wallet(Box::new(wallet(
            "PROVISIONED",
            "2025-05-08T14:04:00Z",
        ))));
        assert!(done.supersedes(&p) && !p.supersedes(&done));
        let t = r(Resource::Transaction(Box::new(tx("w-1", "SIGNED", 10_000))));
        assert!(!t.supersedes(&w) && !w.supersedes(&t), "different domains");
        let unknown = |json: serde_json::Value| Resource::Unknown(json);
        let later = unknown(serde_json::json!({"id": "p-1", "updatedAt": "2025-05-08T14:03:00Z"}));
        let earlier =
            unknown(serde_json::json!({"id": "p-1", "updatedAt": "2025-05-08T14:02:00+00:00"}));
        assert!(later.supersedes(&earlier) && !earlier.supersedes(&later));
        let other = unknown(serde_json::json!({"id": "p-2", "updatedAt": "2025-05-08T14:04:00Z"}));
        assert!(!other.supersedes(&earlier), "another resource");
        let undated = unknown(serde_json::json!({"id": "p-1"}));
        assert!(!undated.supersedes(&earlier) && !earlier.supersedes(&undated));
    }

    /// Any transaction status, known or not.
    fn status() -> impl Strategy<Value = TransactionStatus> {
        prop_oneof![
            proptest::sample::select(TransactionStatus::KNOWN.to_vec()),
            proptest::sample::select(vec!["CANCELLED", "REVERSED", ""])
                .prop_map(TransactionStatus::from),
        ]
    }

    /// Updates of one transaction, on a few seconds so that ties are common.
    fn update() -> impl Strategy<Value = Transaction> {
        (status(), 0i64..4).prop_map(|(status, secs)| tx("tx-1", status.as_str(), secs))
    }

    proptest! {
        #[test]
        fn no_update_supersedes_itself(a in update()) {
            prop_assert!(!a.supersedes(&a));
            prop_assert!(!a.supersedes(&a.clone()));
        }

        #[test]
        fn never_both_ways(a in update(), b in update()) {
            prop_assert!(!(a.supersedes(&b) && b.supersedes(&a)));
        }

        #[test]
        fn transitive(a in update(), b in update(), c in update()) {
            if a.supersedes(&b) && b.supersedes(&c) {
                prop_assert!(a.supersedes(&c));
            }
        }

        #[test]
        fn terminal_is_final_and_later_wins_otherwise(a in update(), b in update()) {
            if b.status.is_terminal() && !a.status.is_terminal() {
                prop_assert!(!a.supersedes(&b));
            } else if a.updated_at > b.updated_at {
                prop_assert!(a.supersedes(&b));
            } else if a.updated_at < b.updated_at {
                prop_assert!(!a.supersedes(&b));
            }
        }

        /// Whatever order a receiver gets updates in, keeping each one that supersedes
        /// what it holds ends with the same update: the latest one, or the latest
        /// terminal one (ties aside, which the rule settles by place).
        #[test]
        fn arrival_order_does_not_change_what_is_kept(
            updates in proptest::collection::vec(update(), 1..8),
            seed in any::<u64>(),
        ) {
            let keep = |order: &[Transaction]| {
                let mut held = order[0].clone();
                for incoming in &order[1..] {
                    if incoming.supersedes(&held) {
                        held = incoming.clone();
                    }
                }
                held
            };
            let mut shuffled = updates.clone();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let j = usize::try_from(state >> 33).unwrap() % (i + 1);
                shuffled.swap(i, j);
            }
            let (first, second) = (keep(&updates), keep(&shuffled));
            // Neither result supersedes the other: both are maximal, and maximal
            // updates that differ are ties the rule keeps whichever came first.
            prop_assert!(!first.supersedes(&second) && !second.supersedes(&first));
            for update in &updates {
                prop_assert!(!update.supersedes(&first), "{update:?} beats kept {first:?}");
            }
        }
    }
}
