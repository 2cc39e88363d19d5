//! End to end: the facade against the in-process fake AgentIdP, through whole
//! scenarios, for the async client (and the blocking one in `e2e_blocking.rs`).

use futures::TryStreamExt;
use sentryagent_idp::model::{AgentStatus, AgentType, AuditAction, AuditOutcome, DeploymentEnv};
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
use sentryagent_idp::{
    Agents, Client, ErrorKind, ExposeSecret, Operation, RegisterAgent, Scope, ScopeSet,
    SecretString,
};
use uuid::Uuid;

async fn fake_and_admin() -> (FakeAgentIdp, Client) {
    let fake = FakeAgentIdp::start().await.unwrap();
    let admin = Client::builder()
        .base_url(fake.base_url())
        .client_id(fake.client_id())
        .client_secret(fake.client_secret())
        .build()
        .unwrap();
    (fake, admin)
}

/// A client authenticating as `agent` with `secret`.
fn as_agent(
    admin: &Client,
    agent: Uuid,
    secret: impl ExposeSecret<str>,
    scopes: &[Scope],
) -> Client {
    Client::builder()
        .api_url(admin.api_url())
        .client_id(agent.to_string())
        .client_secret(SecretString::from(secret.expose_secret()))
        .scopes(scopes.iter().cloned())
        .build()
        .unwrap()
}

/// A complete registration of an agent with `email`; run it with `.send()`.
fn classifier_registration(agents: &Agents, email: &str) -> RegisterAgent {
    agents
        .register()
        .email(email)
        .agent_type(AgentType::Classifier)
        .version("2.3.1-beta")
        .capabilities(["documents:read", "data:*"])
        .owner("e2e")
        .deployment_env(DeploymentEnv::Staging)
}

#[tokio::test]
async fn agent_lifecycle_from_registration_to_decommission() {
    let (_fake, admin) = fake_and_admin().await;
    let agents = admin.agents();
    let agent = classifier_registration(&agents, "lifecycle@e2e.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (agent.status.clone(), agent.version.as_str()),
        (AgentStatus::Active, "2.3.1-beta")
    );
    assert_eq!(
        agents
            .get(agent.agent_id)
            .send()
            .await
            .unwrap()
            .email
            .as_str(),
        "lifecycle@e2e.test"
    );

    let err = classifier_registration(&agents, "lifecycle@e2e.test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Conflict, Some("AGENT_ALREADY_EXISTS"))
    );

    let suspended = agents
        .update(agent.agent_id)
        .status(AgentStatus::Suspended)
        .send()
        .await
        .unwrap();
    assert_eq!(suspended.status, AgentStatus::Suspended);
    let page = agents
        .list()
        .status(AgentStatus::Suspended)
        .owner("e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|a| a.agent_id).collect::<Vec<_>>(),
        vec![agent.agent_id]
    );
    let err = admin
        .credentials()
        .generate(agent.agent_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Forbidden, Some("AGENT_NOT_ACTIVE"))
    );
    agents
        .update(agent.agent_id)
        .status(AgentStatus::Active)
        .send()
        .await
        .unwrap();

    agents.decommission(agent.agent_id).send().await.unwrap();
    assert_eq!(
        agents.get(agent.agent_id).send().await.unwrap().status,
        AgentStatus::Decommissioned
    );
    let err = agents
        .decommission(agent.agent_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AGENT_ALREADY_DECOMMISSIONED"));
    let err = agents
        .update(agent.agent_id)
        .owner("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let actions: Vec<AuditAction> = admin
        .audit()
        .query()
        .agent_id(agent.agent_id)
        .stream()
        .map_ok(|e| e.action)
        .try_collect()
        .await
        .unwrap();
    for expected in [
        AuditAction::AgentCreated,
        AuditAction::AgentSuspended,
        AuditAction::AgentReactivated,
        AuditAction::AgentDecommissioned,
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let err = agents.get(Uuid::new_v4()).send().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::NotFound, Some("AGENT_NOT_FOUND"))
    );
}

#[tokio::test]
async fn rotation_keeps_the_id_and_invalidates_the_old_secret_at_once() {
    let (_fake, admin) = fake_and_admin().await;
    let agent = classifier_registration(&admin.agents(), "rotate@e2e.test")
        .send()
        .await
        .unwrap();
    let first = admin
        .credentials()
        .generate(agent.agent_id)
        .send()
        .await
        .unwrap();
    assert!(first.client_secret.expose_secret().starts_with("sk_live_"));
    let old = as_agent(
        &admin,
        agent.agent_id,
        first.client_secret.clone(),
        &[Scope::AGENTS_READ],
    );
    old.agents().get(agent.agent_id).send().await.unwrap();

    let rotated = admin
        .credentials()
        .rotate(agent.agent_id, first.credential_id)
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.credential_id, first.credential_id);
    assert_ne!(
        rotated.client_secret.expose_secret(),
        first.client_secret.expose_secret()
    );

    old.clear_token_cache();
    let err = old.access_token().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Unauthorized, Some("invalid_client"))
    );
    let new = as_agent(
        &admin,
        agent.agent_id,
        rotated.client_secret.clone(),
        &[Scope::AGENTS_READ],
    );
    new.agents().get(agent.agent_id).send().await.unwrap();

    // Switching the old client to the new secret heals it.
    old.set_client_secret(SecretString::from(rotated.client_secret.expose_secret()))
        .unwrap();
    old.agents().get(agent.agent_id).send().await.unwrap();

    admin
        .credentials()
        .revoke(agent.agent_id, first.credential_id)
        .send()
        .await
        .unwrap();
    new.clear_token_cache();
    assert_eq!(
        new.access_token().await.unwrap_err().kind(),
        ErrorKind::Unauthorized
    );
    let listed = admin
        .credentials()
        .list(agent.agent_id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].status,
        sentryagent_idp::model::CredentialStatus::Revoked
    );
    let err = admin
        .credentials()
        .revoke(agent.agent_id, first.credential_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("CREDENTIAL_ALREADY_REVOKED"));
}

#[tokio::test]
async fn scope_narrowing_is_enforced_by_the_client_and_the_server() {
    let (fake, admin) = fake_and_admin().await;
    let reader = admin.with_scopes([Scope::AGENTS_READ]).unwrap();
    assert_eq!(
        reader.granted_scopes().await.unwrap(),
        Some(ScopeSet::from([Scope::AGENTS_READ]))
    );
    reader.agents().list().send().await.unwrap();
    let before = fake.requests_seen(Operation::QueryAuditEvents);
    let err = reader.audit().query().send().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::MissingScope), "{err:?}");
    assert_eq!(
        fake.requests_seen(Operation::QueryAuditEvents),
        before,
        "refused without a request"
    );

    // An agent allowed only agents:read cannot get more.
    let limited = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let (_, secret) = fake.seed_credential(limited);
    let greedy = as_agent(&admin, limited, secret.clone(), &Scope::DOCUMENTED);
    assert_eq!(
        greedy.access_token().await.unwrap_err().code(),
        Some("invalid_scope")
    );
    let modest = as_agent(&admin, limited, secret, &[Scope::AGENTS_READ]);
    modest.agents().get(limited).send().await.unwrap();

    // A token the server narrows below what the call needs is refused by the server.
    let token = modest.access_token().await.unwrap();
    let static_client = Client::builder()
        .api_url(admin.api_url())
        .token_source(sentryagent_idp::auth::StaticToken::new(token))
        .build()
        .unwrap();
    let err = static_client.audit().query().send().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Forbidden, Some("FORBIDDEN"))
    );
}

#[tokio::test]
async fn decommissioning_blocks_the_agents_tokens() {
    let (_fake, admin) = fake_and_admin().await;
    let agent = classifier_registration(&admin.agents(), "retire@e2e.test")
        .send()
        .await
        .unwrap();
    let credential = admin
        .credentials()
        .generate(agent.agent_id)
        .send()
        .await
        .unwrap();
    let client = as_agent(
        &admin,
        agent.agent_id,
        credential.client_secret,
        &[Scope::AGENTS_READ],
    );
    client.agents().get(agent.agent_id).send().await.unwrap();
    let token = client.access_token().await.unwrap();

    admin
        .agents()
        .decommission(agent.agent_id)
        .send()
        .await
        .unwrap();
    // The cached token is refused; the refresh is refused too.
    let err = client
        .agents()
        .get(agent.agent_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Forbidden, Some("unauthorized_client"))
    );
    assert!(
        !admin
            .tokens()
            .introspect(&token)
            .send()
            .await
            .unwrap()
            .active
    );
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc_7662_and_7009() {
    let (_fake, admin) = fake_and_admin().await;
    let token = admin.access_token().await.unwrap();
    let seen = admin.tokens().introspect(&token).send().await.unwrap();
    assert!(seen.active);
    assert_eq!(seen.scope, Some(ScopeSet::documented()));
    let other = admin
        .with_scopes([Scope::AGENTS_READ])
        .unwrap()
        .access_token()
        .await
        .unwrap();
    admin.tokens().revoke(&other).send().await.unwrap();
    assert!(
        !admin
            .tokens()
            .introspect(&other)
            .send()
            .await
            .unwrap()
            .active
    );
    let garbage = SecretString::from("not.a.token");
    assert!(
        !admin
            .tokens()
            .introspect(&garbage)
            .send()
            .await
            .unwrap()
            .active
    );

    // Revoking the client's own token: the next call gets a 401, refreshes once and succeeds.
    admin.tokens().revoke(&token).send().await.unwrap();
    admin.agents().list().send().await.unwrap();
}

#[tokio::test]
async fn pagination_walks_hundreds_of_agents() {
    let (fake, admin) = fake_and_admin().await;
    fake.seed_agents(250, |i| {
        AgentSeed::new()
            .owner("bulk")
            .email(format!("bulk-{i:03}@e2e.test"))
    });
    let before = fake.requests_seen(Operation::ListAgents);
    let all: Vec<_> = admin
        .agents()
        .list()
        .owner("bulk")
        .limit(50)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let mut ids: Vec<_> = all.iter().map(|a| a.agent_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no duplicates across pages");
    assert_eq!(fake.requests_seen(Operation::ListAgents) - before, 5);
    let third = admin
        .agents()
        .list()
        .owner("bulk")
        .limit(100)
        .page(3)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (third.items.len(), third.total, third.has_more()),
        (50, Some(250), false)
    );
}

#[tokio::test]
async fn audit_filters_by_agent_action_outcome_and_time() {
    let (fake, admin) = fake_and_admin().await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    let agent = classifier_registration(&admin.agents(), "audited@e2e.test")
        .send()
        .await
        .unwrap();
    admin
        .credentials()
        .generate(agent.agent_id)
        .send()
        .await
        .unwrap();
    let intruder = as_agent(
        &admin,
        agent.agent_id,
        SecretString::from("sk_live_wrong"),
        &[Scope::AGENTS_READ],
    );
    intruder.access_token().await.unwrap_err();

    let audit = admin.audit();
    let mine: Vec<_> = audit
        .query()
        .agent_id(agent.agent_id)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert!(mine.iter().all(|e| e.agent_id == Some(agent.agent_id)));
    assert!(mine.len() >= 3, "{mine:?}");
    let newest_first = mine.windows(2).all(|w| w[0].timestamp >= w[1].timestamp);
    assert!(newest_first);

    let failures = audit
        .query()
        .outcome(AuditOutcome::Failure)
        .send()
        .await
        .unwrap();
    assert!(!failures.items.is_empty());
    assert!(
        failures
            .items
            .iter()
            .all(|e| e.action == AuditAction::AuthFailed && e.outcome == AuditOutcome::Failure)
    );

    let generated = audit
        .query()
        .agent_id(agent.agent_id)
        .action(AuditAction::CredentialGenerated)
        .send()
        .await
        .unwrap();
    assert_eq!(generated.items.len(), 1);
    let one = audit.get(generated.items[0].event_id).send().await.unwrap();
    assert_eq!(one.action, AuditAction::CredentialGenerated);

    let before_start = audit
        .query()
        .agent_id(agent.agent_id)
        .to(start)
        .send()
        .await
        .unwrap();
    assert!(before_start.items.is_empty());
    let since = audit
        .query()
        .agent_id(agent.agent_id)
        .from(start)
        .send()
        .await
        .unwrap();
    assert_eq!(since.items.len(), mine.len());
    let err = audit.get(Uuid::new_v4()).send().await.unwrap_err();
    assert_eq!(err.code(), Some("AUDIT_EVENT_NOT_FOUND"));
    assert!(fake.requests_seen(Operation::GetAuditEvent) >= 2);
}

#[tokio::test]
async fn an_email_the_spec_refuses_is_refused_unsent_naming_the_field() {
    let (fake, admin) = fake_and_admin().await;
    let err = classifier_registration(&admin.agents(), "not-an-email")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::InvalidInput, Some(Operation::RegisterAgent))
    );
    assert!(err.message().contains("email"), "{err}");
    assert_eq!(fake.requests_seen(Operation::RegisterAgent), 0);
}

#[tokio::test]
async fn the_fakes_failure_knobs_meet_the_clients_replay_rules() {
    use sentryagent_idp::testing::Failure;
    use std::time::Duration;
    let (fake, admin) = fake_and_admin().await;

    // A write whose connection drops after sending is never sent twice.
    fake.fail_next(Operation::RegisterAgent, Failure::DropConnection, 1);
    let err = classifier_registration(&admin.agents(), "dropped@e2e.test")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(fake.requests_seen(Operation::RegisterAgent), 1);

    // A read is replayed after the same fault.
    let me = fake.bootstrap_agent_id();
    fake.fail_next(Operation::GetAgent, Failure::DropConnection, 1);
    admin.agents().get(me).send().await.unwrap();
    assert_eq!(fake.requests_seen(Operation::GetAgent), 2);

    // A rate limit is waited out, writes included.
    fake.fail_next(
        Operation::RegisterAgent,
        Failure::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        1,
    );
    classifier_registration(&admin.agents(), "patient@e2e.test")
        .send()
        .await
        .unwrap();
    assert_eq!(fake.requests_seen(Operation::RegisterAgent), 3);

    // Slower than the attempt timeout: retried, then answered. The timeout
    // leaves the retry seconds to answer on a busy machine.
    let impatient = fake
        .client_builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    fake.fail_next(
        Operation::ListAgents,
        Failure::Delay(Duration::from_secs(10)),
        1,
    );
    impatient.agents().list().send().await.unwrap();
    assert_eq!(fake.requests_seen(Operation::ListAgents), 2);
}

/// Issue 26 item 10: the API reference's "local server base"
/// (`http://localhost:3000/api/v1`) given as the base URL asked for
/// `/api/v1/api/v1/token` and failed with a 404 at the first call.
#[tokio::test]
async fn a_base_url_ending_in_api_v1_reaches_the_api() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = fake
        .client_builder()
        .base_url(format!("{}/api/v1", fake.base_url()))
        .build()
        .unwrap();
    assert_eq!(client.api_url(), fake.api_url());
    let agents = client.agents().list().send().await.unwrap();
    assert!(!agents.items.is_empty(), "the bootstrap agent is listed");
}
