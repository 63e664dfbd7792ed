//! Who is calling: [`Authorize`] turns a bearer token into a [`Principal`], and
//! [`TokenAuthorizer`] is the one `webhook serve` uses (the admin token, and the
//! organizations' API tokens the sender stores as hashes).
//!
//! A platform mounting the router inside its own service can bring its own
//! [`Authorize`] (its session tokens, its SSO) and map each caller to
//! [`Access::Admin`] or [`Access::Organization`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use subtle::ConstantTimeEq as _;
use webhook_sender::{OrganizationId, Sender};
use zeroize::Zeroizing;

use crate::error::ApiError;

/// What a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every organization, and the admin-only routes.
    Admin,
    /// One organization only. Any other organization's paths and ids answer 404.
    Organization(OrganizationId),
}

impl Access {
    /// Whether this caller may see `organization`.
    #[must_use]
    pub fn reaches(&self, organization: &OrganizationId) -> bool {
        match self {
            Self::Admin => true,
            Self::Organization(own) => own == organization,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// What it may reach.
    pub access: Access,
    /// Which credential it used (a token id, `admin`): the key of its rate limit and what
    /// access logs name. Never the token itself.
    pub credential: String,
}

impl Principal {
    /// The organization `id`, if this caller may see it and it exists: another tenant's
    /// organization and a missing one look the same (`None`), so existence does not leak.
    #[must_use]
    pub fn organization(&self, sender: &Sender, id: &str) -> Option<OrganizationId> {
        let id = OrganizationId::from(id);
        (self.access.reaches(&id) && sender.organizations().exists(&id)).then_some(id)
    }
}

/// The future [`Authorize::authorize`] returns.
pub type AuthorizeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Principal>, ApiError>> + Send + 'a>>;

/// Maps a bearer token to a caller: `Ok(None)` for a token that is not valid (401).
pub trait Authorize: Send + Sync + 'static {
    /// The caller `token` authenticates, if any.
    fn authorize<'a>(&'a self, token: &'a str) -> AuthorizeFuture<'a>;
}

/// The admin token (`WEBHOOK_ADMIN_TOKEN`) and the organizations' API tokens.
///
/// The admin token is compared in constant time (SHA-256 of both sides, compared with
/// `subtle`). An organization token is looked up by its SHA-256, which compares no
/// secret bytes, so timing tells nothing about a stored token.
pub struct TokenAuthorizer {
    admin: Option<Zeroizing<[u8; 32]>>,
    sender: Sender,
}

impl fmt::Debug for TokenAuthorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthorizer")
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// Why an admin token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the admin token must be at least {MIN_ADMIN_TOKEN_LEN} characters of visible ASCII")]
pub struct WeakAdminToken;

impl TokenAuthorizer {
    /// Organization tokens only: nobody is admin.
    #[must_use]
    pub fn new(sender: Sender) -> Self {
        Self {
            admin: None,
            sender,
        }
    }

    /// Also accepts `token` as the admin token.
    ///
    /// # Errors
    /// [`WeakAdminToken`] for a token shorter than 16 characters or with characters other
    /// than visible ASCII.
    pub fn with_admin_token(mut self, token: &str) -> Result<Self, WeakAdminToken> {
        if token.len() < MIN_ADMIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(WeakAdminToken);
        }
        self.admin = Some(digest(token));
        Ok(self)
    }
}

fn digest(token: &str) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl Authorize for TokenAuthorizer {
    fn authorize<'a>(&'a self, token: &'a str) -> AuthorizeFuture<'a> {
        Box::pin(async move {
            if let Some(admin) = &self.admin
                && bool::from(digest(token).ct_eq(admin.as_ref()))
            {
                return Ok(Some(Principal {
                    access: Access::Admin,
                    credential: "admin".to_owned(),
                }));
            }
            let owner = self.sender.organizations().authenticate(token).await?;
            Ok(owner.map(|(organization, token_id)| Principal {
                access: Access::Organization(organization),
                credential: token_id,
            }))
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 512)
        .then_some(token)
}
