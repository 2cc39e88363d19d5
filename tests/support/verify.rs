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
/// An agent with `agents:read` and a token of it that `verifier` accepted
/// (its verdict now cached as active).
pub async fn known_token(fake: &FakeAgentIdp, verifier: &Verifier) -> (uuid::Uuid, String) {
    let live = seeded_agent(fake, &["agents:read"]);
    let good = token(fake, live, "agents:read");
    assert!(verifier.verify(&good).await.is_ok());
    (live, good)
}

/// Revokes `token` at AgentIdP, through the service's client.
pub async fn revoke(fake: &FakeAgentIdp, token: &str) {
    service_client(fake)
        .tokens()
        .revoke(&sentryagent_idp::SecretString::from(token.to_owned()))
        .send()
        .await
        .unwrap();
}

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

/// An RS256 key of a test's own (the fake's is not reachable from a test),
/// for tokens with headers the fake does not write (`crit`) and key sets a
/// test serves itself.
pub struct TestKey {
    pub encoding: jsonwebtoken::EncodingKey,
    pub public_pem: String,
}

impl TestKey {
    /// A fresh 2048-bit key (aws-lc, tens of milliseconds).
    pub fn generate() -> TestKey {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::signature::KeyPair as _;
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
        let private: Pkcs8V1Der<'static> = pair.as_der().expect("PKCS#8");
        let public: PublicKeyX509Der<'static> = pair.public_key().as_der().expect("SPKI");
        let pem = |label: &str, der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(64)
                .map(|l| std::str::from_utf8(l).expect("base64"))
                .collect();
            format!(
                "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                lines.join("\n")
            )
        };
        TestKey {
            encoding: jsonwebtoken::EncodingKey::from_rsa_pem(
                pem("PRIVATE KEY", private.as_ref()).as_bytes(),
            )
            .expect("encoding key"),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }

    /// `claims` signed under `header` (any JOSE header JSON, `alg` RS256).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let header: jsonwebtoken::Header = serde_json::from_value(header).expect("a header");
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }

    /// `claims` signed under a header written as given, byte for byte
    /// (for headers jsonwebtoken's `Header` cannot hold, e.g. `"crit": null`).
    pub fn sign_raw_header(&self, header: &str, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &self.encoding,
            jsonwebtoken::Algorithm::RS256,
        )
        .expect("signature");
        format!("{message}.{signature}")
    }

    /// The public key as a JWK with `kid`, plus `extra` members (`use`, `key_ops`).
    pub fn jwk(&self, kid: &str, extra: Value) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
            &self.encoding,
            jsonwebtoken::Algorithm::RS256,
        )
        .expect("jwk");
        let mut jwk = serde_json::to_value(jwk).expect("json");
        jwk["kid"] = json!(kid);
        for (name, value) in extra.as_object().cloned().unwrap_or_default() {
            jwk[name] = value;
        }
        jwk
    }
}

/// A loopback server of discovery and `keys` as the key set, for a
/// verifier built with `Verifier::jwks(&server.base_url)`.
pub async fn key_set_server(keys: Vec<Value>) -> crate::support::scripted::Scripted {
    use crate::support::scripted::{Act, Scripted};
    let base = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let handler = {
        let base = std::sync::Arc::clone(&base);
        std::sync::Arc::new(move |path: &str| {
            if path.ends_with("/openid-configuration") {
                let root = base.get().cloned().unwrap_or_default();
                Act::json(200, json!({"jwks_uri": format!("{root}/jwks")}))
            } else {
                Act::json(200, json!({"keys": keys.clone()}))
            }
        })
    };
    let server = Scripted::start_with(handler).await;
    base.set(server.base_url.clone()).expect("set once");
    server
}
