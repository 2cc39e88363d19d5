//! Plain-HTTP helpers for the fake's tests. Every response whose status the
//! spec documents for the operation is checked against the spec's schema on
//! the way in.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use sentryagent_idp::testing::{FakeAgentIdp, FakeAgentIdpBuilder};
use serde_json::{Value, json};

pub use super::schema::spec;

/// All four scopes, as the bootstrap credential holds them (in the fake's order).
pub const BOOTSTRAP_SCOPES: &str = "agents:read agents:write tokens:read audit:read";

/// A request body.
pub enum Body {
    None,
    Json(Value),
    Raw(&'static str, String),
    Form(Vec<(String, String)>),
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, `Null` when empty or not JSON.
    pub json: Value,
    /// The operation the request stood for, if any.
    pub operation: Option<String>,
    /// Whether the spec documents this status for the operation (and the
    /// body was checked against it).
    pub schema_checked: bool,
}

impl Reply {
    /// `json[key]` as a string.
    pub fn str(&self, key: &str) -> &str {
        self.json[key].as_str().unwrap_or_default()
    }

    /// The error `code` (API envelope).
    pub fn code(&self) -> &str {
        self.str("code")
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A running fake and a client for it.
pub struct Harness {
    pub fake: FakeAgentIdp,
    pub http: reqwest::Client,
}

impl Harness {
    /// A fake with default settings.
    pub async fn start() -> Harness {
        Self::with(FakeAgentIdp::builder()).await
    }

    /// A fake built from `builder`.
    pub async fn with(builder: FakeAgentIdpBuilder) -> Harness {
        let fake = builder.start().await.expect("start the fake");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent("fake-server-tests/1.0")
            .build()
            .expect("reqwest client");
        Harness { fake, http }
    }

    /// `api_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.fake.api_url())
    }

    /// Sends one request and reads the whole response.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Body) -> Reply {
        let mut request = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(content_type, text) => {
                request.header("content-type", content_type).body(text)
            }
            Body::Form(pairs) => request.form(&pairs),
        };
        let response = request.send().await.expect("a response");
        read(response, method.as_str(), path).await
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(Method::GET, path, Some(token), Body::None).await
    }

    /// `POST path` with a JSON body and a bearer token.
    pub async fn post_json(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Body::Json(body))
            .await
    }

    /// `PATCH path` with a JSON body and a bearer token.
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Body::Json(body))
            .await
    }

    /// `DELETE path` with a bearer token.
    pub async fn delete(&self, token: &str, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), Body::None)
            .await
    }

    /// `POST path` with form fields and a bearer token.
    pub async fn post_form(&self, token: &str, path: &str, pairs: &[(&str, &str)]) -> Reply {
        self.send(Method::POST, path, Some(token), Body::Form(owned(pairs)))
            .await
    }

    /// `POST /token` with these form fields.
    pub async fn token_request(&self, pairs: &[(&str, &str)]) -> Reply {
        self.send(Method::POST, "/token", None, Body::Form(owned(pairs)))
            .await
    }

    /// `POST /token` for `client_id`/`secret`, optionally asking for `scope`.
    pub async fn token_for(&self, client_id: &str, secret: &str, scope: Option<&str>) -> Reply {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ];
        if let Some(scope) = scope {
            pairs.push(("scope", scope));
        }
        self.token_request(&pairs).await
    }

    /// A bootstrap token with `scope` (all four when `None`).
    pub async fn token(&self, scope: Option<&str>) -> String {
        let secret = self.fake.client_secret();
        let reply = self
            .token_for(&self.fake.client_id(), secret.expose_secret(), scope)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.str("access_token").to_owned()
    }

    /// Registers an agent with `email` through the API; returns its record.
    pub async fn register(&self, token: &str, email: &str) -> Value {
        let reply = self.post_json(token, "/agents", register_body(email)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply.json
    }

    /// Generates a credential through the API; returns `(credentialId, secret)`.
    pub async fn generate(&self, token: &str, agent_id: &str) -> (String, String) {
        let path = format!("/agents/{agent_id}/credentials");
        let reply = self.post_json(token, &path, json!({})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        (
            reply.str("credentialId").to_owned(),
            reply.str("clientSecret").to_owned(),
        )
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Reads a response and checks it against the spec.
pub async fn read(response: reqwest::Response, method: &str, path: &str) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    let spec = spec();
    let operation = spec.operation_for(method, path);
    let mut schema_checked = false;
    if let Some(op) = operation {
        match spec.expected(op, status.as_u16()) {
            super::schema::Expected::Undocumented => {}
            super::schema::Expected::Empty => {
                assert!(
                    text.is_empty(),
                    "{} {status}: expected no body, got {text}",
                    op.id
                );
                schema_checked = true;
            }
            super::schema::Expected::Json(validator) => {
                let errors: Vec<String> = validator
                    .iter_errors(&json)
                    .map(|e| format!("{e} at {}", e.instance_path()))
                    .collect();
                assert!(
                    errors.is_empty(),
                    "{} {status}: body does not match the spec: {errors:?}\n{text}",
                    op.id
                );
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                assert!(
                    content_type.starts_with("application/json"),
                    "{content_type}"
                );
                schema_checked = true;
            }
        }
    }
    Reply {
        status,
        headers,
        text,
        json,
        operation: operation.map(|op| op.id.clone()),
        schema_checked,
    }
}

/// A valid `NewAgent` body.
pub fn register_body(email: &str) -> Value {
    json!({
        "email": email,
        "agentType": "screener",
        "version": "1.0.0",
        "capabilities": ["resume:read", "candidate:*"],
        "owner": "platform-team",
        "deploymentEnv": "production",
    })
}

/// Whether `s` is a timestamp like `2026-03-28T09:00:00.000Z`.
pub fn is_millis_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && s.ends_with('Z')
        && b[10] == b'T'
        && b[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}
