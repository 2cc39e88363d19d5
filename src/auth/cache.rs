//! The token cache: single-flight fetches and background refresh.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use secrecy::{ExposeSecret, SecretString};

use super::grant::ClientCredentials;
use super::refresh::{MIN_REFRESH_INTERVAL, refresh_at};
use super::source::{BoxFetch, DynTokenSource};
use crate::access_token::AccessToken;
use crate::error::{Error, ErrorKind, Result};
use crate::scope::ScopeSet;
use crate::seam::TokenProvider;

type Fetch = Shared<BoxFuture<'static, Result<Arc<AccessToken>>>>;

/// Default refresh buffer: a token is refreshed 60 s before it expires (at
/// most half its lifetime, see
/// [`ClientBuilder::refresh_buffer`](crate::ClientBuilder::refresh_buffer)).
pub const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);

/// Where the cache's tokens come from.
pub(crate) enum Source {
    /// The client-credentials grant: narrowed, proved, re-read, shared.
    Credentials(ClientCredentials),
    /// A token source of the user's.
    Custom(Box<dyn DynTokenSource>),
}

impl Source {
    fn fetch(&self) -> BoxFetch<'_> {
        match self {
            Source::Credentials(credentials) => credentials.fetch_boxed(),
            Source::Custom(source) => source.fetch_boxed(),
        }
    }
}

/// When the cache refreshes and how long a fetch may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CacheSettings {
    pub refresh_buffer: Duration,
    /// One fetch, by any source.
    pub fetch_timeout: Duration,
}

/// Caches the current token in front of a [`DynTokenSource`].
///
/// - A token not yet due for refresh is returned at once.
/// - A token due for refresh but not expired is still returned at once, and
///   one background refresh starts; nobody waits on the network.
/// - With no usable token, callers share one fetch. The fetch runs in its
///   own task, so a caller that gives up does not cancel it for the others;
///   and whatever way the task ends (an answer, an error, a panic, the token
///   timeout, its runtime shutting down, even before the task first ran),
///   the cache forgets it, so the next caller starts a new one.
pub(crate) struct TokenCache {
    source: Source,
    settings: CacheSettings,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    fetching: Option<(u64, Fetch)>,
    /// Ids the fetches, so a fetch only clears itself.
    next_fetch: u64,
    /// No background refresh before this.
    quiet_until: Option<Instant>,
    /// Bumped by `clear`, so a fetch started before it cannot store its
    /// (possibly stale-secret) result afterwards.
    generation: u64,
}

struct Cached {
    token: Arc<AccessToken>,
    refresh_at: Option<Instant>,
}

impl TokenCache {
    pub(crate) fn new(source: Source, settings: CacheSettings) -> Arc<Self> {
        Arc::new(Self {
            source,
            settings,
            state: Mutex::new(State::default()),
        })
    }

    /// A cache of its own for the same credentials narrowed to `scopes`
    /// (see [`ClientCredentials::narrowed`]).
    pub(crate) fn narrowed(&self, scopes: ScopeSet) -> Result<Arc<Self>> {
        let credentials = self
            .client_credentials()
            .ok_or_else(|| Error::config("only a client-credentials client can be narrowed"))?;
        let granted = self.peek().and_then(|t| t.scopes().cloned());
        let narrowed = credentials.narrowed(granted.as_ref(), scopes)?;
        Ok(Self::new(Source::Credentials(narrowed), self.settings))
    }

    /// The current token, fetching or refreshing as needed. A caller that
    /// joined a fetch someone else started, which then ended abnormally (it
    /// hung past the token timeout, panicked, or was cancelled with its
    /// runtime), starts one fetch of its own rather than inherit that fate.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Arc<AccessToken>> {
        let (fetch, joined) = match self.cached_or_fetch() {
            Ok(token) => return Ok(token),
            Err(pending) => pending,
        };
        match fetch.await {
            Err(e) if joined && matches!(e.kind(), ErrorKind::Timeout | ErrorKind::TokenSource) => {
                match self.cached_or_fetch() {
                    Ok(token) => Ok(token),
                    Err((fetch, _)) => fetch.await,
                }
            }
            other => other,
        }
    }

    /// The cached token, or the fetch to wait for and whether it was
    /// already running.
    fn cached_or_fetch(self: &Arc<Self>) -> std::result::Result<Arc<AccessToken>, (Fetch, bool)> {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(cached) = &state.current {
            let token = Arc::clone(&cached.token);
            match (token.expires_at(), cached.refresh_at) {
                (None, _) => return Ok(token),
                (Some(_), Some(due)) if now < due => return Ok(token),
                (Some(expiry), _) if now < expiry => {
                    let quiet = state.quiet_until.is_some_and(|q| now < q);
                    if state.fetching.is_none() && !quiet {
                        let _background = self.start_fetch(state, now);
                    }
                    return Ok(token);
                }
                (Some(_), _) => state.current = None,
            }
        }
        let joined = state.fetching.is_some();
        Err((self.start_fetch(state, now), joined))
    }

    /// The cached token if it is not yet due for refresh, without waiting:
    /// the common path of every call.
    pub(crate) fn fresh(&self) -> Option<Arc<AccessToken>> {
        let state = self.lock();
        let cached = state.current.as_ref()?;
        let fresh = match (cached.token.expires_at(), cached.refresh_at) {
            (None, _) => true,
            (Some(_), Some(due)) => Instant::now() < due,
            (Some(_), None) => false,
        };
        fresh.then(|| Arc::clone(&cached.token))
    }

    /// Forgets `used` (after the server refused it), unless a newer token
    /// already replaced it.
    pub(crate) fn invalidate(&self, used: &Arc<AccessToken>) {
        let mut state = self.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(&c.token, used))
        {
            state.current = None;
            if let Source::Credentials(credentials) = &self.source {
                credentials.refused(used);
            }
        }
    }

    /// `revoked` was revoked: if it is the cached token, the cache forgets
    /// it (and any fetch in flight, which may bring it back from the token
    /// store); the token store forgets it too and removes its entry.
    pub(crate) async fn revoked(&self, revoked: &SecretString) {
        let Source::Credentials(credentials) = &self.source else {
            if self.holds(revoked) {
                self.clear();
            }
            return;
        };
        // The store first: a fetch started after `clear` must not find it
        // there.
        credentials.revoked(revoked).await;
        if self.holds(revoked) {
            self.clear();
        }
    }

    /// Whether the cached token is `token`.
    fn holds(&self, token: &SecretString) -> bool {
        self.lock().current.as_ref().is_some_and(|c| {
            c.token.secret().expose_secret().as_bytes() == token.expose_secret().as_bytes()
        })
    }

    /// Forgets the cached token; the next call fetches a new one.
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.current = None;
        state.fetching = None;
        state.quiet_until = None;
        state.generation += 1;
    }

    /// The cached token, if any, without fetching.
    pub(crate) fn peek(&self) -> Option<Arc<AccessToken>> {
        self.lock().current.as_ref().map(|c| Arc::clone(&c.token))
    }

    pub(crate) fn client_credentials(&self) -> Option<&ClientCredentials> {
        match &self.source {
            Source::Credentials(credentials) => Some(credentials),
            Source::Custom(_) => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every state the fields can hold is valid, even after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one fetch unless one is running; returns the shared fetch.
    ///
    /// Takes the lock guard: the fetch is published under it, and the task
    /// is spawned after it is released, since a task spawned onto a runtime
    /// that is shutting down is dropped at once, inside `spawn`, and its
    /// [`Forget`] takes the lock.
    fn start_fetch(self: &Arc<Self>, mut state: MutexGuard<'_, State>, now: Instant) -> Fetch {
        if let Some((_, fetch)) = &state.fetching {
            return fetch.clone();
        }
        let id = state.next_fetch;
        state.next_fetch += 1;
        state.quiet_until = now.checked_add(MIN_REFRESH_INTERVAL);
        let generation = state.generation;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let fetch = async move {
            // The sender goes without a word only if the task was dropped:
            // its runtime shut down, before or while it ran.
            answered.await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::TokenSource,
                    "the token fetch was cancelled (the runtime it ran on shut down)",
                ))
            })
        }
        .boxed()
        .shared();
        state.fetching = Some((id, fetch.clone()));
        drop(state);
        // Armed before the spawn and moved into the task: a task dropped
        // before its first poll (its runtime shut down) drops it too, so the
        // cache forgets the fetch however the task ends.
        let forget = Forget {
            cache: Arc::clone(self),
            id,
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _forget = forget;
            let timed = tokio::time::timeout(this.settings.fetch_timeout, this.source.fetch());
            let result = match AssertUnwindSafe(timed).catch_unwind().await {
                Ok(Ok(result)) => result.map(Arc::new),
                Ok(Err(_)) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the token source did not answer within {:?}",
                        this.settings.fetch_timeout
                    ),
                )),
                Err(_) => Err(Error::new(
                    ErrorKind::TokenSource,
                    "the token source panicked",
                )),
            };
            this.store(generation, &result);
            // Nobody waiting is not an error: a background refresh.
            let _ = answer.send(result);
        });
        fetch
    }

    /// Keeps a fetched token, unless the cache was cleared since the fetch began.
    fn store(&self, generation: u64, result: &Result<Arc<AccessToken>>) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        match result {
            Ok(token) => {
                let received = Instant::now();
                let refresh_at = token.expires_at().map(|expiry| {
                    refresh_at(
                        received,
                        expiry,
                        self.settings.refresh_buffer,
                        fastrand::f64(),
                    )
                });
                state.current = Some(Cached {
                    token: Arc::clone(token),
                    refresh_at,
                });
                // A new token is refreshed at its own `refresh_at`: a quiet
                // period after a success would let a short-lived token expire
                // first and stall every caller on a foreground fetch.
                state.quiet_until = None;
            }
            Err(_) => state.quiet_until = Instant::now().checked_add(MIN_REFRESH_INTERVAL),
        }
    }
}

impl TokenProvider for TokenCache {
    fn fresh(&self) -> Option<Arc<AccessToken>> {
        TokenCache::fresh(self)
    }

    fn token(self: Arc<Self>) -> BoxFuture<'static, Result<Arc<AccessToken>>> {
        Box::pin(async move { TokenCache::token(&self).await })
    }

    fn invalidate(&self, used: &Arc<AccessToken>) {
        TokenCache::invalidate(self, used)
    }
}

/// Forgets the fetch `id` when dropped: at its end, or when its task is
/// cancelled, before its first poll included (it is made before the spawn).
struct Forget {
    cache: Arc<TokenCache>,
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        if state
            .fetching
            .as_ref()
            .is_some_and(|(id, _)| *id == self.id)
        {
            state.fetching = None;
        }
    }
}
