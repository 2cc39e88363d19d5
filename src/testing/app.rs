//! The state every handler shares: the store, the knobs and the signing keys,
//! with the few operations both the handlers and the seed helpers need.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::control::Control;
use super::oidc::Oidc;
use super::secrets::{SecretHash, new_client_secret};
use super::state::{AuditRecord, CredentialRecord, Store};
use super::tokens::{Claims, TokenKeys};
use super::wire;

/// Who sent a request, as audit events record it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Origin {
    pub ip_address: String,
    pub user_agent: String,
}

/// Why a token is not active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inactive {
    Malformed,
    Expired,
    Revoked,
    AgentGone,
}

impl Inactive {
    /// The `message` of the `401 UNAUTHORIZED` it causes.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Inactive::Malformed => "Invalid token.",
            Inactive::Expired => "Token has expired.",
            Inactive::Revoked => "Token has been revoked.",
            Inactive::AgentGone => "The token's agent is decommissioned or unknown.",
        }
    }
}

/// The shared state.
pub(crate) struct App {
    store: Mutex<Store>,
    pub control: Control,
    /// Shared with the OIDC routes' key set.
    pub keys: Arc<TokenKeys>,
    /// The discovery and JWKS routes' knobs, when they are served.
    pub oidc: Option<Arc<Oidc>>,
}

impl App {
    /// An empty fake.
    pub(crate) fn new(control: Control, keys: Arc<TokenKeys>, oidc: Option<Arc<Oidc>>) -> App {
        App {
            store: Mutex::new(Store::default()),
            control,
            keys,
            oidc,
        }
    }

    /// The store, locked. Never held across an `.await`.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `token` is active: signed by the fake, unexpired, not revoked,
    /// and its agent not decommissioned. The claims come back either way when
    /// the signature holds.
    pub(crate) fn check_token(
        &self,
        store: &Store,
        token: &str,
    ) -> (Option<Claims>, Result<(), Inactive>) {
        let Some(claims) = self.keys.verify(token) else {
            return (None, Err(Inactive::Malformed));
        };
        let verdict = if claims.expired_at(Utc::now().timestamp()) {
            Err(Inactive::Expired)
        } else if store.jti_revoked(&claims.jti) {
            Err(Inactive::Revoked)
        } else {
            let live = Uuid::parse_str(&claims.sub)
                .ok()
                .and_then(|id| store.agent(id))
                .is_some_and(|agent| !agent.is_decommissioned());
            if live {
                Ok(())
            } else {
                Err(Inactive::AgentGone)
            }
        };
        (Some(claims), verdict)
    }
}

/// Appends an audit event stamped now.
pub(crate) fn audit(
    store: &mut Store,
    origin: &Origin,
    agent_id: Uuid,
    action: &str,
    outcome: &str,
    metadata: Map<String, Value>,
) -> Uuid {
    store.push_audit(AuditRecord {
        id: Uuid::new_v4(),
        agent_id,
        action: action.to_owned(),
        outcome: outcome.to_owned(),
        metadata,
        ip_address: origin.ip_address.clone(),
        user_agent: bounded(&origin.user_agent, MAX_RECORDED_CHARS),
        timestamp: wire::now(),
        seq: 0,
    })
}

/// How much of a caller-supplied string (a user agent, an attempted client
/// id) the audit log records: anyone can make the fake write one, so it must
/// not grow with what they send.
pub(crate) const MAX_RECORDED_CHARS: usize = 256;

/// `text`, cut to `max` characters.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Builds a JSON object from pairs, for audit metadata.
pub(crate) fn metadata<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A new credential for `agent_id` and its plain secret (returned once).
pub(crate) fn new_credential(
    agent_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(CredentialRecord, String), getrandom::Error> {
    let secret = new_client_secret()?;
    let record = CredentialRecord {
        id: Uuid::new_v4(),
        agent_id,
        secret: SecretHash::new(&secret)?,
        created_at: wire::now(),
        expires_at,
        revoked_at: None,
    };
    Ok((record, secret))
}
