//! Sharing one token across processes, restarts and replicas (feature
//! `store`; `redis` for [`RedisStore`]).
//!
//! Each [`Client`](crate::Client) keeps its token in memory. A fleet of
//! replicas of one agent identity, or a program that runs for a second
//! every minute, would still ask AgentIdP for a token per process: against
//! a quota of 10,000 token requests a month and 100 requests a minute, and
//! an audit event per token. A [`TokenStore`] beneath the in-memory cache
//! lets them share one:
//!
//! - **The key** is a keyed hash of the API URL, the client id, the
//!   requested scopes and the client secret: a rotated secret never reuses
//!   a token fetched with the old one, and the key reveals none of them.
//! - **The entry is sealed** (AES-256-GCM, the key derived from the client
//!   secret with HKDF, a random nonce, the store key as associated data):
//!   whoever reads the store without the secret learns no usable token. A
//!   tampered or undecryptable entry is ignored and replaced, never an error.
//! - **The entry holds its wall-clock issue time and expiry**; on load they
//!   are checked against this machine's clock: an entry due for refresh (its
//!   remaining life, less a safety margin of 5 s, within the refresh buffer)
//!   is not taken, nor one issued more than 5 s in this machine's future
//!   (written by a host whose clock runs ahead: its expiry cannot be
//!   trusted). A writer ahead by up to 5 s makes the entry look up to 5 s
//!   longer-lived, which the safety margin takes back; so a stale or skewed
//!   entry is never used past its life.
//! - **Revoked and refused tokens leave the store**: revoking the client's
//!   own token ([`Tokens::revoke`](crate::Tokens::revoke)) removes
//!   it from the memory cache and from the store, and an entry whose token
//!   the server refused (a `401`) is removed when next seen. The client
//!   remembers the last 16 refused tokens (as SHA-256 digests, never the
//!   tokens) and never takes them from the store again, so entries replayed
//!   into the store by whoever can write it cost at most one failed call.
//! - **One process fetches**: when the entry is missing or due, a process
//!   takes the store's lock and fetches; the others wait for its entry
//!   (polling, for at most [`STORE_WAIT`]), and if the fetcher dies, the
//!   lock frees (a file lock with its process, a Redis lock with its lease)
//!   and another takes over. A fetch slower than [`STORE_WAIT`] makes each
//!   waiter fetch by itself: a waiter cannot tell a slow holder from a
//!   stopped one (see [`STORE_WAIT`]).
//! - **The store can only help.** A store that fails or is slow (each
//!   operation bounded by [`STORE_TIMEOUT`]) makes the client fetch by
//!   itself, with a warning in `tracing` and a count in
//!   [`Client::token_store_fallbacks`](crate::Client::token_store_fallbacks).
//!
//! ```no_run
//! use sentryagent_idp::Client;
//! use sentryagent_idp::store::FileStore;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A cron job: ten runs in a row ask AgentIdP for one token.
//! let client = Client::builder()
//!     .base_url("https://idp.example.com")
//!     .client_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
//!     .client_secret(std::env::var("AGENTIDP_CLIENT_SECRET")?)
//!     .token_store(FileStore::new()?)
//!     .build()?;
//! # let _ = client; Ok(())
//! # }
//! ```
//!
//! The store works with client credentials only: a custom
//! [`TokenSource`](crate::auth::TokenSource) has no secret to seal with.

mod client;
mod error;
mod file;
#[cfg(feature = "redis")]
mod limiter;
mod lock;
#[cfg(feature = "redis")]
mod redis;
mod seal;
pub(crate) mod shared;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use error::{StoreError, StoreErrorKind};
pub use file::FileStore;
#[cfg(feature = "redis")]
pub use limiter::{DEFAULT_BURST, FleetLimiter, SERVER_LIMIT};
pub use lock::StoreLock;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_KEY_PREFIX, RedisStore};
pub use seal::StoreKey;

/// How long a process waits for another to fetch the shared token before
/// it fetches one itself (10 s).
///
/// A waiter does not wait longer while the lock is still held: holding it
/// does not show that its holder makes progress. A file lock is held as
/// long as its process lives, stopped (`Ctrl-Z`, a debugger) or not, and a
/// Redis lock until its lease ends. Waiting on such a holder would make
/// every other process wait with it; after `STORE_WAIT` each fetches by
/// itself instead (counted in
/// [`Client::token_store_fallbacks`](crate::Client::token_store_fallbacks)),
/// so a fetch slower than this (a struggling server) costs one token
/// request per waiting process.
pub const STORE_WAIT: Duration = Duration::from_secs(10);

/// How long one store operation may take before the client gives up on the
/// store for this fetch and asks AgentIdP itself: 2 s.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The lease of a fetch lock: a fetcher that dies holding it frees it after
/// this at the latest: 30 s.
pub const LOCK_LEASE: Duration = Duration::from_secs(30);

/// The largest entry a store reads (64 KiB): a sealed entry is a token of a
/// few KiB; anything larger (a symlink to `/dev/zero`, a huge value someone
/// wrote to Redis) is refused without being read whole.
pub const MAX_ENTRY_LEN: usize = 64 * 1024;

/// Where sealed token entries are shared: a file per key ([`FileStore`]),
/// Redis ([`RedisStore`]), or your own.
///
/// The store sees only a [`StoreKey`] (a hash) and sealed bytes; sealing,
/// expiry and the fetch protocol are the client's. Every method may fail:
/// the client then fetches the token by itself.
pub trait TokenStore: Send + Sync + 'static {
    /// The entry under `key`, if there is one.
    fn load(
        &self,
        key: &StoreKey,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Stores `entry` under `key`, replacing any; it may be dropped after
    /// `ttl` (the token's remaining life).
    fn save(
        &self,
        key: &StoreKey,
        entry: &[u8],
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the entry under `key` if it is still `entry`, byte for byte
    /// (compare and delete, atomically against other writers): a newer
    /// entry someone else saved meanwhile stays. No entry is not an error.
    /// The client calls it for an entry whose token was revoked or refused.
    fn remove(
        &self,
        key: &StoreKey,
        entry: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the fetch lock of `key` if it is free, for at most `lease`;
    /// `None` when another holder has it.
    fn try_lock(
        &self,
        key: &StoreKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<StoreLock>, StoreError>> + Send;

    /// Releases a lock [`try_lock`](Self::try_lock) gave, if it is still
    /// this holder's.
    fn unlock(
        &self,
        key: &StoreKey,
        lock: StoreLock,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`TokenStore`] the client keeps.
pub(crate) trait DynTokenStore: Send + Sync + 'static {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn try_lock<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, StoreError>>;
    fn unlock<'a>(
        &'a self,
        key: &'a StoreKey,
        lock: StoreLock,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

impl<T: TokenStore> DynTokenStore for T {
    fn load<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(TokenStore::load(self, key))
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(TokenStore::save(self, key, entry, ttl))
    }
    fn remove<'a>(
        &'a self,
        key: &'a StoreKey,
        entry: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(TokenStore::remove(self, key, entry))
    }
    fn try_lock<'a>(
        &'a self,
        key: &'a StoreKey,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<StoreLock>, StoreError>> {
        Box::pin(TokenStore::try_lock(self, key, lease))
    }
    fn unlock<'a>(
        &'a self,
        key: &'a StoreKey,
        lock: StoreLock,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(TokenStore::unlock(self, key, lock))
    }
}
