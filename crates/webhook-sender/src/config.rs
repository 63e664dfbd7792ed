//! The live configuration: every endpoint and organization, parsed, as the store holds
//! them, kept in step with other sender nodes through the store's configuration version.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::endpoint::{Endpoint, EndpointState};
use crate::error::Error;
use crate::ids::{EndpointId, OrganizationId};
use crate::organization::Organization;
use crate::rate::RateLimits;
use crate::store::{ConfigStore, Snapshot};

/// Takes a lock even if another thread panicked while holding it; every critical section
/// here leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every live endpoint, by id and by organization.
#[derive(Debug, Default)]
struct Registry {
    endpoints: HashMap<EndpointId, Arc<Endpoint>>,
    by_organization: HashMap<OrganizationId, Vec<EndpointId>>,
}

impl Registry {
    fn insert(&mut self, endpoint: Endpoint) {
        let id = endpoint.spec.id;
        self.remove(id);
        self.by_organization
            .entry(endpoint.spec.organization.clone())
            .or_default()
            .push(id);
        self.endpoints.insert(id, Arc::new(endpoint));
    }

    fn remove(&mut self, id: EndpointId) {
        if let Some(old) = self.endpoints.remove(&id) {
            if let Some(ids) = self.by_organization.get_mut(&old.spec.organization) {
                ids.retain(|e| *e != id);
            }
        }
    }
}

/// Whose an API token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenOwner {
    pub(crate) organization: OrganizationId,
    pub(crate) token: String,
}

fn token_index<'a>(
    organizations: impl IntoIterator<Item = &'a Organization>,
) -> HashMap<String, TokenOwner> {
    organizations
        .into_iter()
        .flat_map(|organization| {
            organization.profile.tokens.iter().map(|token| {
                let owner = TokenOwner {
                    organization: organization.id.clone(),
                    token: token.id.clone(),
                };
                (token.hash.clone(), owner)
            })
        })
        .collect()
}

/// Endpoints, organizations and the endpoints' rate limits, as last loaded or changed.
#[derive(Debug, Default)]
pub(crate) struct LiveConfig {
    registry: RwLock<Registry>,
    organizations: RwLock<HashMap<OrganizationId, Arc<Organization>>>,
    /// API token hash → its organization and token id.
    tokens: RwLock<HashMap<String, TokenOwner>>,
    rates: Mutex<RateLimits>,
    /// The store's configuration version this configuration matches.
    version: AtomicU64,
    /// When the versions were last compared, Unix ms.
    last_sync_ms: AtomicI64,
    /// Serializes configuration changes (read-modify-write of endpoints and secrets).
    write: tokio::sync::Mutex<()>,
}

impl LiveConfig {
    /// The configuration of a store snapshot, at `version`.
    pub(crate) fn from_snapshot(snapshot: &Snapshot, version: u64) -> Result<Self, Error> {
        let config = Self::default();
        config.replace(snapshot)?;
        config.version.store(version, Ordering::SeqCst);
        config.last_sync_ms.store(i64::MIN, Ordering::SeqCst);
        Ok(config)
    }

    fn replace(&self, snapshot: &Snapshot) -> Result<(), Error> {
        let mut registry = Registry::default();
        let mut rates = RateLimits::default();
        for stored in &snapshot.endpoints {
            let endpoint = Endpoint::from_stored(stored)?;
            rates.configure(endpoint.spec.id, endpoint.spec.rate_limit);
            registry.insert(endpoint);
        }
        let mut organizations = HashMap::new();
        for stored in &snapshot.organizations {
            let organization = Organization::from_stored(stored)?;
            organizations.insert(organization.id.clone(), Arc::new(organization));
        }
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
        let tokens = token_index(organizations.values().map(AsRef::as_ref));
        *self
            .organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner) = organizations;
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = tokens;
        *lock(&self.rates) = rates;
        Ok(())
    }

    /// Holds configuration changes off while the guard lives.
    pub(crate) async fn write_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    pub(crate) fn endpoint(&self, id: EndpointId) -> Option<Arc<Endpoint>> {
        self.registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .endpoints
            .get(&id)
            .cloned()
    }

    /// The endpoint, if it belongs to `organization`.
    pub(crate) fn endpoint_of(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
    ) -> Option<Arc<Endpoint>> {
        self.endpoint(id)
            .filter(|endpoint| endpoint.spec.organization == *organization)
    }

    /// Every endpoint of an organization, oldest first.
    pub(crate) fn endpoints_of(&self, organization: &OrganizationId) -> Vec<Arc<Endpoint>> {
        let registry = self.registry.read().unwrap_or_else(PoisonError::into_inner);
        registry
            .by_organization
            .get(organization)
            .into_iter()
            .flatten()
            .filter_map(|id| registry.endpoints.get(id).cloned())
            .collect()
    }

    pub(crate) fn organization(&self, id: &OrganizationId) -> Option<Arc<Organization>> {
        self.organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Makes an endpoint live (after the store has it).
    pub(crate) fn put_endpoint(&self, endpoint: Endpoint) {
        lock(&self.rates).configure(endpoint.spec.id, endpoint.spec.rate_limit);
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(endpoint);
    }

    /// Forgets an endpoint (after the store removed it).
    pub(crate) fn remove_endpoint(&self, id: EndpointId) {
        lock(&self.rates).configure(id, None);
        self.registry
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Every organization, by id.
    pub(crate) fn organizations(&self) -> Vec<Arc<Organization>> {
        let mut all: Vec<_> = self
            .organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        all
    }

    /// The owner of the API token with this hash.
    pub(crate) fn token_owner(&self, hash: &str) -> Option<TokenOwner> {
        self.tokens
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(hash)
            .cloned()
    }

    /// Makes an organization live (after the store has it).
    pub(crate) fn put_organization(&self, organization: Organization) {
        let mut organizations = self
            .organizations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        organizations.insert(organization.id.clone(), Arc::new(organization));
        // Token changes are rare; rebuilding keeps the index exact (revoked tokens leave).
        let tokens = token_index(organizations.values().map(AsRef::as_ref));
        *self.tokens.write().unwrap_or_else(PoisonError::into_inner) = tokens;
    }

    /// The endpoints' rate limits.
    pub(crate) fn rates(&self) -> std::sync::MutexGuard<'_, RateLimits> {
        lock(&self.rates)
    }

    /// Saves an endpoint in the store, then makes it live. Hold [`LiveConfig::write_lock`].
    pub(crate) async fn save(
        &self,
        store: &dyn ConfigStore,
        endpoint: Endpoint,
    ) -> Result<(), Error> {
        store.put_endpoint(endpoint.to_stored()?).await?;
        self.put_endpoint(endpoint);
        Ok(())
    }

    /// Disables an endpoint on the sender's own initiative (`410 Gone`): new events are
    /// no longer queued for it; what is queued waits until it is resumed.
    pub(crate) async fn disable(
        &self,
        store: &dyn ConfigStore,
        id: EndpointId,
        reason: &str,
    ) -> Result<(), Error> {
        let _guard = self.write_lock().await;
        let Some(current) = self.endpoint(id) else {
            return Ok(()); // deleted meanwhile
        };
        let state = EndpointState::Disabled {
            reason: reason.to_owned(),
        };
        self.save(store, current.with_state(state)?).await
    }

    /// Loads everything again when the store's configuration version moved, that is when
    /// another sender node on the same store changed it. Returns whether it reloaded.
    pub(crate) async fn sync(&self, store: &dyn ConfigStore) -> Result<bool, Error> {
        self.sync_from(store, None).await
    }

    /// As [`sync`](Self::sync), given the store's version when the caller has just read
    /// it (in the same round trip as other work); `None` reads it.
    pub(crate) async fn sync_from(
        &self,
        store: &dyn ConfigStore,
        read: Option<u64>,
    ) -> Result<bool, Error> {
        let current = self.version.load(Ordering::SeqCst);
        let version = match read {
            Some(version) => version,
            None => store.config_version().await?,
        };
        if version == current {
            return Ok(false);
        }
        let _guard = self.write.lock().await;
        // Read the version before loading: a change made while loading moves it past
        // this one, and the next sync loads again.
        let version = store.config_version().await?;
        if version == self.version.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let snapshot = store.load().await?;
        self.replace(&snapshot)?;
        self.version.store(version, Ordering::SeqCst);
        tracing::debug!(version, "configuration reloaded from the store");
        Ok(true)
    }

    /// Syncs when the last comparison is at least `every_ms` old.
    pub(crate) async fn sync_every(
        &self,
        store: &dyn ConfigStore,
        now_ms: i64,
        every_ms: i64,
    ) -> Result<bool, Error> {
        if now_ms.saturating_sub(self.last_sync_ms.load(Ordering::SeqCst)) < every_ms {
            return Ok(false);
        }
        self.last_sync_ms.store(now_ms, Ordering::SeqCst);
        self.sync(store).await
    }
}
