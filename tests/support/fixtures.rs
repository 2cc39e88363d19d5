//! Fixtures shared by every suite: ids, bodies, mock clients, the call of
//! each operation, and small assertions.

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use httpmock::prelude::*;
use sentryagent_idp::model::{AgentStatus, AgentType, DeploymentEnv};
use sentryagent_idp::{
    Client, ClientBuilder, Error, ErrorKind, Flavor, Operation, RegisterAgent, SecretString,
};
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

/// `builder` (async, or blocking after `.blocking()`) set up for the mock
/// server at `base_url`, with client credentials and no retries, so each
/// mock answer maps to exactly one outcome.
pub fn for_mock<F: Flavor>(builder: ClientBuilder<F>, base_url: &str) -> ClientBuilder<F> {
    builder
        .base_url(base_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(sentryagent_idp::RetryPolicy::disabled())
}

/// An async client of the mock server at `base_url` (see [`for_mock`]).
pub fn mock_client(base_url: &str) -> Client {
    for_mock(Client::builder(), base_url).build().unwrap()
}

/// A blocking client of the mock server at `base_url` (see [`for_mock`]).
#[cfg(feature = "blocking")]
pub fn blocking_mock_client(base_url: &str) -> sentryagent_idp::blocking::Client {
    for_mock(Client::builder().blocking(), base_url)
        .build()
        .unwrap()
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

/// A complete, valid register request of `client` (either flavor): run it
/// with `.send()` (async: `.send().await`).
pub fn new_agent<F: Flavor>(client: &Client<F>) -> RegisterAgent<F> {
    register_request(client, "screener-001@myproject.ai")
}

/// A complete register request of `client` for `email`.
pub fn register_request<F: Flavor>(client: &Client<F>, email: &str) -> RegisterAgent<F> {
    client
        .agents()
        .register()
        .email(email)
        .agent_type(AgentType::Screener)
        .version("1.0.0")
        .capabilities(["resume:read"])
        .owner("platform-team")
        .deployment_env(DeploymentEnv::Production)
}

/// Names an operation of the spec: an operationId (`"get_agent"`, as `&str`
/// or `String`) or an [`Operation`].
pub trait OperationName {
    fn operation(&self) -> Operation;
}

impl OperationName for Operation {
    fn operation(&self) -> Operation {
        *self
    }
}

impl OperationName for str {
    fn operation(&self) -> Operation {
        self.parse()
            .unwrap_or_else(|_| panic!("`{self}` is not an operationId of the spec"))
    }
}

impl OperationName for String {
    fn operation(&self) -> Operation {
        self.as_str().operation()
    }
}

impl<T: OperationName + ?Sized> OperationName for &T {
    fn operation(&self) -> Operation {
        (**self).operation()
    }
}

/// The call of every operation with the fixture ids, for either flavor:
/// `$($wait)*` is `.await` for the async client and nothing for the blocking one.
macro_rules! call_operation {
    ($client:expr, $operation:expr, $($wait:tt)*) => {{
        let client = $client;
        let token = SecretString::from("some.jwt.token");
        match $operation {
            Operation::IssueToken => client.access_token()$($wait)*.map(drop),
            Operation::IntrospectToken => client.tokens().introspect(&token).send()$($wait)*.map(drop),
            Operation::RevokeToken => client.tokens().revoke(&token).send()$($wait)*,
            Operation::RegisterAgent => new_agent(client).send()$($wait)*.map(drop),
            Operation::ListAgents => client.agents().list().send()$($wait)*.map(drop),
            Operation::GetAgent => client.agents().get(agent_id()).send()$($wait)*.map(drop),
            Operation::UpdateAgent => client
                .agents()
                .update(agent_id())
                .status(AgentStatus::Suspended)
                .send()$($wait)*
                .map(drop),
            Operation::DecommissionAgent => client.agents().decommission(agent_id()).send()$($wait)*,
            Operation::GenerateCredential => {
                client.credentials().generate(agent_id()).send()$($wait)*.map(drop)
            }
            Operation::ListCredentials => client.credentials().list(agent_id()).send()$($wait)*.map(drop),
            Operation::RotateCredential => client
                .credentials()
                .rotate(agent_id(), credential_id())
                .send()$($wait)*
                .map(drop),
            Operation::RevokeCredential => client
                .credentials()
                .revoke(agent_id(), credential_id())
                .send()$($wait)*,
            Operation::QueryAuditEvents => client.audit().query().send()$($wait)*.map(drop),
            Operation::GetAuditEvent => client.audit().get(event_id()).send()$($wait)*.map(drop),
            other => panic!("no facade call for operation `{other}`: add one"),
        }
    }};
}

/// Calls the facade method of `operation` with the fixture ids, discarding the value.
pub async fn invoke(client: &Client, operation: impl OperationName) -> sentryagent_idp::Result<()> {
    call_operation!(client, operation.operation(), .await)
}

/// The blocking twin of [`invoke`].
#[cfg(feature = "blocking")]
pub fn invoke_blocking(
    client: &sentryagent_idp::blocking::Client,
    operation: impl OperationName,
) -> sentryagent_idp::Result<()> {
    call_operation!(client, operation.operation(),)
}

/// The error kind a documented status must map to.
pub fn expected_kind(status: u16) -> ErrorKind {
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

/// The new secret a rotate / generate answer carries in the write tests.
pub const NEW_SECRET: &str = "sk_live_NEW_SECRET_FROM_THE_SERVER_4e2a91";

/// The path suffix of the fixture agent (scripted servers route on suffixes).
pub const AGENT_PATH: &str = "/agents/a1b2c3d4-e5f6-7890-abcd-ef1234567890";
/// The path suffix of the fixture credential.
pub const CREDENTIAL_PATH: &str =
    "/agents/a1b2c3d4-e5f6-7890-abcd-ef1234567890/credentials/c9d8e7f6-a5b4-3210-fedc-ba9876543210";

/// Awaits `fut`, failing the test (not hanging it) after `secs` seconds.
pub async fn bounded<F: Future>(secs: u64, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: did not finish within {secs} s (a hang)"),
    }
}

/// A `CredentialWithSecret` body with `secret`.
pub fn credential_with_secret_json(secret: &str) -> Value {
    json!({
        "credentialId": CREDENTIAL_ID, "clientId": AGENT_ID, "clientSecret": secret,
        "status": "active", "createdAt": "2026-03-28T09:00:00.000Z",
        "expiresAt": null, "revokedAt": null
    })
}

/// Whether the error's Display or Debug contains `needle`.
pub fn error_leaks(err: &Error, needle: &str) -> bool {
    format!("{err}").contains(needle) || format!("{err:?}").contains(needle)
}

/// A token endpoint on `server` answering `token` with `scope` for `expires_in` seconds.
pub async fn token_mock<'a>(
    server: &'a MockServer,
    token: &str,
    scope: &str,
    expires_in: u64,
) -> httpmock::Mock<'a> {
    let body = token_body(token, scope, expires_in);
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200).json_body(body);
        })
        .await
}

/// [`token_mock`] for synchronous tests: the fixture token, all scopes, an hour.
pub fn token_mock_sync(server: &MockServer) -> httpmock::Mock<'_> {
    server.mock(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(200)
            .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
    })
}

/// `GET` of the fixture agent on `server`, answered with [`agent_json`].
pub async fn get_agent_mock(server: &MockServer) -> httpmock::Mock<'_> {
    server
        .mock_async(|when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(200).json_body(agent_json());
        })
        .await
}

/// The text of a panic's payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic payload>".to_owned())
}

/// Part `index` (0 header, 1 payload) of a JWT, decoded.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a JWT part");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}
