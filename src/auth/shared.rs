//! The hook through which a second, shared level of tokens (the token
//! store, feature `store`) plugs in beneath the in-memory cache: the
//! client-credentials grant asks it before asking AgentIdP.

use std::fmt;

use futures::future::BoxFuture;
use secrecy::SecretString;

use super::source::BoxFetch;
use crate::access_token::AccessToken;
use crate::scope::ScopeSet;

/// What a grant asks of the shared level.
#[allow(
    dead_code,
    reason = "read by the add-ons that plug in here (feature store)"
)]
pub(crate) struct Grant<'a> {
    pub client_id: &'a str,
    pub scopes: &'a ScopeSet,
    /// The secret the token would be fetched with: it keys and seals the
    /// shared entry, so a rotated secret never reuses an old token.
    pub secret: &'a SecretString,
}

/// Tokens shared by the processes and replicas of one identity.
#[allow(
    dead_code,
    reason = "implemented and read by the token store (feature store)"
)]
pub(crate) trait SharedTokens: Send + Sync + fmt::Debug + 'static {
    /// A token for `grant`: a shared one, or what `fetch` (the grant itself,
    /// not started until polled) brings, shared for the others.
    fn fetch<'a>(&'a self, grant: Grant<'a>, fetch: BoxFetch<'a>) -> BoxFetch<'a>;

    /// The server refused `token`: never hand it out again (and remove it
    /// from the shared level when next seen).
    fn refused(&self, token: &AccessToken);

    /// `token` was revoked: never hand it out again, and remove it from the
    /// shared level if the entry of `grant` holds it.
    fn revoked<'a>(&'a self, grant: Grant<'a>, token: &'a SecretString) -> BoxFuture<'a, ()>;

    /// How many fetches the shared level could not serve, so the client
    /// asked AgentIdP by itself.
    fn fallbacks(&self) -> u64;
}
