//! A walk through the whole API, printing a short transcript.
//!
//! ```sh
//! cargo run --example quickstart --features testing
//! ```
//!
//! With no `AGENTIDP_*` variables set it starts the in-process fake AgentIdP;
//! with `AGENTIDP_BASE_URL`, `AGENTIDP_CLIENT_ID` and `AGENTIDP_CLIENT_SECRET`
//! set it runs against that server instead.

use futures::TryStreamExt;
use sentryagent_idp::model::{AgentType, AuditAction, DeploymentEnv, Uuid};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ErrorKind, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the fake (if any) alive until the end.
    let (admin, _fake) = connect().await?;
    println!("AgentIdP at {}", admin.api_url());

    let granted = admin.granted_scopes().await?.unwrap_or_default();
    println!("1. token issued for the admin agent, scopes: {granted}");

    let email = format!(
        "screener-{}@quickstart.example",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let agent = admin
        .agents()
        .register()
        .email(&email)
        .agent_type(AgentType::Screener)
        .version("1.0.0")
        .capabilities(["resume:read", "candidate:score"])
        .owner("quickstart")
        .deployment_env(DeploymentEnv::Development)
        .send()
        .await?;
    println!(
        "2. registered {} as {} ({})",
        agent.email, agent.agent_id, agent.status
    );

    let credential = admin.credentials().generate(agent.agent_id).send().await?;
    println!(
        "3. generated credential {} (secret shown once, kept as a secret)",
        credential.credential_id
    );

    let rotated = admin
        .credentials()
        .rotate(agent.agent_id, credential.credential_id)
        .send()
        .await?;
    println!(
        "4. rotated it: same id {}, new secret",
        rotated.credential_id
    );
    let stale = agent_client(&admin, agent.agent_id, credential.client_secret.into())?;
    match stale.access_token().await {
        Err(e) if e.kind() == ErrorKind::Unauthorized => {
            println!("   the old secret is refused: {}", e.code().unwrap_or("?"))
        }
        other => println!("   unexpected: the old secret gave {other:?}"),
    }

    let as_agent = agent_client(&admin, agent.agent_id, rotated.client_secret.into())?;
    let agent_token = as_agent.access_token().await?;
    println!(
        "5. authenticated as the new agent, scopes: {}",
        as_agent.granted_scopes().await?.unwrap_or_default()
    );

    let agents: Vec<_> = admin
        .agents()
        .list()
        .owner("quickstart")
        .stream()
        .try_collect()
        .await?;
    println!("6. agents owned by quickstart: {}", agents.len());

    let seen = admin.tokens().introspect(&agent_token).send().await?;
    println!(
        "7. introspected its token: active={}, sub={}",
        seen.active,
        seen.sub.as_deref().unwrap_or("-")
    );
    admin.tokens().revoke(&agent_token).send().await?;
    let seen = admin.tokens().introspect(&agent_token).send().await?;
    println!("   revoked it: active={}", seen.active);

    admin
        .agents()
        .update(agent.agent_id)
        .version("1.1.0")
        .send()
        .await?;
    let events: Vec<_> = admin
        .audit()
        .query()
        .agent_id(agent.agent_id)
        .stream()
        .try_collect()
        .await?;
    println!("8. audit trail of the agent, newest first:");
    for event in &events {
        println!(
            "   {} {} {}",
            event.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default(),
            event.action,
            event.outcome
        );
    }
    let rotations = admin
        .audit()
        .query()
        .agent_id(agent.agent_id)
        .action(AuditAction::CredentialRotated)
        .send()
        .await?;
    println!("   of which credential.rotated: {}", rotations.items.len());

    admin.agents().decommission(agent.agent_id).send().await?;
    let after = admin.agents().get(agent.agent_id).send().await?;
    as_agent.clear_token_cache();
    let refused = as_agent
        .access_token()
        .await
        .err()
        .and_then(|e| e.code().map(str::to_owned));
    println!(
        "9. decommissioned: status={}, its credential now gets {}",
        after.status,
        refused.as_deref().unwrap_or("a token (unexpected)")
    );
    Ok(())
}

/// A client from the environment if it is configured, else one of a fresh fake.
async fn connect() -> Result<(Client, Option<FakeAgentIdp>), Box<dyn std::error::Error>> {
    if std::env::var_os("AGENTIDP_BASE_URL").is_some() {
        return Ok((Client::from_env()?, None));
    }
    let fake = FakeAgentIdp::start().await?;
    let client = fake.client_builder().build()?;
    Ok((client, Some(fake)))
}

/// A client that authenticates as `agent` with `secret`, asking for `agents:read` only.
fn agent_client(
    admin: &Client,
    agent: Uuid,
    secret: sentryagent_idp::SecretString,
) -> sentryagent_idp::Result<Client> {
    Client::builder()
        .api_url(admin.api_url())
        .client_id(agent.to_string())
        .client_secret(secret)
        .scopes([Scope::AGENTS_READ])
        .build()
}
