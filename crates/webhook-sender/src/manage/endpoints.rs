//! [`Endpoints`]: create, read, update, pause, resume, delete and rotate endpoints, each
//! call scoped to one organization.

use std::time::Duration;

use webhook_core::Style;

use super::Control;
use crate::config::LiveConfig;
use crate::delivery::duration_millis;
use crate::endpoint::{Endpoint, EndpointConfig, EndpointInfo, EndpointState, EndpointUpdate};
use crate::error::Error;
use crate::http::HttpClient;
use crate::ids::{EndpointId, OrganizationId};
use crate::secret::Secret;
use crate::store::Store;

/// Open deliveries cancelled per store call when an endpoint is deleted.
const CANCEL_BATCH: usize = 1_000;

/// Manages endpoints. Obtained from [`Sender::endpoints`](crate::Sender::endpoints).
///
/// Every call that names an endpoint takes its organization too; an endpoint of another
/// organization answers [`Error::is_not_found`], exactly as one that does not exist.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) config: &'a LiveConfig,
    pub(crate) client: &'a HttpClient,
    pub(crate) engine: &'a dyn Control,
}

impl Endpoints<'_> {
    /// Creates an endpoint and returns its id.
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad configuration (URL, subscriptions, keys, timeout,
    /// headers; an event-style endpoint without a secret of its own whose organization has
    /// none), [`Error::is_forbidden_address`] when the host is an address the SSRF guard
    /// refuses, [`Error::is_store`] when it could not be saved.
    pub async fn create(&self, config: EndpointConfig) -> Result<EndpointId, Error> {
        self.engine.check_open()?;
        if config.style() == Style::Event
            && !config.has_own_secret()
            && self
                .config
                .organization(config.organization())
                .is_none_or(|org| org.secrets.is_empty())
        {
            return Err(Error::config(
                "event-style endpoint has no secret and its organization has none",
            ));
        }
        self.check_host(config.host()).await?;
        let id = EndpointId::generate();
        let endpoint =
            Endpoint::from_config(id, config, self.engine.max_timeout(), self.engine.now_ms())?;
        let _guard = self.config.write_lock().await;
        self.save(endpoint).await?;
        Ok(id)
    }

    /// Changes what `update` names and keeps the rest, keys and their rotation state
    /// included. Deliveries already queued keep their place and are sent with the new
    /// settings.
    ///
    /// # Errors
    /// As [`Endpoints::create`], plus [`Error::is_not_found`].
    pub async fn update(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
        update: EndpointUpdate,
    ) -> Result<EndpointInfo, Error> {
        self.engine.check_open()?;
        if let Some(url) = &update.url {
            self.check_host(crate::endpoint::host_of(url)).await?;
        }
        let _guard = self.config.write_lock().await;
        let endpoint = self
            .current(organization, id)?
            .updated(update, self.engine.max_timeout())?;
        self.engine.reset_breaker(id);
        let info = endpoint.info();
        self.save(endpoint).await?;
        Ok(info)
    }

    /// Pauses deliveries to the endpoint: new events are still queued for it, and nothing
    /// is sent until [`Endpoints::resume`]. Attempts already in flight finish.
    ///
    /// # Errors
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn pause(&self, organization: &OrganizationId, id: EndpointId) -> Result<(), Error> {
        self.set_state(organization, id, EndpointState::Paused)
            .await
    }

    /// Resumes a paused or disabled endpoint: what queued up is sent, in order per
    /// resource.
    ///
    /// # Errors
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn resume(&self, organization: &OrganizationId, id: EndpointId) -> Result<(), Error> {
        self.engine.reset_breaker(id);
        self.set_state(organization, id, EndpointState::Active)
            .await
    }

    /// Deletes the endpoint. Attempts in flight are aborted first, nothing is sent to it
    /// once this returns, and its open deliveries read `cancelled`; its history stays
    /// until retention removes it.
    ///
    /// # Errors
    /// [`Error::is_not_found`], [`Error::is_store`] (the deletion may then be partly done:
    /// call again to finish it).
    pub async fn delete(&self, organization: &OrganizationId, id: EndpointId) -> Result<(), Error> {
        self.engine.check_open()?;
        let _guard = self.config.write_lock().await;
        self.current(organization, id)?;
        self.engine.abort_endpoint(id).await;
        self.store.remove_endpoint(id).await?;
        self.config.remove_endpoint(id);
        let reason = "endpoint deleted".to_owned();
        loop {
            let cancelled = self
                .store
                .cancel_open(id, reason.clone(), self.engine.now_ms(), CANCEL_BATCH)
                .await?;
            if cancelled == 0 {
                break;
            }
            metrics::counter!(crate::metrics::CANCELLED).increment(cancelled);
        }
        self.engine.wake();
        Ok(())
    }

    /// Rotates the endpoint's signing secret: `new` signs from now on, and the current one
    /// keeps signing beside it for `overlap` (see [`Secret`] for the domain style, whose
    /// header carries one signature). For an event-style endpoint that signed with its
    /// organization's secret, the endpoint gets a secret of its own.
    ///
    /// # Errors
    /// [`Error::is_invalid`] when `new` does not fit the endpoint's style;
    /// [`Error::is_not_found`], [`Error::is_store`].
    pub async fn rotate_secret(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
        new: impl Into<Secret>,
        overlap: Duration,
    ) -> Result<(), Error> {
        self.engine.check_open()?;
        let new = new.into();
        let _guard = self.config.write_lock().await;
        let current = self.current(organization, id)?;
        if !new.fits(current.spec.style) {
            return Err(Error::config(format!(
                "a {} key cannot sign for a {}-style endpoint",
                new.algorithm(),
                current.spec.style
            )));
        }
        let now = self.engine.now_ms();
        let mut keys = current.keys.clone();
        if keys.is_empty() {
            // It signed with the organization's secrets: keep those during the overlap.
            if let Some(org) = self.config.organization(&current.spec.organization) {
                keys = org.secrets.clone();
            }
        }
        keys.rotate(new, now, now.saturating_add(duration_millis(overlap)));
        self.save(current.with_keys(&keys)?).await
    }

    /// An endpoint's settings and public keys (never its secrets).
    #[must_use]
    pub fn get(&self, organization: &OrganizationId, id: EndpointId) -> Option<EndpointInfo> {
        self.config
            .endpoint_of(organization, id)
            .map(|endpoint| endpoint.info())
    }

    /// The endpoint's circuit breaker on this sender node, if the organization has the
    /// endpoint.
    #[must_use]
    pub fn breaker(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
    ) -> Option<crate::circuit::BreakerState> {
        self.config
            .endpoint_of(organization, id)
            .map(|_| self.engine.breaker(id))
    }

    /// Every endpoint of an organization, oldest first.
    #[must_use]
    pub fn list(&self, organization: &OrganizationId) -> Vec<EndpointInfo> {
        self.config
            .endpoints_of(organization)
            .iter()
            .map(|endpoint| endpoint.info())
            .collect()
    }

    async fn set_state(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
        state: EndpointState,
    ) -> Result<(), Error> {
        self.engine.check_open()?;
        let _guard = self.config.write_lock().await;
        let endpoint = self.current(organization, id)?.with_state(state)?;
        self.save(endpoint).await
    }

    fn current(
        &self,
        organization: &OrganizationId,
        id: EndpointId,
    ) -> Result<std::sync::Arc<Endpoint>, Error> {
        self.config
            .endpoint_of(organization, id)
            .ok_or_else(|| Error::not_found("endpoint"))
    }

    async fn check_host(&self, host: Option<String>) -> Result<(), Error> {
        let host = host.ok_or_else(|| Error::config("URL has no host"))?;
        self.client.check_host(&host).await
    }

    async fn save(&self, endpoint: Endpoint) -> Result<(), Error> {
        self.config.save(self.store, endpoint).await?;
        self.engine.wake();
        Ok(())
    }
}
