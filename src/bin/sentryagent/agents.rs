//! `sentryagent agents …`: the agent registry.

use clap::{Args, Subcommand};

use clap_complete::engine::ArgValueCandidates;

use crate::args::{Paging, spec_enum};
use crate::complete;
use crate::failure::CliError;
use crate::output::{Listing, Record, Style, status_style, to_json, when};
use crate::prompt;
use crate::session::Session;
use sentryagent_idp::model::{Agent, AgentStatus, AgentType, DeploymentEnv, Uuid};
use sentryagent_idp::{Client, ListAgents};

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsCommand {
    /// Registers a new agent.
    Register(Register),
    /// Lists agents, one page or (`--all`) every page.
    List(List),
    /// Shows one agent.
    Get {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
    },
    /// Changes an agent's fields (only those given).
    Update(Update),
    /// Suspends an active agent (its tokens stop being issued).
    Suspend {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
    },
    /// Reactivates a suspended agent.
    Reactivate {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
    },
    /// Decommissions an agent for good (asks first).
    Decommission {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
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
    /// The agent's id or email.
    #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
    agent: AgentRef,
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
    /// Only the agent with this email (the API has no such filter: every
    /// page is read, and the others dropped).
    #[arg(long, conflicts_with = "page")]
    email: Option<String>,
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
            AgentsCommand::Get { agent } => {
                agents.get(agent.resolve(&s.client).await?).send().await?
            }
            AgentsCommand::Update(u) => {
                let mut update = agents.update(u.agent.resolve(&s.client).await?);
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
            AgentsCommand::Suspend { agent } => {
                set_status(s, agent.resolve(&s.client).await?, AgentStatus::Suspended).await?
            }
            AgentsCommand::Reactivate { agent } => {
                set_status(s, agent.resolve(&s.client).await?, AgentStatus::Active).await?
            }
            AgentsCommand::Decommission { agent } => {
                let agent_id = agent.resolve(&s.client).await?;
                prompt::confirm(
                    s.yes,
                    &format!("decommission agent {}", agent.named(agent_id)),
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
    if let Some(email) = l.email {
        let found = with_email(query, &email).await?;
        return Ok(out.list(&Listing::whole(found))?);
    }
    let listing = l
        .paging
        .fetch(query, ListAgents::stream, |q, page| q.page(page).send())
        .await?;
    Ok(out.list(&listing)?)
}

/// An agent as named on the command line: its id, or its email, looked up
/// in the listing (the API has no email filter).
#[derive(Clone, Debug)]
pub(crate) enum AgentRef {
    Id(Uuid),
    Email(String),
}

impl std::str::FromStr for AgentRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Ok(id) = text.parse::<Uuid>() {
            return Ok(AgentRef::Id(id));
        }
        match text.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                Ok(AgentRef::Email(text.to_owned()))
            }
            // clap prints this as it is: the value quoted is made safe.
            _ => Err(format!(
                "`{}` is neither an agent id (a UUID) nor an agent's email",
                crate::sanitize::terminal(text)
            )),
        }
    }
}

impl AgentRef {
    /// The agent's id: as given, or that of the one agent with this email.
    /// No agent with it is "not found" (exit 4); more than one (emails
    /// differing only in case) is refused with their ids.
    pub async fn resolve(&self, client: &Client) -> Result<Uuid, CliError> {
        let email = match self {
            AgentRef::Id(id) => return Ok(*id),
            AgentRef::Email(email) => email,
        };
        let found = with_email(client.agents().list().limit(EMAIL_PAGE), email).await?;
        the_one(&found, email)
    }

    /// How a confirmation names the agent: its email and id, or its id.
    pub fn named(&self, id: Uuid) -> String {
        match self {
            AgentRef::Id(_) => id.to_string(),
            AgentRef::Email(email) => format!("{email} ({id})"),
        }
    }
}

/// The id of the one agent found for `email`: none is "not found", more
/// than one is refused with their ids.
fn the_one(found: &[Agent], email: &str) -> Result<Uuid, CliError> {
    match found {
        [one] => Ok(one.agent_id),
        [] => Err(CliError::NoAgent(email.to_owned())),
        many => Err(CliError::Usage(format!(
            "{} agents have the email {email} (in different case): {}; give the agent's id",
            many.len(),
            many.iter()
                .map(|a| format!("{} ({})", a.agent_id, a.email))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The page size of an email look-up: the SDK's hint of the largest page.
const EMAIL_PAGE: u32 = 100;

/// The agents of every page of `query` with `email` (compared without
/// regard to case); the one that matches it exactly, when there is one.
async fn with_email(query: ListAgents, email: &str) -> Result<Vec<Agent>, CliError> {
    use futures::TryStreamExt;
    let spinner = prompt::spinner(format!("looking for {email}…"));
    // Every letter folded, not ASCII alone, as emails are kept unique.
    let folded = email.to_lowercase();
    let found: Result<Vec<Agent>, _> = query
        .stream()
        .try_filter(|agent| std::future::ready(agent.email.to_lowercase() == folded))
        .try_collect()
        .await;
    spinner.finish_and_clear();
    Ok(prefer_exact(found?, email))
}

/// Of agents whose emails match `email` without regard to case, the one
/// that matches it exactly, if there is one; all of them otherwise.
fn prefer_exact(mut found: Vec<Agent>, email: &str) -> Vec<Agent> {
    match found.iter().filter(|a| a.email == email).count() {
        1 => {
            found.retain(|a| a.email == email);
            found
        }
        _ => found,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: u128, email: &str) -> Agent {
        serde_json::from_value(serde_json::json!({
            "agentId": Uuid::from_u128(id),
            "email": email,
            "agentType": "screener",
            "version": "1.0.0",
            "capabilities": ["a:b"],
            "owner": "o",
            "deploymentEnv": "production",
            "status": "active",
            "createdAt": "2026-12-01T00:00:00Z",
            "updatedAt": "2026-12-01T00:00:00Z",
        }))
        .expect("an agent")
    }

    #[test]
    fn an_email_matching_two_agents_is_refused_naming_both() {
        let both = vec![agent(1, "Twin@x.example"), agent(2, "twin@X.example")];
        let found = prefer_exact(both, "TWIN@x.example");
        let refused = the_one(&found, "TWIN@x.example").unwrap_err();
        assert_eq!(refused.exit_code(), crate::failure::USAGE);
        let said = refused.to_string();
        assert!(
            said.contains(&Uuid::from_u128(1).to_string())
                && said.contains(&Uuid::from_u128(2).to_string()),
            "{said}"
        );
    }

    #[test]
    fn an_exact_match_wins_over_one_in_another_case() {
        let both = vec![agent(1, "Twin@x.example"), agent(2, "twin@x.example")];
        let found = prefer_exact(both, "twin@x.example");
        assert_eq!(
            the_one(&found, "twin@x.example").unwrap(),
            Uuid::from_u128(2)
        );
        assert_eq!(
            the_one(&[], "none@x.example").unwrap_err().exit_code(),
            crate::failure::NOT_FOUND
        );
    }

    #[test]
    fn an_agent_is_named_by_a_uuid_or_an_email_and_nothing_else() {
        assert!(matches!(
            "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60".parse(),
            Ok(AgentRef::Id(_))
        ));
        assert!(matches!("a@b.example".parse(), Ok(AgentRef::Email(_))));
        for junk in ["bulk-3", "@b", "a@", ""] {
            assert!(junk.parse::<AgentRef>().is_err(), "{junk}");
        }
    }
}
