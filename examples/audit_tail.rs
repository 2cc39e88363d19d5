//! Follow new audit events as they arrive, with filters.
//!
//! ```sh
//! cargo run --example audit_tail --features testing
//! ```
//!
//! Polls `GET /audit` (newest first) and prints events it has not printed yet,
//! oldest first. Against the in-process fake it makes some activity itself and
//! stops after a few rounds; with `AGENTIDP_*` set it follows a real server
//! (filtered by `AGENTIDP_TAIL_AGENT_ID` if set) for `AGENTIDP_TAIL_ROUNDS` polls.

use std::collections::HashSet;
use std::time::Duration;

use sentryagent_idp::model::{AgentType, AuditOutcome, DeploymentEnv, Uuid};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, SecretString};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = match std::env::var_os("AGENTIDP_BASE_URL") {
        Some(_) => None,
        None => Some(FakeAgentIdp::start().await?),
    };
    let client = match &fake {
        Some(fake) => fake.client_builder().build()?,
        None => Client::from_env()?,
    };
    let agent_filter = std::env::var("AGENTIDP_TAIL_AGENT_ID")
        .ok()
        .and_then(|id| id.parse().ok());
    let rounds: u32 = std::env::var("AGENTIDP_TAIL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(4);

    let mut printed = HashSet::new();
    for round in 0..rounds {
        if fake.is_some() {
            make_activity(&client, round).await;
        }
        let mut query = client.audit().query().limit(100);
        if let Some(agent) = agent_filter {
            query = query.agent_id(agent);
        }
        // Newest first on the wire; print the new ones oldest first.
        let page = query.send().await?;
        let fresh: Vec<_> = page
            .items
            .into_iter()
            .filter(|e| printed.insert(e.event_id))
            .collect();
        for event in fresh.iter().rev() {
            let mark = if event.outcome == AuditOutcome::Success {
                ' '
            } else {
                '!'
            };
            println!(
                "{mark} {} {:<22} agent {}",
                event.timestamp.map(|t| t.to_rfc3339()).unwrap_or_default(),
                event.action.as_str(),
                event
                    .agent_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Some traffic for the fake to record: a registration and a failed login.
async fn make_activity(client: &Client, round: u32) {
    let _ = client
        .agents()
        .register()
        .email(format!("tail-{round}@example.com"))
        .agent_type(AgentType::Monitor)
        .version("1.0.0")
        .capabilities(["logs:read"])
        .owner("audit-tail")
        .deployment_env(DeploymentEnv::Staging)
        .send()
        .await;
    let intruder = Client::builder()
        .api_url(client.api_url())
        .client_id(Uuid::new_v4().to_string())
        .client_secret(SecretString::from("wrong"))
        .build();
    if let Ok(intruder) = intruder {
        let _ = intruder.access_token().await;
    }
}
