//! [`OutgoingAuth`]: the policy both adapters (tower, reqwest-middleware)
//! share: which origins get the token, which token, and what a refusal means.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::challenge::Challenge;
use super::error::PresentError;
use super::origin::{self, Origin};
use crate::access_token::AccessToken;
use crate::auth::TokenCache;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::scope::Scope;

/// How long after a forced refresh another 401 is taken at its word before
/// a new token is fetched again: 10 s (the default of
/// [`OutgoingAuthBuilder::refresh_cooldown`]).
pub const DEFAULT_REFRESH_COOLDOWN: Duration = Duration::from_secs(10);

/// Attaches the agent's current AgentIdP token to calls to other services,
/// only to the origins it allows.
///
/// One `OutgoingAuth` per destination: its origins and the scopes its token
/// holds ([`with_scopes`](OutgoingAuthBuilder::with_scopes)), so a service
/// gets a token holding only what it needs. It is a `tower::Layer` for
/// tower-based HTTP clients and, with the `reqwest-middleware` feature, a
/// `reqwest_middleware::Middleware`. Cheap to clone; clones share the token.
///
/// On a call:
/// - to an origin outside the allowlist, the call is not sent
///   ([`PresentError::OriginNotAllowed`]): AgentIdP tokens carry no
///   audience, so where they go is the only protection against a service
///   replaying them elsewhere;
/// - answered `401` with a `Bearer` challenge of `invalid_token` (or a
///   bare `Bearer` challenge) by the origin the token was sent to (a 401
///   without a Bearer challenge is returned as it is), the
///   token is dropped from the cache and the call is replayed once with a
///   new one when it can be: an idempotent method (GET, HEAD, OPTIONS,
///   TRACE, PUT, DELETE) or a request marked [`Replayable`], with a body
///   that can be cloned. Otherwise the 401 is returned and the next call
///   uses a new token. A `401` with no challenge or only another scheme's
///   (`Basic`), or one from another origin reached by a redirect (which
///   never got the token), is returned as it is: the token is kept;
/// - answered `403` `insufficient_scope`, it fails with
///   [`PresentError::InsufficientScope`] naming the scopes asked for.
///
/// ```
/// use sentryagent_idp::{Client, Scope};
/// use sentryagent_idp::present::OutgoingAuth;
///
/// # fn run(client: &Client) -> sentryagent_idp::Result<()> {
/// let billing = OutgoingAuth::builder(client)
///     .allow_origin("https://billing.internal.example")
///     .with_scopes([Scope::AGENTS_READ])
///     .build()?;
/// # let _ = billing;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct OutgoingAuth {
    inner: Arc<Inner>,
}

struct Inner {
    origins: Vec<Origin>,
    tokens: Arc<TokenCache>,
    refresh_cooldown: Duration,
    last_forced_refresh: Mutex<Option<Instant>>,
}

/// Marks a request as safe to send twice although its method is not
/// idempotent (e.g. a POST with an idempotency key), so a `401` is answered
/// by a replay with a new token. Put it in the request's extensions
/// (`reqwest_middleware::RequestBuilder::with_extension`, or
/// `http::Request::extensions_mut`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Replayable;

/// Builds an [`OutgoingAuth`]; see [`OutgoingAuth::builder`].
#[must_use]
pub struct OutgoingAuthBuilder {
    client: Client,
    origins: Vec<String>,
    scopes: Option<Vec<Scope>>,
    insecure_http: bool,
    refresh_cooldown: Duration,
}

/// What to do with the answer to a call.
pub(crate) enum Next {
    /// Return it.
    Keep,
    /// Send the call again with this token.
    Replay(Arc<AccessToken>),
}

impl OutgoingAuth {
    /// Starts an `OutgoingAuth` presenting `client`'s token (or, with
    /// [`with_scopes`](OutgoingAuthBuilder::with_scopes), a narrower one).
    pub fn builder(client: &Client) -> OutgoingAuthBuilder {
        OutgoingAuthBuilder {
            client: client.clone(),
            origins: Vec::new(),
            scopes: None,
            insecure_http: false,
            refresh_cooldown: DEFAULT_REFRESH_COOLDOWN,
        }
    }

    /// Refuses a call to an origin outside the allowlist.
    pub(crate) fn check_origin(
        &self,
        scheme: Option<&str>,
        host: Option<&str>,
        port: Option<u16>,
    ) -> std::result::Result<(), PresentError> {
        let (Some(scheme), Some(host)) = (scheme, host) else {
            return Err(PresentError::OriginNotAllowed {
                origin: "(a URL without scheme or host)".to_owned(),
            });
        };
        if self
            .inner
            .origins
            .iter()
            .any(|o| o.matches(scheme, host, port))
        {
            Ok(())
        } else {
            Err(PresentError::OriginNotAllowed {
                origin: origin::describe(scheme, host, port),
            })
        }
    }

    /// The current token and its `Authorization` value.
    pub(crate) async fn token(
        &self,
    ) -> std::result::Result<(Arc<AccessToken>, HeaderValue), PresentError> {
        let token = self
            .inner
            .tokens
            .token()
            .await
            .map_err(PresentError::Token)?;
        let header = token.bearer_header().map_err(PresentError::Token)?;
        Ok((token, header))
    }

    /// Whether a call may be sent twice: idempotent, or marked so.
    pub(crate) fn replayable(method: &Method, marked: bool) -> bool {
        marked || method.is_idempotent()
    }

    /// Reads the answer to a call made with `used`; `from_receiver` says
    /// whether it came from the origin the token was sent to (not from
    /// another one a redirect led to, which never got the token).
    pub(crate) async fn after(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        from_receiver: bool,
        used: &Arc<AccessToken>,
        can_replay: bool,
    ) -> std::result::Result<Next, PresentError> {
        if status == StatusCode::UNAUTHORIZED
            && from_receiver
            && Challenge::of(headers).refuses_token()
        {
            return self.refused(used, can_replay).await;
        }
        Self::check_scope(status, headers)?;
        Ok(Next::Keep)
    }

    /// Fails a `403 insufficient_scope` answer.
    pub(crate) fn check_scope(
        status: StatusCode,
        headers: &HeaderMap,
    ) -> std::result::Result<(), PresentError> {
        if status != StatusCode::FORBIDDEN {
            return Ok(());
        }
        match Challenge::of(headers).insufficient_scope() {
            Some(required) => Err(PresentError::InsufficientScope { required }),
            None => Ok(()),
        }
    }

    async fn refused(
        &self,
        used: &Arc<AccessToken>,
        can_replay: bool,
    ) -> std::result::Result<Next, PresentError> {
        let tokens = &self.inner.tokens;
        let still_current = tokens.peek().is_some_and(|t| Arc::ptr_eq(&t, used));
        if still_current && self.claim_forced_refresh() {
            tokens.invalidate(used);
        }
        if !can_replay {
            return Ok(Next::Keep);
        }
        let (next, _) = self.token().await?;
        // The same token again: the cooldown held, so the 401 stands.
        if Arc::ptr_eq(&next, used) {
            Ok(Next::Keep)
        } else {
            Ok(Next::Replay(next))
        }
    }

    /// At most one forced refresh per cooldown: a destination that refuses
    /// every token must not drain the agent's token quota.
    fn claim_forced_refresh(&self) -> bool {
        let mut last = self
            .inner
            .last_forced_refresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < self.inner.refresh_cooldown) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl OutgoingAuthBuilder {
    /// Allows the token to go to `origin` (`https://host[:port]`). At least
    /// one is required; a call to any other origin is not sent.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Presents a token holding only `scopes` (a subset of the client's),
    /// fetched and cached for this destination alone.
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = Scope>) -> Self {
        self.scopes = Some(scopes.into_iter().collect());
        self
    }

    /// Allows `http://` origins on hosts other than loopback (default:
    /// refused, since the token would travel in clear text).
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.insecure_http = allow;
        self
    }

    /// After a `401` made the token be refetched, further `401`s within
    /// this time are returned as they are rather than refetching again
    /// (default [`DEFAULT_REFRESH_COOLDOWN`]).
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.refresh_cooldown = cooldown;
        self
    }

    /// Validates the origins and scopes.
    ///
    /// Fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)
    /// for no origin, an origin that is not `scheme://host[:port]`, a clear
    /// text one, or a scope the client does not hold; with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) if the client has no
    /// token of its own (no token source).
    pub fn build(self) -> Result<OutgoingAuth> {
        if self.origins.is_empty() {
            return Err(Error::invalid_input(
                "OutgoingAuth needs at least one allowed origin",
            ));
        }
        let origins = self
            .origins
            .iter()
            .map(|o| Origin::parse(o, self.insecure_http))
            .collect::<Result<Vec<_>>>()?;
        let client = match self.scopes {
            Some(scopes) => self.client.with_scopes(scopes)?,
            None => self.client,
        };
        let tokens = client
            .token_cache()
            .cloned()
            .ok_or_else(|| Error::config("OutgoingAuth needs a client with a token source"))?;
        Ok(OutgoingAuth {
            inner: Arc::new(Inner {
                origins,
                tokens,
                refresh_cooldown: self.refresh_cooldown,
                last_forced_refresh: Mutex::new(None),
            }),
        })
    }
}

impl fmt::Debug for OutgoingAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingAuth")
            .field("origins", &self.inner.origins)
            .field("refresh_cooldown", &self.inner.refresh_cooldown)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OutgoingAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Origins as given are not shown: user info in one may be a secret.
        f.debug_struct("OutgoingAuthBuilder")
            .field("origins", &self.origins.len())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}
