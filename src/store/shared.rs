//! The fetch protocol over a [`TokenStore`](super::TokenStore): the second,
//! shared level beneath the client's in-memory cache.
//!
//! To fetch: take a usable entry if there is one; otherwise take the lock
//! and fetch from AgentIdP (looking once more first: another process may
//! have saved while this one asked for the lock), save, release; or, when
//! another process holds the lock, wait for its entry, polling, for at most
//! [`STORE_WAIT`]. Any store failure or timeout ends the protocol: the
//! client fetches by itself. The in-memory cache runs one fetch at a time
//! per client, so one process holds at most one lock per key.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};

use super::seal::{Entry, Sealer, StoreKey, unix_ms};
use super::{DynTokenStore, LOCK_LEASE, STORE_TIMEOUT, STORE_WAIT, StoreError, TokenStore};
use crate::access_token::AccessToken;
use crate::auth::shared::{Grant, SharedTokens};
use crate::auth::source::BoxFetch;
use crate::error::Result;
use crate::scope::ScopeSet;

/// An entry is taken only if it lives this much (5 s) longer than the point
/// at which the client would refresh it: room for clock skew between hosts.
pub(crate) const SAFETY_MARGIN: Duration = Duration::from_secs(5);

/// The first pause between two looks at the store while another process
/// fetches (20 ms); it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(20);
/// The longest pause between two looks at the store: 250 ms.
const MAX_POLL: Duration = Duration::from_millis(250);

/// A client's token store and what it needs around it.
pub(crate) struct SharedStore {
    store: Arc<dyn DynTokenStore>,
    api_url: String,
    refresh_buffer: Duration,
    /// A SHA-256 of the last token the server refused: never taken from
    /// the store again.
    refused: Mutex<Option<[u8; 32]>>,
    fallbacks: AtomicU64,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("api_url", &self.api_url)
            .field("fallbacks", &self.fallbacks.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The store as the client builder receives it, before the API URL and
/// the refresh buffer are known.
pub(crate) type PendingStore = Arc<dyn DynTokenStore>;

/// Boxes a user's store.
pub(crate) fn pending(store: impl TokenStore) -> PendingStore {
    Arc::new(store)
}

impl SharedStore {
    pub(crate) fn new(store: PendingStore, api_url: String, refresh_buffer: Duration) -> Self {
        Self {
            store,
            api_url,
            refresh_buffer,
            refused: Mutex::new(None),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// A token for these credentials: from the store, or from `grant`
    /// (saved to the store for the others).
    pub(crate) async fn fetch<F, Fut>(
        &self,
        client_id: &str,
        scopes: &ScopeSet,
        secret: &SecretString,
        grant: F,
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken>>,
    {
        let key = StoreKey::derive(&self.api_url, client_id, scopes, secret);
        let Some(sealer) = Sealer::new(secret, &key) else {
            return self
                .alone(None, grant, &"the entry key could not be derived")
                .await;
        };
        let deadline = Instant::now() + STORE_WAIT;
        let mut pause = FIRST_POLL;
        loop {
            match self.load(&key, &sealer).await {
                Ok(Some(token)) => return Ok(token),
                Ok(None) => {}
                Err(e) => return self.alone(Some((&key, &sealer)), grant, &e).await,
            }
            match bounded(self.store.try_lock(&key, LOCK_LEASE)).await {
                Ok(Some(lock)) => {
                    let result = match self.load(&key, &sealer).await {
                        Ok(Some(token)) => Ok(token),
                        _ => {
                            let result = grant().await;
                            if let Ok(token) = &result {
                                self.save(&key, &sealer, token).await;
                            }
                            result
                        }
                    };
                    if let Err(e) = bounded(self.store.unlock(&key, lock)).await {
                        tracing::warn!(error = %e, "could not release the token store lock; it frees at its lease's end");
                    }
                    return result;
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(pause.min(deadline - Instant::now())).await;
                    pause = (pause * 2).min(MAX_POLL);
                }
                Ok(None) => {
                    return self
                        .alone(
                            Some((&key, &sealer)),
                            grant,
                            &"another process held the fetch lock too long",
                        )
                        .await;
                }
                Err(e) => return self.alone(Some((&key, &sealer)), grant, &e).await,
            }
        }
    }

    /// The usable token under `key`, if any. An entry that does not open
    /// (tampered, another secret, another format), was refused, or is due
    /// for refresh is not usable: it is replaced by the next save.
    async fn load(
        &self,
        key: &StoreKey,
        sealer: &Sealer,
    ) -> std::result::Result<Option<AccessToken>, StoreError> {
        let Some(bytes) = bounded(self.store.load(key)).await? else {
            return Ok(None);
        };
        let Some(entry) = sealer.open(&bytes) else {
            tracing::debug!("a token store entry did not open; it will be replaced");
            return Ok(None);
        };
        let (remaining, lifetime) = entry.remaining(SystemTime::now());
        let due = self.refresh_buffer.min(lifetime / 2) + SAFETY_MARGIN;
        if remaining <= due {
            return Ok(None);
        }
        let token = AccessToken::new(SecretString::from(entry.token))
            .expires_in(remaining)
            .with_scopes(ScopeSet::parse(&entry.scopes));
        let refused = *self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused == Some(digest(token.secret())) {
            return Ok(None);
        }
        Ok(Some(token))
    }

    /// Saves `token` for the others; a failure only costs them a fetch.
    async fn save(&self, key: &StoreKey, sealer: &Sealer, token: &AccessToken) {
        let Some((sealed, ttl)) = sealed(sealer, token) else {
            return;
        };
        if let Err(e) = bounded(self.store.save(key, &sealed, ttl)).await {
            tracing::warn!(error = %e, "could not save the token to the store");
        }
    }

    /// Fetches without the store, after it failed, then offers the token to
    /// it in the background: a store that was only slow (an answer lost to
    /// the timeout, perhaps the lock itself) still gets the token for the
    /// processes waiting on it, and this caller waits for nothing.
    async fn alone<F, Fut>(
        &self,
        shared: Option<(&StoreKey, &Sealer)>,
        grant: F,
        why: &(dyn std::fmt::Display + Sync),
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken>>,
    {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = %why, "token store unusable; fetching the token without it");
        let result = grant().await;
        if let (Ok(token), Some((key, sealer))) = (&result, shared)
            && let Some((entry, ttl)) = sealed(sealer, token)
        {
            let (store, key) = (Arc::clone(&self.store), key.clone());
            tokio::spawn(async move {
                let _ = bounded(store.save(&key, &entry, ttl)).await;
            });
        }
        result
    }
}

impl SharedTokens for SharedStore {
    fn fetch<'a>(&'a self, grant: Grant<'a>, fetch: BoxFetch<'a>) -> BoxFetch<'a> {
        Box::pin(SharedStore::fetch(
            self,
            grant.client_id,
            grant.scopes,
            grant.secret,
            || fetch,
        ))
    }

    fn refused(&self, token: &AccessToken) {
        *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(digest(token.secret()));
    }

    fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }
}

/// `token` sealed for the store, and its remaining life; `None` for a token
/// without expiry (it could never be checked) or if sealing failed.
fn sealed(sealer: &Sealer, token: &AccessToken) -> Option<(Vec<u8>, Duration)> {
    let expires_at = token.expires_at()?;
    let now = SystemTime::now();
    let remaining = expires_at.saturating_duration_since(Instant::now());
    let entry = Entry {
        token: token.secret().expose_secret().to_owned(),
        scopes: token.scopes().map(ScopeSet::to_wire).unwrap_or_default(),
        issued_ms: unix_ms(now),
        expires_ms: unix_ms(now + remaining),
    };
    let sealed = sealer.seal(&entry);
    if sealed.is_none() {
        tracing::warn!("could not seal the token for the store");
    }
    Some((sealed?, remaining))
}

/// `op`, bounded by [`STORE_TIMEOUT`].
async fn bounded<T>(
    op: impl Future<Output = std::result::Result<T, StoreError>>,
) -> std::result::Result<T, StoreError> {
    tokio::time::timeout(STORE_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::new(format!(
                "no answer within {STORE_TIMEOUT:?}"
            )))
        })
}

fn digest(secret: &SecretString) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        secret.expose_secret().as_bytes(),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
