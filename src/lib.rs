//! Rust SDK for the [SentryAgent.ai](https://sentryagent.ai) **AgentIdP**, the
//! identity provider for AI agents: agent registry, client credentials, OAuth
//! 2.0 tokens and the audit trail.
//!
//! # Quick start
//!
//! ```no_run
//! use sentryagent_idp::{Client, Scope};
//! use sentryagent_idp::model::{AgentType, DeploymentEnv, NewAgent};
//! use futures::TryStreamExt;
//!
//! # async fn run() -> sentryagent_idp::Result<()> {
//! // AGENTIDP_BASE_URL, AGENTIDP_CLIENT_ID, AGENTIDP_CLIENT_SECRET
//! let client = Client::from_env()?;
//!
//! let agent = client
//!     .agents()
//!     .register(
//!         NewAgent::builder()
//!             .email("screener-001@myproject.ai")
//!             .agent_type(AgentType::Screener)
//!             .version("1.0.0")
//!             .capabilities(vec!["resume:read".parse().expect("valid capability")])
//!             .owner("platform-team")
//!             .deployment_env(DeploymentEnv::Production),
//!     )
//!     .await?;
//!
//! // The secret is returned once; keep it somewhere safe.
//! let credential = client.credentials().generate(agent.agent_id).await?;
//!
//! // Walk every page lazily.
//! let all: Vec<_> = client.agents().list().owner("platform-team").stream().try_collect().await?;
//!
//! // A client that may only read, sharing the connection pool.
//! let reader = client.with_scopes([Scope::AGENTS_READ])?;
//! let again = reader.agents().get(agent.agent_id).await?;
//! # let _ = (credential, all, again);
//! # Ok(())
//! # }
//! ```
//!
//! # How it is built
//!
//! `openapi/agentidp.yaml` is the single source of truth. `build.rs` runs
//! progenitor over it to produce the raw bindings (checked in under
//! `generated/` for review); this crate's facade adds token management
//! ([`auth`]), scopes ([`Scope`]) and one error type ([`Error`]) on top,
//! meeting the bindings at one seam: progenitor's `ClientHooks`.
//!
//! Tokens are fetched with the client-credentials grant, cached, refreshed in
//! the background [`DEFAULT_REFRESH_BUFFER`] before expiry, and shared by
//! concurrent callers (one token request however many callers wait). A call
//! whose token lacks the operation's scope is refused before it is sent.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod agents;
mod audit;
pub mod auth;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod client;
mod credentials;
mod error;
pub mod model;
mod operation;
mod pagination;
mod raw;
mod retry;
mod scope;
mod seam;
mod secret;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod tokens;

pub use agents::{Agents, ListAgents};
pub use audit::{Audit, QueryAudit};
pub use client::{
    API_PREFIX, Async, Client, ClientBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REFRESH_BUFFER, DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT,
};
pub use credentials::{Credentials, IssueSecret};
pub use error::{Error, ErrorKind, Result};
pub use pagination::DEFAULT_PAGE_SIZE;
pub use retry::RetryPolicy;
pub use scope::{Scope, ScopeSet};
pub use secret::Secret;
pub use tokens::Tokens;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Re-exported so users need not depend on `secrecy` to read secrets.
pub use secrecy::{ExposeSecret, SecretString};

/// The raw generated bindings, for this crate's contract tests only.
#[cfg(feature = "_contract")]
#[doc(hidden)]
pub mod __raw {
    pub use crate::raw::*;
    /// Builds a raw client that sends `token` as its bearer.
    pub fn client_with_token(base_url: &str, token: &str) -> Client {
        crate::client::raw_with_static_token(base_url, token)
    }

    /// The facade's mapping of an error response, for the fuzz target.
    pub fn map_error_response(status: u16, retry_after: &[u8], body: &[u8]) -> crate::Error {
        let status =
            reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_bytes(retry_after) {
            headers.insert(reqwest::header::RETRY_AFTER, value);
        }
        crate::Error::from_response(status, &headers, body)
    }
}
