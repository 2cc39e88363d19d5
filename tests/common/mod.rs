//! Shared fixtures of the facade tests.
#![allow(dead_code)]

pub mod scripted;
pub mod spec;

use sentryagent_idp::{Client, ClientBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

/// The client secret every test uses; must never show up in output.
pub const CLIENT_SECRET: &str = "sk_live_TEST_SECRET_5f1c0a7b9e";
/// The access token the mock token endpoint hands out; must never show up either.
pub const ACCESS_TOKEN: &str = "eyJ.TEST_ACCESS_TOKEN_c3b1.sig";
pub const CLIENT_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
pub const AGENT_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
pub const CREDENTIAL_ID: &str = "c9d8e7f6-a5b4-3210-fedc-ba9876543210";
pub const EVENT_ID: &str = "7d3f9a2b-1c4e-4f6a-9b8d-0e2c5a7f1b3d";
pub const ALL_SCOPES: &str = "agents:read agents:write audit:read tokens:read";

pub fn agent_id() -> Uuid {
    AGENT_ID.parse().unwrap()
}

pub fn credential_id() -> Uuid {
    CREDENTIAL_ID.parse().unwrap()
}

pub fn event_id() -> Uuid {
    EVENT_ID.parse().unwrap()
}

/// The token response body.
pub fn token_body(token: &str, scope: &str, expires_in: u64) -> Value {
    json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": scope})
}

/// The full request path of a spec path template, with the fixture ids.
pub fn request_path(template: &str) -> String {
    let path = template
        .replace("{agentId}", AGENT_ID)
        .replace("{credentialId}", CREDENTIAL_ID)
        .replace("{eventId}", EVENT_ID);
    format!("/api/v1{path}")
}

/// `builder` (async or blocking) set up for the mock server at `base_url`,
/// with client credentials and no retries, so each mock answer maps to
/// exactly one outcome.
pub fn for_mock<F>(builder: ClientBuilder<F>, base_url: &str) -> ClientBuilder<F> {
    builder
        .base_url(base_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(sentryagent_idp::RetryPolicy::disabled())
}

/// An async client of the mock server at `base_url` (see [`for_mock`]).
pub fn client(base_url: &str) -> Client {
    for_mock(Client::builder(), base_url).build().unwrap()
}

/// A valid agent record.
pub fn agent_json() -> Value {
    json!({
        "agentId": AGENT_ID, "email": "screener-001@myproject.ai", "agentType": "screener",
        "version": "1.0.0", "capabilities": ["resume:read"], "owner": "platform-team",
        "deploymentEnv": "production", "status": "active",
        "createdAt": "2026-03-28T09:00:00.000Z", "updatedAt": "2026-03-28T09:00:00.000Z"
    })
}

/// A valid `NewAgent`.
pub fn new_agent() -> sentryagent_idp::model::builder::NewAgent {
    use sentryagent_idp::model::{AgentType, DeploymentEnv, NewAgent};
    NewAgent::builder()
        .email("screener-001@myproject.ai")
        .agent_type(AgentType::Screener)
        .version("1.0.0")
        .capabilities(vec!["resume:read".parse().unwrap()])
        .owner("platform-team")
        .deployment_env(DeploymentEnv::Production)
}

/// Calls the facade method of `operation` with the fixture ids, discarding the value.
pub async fn invoke(client: &Client, operation: &str) -> sentryagent_idp::Result<()> {
    use sentryagent_idp::SecretString;
    use sentryagent_idp::model::{AgentStatus, builder::AgentUpdate};
    let token = SecretString::from("some.jwt.token");
    match operation {
        "issue_token" => client.access_token().await.map(drop),
        "introspect_token" => client.tokens().introspect(&token).await.map(drop),
        "revoke_token" => client.tokens().revoke(&token).await,
        "register_agent" => client.agents().register(new_agent()).await.map(drop),
        "list_agents" => client.agents().list().send().await.map(drop),
        "get_agent" => client.agents().get(agent_id()).await.map(drop),
        "update_agent" => {
            let update = AgentUpdate::default().status(Some(AgentStatus::Suspended));
            client.agents().update(agent_id(), update).await.map(drop)
        }
        "decommission_agent" => client.agents().decommission(agent_id()).await,
        "generate_credential" => client.credentials().generate(agent_id()).await.map(drop),
        "list_credentials" => client.credentials().list(agent_id()).await.map(drop),
        "rotate_credential" => client
            .credentials()
            .rotate(agent_id(), credential_id())
            .await
            .map(drop),
        "revoke_credential" => {
            client
                .credentials()
                .revoke(agent_id(), credential_id())
                .await
        }
        "query_audit_events" => client.audit().query().send().await.map(drop),
        "get_audit_event" => client.audit().get(event_id()).await.map(drop),
        other => panic!("no facade call for operation `{other}`: add one"),
    }
}

/// The blocking twin of [`invoke`].
#[cfg(feature = "blocking")]
pub fn invoke_blocking(
    client: &sentryagent_idp::blocking::Client,
    operation: &str,
) -> sentryagent_idp::Result<()> {
    use sentryagent_idp::SecretString;
    use sentryagent_idp::model::{AgentStatus, builder::AgentUpdate};
    let token = SecretString::from("some.jwt.token");
    match operation {
        "issue_token" => client.access_token().map(drop),
        "introspect_token" => client.tokens().introspect(&token).map(drop),
        "revoke_token" => client.tokens().revoke(&token),
        "register_agent" => client.agents().register(new_agent()).map(drop),
        "list_agents" => client.agents().list().send().map(drop),
        "get_agent" => client.agents().get(agent_id()).map(drop),
        "update_agent" => {
            let update = AgentUpdate::default().status(Some(AgentStatus::Suspended));
            client.agents().update(agent_id(), update).map(drop)
        }
        "decommission_agent" => client.agents().decommission(agent_id()),
        "generate_credential" => client.credentials().generate(agent_id()).send().map(drop),
        "list_credentials" => client.credentials().list(agent_id()).map(drop),
        "rotate_credential" => client
            .credentials()
            .rotate(agent_id(), credential_id())
            .send()
            .map(drop),
        "revoke_credential" => client.credentials().revoke(agent_id(), credential_id()),
        "query_audit_events" => client.audit().query().send().map(drop),
        "get_audit_event" => client.audit().get(event_id()).map(drop),
        other => panic!("no blocking call for operation `{other}`: add one"),
    }
}

/// The error kind a documented status must map to.
pub fn expected_kind(status: u16) -> sentryagent_idp::ErrorKind {
    use sentryagent_idp::ErrorKind;
    match status {
        400 => ErrorKind::Validation,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Server,
        other => panic!("no expected kind for {other}"),
    }
}

/// The `code` (or OAuth2 `error`) of an example error body.
pub fn example_code(example: &Value) -> Option<&str> {
    example
        .get("code")
        .or_else(|| example.get("error"))
        .and_then(Value::as_str)
}
