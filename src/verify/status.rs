//! The optional agent-status check ([`VerifierBuilder::check_agent_status`]):
//! a token is good only while its agent is `active`, asked of AgentIdP
//! through `agents().get` and cached per agent.
//!
//! Why it exists: a token's signature and `exp` say nothing of its agent,
//! and RFC 7662 does not require an introspection to answer `active: false`
//! for the tokens of an agent decommissioned since; AgentIdP's API reference
//! does not promise it either. This check is the one way the verifier can
//! promise "a decommissioned or suspended agent is refused within
//! `agent_status_max_age`", in every mode.

use std::fmt;
use std::time::Duration;

use super::builder::VerifierBuilder;
use super::error::VerifyError;
use super::settings::DEFAULT_MAX_AGE;
use crate::client::Client;
use crate::error::ErrorKind;
use crate::model::{AgentStatus, Uuid};
use crate::seam::transport::LONGEST;

/// `Retry-After` of a 503 when AgentIdP did not say (5 s).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest `Retry-After` passed on from AgentIdP (60 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The agent-status check of a verifier.
#[derive(Clone)]
pub(crate) struct StatusCheck {
    client: Client,
    /// Whether each agent was `active` when last asked; bounded, each
    /// answer kept `max_age`. Failures are not kept.
    active: moka::future::Cache<Uuid, bool>,
}

impl fmt::Debug for StatusCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusCheck")
            .field("agents", &self.active.entry_count())
            .finish_non_exhaustive()
    }
}

/// The builder's options of the check.
#[derive(Clone, Debug)]
pub(crate) struct StatusOptions {
    client: Option<Client>,
    max_age: Duration,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            client: None,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl StatusOptions {
    /// The check, if asked for; at most `capacity` agents kept.
    pub(crate) fn build(self, capacity: u64) -> Option<StatusCheck> {
        let client = self.client?;
        // moka refuses a time to live past 1,000 years: a century is "forever".
        let ttl = self.max_age.min(LONGEST);
        Some(StatusCheck {
            client,
            active: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        })
    }
}

impl StatusCheck {
    /// `Ok` if `agent` is `active`; [`VerifyError::InvalidToken`] if it is
    /// not, or is not there; [`VerifyError::Unavailable`] if AgentIdP could
    /// not tell. Concurrent checks of one agent share one request.
    ///
    /// The request to AgentIdP is answered by `deadline` (the verifier's),
    /// whatever the client's own timeouts and retries: 503 if it is not.
    pub(crate) async fn check(
        &self,
        agent: Uuid,
        deadline: tokio::time::Instant,
    ) -> Result<(), VerifyError> {
        let active = self
            .active
            .try_get_with(agent, async {
                let asked =
                    tokio::time::timeout_at(deadline, self.client.agents().get(agent).send());
                match asked.await {
                    Err(_elapsed) => {
                        tracing::warn!(
                            "the agent-status check had no answer by the verifier's deadline; \
                             refusing with 503"
                        );
                        Err(DEFAULT_RETRY_AFTER)
                    }
                    Ok(Ok(record)) => Ok(record.status == AgentStatus::Active),
                    Ok(Err(error)) if error.kind() == ErrorKind::NotFound => Ok(false),
                    Ok(Err(error)) => {
                        tracing::warn!(
                            kind = ?error.kind(),
                            status = ?error.status(),
                            "the agent-status check failed; refusing with 503"
                        );
                        Err(error
                            .retry_after()
                            .unwrap_or(DEFAULT_RETRY_AFTER)
                            .min(MAX_RETRY_AFTER))
                    }
                }
            })
            .await
            .map_err(|retry_after| VerifyError::Unavailable {
                retry_after: *retry_after,
            })?;
        if active {
            Ok(())
        } else {
            tracing::debug!(%agent, "token refused: its agent is not active");
            Err(VerifyError::InvalidToken)
        }
    }
}

impl VerifierBuilder {
    /// Opt-in, every mode: a token is accepted only while its agent's status
    /// is `active`, asked of AgentIdP with `client.agents().get(agent_id)`
    /// (`client` needs `agents:read`) and cached per agent for
    /// [`agent_status_max_age`](Self::agent_status_max_age) (default
    /// [`DEFAULT_MAX_AGE`](super::DEFAULT_MAX_AGE), 30 s), at most
    /// [`capacity`](Self::capacity) agents. So a decommissioned or suspended
    /// agent is refused (401 `invalid_token`) within that bound, whatever the
    /// mode and whether or not AgentIdP's introspection marks its tokens
    /// inactive. When AgentIdP cannot answer (by the verifier's
    /// [`deadline`](Self::deadline), which the check counts against), 503
    /// with `Retry-After` (never a pass); failures are not cached. Costs one request per agent per
    /// `agent_status_max_age`, and a cache lookup per request.
    pub fn check_agent_status(mut self, client: Client) -> Self {
        self.status.client = Some(client);
        self
    }

    /// How long an agent's status is used before AgentIdP is asked again
    /// (default [`DEFAULT_MAX_AGE`](super::DEFAULT_MAX_AGE), 30 s; saturated
    /// at a century; zero asks on every request). Only with
    /// [`check_agent_status`](Self::check_agent_status).
    pub fn agent_status_max_age(mut self, max_age: Duration) -> Self {
        self.status.max_age = max_age;
        self
    }
}
