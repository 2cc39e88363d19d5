//! End to end with the blocking client against the in-process fake.

use sentryagent_idp::blocking::Client;
use sentryagent_idp::model::{AgentStatus, AgentType, AuditAction, DeploymentEnv};
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
use sentryagent_idp::{ErrorKind, ExposeSecret, Operation, Scope, SecretString};

/// The fake runs on a runtime of its own; the blocking client is used from
/// this (non-async) thread, as users of the blocking client would.
struct Fixture {
    fake: FakeAgentIdp,
    admin: Client,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeAgentIdp::start()).unwrap();
    let admin = sentryagent_idp::Client::builder()
        .blocking()
        .base_url(fake.base_url())
        .client_id(fake.client_id())
        .client_secret(fake.client_secret())
        .build()
        .unwrap();
    Fixture {
        fake,
        admin,
        _runtime: runtime,
    }
}

#[test]
fn lifecycle_rotation_and_audit_with_the_blocking_client() {
    let Fixture {
        fake: _fake,
        admin,
        _runtime,
    } = fixture();
    let agent = admin
        .agents()
        .register()
        .email("blocking@e2e.test")
        .agent_type(AgentType::Router)
        .version("1.0.0")
        .capabilities(["requests:route"])
        .owner("blocking")
        .deployment_env(DeploymentEnv::Production)
        .send()
        .unwrap();
    let suspended = admin
        .agents()
        .update(agent.agent_id)
        .status(AgentStatus::Suspended)
        .send()
        .unwrap();
    assert_eq!(suspended.status, AgentStatus::Suspended);
    admin
        .agents()
        .update(agent.agent_id)
        .status(AgentStatus::Active)
        .send()
        .unwrap();

    let first = admin.credentials().generate(agent.agent_id).send().unwrap();
    let rotated = admin
        .credentials()
        .rotate(agent.agent_id, first.credential_id)
        .send()
        .unwrap();
    let login = |secret: &sentryagent_idp::secret::Secret| {
        sentryagent_idp::Client::builder()
            .blocking()
            .api_url(admin.api_url())
            .client_id(agent.agent_id.to_string())
            .client_secret(SecretString::from(secret.expose_secret()))
            .scopes([Scope::AGENTS_READ])
            .build()
            .unwrap()
            .access_token()
    };
    assert_eq!(
        login(&first.client_secret).unwrap_err().code(),
        Some("invalid_client")
    );
    let token = login(&rotated.client_secret).unwrap();
    assert!(admin.tokens().introspect(&token).send().unwrap().active);
    admin.tokens().revoke(&token).send().unwrap();
    assert!(!admin.tokens().introspect(&token).send().unwrap().active);

    admin.agents().decommission(agent.agent_id).send().unwrap();
    assert_eq!(
        login(&rotated.client_secret).unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    let actions: Vec<AuditAction> = admin
        .audit()
        .query()
        .agent_id(agent.agent_id)
        .iter()
        .map(|e| e.unwrap().action)
        .collect();
    for expected in [
        AuditAction::AgentCreated,
        AuditAction::CredentialRotated,
        AuditAction::TokenRevoked,
        AuditAction::AgentDecommissioned,
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[test]
fn blocking_iteration_walks_hundreds_of_agents() {
    let Fixture {
        fake,
        admin,
        _runtime,
    } = fixture();
    fake.seed_agents(230, |i| {
        AgentSeed::new()
            .owner("bulk")
            .email(format!("b-{i}@e2e.test"))
    });
    let count = admin
        .agents()
        .list()
        .owner("bulk")
        .limit(40)
        .iter()
        .map(Result::unwrap)
        .count();
    assert_eq!(count, 230);
    assert_eq!(fake.requests_seen(Operation::ListAgents), 6);
    let reader = admin.with_scopes([Scope::AGENTS_READ]).unwrap();
    assert!(matches!(
        reader.audit().query().send().unwrap_err().kind(),
        ErrorKind::MissingScope
    ));
}
