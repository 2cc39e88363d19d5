//! Follow new audit events as they arrive, with filters.
//!
//! ```sh
//! cargo run --example audit_tail --features testing
//! ```
//!
//! Uses `QueryAudit::follow`, a stream of new events, oldest first, that
//! resumes by itself after a network error. Against the in-process fake it
//! makes some activity itself and stops after a dozen events; with
//! `AGENTIDP_*` set it follows a real server (filtered by
//! `AGENTIDP_TAIL_AGENT_ID` if set) until `AGENTIDP_TAIL_EVENTS` events (default 12).

use std::time::Duration;

use futures::StreamExt;
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
    let wanted: usize = std::env::var("AGENTIDP_TAIL_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    let mut query = client
        .audit()
        .query()
        .poll_interval(Duration::from_millis(300));
    if let Some(agent) = std::env::var("AGENTIDP_TAIL_AGENT_ID")
        .ok()
        .and_then(|id| id.parse().ok())
    {
        query = query.agent_id(agent);
    }
    let mut events = query.follow();
    if fake.is_some() {
        tokio::spawn(make_activity(client.clone()));
    }
    let mut shown = 0;
    while shown < wanted {
        let Some(event) = events.next().await else {
            break;
        };
        match event {
            Ok(event) => {
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
                shown += 1;
            }
            Err(e) if e.is_retryable() => eprintln!("(reconnecting: {e})"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Some traffic for the fake to record: registrations and failed logins.
async fn make_activity(client: Client) {
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
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
}
