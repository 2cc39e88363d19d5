//! The client: one `Arc` around the seam it calls through and the token
//! cache behind that seam.

mod builder;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use secrecy::SecretString;

pub use builder::{API_PREFIX, ClientBuilder};

use crate::access_token::AccessToken;
use crate::auth::TokenCache;
use crate::error::{Error, Result};
use crate::flavor::private::Sealed;
use crate::flavor::{Async, Flavor};
use crate::scope::{Scope, ScopeSet};
use crate::seam::Seam;

/// An AgentIdP client.
///
/// Cheap to clone (one `Arc` inside); clones share the connection pool and the
/// token cache. `Send + Sync`. Build one with [`Client::builder`] or
/// [`Client::from_env`]. With the `blocking` feature,
/// [`blocking::Client`](crate::blocking::Client) is the same type with the
/// [`Blocking`](crate::blocking::Blocking) flavor.
pub struct Client<F: Flavor = Async> {
    parts: Arc<Parts>,
    runtime: <F as Sealed>::Runtime,
}

/// What a client is made of: the seam its calls go through and, when it has
/// a token source, the cache behind that seam (for the client's own token
/// methods).
pub(crate) struct Parts {
    pub seam: Arc<Seam>,
    pub tokens: Option<Arc<TokenCache>>,
}

impl<F: Flavor> Clone for Client<F> {
    fn clone(&self) -> Self {
        Self {
            parts: Arc::clone(&self.parts),
            runtime: self.runtime.clone(),
        }
    }
}

impl<F: Flavor> fmt::Debug for Client<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.api_url())
            .field("scopes", &self.requested_scopes())
            .field("flavor", &std::any::type_name::<F>())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; `base_url` plus either client credentials or a token source
    /// are required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `AGENTIDP_BASE_URL`, `AGENTIDP_CLIENT_ID`,
    /// `AGENTIDP_CLIENT_SECRET` and, optionally, `AGENTIDP_SCOPES`
    /// (space-separated `resource:action` words, checked by
    /// [`ScopeSet::parse_strict`]; default: the four documented scopes).
    pub fn from_env() -> Result<Client> {
        ClientBuilder::from_env()?.build()
    }

    /// The current access token, fetching one if needed.
    pub async fn access_token(&self) -> Result<SecretString> {
        Ok(self.token().await?.secret().clone())
    }

    /// The scopes the server granted the current token (fetching one if
    /// needed), or `None` when the token source does not say.
    pub async fn granted_scopes(&self) -> Result<Option<ScopeSet>> {
        Ok(self.token().await?.scopes().cloned())
    }
}

impl<F: Flavor> Client<F> {
    pub(crate) fn from_parts(parts: Parts, runtime: <F as Sealed>::Runtime) -> Self {
        Self {
            parts: Arc::new(parts),
            runtime,
        }
    }

    /// The full API base URL, e.g. `http://localhost:3000/api/v1`.
    pub fn api_url(&self) -> &str {
        self.parts.seam.api_url()
    }

    /// The scopes this client requests, when it uses client credentials.
    pub fn requested_scopes(&self) -> Option<&ScopeSet> {
        self.parts.seam.requested_scopes()
    }

    /// Forgets the cached token, e.g. after rotating this client's own
    /// credential; the next call fetches a new one.
    pub fn clear_token_cache(&self) {
        if let Some(tokens) = self.token_cache() {
            tokens.clear();
        }
    }

    /// Uses `secret` for every later token request of this client, its clones
    /// and the clients narrowed from it, and forgets the cached token, e.g.
    /// after rotating this client's own credential.
    ///
    /// With a [`SecretSource`](crate::auth::SecretSource) (a file, a
    /// variable…), the secret set here wins over the source for as long as
    /// the source holds what it held when this was called (after a `rotate`
    /// it holds the dead secret); once the source's content changes (the new
    /// secret published there), the source wins again.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) if the
    /// client does not use client credentials.
    pub fn set_client_secret(&self, secret: impl Into<SecretString>) -> Result<()> {
        let credentials = self
            .token_cache()
            .and_then(|t| t.client_credentials())
            .ok_or_else(|| Error::config("only a client-credentials client has a client secret"))?;
        credentials.set_explicit_secret(secret.into());
        self.clear_token_cache();
        Ok(())
    }

    /// A client limited to `scopes`: it requests a token of its own with only
    /// these scopes and shares this client's connection pool and settings.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) if this
    /// client does not use client credentials, and with
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if a scope
    /// is not one this client holds.
    pub fn with_scopes(&self, scopes: impl IntoIterator<Item = Scope>) -> Result<Client<F>> {
        let scopes: ScopeSet = scopes.into_iter().collect();
        let tokens = self
            .token_cache()
            .ok_or_else(|| Error::config("only a client-credentials client can be narrowed"))?
            .narrowed(scopes.clone())?;
        let seam = self.parts.seam.authorized(tokens.clone(), Some(scopes));
        Ok(Self::from_parts(
            Parts {
                seam: Arc::new(seam),
                tokens: Some(tokens),
            },
            self.runtime.clone(),
        ))
    }

    pub(crate) fn seam(&self) -> &Arc<Seam> {
        &self.parts.seam
    }

    /// The token cache behind this client, if it has a token source: the
    /// add-ons' way to the client's token (the outgoing middleware
    /// invalidates a refused one, the token store counts its fallbacks).
    pub(crate) fn token_cache(&self) -> Option<&Arc<TokenCache>> {
        self.parts.tokens.as_ref()
    }

    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn runtime(&self) -> &<F as Sealed>::Runtime {
        &self.runtime
    }

    /// The current token, as a future that owns what it needs.
    pub(crate) fn token(&self) -> impl Future<Output = Result<Arc<AccessToken>>> + Send + 'static {
        let tokens = self.token_cache().cloned();
        async move {
            match tokens {
                Some(tokens) => tokens.token().await,
                None => Err(Error::config("this client has no token source")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_cheap_to_clone_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Client>();
        assert_eq!(std::mem::size_of::<Client>(), std::mem::size_of::<usize>());
    }
}
