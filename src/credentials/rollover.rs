//! [`Rollover`]: replacing a credential that replicas share, without
//! downtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use uuid::Uuid;

use crate::auth::grant::prove;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::flavor::{Async, Flavor};
use crate::model::{CredentialStatus, CredentialWithSecret, Timestamp};

/// How long [`Rollover`] waits, by default, between publishing the new
/// secret and revoking the old credential: time for the replicas to read
/// it (a mounted secret file is updated within about a minute).
pub const DEFAULT_ROLLOVER_GRACE: Duration = Duration::from_secs(120);

/// The rollover of a shared credential; from
/// [`Credentials::rollover`](super::Credentials::rollover).
///
/// 1. **Generate** a second credential for the agent (an agent may hold
///    several active ones).
/// 2. **Prove** it: a token request with the new secret.
/// 3. **Publish** it: your function puts the secret where the replicas
///    read theirs (a secret manager, a mounted file).
/// 4. **Wait** the grace period, while the replicas switch.
/// 5. **Revoke** the old credential.
///
/// Nothing is left half-done: if the proof or the publication fails, the
/// new credential is revoked again and the old one keeps working. When
/// the answer to the generation is lost (an
/// [`OutcomeUnknown`](ErrorKind::OutcomeUnknown)), its secret can never be
/// seen again, so the credentials are listed to find the one that may have
/// been made, and it is revoked rather than left behind.
///
/// ```no_run
/// use std::time::Duration;
/// use sentryagent_idp::{Client, ExposeSecret};
///
/// # async fn run(client: Client, agent: uuid::Uuid, old: uuid::Uuid) -> Result<(), Box<dyn std::error::Error>> {
/// let done = client
///     .credentials()
///     .rollover(agent, old)
///     .grace(Duration::from_secs(60))
///     .run(|new| async move {
///         // Where the replicas read it (`SecretSource::file`).
///         std::fs::write("/etc/agent/client-secret", new.client_secret.expose_secret())?;
///         Ok(())
///     })
///     .await?;
/// println!("now {}; {} revoked", done.new_credential_id, done.revoked_credential_id);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a rollover does nothing until you `.run()` it"]
pub struct Rollover<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Uuid,
    old: Uuid,
    grace: Duration,
    expires_at: Option<Timestamp>,
}

/// What a rollover did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RolledOver {
    /// The credential now in use.
    pub new_credential_id: Uuid,
    /// The credential revoked.
    pub revoked_credential_id: Uuid,
}

/// A step of a rollover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RolloverStep {
    /// Listing the credentials before generating.
    List,
    /// Generating the new credential.
    Generate,
    /// The token request with the new secret.
    Prove,
    /// Your publishing function.
    Publish,
    /// Revoking the old credential.
    Revoke,
}

/// Why a rollover stopped, and in what state it left the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RolloverError {
    /// Nothing changed: the old credential still works, and no new one is
    /// left behind. Safe to run again.
    #[error("rollover stopped at {step:?}, nothing changed: {source}")]
    Undone {
        /// Where it stopped.
        step: RolloverStep,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A new credential may exist that nobody holds the secret of, and it
    /// could not be revoked: revoke it by hand.
    #[error("rollover stopped at {step:?}; revoke the orphaned credentials {orphans:?}: {source}")]
    Orphaned {
        /// Where it stopped.
        step: RolloverStep,
        /// The credentials to revoke.
        orphans: Vec<Uuid>,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The new credential is live and published, but the old one is still
    /// active: revoke it by hand.
    #[error(
        "the new credential {new_credential_id} is live, but {old_credential_id} could not be revoked: {source}"
    )]
    OldNotRevoked {
        /// The credential now in use.
        new_credential_id: Uuid,
        /// The credential still active.
        old_credential_id: Uuid,
        /// Why.
        source: Error,
    },
}

impl<F: Flavor> Rollover<F> {
    pub(crate) fn new(client: Client<F>, agent_id: Uuid, old: Uuid) -> Self {
        Self {
            client,
            agent_id,
            old,
            grace: DEFAULT_ROLLOVER_GRACE,
            expires_at: None,
        }
    }

    /// How long to wait between publishing and revoking (default
    /// [`DEFAULT_ROLLOVER_GRACE`]).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// When the new credential expires (default: never).
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }
}

impl Rollover<Async> {
    /// Runs the rollover; `publish` gets the new credential with its secret
    /// (shown only now) and puts it where the replicas read it.
    pub async fn run<P, Fut>(self, publish: P) -> Result<RolledOver, RolloverError>
    where
        P: FnOnce(CredentialWithSecret) -> Fut,
        Fut: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
    {
        let credentials = self.client.credentials();
        let before = self.active_ids().await.map_err(|e| RolloverError::Undone {
            step: RolloverStep::List,
            source: e.into(),
        })?;
        let mut generate = credentials.generate(self.agent_id);
        if let Some(at) = self.expires_at {
            generate = generate.expires_at(at);
        }
        let new = match generate.send().await {
            Ok(new) => new,
            Err(e) if e.kind() == ErrorKind::OutcomeUnknown => {
                return Err(self.revoke_orphans(&before, e).await);
            }
            Err(e) => {
                return Err(RolloverError::Undone {
                    step: RolloverStep::Generate,
                    source: e.into(),
                });
            }
        };
        let new_id = new.credential_id;
        if let Err(e) = prove(
            self.client.seam().token_endpoint(),
            new.client_id.to_string(),
            new.client_secret.clone().into(),
        )
        .await
        {
            return Err(self.undo(new_id, RolloverStep::Prove, e.into()).await);
        }
        if let Err(e) = publish(new).await {
            return Err(self.undo(new_id, RolloverStep::Publish, e).await);
        }
        tokio::time::sleep(self.grace).await;
        match credentials.revoke(self.agent_id, self.old).send().await {
            Ok(()) => {}
            // The answer was lost or refused: what does the server say now?
            Err(e) => match self.active_ids().await {
                Ok(active) if !active.contains(&self.old) => {}
                _ => {
                    return Err(RolloverError::OldNotRevoked {
                        new_credential_id: new_id,
                        old_credential_id: self.old,
                        source: e,
                    });
                }
            },
        }
        Ok(RolledOver {
            new_credential_id: new_id,
            revoked_credential_id: self.old,
        })
    }

    async fn active_ids(&self) -> crate::Result<BTreeSet<Uuid>> {
        let list = self.client.credentials().list(self.agent_id).send().await?;
        Ok(list
            .into_iter()
            .filter(|c| c.status == CredentialStatus::Active)
            .map(|c| c.credential_id)
            .collect())
    }

    /// After a generation whose answer was lost: revokes the credentials
    /// that appeared since `before`, whose secret nobody will ever see.
    async fn revoke_orphans(&self, before: &BTreeSet<Uuid>, cause: Error) -> RolloverError {
        let step = RolloverStep::Generate;
        let orphans: Vec<Uuid> = match self.active_ids().await {
            Ok(now) => now.difference(before).copied().collect(),
            Err(_) => {
                return RolloverError::Orphaned {
                    step,
                    orphans: Vec::new(),
                    source: cause.into(),
                };
            }
        };
        let mut left = Vec::new();
        for id in orphans {
            if self.revoke(id).await.is_err() {
                left.push(id);
            }
        }
        if left.is_empty() {
            RolloverError::Undone {
                step,
                source: cause.into(),
            }
        } else {
            RolloverError::Orphaned {
                step,
                orphans: left,
                source: cause.into(),
            }
        }
    }

    /// Revokes the new credential after a later step failed.
    async fn undo(
        &self,
        new: Uuid,
        step: RolloverStep,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> RolloverError {
        match self.revoke(new).await {
            Ok(()) => RolloverError::Undone { step, source },
            Err(_) => RolloverError::Orphaned {
                step,
                orphans: vec![new],
                source,
            },
        }
    }

    async fn revoke(&self, id: Uuid) -> crate::Result<()> {
        self.client
            .credentials()
            .revoke(self.agent_id, id)
            .send()
            .await
    }
}
