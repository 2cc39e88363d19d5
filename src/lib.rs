//! Rust SDK for the [SentryAgent.ai](https://sentryagent.ai) **AgentIdP**, the
//! identity provider for AI agents: agent registry, client credentials, OAuth
//! 2.0 tokens and the audit trail.
//!
//! # Quick start
//!
//! ```no_run
//! use sentryagent_idp::{Client, Scope};
//! use sentryagent_idp::model::{AgentType, DeploymentEnv};
//! use futures::TryStreamExt;
//!
//! # async fn run() -> sentryagent_idp::Result<()> {
//! // AGENTIDP_BASE_URL, AGENTIDP_CLIENT_ID, AGENTIDP_CLIENT_SECRET
//! let client = Client::from_env()?;
//!
//! let agent = client
//!     .agents()
//!     .register()
//!     .email("screener-001@myproject.ai")
//!     .agent_type(AgentType::Screener)
//!     .version("1.0.0")
//!     .capabilities(["resume:read"])
//!     .owner("platform-team")
//!     .deployment_env(DeploymentEnv::Production)
//!     .send()
//!     .await?;
//!
//! // The secret is returned once; keep it somewhere safe.
//! let credential = client.credentials().generate(agent.agent_id).send().await?;
//!
//! // Walk every page lazily.
//! let all: Vec<_> = client.agents().list().owner("platform-team").stream().try_collect().await?;
//!
//! // A client that may only read, sharing the connection pool.
//! let reader = client.with_scopes([Scope::AGENTS_READ])?;
//! let again = reader.agents().get(agent.agent_id).send().await?;
//! # let _ = (credential, all, again);
//! # Ok(())
//! # }
//! ```
//!
//! # How it is built
//!
//! `openapi/agentidp.yaml` is the single source of truth. `build.rs` runs
//! progenitor over it to produce the raw bindings (checked in under
//! `generated/` for review), the [`Operation`] table and the open enums of
//! [`model`]. The facade meets the bindings at one seam, through which every
//! raw call passes: it adds token management ([`auth`]), scopes ([`Scope`]),
//! retries ([`RetryPolicy`]) and one error type ([`Error`]).
//!
//! Tokens are fetched with the client-credentials grant, cached, refreshed in
//! the background before expiry, and shared by concurrent callers (one token
//! request however many callers wait). A call whose token lacks the
//! operation's scope is refused before it is sent.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

#[macro_use]
mod send;
#[macro_use]
mod pagination;

mod access_token;
mod agents;
mod audit;
pub mod auth;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod client;
mod credentials;
mod error;
mod flavor;
pub mod model;
mod operation;
#[cfg(feature = "present")]
#[cfg_attr(docsrs, doc(cfg(feature = "present")))]
pub mod present;
mod raw;
mod redact;
mod retry;
mod scope;
mod seam;
pub mod secret;
#[cfg(feature = "store")]
#[cfg_attr(docsrs, doc(cfg(feature = "store")))]
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod tokens;
mod validate;
#[cfg(feature = "verify")]
#[cfg_attr(docsrs, doc(cfg(feature = "verify")))]
pub mod verify;

pub use agents::{Agents, DecommissionAgent, GetAgent, ListAgents, RegisterAgent, UpdateAgent};
pub use audit::{
    Audit, DEFAULT_POLL_INTERVAL, FOLLOW_LOOKBACK, Follow, GetAuditEvent, MAX_FOLLOW_BACKOFF,
    QueryAudit,
};
pub use auth::DEFAULT_REFRESH_BUFFER;
pub use client::{API_PREFIX, Client, ClientBuilder};
pub use credentials::{
    Credentials, DEFAULT_ROLLOVER_GRACE, DEFAULT_ROLLOVER_SETTLE, GenerateCredential,
    ListCredentials, RevokeCredential, RolledOver, Rollover, RolloverError, RolloverStep,
    RotateCredential,
};
pub use error::{Error, ErrorKind, Result};
pub use flavor::{Async, Flavor};
pub use operation::Operation;
pub use pagination::{
    DEFAULT_PAGE_SIZE, DEFAULT_STREAM_PAGE_SIZE, MAX_PAGES, Paginator, WALK_MEMORY,
};
pub use retry::RetryPolicy;
pub use scope::{Scope, ScopeParseError, ScopeSet};
pub use seam::transport::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT};
pub use seam::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT};
pub use tokens::{IntrospectToken, RevokeToken, Tokens};

/// Re-exported: `reqwest` is in the public API (`http_client`, `StatusCode`).
pub use reqwest;
/// The HTTP status type of [`Error::status`].
pub use reqwest::StatusCode;
/// Re-exported so users need not depend on `secrecy` to read secrets.
pub use secrecy::{ExposeSecret, SecretString};

/// The README's examples, compiled as doc tests.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "reqwest-middleware",
    feature = "redis"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The spec-driven contract tests (`tests/contract.rs`) reach the raw
/// bindings, so they run as this crate's unit tests, through `__raw` as an
/// outside user of the bindings would.
#[cfg(test)]
extern crate self as sentryagent_idp;
#[cfg(test)]
#[path = "../tests/contract/mod.rs"]
mod contract;

/// The raw generated bindings, for this crate's contract tests and its fuzz
/// target (`--cfg sentryagent_internal`) only: never in the public API.
#[cfg(any(test, sentryagent_internal))]
#[doc(hidden)]
pub mod __raw {
    pub use crate::raw::*;

    /// Runs one raw call of `operation` through `client`'s seam (the hooks
    /// every facade call goes through), returning the raw result unmapped
    /// and the error the hooks recorded, if any.
    pub async fn call<T, E, S, Fut>(
        client: &crate::Client,
        operation: crate::Operation,
        send: S,
    ) -> (
        std::result::Result<ResponseValue<T>, Error<E>>,
        Option<crate::Error>,
    )
    where
        S: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<ResponseValue<T>, Error<E>>>,
    {
        client.seam().raw_attempt(operation, send).await
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
