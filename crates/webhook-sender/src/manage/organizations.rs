//! [`Organizations`]: set and rotate organizations' webhook secrets.

use std::time::Duration;

use webhook_core::keys::HmacSecret;

use super::Control;
use crate::config::LiveConfig;
use crate::delivery::duration_millis;
use crate::error::Error;
use crate::ids::OrganizationId;
use crate::organization::Organization;
use crate::secret::KeyRing;
use crate::store::ConfigStore;

/// Manages organizations' webhook secrets. Obtained from
/// [`Sender::organizations`](crate::Sender::organizations).
#[derive(Debug, Clone, Copy)]
pub struct Organizations<'a> {
    pub(crate) store: &'a dyn ConfigStore,
    pub(crate) config: &'a LiveConfig,
    pub(crate) engine: &'a dyn Control,
}

impl Organizations<'_> {
    /// Sets the organization's webhook secret, replacing any others at once.
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad organization id, [`Error::is_store`] when it could
    /// not be saved.
    pub async fn set_secret(
        &self,
        organization: impl Into<OrganizationId>,
        secret: HmacSecret,
    ) -> Result<(), Error> {
        let id = organization.into();
        self.change(id, |ring, _| *ring = KeyRing::new(vec![secret.into()]))
            .await
    }

    /// Rotates the organization's webhook secret: `new` signs from now on, and the current
    /// secret keeps signing beside it for `overlap`.
    ///
    /// # Errors
    /// As [`Organizations::set_secret`].
    pub async fn rotate_secret(
        &self,
        organization: impl Into<OrganizationId>,
        new: HmacSecret,
        overlap: Duration,
    ) -> Result<(), Error> {
        let id = organization.into();
        self.change(id, |ring, now_ms| {
            ring.rotate(
                new.into(),
                now_ms,
                now_ms.saturating_add(duration_millis(overlap)),
            );
        })
        .await
    }

    /// Whether the organization has a webhook secret.
    #[must_use]
    pub fn has_secret(&self, organization: &OrganizationId) -> bool {
        self.config
            .organization(organization)
            .is_some_and(|org| !org.secrets.is_empty())
    }

    async fn change(
        &self,
        id: OrganizationId,
        change: impl FnOnce(&mut KeyRing, i64),
    ) -> Result<(), Error> {
        if !id.is_valid() {
            return Err(Error::config(
                "organization id must be 1 to 256 bytes without control characters",
            ));
        }
        self.engine.check_open()?;
        let _guard = self.config.write_lock().await;
        let mut secrets = self
            .config
            .organization(&id)
            .map(|org| org.secrets.clone())
            .unwrap_or_default();
        change(&mut secrets, self.engine.now_ms());
        let organization = Organization { id, secrets };
        self.store
            .put_organization(organization.to_stored()?)
            .await?;
        self.config.put_organization(organization);
        Ok(())
    }
}
