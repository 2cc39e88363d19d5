//! Verifying the tokens agents present to a service: who is calling
//! ([`AgentPrincipal`]), with which scopes, and whether the token is still
//! good. Feature `verify`; the axum extractor needs feature `axum`.
//!
//! A service picks one of three ways to decide, each a constructor of
//! [`Verifier`]:
//!
//! | mode | sees a revocation or a decommissioned agent | per request |
//! | --- | --- | --- |
//! | [`introspection`](Verifier::introspection) (RFC 7662) | within [`max_age`](VerifierBuilder::max_age) | a cache lookup; one introspection per token per `max_age` |
//! | [`public_key_pem`](Verifier::public_key_pem) (local RS256) | never: a token is good until its `exp` | one RSA signature check |
//! | the same with [`introspect_first_sight`](VerifierBuilder::introspect_first_sight) | within `max_age` | a signature check and a cache lookup |
//! | [`jwks`](Verifier::jwks) (OIDC discovery) | never, as the PEM mode; may also introspect at first sight | a signature check |
//!
//! In a service, [`VerifyLayer`] verifies every request and puts the
//! principal in its extensions; [`RequireScopes`] refuses, per route, a
//! principal lacking scopes. Refusals are RFC 6750 answers ([`VerifyError`]).
//!
//! # Why these choices
//!
//! - **The cache is not optional.** Each introspection counts against the
//!   service's own rate limit and writes an audit event on AgentIdP, so the
//!   verdict on a token is cached, keyed by a SHA-256 of the token (the
//!   cache never holds a token). An active verdict lives at most
//!   `max_age` and never past the token's `exp`: that is the bound within
//!   which a revocation is seen. An inactive one lives
//!   [`negative_ttl`](VerifierBuilder::negative_ttl), so a flood of one bad token is
//!   not a flood of introspections. Concurrent requests bearing one new
//!   token share one introspection. The cache is bounded
//!   ([`capacity`](VerifierBuilder::capacity)).
//! - **Scopes are checked on every request, after the cache.** The cache
//!   stores who the caller is, never whether it may do something: a cache
//!   that remembered a scope decision let requests through in Ory
//!   Oathkeeper (CVE-2021-32701).
//! - **Fail closed, within a deadline.** When AgentIdP cannot answer
//!   (unreachable, hung, failing, rate-limiting, or refusing the service's
//!   own credentials), or the key set cannot be refreshed, the answer is 503
//!   with `Retry-After`, never 401 (the token may be fine) and never a pass,
//!   by the verifier's own [`deadline`](VerifierBuilder::deadline) (5 s),
//!   whatever the client's timeouts and retries.
//!   [`grace_when_unavailable`](VerifierBuilder::grace_when_unavailable)
//!   opts in to keep serving verdicts already known active for a while,
//!   during an outage only (no answer, transport errors, 5xx): never for a
//!   429 or another 4xx, which a caller could provoke.
//! - **Junk is cheap.** What cannot be an AgentIdP token (not a compact JWS
//!   of three base64url parts with an RS256 header, whose unverified
//!   payload has a `sub` and an `exp` not past the leeway) is refused 401
//!   before any remote call; introspections of tokens not known active are bounded
//!   by a [miss budget](VerifierBuilder::introspection_miss_limit) (30 per
//!   minute), beyond which such tokens get 503 without a remote call, while
//!   tokens seen active keep being served.
//! - **Local checks pin RS256.** `none`, HS256 keyed with the public key, and
//!   every other algorithm are refused; `exp` and `nbf` allow a
//!   [`leeway`](VerifierBuilder::leeway); `iss`/`aud` are checked only when
//!   set (Phase-1 AgentIdP tokens carry neither); unknown claims are ignored.
//!
//! # Example: a service behind the layer
//!
#![cfg_attr(feature = "testing", doc = "```")]
#![cfg_attr(not(feature = "testing"), doc = "```ignore")]
//! use sentryagent_idp::verify::{RequireScopes, Verifier, VerifyLayer};
//! use sentryagent_idp::{Scope, testing::FakeAgentIdp};
//! use tower::{Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeAgentIdp::start().await?;
//! // The service is an agent too: it introspects with `tokens:read`.
//! let verifier = Verifier::introspection(fake.client_builder().build()?).build()?;
//!
//! let handler = service_fn(|request: http::Request<String>| async move {
//!     let agent = request.extensions().get::<sentryagent_idp::verify::AgentPrincipal>().cloned();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(format!("{:?}", agent.map(|a| a.agent_id))))
//! });
//! let mut service = tower::ServiceBuilder::new()
//!     .layer(VerifyLayer::new(verifier))
//!     .layer(RequireScopes::all([Scope::AGENTS_READ]))
//!     .service(handler);
//!
//! let caller = fake.client_builder().build()?;
//! let token = caller.access_token().await?;
//! let request = http::Request::builder()
//!     .header("authorization", format!("Bearer {}", sentryagent_idp::ExposeSecret::expose_secret(&token)))
//!     .body(String::new())?;
//! let response = service.ready().await?.call(request).await?;
//! assert_eq!(response.status(), 200);
//!
//! let anonymous = http::Request::new(String::new());
//! let response = service.ready().await?.call(anonymous).await?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer");
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "axum")]
mod axum;
mod budget;
mod builder;
mod cache;
mod error;
mod header;
mod introspect;
mod jwks;
mod jwt;
mod layer;
mod principal;
mod settings;
mod shape;
mod verifier;

pub use builder::VerifierBuilder;
pub use error::VerifyError;
pub use layer::{RequireScopes, RequireScopesService, VerifyLayer, VerifyService};
pub use principal::AgentPrincipal;
pub use settings::{
    DEFAULT_CAPACITY, DEFAULT_DEADLINE, DEFAULT_INTROSPECTION_MISS_WINDOW,
    DEFAULT_INTROSPECTION_MISSES, DEFAULT_JWKS_COOLDOWN, DEFAULT_LEEWAY, DEFAULT_MAX_AGE,
    DEFAULT_NEGATIVE_TTL,
};
pub use verifier::Verifier;
