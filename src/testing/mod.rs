//! An in-process fake AgentIdP for tests and the offline quick start.
//!
//! [`FakeAgentIdp`] serves the 14 endpoints of `openapi/agentidp.yaml` under
//! `/api/v1` on a loopback port, keeping agents, credentials, revoked tokens
//! and the audit log in memory. It behaves as the API reference documents:
//! RS256 JWT access tokens from the client-credentials grant, scopes checked
//! per operation as the spec's `security` says, OAuth 2.0 error bodies on
//! `POST /token` and the `{code, message, details}` envelope elsewhere, an
//! audit event for every action.
//!
//! For resilience tests it can add latency, rate-limit, inject failures per
//! operation ([`Failure`], including closing the connection unanswered and
//! finishing a write after the client gave up) and count the requests each
//! operation received.
//!
//! Tokens are signed with a fixed, public **test-only** RSA key: they prove
//! nothing outside a test.
//!
//! # Testing your own code
//!
//! Start a fake per test (it is cheap: no process, no files), point the SDK
//! at it with [`FakeAgentIdp::client_builder`], seed what the test needs and
//! inject the failures it is about:
//!
//! ```
//! use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp, Failure};
//! use sentryagent_idp::{Client, ErrorKind, Operation, RetryPolicy};
//!
//! /// The code under test: how many agents an owner has.
//! async fn fleet_size(client: &Client, owner: &str) -> sentryagent_idp::Result<usize> {
//!     Ok(client.agents().list().owner(owner).send().await?.items.len())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeAgentIdp::start().await?;
//! fake.seed_agents(3, |_| AgentSeed::new().owner("platform-team"));
//! let client = fake.client_builder().build()?;
//! assert_eq!(fleet_size(&client, "platform-team").await?, 3);
//!
//! // A 503 is retried by default...
//! fake.fail_next(Operation::ListAgents, Failure::Status(503), 1);
//! assert_eq!(fleet_size(&client, "platform-team").await?, 3);
//! assert_eq!(fake.requests_seen(Operation::ListAgents), 3);
//!
//! // ...and surfaces as a typed error without retries.
//! let strict = fake.client_builder().retry_policy(RetryPolicy::disabled()).build()?;
//! fake.fail_next(Operation::ListAgents, Failure::Status(503), 1);
//! let err = fleet_size(&strict, "platform-team").await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Server);
//! # Ok(())
//! # }
//! ```
//!
//! Where the reference leaves server behaviour open, the fake picks one
//! reading and documents it on the item concerned (e.g. [`Failure`],
//! [`FakeAgentIdpBuilder::rate_limit`]).

mod app;
mod control;
mod errors;
mod failure;
mod handle;
mod key;
mod oidc;
mod routes;
mod secrets;
mod seed;
mod server;
mod signing;
mod state;
mod tokens;
mod validate;
mod wire;

pub use failure::Failure;
pub use handle::{FakeAgentIdp, FakeAgentIdpBuilder};
pub use seed::{AgentSeed, AuditEventSeed};

/// The claims of an access token the fake would issue to `agent` with
/// `scope` (space-separated), valid from now for `lifetime`, with a new
/// `jti`: to sign with [`FakeAgentIdp::sign_claims`], changed or not.
///
/// ```
/// use std::time::Duration;
/// use sentryagent_idp::testing::token_claims;
///
/// let agent = uuid::Uuid::new_v4();
/// let mut claims = token_claims(agent, "agents:read", Duration::from_secs(60));
/// assert_eq!(claims["sub"], agent.to_string());
/// claims["exp"] = 0.into(); // an expired token
/// ```
pub fn token_claims(
    agent: uuid::Uuid,
    scope: &str,
    lifetime: std::time::Duration,
) -> serde_json::Value {
    let now = wire::now().timestamp();
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX);
    serde_json::json!({
        "sub": agent.to_string(),
        "client_id": agent.to_string(),
        "scope": scope,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now.saturating_add(lifetime),
    })
}
