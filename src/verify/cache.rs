//! The verdict cache: bounded (moka), keyed by a SHA-256 of the token, one
//! lookup at a time per token (moka coalesces concurrent `init`s per key).
//! It holds introspection verdicts and, in the local modes, the verdicts of
//! tokens whose signature the verifier checked itself, so a token seen
//! before costs a lookup in every mode.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::principal::AgentPrincipal;

/// A SHA-256 of a token: what the cache holds instead of the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey([u8; 32]);

impl TokenKey {
    pub(crate) fn of(token: &str) -> TokenKey {
        TokenKey(Sha256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sha256:")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

/// What was decided about a token.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    Active(Arc<AgentPrincipal>),
    Inactive,
    /// AgentIdP could not tell (503 with this `Retry-After`); asked again
    /// next time. `known`: the principal of the active verdict this one
    /// replaced, if any, kept with that verdict's lifetimes so the token
    /// stays known active (its next re-check is not charged to the miss
    /// budget, and the grace still applies to a later outage).
    Unavailable {
        retry_after: Duration,
        known: Option<Arc<AgentPrincipal>>,
    },
}

/// A verdict with its lifetimes.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) verdict: Verdict,
    /// Until then the verdict is used as it is; after, AgentIdP is asked again.
    pub(crate) fresh_until: Instant,
    /// An active verdict may still be served until then while AgentIdP is
    /// unreachable (the opt-in grace); never past the token's `exp`.
    pub(crate) grace_until: Option<Instant>,
    /// Kept (not served) until then: an active verdict is kept until the
    /// token's `exp` (two `max_age`s without one), so that asking AgentIdP
    /// again is known to be about a token seen active (not charged to the
    /// miss budget), however long the token was idle.
    pub(crate) kept_until: Instant,
}

impl Entry {
    /// When moka drops the entry.
    fn evict_at(&self) -> Instant {
        let kept = self.kept_until.max(self.fresh_until);
        self.grace_until.map_or(kept, |g| g.max(kept))
    }

    /// Whether the verdict is "active", fresh or not.
    pub(crate) fn was_active(&self) -> bool {
        self.known_active().is_some()
    }

    /// The principal of the last active verdict on the token, if it was
    /// active and that is still kept (a failed re-check since included).
    pub(crate) fn known_active(&self) -> Option<&Arc<AgentPrincipal>> {
        match &self.verdict {
            Verdict::Active(principal)
            | Verdict::Unavailable {
                known: Some(principal),
                ..
            } => Some(principal),
            _ => None,
        }
    }

    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }
}

/// Entries live until their own [`Entry::evict_at`].
struct PerEntry;

/// Now, on tokio's clock: the real instant, or a test's paused one, so a
/// test on `start_paused` steps through max ages and cooldowns with
/// `tokio::time::advance` instead of sleeping. (moka still evicts on its own
/// clock; freshness is decided here.)
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// `now + wait`, saturated: a setting of `Duration::MAX` means "as long as
/// can be", never a panic on `Instant` overflow.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(crate::seam::transport::LONGEST))
        .unwrap_or(now)
}

impl moka::Expiry<TokenKey, Entry> for PerEntry {
    fn expire_after_create(&self, _: &TokenKey, entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.evict_at().saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &TokenKey,
        entry: &Entry,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.evict_at().saturating_duration_since(now))
    }
}

/// The bounded cache of verdicts.
#[derive(Clone)]
pub(crate) struct VerdictCache {
    entries: moka::future::Cache<TokenKey, Entry>,
}

impl fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl VerdictCache {
    pub(crate) fn new(capacity: u64) -> VerdictCache {
        VerdictCache {
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerEntry)
                .build(),
        }
    }

    /// The fresh verdict for `key`, else the one `lookup` makes from the
    /// stale entry (if any); concurrent callers for one key share one lookup.
    /// `refuse` may answer first, from the stale entry, with a verdict that
    /// is not cached (a spent miss budget: a flood of unknown tokens must not
    /// push known ones out of the cache).
    pub(crate) async fn get_or_lookup<F, Fut>(
        &self,
        key: TokenKey,
        refuse: impl FnOnce(Option<&Entry>) -> Option<Entry>,
        lookup: F,
    ) -> Entry
    where
        F: FnOnce(Option<Entry>) -> Fut,
        Fut: Future<Output = Entry>,
    {
        let stale = match self.entries.get(&key).await {
            Some(entry) if entry.is_fresh(now()) => return entry,
            other => other,
        };
        if let Some(refused) = refuse(stale.as_ref()) {
            return refused;
        }
        self.entries
            .entry(key)
            .or_insert_with_if(lookup(stale), |entry| !entry.is_fresh(now()))
            .await
            .into_value()
    }

    /// The entry for `key` if it is fresh: a cache hit.
    pub(crate) async fn fresh(&self, key: &TokenKey) -> Option<Entry> {
        self.entries
            .get(key)
            .await
            .filter(|entry| entry.is_fresh(now()))
    }

    /// Keeps the verdict of a token verified locally (a signature checked
    /// by the verifier itself): active for `max_age`, never past the token's
    /// `exp` (a token without one is not kept).
    pub(crate) async fn keep_verified(
        &self,
        key: TokenKey,
        principal: &AgentPrincipal,
        max_age: Duration,
    ) {
        let left = principal.expires_at.map_or(Duration::ZERO, |exp| {
            exp.duration_since(SystemTime::now()).unwrap_or_default()
        });
        if left.is_zero() {
            return;
        }
        let fresh_until = after(now(), max_age.min(left));
        let entry = Entry {
            verdict: Verdict::Active(Arc::new(principal.clone())),
            fresh_until,
            grace_until: None,
            // A verified signature owes the miss budget nothing.
            kept_until: fresh_until,
        };
        self.entries.insert(key, entry).await;
    }

    /// Every key and entry, for the test that proves no token is held.
    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn snapshot(&self) -> Vec<(TokenKey, Entry)> {
        self.entries
            .iter()
            .map(|(key, entry)| (*key, entry))
            .collect()
    }
}
