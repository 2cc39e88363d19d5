//! What the seam needs of a token provider, and nothing more: the token
//! cache implements it, so the seam depends on no token rule.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::access_token::AccessToken;
use crate::error::Result;

/// The bearer tokens of a client.
pub(crate) trait TokenProvider: Send + Sync + 'static {
    /// The current token if it can be used now without waiting: the common
    /// path of every call.
    fn fresh(&self) -> Option<Arc<AccessToken>>;

    /// A token, waiting for a fetch if none is fresh.
    fn token(self: Arc<Self>) -> BoxFuture<'static, Result<Arc<AccessToken>>>;

    /// The server refused `used`: forget it (unless a newer one replaced it).
    fn invalidate(&self, used: &Arc<AccessToken>);
}
