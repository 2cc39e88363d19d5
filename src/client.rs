//! The client and its builder.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::auth::source::{ClientCredentialsSource, DynTokenSource};
use crate::auth::{AccessToken, ClientCredentials, TokenCache, TokenSource};
use crate::error::{Error, IntoErrorBody, Result};
use crate::raw;
use crate::retry::{RetryBudget, RetryPolicy};
use crate::scope::{Scope, ScopeSet};
use crate::seam;
use crate::seam::{Seam, SeamState};
use crate::{Agents, Audit, Credentials, Tokens};
use std::future::Future;

/// The path every AgentIdP endpoint lives under.
pub const API_PREFIX: &str = "/api/v1";

/// Default refresh buffer: a token is refreshed this long before it expires.
pub const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of one HTTP attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout of a whole call, retries and backoff included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(90);
/// Default limit on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// An AgentIdP client.
///
/// Cheap to clone (one `Arc` inside); clones share the connection pool and the
/// token cache. Build one with [`Client::builder`] or [`Client::from_env`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    raw: raw::Client,
    tokens: Option<Arc<TokenCache>>,
    requested: Option<ScopeSet>,
    http: reqwest::Client,
    api_url: String,
    settings: Settings,
}

/// What a client and the clients narrowed from it share.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub attempt_timeout: Duration,
    pub total_timeout: Duration,
    pub refresh_buffer: Duration,
    pub retry: RetryPolicy,
    pub budget: Option<Arc<RetryBudget>>,
    pub max_body: u64,
    pub in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl Settings {
    pub(crate) fn seam(
        &self,
        tokens: Option<Arc<TokenCache>>,
        requested: Option<ScopeSet>,
    ) -> Seam {
        Seam::new(SeamState {
            tokens,
            requested,
            attempt_timeout: Some(self.attempt_timeout),
            retry: self.retry.clone(),
            budget: self.budget.clone(),
            max_body: self.max_body,
            in_flight: self.in_flight.clone(),
        })
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.inner.api_url)
            .field("scopes", &self.inner.requested)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder; `base_url` plus either client credentials or a token source
    /// are required.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `AGENTIDP_BASE_URL`, `AGENTIDP_CLIENT_ID`,
    /// `AGENTIDP_CLIENT_SECRET` and, optionally, `AGENTIDP_SCOPES`
    /// (space-separated; default: the four documented scopes).
    pub fn from_env() -> Result<Client> {
        ClientBuilder::<Async>::from_env()?.build()
    }

    /// Agent registry calls.
    pub fn agents(&self) -> Agents {
        Agents::new(self.clone())
    }

    /// Credential calls.
    pub fn credentials(&self) -> Credentials {
        Credentials::new(self.clone())
    }

    /// Token introspection and revocation.
    pub fn tokens(&self) -> Tokens {
        Tokens::new(self.clone())
    }

    /// Audit-log queries.
    pub fn audit(&self) -> Audit {
        Audit::new(self.clone())
    }

    /// The full API base URL, e.g. `http://localhost:3000/api/v1`.
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// The current access token, fetching one if needed.
    pub async fn access_token(&self) -> Result<SecretString> {
        Ok(self.token().await?.secret().clone())
    }

    /// The scopes the server granted the current token (fetching one if
    /// needed), or `None` when the token source does not say.
    pub async fn granted_scopes(&self) -> Result<Option<ScopeSet>> {
        Ok(self.token().await?.scopes().cloned())
    }

    /// Forgets the cached token, e.g. after rotating this client's own
    /// credential; the next call fetches a new one.
    pub fn clear_token_cache(&self) {
        if let Some(tokens) = &self.inner.tokens {
            tokens.clear();
        }
    }

    /// Uses `secret` for every later token request of this client, its clones
    /// and the clients narrowed from it, and forgets the cached token, e.g.
    /// after rotating this client's own credential.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) if the
    /// client does not use client credentials.
    pub fn set_client_secret(&self, secret: impl Into<SecretString>) -> Result<()> {
        let tokens = self.inner.tokens.as_ref();
        let credentials = tokens
            .and_then(|t| t.client_credentials())
            .ok_or_else(|| Error::config("only a client-credentials client has a client secret"))?;
        credentials.set_secret(secret.into());
        self.clear_token_cache();
        Ok(())
    }

    /// A client limited to `scopes`: it requests a token of its own with only
    /// these scopes and shares this client's connection pool.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) if this
    /// client does not use client credentials, and with
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) if a scope
    /// is not one this client holds.
    pub fn with_scopes(&self, scopes: impl IntoIterator<Item = Scope>) -> Result<Client> {
        let scopes: ScopeSet = scopes.into_iter().collect();
        let credentials = self
            .inner
            .tokens
            .as_ref()
            .and_then(|t| t.client_credentials())
            .ok_or_else(|| Error::config("only a client-credentials client can be narrowed"))?;
        let mut held = credentials.scopes.clone();
        if let Some(granted) = self
            .inner
            .tokens
            .as_ref()
            .and_then(|t| t.peek())
            .and_then(|t| t.scopes().cloned())
        {
            held = held
                .iter()
                .filter(|s| granted.contains(s))
                .cloned()
                .collect();
        }
        let extra = held.missing_from(&scopes);
        if !extra.is_empty() {
            return Err(Error::invalid_input(format!(
                "cannot narrow to scopes this client does not hold: {extra}"
            )));
        }
        let narrowed = ClientCredentials {
            scopes: scopes.clone(),
            ..credentials.clone()
        };
        Ok(Client::assemble(
            self.inner.http.clone(),
            self.inner.api_url.clone(),
            Box::new(ClientCredentialsSource(narrowed)),
            Some(scopes),
            self.inner.settings.clone(),
        ))
    }

    pub(crate) fn raw(&self) -> &raw::Client {
        &self.inner.raw
    }

    /// Runs one generated call through the seam, within the total timeout.
    pub(crate) fn call<T, E: IntoErrorBody>(
        &self,
        fut: impl Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
    ) -> impl Future<Output = Result<T>> {
        seam::call(fut, Some(self.inner.settings.total_timeout))
    }

    /// [`Client::call`] for operations that answer with no body.
    pub(crate) fn call_unit<E: IntoErrorBody>(
        &self,
        fut: impl Future<Output = std::result::Result<raw::ResponseValue<()>, raw::Error<E>>>,
    ) -> impl Future<Output = Result<()>> {
        seam::call_unit(fut, Some(self.inner.settings.total_timeout))
    }

    async fn token(&self) -> Result<Arc<AccessToken>> {
        match &self.inner.tokens {
            Some(tokens) => tokens.token().await,
            None => Err(Error::config("this client has no token source")),
        }
    }

    fn assemble(
        http: reqwest::Client,
        api_url: String,
        source: Box<dyn DynTokenSource>,
        requested: Option<ScopeSet>,
        settings: Settings,
    ) -> Client {
        let tokens = TokenCache::new(source, settings.refresh_buffer);
        let seam = settings.seam(Some(Arc::clone(&tokens)), requested.clone());
        Client {
            inner: Arc::new(Inner {
                raw: raw::Client::new_with_client(&api_url, http.clone(), seam),
                tokens: Some(tokens),
                requested,
                http,
                api_url,
                settings,
            }),
        }
    }
}

/// Builds a [`Client`].
///
/// ```
/// use sentryagent_idp::{Client, Scope};
///
/// let client = Client::builder()
///     .base_url("http://localhost:3000")
///     .client_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
///     .client_secret("sk_live_...")
///     .scopes([Scope::AGENTS_READ, Scope::AUDIT_READ])
///     .build()?;
/// assert_eq!(client.api_url(), "http://localhost:3000/api/v1");
/// # Ok::<(), sentryagent_idp::Error>(())
/// ```
///
/// The same builder configures the blocking client: `blocking::Client::builder()`
/// returns a `ClientBuilder<Blocking>` whose `build()` gives a `blocking::Client`.
#[must_use]
pub struct ClientBuilder<Flavor = Async> {
    flavor: PhantomData<Flavor>,
    base_url: Option<String>,
    api_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    scopes: Option<ScopeSet>,
    source: Option<Box<dyn DynTokenSource>>,
    connect_timeout: Option<Duration>,
    timeout: Option<Duration>,
    refresh_buffer: Option<Duration>,
    http: Option<reqwest::Client>,
    user_agent: Option<String>,
    total_timeout: Option<Duration>,
    retry: Option<RetryPolicy>,
    max_body: Option<u64>,
    max_in_flight: Option<usize>,
    allow_insecure_http: bool,
}

/// Marks a [`ClientBuilder`] that builds the async [`Client`].
#[derive(Debug)]
pub enum Async {}

impl<F> fmt::Debug for ClientBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_url", &self.api_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Reads one configuration variable.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl<F> ClientBuilder<F> {
    pub(crate) fn new() -> Self {
        ClientBuilder {
            flavor: PhantomData,
            base_url: None,
            api_url: None,
            client_id: None,
            client_secret: None,
            scopes: None,
            source: None,
            connect_timeout: None,
            timeout: None,
            refresh_buffer: None,
            http: None,
            user_agent: None,
            total_timeout: None,
            retry: None,
            max_body: None,
            max_in_flight: None,
            allow_insecure_http: false,
        }
    }

    /// A builder preset from the `AGENTIDP_*` environment variables (see
    /// [`Client::from_env`]); further settings can be chained.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: Lookup<'_>) -> Result<Self> {
        let need = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::config(format!("environment variable {name} is not set")))
        };
        let mut builder = Self::new()
            .base_url(need("AGENTIDP_BASE_URL")?)
            .client_id(need("AGENTIDP_CLIENT_ID")?)
            .client_secret(need("AGENTIDP_CLIENT_SECRET")?);
        if let Some(scopes) = lookup("AGENTIDP_SCOPES").filter(|v| !v.trim().is_empty()) {
            builder = builder.scopes(ScopeSet::parse(&scopes));
        }
        Ok(builder)
    }

    /// The server origin, e.g. `http://localhost:3000`; the SDK appends `/api/v1`.
    pub fn base_url(mut self, origin: impl Into<String>) -> Self {
        self.base_url = Some(origin.into());
        self
    }

    /// The full API base URL, used as is (e.g. `https://idp.example.com/v1`);
    /// overrides [`base_url`](Self::base_url).
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// The agent's client id (its `agentId`).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// The client secret; kept as a [`SecretString`] and never printed.
    pub fn client_secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.client_secret = Some(secret.into());
        self
    }

    /// The scopes to request (default: the four documented scopes).
    pub fn scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.scopes = Some(scopes.into_iter().collect());
        self
    }

    /// Uses `source` for tokens instead of client credentials, e.g. a
    /// [`StaticToken`](crate::auth::StaticToken).
    pub fn token_source(mut self, source: impl TokenSource) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Connect timeout (default 10 s). Applies to the SDK's own HTTP client only.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Timeout of one HTTP attempt, from sending to the end of the body
    /// (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Timeout of a whole call: every attempt, backoff and token fetch
    /// (default 90 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// How failed attempts are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The largest response body the client reads (default 8 MiB); a larger
    /// one fails with [`ErrorKind::ResponseTooLarge`](crate::ErrorKind::ResponseTooLarge).
    pub fn max_response_bytes(mut self, limit: u64) -> Self {
        self.max_body = Some(limit);
        self
    }

    /// At most `n` requests on the wire at once for this client and its
    /// clones (default: no limit); further calls wait for a slot. Each HTTP/1.1
    /// request in flight holds a connection and its buffers, so a limit bounds
    /// memory and sockets when callers start thousands of calls at once.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// Allows a plain `http://` URL to a host other than loopback. Off by
    /// default: credentials and tokens would cross the network in clear text.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long before expiry a token is refreshed in the background (default 60 s).
    pub fn refresh_buffer(mut self, buffer: Duration) -> Self {
        self.refresh_buffer = Some(buffer);
        self
    }

    /// Uses your own `reqwest::Client` (reqwest 0.13), e.g. for proxies or
    /// custom TLS roots. Connect timeout and user agent are then yours to set.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The `User-Agent` (default `sentryagent-idp-rust/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Validates the settings and builds the async client.
    pub(crate) fn build_async(self) -> Result<Client> {
        let api_url = self.resolve_api_url()?;
        if self.http.is_some() && (self.connect_timeout.is_some() || self.user_agent.is_some()) {
            return Err(Error::config(
                "connect_timeout and user_agent belong on your own reqwest::Client when you pass one",
            ));
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                .user_agent(self.user_agent.unwrap_or_else(|| {
                    format!("sentryagent-idp-rust/{}", env!("CARGO_PKG_VERSION"))
                }))
                // Never follow redirects with credentials in the body or headers.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))?,
        };
        let retry = self.retry.unwrap_or_default();
        let settings = Settings {
            attempt_timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            total_timeout: self.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT),
            refresh_buffer: self.refresh_buffer.unwrap_or(DEFAULT_REFRESH_BUFFER),
            budget: retry
                .budget
                .map(|capacity| Arc::new(RetryBudget::new(capacity))),
            retry,
            max_body: self.max_body.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            in_flight: self.max_in_flight.map(|n| {
                Arc::new(tokio::sync::Semaphore::new(
                    n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
                ))
            }),
        };
        if settings.attempt_timeout.is_zero() || settings.total_timeout.is_zero() {
            return Err(Error::config("timeout must be more than zero"));
        }
        let (source, requested): (Box<dyn DynTokenSource>, _) = match self.source {
            Some(source) => {
                if self.client_id.is_some() || self.client_secret.is_some() || self.scopes.is_some()
                {
                    return Err(Error::config(
                        "set either a token source or client credentials and scopes, not both",
                    ));
                }
                (source, None)
            }
            None => {
                let client_id = self
                    .client_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| Error::config("client_id is required (or a token source)"))?;
                let client_secret = self
                    .client_secret
                    .filter(|s| !secrecy::ExposeSecret::expose_secret(s).is_empty())
                    .ok_or_else(|| {
                        Error::config("client_secret is required (or a token source)")
                    })?;
                let scopes = self.scopes.unwrap_or_else(ScopeSet::documented);
                if scopes.is_empty() {
                    return Err(Error::config("scopes must not be empty"));
                }
                let credentials = ClientCredentials {
                    raw: raw::Client::new_with_client(
                        &api_url,
                        http.clone(),
                        settings.seam(None, None),
                    ),
                    client_id,
                    client_secret: Arc::new(std::sync::RwLock::new(client_secret)),
                    scopes: scopes.clone(),
                    total_timeout: settings.total_timeout,
                };
                (Box::new(ClientCredentialsSource(credentials)), Some(scopes))
            }
        };
        Ok(Client::assemble(http, api_url, source, requested, settings))
    }

    fn resolve_api_url(&self) -> Result<String> {
        let (raw_url, append) = match (&self.api_url, &self.base_url) {
            (Some(url), _) => (url, false),
            (None, Some(url)) => (url, true),
            (None, None) => return Err(Error::config("base_url is required")),
        };
        let url = reqwest::Url::parse(raw_url.trim())
            .map_err(|e| Error::config(format!("`{raw_url}` is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::config(format!(
                "`{raw_url}` must be an http(s) URL with a host"
            )));
        }
        if url.scheme() == "http" && !self.allow_insecure_http && !is_loopback(&url) {
            return Err(Error::config(format!(
                "`{raw_url}` is plain http to a host that is not loopback; use https, or allow_insecure_http(true)"
            )));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(Error::config(format!(
                "`{raw_url}` must not carry a query, fragment or user info"
            )));
        }
        let base = url.as_str().trim_end_matches('/');
        Ok(if append {
            format!("{base}{API_PREFIX}")
        } else {
            base.to_owned()
        })
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl ClientBuilder<Async> {
    /// Validates the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        self.build_async()
    }
}

/// A raw client with a fixed bearer token, for the contract tests.
#[cfg(feature = "_contract")]
pub(crate) fn raw_with_static_token(base_url: &str, token: &str) -> raw::Client {
    let tokens = TokenCache::new(
        Box::new(crate::auth::StaticToken::new(token.to_owned())),
        DEFAULT_REFRESH_BUFFER,
    );
    let seam = Seam::new(SeamState {
        tokens: Some(tokens),
        requested: None,
        attempt_timeout: None,
        retry: RetryPolicy::disabled(),
        budget: None,
        max_body: DEFAULT_MAX_RESPONSE_BYTES,
        in_flight: None,
    });
    raw::Client::new_with_client(base_url, reqwest::Client::new(), seam)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let err = ClientBuilder::<Async>::from_lookup(&lookup(&[(
            "AGENTIDP_BASE_URL",
            "http://localhost:3000",
        )]))
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Config);
        assert!(err.message().contains("AGENTIDP_CLIENT_ID"), "{err}");
    }

    #[test]
    fn from_env_reads_scopes() {
        let client = ClientBuilder::<Async>::from_lookup(&lookup(&[
            ("AGENTIDP_BASE_URL", "http://localhost:3000/"),
            ("AGENTIDP_CLIENT_ID", "id"),
            ("AGENTIDP_CLIENT_SECRET", "sk_live_x"),
            ("AGENTIDP_SCOPES", "agents:read  audit:read"),
        ]))
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(client.api_url(), "http://localhost:3000/api/v1");
        assert_eq!(
            client.inner.requested,
            Some(ScopeSet::from([Scope::AGENTS_READ, Scope::AUDIT_READ]))
        );
    }

    #[test]
    fn build_refuses_bad_settings() {
        let base = || Client::builder().client_id("id").client_secret("s");
        for (builder, needle) in [
            (base(), "base_url is required"),
            (base().base_url("not a url"), "not a valid URL"),
            (base().base_url("http://idp.example.com"), "not loopback"),
            (base().base_url("ftp://x"), "http(s)"),
            (base().base_url("http://localhost?y=1"), "query"),
            (
                Client::builder()
                    .base_url("http://127.0.0.1:9")
                    .client_secret("s"),
                "client_id",
            ),
            (
                Client::builder()
                    .base_url("http://127.0.0.1:9")
                    .client_id(" ")
                    .client_secret("s"),
                "client_id",
            ),
            (
                Client::builder()
                    .base_url("http://127.0.0.1:9")
                    .client_id("id")
                    .client_secret(""),
                "client_secret",
            ),
            (
                base().base_url("http://127.0.0.1:9").scopes([]),
                "scopes must not be empty",
            ),
            (
                base()
                    .base_url("http://127.0.0.1:9")
                    .timeout(Duration::ZERO),
                "timeout",
            ),
            (
                base()
                    .base_url("http://127.0.0.1:9")
                    .token_source(crate::auth::StaticToken::new("t")),
                "not both",
            ),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::Config);
            assert!(err.message().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn api_url_overrides_the_origin() {
        let client = Client::builder()
            .base_url("http://ignored")
            .api_url("https://api.sentryagent.ai/v1/")
            .client_id("id")
            .client_secret("s")
            .build()
            .unwrap();
        assert_eq!(client.api_url(), "https://api.sentryagent.ai/v1");
    }

    #[test]
    fn client_is_cheap_to_clone_send_and_sync() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Client>();
        assert_eq!(std::mem::size_of::<Client>(), std::mem::size_of::<usize>());
    }
}
