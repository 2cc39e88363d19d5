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

type Map = HashMap<TokenKey, Kept, PassThrough>;

/// One shard: its verdicts under one lock, and how many it may hold.
struct Shard {
    slots: Mutex<Slots>,
    /// This shard's part of the capacity.
    bound: usize,
}

#[derive(Default)]
struct Slots {
    map: Map,
    /// No verdict in `map` is stale before then (a lower bound of their
    /// `fresh_until`): a full shard looks for stale verdicts only from then.
    sweep_at: Option<Instant>,
}

/// At most `capacity` verdicts in all (each shard holds its share, the
/// remainder spread over the first shards); a full shard drops its stale
/// verdicts first, then one verdict. Keys are keyed hashes, so the shard and
/// the verdict dropped are as good as random and no sender can aim at one.
pub(crate) struct Verified {
    shards: Box<[Shard]>,
}

impl Verified {
    pub(crate) fn new(capacity: u64) -> Verified {
        let shards = SHARDS as u64;
        let (each, rest) = (capacity / shards, capacity % shards);
        Verified {
            shards: (0..shards)
                .map(|index| {
                    let bound = each + u64::from(index < rest);
                    Shard {
                        slots: Mutex::new(Slots::default()),
                        bound: usize::try_from(bound).unwrap_or(usize::MAX),
                    }
                })
                .collect(),
        }
    }

    fn shard(&self, key: &TokenKey) -> (&Shard, MutexGuard<'_, Slots>) {
        // The high bits pick the shard; the map hashes by the low ones.
        let shard = &self.shards[key.shard(SHARDS)];
        // No code holding the lock can panic; a poisoned map is still whole.
        let slots = shard.slots.lock().unwrap_or_else(PoisonError::into_inner);
        (shard, slots)
    }

    /// The principal kept for `key`, if still fresh at `now`; a stale one
    /// is dropped.
    pub(crate) fn fresh(&self, key: &TokenKey, now: Instant) -> Option<Arc<AgentPrincipal>> {
        let (_, mut slots) = self.shard(key);
        let kept = slots.map.get(key)?;
        if now < kept.fresh_until {
            return Some(Arc::clone(&kept.principal));
        }
        slots.map.remove(key);
        None
    }

    /// Keeps `principal` for `key` until `fresh_until` (a verdict already
    /// stale is not kept).
    pub(crate) fn keep(&self, key: TokenKey, kept: Kept) {
        let now = super::cache::now();
        if now >= kept.fresh_until {
            return;
        }
        let (shard, mut slots) = self.shard(&key);
        if shard.bound == 0 {
            return;
        }
        let slots = &mut *slots;
        if slots.map.len() >= shard.bound && !slots.map.contains_key(&key) {
            if slots.sweep_at.is_some_and(|at| at <= now) {
                slots.map.retain(|_, kept| now < kept.fresh_until);
                slots.sweep_at = slots.map.values().map(|kept| kept.fresh_until).min();
            }
            if slots.map.len() >= shard.bound
                && let Some(victim) = slots.map.keys().next().copied()
            {
                slots.map.remove(&victim);
            }
        }
        let until = kept.fresh_until;
        slots.sweep_at = Some(slots.sweep_at.map_or(until, |at| at.min(until)));
        slots.map.insert(key, kept);
    }

    /// How many verdicts are kept, stale ones included (for `Debug`).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let slots = shard.slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots.map.len()
            })
            .sum()
    }

    /// Every key and verdict, for the tests that prove no token is held.
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<(TokenKey, Kept)> {
        self.shards
            .iter()
            .flat_map(|shard| {
                let slots = shard.slots.lock().unwrap_or_else(PoisonError::into_inner);
                slots
                    .map
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

    /// Review 2: the bound is `capacity` itself, not `capacity` rounded up
    /// to a multiple of the 64 shards (a capacity of 1 held 64 verdicts).
    #[test]
    fn never_holds_more_than_its_capacity_whatever_its_remainder() {
        let hasher = TokenHasher::new().unwrap();
        let later = Instant::now() + Duration::from_secs(60);
        for capacity in [1u64, 2, 63, 65, 100, 130] {
            let verified = Verified::new(capacity);
            for n in 0..4_000u32 {
                let kept = Kept {
                    principal: principal(),
                    fresh_until: later,
                };
                verified.keep(hasher.key_of(&n.to_le_bytes()), kept);
            }
            let held = verified.snapshot().len() as u64;
            assert!(
                held <= capacity,
                "capacity {capacity}: {held} verdicts held"
            );
        }
    }

    /// Review 2: a full shard drops its stale verdicts before a fresh one;
    /// it dropped whichever came first in the map's order, so stale
    /// verdicts (never read again) stayed while fresh ones went.
    #[test]
    fn a_full_shard_drops_its_stale_verdicts_before_a_fresh_one() {
        let hasher = TokenHasher::new().unwrap();
        // Keys of shard 0 only: with a capacity of 128, it holds two.
        let mut keys = (0u32..)
            .map(|n| hasher.key_of(&n.to_le_bytes()))
            .filter(|key| key.shard(SHARDS) == 0);
        let now = Instant::now();
        let past = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        let later = now + Duration::from_secs(60);
        for trial in 0..100 {
            let verified = Verified::new(128);
            let mut keep = |fresh_until| {
                let key = keys.next().unwrap();
                let principal = principal();
                verified.keep(
                    key,
                    Kept {
                        principal,
                        fresh_until,
                    },
                );
                key
            };
            let _stale = [keep(past), keep(past)];
            let fresh = [keep(later), keep(later)];
            for key in fresh {
                assert!(
                    verified.fresh(&key, Instant::now()).is_some(),
                    "trial {trial}: a fresh verdict was dropped while a stale one stayed"
                );
            }
        }
    }
}
