//! JWKS: the key set a server publishes through OIDC discovery, cached per
//! its `Cache-Control`, refetched on an unknown `kid` at most once per
//! cooldown, and kept (stale) when a refresh fails.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use reqwest::header::CACHE_CONTROL;
use serde::Deserialize;
use url::Url;

use super::error::VerifyError;
use crate::seam::transport::read_body;

/// The largest discovery document or key set read.
const MAX_BODY: u64 = 256 * 1024;
/// `Retry-After` of a 503 when no key set could be had: 5 s.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// When and how often the key set is fetched.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JwksTiming {
    /// The least time between two fetches started by a refresh.
    pub(crate) cooldown: Duration,
    /// `Cache-Control: max-age` is clamped to `[min_ttl, max_ttl]`.
    pub(crate) min_ttl: Duration,
    pub(crate) max_ttl: Duration,
    /// How long a key set without `max-age` is fresh.
    pub(crate) default_ttl: Duration,
}

/// The keys of one fetch.
pub(crate) struct KeySet {
    by_kid: HashMap<String, DecodingKey>,
    /// Keys without a `kid`, for tokens without one.
    unnamed: Vec<DecodingKey>,
    fresh_until: Instant,
    generation: u64,
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
}

#[derive(Default)]
struct State {
    jwks_uri: Option<Url>,
    keys: Option<Arc<KeySet>>,
    last_fetch: Option<Instant>,
    generations: u64,
}

/// The JWKS source of a verifier.
pub(crate) struct Jwks {
    http: reqwest::Client,
    discovery: Url,
    timing: JwksTiming,
    state: Mutex<State>,
    /// One refresh at a time; held across the fetch only, never while
    /// `state` is locked.
    gate: tokio::sync::Mutex<()>,
    /// Whether a plain http `jwks_uri` off loopback is allowed.
    insecure_http: bool,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("discovery", &self.discovery.as_str())
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl Jwks {
    pub(crate) fn new(discovery: Url, http: reqwest::Client, timing: JwksTiming) -> Jwks {
        Jwks {
            http,
            discovery,
            timing,
            state: Mutex::new(State::default()),
            gate: tokio::sync::Mutex::new(()),
            insecure_http: false,
        }
    }

    /// Allows a plain http `jwks_uri` off loopback (`allow_insecure_http`).
    pub(crate) fn allow_insecure_http(mut self, allow: bool) -> Jwks {
        self.insecure_http = allow;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the cooldown since the last fetch has passed; if so, takes
    /// the slot (the caller fetches).
    fn take_fetch_slot(&self) -> bool {
        let mut state = self.state();
        let now = super::cache::now();
        let due = state
            .last_fetch
            .is_none_or(|last| now.duration_since(last) >= self.timing.cooldown);
        if due {
            state.last_fetch = Some(now);
        }
        due
    }

    /// The key set to check a token with `kid` against: the cached one when
    /// it has the key and is fresh; otherwise after one refresh, if the
    /// cooldown allows it. `Unavailable` only when no key set was ever had.
    pub(crate) async fn keys_for(&self, kid: Option<&str>) -> Result<Arc<KeySet>, VerifyError> {
        let current = self.state().keys.clone();
        if let Some(set) = &current
            && set.key(kid).is_some()
        {
            if super::cache::now() >= set.fresh_until
                && let Ok(_gate) = self.gate.try_lock()
                && self.take_fetch_slot()
            {
                self.refresh().await;
                return Ok(self.state().keys.clone().unwrap_or_else(|| set.clone()));
            }
            return Ok(set.clone());
        }
        // An unknown `kid`, or no key set yet: wait for the refresh under way
        // or make one, unless one was made within the cooldown.
        let seen = current.as_ref().map(|set| set.generation);
        let _gate = self.gate.lock().await;
        let now_seen = self.state().keys.as_ref().map(|set| set.generation);
        if now_seen == seen && self.take_fetch_slot() {
            self.refresh().await;
        }
        self.state().keys.clone().ok_or(VerifyError::Unavailable {
            retry_after: RETRY_AFTER,
        })
    }

    /// Fetches the key set (and the discovery document, the first time);
    /// on failure the current key set stays.
    async fn refresh(&self) {
        match self.fetch().await {
            Ok((by_kid, unnamed, ttl)) => {
                let mut state = self.state();
                state.generations += 1;
                tracing::debug!(keys = by_kid.len() + unnamed.len(), ?ttl, "JWKS fetched");
                state.keys = Some(Arc::new(KeySet {
                    by_kid,
                    unnamed,
                    fresh_until: super::cache::after(super::cache::now(), ttl),
                    generation: state.generations,
                }));
            }
            Err(reason) => {
                tracing::warn!(%reason, "JWKS refresh failed; keeping the key set held, if any");
            }
        }
    }

    async fn fetch(
        &self,
    ) -> Result<(HashMap<String, DecodingKey>, Vec<DecodingKey>, Duration), String> {
        let known = self.state().jwks_uri.clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => {
                let (body, _) = self.get(self.discovery.clone()).await?;
                let doc: Discovery = serde_json::from_slice(&body)
                    .map_err(|e| format!("discovery document: {e}"))?;
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
                self.state().jwks_uri = Some(uri.clone());
                uri
            }
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
        let t = self.timing;
        let ttl = max_age.map_or(t.default_ttl, |age| age.clamp(t.min_ttl, t.max_ttl));
        Ok((by_kid, unnamed, ttl))
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
