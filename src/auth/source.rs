//! Where tokens come from.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::raw;
use crate::scope::ScopeSet;
use crate::secret::Secret;

/// An access token with what the cache needs to know of it.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Instant>,
    scopes: Option<ScopeSet>,
    /// `Bearer <secret>`, built once (marked sensitive); `None` if the token
    /// holds characters a header cannot carry.
    bearer: Option<reqwest::header::HeaderValue>,
}

impl AccessToken {
    /// A token that never expires and whose scopes are unknown.
    pub fn new(secret: impl Into<SecretString>) -> Self {
        let secret = secret.into();
        let bearer =
            reqwest::header::HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
                .ok()
                .map(|mut value| {
                    value.set_sensitive(true);
                    value
                });
        Self {
            secret,
            expires_at: None,
            scopes: None,
            bearer,
        }
    }

    /// Sets the expiry to `lifetime` from now, measured on this machine's
    /// monotonic clock (so a skewed server clock cannot matter).
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_at = Instant::now().checked_add(lifetime);
        self
    }

    /// Records the scopes the server granted, so calls needing another scope
    /// are refused before they are sent.
    pub fn with_scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the token expires, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The scopes granted, if known.
    pub fn scopes(&self) -> Option<&ScopeSet> {
        self.scopes.as_ref()
    }

    pub(crate) fn bearer_header(&self) -> Result<reqwest::header::HeaderValue> {
        self.bearer.clone().ok_or_else(|| {
            Error::invalid_input("the access token holds characters a header cannot carry")
        })
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Supplies access tokens to a [`Client`](crate::Client).
///
/// Implement it to bring tokens from elsewhere (a sidecar, a vault). The
/// client caches what `fetch` returns until shortly before
/// [`AccessToken::expires_at`], so `fetch` is called only to refresh.
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

/// The object-safe form of [`TokenSource`] the cache stores.
pub(crate) trait DynTokenSource: Send + Sync + 'static {
    fn fetch_boxed(&self) -> Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + '_>>;
    /// The scopes this source can narrow to, when it can narrow at all.
    fn narrowable(&self) -> Option<&ClientCredentials> {
        None
    }
}

impl<T: TokenSource> DynTokenSource for T {
    fn fetch_boxed(&self) -> Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + '_>> {
        Box::pin(self.fetch())
    }
}

/// The client-credentials grant at `POST /token`, through the generated client.
#[derive(Clone)]
pub(crate) struct ClientCredentials {
    pub raw: raw::Client,
    pub client_id: String,
    /// Shared with the clients narrowed from this one, so a new secret
    /// reaches them all.
    pub client_secret: Arc<RwLock<SecretString>>,
    pub scopes: ScopeSet,
    pub total_timeout: Duration,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ClientCredentials {
    pub(crate) fn set_secret(&self, secret: SecretString) {
        *self
            .client_secret
            .write()
            .unwrap_or_else(PoisonError::into_inner) = secret;
    }

    pub(crate) async fn fetch(&self) -> Result<AccessToken> {
        let request = raw::types::TokenRequest {
            grant_type: raw::types::TokenRequestGrantType::ClientCredentials,
            client_id: Some(self.client_id.clone()),
            client_secret: Some(Secret::from(
                &*self
                    .client_secret
                    .read()
                    .unwrap_or_else(PoisonError::into_inner),
            )),
            scope: (!self.scopes.is_empty()).then(|| self.scopes.clone()),
        };
        let response = crate::seam::call(
            self.raw.issue_token().body(request).send(),
            Some(self.total_timeout),
        )
        .await?;
        let received = Instant::now();
        let lifetime = u64::try_from(response.expires_in).unwrap_or(0);
        let mut token =
            AccessToken::new(SecretString::from(response.access_token)).with_scopes(response.scope);
        token.expires_at = received.checked_add(Duration::from_secs(lifetime));
        Ok(token)
    }
}

/// `ClientCredentials` as a source; not a public `TokenSource` impl because it
/// carries the raw client.
pub(crate) struct ClientCredentialsSource(pub ClientCredentials);

impl DynTokenSource for ClientCredentialsSource {
    fn fetch_boxed(&self) -> Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + '_>> {
        Box::pin(self.0.fetch())
    }

    fn narrowable(&self) -> Option<&ClientCredentials> {
        Some(&self.0)
    }
}
