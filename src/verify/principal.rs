//! [`AgentPrincipal`]: who called, with which scopes.

use std::time::SystemTime;

use crate::model::Uuid;
use crate::scope::{Scope, ScopeSet};

/// The agent a verified token speaks for.
///
/// The layer puts one in the request's extensions; handlers read it there
/// (or with the axum extractor, feature `axum`). It holds no token, so its
/// `Debug` and clones can go anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentPrincipal {
    /// The agent's id (the token's `sub`).
    pub agent_id: Uuid,
    /// The OAuth client id (`client_id`; AgentIdP sets it to the agent id).
    pub client_id: String,
    /// The scopes the token was granted.
    pub scopes: ScopeSet,
    /// The token's id (`jti`), the key of its revocation.
    pub jti: Option<String>,
    /// When the token expires (`exp`).
    pub expires_at: Option<SystemTime>,
    /// When the token was issued (`iat`).
    pub issued_at: Option<SystemTime>,
}

impl AgentPrincipal {
    /// Whether the token holds every one of `scopes`.
    pub fn has_all(&self, scopes: &[Scope]) -> bool {
        scopes.iter().all(|s| self.scopes.contains(s))
    }

    /// Whether the token holds at least one of `scopes` (false when empty).
    pub fn has_any(&self, scopes: &[Scope]) -> bool {
        scopes.iter().any(|s| self.scopes.contains(s))
    }

    /// Whether the token is past its `exp` at `now`, allowing `leeway`.
    pub(crate) fn expired_at(&self, now: SystemTime, leeway: std::time::Duration) -> bool {
        self.expires_at
            .is_some_and(|exp| exp.checked_add(leeway).is_some_and(|end| end <= now))
    }
}

/// Unix seconds to a `SystemTime`; `None` before the epoch or out of range.
pub(crate) fn unix_time(seconds: i64) -> Option<SystemTime> {
    let seconds = u64::try_from(seconds).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(seconds))
}
