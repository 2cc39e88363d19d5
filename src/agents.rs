//! Agent registry: register, list, get, update, decommission.

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::flavor::{Async, Flavor};
use crate::model::{Agent, AgentStatus, AgentType, DeploymentEnv, Page};
use crate::operation::Operation;
use crate::pagination::{Pages, Paginator, Paging};
use crate::raw;
use crate::seam::Answer;
use crate::validate::{checked, each, required};

/// Agent registry calls; from [`Client::agents`].
#[derive(Clone, Debug)]
pub struct Agents<F: Flavor = Async> {
    client: Client<F>,
}

impl<F: Flavor> Client<F> {
    /// Agent registry calls.
    pub fn agents(&self) -> Agents<F> {
        Agents::new(self.clone())
    }
}

impl<F: Flavor> Agents<F> {
    fn new(client: Client<F>) -> Self {
        Self { client }
    }

    /// Registers an agent (`agents:write`): set every field, then `.send()`.
    /// A value the spec refuses (an email, capability or version of the wrong
    /// shape, an owner over 128 characters) is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) and nothing is sent.
    ///
    /// ```no_run
    /// # async fn run(client: sentryagent_idp::Client) -> sentryagent_idp::Result<()> {
    /// use sentryagent_idp::model::{AgentType, DeploymentEnv};
    ///
    /// let agent = client
    ///     .agents()
    ///     .register()
    ///     .email("screener-001@myproject.ai")
    ///     .agent_type(AgentType::Screener)
    ///     .version("1.0.0")
    ///     .capabilities(["resume:read"])
    ///     .owner("platform-team")
    ///     .deployment_env(DeploymentEnv::Production)
    ///     .send()
    ///     .await?;
    /// # let _ = agent; Ok(()) }
    /// ```
    pub fn register(&self) -> RegisterAgent<F> {
        RegisterAgent {
            client: self.client.clone(),
            fields: AgentFields::default(),
        }
    }

    /// Lists agents (`agents:read`); chain filters, then `.send()` for one
    /// page or `.stream()` for every agent.
    pub fn list(&self) -> ListAgents<F> {
        ListAgents {
            client: self.client.clone(),
            status: None,
            agent_type: None,
            owner: None,
            paging: Paging::default(),
        }
    }

    /// One agent, decommissioned ones included (`agents:read`).
    pub fn get(&self, agent_id: Uuid) -> GetAgent<F> {
        GetAgent {
            client: self.client.clone(),
            agent_id,
        }
    }

    /// Changes only the fields set, at least one (`agents:write`); the
    /// setters take the same arguments as [`register`](Self::register)'s.
    /// Setting the status to `suspended` suspends the agent, `active`
    /// reactivates it.
    ///
    /// An update is replayed only when it provably never reached the server:
    /// an attempt that timed out or lost its connection may still land later
    /// and undo a newer update, so the call fails with
    /// [`ErrorKind::OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown) (as
    /// does any 5xx), saying what to check. An update to `decommissioned` is
    /// final and is replayed and reported as
    /// [`decommission`](Self::decommission) is: a lost answer is `Ok`, with
    /// the agent read back (which needs `agents:read`).
    pub fn update(&self, agent_id: Uuid) -> UpdateAgent<F> {
        UpdateAgent {
            client: self.client.clone(),
            agent_id,
            fields: AgentFields::default(),
            status: None,
        }
    }

    /// Decommissions the agent for good (`agents:write`).
    pub fn decommission(&self, agent_id: Uuid) -> DecommissionAgent<F> {
        DecommissionAgent {
            client: self.client.clone(),
            agent_id,
        }
    }
}

/// The fields an agent is registered or updated with, as given.
#[derive(Clone, Debug, Default)]
struct AgentFields {
    email: Option<String>,
    agent_type: Option<AgentType>,
    version: Option<String>,
    capabilities: Option<Vec<String>>,
    owner: Option<String>,
    deployment_env: Option<DeploymentEnv>,
}

/// The setters [`RegisterAgent`] and [`UpdateAgent`] share, with the same
/// argument types.
macro_rules! agent_setters {
    ($request:ident) => {
        impl<F: Flavor> $request<F> {
            /// The kind of work the agent does.
            pub fn agent_type(mut self, agent_type: AgentType) -> Self {
                self.fields.agent_type = Some(agent_type);
                self
            }

            /// Its semantic version, e.g. `1.0.0` or `2.3.1-beta`.
            pub fn version(mut self, version: impl Into<String>) -> Self {
                self.fields.version = Some(version.into());
                self
            }

            /// Its capabilities, each `resource:action` (`*` allowed as the
            /// action); at least one.
            pub fn capabilities<I>(mut self, capabilities: I) -> Self
            where
                I: IntoIterator,
                I::Item: Into<String>,
            {
                self.fields.capabilities = Some(capabilities.into_iter().map(Into::into).collect());
                self
            }

            /// Its owner, 1 to 128 characters.
            pub fn owner(mut self, owner: impl Into<String>) -> Self {
                self.fields.owner = Some(owner.into());
                self
            }

            /// Where it runs.
            pub fn deployment_env(mut self, env: DeploymentEnv) -> Self {
                self.fields.deployment_env = Some(env);
                self
            }
        }
    };
}

/// A `POST /agents` request; from [`Agents::register`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct RegisterAgent<F: Flavor = Async> {
    client: Client<F>,
    fields: AgentFields,
}

agent_setters!(RegisterAgent);

impl<F: Flavor> RegisterAgent<F> {
    /// Its email, unique across all agents.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.fields.email = Some(email.into());
        self
    }

    fn body(fields: AgentFields) -> Result<raw::types::NewAgent> {
        let op = Operation::RegisterAgent;
        let capabilities = required(op, "capabilities", fields.capabilities)?;
        if capabilities.is_empty() {
            return Err(
                Error::invalid_input("`capabilities` needs at least one").with_operation(op)
            );
        }
        Ok(raw::types::NewAgent {
            email: checked(op, "email", required(op, "email", fields.email)?)?,
            agent_type: required(op, "agent_type", fields.agent_type)?,
            version: checked(op, "version", required(op, "version", fields.version)?)?,
            capabilities: each(op, "capabilities", capabilities)?,
            owner: checked(op, "owner", required(op, "owner", fields.owner)?)?,
            deployment_env: required(op, "deployment_env", fields.deployment_env)?,
        })
    }

    async fn run(self) -> Result<Agent> {
        let body = Self::body(self.fields)?;
        self.client
            .seam()
            .call(Operation::RegisterAgent, body, |raw, body| async move {
                raw.register_agent(&body).await
            })
            .await
    }
}

send!(RegisterAgent => Agent);

/// A `GET /agents/{agentId}` request; from [`Agents::get`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct GetAgent<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
}

impl<F: Flavor> GetAgent<F> {
    async fn run(self) -> Result<Agent> {
        let id = self.agent_id;
        self.client
            .seam()
            .call(Operation::GetAgent, id, |raw, id| async move {
                raw.get_agent(&id).await
            })
            .await
    }
}

send!(GetAgent => Agent);

/// A `PATCH /agents/{agentId}` request; from [`Agents::update`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct UpdateAgent<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
    fields: AgentFields,
    status: Option<AgentStatus>,
}

agent_setters!(UpdateAgent);

impl<F: Flavor> UpdateAgent<F> {
    /// Its status: `suspended` suspends the agent, `active` reactivates a
    /// suspended one, `decommissioned` decommissions it for good.
    pub fn status(mut self, status: AgentStatus) -> Self {
        self.status = Some(status);
        self
    }

    fn body(fields: AgentFields, status: Option<AgentStatus>) -> Result<raw::types::AgentUpdate> {
        let op = Operation::UpdateAgent;
        let capabilities = match fields.capabilities {
            Some(c) if c.is_empty() => {
                return Err(
                    Error::invalid_input("`capabilities` needs at least one").with_operation(op)
                );
            }
            Some(c) => each(op, "capabilities", c)?,
            None => Vec::new(),
        };
        let body = raw::types::AgentUpdate {
            agent_type: fields.agent_type,
            version: fields
                .version
                .map(|v| checked(op, "version", v))
                .transpose()?,
            capabilities,
            owner: fields.owner.map(|v| checked(op, "owner", v)).transpose()?,
            deployment_env: fields.deployment_env,
            status,
        };
        let empty = body.agent_type.is_none()
            && body.version.is_none()
            && body.capabilities.is_empty()
            && body.owner.is_none()
            && body.deployment_env.is_none()
            && body.status.is_none();
        if empty {
            return Err(
                Error::invalid_input("an update must set at least one field").with_operation(op),
            );
        }
        Ok(body)
    }

    async fn run(self) -> Result<Agent> {
        // Decommissioning is final: a PATCH that does it is replayed as the
        // DELETE is, and reported as the DELETE is (spec, update_agent).
        let rules = if self.status == Some(AgentStatus::Decommissioned) {
            Operation::DecommissionAgent
        } else {
            Operation::UpdateAgent
        };
        let body = Self::body(self.fields, self.status)?;
        let id = self.agent_id;
        let seam = self.client.seam();
        let answer = seam
            .call_as(
                Operation::UpdateAgent,
                rules,
                (id, body),
                |raw, (id, body)| async move { raw.update_agent(&id, &body).await },
            )
            .await?;
        match answer {
            Answer::Value(agent) => Ok(agent),
            // An earlier attempt decommissioned the agent and its answer was
            // lost: the agent as it now is.
            Answer::Done(_) => {
                seam.call(Operation::GetAgent, id, |raw, id| async move {
                    raw.get_agent(&id).await
                })
                .await
            }
        }
    }
}

send!(UpdateAgent => Agent);

/// A `DELETE /agents/{agentId}` request; from [`Agents::decommission`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct DecommissionAgent<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
}

impl<F: Flavor> DecommissionAgent<F> {
    async fn run(self) -> Result<()> {
        let id = self.agent_id;
        self.client
            .seam()
            .call(Operation::DecommissionAgent, id, |raw, id| async move {
                raw.decommission_agent(&id).await
            })
            .await
    }
}

send!(DecommissionAgent => ());

/// A `GET /agents` request; from [`Agents::list`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.stream()` it"]
pub struct ListAgents<F: Flavor = Async> {
    client: Client<F>,
    status: Option<AgentStatus>,
    agent_type: Option<AgentType>,
    owner: Option<String>,
    paging: Paging,
}

impl<F: Flavor> ListAgents<F> {
    /// Only agents with this status.
    pub fn status(mut self, status: AgentStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only agents of this type.
    pub fn agent_type(mut self, agent_type: AgentType) -> Self {
        self.agent_type = Some(agent_type);
        self
    }

    /// Only agents of this owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    async fn run(self) -> Result<Page<Agent>> {
        let op = Operation::ListAgents;
        let query = self.paging.query(op)?;
        let (page, size) = (query.page, query.size);
        let Self {
            client,
            status,
            agent_type,
            owner,
            ..
        } = self;
        let data = client
            .seam()
            .call(
                op,
                (agent_type, owner, status),
                move |raw, (agent_type, owner, status)| async move {
                    raw.list_agents(
                        agent_type.as_ref(),
                        Some(size),
                        owner.as_deref(),
                        Some(page),
                        status.as_ref(),
                    )
                    .await
                },
            )
            .await?;
        Ok(query.page(data.data, data.total, data.limit))
    }

    fn walk(mut self) -> Paginator<Agent> {
        let first = self.paging.walk();
        Paginator::new(first, AgentPages(self))
    }
}

/// The pages of a [`ListAgents`] walk.
struct AgentPages<F: Flavor>(ListAgents<F>);

impl<F: Flavor> Pages for AgentPages<F> {
    type Item = Agent;

    fn fetch(&mut self, page: u32, size: Option<u32>) -> BoxFuture<'static, Result<Page<Agent>>> {
        let mut query = self.0.clone().page(page);
        if let Some(size) = size {
            query = query.limit(size);
        }
        Box::pin(query.run())
    }
}

send!(ListAgents => Page<Agent>);
paging_setters!(ListAgents);

impl ListAgents<Async> {
    /// Every matching agent, fetching pages (of 100 unless
    /// [`limit`](Self::limit) says otherwise) as the stream is read.
    pub fn stream(self) -> Paginator<Agent> {
        self.walk()
    }
}

#[cfg(feature = "blocking")]
impl ListAgents<crate::blocking::Blocking> {
    /// Every matching agent, fetching pages (of 100 unless
    /// [`limit`](Self::limit) says otherwise) as the iterator is read.
    pub fn iter(self) -> crate::blocking::Iter<Agent> {
        let runtime = self.client.runtime().clone();
        crate::blocking::Iter::new(runtime, self.walk())
    }
}
