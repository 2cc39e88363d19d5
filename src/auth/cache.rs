//! The token cache: single-flight fetches and background refresh.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::source::{AccessToken, ClientCredentials, DynTokenSource};
use crate::error::{Error, Result};

type Fetch = Shared<BoxFuture<'static, Result<Arc<AccessToken>>>>;

/// Caches the current token in front of a [`DynTokenSource`].
///
/// - A fresh token (more than `refresh_buffer` from expiry) is returned at once.
/// - A token inside the buffer is still returned at once, and one background
///   refresh starts; nobody waits on the network.
/// - With no usable token, callers share one fetch. The fetch runs in its own
///   task, so a caller that gives up (drops its future) does not cancel it
///   for the others.
pub(crate) struct TokenCache {
    source: Box<dyn DynTokenSource>,
    refresh_buffer: Duration,
    state: Mutex<State>,
}

/// After a background refresh fails, the next one waits this long, so a
/// token endpoint that is down is not asked again on every call while the
/// cached token is still good.
const BACKGROUND_RETRY_DELAY: Duration = Duration::from_secs(5);

#[derive(Default)]
struct State {
    current: Option<Arc<AccessToken>>,
    fetching: Option<Fetch>,
    /// No background refresh before this (after one failed).
    quiet_until: Option<Instant>,
    /// Bumped by `clear`, so a fetch started before it cannot store its
    /// (possibly stale-secret) result afterwards.
    generation: u64,
}

impl TokenCache {
    pub(crate) fn new(source: Box<dyn DynTokenSource>, refresh_buffer: Duration) -> Arc<Self> {
        Arc::new(Self {
            source,
            refresh_buffer,
            state: Mutex::new(State::default()),
        })
    }

    /// The current token, fetching or refreshing as needed.
    pub(crate) async fn token(self: &Arc<Self>) -> Result<Arc<AccessToken>> {
        let fetch = {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(token) = state.current.clone() {
                match token.expires_at() {
                    None => return Ok(token),
                    Some(at) if now + self.refresh_buffer < at => return Ok(token),
                    Some(at) if now < at => {
                        if state.quiet_until.is_none_or(|quiet| now >= quiet) {
                            let _background = self.start_fetch(&mut state);
                        }
                        return Ok(token);
                    }
                    Some(_) => state.current = None,
                }
            }
            self.start_fetch(&mut state)
        };
        fetch.await
    }

    /// Forgets `used` (after the server refused it), unless a newer token
    /// already replaced it.
    pub(crate) fn invalidate(&self, used: &Arc<AccessToken>) {
        let mut state = self.lock();
        if state.current.as_ref().is_some_and(|t| Arc::ptr_eq(t, used)) {
            state.current = None;
        }
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
        self.lock().current.clone()
    }

    pub(crate) fn client_credentials(&self) -> Option<&ClientCredentials> {
        self.source.narrowable()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every state the fields can hold is valid, even after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts one fetch unless one is running; returns the shared fetch.
    fn start_fetch(self: &Arc<Self>, state: &mut State) -> Fetch {
        if let Some(fetch) = &state.fetching {
            return fetch.clone();
        }
        let this = Arc::clone(self);
        let generation = state.generation;
        let task = tokio::spawn(async move {
            let result = this.source.fetch_boxed().await.map(Arc::new);
            let mut state = this.lock();
            if state.generation == generation {
                state.fetching = None;
                match &result {
                    Ok(token) => {
                        state.current = Some(Arc::clone(token));
                        state.quiet_until = None;
                    }
                    Err(_) => state.quiet_until = Some(Instant::now() + BACKGROUND_RETRY_DELAY),
                }
            }
            result
        });
        let fetch = async move {
            task.await
                .unwrap_or_else(|_| Err(Error::config("the token fetch task was cancelled")))
        }
        .boxed()
        .shared();
        state.fetching = Some(fetch.clone());
        fetch
    }
}
