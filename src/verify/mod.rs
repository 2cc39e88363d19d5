//! Verifying the tokens agents present to a service: who is calling
//! ([`AgentPrincipal`]), with which scopes, and whether the token is still
//! good. Feature `verify`; the axum extractor needs feature `axum`.
//!
//! A service picks one of three ways to decide, each a constructor of
//! [`Verifier`]. What each sees of a token, from AgentIdP's side:
//!
//! | mode | expiry | revocation | decommissioned agent | key rotation |
//! | --- | --- | --- | --- | --- |
//! | [`introspection`](Verifier::introspection) (RFC 7662) | yes | within [`max_age`](VerifierBuilder::max_age) | only if AgentIdP's introspection answers `active: false` for it (not promised by its API reference) | AgentIdP's concern |
//! | [`public_key_pem`](Verifier::public_key_pem) (local RS256) | yes (`exp`, `nbf`, with a [`leeway`](VerifierBuilder::leeway)) | never: a token is good until its `exp` | never | not seen: tokens of a new key are refused until you give its PEM |
//! | the same with [`introspect_first_sight`](VerifierBuilder::introspect_first_sight) | yes | within `max_age` | as introspection | as PEM |
//! | [`jwks`](Verifier::jwks) (OIDC discovery) | yes | never (unless `introspect_first_sight`) | never (same) | a new `kid` fetches the key set; a withdrawn key stops verifying at the next key-set refresh, and tokens it verified before within `max_age` |
//!
//! [`check_agent_status`](VerifierBuilder::check_agent_status) adds, in any
//! mode, "a decommissioned or suspended agent is refused within
//! [`agent_status_max_age`](VerifierBuilder::agent_status_max_age)", for one
//! `agents().get` per agent per that time.
//!
//! Every mode keeps the verdict on a token it has seen (by a keyed hash of
//! it, at most `max_age`, never past its `exp`), so a token seen before costs a
//! cache lookup, not an RSA check nor a request to AgentIdP; the first sight
//! costs one introspection, one RS256 check, or both.
//!
//! In a service, [`VerifyLayer`] verifies every request and puts the
//! principal in its extensions; [`RequireScopes`] refuses, per route, a
//! principal lacking scopes. Refusals are RFC 6750 answers ([`VerifyError`]).
//!
//! # Why these choices
//!
//! - **The cache is not optional.** Each introspection counts against the
//!   service's own rate limit and writes an audit event on AgentIdP, so the
//!   verdict on a token is cached, keyed by a 128-bit SipHash-2-4 of the
//!   token under a random key of the verifier's own (the cache never holds
//!   a token; without the key no one can make a token share another's
//!   entry). An active verdict lives at most
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
//! - **The RFCs' MUSTs.** A header with `crit` is refused (RFC 7515
//!   §4.1.11: no extension is implemented, so any `crit` names one we do
//!   not understand, and an empty or malformed one is invalid anyway); a
//!   published key whose `use` is not `sig` or whose `key_ops` lack
//!   `verify` never verifies (RFC 7517 §4.2–4.3); scopes are split on a
//!   space only, and a word that is not an RFC 6749 `scope-token` is no
//!   scope (it grants nothing; the token's other scopes stand); key sets are
//!   fetched over https, or plain http to loopback only unless
//!   [`allow_insecure_http`](VerifierBuilder::allow_insecure_http).
//! - **The local verdict cache holds only signed tokens.** A token whose
//!   signature fails is refused anew each time rather than kept, so a flood
//!   of junk cannot push good verdicts out of the bounded cache.
//!
//! # Versions of the frameworks
//!
//! The `axum` feature is built against axum 0.8 (its extractor and
//! `IntoResponse`), and [`VerifyLayer`] against tower 0.5 / http 1. Use the
//! same major versions: with another (axum 0.7, say) cargo builds two
//! copies, the traits do not match, and the compiler reports ``error[E0277]:
//! the trait bound `AgentPrincipal: FromRequestParts<_>` is not satisfied``
//! (or that `VerifyLayer` is not a `Layer` of your router); `cargo tree -d`
//! shows the duplicate.
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
mod jwk;
mod jwks;
mod jwt;
mod layer;
mod principal;
mod settings;
mod shape;
mod status;
mod verified;
mod verifier;

pub use builder::VerifierBuilder;
pub use error::VerifyError;
pub use layer::{RequireScopes, RequireScopesService, VerifyLayer, VerifyService};
pub use principal::AgentPrincipal;
pub use settings::{
    DEFAULT_CAPACITY, DEFAULT_DEADLINE, DEFAULT_INTROSPECTION_MISS_WINDOW,
    DEFAULT_INTROSPECTION_MISSES, DEFAULT_JWKS_COOLDOWN, DEFAULT_LEEWAY, DEFAULT_MAX_AGE,
    DEFAULT_NEGATIVE_TTL, MAX_JWKS_COOLDOWN, MIN_DEADLINE,
};
pub use verifier::Verifier;
