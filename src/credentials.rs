//! Credentials: generate, list, rotate, revoke.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::Client;
use crate::error::Result;
use crate::model::{Credential, CredentialWithSecret, NewCredential};
use crate::raw;

/// Credential calls (all need `agents:write`); from [`Client::credentials`].
#[derive(Clone, Debug)]
pub struct Credentials {
    client: Client,
}

impl Credentials {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Generates a credential for an active agent. `.await` it directly, or
    /// set `.expires_at(…)` first. The secret in the answer is shown only now.
    pub fn generate(&self, agent_id: Uuid) -> IssueSecret {
        IssueSecret {
            client: self.client.clone(),
            agent_id,
            credential_id: None,
            expires_at: None,
        }
    }

    /// The agent's credentials, without secrets.
    pub async fn list(&self, agent_id: Uuid) -> Result<Vec<Credential>> {
        let list = self
            .client
            .call(
                self.client
                    .raw()
                    .list_credentials()
                    .agent_id(agent_id)
                    .send(),
            )
            .await?;
        Ok(match list {
            raw::types::CredentialList::CredentialListEnvelope(envelope) => envelope.data,
            raw::types::CredentialList::Array(items) => items,
        })
    }

    /// Issues a new secret for the same credential id; the old secret stops
    /// working at once. `.await` it directly, or set `.expires_at(…)` first.
    pub fn rotate(&self, agent_id: Uuid, credential_id: Uuid) -> IssueSecret {
        IssueSecret {
            client: self.client.clone(),
            agent_id,
            credential_id: Some(credential_id),
            expires_at: None,
        }
    }

    /// Revokes the credential for good; the agent keeps its other credentials.
    pub async fn revoke(&self, agent_id: Uuid, credential_id: Uuid) -> Result<()> {
        self.client
            .call_unit(
                self.client
                    .raw()
                    .revoke_credential()
                    .agent_id(agent_id)
                    .credential_id(credential_id)
                    .send(),
            )
            .await
    }
}

/// A generate or rotate request, answered with the new secret; from
/// [`Credentials::generate`] and [`Credentials::rotate`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.await` or `.send()` it"]
pub struct IssueSecret {
    client: Client,
    agent_id: Uuid,
    credential_id: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
}

impl IssueSecret {
    /// When the credential expires (default: never).
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sends the request.
    pub async fn send(self) -> Result<CredentialWithSecret> {
        let body = NewCredential {
            expires_at: self.expires_at,
        };
        let raw = self.client.raw();
        match self.credential_id {
            None => {
                self.client
                    .call(
                        raw.generate_credential()
                            .agent_id(self.agent_id)
                            .body(body)
                            .send(),
                    )
                    .await
            }
            Some(id) => {
                self.client
                    .call(
                        raw.rotate_credential()
                            .agent_id(self.agent_id)
                            .credential_id(id)
                            .body(body)
                            .send(),
                    )
                    .await
            }
        }
    }
}

impl IntoFuture for IssueSecret {
    type Output = Result<CredentialWithSecret>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}
