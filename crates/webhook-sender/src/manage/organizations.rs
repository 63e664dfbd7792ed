//! [`Organizations`]: create and list organizations, set and rotate their webhook
//! secrets, issue and revoke their API tokens.

use std::time::Duration;

use webhook_core::keys::HmacSecret;

use super::Control;
use crate::config::LiveConfig;
use crate::delivery::duration_millis;
use crate::error::Error;
use crate::ids::OrganizationId;
use crate::organization::{
    IssuedToken, MAX_NAME_LEN, MAX_TOKENS, Organization, OrganizationInfo, Profile, token_hash,
};
use crate::secret::KeyRing;
use crate::store::ConfigStore;

/// Manages organizations: their records, webhook secrets and API tokens. Obtained from
/// [`Sender::organizations`](crate::Sender::organizations).
#[derive(Debug, Clone, Copy)]
pub struct Organizations<'a> {
    pub(crate) store: &'a dyn ConfigStore,
    pub(crate) config: &'a LiveConfig,
    pub(crate) engine: &'a dyn Control,
}

impl Organizations<'_> {
    /// Creates an organization with an optional display name.
    ///
    /// # Errors
    /// [`Error::is_conflict`] when it exists; [`Error::is_invalid`] for a bad id or a name
    /// over 256 bytes or with control characters; [`Error::is_store`].
    pub async fn create(
        &self,
        organization: impl Into<OrganizationId>,
        name: Option<String>,
    ) -> Result<OrganizationInfo, Error> {
        if let Some(name) = &name
            && (name.len() > MAX_NAME_LEN || name.chars().any(char::is_control))
        {
            return Err(Error::config(
                "organization name must be at most 256 bytes without control characters",
            ));
        }
        self.change(organization.into(), |current, now_ms| match current {
            Some(_) => Err(Error::conflict("organization")),
            None => Ok((
                Organization {
                    id: OrganizationId::new(""),
                    secrets: KeyRing::default(),
                    profile: Profile {
                        name,
                        created_at_ms: now_ms,
                        tokens: Vec::new(),
                    },
                },
                (),
            )),
        })
        .await
        .map(|(organization, ())| organization)
    }

    /// An organization, if it exists (was created, or had a secret set).
    #[must_use]
    pub fn get(&self, organization: &OrganizationId) -> Option<OrganizationInfo> {
        self.config.organization(organization).map(|org| org.info())
    }

    /// Whether the organization exists (cheaper than [`Organizations::get`]).
    #[must_use]
    pub fn exists(&self, organization: &OrganizationId) -> bool {
        self.config.organization(organization).is_some()
    }

    /// Every organization, by id.
    #[must_use]
    pub fn list(&self) -> Vec<OrganizationInfo> {
        self.config
            .organizations()
            .iter()
            .map(|org| org.info())
            .collect()
    }

    /// Sets the organization's webhook secret, replacing any others at once. Creates the
    /// organization when it does not exist.
    ///
    /// # Errors
    /// [`Error::is_invalid`] for a bad organization id, [`Error::is_store`] when it could
    /// not be saved.
    pub async fn set_secret(
        &self,
        organization: impl Into<OrganizationId>,
        secret: HmacSecret,
    ) -> Result<(), Error> {
        self.change_secrets(organization.into(), |ring, _| {
            *ring = KeyRing::new(vec![secret.into()]);
        })
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
        self.change_secrets(organization.into(), |ring, now_ms| {
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

    /// Issues an API token for the organization. Its text is in the answer only; the
    /// store keeps its SHA-256.
    ///
    /// # Errors
    /// [`Error::is_not_found`] when the organization does not exist; [`Error::is_invalid`]
    /// when it already holds 100 tokens; [`Error::is_store`].
    pub async fn issue_token(&self, organization: &OrganizationId) -> Result<IssuedToken, Error> {
        self.change(organization.clone(), |current, now_ms| {
            let mut organization = current.ok_or_else(|| Error::not_found("organization"))?;
            if organization.profile.tokens.len() >= MAX_TOKENS {
                return Err(Error::config(
                    "an organization holds at most 100 API tokens",
                ));
            }
            let (issued, stored) = IssuedToken::generate(now_ms)?;
            organization.profile.tokens.push(stored);
            Ok((organization, issued))
        })
        .await
        .map(|(_, issued)| issued)
    }

    /// Revokes one of the organization's API tokens: it authenticates nothing from now on
    /// (on other sender nodes of the store from their next
    /// [`authenticate`](Organizations::authenticate)).
    ///
    /// # Errors
    /// [`Error::is_not_found`] when the organization has no such token; [`Error::is_store`].
    pub async fn revoke_token(
        &self,
        organization: &OrganizationId,
        token_id: &str,
    ) -> Result<(), Error> {
        self.change(organization.clone(), |current, _| {
            let mut organization = current.ok_or_else(|| Error::not_found("token"))?;
            let before = organization.profile.tokens.len();
            organization
                .profile
                .tokens
                .retain(|token| token.id != token_id);
            if organization.profile.tokens.len() == before {
                return Err(Error::not_found("token"));
            }
            Ok((organization, ()))
        })
        .await
        .map(|_| ())
    }

    /// The organization and token id an API token belongs to, or `None`. Reloads the
    /// configuration first when another node changed it, so a token revoked anywhere is
    /// refused at once.
    ///
    /// # Errors
    /// [`Error::is_store`] when the store cannot be read.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(OrganizationId, String)>, Error> {
        self.config.sync(self.store).await?;
        Ok(self
            .config
            .token_owner(&token_hash(token))
            .map(|owner| (owner.organization, owner.token)))
    }

    async fn change_secrets(
        &self,
        id: OrganizationId,
        change: impl FnOnce(&mut KeyRing, i64),
    ) -> Result<(), Error> {
        self.change(id, |current, now_ms| {
            let mut organization = current.unwrap_or_else(|| Organization {
                id: OrganizationId::new(""),
                secrets: KeyRing::default(),
                profile: Profile {
                    created_at_ms: now_ms,
                    ..Profile::default()
                },
            });
            change(&mut organization.secrets, now_ms);
            Ok((organization, ()))
        })
        .await
        .map(|_| ())
    }

    /// Reads the organization (`None` when it does not exist), lets `change` produce its
    /// new state, saves it and makes it live, under the configuration write lock.
    async fn change<T>(
        &self,
        id: OrganizationId,
        change: impl FnOnce(Option<Organization>, i64) -> Result<(Organization, T), Error>,
    ) -> Result<(OrganizationInfo, T), Error> {
        if !id.is_valid() {
            return Err(Error::config(
                "organization id must be 1 to 256 bytes without control characters",
            ));
        }
        self.engine.check_open()?;
        // Another node may have changed it (`sync` takes the write lock itself).
        self.config.sync(self.store).await?;
        let _guard = self.config.write_lock().await;
        let current = self.config.organization(&id).map(|org| Organization {
            id: org.id.clone(),
            secrets: org.secrets.clone(),
            profile: org.profile.clone(),
        });
        let (mut organization, out) = change(current, self.engine.now_ms())?;
        organization.id = id;
        self.store
            .put_organization(organization.to_stored()?)
            .await?;
        let info = organization.info();
        self.config.put_organization(organization);
        Ok((info, out))
    }
}
