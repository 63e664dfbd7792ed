//! Index sets held in memory ([`MemberSets`]): the index of the memory store.
//!
//! A set is an ordered set of members under its name. Nearly every member is a fixed
//! 24 bytes ([`index`](super::index): 8-byte time, 16-byte id), kept inline in the
//! B-tree's nodes as two big-endian integers (no allocation per member, integer
//! comparisons in byte order); a set that holds a longer member (unrouted retention
//! carries the organization) keeps byte strings.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Bound;

use super::index::{IndexEntry, Scan};

/// The length of a time-and-id member.
const FIXED: usize = 24;

/// A time-and-id member as integers that order as its bytes do.
type Fixed = (u64, u128);

fn fixed(member: &[u8]) -> Option<Fixed> {
    let time: [u8; 8] = member.get(..8)?.try_into().ok()?;
    let id: [u8; 16] = member.get(8..)?.try_into().ok()?;
    Some((u64::from_be_bytes(time), u128::from_be_bytes(id)))
}

fn fixed_bytes((time, id): Fixed) -> Vec<u8> {
    let mut member = Vec::with_capacity(FIXED);
    member.extend_from_slice(&time.to_be_bytes());
    member.extend_from_slice(&id.to_be_bytes());
    member
}

/// Ordered member sets by set name.
#[derive(Debug, Default)]
pub(crate) struct MemberSets {
    sets: HashMap<Vec<u8>, Members, BuildHasherDefault<NameHasher>>,
}

/// A fast hash of set names (a multiply-rotate over 8-byte words, as rustc's FxHash).
/// Not keyed: the sets of one store are few (a handful per organization, endpoint, event
/// type and resource), and every name is built by [`index`](super::index) from ids and
/// names the platform chose, not from data a receiver sends.
#[derive(Debug, Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0_u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug)]
enum Members {
    /// Every member is [`FIXED`] bytes long.
    Fixed(BTreeSet<Fixed>),
    /// Members of any length.
    Bytes(BTreeSet<Vec<u8>>),
}

impl Members {
    fn new(member: Vec<u8>) -> Self {
        match fixed(&member) {
            Some(fixed) => Self::Fixed(BTreeSet::from([fixed])),
            None => Self::Bytes(BTreeSet::from([member])),
        }
    }

    fn insert(&mut self, member: Vec<u8>) {
        match self {
            Self::Fixed(set) => match fixed(&member) {
                Some(fixed) => {
                    set.insert(fixed);
                }
                None => {
                    let mut bytes: BTreeSet<Vec<u8>> =
                        set.iter().copied().map(fixed_bytes).collect();
                    bytes.insert(member);
                    *self = Self::Bytes(bytes);
                }
            },
            Self::Bytes(set) => {
                set.insert(member);
            }
        }
    }

    fn remove(&mut self, member: &[u8]) {
        match self {
            Self::Fixed(set) => {
                if let Some(fixed) = fixed(member) {
                    set.remove(&fixed);
                }
            }
            Self::Bytes(set) => {
                set.remove(member);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Fixed(set) => set.is_empty(),
            Self::Bytes(set) => set.is_empty(),
        }
    }

    fn scan(&self, scan: &Scan) -> Vec<Vec<u8>> {
        let before_end = |member: &[u8]| scan.end.as_deref().is_none_or(|end| member < end);
        match self {
            Self::Fixed(set) => {
                // The first fixed member at or after `start`: `start` padded with zeros
                // (or cut to 24 bytes: a longer start sorts just after its first 24).
                let from = scan.start.as_deref().map_or(Bound::Unbounded, |start| {
                    let mut first = [0_u8; FIXED];
                    let n = start.len().min(FIXED);
                    first[..n].copy_from_slice(&start[..n]);
                    fixed(&first).map_or(Bound::Unbounded, Bound::Included)
                });
                set.range((from, Bound::Unbounded))
                    .map(|&member| fixed_bytes(member))
                    .take_while(|member| before_end(member))
                    // Only the first may lie before a start longer than a member.
                    .filter(|member| scan.contains(member))
                    .take(scan.limit)
                    .collect()
            }
            Self::Bytes(set) => {
                let start = scan
                    .start
                    .as_deref()
                    .map_or(Bound::Unbounded, Bound::Included);
                set.range::<[u8], _>((start, Bound::Unbounded))
                    .take_while(|member| before_end(member))
                    .take(scan.limit)
                    .cloned()
                    .collect()
            }
        }
    }
}

impl MemberSets {
    /// Adds `entry`, taking its bytes.
    pub(crate) fn insert(&mut self, entry: IndexEntry) {
        let IndexEntry { set, member } = entry;
        match self.sets.get_mut(set.as_slice()) {
            Some(members) => members.insert(member),
            None => {
                self.sets.insert(set, Members::new(member));
            }
        }
    }

    /// Removes `entry` if present.
    pub(crate) fn remove(&mut self, entry: &IndexEntry) {
        if let Some(members) = self.sets.get_mut(entry.set.as_slice()) {
            members.remove(&entry.member);
            if members.is_empty() {
                self.sets.remove(entry.set.as_slice());
            }
        }
    }

    /// The members of the scan's set within its bounds, in byte order, at most its limit.
    pub(crate) fn scan(&self, scan: &Scan) -> Vec<Vec<u8>> {
        self.sets
            .get(scan.set.as_slice())
            .map(|members| members.scan(scan))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(set: &[u8], member: &[u8]) -> IndexEntry {
        IndexEntry {
            set: set.to_vec(),
            member: member.to_vec(),
        }
    }

    #[test]
    fn fixed_and_longer_members_scan_in_byte_order_within_bounds() {
        let mut sets = MemberSets::default();
        for i in [5_u8, 1, 3] {
            sets.insert(entry(b"s", &[i; FIXED]));
        }
        let scan = |start: Option<Vec<u8>>, end: Option<Vec<u8>>, limit| Scan {
            set: b"s".to_vec(),
            start,
            end,
            limit,
        };
        let all = sets.scan(&scan(None, None, 10));
        assert_eq!(all, vec![vec![1; FIXED], vec![3; FIXED], vec![5; FIXED]]);
        // A short start (a time only) and a long one (a member and a zero: "after").
        assert_eq!(sets.scan(&scan(Some(vec![3]), None, 10)).len(), 2);
        let mut after = vec![3; FIXED];
        after.push(0);
        assert_eq!(
            sets.scan(&scan(Some(after), None, 10)),
            vec![vec![5; FIXED]]
        );
        assert_eq!(
            sets.scan(&scan(None, Some(vec![5]), 10)),
            vec![vec![1; FIXED], vec![3; FIXED]]
        );
        assert!(
            sets.scan(&scan(Some(vec![9]), Some(vec![2]), 10))
                .is_empty()
        );
        assert_eq!(sets.scan(&scan(None, None, 1)).len(), 1);

        // A longer member turns the set into byte strings, same order.
        let mut long = vec![4; FIXED];
        long.extend_from_slice(b"org");
        sets.insert(entry(b"s", &long));
        assert_eq!(sets.scan(&scan(None, None, 10))[2], long);
        sets.remove(&entry(b"s", &long));
        for i in [1_u8, 3, 5] {
            sets.remove(&entry(b"s", &[i; FIXED]));
        }
        assert!(sets.scan(&scan(None, None, 10)).is_empty());
        assert!(sets.sets.is_empty(), "an empty set is dropped");
    }
}
