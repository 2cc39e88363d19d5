//! JWKS: the key set a server publishes through OIDC discovery, cached per
//! its `Cache-Control`, refetched on an unknown `kid` at most once per
//! cooldown (counted from the end of the previous fetch), and kept (stale)
//! when a refresh fails. One fetch at a time, on a task of its own: every
//! request that needs it waits for that fetch (up to its own deadline) and
//! shares its outcome. The discovery document is read again once stale;
//! when it cannot be read, the `jwks_uri` known already is used (see
//! [`DISCOVERY_SHARE`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use reqwest::header::CACHE_CONTROL;
use serde::Deserialize;
use tokio::sync::watch;
use url::Url;

use super::cache::{after, now};
use super::error::VerifyError;
use crate::seam::transport::read_body;

/// The largest discovery document or key set read.
const MAX_BODY: u64 = 256 * 1024;
/// `Retry-After` of a 503 when the key set cannot be had (5 s).
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// When a `jwks_uri` is known already, the most of a fetch's deadline that
/// reading the discovery document again may take: half of it. A hung
/// discovery then leaves the other half to fetch the key set from the
/// `jwks_uri` known, so the fallback answers within the deadline of the
/// request that started the fetch (which is as long as the fetch's); an even
/// split, since both are one GET, usually of the one server. Without a
/// `jwks_uri` known there is nothing to fall back to, and discovery may take
/// the whole deadline.
const DISCOVERY_SHARE: u32 = 2;
/// The most requests waiting for one key-set fetch (1024); more are
/// refused with 503 at once rather than queued.
pub(crate) const MAX_WAITERS: usize = 1024;

/// When and how often the key set is fetched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JwksTiming {
    /// The least time between the end of a fetch and the start of the next
    /// one caused by an unknown `kid` or expiry.
    pub(crate) cooldown: Duration,
    /// `Cache-Control: max-age` is clamped to `[min_ttl, max_ttl]` (for the
    /// key set and the discovery document).
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// How long a key set without `max-age` is fresh.
    pub(crate) default_ttl: Duration,
    /// The longest one fetch (discovery and key set) may take.
    pub(crate) deadline: Duration,
}

/// The keys of one fetch.
pub(crate) struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys without a `kid`, for tokens without one.
    unnamed: Vec<DecodingKey>,
    fresh_until: Instant,
    /// When (wall clock) the fetch that brought it started: a token issued
    /// later may be signed by a key published since.
    started: SystemTime,
}

impl KeySet {
    /// The key for a token's `kid`. A token without one is matched only
    /// when the set holds exactly one key, so no key is ever guessed.
    pub(crate) fn key(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.by_kid.len() + self.unnamed.len() == 1 => {
                self.unnamed.first().or_else(|| self.by_kid.values().next())
            }
            None => None,
        }
    }

    /// The key for `kid`, or why there is none: 401 for a token this key
    /// set should know, 503 for one issued (by its unverified `iat`) after
    /// the fetch that brought the set began, whose key may have been
    /// published since (a rotation seen within the refetch cooldown). A
    /// forged `iat` wins nothing but a 503, without any remote call.
    pub(crate) fn key_for(
        &self,
        kid: Option<&str>,
        issued_at: Option<i64>,
    ) -> Result<&DecodingKey, VerifyError> {
        if let Some(key) = self.key(kid) {
            return Ok(key);
        }
        let fetched = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let newer = issued_at
            .and_then(|iat| u64::try_from(iat).ok())
            .is_some_and(|iat| iat > fetched);
        if newer && kid.is_some() {
            Err(unavailable())
        } else {
            Err(VerifyError::InvalidToken)
        }
    }
}

#[derive(Default)]
struct State {
    /// The discovery document's `jwks_uri`, and until when it is fresh
    /// (once stale, still the fallback when discovery cannot be read).
    jwks_uri: Option<(Url, Instant)>,
    keys: Option<Arc<KeySet>>,
    /// When the last fetch ended, and whether it brought a key set.
    last: Option<(Instant, bool)>,
    /// The fetch in flight: its outcome (`Some(brought a key set)`) once it ends.
    in_flight: Option<watch::Receiver<Option<bool>>>,
    /// Requests waiting for it.
    waiters: usize,
}

/// The JWKS source of a verifier.
pub(crate) struct Jwks {
    shared: Arc<Shared>,
}

struct Shared {
    http: reqwest::Client,
    discovery: Url,
    timing: JwksTiming,
    state: Mutex<State>,
    /// Whether a plain http `jwks_uri` off loopback is allowed.
    insecure_http: bool,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("discovery", &self.shared.discovery.as_str())
            .field("timing", &self.shared.timing)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

fn unavailable() -> VerifyError {
    VerifyError::Unavailable {
        retry_after: RETRY_AFTER,
    }
}

impl Jwks {
    pub(crate) fn new(discovery: Url, http: reqwest::Client, timing: JwksTiming) -> Jwks {
        Jwks {
            shared: Arc::new(Shared {
                http,
                discovery,
                timing,
                state: Mutex::new(State::default()),
                insecure_http: false,
            }),
        }
    }

    /// Allows a plain http `jwks_uri` off loopback (`allow_insecure_http`);
    /// set while the verifier is built, before the key set is shared.
    pub(crate) fn allow_insecure_http(mut self, allow: bool) -> Jwks {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.insecure_http = allow;
        }
        self
    }

    /// The key set to check a token with `kid` against: the held one when
    /// it has the key (a stale one is refreshed in the background); else
    /// the one the fetch in flight, or a new one, brings. A key set that
    /// lacks `kid` is returned only when it comes from a fetch that
    /// succeeded (the token is then refused: 401); when the key set could
    /// not be refreshed, or not by `deadline`, `Unavailable` (503): the
    /// token may be fine.
    pub(crate) async fn keys_for(
        &self,
        kid: Option<&str>,
        deadline: tokio::time::Instant,
    ) -> Result<Arc<KeySet>, VerifyError> {
        // Decided under the lock; a fetch is spawned after it is released.
        let (mut outcome, fetch) = {
            let mut state = self.shared.state();
            let now = now();
            if let Some(set) = &state.keys
                && set.key(kid).is_some()
            {
                let set = Arc::clone(set);
                let refresh =
                    (now >= set.fresh_until && state.in_flight.is_none() && self.due(&state, now))
                        .then(|| self.begin_fetch(&mut state).1);
                drop(state);
                if let Some(fetch) = refresh {
                    fetch.spawn();
                }
                return Ok(set);
            }
            if state.in_flight.is_none() && !self.due(&state, now) {
                // Within the cooldown: the last fetch's outcome stands.
                return match (&state.keys, state.last) {
                    (Some(set), Some((_, true))) => Ok(Arc::clone(set)),
                    _ => Err(unavailable()),
                };
            }
            if state.waiters >= MAX_WAITERS {
                return Err(unavailable());
            }
            let started = match &state.in_flight {
                Some(outcome) => (outcome.clone(), None),
                None => {
                    let (outcome, fetch) = self.begin_fetch(&mut state);
                    (outcome, Some(fetch))
                }
            };
            state.waiters += 1;
            started
        };
        let _waiting = Waiting(&self.shared);
        if let Some(fetch) = fetch {
            fetch.spawn();
        }
        let fetched = tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|seen| seen.ok().map(|seen| *seen == Some(true)));
        if fetched != Some(true) {
            return Err(unavailable());
        }
        self.shared.state().keys.clone().ok_or_else(unavailable)
    }

    /// Whether the cooldown since the end of the last fetch has passed.
    fn due(&self, state: &State, now: Instant) -> bool {
        state.last.is_none_or(|(ended, _)| {
            now.saturating_duration_since(ended) >= self.shared.timing.cooldown
        })
    }

    /// Marks a fetch in flight; the caller spawns it once the lock is
    /// released. Its end is recorded however it ends, by a guard armed
    /// here, before the spawn.
    fn begin_fetch(&self, state: &mut State) -> (watch::Receiver<Option<bool>>, Fetch) {
        let (done, outcome) = watch::channel(None);
        state.in_flight = Some(outcome.clone());
        let end = FetchEnd {
            shared: Arc::clone(&self.shared),
            done: Some(done),
        };
        (outcome, Fetch(end))
    }
}

/// A fetch marked in flight, to be spawned.
struct Fetch(FetchEnd);

impl Fetch {
    /// Runs the fetch on a task of its own (so no request's going away
    /// cancels it), bounded by the fetch deadline.
    fn spawn(self) {
        let mut end = self.0;
        tokio::spawn(async move {
            let shared = Arc::clone(&end.shared);
            let fetched = tokio::time::timeout(shared.timing.deadline, shared.fetch()).await;
            let keys = match fetched {
                Ok(Ok(keys)) => Some(keys),
                Ok(Err(reason)) => {
                    tracing::warn!(%reason, "JWKS refresh failed; keeping the key set held, if any");
                    None
                }
                Err(_) => {
                    tracing::warn!("JWKS refresh timed out; keeping the key set held, if any");
                    None
                }
            };
            end.finish(keys);
        });
    }
}

/// One request waiting for a fetch; counted out when it stops waiting.
struct Waiting<'a>(&'a Shared);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.waiters = state.waiters.saturating_sub(1);
    }
}

/// Records the end of a fetch: the key set it brought (if any), when it
/// ended, and wakes its waiters. Dropped unfinished (the task cancelled or
/// never run), the fetch counts as failed.
struct FetchEnd {
    shared: Arc<Shared>,
    done: Option<watch::Sender<Option<bool>>>,
}

impl FetchEnd {
    fn finish(&mut self, keys: Option<KeySet>) {
        let Some(done) = self.done.take() else {
            return;
        };
        let fetched = keys.is_some();
        {
            let mut state = self.shared.state();
            if let Some(keys) = keys {
                state.keys = Some(Arc::new(keys));
            } else if let Some((_, fresh_until)) = &mut state.jwks_uri {
                // The next fetch reads the discovery document again (the
                // key set may have moved); the `jwks_uri` known stays its
                // fallback.
                *fresh_until = now();
            }
            state.last = Some((now(), fetched));
            state.in_flight = None;
        }
        let _ = done.send(Some(fetched));
    }
}

impl Drop for FetchEnd {
    fn drop(&mut self) {
        self.finish(None);
    }
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches the key set (and the discovery document first, when the one
    /// held is stale or none is). A key set with no usable RSA key is a
    /// failure. When the discovery document is read again but cannot be
    /// (no answer within [`DISCOVERY_SHARE`] of the deadline, a transport
    /// error, a non-2xx, a document without a usable `jwks_uri`), the
    /// `jwks_uri` known is used for this fetch and stays stale, so the next
    /// fetch tries discovery again.
    async fn fetch(&self) -> Result<KeySet, String> {
        let t = self.timing;
        let started = SystemTime::now();
        let known = self.state().jwks_uri.clone();
        let jwks_uri = match known {
            Some((uri, fresh_until)) if now() < fresh_until => uri,
            Some((known, _)) => {
                let bound = t.deadline / DISCOVERY_SHARE;
                match tokio::time::timeout(bound, self.discover()).await {
                    Ok(Ok(uri)) => uri,
                    Ok(Err(reason)) => {
                        tracing::warn!(
                            %reason,
                            "discovery document unreadable; fetching the key set from the jwks_uri known"
                        );
                        known
                    }
                    Err(_) => {
                        tracing::warn!(
                            ?bound,
                            "discovery document not read in time; fetching the key set from the jwks_uri known"
                        );
                        known
                    }
                }
            }
            None => self.discover().await?,
        };
        let (body, max_age) = self.get(jwks_uri).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("key set: {e}"))?;
        let (mut by_kid, mut unnamed) = (HashMap::new(), Vec::new());
        for jwk in &set.keys {
            let Some(key) = super::jwk::rs256_verifying_key(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    by_kid.insert(kid.clone(), key);
                }
                None => unnamed.push(key),
            }
        }
        if by_kid.is_empty() && unnamed.is_empty() {
            return Err(format!(
                "the key set holds no usable RSA key ({} keys)",
                set.keys.len()
            ));
        }
        let ttl = max_age.map_or(t.default_ttl, |age| age.clamp(t.min_ttl, t.max_ttl));
        tracing::debug!(keys = by_kid.len() + unnamed.len(), ?ttl, "JWKS fetched");
        Ok(KeySet {
            by_kid,
            unnamed,
            fresh_until: after(now(), ttl),
            started,
        })
    }

    /// Reads the discovery document: its `jwks_uri`, then kept (replacing
    /// the one known) for the document's `max-age`, clamped. Nothing is
    /// kept from a document that fails.
    async fn discover(&self) -> Result<Url, String> {
        let t = self.timing;
        let (body, max_age) = self.get(self.discovery.clone()).await?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|e| format!("discovery document: {e}"))?;
        let uri = Url::parse(&doc.jwks_uri).map_err(|e| format!("jwks_uri: {e}"))?;
        // https, or http under the crate's one rule of plain http.
        if !matches!(uri.scheme(), "https" | "http")
            || !crate::seam::transport::clear_text_allowed(&uri, self.insecure_http)
        {
            return Err(format!(
                "jwks_uri `{}` is not https (plain http only to loopback)",
                uri.origin().ascii_serialization()
            ));
        }
        let ttl = max_age.map_or(t.default_ttl, |age| age.clamp(t.min_ttl, t.max_ttl));
        self.state().jwks_uri = Some((uri.clone(), after(now(), ttl)));
        Ok(uri)
    }

    /// GETs `url`: the body (at most [`MAX_BODY`]) and `Cache-Control: max-age`.
    async fn get(&self, url: Url) -> Result<(Vec<u8>, Option<Duration>), String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        match read_body(&mut response, MAX_BODY)
            .await
            .map_err(|e| e.without_url().to_string())?
        {
            Some(body) => Ok((body.to_vec(), max_age)),
            None => Err(format!("body larger than {MAX_BODY} bytes")),
        }
    }
}

/// `max-age=N` of a `Cache-Control` value (`no-store`/`no-cache` → zero).
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("max-age=\"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-1"), None);
    }
}
