//! [`StoreLock`]: a held fetch lock.

use std::any::Any;
use std::fmt;

/// A fetch lock a [`TokenStore`](super::TokenStore) gave: an owner id
/// (random, so only this holder can release it) and, optionally, what
/// holds the lock while it lives (a locked file), released when dropped.
pub struct StoreLock {
    owner: String,
    _held: Option<Box<dyn Any + Send + Sync>>,
}

impl StoreLock {
    /// A lock known by `owner`, e.g. the value of a Redis `SET NX` key.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            _held: None,
        }
    }

    /// A lock that lasts as long as `held` (dropping it releases the lock,
    /// as closing a locked file does).
    pub fn holding(owner: impl Into<String>, held: impl Any + Send + Sync) -> Self {
        Self {
            owner: owner.into(),
            _held: Some(Box::new(held)),
        }
    }

    /// The owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A new random owner id (128 bits from the system's secure source).
    pub fn random_owner() -> String {
        let mut bytes = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            // The system source failed: still unique enough to tell owners apart.
            bytes = fastrand::u128(..).to_le_bytes();
        }
        super::seal::hex(&bytes)
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreLock")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}
