//! [`ClientBuilder`]: every setting of a client, checked once when it is
//! built, and the assembly of the client's layers (transport, seam, token
//! cache) with the add-ons plugged in.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::auth::grant::ClientCredentials;
use crate::auth::shared::SharedTokens;
use crate::auth::{
    CacheSettings, DEFAULT_REFRESH_BUFFER, DynTokenSource, SecretSource, Source, TokenCache,
    TokenSource,
};
use crate::client::{Client, Parts};
use crate::error::{Error, Result};
use crate::flavor::{Async, Flavor};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::scope::{Scope, ScopeSet};
use crate::seam::transport::{self, Transport};
use crate::seam::{
    Admission, Config, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, Seam,
};

/// The path every AgentIdP endpoint lives under.
pub const API_PREFIX: &str = "/api/v1";

/// Builds a [`Client`] (or, with [`blocking`](Self::blocking), a blocking
/// one).
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
#[must_use]
pub struct ClientBuilder<F: Flavor = Async> {
    flavor: PhantomData<F>,
    settings: Settings,
}

/// Every setting, as given (`None`: the default).
#[derive(Default)]
struct Settings {
    base_url: Option<String>,
    api_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretSource>,
    scopes: Option<ScopeSet>,
    source: Option<Box<dyn DynTokenSource>>,
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    https_proxy: Option<String>,
    timeout: Option<Duration>,
    total_timeout: Option<Duration>,
    token_timeout: Option<Duration>,
    refresh_buffer: Option<Duration>,
    http: Option<reqwest::ClientBuilder>,
    user_agent: Option<String>,
    retry: Option<RetryPolicy>,
    max_body: Option<u64>,
    max_in_flight: Option<usize>,
    allow_insecure_http: bool,
    add_ons: Vec<AddOn>,
}

/// An add-on (the token store, the fleet limiter), plugged in when the
/// client is assembled.
type AddOn = Box<dyn FnOnce(&mut Assembly<'_>) -> Result<()> + Send + Sync>;

/// What an add-on is told of the client being assembled, and the hooks it
/// may fill.
#[allow(dead_code, reason = "read by the add-ons (features store, redis)")]
pub(crate) struct Assembly<'a> {
    pub client_id: Option<&'a str>,
    pub api_url: &'a str,
    pub refresh_buffer: Duration,
    /// The level beneath the token cache (the token store).
    pub shared: Option<Arc<dyn SharedTokens>>,
    /// Asked before each attempt (the fleet's rate limit).
    pub admission: Option<Arc<dyn Admission>>,
}

impl<F: Flavor> fmt::Debug for ClientBuilder<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("ClientBuilder")
            .field("base_url", &s.base_url.as_deref().map(printable_url))
            .field("api_url", &s.api_url.as_deref().map(printable_url))
            .field("client_id", &s.client_id)
            .field(
                "client_secret",
                &s.client_secret.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("scopes", &s.scopes)
            .field("add_ons", &s.add_ons.len())
            .finish_non_exhaustive()
    }
}

/// Reads one configuration variable.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl ClientBuilder<Async> {
    /// A builder preset from the `AGENTIDP_*` environment variables (see
    /// [`Client::from_env`]); further settings can be chained, and
    /// [`blocking`](Self::blocking) makes it a blocking client's builder.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use sentryagent_idp::ClientBuilder;
    ///
    /// let client = ClientBuilder::from_env()?.timeout(Duration::from_secs(5)).build()?;
    /// # let _ = client;
    /// # Ok::<(), sentryagent_idp::Error>(())
    /// ```
    pub fn from_env() -> Result<Self> {
        Self::new().env(&|name| std::env::var(name).ok())
    }

    /// Validates the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        Ok(Client::from_parts(self.build_parts()?, ()))
    }

    /// The same settings, for the blocking client.
    #[cfg(feature = "blocking")]
    pub fn blocking(self) -> ClientBuilder<crate::blocking::Blocking> {
        self.flavored()
    }
}

impl<F: Flavor> ClientBuilder<F> {
    pub(crate) fn new() -> Self {
        ClientBuilder {
            flavor: PhantomData,
            settings: Settings::default(),
        }
    }

    /// The same settings under another flavor.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn flavored<G: Flavor>(self) -> ClientBuilder<G> {
        ClientBuilder {
            flavor: PhantomData,
            settings: self.settings,
        }
    }

    /// Plugs in an add-on, run when the client is assembled.
    #[allow(dead_code, reason = "called by the add-ons (features store, redis)")]
    pub(crate) fn add_on(
        mut self,
        add_on: impl FnOnce(&mut Assembly<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.settings.add_ons.push(Box::new(add_on));
        self
    }

    /// Changes one setting.
    fn set(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    pub(crate) fn env(self, lookup: Lookup<'_>) -> Result<Self> {
        let need = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| Error::config(format!("environment variable {name} is not set")))
        };
        let mut builder = self
            .base_url(need("AGENTIDP_BASE_URL")?)
            .client_id(need("AGENTIDP_CLIENT_ID")?)
            .client_secret(need("AGENTIDP_CLIENT_SECRET")?);
        if let Some(scopes) = lookup("AGENTIDP_SCOPES").filter(|v| !v.trim().is_empty()) {
            let scopes = ScopeSet::parse_strict(&scopes)
                .map_err(|e| Error::config(format!("AGENTIDP_SCOPES: {e}")))?;
            builder = builder.scopes(scopes);
        }
        Ok(builder)
    }

    /// The server origin, e.g. `http://localhost:3000`; the SDK appends `/api/v1`.
    /// A URL that already ends in `/api/v1` (the API reference's "local
    /// server base", `http://localhost:3000/api/v1`) is taken as its origin:
    /// the suffix is dropped, with a `tracing` note, rather than doubled.
    pub fn base_url(self, origin: impl Into<String>) -> Self {
        self.set(|s| s.base_url = Some(origin.into()))
    }

    /// The full API base URL, used as is (e.g. `https://idp.example.com/v1`);
    /// overrides [`base_url`](Self::base_url).
    pub fn api_url(self, url: impl Into<String>) -> Self {
        self.set(|s| s.api_url = Some(url.into()))
    }

    /// The agent's client id (its `agentId`).
    pub fn client_id(self, id: impl Into<String>) -> Self {
        self.set(|s| s.client_id = Some(id.into()))
    }

    /// The client secret; kept as a [`SecretString`] and never printed.
    pub fn client_secret(self, secret: impl Into<SecretString>) -> Self {
        self.set(|s| s.client_secret = Some(SecretSource::fixed(secret)))
    }

    /// Reads the client secret from `source` (an environment variable, a
    /// file, a function), and again when AgentIdP answers `invalid_client`
    /// or the file changes: a rotated secret is picked up without a
    /// restart. Replaces [`client_secret`](Self::client_secret).
    pub fn client_secret_source(self, source: SecretSource) -> Self {
        self.set(|s| s.client_secret = Some(source))
    }

    /// The scopes to request (default: the four documented scopes).
    pub fn scopes(self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.set(|s| s.scopes = Some(scopes.into_iter().collect()))
    }

    /// Uses `source` for tokens instead of client credentials, e.g. a
    /// [`StaticToken`](crate::auth::StaticToken).
    pub fn token_source(self, source: impl TokenSource) -> Self {
        self.set(|s| s.source = Some(Box::new(source)))
    }

    /// Connect timeout (default 10 s). Applies to the SDK's own HTTP client only.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.connect_timeout = Some(timeout))
    }

    /// How long an idle pooled connection is kept (default 4 s, below the
    /// server's 5 s keep-alive). Applies to the SDK's own HTTP client only.
    pub fn pool_idle_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.pool_idle_timeout = Some(timeout))
    }

    /// Sends `https://` requests through this proxy (e.g.
    /// `http://proxy.corp:3128`). The SDK's own HTTP client ignores the
    /// `HTTP_PROXY`/`HTTPS_PROXY` environment variables: a proxy taken from
    /// the environment would see a plain-`http` token request, client secret
    /// and all. Plain-`http` requests never go through a proxy.
    pub fn https_proxy(self, proxy_url: impl Into<String>) -> Self {
        self.set(|s| s.https_proxy = Some(proxy_url.into()))
    }

    /// Timeout of one HTTP attempt, from sending to the end of the body
    /// (default 30 s).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.timeout = Some(timeout))
    }

    /// Timeout of a whole call: every attempt, backoff and token fetch
    /// (default 90 s).
    pub fn total_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.total_timeout = Some(timeout))
    }

    /// Timeout of one token fetch, whatever the source (default: the total
    /// timeout). A fetch that takes longer fails, and the next call starts a
    /// new one.
    pub fn token_timeout(self, timeout: Duration) -> Self {
        self.set(|s| s.token_timeout = Some(timeout))
    }

    /// How failed attempts are retried (default [`RetryPolicy::default`]).
    pub fn retry_policy(self, policy: RetryPolicy) -> Self {
        self.set(|s| s.retry = Some(policy))
    }

    /// The largest response body the client reads (default 8 MiB); a larger
    /// one fails with [`ErrorKind::ResponseTooLarge`](crate::ErrorKind::ResponseTooLarge).
    pub fn max_response_bytes(self, limit: u64) -> Self {
        self.set(|s| s.max_body = Some(limit))
    }

    /// At most `n` API requests on the wire at once for this client and its
    /// clones (default: no limit); further attempts wait for a slot. A slot
    /// is held only while an attempt is on the wire, never during a token
    /// fetch or a backoff, and token requests do not need one.
    pub fn max_in_flight(self, n: usize) -> Self {
        self.set(|s| s.max_in_flight = Some(n))
    }

    /// Allows a plain `http://` URL to a host other than loopback. Off by
    /// default: credentials and tokens would cross the network in clear text.
    pub fn allow_insecure_http(self, allow: bool) -> Self {
        self.set(|s| s.allow_insecure_http = allow)
    }

    /// How long before expiry a token is refreshed in the background
    /// (default 60 s). The buffer used is at most half the token's lifetime,
    /// and the refresh happens at a random point of its earlier half, so a
    /// fleet of processes does not refresh in the same second.
    pub fn refresh_buffer(self, buffer: Duration) -> Self {
        self.set(|s| s.refresh_buffer = Some(buffer))
    }

    /// Builds the HTTP client from your own `reqwest::ClientBuilder`
    /// (reqwest 0.13), e.g. for custom TLS roots. Connect timeout, pool,
    /// proxy and user agent are then yours to set; the SDK sets two things on
    /// it: no redirects (`reqwest::redirect::Policy::none()`), replacing any
    /// redirect policy of yours, and a connector layer that gives each
    /// attempt's connection a deadline just inside the attempt's timeout (so
    /// a connection never made is told from a request sent and unanswered). Every request, token requests and API calls
    /// alike, goes through this client, so neither the client secret (a
    /// `307` would re-post the token request's form) nor a bearer token is
    /// ever sent to wherever a `3xx` points; a `3xx` answer is an error.
    ///
    /// It takes a builder, not a built `reqwest::Client`, because a built
    /// client's redirect policy can be neither read nor changed.
    ///
    /// ```no_run
    /// use sentryagent_idp::Client;
    ///
    /// let client = Client::builder()
    ///     .base_url("https://idp.example.com")
    ///     .client_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
    ///     .client_secret("sk_live_...")
    ///     // Your TLS roots, proxy, timeouts... on the builder.
    ///     .http_client(sentryagent_idp::reqwest::Client::builder())
    ///     .build()?;
    /// # let _ = client;
    /// # Ok::<(), sentryagent_idp::Error>(())
    /// ```
    pub fn http_client(self, builder: reqwest::ClientBuilder) -> Self {
        self.set(|s| s.http = Some(builder))
    }

    /// The `User-Agent` (default `sentryagent-idp-rust/<version>`).
    pub fn user_agent(self, user_agent: impl Into<String>) -> Self {
        self.set(|s| s.user_agent = Some(user_agent.into()))
    }

    /// Validates the settings and assembles the client: transport, seam,
    /// token cache, and the add-ons in between.
    pub(crate) fn build_parts(self) -> Result<Parts> {
        let s = self.settings;
        let api_url = resolve_api_url(
            s.api_url.as_deref(),
            s.base_url.as_deref(),
            s.allow_insecure_http,
        )?;
        let http = match s.http {
            Some(http) => {
                let own = [
                    ("connect_timeout", s.connect_timeout.is_some()),
                    ("pool_idle_timeout", s.pool_idle_timeout.is_some()),
                    ("https_proxy", s.https_proxy.is_some()),
                    ("user_agent", s.user_agent.is_some()),
                ];
                if let Some((name, _)) = own.iter().find(|(_, set)| *set) {
                    return Err(Error::config(format!(
                        "{name} belongs on your own reqwest::ClientBuilder when you pass one"
                    )));
                }
                transport::user_http_client(http)?
            }
            None => {
                let defaults = Transport::default();
                transport::http_client(&Transport {
                    connect_timeout: s.connect_timeout.unwrap_or(defaults.connect_timeout),
                    pool_idle_timeout: s.pool_idle_timeout.unwrap_or(defaults.pool_idle_timeout),
                    request_timeout: None,
                    user_agent: s.user_agent.unwrap_or(defaults.user_agent),
                    https_proxy: s.https_proxy,
                })?
            }
        };
        let total_timeout = s.total_timeout.unwrap_or(DEFAULT_TOTAL_TIMEOUT);
        let attempt_timeout = s.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let cache = CacheSettings {
            refresh_buffer: s.refresh_buffer.unwrap_or(DEFAULT_REFRESH_BUFFER),
            fetch_timeout: s.token_timeout.unwrap_or(total_timeout),
        };
        if [attempt_timeout, total_timeout, cache.fetch_timeout]
            .iter()
            .any(Duration::is_zero)
        {
            return Err(Error::config("timeouts must be more than zero"));
        }
        let mut assembly = Assembly {
            client_id: s.client_id.as_deref(),
            api_url: &api_url,
            refresh_buffer: cache.refresh_buffer,
            shared: None,
            admission: None,
        };
        for add_on in s.add_ons {
            add_on(&mut assembly)?;
        }
        let Assembly {
            shared, admission, ..
        } = assembly;
        let retry = s.retry.unwrap_or_default();
        let config = Arc::new(Config {
            attempt_timeout,
            total_timeout,
            budget: retry.budget.map(RetryBudget::new),
            retry,
            max_body: s.max_body.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            admission,
        });
        let in_flight = s.max_in_flight.map(|n| {
            Arc::new(tokio::sync::Semaphore::new(
                n.clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            ))
        });
        let seam = Seam::new(http, api_url, config, in_flight)?;
        let (source, requested) = match s.source {
            Some(source) => {
                if s.client_id.is_some() || s.client_secret.is_some() || s.scopes.is_some() {
                    return Err(Error::config(
                        "set either a token source or client credentials and scopes, not both",
                    ));
                }
                if shared.is_some() {
                    return Err(Error::config(
                        "a token store works with client credentials only, not a token source",
                    ));
                }
                (Source::Custom(source), None)
            }
            None => {
                let client_id = s
                    .client_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| Error::config("client_id is required (or a token source)"))?;
                let secret_source = s.client_secret.ok_or_else(|| {
                    Error::config("client_secret is required (or a token source)")
                })?;
                let client_secret = secret_source.read()?;
                let scopes = s.scopes.unwrap_or_else(ScopeSet::documented);
                if scopes.is_empty() {
                    return Err(Error::config("scopes must not be empty"));
                }
                let credentials = ClientCredentials::new(
                    Arc::new(seam.token_endpoint()),
                    client_id,
                    client_secret,
                    scopes.clone(),
                )
                .with_secret_source(secret_source)
                .with_shared(shared);
                (Source::Credentials(credentials), Some(scopes))
            }
        };
        let tokens = TokenCache::new(source, cache);
        Ok(Parts {
            seam: Arc::new(seam.authorized(tokens.clone(), requested)),
            tokens: Some(tokens),
        })
    }
}

/// The API root from the settings: `api_url` as is, or `base_url` plus
/// `/api/v1`. Refuses user info, queries and plain http off loopback; a
/// refused URL is never echoed with its user info.
pub(crate) fn resolve_api_url(
    api_url: Option<&str>,
    base_url: Option<&str>,
    allow_insecure_http: bool,
) -> Result<Arc<str>> {
    let (raw_url, append) = match (api_url, base_url) {
        (Some(url), _) => (url, false),
        (None, Some(url)) => (url, true),
        (None, None) => return Err(Error::config("base_url is required")),
    };
    let url = reqwest::Url::parse(raw_url.trim())
        .map_err(|e| Error::config(format!("the base URL is not a valid URL: {e}")))?;
    let shown = printable_url(raw_url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(format!(
            "`{shown}` carries user info (a name or password); give credentials with client_id and client_secret"
        )));
    }
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::config(format!(
            "`{shown}` must be an http(s) URL with a host"
        )));
    }
    if !transport::clear_text_allowed(&url, allow_insecure_http) {
        return Err(Error::config(format!(
            "`{shown}` {}",
            transport::CLEAR_TEXT_REFUSED
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(format!(
            "`{shown}` must not carry a query or fragment"
        )));
    }
    let base = url.as_str().trim_end_matches('/');
    if !append {
        return Ok(base.into());
    }
    // `/api/v1` appended to a URL that ends in it would never be right: the
    // API reference gives `http://localhost:3000/api/v1` as the server's base,
    // so people paste it. Case matters in a path: `/API/v1` is left alone.
    let origin = match base.strip_suffix(API_PREFIX) {
        Some(origin) => {
            tracing::info!(
                base_url = %shown,
                "the base URL already ends in {API_PREFIX}; using it as the API root rather than \
                 appending {API_PREFIX} again (give the server's origin to silence this note)"
            );
            origin
        }
        None => base,
    };
    Ok(format!("{origin}{API_PREFIX}").into())
}

/// A URL as it may be shown: scheme, host, port and path only; anything that
/// does not parse is not shown at all.
fn printable_url(raw: &str) -> String {
    match reqwest::Url::parse(raw.trim()) {
        Ok(url) => {
            let host = url.host_str().unwrap_or_default();
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", url.scheme(), url.path())
        }
        Err(_) => String::from("<not a URL>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let err = ClientBuilder::<Async>::new()
            .env(&lookup(&[("AGENTIDP_BASE_URL", "http://localhost:3000")]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("AGENTIDP_CLIENT_ID"), "{err}");
    }

    #[test]
    fn from_env_reads_scopes() {
        let client = ClientBuilder::<Async>::new()
            .env(&lookup(&[
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
            client.requested_scopes(),
            Some(&ScopeSet::from([Scope::AGENTS_READ, Scope::AUDIT_READ]))
        );
    }

    /// Review 21: `AGENTIDP_SCOPES` is a list a person typed, and the CLI
    /// refuses `agents:read audit` from the very same variable with "`audit`
    /// is not a scope"; `from_env` reads it with the lenient server-side
    /// parse, so the typo becomes a requested scope `audit` that fails only at
    /// the first call (`invalid_scope`), not when the client is built. The
    /// `ScopeSet::parse` docs themselves say a typed list wants `parse_strict`.
    #[test]
    fn from_env_refuses_a_typo_in_agentidp_scopes_as_the_cli_does() {
        let built = ClientBuilder::<Async>::new()
            .env(&lookup(&[
                ("AGENTIDP_BASE_URL", "http://localhost:3000/"),
                ("AGENTIDP_CLIENT_ID", "id"),
                ("AGENTIDP_CLIENT_SECRET", "sk_live_x"),
                ("AGENTIDP_SCOPES", "agents:read audit"),
            ]))
            .and_then(ClientBuilder::<Async>::build);
        match built {
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::Config);
                assert!(err.message().contains("audit"), "{err}");
            }
            Ok(client) => panic!(
                "AGENTIDP_SCOPES=`agents:read audit` was accepted: requests {:?}",
                client.requested_scopes()
            ),
        }
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
            (base().base_url("https://:pw@idp.example.com"), "user info"),
            (base().base_url("https://me@idp.example.com"), "user info"),
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
                "timeouts",
            ),
            (
                base()
                    .base_url("http://127.0.0.1:9")
                    .https_proxy("::not a proxy::"),
                "https_proxy",
            ),
            (
                base()
                    .base_url("http://127.0.0.1:9")
                    .token_source(crate::auth::StaticToken::new("t")),
                "not both",
            ),
            (
                base()
                    .base_url("http://127.0.0.1:9")
                    .http_client(reqwest::Client::builder())
                    .pool_idle_timeout(Duration::from_secs(1)),
                "pool_idle_timeout",
            ),
        ] {
            let err = builder.build().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.message().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn user_info_is_never_printed() {
        for url in [
            "https://:hunter2@idp.example.com",
            "http://me:hunter2@10.0.0.1/x",
        ] {
            let builder = Client::builder()
                .base_url(url)
                .client_id("id")
                .client_secret("s");
            assert!(!format!("{builder:?}").contains("hunter2"));
            let err = builder.build().unwrap_err();
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
    }

    /// Issue 26 item 10: the API reference's "local server base" pasted as
    /// the base URL became `…/api/v1/api/v1/token` (404, exit 4 in the CLI).
    #[test]
    fn a_base_url_ending_in_the_api_prefix_is_not_doubled() {
        for given in [
            "http://localhost:3000/api/v1",
            "http://localhost:3000/api/v1/",
            "http://localhost:3000",
        ] {
            let client = Client::builder()
                .base_url(given)
                .client_id("id")
                .client_secret("s")
                .build()
                .unwrap();
            assert_eq!(client.api_url(), "http://localhost:3000/api/v1", "{given}");
        }
        // A path prefix before it is kept; `api_url` is still used as given.
        let prefixed = resolve_api_url(None, Some("https://h.example/idp/api/v1"), false).unwrap();
        assert_eq!(&*prefixed, "https://h.example/idp/api/v1");
        let as_given = resolve_api_url(Some("https://h.example/api/v1"), None, false).unwrap();
        assert_eq!(&*as_given, "https://h.example/api/v1");
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
    fn the_default_pool_idle_timeout_is_below_nodes_keep_alive() {
        assert!(crate::seam::transport::DEFAULT_POOL_IDLE_TIMEOUT < Duration::from_secs(5));
    }
}
