//! Where tokens come from: the [`TokenSource`] trait, [`StaticToken`], and
//! the object-safe form the cache keeps.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use secrecy::SecretString;

use crate::access_token::AccessToken;
use crate::error::Result;

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
}

impl<T: TokenSource> DynTokenSource for T {
    fn fetch_boxed(&self) -> BoxFetch<'_> {
        Box::pin(self.fetch())
    }
}
