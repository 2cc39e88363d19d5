//! [`FakeAgentIdp`], the handle a test holds, and its builder.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use uuid::Uuid;

use super::app::{App, new_credential};
use super::control::Control;
use super::failure::Failure;
use super::routes;
use super::seed::{AgentSeed, AuditEventSeed};
use super::server::Server;
use super::tokens::TokenKeys;
use crate::API_PREFIX;
use crate::operation::Operation;

/// The default lifetime of issued tokens, as on the real server.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A stateful, in-memory AgentIdP serving the 14 endpoints under `/api/v1`
/// on `127.0.0.1` and a port the OS picks (or the builder's
/// [`port`](FakeAgentIdpBuilder::port)).
///
/// It starts with one agent, the *bootstrap* agent, holding a credential with
/// all four scopes ([`client_id`](Self::client_id),
/// [`client_secret`](Self::client_secret)). Everything else is empty: no other
/// agents, no audit events.
///
/// Dropping the handle stops the server (its task is aborted); call
/// [`shutdown`](Self::shutdown) to let in-flight requests finish first.
/// `Debug` never shows the secret.
///
/// ```
/// use secrecy::ExposeSecret;
/// use sentryagent_idp::testing::FakeAgentIdp;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fake = FakeAgentIdp::start().await?;
/// let secret = fake.client_secret();
/// let token: serde_json::Value = reqwest::Client::new()
///     .post(format!("{}/api/v1/token", fake.base_url()))
///     .form(&[
///         ("grant_type", "client_credentials"),
///         ("client_id", fake.client_id().as_str()),
///         ("client_secret", secret.expose_secret()),
///     ])
///     .send()
///     .await?
///     .json()
///     .await?;
/// assert_eq!(token["token_type"], "Bearer");
/// assert_eq!(fake.requests_seen(sentryagent_idp::Operation::IssueToken), 1);
/// # Ok(())
/// # }
/// ```
pub struct FakeAgentIdp {
    app: Arc<App>,
    server: Server,
    bootstrap_agent_id: Uuid,
    bootstrap_secret: SecretString,
}

impl fmt::Debug for FakeAgentIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAgentIdp")
            .field("base_url", &self.base_url())
            .field("bootstrap_agent_id", &self.bootstrap_agent_id)
            .field("client_secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

/// Settings of a [`FakeAgentIdp`] before it starts.
///
/// ```
/// use std::time::Duration;
/// use sentryagent_idp::testing::FakeAgentIdp;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let fake = FakeAgentIdp::builder()
///     .token_lifetime(Duration::from_secs(120))
///     .latency(Duration::from_millis(5))
///     .rate_limit(100, Duration::from_secs(60))
///     .start()
///     .await?;
/// # let _ = fake;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct FakeAgentIdpBuilder {
    token_lifetime: Duration,
    latency: Duration,
    rate_limit: Option<(u32, Duration)>,
    port: u16,
}

impl Default for FakeAgentIdpBuilder {
    fn default() -> Self {
        FakeAgentIdpBuilder {
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            latency: Duration::ZERO,
            rate_limit: None,
            port: 0,
        }
    }
}

impl FakeAgentIdpBuilder {
    /// Lifetime of issued tokens (default 3600 s), in whole seconds: `exp`
    /// is `iat` plus this, and `expires_in` says the same. Zero issues tokens
    /// that are expired at once.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Delay added before every response of the 14 operations (default none).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Admit at most `max_requests` requests in any window of `per`, across
    /// all operations and clients; the rest get `429 RATE_LIMIT_EXCEEDED` with
    /// `Retry-After` in seconds (at least 1). Refused requests do not use up
    /// the budget. Default: unlimited.
    pub fn rate_limit(mut self, max_requests: u32, per: Duration) -> Self {
        self.rate_limit = Some((max_requests, per));
        self
    }

    /// The loopback port to listen on (default 0: the OS picks a free one,
    /// which is what tests should use). A fixed port such as 3000, the real
    /// server's default, suits a fake run as a process for other tools.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds `127.0.0.1` on the [`port`](Self::port) (by default one the OS
    /// picks) and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or the embedded test key cannot be read.
    pub async fn start(self) -> io::Result<FakeAgentIdp> {
        let keys = TokenKeys::load().map_err(io::Error::other)?;
        let control = Control::new(self.latency, self.token_lifetime, self.rate_limit);
        let app = Arc::new(App::new(control, keys));
        let bootstrap = AgentSeed::new()
            .email("bootstrap@fake.agentidp.test")
            .agent_type("orchestrator")
            .capabilities(["agents:*", "tokens:*", "audit:read"])
            .owner("fake-agentidp")
            .admin(true)
            .into_record();
        let bootstrap_agent_id = bootstrap.id;
        let (credential, secret) =
            new_credential(bootstrap_agent_id, None).map_err(io::Error::other)?;
        {
            let mut store = app.store();
            store.insert_agent(bootstrap);
            store.insert_credential(credential);
        }
        let server = Server::spawn(routes::router(Arc::clone(&app)), self.port).await?;
        Ok(FakeAgentIdp {
            app,
            server,
            bootstrap_agent_id,
            bootstrap_secret: SecretString::from(secret),
        })
    }
}

impl FakeAgentIdp {
    /// Starts a fake with the default settings (see [`builder`](Self::builder)).
    ///
    /// # Errors
    ///
    /// If the port cannot be bound.
    pub async fn start() -> io::Result<FakeAgentIdp> {
        Self::builder().start().await
    }

    /// A builder for latency, token lifetime and rate limiting.
    pub fn builder() -> FakeAgentIdpBuilder {
        FakeAgentIdpBuilder::default()
    }

    /// The server's origin, e.g. `http://127.0.0.1:41234`: what the SDK takes
    /// as its base URL (it appends `/api/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    /// The full API root, [`base_url`](Self::base_url) plus `/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url())
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The bootstrap agent's client id (its agent id).
    pub fn client_id(&self) -> String {
        self.bootstrap_agent_id.to_string()
    }

    /// The bootstrap credential's secret, good for all four scopes.
    pub fn client_secret(&self) -> SecretString {
        self.bootstrap_secret.clone()
    }

    /// A client builder pointed at this fake with the bootstrap credentials
    /// (all four scopes); chain more settings or `.build()` it.
    pub fn client_builder(&self) -> crate::ClientBuilder {
        crate::Client::builder()
            .base_url(self.base_url())
            .client_id(self.client_id())
            .client_secret(self.client_secret())
    }

    /// The bootstrap agent's id.
    pub fn bootstrap_agent_id(&self) -> Uuid {
        self.bootstrap_agent_id
    }

    /// Adds an agent directly (no HTTP, no audit event) and returns its id.
    ///
    /// # Panics
    ///
    /// If the seed's email is already taken.
    pub fn seed_agent(&self, seed: AgentSeed) -> Uuid {
        let record = seed.into_record();
        let (id, email) = (record.id, record.email.clone());
        assert!(
            self.app.store().insert_agent(record),
            "an agent with email `{email}` already exists"
        );
        id
    }

    /// Adds `count` agents at once, the `i`-th made by `make(i)`, and returns
    /// their ids in order. Cheap enough for hundreds.
    ///
    /// ```
    /// use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let fake = FakeAgentIdp::start().await?;
    /// let ids = fake.seed_agents(250, |i| {
    ///     AgentSeed::new().owner("pagination").agent_type(if i % 2 == 0 { "router" } else { "monitor" })
    /// });
    /// assert_eq!(ids.len(), 250);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If a seed's email is already taken.
    pub fn seed_agents(&self, count: usize, mut make: impl FnMut(usize) -> AgentSeed) -> Vec<Uuid> {
        let mut store = self.app.store();
        (0..count)
            .map(|i| {
                let record = make(i).into_record();
                let (id, email) = (record.id, record.email.clone());
                assert!(
                    store.insert_agent(record),
                    "an agent with email `{email}` already exists"
                );
                id
            })
            .collect()
    }

    /// Adds a credential to an agent directly (no HTTP, no audit event), and
    /// returns its id and its secret. Works whatever the agent's status.
    ///
    /// # Panics
    ///
    /// If there is no agent `agent_id`.
    pub fn seed_credential(&self, agent_id: Uuid) -> (Uuid, SecretString) {
        let (credential, secret) = match new_credential(agent_id, None) {
            Ok(made) => made,
            Err(e) => panic!("cannot draw random bytes for a secret: {e}"),
        };
        let id = credential.id;
        assert!(
            self.app.store().insert_credential(credential),
            "there is no agent {agent_id}"
        );
        (id, SecretString::from(secret))
    }

    /// Adds an audit event directly and returns its `eventId`.
    pub fn seed_audit_event(&self, seed: AuditEventSeed) -> Uuid {
        self.app.store().push_audit(seed.into_record())
    }

    /// Makes the next `times` requests of `operation` fail as `failure`
    /// says. Calls add to the queue; see [`Failure`].
    ///
    /// # Panics
    ///
    /// If a [`Failure::Status`] is outside 200–599.
    pub fn fail_next(&self, operation: Operation, failure: Failure, times: usize) {
        if let Failure::Status(status) = failure {
            assert!(
                (200..=599).contains(&status),
                "injected status {status} is outside 200-599"
            );
        }
        self.app.control.fail_next(operation, failure, times);
    }

    /// How many requests of `operation` the fake has received, whatever it
    /// answered (injected failures, 429s, 401s and dropped connections
    /// included).
    pub fn requests_seen(&self, operation: Operation) -> usize {
        self.app.control.seen(operation)
    }

    /// Changes the delay added before every response.
    pub fn set_latency(&self, latency: Duration) {
        self.app.control.set_latency(latency);
    }

    /// Changes the lifetime of tokens issued from now on (whole seconds).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.app.control.set_token_lifetime(lifetime);
    }

    /// Stops accepting connections, gives in-flight requests up to a second
    /// to finish, and waits for the server to stop.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
