//! Fixture values, the one call made per operation and its outcome.

use std::fmt::Debug;
use std::num::NonZeroU32;

use chrono::{DateTime, SecondsFormat, Utc};
use httpmock::When;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use sentryagent_idp::__raw::{self, ResponseValue, types};
use sentryagent_idp::auth::StaticToken;
use sentryagent_idp::model::{AgentStatus, AgentType, AuditAction, AuditOutcome};
use sentryagent_idp::{Client, RetryPolicy};

use super::spec::Operation;

/// The bearer token of the raw client.
pub const TOKEN: &str = "contract-test-token";
pub const AGENT_ID: &str = "0b9a5c4e-2d1f-4e8a-9c3b-7f6e5d4c3b2a";
pub const CREDENTIAL_ID: &str = "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716";
pub const EVENT_ID: &str = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
pub const OWNER: &str = "platform-team";
pub const PAGE: u32 = 2;
pub const LIMIT: u32 = 50;
/// The audit query's date bounds, as `DateTime`s serialize on the wire.
pub const FROM_DATE: &str = "2026-03-01T00:00:00Z";
pub const TO_DATE: &str = "2026-03-31T23:59:59Z";

fn uuid(text: &str) -> Uuid {
    text.parse().expect("a fixture uuid")
}

pub fn agent_id() -> Uuid {
    uuid(AGENT_ID)
}

pub fn credential_id() -> Uuid {
    uuid(CREDENTIAL_ID)
}

pub fn event_id() -> Uuid {
    uuid(EVENT_ID)
}

pub fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("a non-zero fixture")
}

fn date(text: &str) -> DateTime<Utc> {
    text.parse().expect("a fixture date")
}

/// A raw client of `server`, sending [`TOKEN`] on bearer operations.
/// A client of the mock server with the fixed bearer [`TOKEN`] and no
/// retries: each raw call is one request.
pub fn client(server: &httpmock::MockServer) -> Client {
    // The mocks serve the spec's paths at the root: the API root is the server.
    Client::builder()
        .api_url(server.base_url())
        .token_source(StaticToken::new(TOKEN))
        .retry_policy(RetryPolicy::disabled())
        .build()
        .expect("a client of the mock server")
}

/// The request path of `op` with the fixture ids.
pub fn request_path(op: &Operation) -> String {
    op.path_params.iter().fold(op.path.clone(), |path, param| {
        let value = match param.name.as_str() {
            "agentId" => AGENT_ID,
            "credentialId" => CREDENTIAL_ID,
            "eventId" => EVENT_ID,
            other => panic!("no fixture for path parameter `{other}`"),
        };
        path.replace(&format!("{{{}}}", param.name), value)
    })
}

/// What the spec prescribes for every request of `op`: method, path with the
/// fixture ids, the body's content type (none without a body) and
/// `Authorization: Bearer` exactly when its security names OAuth 2.0.
pub fn expect_request(when: When, op: &Operation) -> When {
    let when = when.method(op.method.as_str()).path(request_path(op));
    let when = match &op.request {
        Some(body) => when.header("content-type", body.media_type.as_str()),
        None => when.header_missing("content-type"),
    };
    if op.bearer {
        when.header("authorization", format!("Bearer {TOKEN}"))
    } else {
        when.header_missing("authorization")
    }
}

/// A spec example as the typed value `T`; panics if it does not decode.
pub fn decode<T: DeserializeOwned>(example: &Value) -> T {
    serde_json::from_value(example.clone()).unwrap_or_else(|e| {
        panic!(
            "example does not decode into {}: {e}\n{example}",
            std::any::type_name::<T>()
        )
    })
}

/// The request example of `op` as `T`, after checking that `T` keeps every
/// documented field: what the client sends is the documented example.
pub fn request_body<T: DeserializeOwned + Serialize>(op: &str) -> T {
    let example = super::spec::operation(op).request_example();
    let body: T = decode(example);
    assert_eq!(
        canonical(to_json(&body)),
        canonical(example.clone()),
        "{op}: the request example does not round-trip"
    );
    body
}

/// The first example of the success response of `op`, as `T`.
pub fn success_example<T: DeserializeOwned>(op: &Operation) -> T {
    let content = op
        .success()
        .content
        .as_ref()
        .unwrap_or_else(|| panic!("{}: success has no body", op.id));
    decode(content.first_example(&op.id))
}

pub fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// A success example as the bindings serialize it back: every secret
/// property (see [`super::spec::secret_properties`]) reads `[REDACTED]`.
pub fn as_received(example: Value) -> Value {
    match example {
        Value::Array(items) => items.into_iter().map(as_received).collect(),
        Value::Object(fields) => fields
            .into_iter()
            .map(|(k, v)| {
                let v = if v.is_string() && super::spec::secret_properties().contains(&k) {
                    Value::from("[REDACTED]")
                } else {
                    as_received(v)
                };
                (k, v)
            })
            .collect(),
        other => other,
    }
}

/// `value` with nulls dropped (an absent `Option`) and date-times in one
/// notation (`.000Z` and `Z` are the same instant), for comparing a typed value
/// serialized back with the example it was decoded from.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::String(s) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Value::String(t.to_utc().to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Err(_) => Value::String(s),
        },
        Value::Array(items) => items.into_iter().map(canonical).collect(),
        Value::Object(fields) => fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, canonical(v)))
            .collect(),
        other => other,
    }
}

/// What a raw call came back with.
#[derive(Debug)]
pub enum Outcome {
    /// `Ok(ResponseValue<T>)`: status, `T`'s name and the value serialized back.
    Ok {
        status: u16,
        type_name: &'static str,
        body: Value,
    },
    /// `Err(Error::ErrorResponse(rv))`: status and typed body.
    Err { status: u16, body: ErrorBody },
    /// Any other error (transport, undecodable body, request refused unsent, …).
    Other(String),
}

/// The typed body of an error response.
#[derive(Debug)]
pub enum ErrorBody {
    Api(types::ApiError),
    Token(types::TokenError),
}

impl Outcome {
    /// Why this is not the `expected` outcome.
    pub fn unexpected(&self, expected: &str) -> String {
        match self {
            Self::Other(error) => format!("expected {expected}, got the raw error {error}"),
            other => format!("expected {expected}, got {other:?}"),
        }
    }
}

impl From<types::ApiError> for ErrorBody {
    fn from(error: types::ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<types::TokenError> for ErrorBody {
    fn from(error: types::TokenError) -> Self {
        Self::Token(error)
    }
}

fn outcome<T, E>(
    (result, refused): (
        Result<ResponseValue<T>, __raw::Error<E>>,
        Option<sentryagent_idp::Error>,
    ),
) -> Outcome
where
    T: Serialize,
    E: Into<ErrorBody> + Debug,
{
    if let Some(error) = refused {
        return Outcome::Other(format!("refused by the seam: {error}"));
    }
    match result {
        Ok(rv) => Outcome::Ok {
            status: rv.status().as_u16(),
            type_name: short_type_name::<T>(),
            body: to_json(&rv.into_inner()),
        },
        Err(__raw::Error::ErrorResponse(rv)) => Outcome::Err {
            status: rv.status().as_u16(),
            body: rv.into_inner().into(),
        },
        Err(__raw::Error::UnexpectedResponse(r)) => Outcome::Other(format!(
            "a status the bindings do not expect: {}",
            r.status()
        )),
        Err(other) => Outcome::Other(format!("{other:?}")),
    }
}

/// `Agent` for `sentryagent_idp::raw::types::Agent`; `()` stays `()`.
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

/// One raw call of `operation` through the client's seam.
macro_rules! raw_call {
    ($client:expr, $operation:ident, |$raw:ident| $call:expr) => {
        outcome(
            __raw::call(
                $client,
                sentryagent_idp::Operation::$operation,
                |$raw| async move { $call.await },
            )
            .await,
        )
    };
}

/// Calls `op` through the raw bindings (and the seam's hooks) with the
/// fixture inputs: the fixture ids, the spec's request example as body, and
/// every query parameter set.
pub async fn send(client: &Client, op: &str) -> Outcome {
    let (agent, credential, event) = (agent_id(), credential_id(), event_id());
    let (from, to) = (date(FROM_DATE), date(TO_DATE));
    match op {
        "issue_token" => {
            let body = request_body::<types::TokenRequest>(op);
            raw_call!(client, IssueToken, |raw| raw.issue_token(&body))
        }
        "introspect_token" => {
            let body = request_body::<types::TokenForm>(op);
            raw_call!(client, IntrospectToken, |raw| raw.introspect_token(&body))
        }
        "revoke_token" => {
            let body = request_body::<types::TokenForm>(op);
            raw_call!(client, RevokeToken, |raw| raw.revoke_token(&body))
        }
        "register_agent" => {
            let body = request_body::<types::NewAgent>(op);
            raw_call!(client, RegisterAgent, |raw| raw.register_agent(&body))
        }
        "list_agents" => raw_call!(client, ListAgents, |raw| raw.list_agents(
            Some(&AgentType::Screener),
            Some(nonzero(LIMIT)),
            Some(OWNER),
            Some(nonzero(PAGE)),
            Some(&AgentStatus::Suspended),
        )),
        "get_agent" => raw_call!(client, GetAgent, |raw| raw.get_agent(&agent)),
        "update_agent" => {
            let body = request_body::<types::AgentUpdate>(op);
            raw_call!(client, UpdateAgent, |raw| raw.update_agent(&agent, &body))
        }
        "decommission_agent" => {
            raw_call!(client, DecommissionAgent, |raw| raw
                .decommission_agent(&agent))
        }
        "generate_credential" => {
            let body = request_body::<types::NewCredential>(op);
            raw_call!(client, GenerateCredential, |raw| raw
                .generate_credential(&agent, &body))
        }
        "list_credentials" => {
            raw_call!(client, ListCredentials, |raw| raw.list_credentials(&agent))
        }
        "rotate_credential" => {
            let body = request_body::<types::NewCredential>(op);
            raw_call!(client, RotateCredential, |raw| raw.rotate_credential(
                &agent,
                &credential,
                &body
            ))
        }
        "revoke_credential" => raw_call!(client, RevokeCredential, |raw| raw
            .revoke_credential(&agent, &credential)),
        "query_audit_events" => raw_call!(client, QueryAuditEvents, |raw| raw.query_audit_events(
            Some(&AuditAction::CredentialRotated),
            Some(&agent),
            Some(&from),
            Some(nonzero(LIMIT)),
            Some(&AuditOutcome::Failure),
            Some(nonzero(PAGE)),
            Some(&to),
        )),
        "get_audit_event" => raw_call!(client, GetAuditEvent, |raw| raw.get_audit_event(&event)),
        other => panic!("no contract call for operation `{other}`: add one to fixture::send"),
    }
}
