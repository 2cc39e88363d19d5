//! Token management: where access tokens come from and how they are cached.
//!
//! A [`TokenSource`] fetches tokens (client credentials by default, a static
//! bearer token, or your own); the cache in front of it hands every caller the
//! current token, refreshes it in the background before it expires, and lets
//! concurrent callers on a cold cache share one fetch. A fetch that fails,
//! panics, hangs past the token timeout or is cancelled with its runtime
//! clears itself: the next caller starts a new one.

mod cache;
pub(crate) mod grant;
pub(crate) mod lifetime;
mod refresh;
mod secret_source;
pub(crate) mod shared;
pub(crate) mod source;

pub use crate::access_token::AccessToken;
pub use cache::DEFAULT_REFRESH_BUFFER;
pub(crate) use cache::{CacheSettings, Source, TokenCache};
pub use secret_source::SecretSource;
pub(crate) use source::DynTokenSource;
pub use source::{StaticToken, TokenSource};
