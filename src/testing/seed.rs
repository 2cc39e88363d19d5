//! Records a test puts straight into the fake, without HTTP and without
//! audit events: [`AgentSeed`] and [`AuditEventSeed`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::state::{ALL_SCOPES, AgentRecord, AuditRecord};
use super::wire;

/// An agent to seed with [`FakeAgentIdp::seed_agent`]; every field has a
/// default.
///
/// Values are stored as given, without the validation `POST /agents` applies,
/// so a test can also seed values a newer server might send (an unknown
/// `status`, say).
///
/// ```
/// use sentryagent_idp::testing::AgentSeed;
///
/// let seed = AgentSeed::new()
///     .email("screener-001@myproject.ai")
///     .agent_type("screener")
///     .owner("platform-team")
///     .status("suspended")
///     .scopes(["agents:read"]);
/// # let _ = seed;
/// ```
///
/// [`FakeAgentIdp::seed_agent`]: super::FakeAgentIdp::seed_agent
#[derive(Clone, Debug)]
#[must_use]
pub struct AgentSeed {
    email: Option<String>,
    agent_type: String,
    version: String,
    capabilities: Vec<String>,
    owner: String,
    deployment_env: String,
    status: String,
    created_at: Option<DateTime<Utc>>,
    scopes: Vec<String>,
    admin: bool,
}

impl Default for AgentSeed {
    fn default() -> Self {
        AgentSeed {
            email: None,
            agent_type: "custom".to_owned(),
            version: "1.0.0".to_owned(),
            capabilities: vec!["resource:read".to_owned()],
            owner: "seed-owner".to_owned(),
            deployment_env: "development".to_owned(),
            status: "active".to_owned(),
            created_at: None,
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            admin: false,
        }
    }
}

impl AgentSeed {
    /// An `active` `custom` agent, version `1.0.0`, capability
    /// `resource:read`, owner `seed-owner`, `development`, with a unique
    /// email and all four scopes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The email (default: `seed-<agentId>@fake.agentidp.test`). Must not be
    /// taken by another agent.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The `agentType` wire value, e.g. `screener`.
    pub fn agent_type(mut self, agent_type: impl Into<String>) -> Self {
        self.agent_type = agent_type.into();
        self
    }

    /// The `version`.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The `capabilities`.
    pub fn capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = capabilities.into_iter().map(Into::into).collect();
        self
    }

    /// The `owner`.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// The `deploymentEnv` wire value, e.g. `production`.
    pub fn deployment_env(mut self, deployment_env: impl Into<String>) -> Self {
        self.deployment_env = deployment_env.into();
        self
    }

    /// The `status` wire value (default `active`).
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    /// `createdAt` and `updatedAt` (default: now), cut to milliseconds.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// The scopes the agent's tokens may carry (default: all four). A token
    /// request without `scope` gets all of them; one asking for more gets
    /// `invalid_scope`.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the agent may manage other agents' credentials (default
    /// `false`; the bootstrap agent is one). Everyone else gets
    /// `403 FORBIDDEN` for another agent's credentials.
    pub fn admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    pub(crate) fn into_record(self) -> AgentRecord {
        let id = Uuid::new_v4();
        let at = self
            .created_at
            .map_or_else(wire::now, wire::truncate_millis);
        AgentRecord {
            id,
            email: self
                .email
                .unwrap_or_else(|| format!("seed-{}@fake.agentidp.test", id.simple())),
            agent_type: self.agent_type,
            version: self.version,
            capabilities: self.capabilities,
            owner: self.owner,
            deployment_env: self.deployment_env,
            status: self.status,
            created_at: at,
            updated_at: at,
            allowed_scopes: self.scopes,
            credentials: Vec::new(),
            admin: self.admin,
        }
    }
}

/// An audit event to seed with [`FakeAgentIdp::seed_audit_event`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use sentryagent_idp::testing::AuditEventSeed;
///
/// let seed = AuditEventSeed::new(uuid::Uuid::nil(), "agent.created")
///     .timestamp(Utc.with_ymd_and_hms(2026, 3, 28, 9, 0, 0).unwrap())
///     .metadata(serde_json::json!({ "agentType": "screener" }));
/// # let _ = seed;
/// ```
///
/// [`FakeAgentIdp::seed_audit_event`]: super::FakeAgentIdp::seed_audit_event
#[derive(Clone, Debug)]
#[must_use]
pub struct AuditEventSeed {
    agent_id: Uuid,
    action: String,
    outcome: String,
    metadata: Map<String, Value>,
    ip_address: String,
    user_agent: String,
    timestamp: Option<DateTime<Utc>>,
}

impl AuditEventSeed {
    /// An event about `agent_id` with this `action` wire value (e.g.
    /// `credential.rotated`), outcome `success`, empty metadata, from
    /// `127.0.0.1` with user agent `fake-agentidp-seed`, stamped now.
    pub fn new(agent_id: Uuid, action: impl Into<String>) -> Self {
        AuditEventSeed {
            agent_id,
            action: action.into(),
            outcome: "success".to_owned(),
            metadata: Map::new(),
            ip_address: "127.0.0.1".to_owned(),
            user_agent: "fake-agentidp-seed".to_owned(),
            timestamp: None,
        }
    }

    /// The `outcome` wire value, e.g. `failure`.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// The `metadata`.
    ///
    /// # Panics
    ///
    /// If `metadata` is not a JSON object.
    pub fn metadata(mut self, metadata: Value) -> Self {
        match metadata {
            Value::Object(map) => self.metadata = map,
            other => panic!("audit metadata must be a JSON object, got {other}"),
        }
        self
    }

    /// The `ipAddress`.
    pub fn ip_address(mut self, ip_address: impl Into<String>) -> Self {
        self.ip_address = ip_address.into();
        self
    }

    /// The `userAgent`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The `timestamp` (default: now), cut to milliseconds.
    pub fn timestamp(mut self, at: DateTime<Utc>) -> Self {
        self.timestamp = Some(at);
        self
    }

    pub(crate) fn into_record(self) -> AuditRecord {
        AuditRecord {
            id: Uuid::new_v4(),
            agent_id: self.agent_id,
            action: self.action,
            outcome: self.outcome,
            metadata: self.metadata,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            timestamp: self.timestamp.map_or_else(wire::now, wire::truncate_millis),
            seq: 0,
        }
    }
}
