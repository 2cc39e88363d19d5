//! The verdict cache: bounded (moka), keyed by a keyed hash of the token
//! (never the token), one lookup at a time per token (moka coalesces
//! concurrent `init`s per key).
//! It holds introspection verdicts and, in the local modes, the verdicts of
//! tokens whose signature the verifier checked itself, so a token seen
//! before costs a lookup in every mode.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use siphasher::sip128::{Hasher128, SipHasher24};

use super::principal::AgentPrincipal;
use super::verified::{Kept, Verified};

/// What the cache holds instead of a token: its 128-bit SipHash-2-4 under
/// the cache's own random key.
///
/// SipHash-2-4 is a pseudorandom function: without the key (drawn from the
/// OS at `build()`, never shown), a sender can only guess which token
/// shares a cached token's key, with odds of 2⁻¹²⁸ per cached token, so a
/// hit is as good as comparing the tokens. An unkeyed fast hash could be
/// steered into a crafted collision; a SHA-256 would do as well but costs
/// ten times the instructions on CPUs without SHA extensions, on every
/// request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenKey(u128);

impl TokenKey {
    /// Which of `shards` holds this key: by its high bits (the maps hash by
    /// the low ones).
    pub(crate) fn shard(&self, shards: usize) -> usize {
        ((self.0 >> 64) as u64 % shards as u64) as usize
    }
}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniform: half of it is as good a hash as any.
        state.write_u64(self.0 as u64);
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "siphash:{:08x}…", (self.0 >> 96) as u32)
    }
}

/// Makes [`TokenKey`]s: SipHash-2-4-128 under a random key of its own.
#[derive(Clone)]
pub(crate) struct TokenHasher {
    key: [u8; 16],
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHasher(random key)")
    }
}

impl TokenHasher {
    /// A hasher with a fresh random key from the OS.
    pub(crate) fn new() -> Result<TokenHasher, getrandom::Error> {
        let mut key = [0; 16];
        getrandom::fill(&mut key)?;
        Ok(TokenHasher { key })
    }

    pub(crate) fn key_of(&self, token: &[u8]) -> TokenKey {
        let mut hasher = SipHasher24::new_with_key(&self.key);
        hasher.write(token);
        TokenKey(hasher.finish128().as_u128())
    }
}

/// The maps' hasher for [`TokenKey`]s, which need no second hash.
#[derive(Clone, Copy, Default)]
pub(crate) struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;

    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

#[derive(Default)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not reached by `TokenKey` (it writes one u64); folds the bytes in
    /// so any other use still spreads.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
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
    /// Introspected verdicts (and anything else but a local check's).
    entries: moka::future::Cache<TokenKey, Entry, PassThrough>,
    /// Verdicts of local checks: see [`Verified`].
    verified: Arc<Verified>,
    /// Whether `entries` is used at all (not by the local-only modes).
    introspects: bool,
    hasher: TokenHasher,
}

impl fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerdictCache")
            .field("entries", &self.entries.entry_count())
            .field("verified", &self.verified.len())
            .finish()
    }
}

impl VerdictCache {
    /// A cache of at most `capacity` verdicts; fails only if the OS has
    /// no random bytes for its key.
    pub(crate) fn new(capacity: u64, introspects: bool) -> Result<VerdictCache, getrandom::Error> {
        Ok(VerdictCache {
            entries: moka::future::Cache::builder()
                .max_capacity(capacity)
                .expire_after(PerEntry)
                .build_with_hasher(PassThrough),
            verified: Arc::new(Verified::new(capacity)),
            introspects,
            hasher: TokenHasher::new()?,
        })
    }

    /// The key `token`'s verdict is kept under.
    pub(crate) fn key_of(&self, token: &[u8]) -> TokenKey {
        self.hasher.key_of(token)
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

    /// The verdict for `key` if it is fresh: a cache hit.
    pub(crate) async fn fresh(&self, key: &TokenKey) -> Option<Verdict> {
        let now = now();
        if let Some(principal) = self.verified.fresh(key, now) {
            return Some(Verdict::Active(principal));
        }
        if !self.introspects {
            return None;
        }
        self.entries
            .get(key)
            .await
            .filter(|entry| entry.is_fresh(now))
            .map(|entry| entry.verdict)
    }

    /// Keeps the verdict of a token verified locally (a signature checked
    /// by the verifier itself): active for `max_age`, never past the token's
    /// `exp` (a token without one is not kept); a `max_age` of zero keeps
    /// nothing.
    pub(crate) fn keep_verified(
        &self,
        key: TokenKey,
        principal: &AgentPrincipal,
        max_age: Duration,
    ) {
        let left = principal.expires_at.map_or(Duration::ZERO, |exp| {
            exp.duration_since(SystemTime::now()).unwrap_or_default()
        });
        if left.is_zero() || max_age.is_zero() {
            return;
        }
        self.verified.keep(
            key,
            Kept {
                principal: Arc::new(principal.clone()),
                fresh_until: after(now(), max_age.min(left)),
            },
        );
    }

    /// Every key and entry, for the test that proves no token is held.
    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn snapshot(&self) -> Vec<(TokenKey, Entry)> {
        let verified = self.verified.snapshot().into_iter().map(|(key, kept)| {
            let entry = Entry {
                verdict: Verdict::Active(kept.principal),
                fresh_until: kept.fresh_until,
                grace_until: None,
                kept_until: kept.fresh_until,
            };
            (key, entry)
        });
        self.entries
            .iter()
            .map(|(key, entry)| (*key, entry))
            .chain(verified)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key is a function of the token under the hasher's own random key:
    /// stable for one hasher, different across hasher (so no one can work
    /// out offline which token would share a cached token's key), and its
    /// `Debug` shows 32 bits of it, never the token.
    #[test]
    fn token_keys_are_keyed_per_verifier_and_show_no_token() {
        let (a, b) = (TokenHasher::new().unwrap(), TokenHasher::new().unwrap());
        let token = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        assert_eq!(a.key_of(token), a.key_of(token));
        assert_ne!(a.key_of(token), b.key_of(token));
        assert_ne!(a.key_of(token), a.key_of(&token[..token.len() - 1]));
        let shown = format!("{:?} {a:?}", a.key_of(token));
        assert!(
            shown.starts_with("siphash:") && !shown.contains("eyJ"),
            "{shown}"
        );
        assert_eq!(
            shown.len(),
            "siphash:".len() + 8 + "…".len() + " TokenHasher(random key)".len()
        );
    }
}
