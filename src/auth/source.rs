//! Where tokens come from: the [`TokenSource`] trait, [`StaticToken`], and
//! the client-credentials grant.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{AccessToken, SecretSource};
use crate::error::Result;
use crate::operation::Operation;
use crate::raw;
use crate::scope::ScopeSet;
use crate::seam::Seam;
use crate::secret::WireSecret;
#[cfg(feature = "store")]
use crate::store::shared::SharedStore;

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
    /// The server refused `token`: a source that shares tokens must not
    /// hand it out again.
    fn refused(&self, _token: &AccessToken) {}
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
    /// Where the secret is read again when it may have changed.
    secret_source: Option<SecretSource>,
    scopes: ScopeSet,
    /// The shared second level beneath the in-memory cache.
    #[cfg(feature = "store")]
    store: Option<Arc<SharedStore>>,
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
            secret_source: None,
            scopes,
            #[cfg(feature = "store")]
            store: None,
        }
    }

    /// Reads the secret again from `source` when it may have changed.
    pub(crate) fn with_secret_source(mut self, source: SecretSource) -> Self {
        self.secret_source = Some(source);
        self
    }

    /// Shares tokens through `store`.
    #[cfg(feature = "store")]
    pub(crate) fn with_store(mut self, store: SharedStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// How many fetches the token store could not serve.
    #[cfg(feature = "store")]
    pub(crate) fn store_fallbacks(&self) -> Option<u64> {
        self.store.as_ref().map(|s| s.fallbacks())
    }

    /// The same credentials, asking for `scopes` only.
    pub(crate) fn narrowed(&self, scopes: ScopeSet) -> Self {
        Self {
            seam: Arc::clone(&self.seam),
            client_id: self.client_id.clone(),
            client_secret: Arc::clone(&self.client_secret),
            secret_source: self.secret_source.clone(),
            scopes,
            #[cfg(feature = "store")]
            store: self.store.clone(),
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

    fn secret(&self) -> SecretString {
        self.client_secret
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A token: from the store when there is one, else the grant; after an
    /// `invalid_client`, once more if the secret source now gives another
    /// secret (a rotation the replicas pick up by themselves).
    async fn fetch(&self) -> Result<AccessToken> {
        if let Some(source) = self
            .secret_source
            .as_ref()
            .filter(|s| s.read_before_each_fetch())
        {
            match source.read() {
                Ok(secret) => self.set_secret(secret),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the client secret again; using the last one")
                }
            }
        }
        let secret = self.secret();
        match self.fetch_with(&secret).await {
            Err(e) if e.code() == Some("invalid_client") => match self.reread(&secret) {
                Some(new) => self.fetch_with(&new).await,
                None => Err(e),
            },
            other => other,
        }
    }

    /// The secret from the source, if it differs from `old`.
    fn reread(&self, old: &SecretString) -> Option<SecretString> {
        let new = self.secret_source.as_ref()?.read().ok()?;
        if new.expose_secret() == old.expose_secret() {
            return None;
        }
        self.set_secret(new.clone());
        Some(new)
    }

    async fn fetch_with(&self, secret: &SecretString) -> Result<AccessToken> {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            return store
                .fetch(&self.client_id, &self.scopes, secret, || self.grant(secret))
                .await;
        }
        self.grant(secret).await
    }

    /// The client-credentials grant itself.
    async fn grant(&self, secret: &SecretString) -> Result<AccessToken> {
        let form = raw::types::TokenRequest {
            grant_type: raw::types::TokenRequestGrantType::ClientCredentials,
            client_id: Some(self.client_id.clone()),
            client_secret: Some(WireSecret::new(secret)),
            // No scopes asked (a credential's proof): all the agent is allowed.
            scope: (!self.scopes.is_empty()).then(|| self.scopes.clone()),
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

    fn refused(&self, _token: &AccessToken) {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            store.refused(_token);
        }
    }
}
