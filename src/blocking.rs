//! A blocking client with the same surface as the async one, built on it
//! (like `reqwest::blocking`): each call runs on a small runtime the client owns.
//!
//! ```no_run
//! # fn main() -> sentryagent_idp::Result<()> {
//! let client = sentryagent_idp::blocking::Client::from_env()?;
//! for agent in client.agents().list().limit(50).iter() {
//!     println!("{}", agent?.email.as_str());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Do not call it from inside an async runtime: calls made there return an
//! [`ErrorKind::Config`](crate::ErrorKind::Config) error instead of blocking
//! the runtime's thread.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::client::ClientBuilder;
use crate::error::{Error, Result};
use crate::model::{
    Agent, AgentStatus, AgentType, AgentUpdate, AuditAction, AuditEvent, AuditOutcome, Credential,
    CredentialWithSecret, Introspection, NewAgent, Page,
};
use crate::scope::{Scope, ScopeSet};

/// Marks a [`ClientBuilder`] that builds the blocking [`Client`].
#[derive(Debug)]
pub enum Blocking {}

impl ClientBuilder<Blocking> {
    /// Validates the settings and builds the blocking client.
    pub fn build(self) -> Result<Client> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sentryagent-idp")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::config("cannot start the blocking client's runtime").with_source(e)
            })?;
        Ok(Client {
            inner: self.build_async()?,
            runtime: Arc::new(runtime),
        })
    }
}

/// The blocking AgentIdP client. Cheap to clone; clones share the runtime,
/// the connection pool and the token cache.
#[derive(Clone)]
pub struct Client {
    inner: crate::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("blocking::Client")
            .field(&self.inner)
            .finish()
    }
}

impl Client {
    /// A builder, as for [`crate::Client::builder`].
    pub fn builder() -> ClientBuilder<Blocking> {
        ClientBuilder::new()
    }

    /// A client from the `AGENTIDP_*` environment variables, as for
    /// [`crate::Client::from_env`].
    pub fn from_env() -> Result<Client> {
        ClientBuilder::<Blocking>::from_env()?.build()
    }

    /// Runs `fut` to completion on the client's runtime.
    fn wait<F: Future>(&self, fut: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::config(
                "the blocking client was called inside an async runtime; use sentryagent_idp::Client there",
            ));
        }
        Ok(self.runtime.block_on(fut))
    }

    fn run<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        self.wait(fut)?
    }

    /// Agent registry calls.
    pub fn agents(&self) -> Agents {
        Agents {
            client: self.clone(),
            inner: self.inner.agents(),
        }
    }

    /// Credential calls.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            client: self.clone(),
            inner: self.inner.credentials(),
        }
    }

    /// Token introspection and revocation.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            client: self.clone(),
            inner: self.inner.tokens(),
        }
    }

    /// Audit-log queries.
    pub fn audit(&self) -> Audit {
        Audit {
            client: self.clone(),
            inner: self.inner.audit(),
        }
    }

    /// The full API base URL.
    pub fn api_url(&self) -> &str {
        self.inner.api_url()
    }

    /// The current access token, fetching one if needed.
    pub fn access_token(&self) -> Result<SecretString> {
        self.run(self.inner.access_token())
    }

    /// The scopes granted to the current token, if the source says.
    pub fn granted_scopes(&self) -> Result<Option<ScopeSet>> {
        self.run(self.inner.granted_scopes())
    }

    /// Forgets the cached token.
    pub fn clear_token_cache(&self) {
        self.inner.clear_token_cache();
    }

    /// As [`crate::Client::set_client_secret`].
    pub fn set_client_secret(&self, secret: impl Into<SecretString>) -> Result<()> {
        self.inner.set_client_secret(secret)
    }

    /// A client limited to `scopes`, as for [`crate::Client::with_scopes`].
    pub fn with_scopes(&self, scopes: impl IntoIterator<Item = Scope>) -> Result<Client> {
        Ok(Client {
            inner: self.inner.with_scopes(scopes)?,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// The async client this one drives.
    pub fn as_async(&self) -> &crate::Client {
        &self.inner
    }

    fn iter<T>(&self, stream: impl Stream<Item = Result<T>> + Send + 'static) -> Iter<T>
    where
        T: Send + 'static,
    {
        Iter {
            client: self.clone(),
            stream: Some(Box::pin(stream)),
        }
    }
}

/// Agent registry calls; from [`Client::agents`].
#[derive(Clone, Debug)]
pub struct Agents {
    client: Client,
    inner: crate::Agents,
}

impl Agents {
    /// As [`crate::Agents::register`].
    pub fn register<A>(&self, agent: A) -> Result<Agent>
    where
        A: TryInto<NewAgent>,
        A::Error: fmt::Display,
    {
        self.client.run(self.inner.register(agent))
    }

    /// As [`crate::Agents::list`].
    pub fn list(&self) -> ListAgents {
        ListAgents {
            client: self.client.clone(),
            inner: self.inner.list(),
        }
    }

    /// As [`crate::Agents::get`].
    pub fn get(&self, agent_id: Uuid) -> Result<Agent> {
        self.client.run(self.inner.get(agent_id))
    }

    /// As [`crate::Agents::update`].
    pub fn update<U>(&self, agent_id: Uuid, update: U) -> Result<Agent>
    where
        U: TryInto<AgentUpdate>,
        U::Error: fmt::Display,
    {
        self.client.run(self.inner.update(agent_id, update))
    }

    /// As [`crate::Agents::decommission`].
    pub fn decommission(&self, agent_id: Uuid) -> Result<()> {
        self.client.run(self.inner.decommission(agent_id))
    }
}

/// A `GET /agents` request; from [`Agents::list`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.iter()` it"]
pub struct ListAgents {
    client: Client,
    inner: crate::ListAgents,
}

impl ListAgents {
    /// Only agents with this status.
    pub fn status(self, status: AgentStatus) -> Self {
        Self {
            inner: self.inner.status(status),
            ..self
        }
    }

    /// Only agents of this type.
    pub fn agent_type(self, agent_type: AgentType) -> Self {
        Self {
            inner: self.inner.agent_type(agent_type),
            ..self
        }
    }

    /// Only agents of this owner.
    pub fn owner(self, owner: impl Into<String>) -> Self {
        Self {
            inner: self.inner.owner(owner),
            ..self
        }
    }

    /// The 1-based page (default 1).
    pub fn page(self, page: u32) -> Self {
        Self {
            inner: self.inner.page(page),
            ..self
        }
    }

    /// The page size (default 20).
    pub fn limit(self, limit: u32) -> Self {
        Self {
            inner: self.inner.limit(limit),
            ..self
        }
    }

    /// Fetches one page.
    pub fn send(self) -> Result<Page<Agent>> {
        self.client.run(self.inner.send())
    }

    /// Every matching agent, fetching pages lazily.
    pub fn iter(self) -> Iter<Agent> {
        self.client.iter(self.inner.stream())
    }
}

/// Credential calls; from [`Client::credentials`].
#[derive(Clone, Debug)]
pub struct Credentials {
    client: Client,
    inner: crate::Credentials,
}

impl Credentials {
    /// As [`crate::Credentials::generate`]; `.send()` it.
    pub fn generate(&self, agent_id: Uuid) -> IssueSecret {
        IssueSecret {
            client: self.client.clone(),
            inner: self.inner.generate(agent_id),
        }
    }

    /// As [`crate::Credentials::list`].
    pub fn list(&self, agent_id: Uuid) -> Result<Vec<Credential>> {
        self.client.run(self.inner.list(agent_id))
    }

    /// As [`crate::Credentials::rotate`]; `.send()` it.
    pub fn rotate(&self, agent_id: Uuid, credential_id: Uuid) -> IssueSecret {
        IssueSecret {
            client: self.client.clone(),
            inner: self.inner.rotate(agent_id, credential_id),
        }
    }

    /// As [`crate::Credentials::revoke`].
    pub fn revoke(&self, agent_id: Uuid, credential_id: Uuid) -> Result<()> {
        self.client.run(self.inner.revoke(agent_id, credential_id))
    }
}

/// A generate or rotate request; from [`Credentials::generate`] and [`Credentials::rotate`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct IssueSecret {
    client: Client,
    inner: crate::IssueSecret,
}

impl IssueSecret {
    /// When the credential expires (default: never).
    pub fn expires_at(self, at: DateTime<Utc>) -> Self {
        Self {
            inner: self.inner.expires_at(at),
            ..self
        }
    }

    /// Sends the request.
    pub fn send(self) -> Result<CredentialWithSecret> {
        self.client.run(self.inner.send())
    }
}

/// Token calls; from [`Client::tokens`].
#[derive(Clone, Debug)]
pub struct Tokens {
    client: Client,
    inner: crate::Tokens,
}

impl Tokens {
    /// As [`crate::Tokens::introspect`].
    pub fn introspect(&self, token: &impl ExposeSecret<str>) -> Result<Introspection> {
        self.client.run(self.inner.introspect(token))
    }

    /// As [`crate::Tokens::revoke`].
    pub fn revoke(&self, token: &impl ExposeSecret<str>) -> Result<()> {
        self.client.run(self.inner.revoke(token))
    }
}

/// Audit-log calls; from [`Client::audit`].
#[derive(Clone, Debug)]
pub struct Audit {
    client: Client,
    inner: crate::Audit,
}

impl Audit {
    /// As [`crate::Audit::query`].
    pub fn query(&self) -> QueryAudit {
        QueryAudit {
            client: self.client.clone(),
            inner: self.inner.query(),
        }
    }

    /// As [`crate::Audit::get`].
    pub fn get(&self, event_id: Uuid) -> Result<AuditEvent> {
        self.client.run(self.inner.get(event_id))
    }
}

/// A `GET /audit` request; from [`Audit::query`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.iter()` it"]
pub struct QueryAudit {
    client: Client,
    inner: crate::QueryAudit,
}

impl QueryAudit {
    /// Only events concerning this agent.
    pub fn agent_id(self, agent_id: Uuid) -> Self {
        Self {
            inner: self.inner.agent_id(agent_id),
            ..self
        }
    }

    /// Only events of this action.
    pub fn action(self, action: AuditAction) -> Self {
        Self {
            inner: self.inner.action(action),
            ..self
        }
    }

    /// Only events with this outcome.
    pub fn outcome(self, outcome: AuditOutcome) -> Self {
        Self {
            inner: self.inner.outcome(outcome),
            ..self
        }
    }

    /// Only events at or after `from`.
    pub fn from(self, from: DateTime<Utc>) -> Self {
        Self {
            inner: self.inner.from(from),
            ..self
        }
    }

    /// Only events at or before `to`.
    pub fn to(self, to: DateTime<Utc>) -> Self {
        Self {
            inner: self.inner.to(to),
            ..self
        }
    }

    /// The 1-based page (default 1).
    pub fn page(self, page: u32) -> Self {
        Self {
            inner: self.inner.page(page),
            ..self
        }
    }

    /// The page size (default 20).
    pub fn limit(self, limit: u32) -> Self {
        Self {
            inner: self.inner.limit(limit),
            ..self
        }
    }

    /// Fetches one page.
    pub fn send(self) -> Result<Page<AuditEvent>> {
        self.client.run(self.inner.send())
    }

    /// Every matching event, fetching pages lazily.
    pub fn iter(self) -> Iter<AuditEvent> {
        self.client.iter(self.inner.stream())
    }
}

/// An iterator over every item of a paginated listing.
pub struct Iter<T> {
    client: Client,
    /// `None` once the listing ended or the iterator cannot run.
    stream: Option<std::pin::Pin<Box<dyn Stream<Item = Result<T>> + Send>>>,
}

impl<T> fmt::Debug for Iter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<T> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let stream = self.stream.as_mut()?;
        let item = match self.client.wait(stream.next()) {
            Ok(item) => item,
            Err(e) => Some(Err(e)),
        };
        // Fused: after the end or an error, nothing more (the stream stops at
        // its first error too).
        if !matches!(item, Some(Ok(_))) {
            self.stream = None;
        }
        item
    }
}
