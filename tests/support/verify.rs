//! What the verify suites share: a fake with OIDC, a verifier per mode, and
//! tokens of every kind signed by the fake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
use sentryagent_idp::verify::{Verifier, VerifierBuilder};
use sentryagent_idp::{Client, RetryPolicy};
use serde_json::{Value, json};

/// The four ways of deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Introspection,
    Pem,
    PemFirstSight,
    Jwks,
}

pub const MODES: [Mode; 4] = [
    Mode::Introspection,
    Mode::Pem,
    Mode::PemFirstSight,
    Mode::Jwks,
];

/// A fake serving discovery and JWKS (its tokens carry a `kid`).
pub async fn fake_with_oidc() -> FakeAgentIdp {
    FakeAgentIdp::builder()
        .oidc(true)
        .start()
        .await
        .expect("the fake starts")
}

/// The service's own client (the bootstrap agent: all scopes), no retries,
/// so a failure of AgentIdP shows at once.
pub fn service_client(fake: &FakeAgentIdp) -> Client {
    fake.client_builder()
        .retry_policy(RetryPolicy::disabled())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

/// The builder of `mode` against `fake`.
pub fn builder(fake: &FakeAgentIdp, mode: Mode) -> VerifierBuilder {
    match mode {
        Mode::Introspection => Verifier::introspection(service_client(fake)),
        Mode::Pem => Verifier::public_key_pem(fake.public_key_pem()).expect("pem"),
        Mode::PemFirstSight => Verifier::public_key_pem(fake.public_key_pem())
            .expect("pem")
            .introspect_first_sight(service_client(fake)),
        Mode::Jwks => Verifier::jwks(&fake.base_url()).expect("url"),
    }
}

pub fn verifier(fake: &FakeAgentIdp, mode: Mode) -> Verifier {
    builder(fake, mode).build().expect("verifier")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A new agent with `scopes`.
pub fn seeded_agent(fake: &FakeAgentIdp, scopes: &[&str]) -> uuid::Uuid {
    fake.seed_agent(AgentSeed::new().scopes(scopes.iter().copied()))
}

/// The claims of an AgentIdP token for `agent`, valid for ten minutes.
pub fn claims(agent: uuid::Uuid, scope: &str) -> Value {
    sentryagent_idp::testing::token_claims(agent, scope, Duration::from_secs(600))
}

/// A token for `agent` signed by the fake.
pub fn token(fake: &FakeAgentIdp, agent: uuid::Uuid, scope: &str) -> String {
    fake.sign_claims(claims(agent, scope))
}

/// `token` with its header replaced by `header` (the signature is kept).
pub fn with_header(token: &str, header: Value) -> String {
    let (_, rest) = token.split_once('.').expect("a JWT");
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

/// `token` with one claim changed, its signature kept: a wrong signature.
pub fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    payload["scope"] = json!("agents:read agents:write tokens:read audit:read admin:all");
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

/// An unsigned token (`alg: none`) with `claims`.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// HS256 keyed with the public key's PEM: the classic key-confusion attack.
pub fn hs256_with_public_key(fake: &FakeAgentIdp, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("fake-key-1".to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(fake.public_key_pem().as_bytes()),
    )
    .expect("hs256")
}

/// Waits (bounded: `limit`, polling every 20 ms) until `done`; whether it came.
pub async fn eventually(limit: Duration, mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if done().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
