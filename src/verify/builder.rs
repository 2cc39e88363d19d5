//! [`VerifierBuilder`]: the mode's source and the shared settings.

use std::time::Duration;

use jsonwebtoken::DecodingKey;
use url::Url;

use super::jwks::{Jwks, JwksTiming};
use super::settings::{
    DEFAULT_DEADLINE, DEFAULT_JWKS_COOLDOWN, MAX_JWKS_COOLDOWN, MIN_DEADLINE, Settings,
};
use super::status::StatusOptions;
use super::verifier::{Check, Keys, Verifier};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::seam::transport::{self, Transport};

/// How long a JWKS answer without `max-age` is fresh: 300 s.
const JWKS_DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default lower bound of a JWKS `max-age`: 60 s.
const JWKS_MIN_TTL: Duration = Duration::from_secs(60);
/// Default upper bound of a JWKS `max-age`: 24 h.
const JWKS_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Request timeout of the default JWKS HTTP client: 10 s.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);
/// Connect timeout of the default JWKS HTTP client: 5 s.
const JWKS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

enum Source {
    Introspection(Client),
    Pem(Box<DecodingKey>),
    Jwks {
        discovery: Url,
        http: Option<Box<reqwest::ClientBuilder>>,
    },
}

/// Options of a [`Verifier`]; from one of its constructors.
#[must_use]
pub struct VerifierBuilder {
    source: Source,
    first_sight: Option<Client>,
    settings: Settings,
    jwks: JwksTiming,
    allow_insecure_http: bool,
    /// The agent-status check's options (`status.rs` sets them).
    pub(super) status: StatusOptions,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.source {
            Source::Introspection(_) => "introspection",
            Source::Pem(_) => "public key",
            Source::Jwks { .. } => "jwks",
        };
        f.debug_struct("VerifierBuilder")
            .field("mode", &mode)
            .field("introspect_first_sight", &self.first_sight.is_some())
            .field("settings", &self.settings)
            .field("jwks", &self.jwks)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("status", &self.status)
            .finish()
    }
}

impl Verifier {
    /// Every token is introspected (RFC 7662) by `client`, which is the
    /// service's own AgentIdP client and needs `tokens:read`; verdicts are
    /// cached. Sees a revocation within
    /// [`max_age`](VerifierBuilder::max_age); a decommissioned agent only if
    /// AgentIdP's introspection answers its tokens `active: false`, which
    /// its API reference does not promise (for that, add
    /// [`check_agent_status`](VerifierBuilder::check_agent_status)).
    ///
    #[cfg_attr(feature = "testing", doc = "```")]
    #[cfg_attr(not(feature = "testing"), doc = "```ignore")]
    /// use sentryagent_idp::verify::{Verifier, VerifyError};
    /// use sentryagent_idp::{ExposeSecret, testing::FakeAgentIdp};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fake = FakeAgentIdp::start().await?;
    /// let verifier = Verifier::introspection(fake.client_builder().build()?).build()?;
    ///
    /// let token = fake.client_builder().build()?.access_token().await?;
    /// let agent = verifier.verify(token.expose_secret()).await?;
    /// assert_eq!(agent.agent_id, fake.bootstrap_agent_id());
    /// assert_eq!(verifier.verify("not-a-token").await, Err(VerifyError::InvalidToken));
    /// # Ok(())
    /// # }
    /// ```
    pub fn introspection(client: Client) -> VerifierBuilder {
        VerifierBuilder::new(Source::Introspection(client))
    }

    /// Tokens are checked locally against the AgentIdP server's RSA public
    /// key (`pem`: SPKI `BEGIN PUBLIC KEY` or PKCS#1 `BEGIN RSA PUBLIC KEY`),
    /// RS256 only. Nothing is asked of AgentIdP, so a revoked token is
    /// accepted until its `exp` unless
    /// [`introspect_first_sight`](VerifierBuilder::introspect_first_sight),
    /// and one of a decommissioned agent unless
    /// [`check_agent_status`](VerifierBuilder::check_agent_status).
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) when `pem`
    /// is not an RSA public key.
    ///
    #[cfg_attr(feature = "testing", doc = "```")]
    #[cfg_attr(not(feature = "testing"), doc = "```ignore")]
    /// use sentryagent_idp::verify::Verifier;
    /// use sentryagent_idp::{ExposeSecret, Scope, testing::FakeAgentIdp};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fake = FakeAgentIdp::start().await?;
    /// let verifier = Verifier::public_key_pem(fake.public_key_pem())?.build()?;
    ///
    /// let token = fake.client_builder().build()?.access_token().await?;
    /// let agent = verifier.verify(token.expose_secret()).await?;
    /// assert!(agent.has_all(&[Scope::AGENTS_READ]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn public_key_pem(pem: impl AsRef<[u8]>) -> Result<VerifierBuilder> {
        let key = DecodingKey::from_rsa_pem(pem.as_ref())
            .map_err(|_| Error::config("the public key is not an RSA public key in PEM"))?;
        Ok(VerifierBuilder::new(Source::Pem(Box::new(key))))
    }

    /// Tokens are checked locally against the key set the server publishes:
    /// `{server_root_url}/.well-known/openid-configuration` names its
    /// `jwks_uri` (https, or http when the root is http). The key set is
    /// cached per its `Cache-Control: max-age` (within
    /// [`jwks_cache_bounds`](VerifierBuilder::jwks_cache_bounds)); a token
    /// with an unknown `kid` refetches it, at most once per
    /// [`jwks_refetch_cooldown`](VerifierBuilder::jwks_refetch_cooldown); a
    /// failed refresh (no answer, an error, garbage, or a key set with no
    /// usable RSA key) keeps the key set held. A `kid` still unknown after a
    /// successful refresh is refused (401), unless the token's `iat` is
    /// later than that refresh's start (a key rotated in since, within the
    /// cooldown: 503 until a refetch may find it); one that could not be looked up
    /// because the key set could not be refreshed is answered 503 with
    /// `Retry-After` (the token may be fine). One fetch at a time: requests
    /// needing it share it (at most 1,024 wait; more get 503 at once). The
    /// discovery document is read again once its own `max-age` (clamped the
    /// same way) has passed, and after a failed fetch; when it cannot be
    /// read then (no answer within half the [`deadline`](VerifierBuilder::deadline),
    /// an error, a document without a usable `jwks_uri`), that fetch uses
    /// the `jwks_uri` known, and the next one tries discovery again: only a
    /// document naming another valid `jwks_uri` replaces it. A token without a `kid` is
    /// checked only against a key set of one key. Like
    /// [`public_key_pem`](Self::public_key_pem), it sees no revocation
    /// unless [`introspect_first_sight`](VerifierBuilder::introspect_first_sight).
    ///
    /// Only the origin of `server_root_url` counts (the well-known paths are
    /// at the server root, outside `/api/v1`). Fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a URL that is not
    /// `http(s)`; [`build`](VerifierBuilder::build) fails for plain `http`
    /// to a host other than loopback, and a discovery document naming such
    /// a `jwks_uri` is a failed fetch, unless
    /// [`allow_insecure_http`](VerifierBuilder::allow_insecure_http): the
    /// rule of [`ClientBuilder`](crate::ClientBuilder) and
    /// [`OutgoingAuth`](crate::present::OutgoingAuth) too.
    ///
    #[cfg_attr(feature = "testing", doc = "```")]
    #[cfg_attr(not(feature = "testing"), doc = "```ignore")]
    /// use sentryagent_idp::verify::Verifier;
    /// use sentryagent_idp::{ExposeSecret, testing::FakeAgentIdp};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let fake = FakeAgentIdp::builder().oidc(true).start().await?;
    /// let verifier = Verifier::jwks(&fake.base_url())?.build()?;
    ///
    /// let token = fake.client_builder().build()?.access_token().await?;
    /// let agent = verifier.verify(token.expose_secret()).await?;
    /// assert_eq!(agent.agent_id, fake.bootstrap_agent_id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn jwks(server_root_url: &str) -> Result<VerifierBuilder> {
        let root = Url::parse(server_root_url)
            .map_err(|e| Error::config(format!("the server root URL is invalid: {e}")))?;
        if !matches!(root.scheme(), "http" | "https") || root.host().is_none() {
            return Err(Error::config(
                "the server root URL must be http(s) with a host",
            ));
        }
        let discovery = root
            .join("/.well-known/openid-configuration")
            .map_err(|e| Error::config(format!("the server root URL is invalid: {e}")))?;
        Ok(VerifierBuilder::new(Source::Jwks {
            discovery,
            http: None,
        }))
    }
}

impl VerifierBuilder {
    fn new(source: Source) -> VerifierBuilder {
        VerifierBuilder {
            source,
            first_sight: None,
            settings: Settings::default(),
            jwks: JwksTiming {
                cooldown: DEFAULT_JWKS_COOLDOWN,
                min_ttl: JWKS_MIN_TTL,
                max_ttl: JWKS_MAX_TTL,
                default_ttl: JWKS_DEFAULT_TTL,
                deadline: DEFAULT_DEADLINE,
            },
            allow_insecure_http: false,
            status: StatusOptions::default(),
        }
    }

    /// JWKS mode: allows plain `http://` discovery and key-set URLs on hosts
    /// other than loopback (default: refused, since a key set read in clear
    /// text can be replaced on the way). The same opt-in, and the same check,
    /// as [`ClientBuilder::allow_insecure_http`](crate::ClientBuilder::allow_insecure_http)
    /// and [`OutgoingAuthBuilder::allow_insecure_http`](crate::present::OutgoingAuthBuilder::allow_insecure_http);
    /// the other modes reach AgentIdP through a [`Client`], which applies it
    /// when it is built.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// How long an active verdict from introspection is used before
    /// AgentIdP is asked again (default [`DEFAULT_MAX_AGE`](super::DEFAULT_MAX_AGE),
    /// 30 s): the bound within which a revocation is seen. Never past the
    /// token's `exp`. Zero keeps no verdict: every request asks AgentIdP
    /// (introspection, or at first sight) or checks the signature again.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.settings.max_age = max_age;
        self
    }

    /// How long an inactive verdict is kept (default
    /// [`DEFAULT_NEGATIVE_TTL`](super::DEFAULT_NEGATIVE_TTL), 5 s). Zero
    /// keeps none: a token refused is asked about again (within the
    /// [miss limit](Self::introspection_miss_limit)).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = ttl;
        self
    }

    /// The most verdicts kept (default [`DEFAULT_CAPACITY`](super::DEFAULT_CAPACITY)
    /// entries). Introspected verdicts: the least used go first. Verdicts of
    /// local checks (PEM, JWKS): the stale ones go first, then one as good as
    /// random of the 64 shards' share the new one falls in (so a capacity
    /// under 64 leaves some tokens uncached).
    pub fn capacity(mut self, entries: u64) -> Self {
        self.settings.capacity = entries;
        self
    }

    /// The clock skew allowed on `exp` and `nbf` in the local checks
    /// (default [`DEFAULT_LEEWAY`](super::DEFAULT_LEEWAY), 5 s; whole seconds;
    /// at most 24 h, a longer one, `Duration::MAX` included, is taken as 24 h).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.settings.leeway = leeway;
        self
    }

    /// Tokens must be from `issuer` (AgentIdP Phase-1 tokens have no `iss`:
    /// set this only for a server that sets it). The local checks require
    /// the token's `iss` to be `issuer`. In introspection mode the answer's
    /// `iss` must be `issuer`, and an answer without `iss` is refused (401):
    /// nothing else vouches for the issuer. With
    /// [`introspect_first_sight`](Self::introspect_first_sight), the signed
    /// token's `iss` was checked, so the answer's is checked only when present.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.settings.issuer = Some(issuer.into());
        self
    }

    /// Tokens must be meant for `audience` (Phase-1 tokens have no `aud`).
    /// The local checks require the token's `aud` to hold it. In
    /// introspection mode the answer's `aud` (one string or a list) must
    /// hold it, and an answer without `aud` is refused (401); with
    /// [`introspect_first_sight`](Self::introspect_first_sight), the
    /// answer's `aud` is checked only when present (the signed token's was).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audience = Some(audience.into());
        self
    }

    /// Opt-in: while AgentIdP cannot answer, keep serving verdicts known
    /// active for up to `grace` past their `max_age` (never past the token's
    /// `exp`), trying AgentIdP again about once a second. Off by default:
    /// without it, such requests are refused with 503.
    ///
    /// "Cannot answer" means an outage only: no connection, a transport
    /// error, no answer within the [`deadline`](Self::deadline), or a 5xx.
    /// A 429 (which anyone sending unknown tokens could cause) or any other
    /// 4xx is refused with 503 and never served by the grace, so a caller
    /// cannot keep a revoked token alive by making AgentIdP refuse the
    /// service. `Duration::MAX` means "until `exp`".
    pub fn grace_when_unavailable(mut self, grace: Duration) -> Self {
        self.settings.grace = Some(grace);
        self
    }

    /// The longest a verification takes (default
    /// [`DEFAULT_DEADLINE`](super::DEFAULT_DEADLINE), 5 s): every remote
    /// call a request makes (introspection, discovery, the key set) counts
    /// against it, whatever the client's own timeouts and retries; when it
    /// passes, the request is refused with 503 and `Retry-After` (or served
    /// by the [grace](Self::grace_when_unavailable)). A key-set fetch is
    /// bounded by it too. Saturated: `Duration::MAX` means "as long as can be".
    ///
    /// At least [`MIN_DEADLINE`](super::MIN_DEADLINE) (100 ms):
    /// [`build`](Self::build) fails with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), naming `deadline`,
    /// for a shorter one (zero included), within which no remote call could
    /// answer, so that every token that is not a cache hit would be refused
    /// with 503.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.settings.deadline = deadline;
        self.jwks.deadline = deadline;
        self
    }

    /// Introspection mode: at most `misses` introspections of tokens not
    /// known active per `per`, a token bucket refilled evenly (default
    /// [`DEFAULT_INTROSPECTION_MISSES`](super::DEFAULT_INTROSPECTION_MISSES)
    /// per [`DEFAULT_INTROSPECTION_MISS_WINDOW`](super::DEFAULT_INTROSPECTION_MISS_WINDOW):
    /// 30 per 60 s). Each unknown token takes one unit before it is
    /// introspected and gives it back if AgentIdP says it is active, so the
    /// bound holds for tokens that turn out inactive (and for concurrent
    /// unknown ones). When it is spent, a token that could be real is
    /// refused with 503 and `Retry-After` without a remote call. Tokens
    /// seen active are asked about again without counting, and what cannot
    /// be a live token at all (not an RS256 compact JWS, or one whose own
    /// claims lack `sub`/`exp` or are expired past the leeway) is refused 401 before
    /// any of this. `misses` of 0 is taken as 1; `per` of zero turns the
    /// limit off.
    pub fn introspection_miss_limit(mut self, misses: u32, per: Duration) -> Self {
        self.settings.misses = (misses, per);
        self
    }

    /// For the local modes: also introspect each token the first time it is
    /// seen, and again once its verdict is older than
    /// [`max_age`](Self::max_age), so a revocation is seen within that bound;
    /// in between, a request costs a cache lookup. `client` needs
    /// `tokens:read`. In the introspection mode, where every token is
    /// introspected already, this changes nothing.
    pub fn introspect_first_sight(mut self, client: Client) -> Self {
        self.first_sight = Some(client);
        self
    }

    /// JWKS mode: the least time from the end of one key-set fetch to the
    /// start of the next caused by unknown `kid`s or expiry (default
    /// [`DEFAULT_JWKS_COOLDOWN`](super::DEFAULT_JWKS_COOLDOWN), 10 s). At
    /// most [`MAX_JWKS_COOLDOWN`](super::MAX_JWKS_COOLDOWN) (5 min): a
    /// longer one, `Duration::MAX` included, is taken as that, since within
    /// the cooldown a failed fetch is not tried again (503 for every token
    /// whose key is not held) and a key rotated in is not looked for. Zero
    /// lets each unknown `kid` start a fetch once the one in flight ends.
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks.cooldown = cooldown.min(MAX_JWKS_COOLDOWN);
        self
    }

    /// JWKS mode: the bounds a key set's `Cache-Control: max-age` is
    /// clamped to (default 60 s to 24 h; 5 min without `max-age`, clamped too).
    pub fn jwks_cache_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.jwks.min_ttl = min.min(max);
        self.jwks.max_ttl = max.max(min);
        self
    }

    /// JWKS mode: the HTTP client for discovery and the key set, built from
    /// your `builder` (its TLS roots, proxies and timeouts stay yours) under
    /// the SDK's rules: redirects are never followed. Default: the SDK's
    /// own client, as for API calls (no redirects, no proxy from the
    /// environment, a 10 s timeout). Either way, a request's fetches end by
    /// the verifier's [`deadline`](Self::deadline).
    pub fn http_client(mut self, http: reqwest::ClientBuilder) -> Self {
        if let Source::Jwks { http: slot, .. } = &mut self.source {
            *slot = Some(Box::new(http));
        }
        self
    }

    /// The verifier. Fails with [`ErrorKind::Config`](crate::ErrorKind::Config)
    /// for a [`deadline`](Self::deadline) shorter than
    /// [`MIN_DEADLINE`](super::MIN_DEADLINE), if the default JWKS HTTP client
    /// cannot be built, or for a plain http server root off loopback without
    /// [`allow_insecure_http`](Self::allow_insecure_http).
    pub fn build(self) -> Result<Verifier> {
        if self.settings.deadline < MIN_DEADLINE {
            return Err(Error::config(format!(
                "deadline of {:?} is shorter than the least allowed, {MIN_DEADLINE:?}: \
                 no remote call could answer within it, so every token that is not \
                 a cache hit would be refused with 503",
                self.settings.deadline
            )));
        }
        let check = match self.source {
            Source::Introspection(client) => Check::Introspect(client),
            Source::Pem(key) => Check::Local {
                keys: Keys::Pem(key),
                first_sight: self.first_sight,
            },
            Source::Jwks { discovery, http } => {
                if !transport::clear_text_allowed(&discovery, self.allow_insecure_http) {
                    return Err(Error::config(format!(
                        "the server root `{}` {}",
                        discovery.origin().ascii_serialization(),
                        transport::CLEAR_TEXT_REFUSED
                    )));
                }
                let http = match http {
                    Some(builder) => transport::user_http_client(*builder)?,
                    // The crate's transport policy: no redirects (an https
                    // `jwks_uri` answered by a redirect to http is not
                    // followed), no proxy from the environment.
                    None => transport::http_client(&Transport {
                        connect_timeout: JWKS_CONNECT_TIMEOUT,
                        request_timeout: Some(JWKS_TIMEOUT),
                        ..Transport::default()
                    })?,
                };
                let mut timing = self.jwks;
                timing.default_ttl = timing.default_ttl.clamp(timing.min_ttl, timing.max_ttl);
                Check::Local {
                    keys: Keys::Jwks(Box::new(
                        Jwks::new(discovery, http, timing)
                            .allow_insecure_http(self.allow_insecure_http),
                    )),
                    first_sight: self.first_sight,
                }
            }
        };
        let status = self.status.build(self.settings.capacity);
        Verifier::from_parts(check, self.settings, status)
    }
}
