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
use super::oidc::Oidc;
use super::routes;
use super::seed::{AgentSeed, AuditEventSeed};
use super::server::Server;
use super::tokens::TokenKeys;
use crate::client::API_PREFIX;
use crate::operation::Operation;

/// The default lifetime of issued tokens, as on the real server: 3600 s.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The default `max-age` of the discovery and JWKS answers: 300 s.
const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);

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
/// use sentryagent_idp::ExposeSecret;
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
    oidc: bool,
    jwks_max_age: Duration,
}

impl Default for FakeAgentIdpBuilder {
    fn default() -> Self {
        FakeAgentIdpBuilder {
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            latency: Duration::ZERO,
            rate_limit: None,
            port: 0,
            oidc: false,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
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

    /// Whether the fake also acts as an OIDC provider, as later AgentIdP
    /// releases do (default `false`: the Phase-1 server the API reference
    /// documents). When `true`:
    ///
    /// - `GET /.well-known/openid-configuration` and
    ///   `GET /.well-known/jwks.json` are served at the server root (outside
    ///   `/api/v1`), with `Cache-Control: public, max-age=<n>`
    ///   ([`jwks_max_age`](Self::jwks_max_age)); the discovery's `issuer` is
    ///   [`FakeAgentIdp::base_url`];
    /// - the key set lists the live signing keys as RFC 7517 RSA keys (`kty`,
    ///   `use` `sig`, `alg` `RS256`, `kid`, `n`, `e`), the current one first;
    /// - token headers carry the signing key's `kid`.
    ///
    /// Tokens' claims are the same either way (no `iss`, no `aud`).
    ///
    /// ```
    /// use sentryagent_idp::testing::FakeAgentIdp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fake = FakeAgentIdp::builder().oidc(true).start().await?;
    /// let url = format!("{}/.well-known/openid-configuration", fake.base_url());
    /// let discovery: serde_json::Value = reqwest::get(url).await?.json().await?;
    /// let jwks: serde_json::Value = reqwest::get(discovery["jwks_uri"].as_str().unwrap())
    ///     .await?
    ///     .json()
    ///     .await?;
    /// assert_eq!(jwks["keys"][0]["alg"], "RS256");
    /// assert_eq!(fake.jwks_requests_seen(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn oidc(mut self, enabled: bool) -> Self {
        self.oidc = enabled;
        self
    }

    /// The `max-age` the discovery and JWKS answers carry in
    /// `Cache-Control: public, max-age=<n>`, in whole seconds (default 300 s).
    /// Only with [`oidc`](Self::oidc).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// Binds `127.0.0.1` on the [`port`](Self::port) (by default one the OS
    /// picks) and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or the embedded test key cannot be read.
    pub async fn start(self) -> io::Result<FakeAgentIdp> {
        let keys = Arc::new(TokenKeys::new(self.oidc).map_err(io::Error::other)?);
        let control = Control::new(self.latency, self.token_lifetime, self.rate_limit);
        let oidc = self.oidc.then(|| Arc::new(Oidc::new(self.jwks_max_age)));
        let app = Arc::new(App::new(control, Arc::clone(&keys), oidc.clone()));
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
        let routes = routes::router(Arc::clone(&app));
        let make = move |addr: SocketAddr| match oidc {
            Some(oidc) => routes.merge(super::oidc::router(keys, oidc, &format!("http://{addr}"))),
            None => routes,
        };
        let server = Server::spawn(make, self.port).await?;
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
    /// included). Each request is counted once, when it arrives; so
    /// `requests_seen(Operation::IntrospectToken)` is the introspection
    /// counter a verifier's cache is tested against.
    pub fn requests_seen(&self, operation: Operation) -> usize {
        self.app.control.seen(operation)
    }

    /// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`) of the key that signs
    /// tokens now: what an AgentIdP operator shares with services that verify
    /// tokens locally. It changes with
    /// [`rotate_signing_key`](Self::rotate_signing_key).
    pub fn public_key_pem(&self) -> String {
        self.app.keys.public_pem()
    }

    /// Replaces the signing key with a freshly generated 2048-bit RSA key
    /// with a new `kid` (`fake-key-2`, `fake-key-3`, …; the first key is
    /// `fake-key-1`). Tokens are signed with the new key from now on; the old
    /// key stays in the JWKS, and tokens it signed still pass the fake's own
    /// checks (introspection, the API's bearer authentication), for `grace`;
    /// then it is dropped. Zero drops it at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sentryagent_idp::testing::FakeAgentIdp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let fake = FakeAgentIdp::builder().oidc(true).start().await?;
    /// let before = fake.public_key_pem();
    /// fake.rotate_signing_key(Duration::from_secs(60));
    /// assert_ne!(fake.public_key_pem(), before);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Generating the key takes tens of milliseconds (aws-lc, in C, also in
    /// debug builds) and blocks the calling thread meanwhile.
    ///
    /// # Panics
    ///
    /// If the RSA key cannot be generated (the crypto library failed).
    pub fn rotate_signing_key(&self, grace: Duration) {
        if let Err(e) = self.app.keys.rotate(grace) {
            panic!("the fake could not generate a signing key: {e}");
        }
    }

    /// Signs arbitrary `claims` with the current key and the fake's usual
    /// header (`alg` `RS256`, `typ` `JWT`, and `kid` with
    /// [`oidc`](FakeAgentIdpBuilder::oidc)): for tests of expired,
    /// not-yet-valid or otherwise odd tokens. The fake itself accepts only
    /// tokens whose claims have its own shape (`sub`, `client_id`, `scope`,
    /// `jti`, `iat`, `exp`).
    ///
    /// ```
    /// use sentryagent_idp::testing::FakeAgentIdp;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let fake = FakeAgentIdp::start().await?;
    /// let token = fake.sign_claims(serde_json::json!({ "sub": "nobody", "exp": 0 }));
    /// assert_eq!(token.split('.').count(), 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If signing fails, which the fake's valid RSA key never causes.
    pub fn sign_claims(&self, claims: serde_json::Value) -> String {
        match self.app.keys.sign(&claims) {
            Ok(token) => token,
            Err(e) => panic!("the fake could not sign the claims: {e}"),
        }
    }

    /// How many requests `GET /.well-known/openid-configuration` has
    /// received (0 without [`oidc`](FakeAgentIdpBuilder::oidc)).
    pub fn discovery_requests_seen(&self) -> usize {
        self.app
            .oidc
            .as_ref()
            .map_or(0, |oidc| oidc.discovery_seen())
    }

    /// How many requests `GET /.well-known/jwks.json` has received, failed
    /// ones included (0 without [`oidc`](FakeAgentIdpBuilder::oidc)).
    pub fn jwks_requests_seen(&self) -> usize {
        self.app.oidc.as_ref().map_or(0, |oidc| oidc.jwks_seen())
    }

    /// While `true`, `GET /.well-known/jwks.json` answers
    /// `503 SERVICE_UNAVAILABLE` (discovery keeps working), so a verifier's
    /// handling of a failed key-set refresh can be tested. No effect without
    /// [`oidc`](FakeAgentIdpBuilder::oidc).
    pub fn fail_jwks(&self, fail: bool) {
        if let Some(oidc) = &self.app.oidc {
            oidc.set_fail_jwks(fail);
        }
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
