//! [`Rollover`]: replacing a credential that replicas share, without
//! downtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::auth::grant::prove;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::flavor::{Async, Flavor};
use crate::model::{Credential, CredentialStatus, CredentialWithSecret, Timestamp};

/// How long [`Rollover`] waits, by default, between publishing the new
/// secret and revoking the old credential: time for the replicas to read
/// it (a mounted secret file is updated within about a minute): 120 s.
pub const DEFAULT_ROLLOVER_GRACE: Duration = Duration::from_secs(120);

/// How long [`Rollover`] waits, by default, after a generation whose
/// outcome is unknown before listing the credentials again to see what it
/// did: a server may finish a request after the client gave up on it. The
/// wait is never shorter than the client's attempt timeout. 30 s.
pub const DEFAULT_ROLLOVER_SETTLE: Duration = Duration::from_secs(30);

/// The rollover of a shared credential; from
/// [`Credentials::rollover`](super::Credentials::rollover).
///
/// 0. **List** the agent's credentials: `old` must be one of its active
///    ones, or the rollover stops before anything is generated
///    ([`RolloverError::OldNotActive`]).
/// 1. **Generate** a second credential for the agent (an agent may hold
///    several active ones).
/// 2. **Prove** it: a token request with the new secret.
/// 3. **Publish** it: your function puts the secret where the replicas
///    read theirs (a secret manager, a mounted file).
/// 4. **Wait** the grace period, while the replicas switch.
/// 5. **Revoke** the old credential.
///
/// If the proof or the publication fails, the new credential is revoked
/// again and the old one keeps working ([`RolloverError::Undone`], or
/// [`RolloverError::Orphaned`] naming it if that revocation failed).
///
/// **A generation whose outcome is unknown** (its answer lost, a timeout
/// after sending, a 5xx: the server may have made the credential, and its
/// secret can never be seen again) is not taken for "nothing happened": the
/// rollover waits a settle delay ([`settle`](Self::settle), at least the
/// client's attempt timeout), lists the credentials again and reports the
/// active ones that appeared since its first listing
/// ([`RolloverError::Unresolved`]). It revokes none of them: nothing proves
/// which one is its own and which another operator's. Only when none
/// appeared does it report [`RolloverError::Undone`].
///
/// **Dropping the future** (a `timeout`, a cancelled task) at each step:
///
/// | Dropped during | What happens |
/// |---|---|
/// | the first listing | nothing was written. |
/// | generate | the generation runs on its own task and finishes; if it made the credential, that task revokes it. If its outcome is unknown, a `WARN` event (`tracing`) names the agent to check. |
/// | prove, publish | a task is spawned that revokes the new credential (as when the step fails): the old one keeps working. A publication cut half-way is yours to undo, as when your function fails. |
/// | the settle delay (after an unknown outcome) | a `WARN` event names the agent to check; nothing is revoked. |
/// | the grace wait, revoke | the secret is published: the rest of the rollover (the wait, the revocation of the old credential) runs on its own task and finishes; if that revocation fails, a `WARN` event names the credential. |
///
/// The spawned tasks run on the runtime the rollover was polled on; if
/// that runtime shuts down first, they stop with it: after the
/// publication the old credential may then stay active beside the new one
/// (both secrets held, nothing orphaned); before it, a new credential may
/// be left that nobody holds the secret of.
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
    settle: Duration,
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
    /// left behind (after a generation whose outcome was unknown: none
    /// appeared in a listing made after the settle delay). Safe to run
    /// again.
    #[error("rollover stopped at {step:?}, nothing changed: {source}")]
    Undone {
        /// Where it stopped.
        step: RolloverStep,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The credential to replace is not one of the agent's active
    /// credentials (a typo, another agent's credential, one already
    /// revoked): nothing was generated.
    #[error(
        "credential {old_credential_id} is not an active credential of agent {agent_id} ({}): nothing was generated",
        describe_status(.status.as_ref())
    )]
    OldNotActive {
        /// The agent.
        agent_id: Uuid,
        /// The credential asked for.
        old_credential_id: Uuid,
        /// Its status among the agent's credentials; `None`: the agent has
        /// no credential with that id.
        status: Option<CredentialStatus>,
    },
    /// The generation's outcome is unknown and the rollover cannot tell
    /// which new credential, if any, is its own: it revoked nothing. Any
    /// of `candidates` may be a credential nobody holds the secret of, or
    /// another operator's: check before revoking.
    #[error(
        "rollover stopped at {step:?}, outcome unknown; nothing was revoked: {}: {source}",
        describe_candidates(.candidates.as_deref())
    )]
    Unresolved {
        /// Where it stopped.
        step: RolloverStep,
        /// The active credentials that appeared since the first listing,
        /// as listed after the settle delay; `None`: that listing failed.
        candidates: Option<Vec<Uuid>>,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A new credential exists that nobody holds the secret of, and it
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

fn describe_status(status: Option<&CredentialStatus>) -> String {
    match status {
        Some(status) => format!("it is {status:?}"),
        None => "the agent has no credential with this id".into(),
    }
}

fn describe_candidates(candidates: Option<&[Uuid]>) -> String {
    match candidates {
        Some(ids) => format!(
            "credentials that appeared meanwhile, one may be an orphan of this rollover \
             (nobody holds its secret), any may be another operator's: {ids:?}"
        ),
        None => "the credentials could not be listed again: check the agent's credentials".into(),
    }
}

impl<F: Flavor> Rollover<F> {
    pub(crate) fn new(client: Client<F>, agent_id: Uuid, old: Uuid) -> Self {
        Self {
            client,
            agent_id,
            old,
            grace: DEFAULT_ROLLOVER_GRACE,
            settle: DEFAULT_ROLLOVER_SETTLE,
            expires_at: None,
        }
    }

    /// How long to wait between publishing and revoking (default
    /// [`DEFAULT_ROLLOVER_GRACE`]).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long to wait, after a generation whose outcome is unknown,
    /// before listing the credentials again (default
    /// [`DEFAULT_ROLLOVER_SETTLE`]); never less than the client's attempt
    /// timeout, whatever is set here.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
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
    /// (shown only now) and puts it where the replicas read it. See
    /// [`Rollover`] for what a failure, or a drop of this future, leaves.
    pub async fn run<P, Fut>(self, publish: P) -> Result<RolledOver, RolloverError>
    where
        P: FnOnce(CredentialWithSecret) -> Fut,
        Fut: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
    {
        let listed = self
            .client
            .credentials()
            .list(self.agent_id)
            .send()
            .await
            .map_err(|e| RolloverError::Undone {
                step: RolloverStep::List,
                source: e.into(),
            })?;
        let before = active_ids(&listed);
        // Checked before anything is written: revoking a wrong id at the end
        // would leave the real old credential (perhaps the leaked one) active.
        if !before.contains(&self.old) {
            return Err(RolloverError::OldNotActive {
                agent_id: self.agent_id,
                old_credential_id: self.old,
                status: listed
                    .iter()
                    .find(|c| c.credential_id == self.old)
                    .map(|c| c.status.clone()),
            });
        }
        let new = match self.generate().await {
            Ok(new) => new,
            Err(e) if may_have_been_applied(&e) => {
                return Err(self.settle_and_recheck(&before, e).await);
            }
            Err(e) => {
                return Err(RolloverError::Undone {
                    step: RolloverStep::Generate,
                    source: e.into(),
                });
            }
        };
        let new_id = new.credential_id;
        // Armed with no `.await` since the answer arrived: a drop from here
        // until the publication is done revokes the new credential.
        let mut guard = UndoGuard {
            undo: self.undoer(),
            armed: Some(new_id),
        };
        if let Err(e) = prove(
            self.client.seam().token_endpoint(),
            new.client_id.to_string(),
            new.client_secret.clone().into(),
        )
        .await
        {
            // The guard stays armed through the undo: a drop mid-way revokes again.
            let error = self.undo(new_id, RolloverStep::Prove, e.into()).await;
            guard.armed = None;
            return Err(error);
        }
        if let Err(e) = publish(new).await {
            let error = self.undo(new_id, RolloverStep::Publish, e).await;
            guard.armed = None;
            return Err(error);
        }
        guard.armed = None;
        // Published: replicas may use the new secret now, so from here on
        // the rollover finishes on its own task, whether or not the caller
        // stays to hear how it ended.
        let finish = finish(self.undoer(), self.old, new_id, self.grace);
        let unclaimed = |result: Result<RolledOver, RolloverError>| {
            if let Err(e) = result {
                tracing::warn!(error = %e, "a rollover dropped after publishing did not finish");
            }
        };
        match Detached::run(finish, unclaimed).await {
            Some(result) => result,
            None => Err(RolloverError::OldNotRevoked {
                new_credential_id: new_id,
                old_credential_id: self.old,
                source: Error::outcome_unknown(
                    "the task revoking the old credential ended early",
                    "list the agent's credentials",
                ),
            }),
        }
    }

    fn undoer(&self) -> Undoer {
        Undoer {
            client: self.client.clone(),
            agent_id: self.agent_id,
        }
    }

    /// Generates the new credential on its own task: if the caller goes
    /// away meanwhile, the task still gets the answer and revokes what it
    /// made (only its answer proves which credential is the rollover's).
    async fn generate(&self) -> crate::Result<CredentialWithSecret> {
        let mut request = self.client.credentials().generate(self.agent_id);
        if let Some(at) = self.expires_at {
            request = request.expires_at(at);
        }
        let undo = self.undoer();
        let unclaimed = move |result: crate::Result<CredentialWithSecret>| match result {
            Ok(new) => undo.spawn_revoke(new.credential_id),
            Err(e) if may_have_been_applied(&e) => tracing::warn!(
                agent_id = %undo.agent_id,
                error = %e,
                "a rollover was dropped while generating a credential, whose outcome is unknown: \
                 check the agent's credentials for one nobody holds the secret of"
            ),
            Err(_) => {}
        };
        Detached::run(request.send(), unclaimed)
            .await
            .unwrap_or_else(|| {
                Err(Error::outcome_unknown(
                    "the task generating the credential ended without an answer",
                    "list the agent's credentials",
                ))
            })
    }

    /// The wait before the re-listing after an unknown outcome.
    fn settle_delay(&self) -> Duration {
        self.settle.max(self.client.seam().attempt_timeout())
    }

    /// After a generation whose outcome is unknown: waits the settle
    /// delay, lists again and reports what appeared, revoking nothing.
    async fn settle_and_recheck(&self, before: &BTreeSet<Uuid>, cause: Error) -> RolloverError {
        let step = RolloverStep::Generate;
        let mut report = WarnOnDrop(Some(self.agent_id));
        tokio::time::sleep(self.settle_delay()).await;
        let listed = self.client.credentials().list(self.agent_id).send().await;
        report.0 = None;
        match listed {
            Ok(now) => {
                let appeared: Vec<Uuid> = active_ids(&now).difference(before).copied().collect();
                if appeared.is_empty() {
                    RolloverError::Undone {
                        step,
                        source: cause.into(),
                    }
                } else {
                    RolloverError::Unresolved {
                        step,
                        candidates: Some(appeared),
                        source: cause.into(),
                    }
                }
            }
            Err(_) => RolloverError::Unresolved {
                step,
                candidates: None,
                source: cause.into(),
            },
        }
    }

    /// Revokes the new credential after a later step failed.
    async fn undo(
        &self,
        new: Uuid,
        step: RolloverStep,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> RolloverError {
        match self.undoer().revoke(new).await {
            Ok(()) => RolloverError::Undone { step, source },
            Err(_) => RolloverError::Orphaned {
                step,
                orphans: vec![new],
                source,
            },
        }
    }
}

/// The ids of the active credentials of a listing.
fn active_ids(listed: &[Credential]) -> BTreeSet<Uuid> {
    listed
        .iter()
        .filter(|c| c.status == CredentialStatus::Active)
        .map(|c| c.credential_id)
        .collect()
}

/// Whether a failed generation may have made the credential: anything but
/// a refusal the server gave before acting, or a request never sent. A 5xx
/// counts (the retry rules count it as possibly applied), and so does an
/// answer that could not be read.
fn may_have_been_applied(e: &Error) -> bool {
    !matches!(
        e.kind(),
        ErrorKind::Unauthorized
            | ErrorKind::Forbidden
            | ErrorKind::MissingScope
            | ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::Validation
            | ErrorKind::RateLimited
            | ErrorKind::InvalidInput
            | ErrorKind::Config
            | ErrorKind::Connect
            | ErrorKind::TokenSource
    )
}

/// The grace wait and the revocation of the old credential.
async fn finish(
    undo: Undoer,
    old: Uuid,
    new: Uuid,
    grace: Duration,
) -> Result<RolledOver, RolloverError> {
    tokio::time::sleep(grace).await;
    if let Err(e) = undo.revoke(old).await {
        // The answer was lost or refused: what does the server say now?
        let listed = undo.client.credentials().list(undo.agent_id).send().await;
        let still_active = listed.map_or(true, |l| active_ids(&l).contains(&old));
        if still_active {
            return Err(RolloverError::OldNotRevoked {
                new_credential_id: new,
                old_credential_id: old,
                source: e,
            });
        }
    }
    Ok(RolledOver {
        new_credential_id: new,
        revoked_credential_id: old,
    })
}

/// What revokes a credential of the agent, now or on a task of its own.
#[derive(Clone)]
struct Undoer {
    client: Client,
    agent_id: Uuid,
}

impl Undoer {
    async fn revoke(&self, id: Uuid) -> crate::Result<()> {
        self.client
            .credentials()
            .revoke(self.agent_id, id)
            .send()
            .await
    }

    /// Revokes `id` on a task of its own (the caller is going away); a
    /// failure is logged, as nobody is left to be told.
    fn spawn_revoke(&self, id: Uuid) {
        let undo = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                agent_id = %self.agent_id,
                credential_id = %id,
                "a rollover was dropped outside a runtime: revoke this credential by hand"
            );
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = undo.revoke(id).await {
                tracing::warn!(
                    agent_id = %undo.agent_id,
                    credential_id = %id,
                    error = %e,
                    "a dropped rollover could not revoke its new credential: revoke it by hand"
                );
            }
        });
    }
}

/// Revokes the new credential if dropped while armed.
struct UndoGuard {
    undo: Undoer,
    armed: Option<Uuid>,
}

impl Drop for UndoGuard {
    fn drop(&mut self) {
        if let Some(id) = self.armed.take() {
            self.undo.spawn_revoke(id);
        }
    }
}

/// Says, if dropped while armed, that a generation's outcome was left
/// unchecked.
struct WarnOnDrop(Option<Uuid>);

impl Drop for WarnOnDrop {
    fn drop(&mut self) {
        if let Some(agent_id) = self.0 {
            tracing::warn!(
                %agent_id,
                "a rollover was dropped while checking a generation whose outcome is unknown: \
                 check the agent's credentials for one nobody holds the secret of"
            );
        }
    }
}

/// Work run on a task of its own, so that it finishes even if the future
/// waiting for it is dropped; `unclaimed` gets the result nobody waited for.
struct Detached<T: Send + 'static> {
    answer: oneshot::Receiver<T>,
    unclaimed: Arc<dyn Fn(T) + Send + Sync>,
}

impl<T: Send + 'static> Detached<T> {
    /// Runs `work` on a task and waits for it; `None` if the task ended
    /// without a result (it panicked, or its runtime shut down). Outside a
    /// tokio runtime, runs `work` here.
    async fn run(
        work: impl Future<Output = T> + Send + 'static,
        unclaimed: impl Fn(T) + Send + Sync + 'static,
    ) -> Option<T> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Some(work.await);
        };
        let (tell, answer) = oneshot::channel();
        // Armed before the spawn: a drop of this future from here on hands
        // the result to `unclaimed`, by the task or by the drop below.
        let detached = Detached {
            answer,
            unclaimed: Arc::new(unclaimed),
        };
        let unclaimed = Arc::clone(&detached.unclaimed);
        runtime.spawn(async move {
            let result = work.await;
            if let Err(result) = tell.send(result) {
                unclaimed(result);
            }
        });
        detached.wait().await
    }

    async fn wait(mut self) -> Option<T> {
        (&mut self.answer).await.ok()
    }
}

impl<T: Send + 'static> Drop for Detached<T> {
    fn drop(&mut self) {
        // Closed first, so that the task's send fails from now on; a result
        // sent before is still here to take.
        self.answer.close();
        if let Ok(result) = self.answer.try_recv() {
            (self.unclaimed)(result);
        }
    }
}
