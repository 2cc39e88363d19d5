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
//! operation ([`Failure`], including closing the connection unanswered) and
//! count the requests each operation received.
//!
//! Tokens are signed with a fixed, public **test-only** RSA key: they prove
//! nothing outside a test.
//!
//! ```
//! use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp, Failure};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fake = FakeAgentIdp::start().await?;
//! let agent_id = fake.seed_agent(AgentSeed::new().owner("platform-team"));
//! fake.fail_next("get_agent", Failure::Status(503), 1);
//!
//! // Point the SDK (or any HTTP client) at `fake.base_url()`, with
//! // `fake.client_id()` and `fake.client_secret()` as its credentials.
//! let status = reqwest::get(format!("{}/agents/{agent_id}", fake.api_url()))
//!     .await?
//!     .status();
//! assert_eq!(status, 503); // injected failures come before authentication
//! assert_eq!(fake.requests_seen("get_agent"), 1);
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
mod routes;
mod secrets;
mod seed;
mod server;
mod state;
mod tokens;
mod validate;
mod wire;

pub use failure::Failure;
pub use handle::{FakeAgentIdp, FakeAgentIdpBuilder};
pub use seed::{AgentSeed, AuditEventSeed};
