//! [`StoreError`]: why a token store operation failed.

use std::fmt;

/// A token store operation that failed. The client never returns it to a
/// caller: it logs it and fetches the token by itself. Building a store
/// ([`FileStore::in_dir`](super::FileStore::in_dir)) may return one.
pub struct StoreError {
    kind: StoreErrorKind,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store's directory is not the user's own or others may write to
    /// it; the message names the `chmod` (or `chown`) to run.
    UnsafeDirectory,
    /// Anything else: I/O, Redis, a timeout.
    Other,
}

impl StoreError {
    /// Wraps the cause. It is logged: keep secrets out of it.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            kind: StoreErrorKind::Other,
            source: source.into(),
        }
    }

    /// A store directory others could write to, or not the user's.
    #[cfg_attr(not(unix), allow(dead_code, reason = "checked on Unix only"))]
    pub(crate) fn unsafe_directory(why: String) -> Self {
        Self {
            kind: StoreErrorKind::UnsafeDirectory,
            source: why.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.source)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::new(e)
    }
}
