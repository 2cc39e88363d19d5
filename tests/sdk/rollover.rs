//! `credentials().rollover`: a shared credential replaced without downtime,
//! and nothing left half-done when a step fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::scripted::{Act, Scripted, scripted_static_builder};
use crate::support::{AGENT_ID, agent_id};
use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::model::CredentialStatus;
use sentryagent_idp::testing::{AgentSeed, Failure, FakeAgentIdp};
use sentryagent_idp::{
    Client, DEFAULT_ROLLOVER_SETTLE, ExposeSecret, Operation, RolloverError, RolloverStep,
    SecretString,
};

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

/// A lost answer to the generation: the credential was made, and its
/// secret will never be seen. Nothing proves it is the rollover's (another
/// operator may have generated one meanwhile), so it is reported, not
/// revoked; once revoked by hand, running again works.
#[tokio::test]
async fn a_lost_answer_to_the_generation_is_reported_with_the_credential_it_made() {
    let fleet = fleet().await;
    // A short attempt timeout: the settle delay is never shorter.
    let admin = fleet
        .fake
        .client_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    admin.access_token().await.unwrap();
    // The credential is made, but its answer (and secret) never arrives.
    fleet
        .fake
        .fail_next(Operation::GenerateCredential, Failure::DropAnswer, 1);
    let error = admin
        .credentials()
        .rollover(fleet.agent, fleet.old)
        .grace(Duration::ZERO)
        .settle(Duration::ZERO)
        .run(|_| async { Ok(()) })
        .await
        .unwrap_err();
    let active = fleet.active().await;
    assert_eq!(active.len(), 2, "made, and not revoked: {active:?}");
    let made = active.iter().copied().find(|id| *id != fleet.old).unwrap();
    match &error {
        RolloverError::Unresolved {
            step: RolloverStep::Generate,
            candidates: Some(candidates),
            ..
        } => assert_eq!(candidates, &vec![made]),
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains(&made.to_string()), "{error}");
    fleet
        .admin
        .credentials()
        .revoke(fleet.agent, made)
        .send()
        .await
        .unwrap();
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

/// Item 15: an `old` id that is not one of the agent's active credentials
/// (a typo, another agent's credential, one already revoked) is refused
/// before anything is generated, and the error names it.
#[tokio::test]
async fn a_rollover_of_an_id_that_is_not_an_active_credential_of_the_agent_generates_nothing() {
    let fleet = fleet().await;
    let other_agent = fleet.fake.seed_agent(AgentSeed::new());
    let (others, _) = fleet.fake.seed_credential(other_agent);
    let (revoked, _) = fleet.fake.seed_credential(fleet.agent);
    fleet
        .admin
        .credentials()
        .revoke(fleet.agent, revoked)
        .send()
        .await
        .unwrap();
    let typo = uuid::Uuid::new_v4();
    for wrong in [typo, others, revoked] {
        let mut published = false;
        let result = fleet
            .admin
            .credentials()
            .rollover(fleet.agent, wrong)
            .grace(Duration::ZERO)
            .run(|_| {
                published = true;
                async { Ok(()) }
            })
            .await;
        // Nothing generated: the agent still has its two credentials, the
        // old one the only active one.
        assert_eq!(fleet.statuses().await.len(), 2, "{wrong}: {result:?}");
        assert_eq!(fleet.active().await, vec![fleet.old]);
        assert!(!published);
        let error = result.unwrap_err();
        assert!(error.to_string().contains(&wrong.to_string()), "{error}");
        match error {
            RolloverError::OldNotActive {
                agent_id,
                old_credential_id,
                status,
            } => {
                assert_eq!((agent_id, old_credential_id), (fleet.agent, wrong));
                let expected = (wrong == revoked).then_some(CredentialStatus::Revoked);
                assert_eq!(status, expected);
            }
            other => panic!("{other}"),
        }
    }
}

/// A credential of the scripted agent, as the listing shows it.
fn credential_json(id: uuid::Uuid, status: &str) -> Value {
    json!({
        "credentialId": id,
        "clientId": AGENT_ID,
        "status": status,
        "createdAt": "2026-03-28T09:00:00.000Z",
        "expiresAt": null,
        "revokedAt": null,
    })
}

/// The listing of these active credentials.
fn listing(active: &[uuid::Uuid]) -> Act {
    let data: Vec<Value> = active
        .iter()
        .map(|id| credential_json(*id, "active"))
        .collect();
    Act::json(200, json!({ "data": data }))
}

/// Whether the scripted server was asked to revoke anything.
fn revoked_any(server: &Scripted) -> bool {
    server.seen().iter().any(|(method, _)| method == "DELETE")
}

/// Item 16: the generation's answer is lost, and meanwhile another operator
/// generated a credential for the same agent. Nothing proves which new
/// credential is the rollover's, so it revokes none and names both.
#[tokio::test(start_paused = true)]
async fn a_lost_generation_answer_revokes_no_credential_another_operator_made() {
    let (old, made, theirs) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    // List, generate (read, then the connection closes: sent, no answer),
    // then every listing shows both new credentials.
    let server = Scripted::start(vec![(
        "/credentials",
        vec![listing(&[old]), Act::Close, listing(&[old, made, theirs])],
    )])
    .await;
    let client = scripted_static_builder(&server.base_url).build().unwrap();
    let error = client
        .credentials()
        .rollover(agent_id(), old)
        .grace(Duration::ZERO)
        .run(|_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(!revoked_any(&server), "revoked: {:?}", server.seen());
    let text = error.to_string();
    assert!(text.contains(&made.to_string()), "{text}");
    assert!(text.contains(&theirs.to_string()), "{text}");
    match error {
        RolloverError::Unresolved {
            step: RolloverStep::Generate,
            candidates: Some(mut candidates),
            ..
        } => {
            candidates.sort();
            let mut expected = vec![made, theirs];
            expected.sort();
            assert_eq!(candidates, expected);
        }
        other => panic!("{other}"),
    }
}

/// Item 17: a generation answered 500 may have been applied (the retry
/// rules count it so): the rollover re-lists and reports the credential
/// it finds, never "nothing changed".
#[tokio::test(start_paused = true)]
async fn a_generation_answered_500_that_was_applied_is_not_reported_as_nothing_changed() {
    let (old, made) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let failed = Act::json(
        500,
        json!({"code": "INTERNAL_ERROR", "message": "the commit succeeded, the answer did not"}),
    );
    let server = Scripted::start(vec![(
        "/credentials",
        vec![listing(&[old]), failed, listing(&[old, made])],
    )])
    .await;
    let client = scripted_static_builder(&server.base_url).build().unwrap();
    let error = client
        .credentials()
        .rollover(agent_id(), old)
        .grace(Duration::ZERO)
        .run(|_| async { Ok(()) })
        .await
        .unwrap_err();
    assert!(!revoked_any(&server), "revoked: {:?}", server.seen());
    match error {
        RolloverError::Unresolved {
            step: RolloverStep::Generate,
            candidates: Some(candidates),
            ..
        } => assert_eq!(candidates, vec![made]),
        other => panic!("{other}"),
    }
}

/// Item 17: a 500 that made nothing is "nothing changed", but only once a
/// listing after the settle delay, never shorter than the attempt timeout,
/// says so.
#[tokio::test(start_paused = true)]
async fn a_generation_answered_500_is_called_undone_only_after_the_settle_delay() {
    let old = uuid::Uuid::new_v4();
    let failed = Act::json(500, json!({"code": "INTERNAL_ERROR", "message": "failed"}));
    let server = Scripted::start(vec![(
        "/credentials",
        vec![listing(&[old]), failed, listing(&[old])],
    )])
    .await;
    let client = scripted_static_builder(&server.base_url)
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let error = client
        .credentials()
        .rollover(agent_id(), old)
        .settle(Duration::from_secs(1))
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
    assert!(
        start.elapsed() >= Duration::from_secs(40),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.count("/credentials"), 3);
}

/// Item 17: the server completes the generation after the client's attempt
/// timed out. A listing right after the timeout finds nothing; the
/// rollover waits its settle delay and then finds the credential.
#[tokio::test(start_paused = true)]
async fn a_generation_completed_after_the_client_timed_out_is_found_after_the_settle_delay() {
    let (old, made) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let start = tokio::time::Instant::now();
    // The attempt times out at 2 s; the server commits at 6 s.
    let slow = Act::After(Duration::from_secs(60), Box::new(Act::Close));
    let later = Act::Switch {
        at: start + Duration::from_secs(6),
        before: Box::new(listing(&[old])),
        after: Box::new(listing(&[old, made])),
    };
    let server = Scripted::start(vec![("/credentials", vec![listing(&[old]), slow, later])]).await;
    let client = scripted_static_builder(&server.base_url)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let error = client
        .credentials()
        .rollover(agent_id(), old)
        .grace(Duration::ZERO)
        .run(|_| async { Ok(()) })
        .await
        .unwrap_err();
    // Re-listed only after the timeout (2 s) and the settle delay.
    assert!(start.elapsed() >= Duration::from_secs(2) + DEFAULT_ROLLOVER_SETTLE);
    match error {
        RolloverError::Unresolved {
            step: RolloverStep::Generate,
            candidates: Some(candidates),
            ..
        } => assert_eq!(candidates, vec![made]),
        other => panic!("{other}"),
    }
    assert!(!revoked_any(&server), "revoked: {:?}", server.seen());
}

/// Polls `done` every 10 ms until it holds; false after `limit`.
async fn eventually<Fut: std::future::Future<Output = bool>>(
    limit: Duration,
    mut done: impl FnMut() -> Fut,
) -> bool {
    let rounds = limit.as_millis() / 10;
    for _ in 0..rounds {
        if done().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done().await
}

/// Runs `rollover` until `reached` holds (the step under test has begun),
/// then drops it. The drop is tied to the step, not to a timer.
async fn drop_when<Fut: std::future::Future<Output = bool>>(
    rollover: impl std::future::Future<Output = Result<sentryagent_idp::RolledOver, RolloverError>>,
    reached: impl FnMut() -> Fut,
) {
    tokio::select! {
        result = rollover => panic!("the rollover ended before the drop: {result:?}"),
        reached = eventually(Duration::from_secs(20), reached) => assert!(reached, "the step was never reached"),
    }
}

/// Item 18, drop during generate: the generation finishes on its own task,
/// which revokes the credential it made.
#[tokio::test]
async fn a_rollover_dropped_while_generating_revokes_the_credential_made() {
    let fleet = fleet().await;
    fleet.admin.access_token().await.unwrap();
    fleet.fake.fail_next(
        Operation::GenerateCredential,
        Failure::Delay(Duration::from_secs(2)),
        1,
    );
    let fake = &fleet.fake;
    drop_when(fleet.rollover().run(|_| async { Ok(()) }), || async {
        fake.requests_seen(Operation::GenerateCredential) == 1
    })
    .await;
    // The credential was made after the drop, and revoked.
    let settled = eventually(Duration::from_secs(20), || async {
        fleet.statuses().await.len() == 2 && fleet.active().await == vec![fleet.old]
    })
    .await;
    assert!(settled, "{:?}", fleet.statuses().await);
}

/// Item 18, drop during the proof: the new credential is revoked.
#[tokio::test]
async fn a_rollover_dropped_while_proving_revokes_the_new_credential() {
    let fleet = fleet().await;
    fleet.admin.access_token().await.unwrap();
    let tokens = fleet.fake.requests_seen(Operation::IssueToken);
    fleet.fake.fail_next(
        Operation::IssueToken,
        Failure::Delay(Duration::from_secs(2)),
        1,
    );
    let fake = &fleet.fake;
    let mut published = false;
    drop_when(
        fleet.rollover().run(|_| {
            published = true;
            async { Ok(()) }
        }),
        || async { fake.requests_seen(Operation::IssueToken) > tokens },
    )
    .await;
    assert!(!published);
    let settled = eventually(Duration::from_secs(20), || async {
        fleet.statuses().await.len() == 2 && fleet.active().await == vec![fleet.old]
    })
    .await;
    assert!(settled, "{:?}", fleet.statuses().await);
    fleet.a_replica_works().await;
}

/// Item 18, drop during the publication: the new credential is revoked,
/// as when the publication fails.
#[tokio::test]
async fn a_rollover_dropped_while_publishing_revokes_the_new_credential() {
    let fleet = fleet().await;
    let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&entered);
    drop_when(
        fleet.rollover().run(|_| async move {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }),
        || async { entered.load(std::sync::atomic::Ordering::SeqCst) },
    )
    .await;
    let settled = eventually(Duration::from_secs(20), || async {
        fleet.statuses().await.len() == 2 && fleet.active().await == vec![fleet.old]
    })
    .await;
    assert!(settled, "{:?}", fleet.statuses().await);
    fleet.a_replica_works().await;
}

/// Item 18, drop during the grace wait: the secret is published, so the
/// rollover finishes on its own and the old credential is revoked.
#[tokio::test]
async fn a_rollover_dropped_during_the_grace_wait_still_revokes_the_old_credential() {
    let fleet = fleet().await;
    let published = Arc::clone(&fleet.published);
    let new_id = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&new_id);
    drop_when(
        fleet
            .rollover()
            .grace(Duration::from_secs(1))
            .run(|new| async move {
                *seen.lock().unwrap() = Some(new.credential_id);
                *published.lock().unwrap() = new.client_secret.into();
                Ok(())
            }),
        || async { new_id.lock().unwrap().is_some() },
    )
    .await;
    let new = new_id.lock().unwrap().unwrap();
    let settled = eventually(Duration::from_secs(20), || async {
        fleet.active().await == vec![new]
    })
    .await;
    assert!(settled, "{:?}", fleet.statuses().await);
    fleet.a_replica_works().await;
}

/// Item 18, drop during the revocation of the old credential: it is
/// carried through.
#[tokio::test]
async fn a_rollover_dropped_while_revoking_still_revokes_the_old_credential() {
    let fleet = fleet().await;
    fleet.fake.fail_next(
        Operation::RevokeCredential,
        Failure::Delay(Duration::from_secs(2)),
        1,
    );
    let published = Arc::clone(&fleet.published);
    let new_id = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&new_id);
    let fake = &fleet.fake;
    drop_when(
        fleet.rollover().run(|new| async move {
            *seen.lock().unwrap() = Some(new.credential_id);
            *published.lock().unwrap() = new.client_secret.into();
            Ok(())
        }),
        || async { fake.requests_seen(Operation::RevokeCredential) == 1 },
    )
    .await;
    let new = new_id.lock().unwrap().unwrap();
    let settled = eventually(Duration::from_secs(20), || async {
        fleet.active().await == vec![new]
    })
    .await;
    assert!(settled, "{:?}", fleet.statuses().await);
    fleet.a_replica_works().await;
}

/// Item 16 against the fake: the generation's answer is lost, and another
/// operator generates a credential for the agent while the rollover waits
/// to re-check. Neither is revoked; both are named.
#[tokio::test]
async fn another_operators_credential_made_during_a_lost_generation_is_not_revoked() {
    let fleet = fleet().await;
    let admin = fleet
        .fake
        .client_builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    admin.access_token().await.unwrap();
    fleet
        .fake
        .fail_next(Operation::GenerateCredential, Failure::DropAnswer, 1);
    let rollover = admin
        .credentials()
        .rollover(fleet.agent, fleet.old)
        .grace(Duration::ZERO)
        .settle(Duration::ZERO)
        .run(|_| async { Ok(()) });
    let other_operator = async {
        // Once the rollover's generation has been made (its answer lost),
        // well within the 3 s settle delay.
        let made = eventually(Duration::from_secs(20), || async {
            fleet.statuses().await.len() == 2
        })
        .await;
        assert!(made);
        fleet
            .admin
            .credentials()
            .generate(fleet.agent)
            .send()
            .await
            .unwrap()
            .credential_id
    };
    let (result, theirs) = tokio::join!(rollover, other_operator);
    let error = result.unwrap_err();
    let active = fleet.active().await;
    assert_eq!(active.len(), 3, "nothing revoked: {active:?}");
    assert!(active.contains(&theirs));
    match error {
        RolloverError::Unresolved {
            candidates: Some(candidates),
            ..
        } => {
            assert_eq!(candidates.len(), 2, "{candidates:?}");
            assert!(candidates.contains(&theirs));
        }
        other => panic!("{other}"),
    }
}
