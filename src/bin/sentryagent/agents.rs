//! `sentryagent agents …`: the agent registry.

use clap::{Args, Subcommand};

use crate::args::{Paging, spec_enum};
use crate::failure::CliError;
use crate::output::{Record, Style, status_style, to_json, when};
use crate::prompt;
use crate::session::Session;
use sentryagent_idp::ListAgents;
use sentryagent_idp::model::{Agent, AgentStatus, AgentType, DeploymentEnv, Uuid};

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsCommand {
    /// Registers a new agent.
    Register(Register),
    /// Lists agents, one page or (`--all`) every page.
    List(List),
    /// Shows one agent.
    Get {
        /// The agent's id.
        agent_id: Uuid,
    },
    /// Changes an agent's fields (only those given).
    Update(Update),
    /// Suspends an active agent (its tokens stop being issued).
    Suspend {
        /// The agent's id.
        agent_id: Uuid,
    },
    /// Reactivates a suspended agent.
    Reactivate {
        /// The agent's id.
        agent_id: Uuid,
    },
    /// Decommissions an agent for good (asks first).
    Decommission {
        /// The agent's id.
        agent_id: Uuid,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Register {
    /// The agent's email, its unique name.
    #[arg(long)]
    email: String,
    /// What kind of work it does.
    #[arg(long = "type", value_parser = spec_enum!(AgentType))]
    agent_type: AgentType,
    /// Its version, e.g. 1.0.0.
    #[arg(long)]
    version: String,
    /// A capability (`resource:action`); repeat for more.
    #[arg(long = "capability", value_name = "CAPABILITY", required = true)]
    capabilities: Vec<String>,
    /// The team or person responsible for it.
    #[arg(long)]
    owner: String,
    /// Where it runs.
    #[arg(long = "env", value_parser = spec_enum!(DeploymentEnv))]
    deployment_env: DeploymentEnv,
}

#[derive(Debug, Args)]
pub(crate) struct Update {
    /// The agent's id.
    agent_id: Uuid,
    /// A new kind of work.
    #[arg(long = "type", value_parser = spec_enum!(AgentType))]
    agent_type: Option<AgentType>,
    /// A new version.
    #[arg(long)]
    version: Option<String>,
    /// The new capabilities (replacing all); repeat for more.
    #[arg(long = "capability", value_name = "CAPABILITY")]
    capabilities: Vec<String>,
    /// A new owner.
    #[arg(long)]
    owner: Option<String>,
    /// A new deployment environment.
    #[arg(long = "env", value_parser = spec_enum!(DeploymentEnv))]
    deployment_env: Option<DeploymentEnv>,
}

#[derive(Debug, Args)]
pub(crate) struct List {
    /// Only agents in this status.
    #[arg(long, value_parser = spec_enum!(AgentStatus))]
    status: Option<AgentStatus>,
    /// Only agents of this type.
    #[arg(long = "type", value_parser = spec_enum!(AgentType))]
    agent_type: Option<AgentType>,
    /// Only agents of this owner.
    #[arg(long)]
    owner: Option<String>,
    #[command(flatten)]
    paging: Paging,
}

impl AgentsCommand {
    pub async fn run(self, s: &Session) -> Result<(), CliError> {
        s.out.check::<Agent>().map_err(CliError::Usage)?;
        let agents = s.client.agents();
        let agent = match self {
            AgentsCommand::Register(r) => {
                agents
                    .register()
                    .email(r.email)
                    .agent_type(r.agent_type)
                    .version(r.version)
                    .capabilities(r.capabilities)
                    .owner(r.owner)
                    .deployment_env(r.deployment_env)
                    .send()
                    .await?
            }
            AgentsCommand::List(l) => return list(s, l).await,
            AgentsCommand::Get { agent_id } => agents.get(agent_id).send().await?,
            AgentsCommand::Update(u) => {
                let mut update = agents.update(u.agent_id);
                if let Some(agent_type) = u.agent_type {
                    update = update.agent_type(agent_type);
                }
                if let Some(version) = u.version {
                    update = update.version(version);
                }
                if !u.capabilities.is_empty() {
                    update = update.capabilities(u.capabilities);
                }
                if let Some(owner) = u.owner {
                    update = update.owner(owner);
                }
                if let Some(env) = u.deployment_env {
                    update = update.deployment_env(env);
                }
                update.send().await?
            }
            AgentsCommand::Suspend { agent_id } => {
                set_status(s, agent_id, AgentStatus::Suspended).await?
            }
            AgentsCommand::Reactivate { agent_id } => {
                set_status(s, agent_id, AgentStatus::Active).await?
            }
            AgentsCommand::Decommission { agent_id } => {
                prompt::confirm(
                    s.yes,
                    &format!("decommission agent {agent_id}"),
                    "This cannot be undone.",
                )?;
                match agents.decommission(agent_id).send().await {
                    // A second decommission, like a second suspend, succeeds with a note.
                    Err(e) if e.code() == Some("AGENT_ALREADY_DECOMMISSIONED") => {
                        already(agent_id, "decommissioned");
                    }
                    done => done?,
                }
                s.out.status(
                    "decommissioned",
                    agent_id.to_string().into(),
                    &format!("decommissioned agent {agent_id}"),
                )?;
                return Ok(());
            }
        };
        Ok(s.out.one(&agent)?)
    }
}

/// Sets an agent's status, or, when it already has it, says so on stderr
/// and changes nothing (the server would answer 200 and log an
/// `agent.updated`): a second `suspend` succeeds as a second
/// `decommission` does. Without the scope to read the agent first, the
/// change is sent as it is.
async fn set_status(s: &Session, agent_id: Uuid, status: AgentStatus) -> Result<Agent, CliError> {
    let agents = s.client.agents();
    match agents.get(agent_id).send().await {
        Ok(agent) if agent.status == status => {
            already(agent_id, status.as_str());
            return Ok(agent);
        }
        Ok(_) => {}
        Err(e) if e.kind() == sentryagent_idp::ErrorKind::MissingScope => {}
        Err(e) => return Err(e.into()),
    }
    Ok(agents.update(agent_id).status(status).send().await?)
}

/// The note that a command found its work already done.
fn already(agent_id: Uuid, status: &str) {
    eprintln!("note: agent {agent_id} was already {status}; nothing changed");
}

async fn list(s: &Session, l: List) -> Result<(), CliError> {
    let out = s
        .out
        .enveloped(l.paging.envelope)
        .map_err(CliError::Usage)?;
    let mut query = s.client.agents().list();
    if let Some(status) = l.status {
        query = query.status(status);
    }
    if let Some(agent_type) = l.agent_type {
        query = query.agent_type(agent_type);
    }
    if let Some(owner) = l.owner {
        query = query.owner(owner);
    }
    if let Some(limit) = l.paging.limit {
        query = query.limit(limit);
    }
    let listing = l
        .paging
        .fetch(query, ListAgents::stream, |q, page| q.page(page).send())
        .await?;
    Ok(out.list(&listing)?)
}

impl Record for Agent {
    const COLUMNS: &'static [&'static str] = &[
        "AGENT ID",
        "EMAIL",
        "TYPE",
        "VERSION",
        "STATUS",
        "OWNER",
        "ENV",
        "CAPABILITIES",
        "CREATED",
    ];
    const FIELDS: &'static [&'static str] = &[
        "agentId",
        "email",
        "agentType",
        "version",
        "status",
        "owner",
        "deploymentEnv",
        "capabilities",
        "createdAt",
    ];
    const WIDE: &'static [&'static str] = &["VERSION", "ENV", "CAPABILITIES", "CREATED"];
    const WHOLE: &'static [&'static str] = &["AGENT ID", "CREATED"];
    const NOUN: &'static str = "agents";

    fn cells(&self) -> Vec<(String, Style)> {
        vec![
            (self.agent_id.to_string(), Style::Plain),
            (self.email.clone(), Style::Plain),
            (self.agent_type.to_string(), Style::Plain),
            (self.version.clone(), Style::Plain),
            (self.status.to_string(), status_style(self.status.as_str())),
            (self.owner.clone(), Style::Plain),
            (self.deployment_env.to_string(), Style::Plain),
            (self.capabilities.join(","), Style::Plain),
            (when(Some(self.created_at)), Style::Plain),
        ]
    }

    fn json(&self) -> serde_json::Value {
        to_json(self)
    }
}
