//! Token management: where access tokens come from and how they are cached.
//!
//! A [`TokenSource`] fetches tokens (client credentials by default, a static
//! bearer token, or your own); the cache in front of it hands every caller the
//! current token, refreshes it in the background before it expires, and lets
//! concurrent callers on a cold cache share one fetch.

mod cache;
pub(crate) mod source;

pub(crate) use cache::TokenCache;
pub(crate) use source::ClientCredentials;
pub use source::{AccessToken, StaticToken, TokenSource};
