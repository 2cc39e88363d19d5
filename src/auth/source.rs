//! Where tokens come from: the [`TokenSource`] trait, [`StaticToken`], and
//! the client-credentials grant.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use secrecy::SecretString;

use super::AccessToken;
use crate::error::Result;
use crate::operation::Operation;
use crate::raw;
use crate::scope::ScopeSet;
use crate::seam::Seam;
use crate::secret::WireSecret;

/// Supplies access tokens to a [`Client`](crate::Client).
///
/// Implement it to bring tokens from elsewhere (a sidecar, a vault). The
/// client caches what `fetch` returns until shortly before
/// [`AccessToken::expires_at`], so `fetch` is called only to refresh. A fetch
/// is bounded by the client's token timeout; one that fails, panics or times
/// out is not cached, and the next call fetches again.
///
/// ```
/// use sentryagent_idp::auth::{AccessToken, TokenSource};
/// use std::time::Duration;
///
/// struct FromSidecar;
///
/// impl TokenSource for FromSidecar {
///     async fn fetch(&self) -> sentryagent_idp::Result<AccessToken> {
///         let token = String::from("eyJ..."); // ask the sidecar here
///         Ok(AccessToken::new(token).expires_in(Duration::from_secs(300)))
///     }
/// }
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a fresh token.
    fn fetch(&self) -> impl Future<Output = Result<AccessToken>> + Send;
}

/// A bearer token you already have. It is never refreshed; its scopes are unknown,
/// so scope checks are left to the server.
#[derive(Clone)]
pub struct StaticToken(SecretString);

impl StaticToken {
    /// Wraps the token.
    pub fn new(token: impl Into<SecretString>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

impl TokenSource for StaticToken {
    async fn fetch(&self) -> Result<AccessToken> {
        Ok(AccessToken::new(self.0.clone()))
    }
}

/// A boxed token fetch.
pub(crate) type BoxFetch<'a> = Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + 'a>>;

/// The object-safe form of [`TokenSource`] the cache stores.
pub(crate) trait DynTokenSource: Send + Sync + 'static {
    fn fetch_boxed(&self) -> BoxFetch<'_>;
    /// The client credentials behind this source, when it has them.
    fn client_credentials(&self) -> Option<&ClientCredentials> {
        None
    }
}

impl<T: TokenSource> DynTokenSource for T {
    fn fetch_boxed(&self) -> BoxFetch<'_> {
        Box::pin(self.fetch())
    }
}

/// The lifetime a token response without `expires_in` is given: the
/// documented default.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The client-credentials grant at `POST /token`, through the token
/// endpoint's seam.
pub(crate) struct ClientCredentials {
    seam: Arc<Seam>,
    client_id: String,
    /// Shared with the clients narrowed from this one, so a new secret
    /// reaches them all.
    client_secret: Arc<RwLock<SecretString>>,
    scopes: ScopeSet,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::secret::REDACTED)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ClientCredentials {
    pub(crate) fn new(
        seam: Arc<Seam>,
        client_id: String,
        secret: SecretString,
        scopes: ScopeSet,
    ) -> Self {
        Self {
            seam,
            client_id,
            client_secret: Arc::new(RwLock::new(secret)),
            scopes,
        }
    }

    /// The same credentials, asking for `scopes` only.
    pub(crate) fn narrowed(&self, scopes: ScopeSet) -> Self {
        Self {
            seam: Arc::clone(&self.seam),
            client_id: self.client_id.clone(),
            client_secret: Arc::clone(&self.client_secret),
            scopes,
        }
    }

    pub(crate) fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    pub(crate) fn set_secret(&self, secret: SecretString) {
        *self
            .client_secret
            .write()
            .unwrap_or_else(PoisonError::into_inner) = secret;
    }

    async fn fetch(&self) -> Result<AccessToken> {
        let form = raw::types::TokenRequest {
            grant_type: raw::types::TokenRequestGrantType::ClientCredentials,
            client_id: Some(self.client_id.clone()),
            client_secret: Some(WireSecret::new(
                &*self
                    .client_secret
                    .read()
                    .unwrap_or_else(PoisonError::into_inner),
            )),
            scope: Some(self.scopes.clone()),
        };
        let response = self
            .seam
            .call(Operation::IssueToken, form, |raw, form| async move {
                raw.issue_token(&form).await
            })
            .await?;
        let lifetime = response.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            Duration::from_secs(s.max(0) as u64)
        });
        // RFC 6749 §5.1: no `scope` means the requested scope was granted.
        let granted = response.scope.unwrap_or_else(|| self.scopes.clone());
        Ok(AccessToken::new(SecretString::from(response.access_token))
            .expires_in(lifetime)
            .with_scopes(granted))
    }
}

impl DynTokenSource for ClientCredentials {
    fn fetch_boxed(&self) -> BoxFetch<'_> {
        Box::pin(self.fetch())
    }

    fn client_credentials(&self) -> Option<&ClientCredentials> {
        Some(self)
    }
}
