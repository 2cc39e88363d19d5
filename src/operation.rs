//! The spec's operations: the [`Operation`] enum and what the spec says of
//! each, both emitted at build time from `openapi/agentidp.yaml` (`security`,
//! `x-sentryagent-replay`, `x-sentryagent-outcome-check`,
//! `x-sentryagent-done-codes`).

use std::fmt;

use crate::scope::{Scope, ScopeSet};

/// Whether an operation may be sent again after a failure
/// (the spec's `x-sentryagent-replay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Replaying cannot change the outcome (reads, PATCH, the token calls).
    Always,
    /// Replay only when the request provably did nothing (never sent, or
    /// refused before any work: 4xx, 429).
    UnsentOnly,
    /// Replay allowed; a `409` with one of the operation's done codes, after
    /// an attempt that may have been applied, means that attempt did the work.
    ConflictMeansDone,
}

/// One operation of the spec.
#[derive(Debug)]
pub(crate) struct OperationSpec {
    pub operation: Operation,
    pub id: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    /// Whether the operation takes `Authorization: Bearer`.
    pub bearer: bool,
    /// Scopes the bearer token must hold.
    pub scopes: &'static [&'static str],
    pub replay: Replay,
    /// For unsent-only operations: how a caller checks whether a failed
    /// attempt was applied (`x-sentryagent-outcome-check`).
    pub outcome_check: Option<&'static str>,
    /// For conflict-means-done operations: the `409` codes that mean done.
    pub done_codes: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/operations.rs"));

impl Operation {
    pub(crate) fn spec(self) -> &'static OperationSpec {
        &OPERATIONS[self as usize]
    }

    /// The spec's operationId, e.g. `get_agent`.
    pub fn as_str(self) -> &'static str {
        self.spec().id
    }

    /// The HTTP method, e.g. `GET`.
    pub fn method(self) -> &'static str {
        self.spec().method
    }

    /// The path template below the API root, e.g. `/agents/{agentId}`.
    pub fn path(self) -> &'static str {
        self.spec().path
    }

    /// The scopes the operation's bearer token must hold.
    pub fn required_scopes(self) -> ScopeSet {
        self.spec()
            .scopes
            .iter()
            .map(|s| Scope::from_static(s))
            .collect()
    }
}

/// A set of operations, one bit each: which operations a set of scopes
/// allows, computed once per token so that a call checks one bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowed(u32);

impl Allowed {
    /// The operations whose required scopes `held` all has.
    pub(crate) fn by(held: &ScopeSet) -> Self {
        Self(
            Operation::ALL
                .iter()
                .filter(|op| op.spec().granted_by(held))
                .fold(0, |bits, op| bits | (1 << *op as u32)),
        )
    }

    pub(crate) fn contains(self, op: Operation) -> bool {
        self.0 & (1 << op as u32) != 0
    }
}

impl OperationSpec {
    /// Whether `held` has every scope the operation requires (no allocation).
    pub fn granted_by(&self, held: &ScopeSet) -> bool {
        self.scopes
            .iter()
            .all(|s| held.contains(&Scope::from_static(s)))
    }

    /// What a caller checks when a write's outcome is unknown.
    pub fn outcome_check(&self) -> &'static str {
        self.outcome_check
            .unwrap_or("check the resource before trying again")
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = crate::Error;

    /// Parses an operationId (`get_agent`).
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .iter()
            .copied()
            .find(|op| op.as_str() == id)
            .ok_or_else(|| {
                crate::Error::invalid_input(format!("`{id}` is not an operationId of the spec"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_enum_and_the_spec() {
        assert_eq!(Operation::ALL.len(), 14);
        for op in Operation::ALL {
            assert_eq!(op.spec().operation, op);
            assert_eq!(op.as_str().parse::<Operation>().unwrap(), op);
        }
        let get = Operation::GetAgent.spec();
        assert_eq!(
            (get.method, get.path, get.scopes),
            ("GET", "/agents/{agentId}", &["agents:read"][..])
        );
        let token = Operation::IssueToken.spec();
        assert!(!token.bearer && token.scopes.is_empty());
        let revoke = Operation::RevokeToken.spec();
        assert!(revoke.bearer && revoke.scopes.is_empty());
        assert_eq!(Operation::RegisterAgent.spec().replay, Replay::UnsentOnly);
        assert_eq!(
            Operation::RotateCredential.spec().replay,
            Replay::UnsentOnly
        );
        let decommission = Operation::DecommissionAgent.spec();
        assert_eq!(decommission.replay, Replay::ConflictMeansDone);
        assert_eq!(decommission.done_codes, ["AGENT_ALREADY_DECOMMISSIONED"]);
        assert!("nope".parse::<Operation>().is_err());
    }
}
