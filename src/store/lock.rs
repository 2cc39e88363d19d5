//! [`StoreLock`]: a held fetch lock.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// A fetch lock a [`TokenStore`](super::TokenStore) gave: an owner id
/// (random, so only this holder can release it) and, optionally, what
/// holds the lock while it lives (a locked file), released when dropped.
pub struct StoreLock {
    owner: String,
    // Read by the Redis store only; otherwise it is only kept until dropped.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    held: Option<Box<dyn Any + Send + Sync>>,
}

impl StoreLock {
    /// A lock known by `owner`, e.g. the value of a Redis `SET NX` key.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            held: None,
        }
    }

    /// A lock that lasts as long as `held` (dropping it releases the lock,
    /// as closing a locked file does).
    pub fn holding(owner: impl Into<String>, held: impl Any + Send + Sync) -> Self {
        Self {
            owner: owner.into(),
            held: Some(Box::new(held)),
        }
    }

    /// The owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// What holds the lock, for the store that made it (to disarm a
    /// release-on-drop once it released the lock itself).
    #[cfg(feature = "redis")]
    pub(crate) fn held_mut(&mut self) -> Option<&mut (dyn Any + Send + Sync)> {
        self.held.as_deref_mut()
    }

    /// A new owner id, unique among the holders of every process: 128
    /// random bits drawn once per process (std's random hash keys, from the
    /// system's source, with the process id and the time), then a counter.
    ///
    /// Cheap (no cryptographic generator: the first use of one can cost
    /// tens of milliseconds of CPU), so a store can make it inside its
    /// timed operations. Not a secret: whoever can read the lock reads it.
    pub fn random_owner() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{:032x}-{n:x}", process_nonce())
    }
}

/// This process's part of every owner id, made on first use (see
/// [`StoreLock::random_owner`]); a store makes it when it is built, before
/// any timed operation.
pub(crate) fn process_nonce() -> u128 {
    static NONCE: OnceLock<u128> = OnceLock::new();
    *NONCE.get_or_init(|| {
        let half =
            |salt: u8| RandomState::new().hash_one((salt, std::process::id(), SystemTime::now()));
        (u128::from(half(0)) << 64) | u128::from(half(1))
    })
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_unique_and_share_this_process_part() {
        let (a, b) = (StoreLock::random_owner(), StoreLock::random_owner());
        assert_ne!(a, b);
        let part = format!("{:032x}-", process_nonce());
        assert!(a.starts_with(&part) && b.starts_with(&part), "{a} {b}");
        assert_ne!(process_nonce(), 0);
    }
}
