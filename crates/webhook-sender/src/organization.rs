//! Organizations (tenants) and their webhook secrets, managed through
//! [`Organizations`](crate::Organizations). In event style an organization's
//! secret signs for all of its endpoints, unless an endpoint has its own (seed 000).
//!
//! ```no_run
//! # async fn demo(sender: webhook_sender::Sender) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use webhook_core::keys::HmacSecret;
//!
//! sender.organizations().set_secret("org-1", HmacSecret::from_utf8("first")?).await?;
//! // Both secrets sign for a day; receivers that know either one accept.
//! sender.organizations()
//!     .rotate_secret("org-1", HmacSecret::from_utf8("second")?, Duration::from_secs(86_400))
//!     .await?;
//! # Ok(()) }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::OrganizationId;
use crate::secret::{KeyRing, StoredKey};
use crate::store::StoredOrganization;
use crate::store::record::{decode_versioned, encode_versioned};

/// A live organization.
pub(crate) struct Organization {
    pub(crate) id: OrganizationId,
    pub(crate) secrets: KeyRing,
}

impl fmt::Debug for Organization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Organization")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct OrganizationSpec {
    secrets: Vec<StoredKey>,
}

impl Organization {
    pub(crate) fn to_stored(&self) -> Result<StoredOrganization, Error> {
        let spec = OrganizationSpec {
            secrets: self.secrets.to_stored(),
        };
        Ok(StoredOrganization::new(
            self.id.clone(),
            encode_versioned(&spec),
        ))
    }

    pub(crate) fn from_stored(stored: &StoredOrganization) -> Result<Self, Error> {
        let spec: OrganizationSpec = decode_versioned(&stored.data)?;
        Ok(Self {
            id: stored.id.clone(),
            secrets: KeyRing::from_stored(&spec.secrets)
                .map_err(|e| Error::config(format!("stored secret: {e}")))?,
        })
    }
}
