//! Credentials: generate, list, rotate, revoke, and the rollover of a
//! fleet's secret.

mod rollover;

pub use rollover::{
    DEFAULT_ROLLOVER_GRACE, DEFAULT_ROLLOVER_SETTLE, RolledOver, Rollover, RolloverError,
    RolloverStep,
};

use uuid::Uuid;

use crate::client::Client;
use crate::error::Result;
use crate::flavor::{Async, Flavor};
use crate::model::{Credential, CredentialWithSecret, Timestamp};
use crate::operation::Operation;
use crate::raw;

/// Credential calls (all need `agents:write`); from [`Client::credentials`].
///
/// **Rotate or roll over?** [`rotate`](Self::rotate) keeps the credential
/// id and kills the old secret at once: right for one process that holds
/// the secret and switches to the new one in the same breath (then
/// [`Client::set_client_secret`]). Where several processes or replicas
/// share the secret, every other one would fail until redeployed: use
/// [`rollover`](Self::rollover), which generates a second credential,
/// proves it, hands its secret to you to publish, waits a grace period and
/// revokes the old one; replicas reading their secret through a
/// [`SecretSource`](crate::auth::SecretSource) switch by themselves.
#[derive(Clone, Debug)]
pub struct Credentials<F: Flavor = Async> {
    client: Client<F>,
}

impl<F: Flavor> Client<F> {
    /// Credential calls.
    pub fn credentials(&self) -> Credentials<F> {
        Credentials::new(self.clone())
    }
}

impl<F: Flavor> Credentials<F> {
    fn new(client: Client<F>) -> Self {
        Self { client }
    }

    /// Generates a credential for an active agent. The secret in the answer
    /// is shown only now.
    pub fn generate(&self, agent_id: Uuid) -> GenerateCredential<F> {
        GenerateCredential {
            client: self.client.clone(),
            agent_id,
            expires_at: None,
        }
    }

    /// The agent's credentials, without secrets.
    pub fn list(&self, agent_id: Uuid) -> ListCredentials<F> {
        ListCredentials {
            client: self.client.clone(),
            agent_id,
        }
    }

    /// Issues a new secret for the same credential id; the old secret stops
    /// working at once. Never replayed once it may have reached the server:
    /// an unknown outcome is an
    /// [`ErrorKind::OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown).
    pub fn rotate(&self, agent_id: Uuid, credential_id: Uuid) -> RotateCredential<F> {
        RotateCredential {
            client: self.client.clone(),
            agent_id,
            credential_id,
            expires_at: None,
        }
    }

    /// Replaces `old_credential_id` without downtime for the replicas that
    /// share it: see [`Rollover`].
    pub fn rollover(&self, agent_id: Uuid, old_credential_id: Uuid) -> Rollover<F> {
        Rollover::new(self.client.clone(), agent_id, old_credential_id)
    }

    /// Revokes the credential for good; the agent keeps its other credentials.
    pub fn revoke(&self, agent_id: Uuid, credential_id: Uuid) -> RevokeCredential<F> {
        RevokeCredential {
            client: self.client.clone(),
            agent_id,
            credential_id,
        }
    }
}

/// A `POST /agents/{agentId}/credentials` request; from [`Credentials::generate`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct GenerateCredential<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
    expires_at: Option<Timestamp>,
}

impl<F: Flavor> GenerateCredential<F> {
    /// When the credential expires (default: never).
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    async fn run(self) -> Result<CredentialWithSecret> {
        let (id, body) = (
            self.agent_id,
            raw::types::NewCredential {
                expires_at: self.expires_at,
            },
        );
        self.client
            .seam()
            .call(
                Operation::GenerateCredential,
                (id, body),
                |raw, (id, body)| async move { raw.generate_credential(&id, &body).await },
            )
            .await
    }
}

send!(GenerateCredential => CredentialWithSecret);

/// A `POST …/credentials/{credentialId}/rotate` request; from [`Credentials::rotate`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct RotateCredential<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
    credential_id: Uuid,
    expires_at: Option<Timestamp>,
}

impl<F: Flavor> RotateCredential<F> {
    /// A new expiry for the credential (default: keep the current one).
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    async fn run(self) -> Result<CredentialWithSecret> {
        let (agent, credential) = (self.agent_id, self.credential_id);
        let body = raw::types::NewCredential {
            expires_at: self.expires_at,
        };
        self.client
            .seam()
            .call(
                Operation::RotateCredential,
                (agent, credential, body),
                |raw, (agent, credential, body)| async move {
                    raw.rotate_credential(&agent, &credential, &body).await
                },
            )
            .await
    }
}

send!(RotateCredential => CredentialWithSecret);

/// A `GET /agents/{agentId}/credentials` request; from [`Credentials::list`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct ListCredentials<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
}

impl<F: Flavor> ListCredentials<F> {
    async fn run(self) -> Result<Vec<Credential>> {
        let id = self.agent_id;
        let list = self
            .client
            .seam()
            .call(Operation::ListCredentials, id, |raw, id| async move {
                raw.list_credentials(&id).await
            })
            .await?;
        Ok(match list {
            raw::types::CredentialList::CredentialListEnvelope(envelope) => envelope.data,
            raw::types::CredentialList::Array(items) => items,
        })
    }
}

send!(ListCredentials => Vec<Credential>);

/// A `DELETE …/credentials/{credentialId}` request; from [`Credentials::revoke`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct RevokeCredential<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
    credential_id: Uuid,
}

impl<F: Flavor> RevokeCredential<F> {
    async fn run(self) -> Result<()> {
        let (agent, credential) = (self.agent_id, self.credential_id);
        self.client
            .seam()
            .call(
                Operation::RevokeCredential,
                (agent, credential),
                |raw, (agent, credential)| async move {
                    raw.revoke_credential(&agent, &credential).await
                },
            )
            .await
    }
}

send!(RevokeCredential => ());
