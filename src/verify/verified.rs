//! The verdicts of tokens whose signature the verifier checked itself (PEM
//! and JWKS modes without introspection): a bounded, sharded map under short
//! locks.
//!
//! These need none of what the moka cache gives the introspected verdicts
//! (lookups shared between concurrent callers, grace and kept lifetimes,
//! admission by frequency): a local check is CPU work with one lifetime,
//! "fresh until". Filling moka costs a first sight about 2 µs of memory
//! traffic at ten thousand entries, more than the 5 % of an RS256 check a
//! first sight may cost over `jsonwebtoken::decode`; an insert here is one
//! short lock and one map slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::cache::{PassThrough, TokenKey};
use super::principal::AgentPrincipal;

/// Shards: enough that threads of a busy service rarely meet on one lock.
const SHARDS: usize = 64;

/// A verified token's principal and until when it is served.
#[derive(Clone)]
pub(crate) struct Kept {
    pub(crate) principal: Arc<AgentPrincipal>,
    pub(crate) fresh_until: Instant,
}

type Shard = HashMap<TokenKey, Kept, PassThrough>;

/// At most `capacity` verdicts in all (rounded up to a multiple of the
/// shards); a full shard drops one verdict, its stale ones first seen on
/// reads. Keys are keyed hashes, so the shard and the verdict dropped are as
/// good as random and no sender can aim at one.
pub(crate) struct Verified {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl Verified {
    pub(crate) fn new(capacity: u64) -> Verified {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Verified {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn shard(&self, key: &TokenKey) -> MutexGuard<'_, Shard> {
        // The high bits pick the shard; the map hashes by the low ones.
        let index = key.shard(SHARDS);
        // No code holding the lock can panic; a poisoned map is still whole.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The principal kept for `key`, if still fresh at `now`; a stale one
    /// is dropped.
    pub(crate) fn fresh(&self, key: &TokenKey, now: Instant) -> Option<Arc<AgentPrincipal>> {
        let mut shard = self.shard(key);
        let kept = shard.get(key)?;
        if now < kept.fresh_until {
            return Some(Arc::clone(&kept.principal));
        }
        shard.remove(key);
        None
    }

    /// Keeps `principal` for `key` until `fresh_until`.
    pub(crate) fn keep(&self, key: TokenKey, kept: Kept) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(&key);
        if shard.len() >= self.per_shard
            && !shard.contains_key(&key)
            && let Some(victim) = shard.keys().next().copied()
        {
            shard.remove(&victim);
        }
        shard.insert(key, kept);
    }

    /// Every key and verdict, for the tests that prove no token is held.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<(TokenKey, Kept)> {
        self.shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
                shard
                    .iter()
                    .map(|(key, kept)| (*key, kept.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::verify::cache::TokenHasher;

    fn principal() -> Arc<AgentPrincipal> {
        Arc::new(AgentPrincipal {
            agent_id: crate::model::Uuid::nil(),
            client_id: String::new(),
            scopes: crate::scope::ScopeSet::new(),
            jti: None,
            expires_at: None,
            issued_at: None,
        })
    }

    /// Bounded by the capacity however many tokens come; a stale verdict is
    /// never served and is dropped when read.
    #[test]
    fn holds_at_most_its_capacity_and_never_serves_a_stale_verdict() {
        let hasher = TokenHasher::new().unwrap();
        let verified = Verified::new(640);
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        for n in 0..10_000u32 {
            let kept = Kept {
                principal: principal(),
                fresh_until: later,
            };
            verified.keep(hasher.key_of(&n.to_le_bytes()), kept);
        }
        let held = verified.snapshot().len();
        assert!((600..=640).contains(&held), "{held} held");
        let last = hasher.key_of(&9_999u32.to_le_bytes());
        assert!(verified.fresh(&last, now).is_some(), "the newest is kept");
        assert!(
            verified.fresh(&last, later).is_none(),
            "stale at fresh_until"
        );
        assert!(verified.fresh(&last, now).is_none(), "and dropped");
        assert!(Verified::new(0).snapshot().is_empty());
        let none = Verified::new(0);
        none.keep(
            last,
            Kept {
                principal: principal(),
                fresh_until: later,
            },
        );
        assert!(none.fresh(&last, now).is_none(), "capacity 0 keeps nothing");
    }
}
