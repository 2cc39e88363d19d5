//! The fake's in-memory records: agents, credentials, revoked token ids and
//! the audit log.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::secrets::SecretHash;

/// Wire values of `AgentStatus`.
pub(crate) mod status {
    /// `active`.
    pub const ACTIVE: &str = "active";
    /// `suspended`.
    pub const SUSPENDED: &str = "suspended";
    /// `decommissioned`.
    pub const DECOMMISSIONED: &str = "decommissioned";
}

/// The four Phase-1 scopes, in the order tokens list them.
pub(crate) const ALL_SCOPES: [&str; 4] =
    ["agents:read", "agents:write", "tokens:read", "audit:read"];

/// One agent.
#[derive(Clone, Debug)]
pub(crate) struct AgentRecord {
    pub id: Uuid,
    pub email: String,
    pub agent_type: String,
    pub version: String,
    pub capabilities: Vec<String>,
    pub owner: String,
    pub deployment_env: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The scopes its tokens may carry (not on the wire).
    pub allowed_scopes: Vec<String>,
    /// Its credentials' ids, oldest first (not on the wire).
    pub credentials: Vec<Uuid>,
    /// Whether it may manage other agents' credentials (not on the wire).
    pub admin: bool,
}

impl AgentRecord {
    /// Whether the agent is `active`.
    pub(crate) fn is_active(&self) -> bool {
        self.status == status::ACTIVE
    }

    /// Whether the agent is `decommissioned`.
    pub(crate) fn is_decommissioned(&self) -> bool {
        self.status == status::DECOMMISSIONED
    }
}

/// One credential; the secret is kept only as a hash.
#[derive(Clone)]
pub(crate) struct CredentialRecord {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub secret: SecretHash,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl CredentialRecord {
    /// The wire `status`.
    pub(crate) fn status(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        }
    }

    /// Whether the credential may authenticate at `now`.
    pub(crate) fn usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expiry| now < expiry)
    }
}

/// One audit event.
#[derive(Clone, Debug)]
pub(crate) struct AuditRecord {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub action: String,
    pub outcome: String,
    pub metadata: Map<String, Value>,
    pub ip_address: String,
    pub user_agent: String,
    pub timestamp: DateTime<Utc>,
    /// Insertion order, the tie-break among equal timestamps.
    pub seq: u64,
}

/// Everything the fake knows.
#[derive(Default)]
pub(crate) struct Store {
    agents: Vec<AgentRecord>,
    agent_index: HashMap<Uuid, usize>,
    /// Lower-cased emails of every agent, decommissioned ones included.
    emails: HashSet<String>,
    credentials: HashMap<Uuid, CredentialRecord>,
    revoked_jtis: HashSet<String>,
    /// The newest [`MAX_AUDIT_EVENTS`], oldest first.
    audit: VecDeque<AuditRecord>,
    /// Event id → its `seq`.
    audit_index: HashMap<Uuid, u64>,
    /// Events written so far, dropped ones included.
    audit_written: u64,
}

/// The audit log keeps this many events, dropping the oldest: a fake that
/// anyone can write to (every failed `/token` writes one) must stay bounded.
pub(crate) const MAX_AUDIT_EVENTS: usize = 100_000;

impl Store {
    /// Whether an agent already uses `email` (compared case-insensitively).
    pub(crate) fn email_taken(&self, email: &str) -> bool {
        self.emails.contains(&email.to_lowercase())
    }

    /// Adds an agent; `false` (and nothing added) when its email or id is taken.
    pub(crate) fn insert_agent(&mut self, agent: AgentRecord) -> bool {
        if self.email_taken(&agent.email) || self.agent_index.contains_key(&agent.id) {
            return false;
        }
        self.emails.insert(agent.email.to_lowercase());
        self.agent_index.insert(agent.id, self.agents.len());
        self.agents.push(agent);
        true
    }

    /// One agent.
    pub(crate) fn agent(&self, id: Uuid) -> Option<&AgentRecord> {
        self.agent_index.get(&id).map(|&i| &self.agents[i])
    }

    /// One agent, to change it.
    pub(crate) fn agent_mut(&mut self, id: Uuid) -> Option<&mut AgentRecord> {
        self.agent_index.get(&id).map(|&i| &mut self.agents[i])
    }

    /// Every agent, oldest first.
    pub(crate) fn agents(&self) -> &[AgentRecord] {
        &self.agents
    }

    /// Adds a credential and links it to its agent (which must exist).
    pub(crate) fn insert_credential(&mut self, credential: CredentialRecord) -> bool {
        let Some(&i) = self.agent_index.get(&credential.agent_id) else {
            return false;
        };
        self.agents[i].credentials.push(credential.id);
        self.credentials.insert(credential.id, credential);
        true
    }

    /// One credential of one agent, to change it.
    pub(crate) fn credential_mut(
        &mut self,
        agent_id: Uuid,
        id: Uuid,
    ) -> Option<&mut CredentialRecord> {
        self.credentials
            .get_mut(&id)
            .filter(|c| c.agent_id == agent_id)
    }

    /// An agent's credentials, oldest first.
    pub(crate) fn credentials_of(&self, agent_id: Uuid) -> Vec<&CredentialRecord> {
        self.agent(agent_id)
            .map(|agent| {
                agent
                    .credentials
                    .iter()
                    .filter_map(|id| self.credentials.get(id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Marks a token id revoked.
    pub(crate) fn revoke_jti(&mut self, jti: &str) {
        self.revoked_jtis.insert(jti.to_owned());
    }

    /// Whether a token id was revoked.
    pub(crate) fn jti_revoked(&self, jti: &str) -> bool {
        self.revoked_jtis.contains(jti)
    }

    /// Appends an audit event (its `seq` is assigned here) and returns its id.
    pub(crate) fn push_audit(&mut self, mut event: AuditRecord) -> Uuid {
        event.seq = self.audit_written;
        self.audit_written += 1;
        let id = event.id;
        self.audit_index.insert(id, event.seq);
        self.audit.push_back(event);
        if self.audit.len() > MAX_AUDIT_EVENTS
            && let Some(oldest) = self.audit.pop_front()
        {
            self.audit_index.remove(&oldest.id);
        }
        id
    }

    /// One audit event.
    pub(crate) fn audit_event(&self, id: Uuid) -> Option<&AuditRecord> {
        let first = self.audit.front()?.seq;
        let seq = *self.audit_index.get(&id)?;
        self.audit.get(usize::try_from(seq - first).ok()?)
    }

    /// Every audit event, in insertion order.
    pub(crate) fn audit_events(&self) -> &VecDeque<AuditRecord> {
        &self.audit
    }
}
