//! What the spec says of each operation, emitted at build time from
//! `openapi/agentidp.yaml` (`security` and `x-sentryagent-replay`).

use crate::scope::{Scope, ScopeSet};

/// Whether an operation may be sent again after a failure
/// (the spec's `x-sentryagent-replay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Replaying cannot change the outcome (reads, PATCH, rotate, token calls).
    Always,
    /// Replay only when the request provably never reached the server.
    UnsentOnly,
    /// Replay allowed; a `409 *_ALREADY_*` answer to a replay means the first
    /// attempt did the work.
    ConflictMeansDone,
}

/// One operation of the spec.
#[derive(Debug)]
// `method` and `replay` are read by the tests and the retry policy.
#[allow(dead_code)]
pub(crate) struct OperationSpec {
    pub id: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    /// Whether the operation takes `Authorization: Bearer`.
    pub bearer: bool,
    /// Scopes the bearer token must hold.
    pub scopes: &'static [&'static str],
    pub replay: Replay,
    /// For unsent-only operations: how a caller checks whether a failed
    /// attempt was applied (`x-sentryagent-outcome-check`).
    pub outcome_check: Option<&'static str>,
}

include!(concat!(env!("OUT_DIR"), "/operations.rs"));

impl OperationSpec {
    /// Looks an operation up by the id progenitor passes to the hooks.
    pub fn find(id: &str) -> Option<&'static OperationSpec> {
        OPERATIONS
            .binary_search_by(|op| op.id.cmp(id))
            .ok()
            .map(|i| &OPERATIONS[i])
    }

    /// Whether `held` has every scope the operation requires (no allocation).
    pub fn granted_by(&self, held: &ScopeSet) -> bool {
        self.scopes
            .iter()
            .all(|s| held.contains(&Scope::from_static(s)))
    }

    /// The scopes the operation requires, as a set.
    pub fn required_scopes(&self) -> ScopeSet {
        self.scopes.iter().map(|s| Scope::from_static(s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_fourteen_operations_with_their_scopes() {
        assert_eq!(OPERATIONS.len(), 14);
        let get = OperationSpec::find("get_agent").unwrap();
        assert_eq!(
            (get.method, get.path, get.scopes),
            ("GET", "/agents/{agentId}", &["agents:read"][..])
        );
        let token = OperationSpec::find("issue_token").unwrap();
        assert!(!token.bearer && token.scopes.is_empty());
        let revoke = OperationSpec::find("revoke_token").unwrap();
        assert!(revoke.bearer && revoke.scopes.is_empty());
        assert_eq!(
            OperationSpec::find("register_agent").unwrap().replay,
            Replay::UnsentOnly
        );
        assert_eq!(
            OperationSpec::find("decommission_agent").unwrap().replay,
            Replay::ConflictMeansDone
        );
        assert!(OperationSpec::find("nope").is_none());
    }
}
