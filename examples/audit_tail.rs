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

use sentryagent_idp::model::{AuditOutcome, NewAgent};
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
                event.agent_id
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

/// Some traffic for the fake to record: a registration and a failed login.
async fn make_activity(client: &Client, round: u32) {
    let agent = NewAgent::builder()
        .email(format!("tail-{round}@example.com").as_str())
        .agent_type(sentryagent_idp::model::AgentType::Monitor)
        .version("1.0.0")
        .capabilities(vec!["logs:read".parse().expect("a valid capability")])
        .owner("audit-tail")
        .deployment_env(sentryagent_idp::model::DeploymentEnv::Staging);
    let _ = client.agents().register(agent).await;
    let intruder = Client::builder()
        .api_url(client.api_url())
        .client_id(uuid::Uuid::new_v4().to_string())
        .client_secret(SecretString::from("wrong"))
        .build();
    if let Ok(intruder) = intruder {
        let _ = intruder.access_token().await;
    }
}
