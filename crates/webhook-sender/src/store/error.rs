//! [`StoreError`]: what a backend reports, opaque with predicates.

use std::fmt;

/// A store failure. Opaque, like the engine's error; backends build it with
/// [`StoreError::backend`].
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreErrorKind {
    Backend,
    LeaseLost,
    Closed,
    Corrupt,
    Incompatible,
}

impl StoreError {
    /// The backend failed (I/O, database, network).
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Backend,
            source: Some(source.into()),
        }
    }

    /// The delivery is not in flight under the given lease.
    #[must_use]
    pub fn lease_lost() -> Self {
        Self {
            kind: StoreErrorKind::LeaseLost,
            source: None,
        }
    }

    /// The store was closed.
    #[must_use]
    pub fn closed() -> Self {
        Self {
            kind: StoreErrorKind::Closed,
            source: None,
        }
    }

    /// A stored record could not be decoded.
    pub fn corrupt(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Corrupt,
            source: Some(source.into()),
        }
    }

    /// The store was written by a newer version of this crate (a schema or record format
    /// this build does not know): it is refused rather than misread.
    pub fn incompatible(message: impl Into<String>) -> Self {
        Self {
            kind: StoreErrorKind::Incompatible,
            source: Some(message.into().into()),
        }
    }

    /// Whether the store holds a newer schema or record format than this build reads.
    #[must_use]
    pub fn is_incompatible(&self) -> bool {
        self.kind == StoreErrorKind::Incompatible
    }

    /// Whether a finish was refused because the lease is gone.
    #[must_use]
    pub fn is_lease_lost(&self) -> bool {
        self.kind == StoreErrorKind::LeaseLost
    }

    /// Whether the store was closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.kind == StoreErrorKind::Closed
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Backend => "store backend failed",
            StoreErrorKind::LeaseLost => "delivery is not in flight under this lease",
            StoreErrorKind::Closed => "store is closed",
            StoreErrorKind::Corrupt => "stored record is corrupt",
            StoreErrorKind::Incompatible => "store was written by a newer version",
        };
        match &self.source {
            Some(source) => write!(f, "{what}: {source}"),
            None => f.write_str(what),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
