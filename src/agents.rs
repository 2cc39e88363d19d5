//! Agent registry: register, list, get, update, decommission.

use std::fmt;

use futures::Stream;
use uuid::Uuid;

use crate::Client;
use crate::error::{Error, Result};
use crate::model::{Agent, AgentStatus, AgentType, AgentUpdate, NewAgent, Page};
use crate::pagination::{self, DEFAULT_PAGE_SIZE};

/// Agent registry calls; from [`Client::agents`].
#[derive(Clone, Debug)]
pub struct Agents {
    client: Client,
}

impl Agents {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Registers an agent (`agents:write`). Accepts a [`NewAgent`] or its
    /// builder; a value the spec refuses (bad email, capability, semver) is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) and nothing is sent.
    pub async fn register<A>(&self, agent: A) -> Result<Agent>
    where
        A: TryInto<NewAgent>,
        A::Error: fmt::Display,
    {
        let agent = agent
            .try_into()
            .map_err(|e| Error::invalid_input(format!("invalid agent: {e}")))?;
        self.client
            .call(self.client.raw().register_agent().body(agent).send())
            .await
    }

    /// Lists agents; chain filters, then `.send()` for one page or `.stream()`
    /// for every agent (`agents:read`).
    pub fn list(&self) -> ListAgents {
        ListAgents {
            client: self.client.clone(),
            status: None,
            agent_type: None,
            owner: None,
            page: 1,
            limit: DEFAULT_PAGE_SIZE,
        }
    }

    /// One agent, decommissioned ones included (`agents:read`).
    pub async fn get(&self, agent_id: Uuid) -> Result<Agent> {
        self.client
            .call(self.client.raw().get_agent().agent_id(agent_id).send())
            .await
    }

    /// Changes only the fields set in `update` (`agents:write`).
    pub async fn update<U>(&self, agent_id: Uuid, update: U) -> Result<Agent>
    where
        U: TryInto<AgentUpdate>,
        U::Error: fmt::Display,
    {
        let update = update
            .try_into()
            .map_err(|e| Error::invalid_input(format!("invalid update: {e}")))?;
        // Unset fields are not serialized, so an empty object means nothing to change.
        let empty = serde_json::to_value(&update)
            .is_ok_and(|v| v.as_object().is_some_and(|m| m.is_empty()));
        if empty {
            return Err(Error::invalid_input(
                "an update must set at least one field",
            ));
        }
        self.client
            .call(
                self.client
                    .raw()
                    .update_agent()
                    .agent_id(agent_id)
                    .body(update)
                    .send(),
            )
            .await
    }

    /// Decommissions the agent for good (`agents:write`).
    pub async fn decommission(&self, agent_id: Uuid) -> Result<()> {
        self.client
            .call_unit(
                self.client
                    .raw()
                    .decommission_agent()
                    .agent_id(agent_id)
                    .send(),
            )
            .await
    }
}

/// A `GET /agents` request; from [`Agents::list`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.stream()` it"]
pub struct ListAgents {
    client: Client,
    status: Option<AgentStatus>,
    agent_type: Option<AgentType>,
    owner: Option<String>,
    page: u32,
    limit: u32,
}

impl ListAgents {
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

    /// The 1-based page to fetch (default 1); for `.stream()`, where to start.
    pub fn page(mut self, page: u32) -> Self {
        self.page = page;
        self
    }

    /// The page size (default 20).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Fetches one page.
    pub async fn send(self) -> Result<Page<Agent>> {
        let mut request = self
            .client
            .raw()
            .list_agents()
            .page(self.page)
            .limit(self.limit);
        if let Some(status) = self.status {
            request = request.status(status);
        }
        if let Some(agent_type) = self.agent_type {
            request = request.agent_type(agent_type);
        }
        if let Some(owner) = self.owner {
            request = request.owner(owner);
        }
        let page = self.client.call(request.send()).await?;
        Ok(pagination::page(
            page.data, page.total, self.page, self.limit,
        ))
    }

    /// Every matching agent, fetching pages lazily as the stream is read.
    pub fn stream(self) -> impl Stream<Item = Result<Agent>> + Send + 'static {
        let first = self.page;
        pagination::items(first, move |page| self.clone().page(page).send())
    }
}
