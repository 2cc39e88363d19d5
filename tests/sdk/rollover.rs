//! `credentials().rollover`: a shared credential replaced without downtime,
//! and nothing left half-done when a step fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::model::CredentialStatus;
use sentryagent_idp::testing::{AgentSeed, Failure, FakeAgentIdp};
use sentryagent_idp::{Client, ExposeSecret, Operation, RolloverError, RolloverStep, SecretString};

/// The agent, its first credential, and where its replicas read the secret.
struct Fleet {
    fake: FakeAgentIdp,
    admin: Client,
    agent: uuid::Uuid,
    old: uuid::Uuid,
    published: Arc<Mutex<SecretString>>,
}

async fn fleet() -> Fleet {
    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let (old, secret) = fake.seed_credential(agent);
    let admin = fake.client_builder().build().unwrap();
    Fleet {
        fake,
        admin,
        agent,
        old,
        published: Arc::new(Mutex::new(secret)),
    }
}

impl Fleet {
    /// A replica reading its secret from the published place.
    fn replica(&self) -> Client {
        let published = Arc::clone(&self.published);
        Client::builder()
            .base_url(self.fake.base_url())
            .client_id(self.agent.to_string())
            .scopes([sentryagent_idp::Scope::AGENTS_READ])
            .client_secret_source(SecretSource::from_fn(move || {
                Ok(published.lock().unwrap().clone())
            }))
            .build()
            .unwrap()
    }

    /// The rollover of the first credential, with no grace period.
    fn rollover(&self) -> sentryagent_idp::Rollover {
        self.admin
            .credentials()
            .rollover(self.agent, self.old)
            .grace(Duration::ZERO)
    }

    /// A new replica's call succeeds.
    async fn a_replica_works(&self) {
        self.replica()
            .agents()
            .get(self.agent)
            .send()
            .await
            .unwrap();
    }

    async fn statuses(&self) -> Vec<(uuid::Uuid, CredentialStatus)> {
        let list = self
            .admin
            .credentials()
            .list(self.agent)
            .send()
            .await
            .unwrap();
        list.into_iter()
            .map(|c| (c.credential_id, c.status))
            .collect()
    }

    async fn active(&self) -> Vec<uuid::Uuid> {
        self.statuses()
            .await
            .into_iter()
            .filter(|(_, s)| *s == CredentialStatus::Active)
            .map(|(id, _)| id)
            .collect()
    }
}

#[tokio::test]
async fn the_replicas_keep_working_through_a_rollover() {
    let fleet = fleet().await;
    let replicas = [fleet.replica(), fleet.replica()];
    for replica in &replicas {
        replica.agents().get(fleet.agent).send().await.unwrap();
    }
    let published = Arc::clone(&fleet.published);
    let done = fleet
        .admin
        .credentials()
        .rollover(fleet.agent, fleet.old)
        .grace(Duration::from_millis(100))
        .run(|new| async move {
            *published.lock().unwrap() = new.client_secret.into();
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(done.revoked_credential_id, fleet.old);
    assert_eq!(fleet.active().await, vec![done.new_credential_id]);
    // Each replica's next token request is refused with the old secret,
    // reads the published one and succeeds: no redeploy, no failed call.
    for replica in &replicas {
        replica.clear_token_cache();
        replica.agents().get(fleet.agent).send().await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_publication_revokes_the_new_credential_again() {
    let fleet = fleet().await;
    let error = fleet
        .rollover()
        .run(|_| async { Err("the vault is sealed".into()) })
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RolloverError::Undone {
                step: RolloverStep::Publish,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("the vault is sealed"));
    // The old credential is the only active one; the new one is revoked.
    assert_eq!(fleet.active().await, vec![fleet.old]);
    assert_eq!(fleet.statuses().await.len(), 2);
    fleet.a_replica_works().await;
}

#[tokio::test]
async fn a_credential_that_fails_its_proof_is_never_published() {
    let fleet = fleet().await;
    // The admin's own token first, so the failure hits the proof.
    fleet.admin.access_token().await.unwrap();
    fleet
        .fake
        .fail_next(Operation::IssueToken, Failure::Status(400), 1);
    let mut published = false;
    let error = fleet
        .rollover()
        .run(|_| {
            published = true;
            async { Ok(()) }
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RolloverError::Undone {
                step: RolloverStep::Prove,
                ..
            }
        ),
        "{error}"
    );
    assert!(!published);
    assert_eq!(fleet.active().await, vec![fleet.old]);
}

#[tokio::test]
async fn a_lost_answer_to_the_generation_leaves_no_orphan() {
    let fleet = fleet().await;
    fleet.admin.access_token().await.unwrap();
    // The credential is made, but its answer (and secret) never arrives.
    fleet
        .fake
        .fail_next(Operation::GenerateCredential, Failure::DropAnswer, 1);
    let error = fleet
        .rollover()
        .run(|_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RolloverError::Undone {
                step: RolloverStep::Generate,
                ..
            }
        ),
        "{error}"
    );
    // It was made (two credentials exist), and found and revoked.
    assert_eq!(fleet.statuses().await.len(), 2);
    assert_eq!(fleet.active().await, vec![fleet.old]);
    // Nothing changed for the fleet: running again works.
    let published = Arc::clone(&fleet.published);
    fleet
        .rollover()
        .run(|new| async move {
            *published.lock().unwrap() = new.client_secret.into();
            Ok(())
        })
        .await
        .unwrap();
    fleet.a_replica_works().await;
}

#[tokio::test]
async fn the_new_secret_is_in_no_error() {
    let fleet = fleet().await;
    let seen = Arc::new(Mutex::new(None::<SecretString>));
    let keep = Arc::clone(&seen);
    let error = fleet
        .rollover()
        .run(|new| async move {
            *keep.lock().unwrap() = Some(new.client_secret.into());
            Err("refused".into())
        })
        .await
        .unwrap_err();
    let secret = seen.lock().unwrap().clone().unwrap();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(secret.expose_secret()));
}
