//! The fake AgentIdP's signing-key features: the public key (PEM), OIDC
//! discovery and the JWKS at the server root with a `kid`, key rotation with a
//! grace period, arbitrary signed claims, and the request counters the
//! verifier's tests rely on.

use crate::support::jwt_part;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use sentryagent_idp::Operation;
use sentryagent_idp::testing::FakeAgentIdp;
use serde_json::{Value, json};

/// The claims of `token` if `key` verifies its RS256 signature.
fn verified(token: &str, key: &DecodingKey) -> Option<Value> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .ok()
        .map(|data| data.claims)
}

fn pem_key(pem: &str) -> DecodingKey {
    DecodingKey::from_rsa_pem(pem.as_bytes()).expect("an RSA public key PEM")
}

/// A token for the bootstrap agent, straight from `POST /token`.
async fn issue(fake: &FakeAgentIdp) -> String {
    let secret = fake.client_secret();
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/token", fake.api_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fake.client_id().as_str()),
            ("client_secret", secret.expose_secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"].as_str().unwrap().to_owned()
}

/// `active` from the fake's introspection of `token`, asked by `caller`.
async fn introspect_active(fake: &FakeAgentIdp, caller: &str, token: &str) -> bool {
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/token/introspect", fake.api_url()))
        .bearer_auth(caller)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["active"].as_bool().unwrap()
}

/// The status of `GET /agents/{bootstrap}` with `token`.
async fn api_status(fake: &FakeAgentIdp, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!(
            "{}/agents/{}",
            fake.api_url(),
            fake.bootstrap_agent_id()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn get_from_fake(fake: &FakeAgentIdp, path: &str) -> reqwest::Response {
    reqwest::get(format!("{}{path}", fake.base_url()))
        .await
        .unwrap()
}

async fn jwks(fake: &FakeAgentIdp) -> Vec<Value> {
    let body: Value = get_from_fake(fake, "/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    body["keys"].as_array().unwrap().clone()
}

fn kids(keys: &[Value]) -> Vec<&str> {
    keys.iter().map(|k| k["kid"].as_str().unwrap()).collect()
}

/// The RSA key a JWK describes.
fn jwk_key(jwk: &Value) -> DecodingKey {
    DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
        .expect("n and e in base64url")
}

// ------------------------------------------------------------ Phase 1

#[tokio::test]
async fn by_default_tokens_have_no_kid_and_no_well_known_routes_exist() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let token = issue(&fake).await;
    assert_eq!(jwt_part(&token, 0), json!({ "alg": "RS256", "typ": "JWT" }));
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        assert_eq!(
            get_from_fake(&fake, path).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(fake.jwks_requests_seen(), 0);
    assert_eq!(fake.discovery_requests_seen(), 0);
}

#[tokio::test]
async fn the_public_key_pem_verifies_issued_tokens() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let pem = fake.public_key_pem();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pem.ends_with("-----END PUBLIC KEY-----\n"));
    let token = issue(&fake).await;
    let claims = verified(&token, &pem_key(&pem)).expect("signed by the PEM's key");
    assert_eq!(claims["sub"], fake.client_id().as_str());

    // A tampered payload does not verify.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"someone-else"}"#);
    assert!(verified(&parts.join("."), &pem_key(&pem)).is_none());
}

// ------------------------------------------------------------ OIDC

#[tokio::test]
async fn discovery_names_the_endpoints_at_the_server_root() {
    let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
    let reply = get_from_fake(&fake, "/.well-known/openid-configuration").await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=300"
    );
    let doc: Value = reply.json().await.unwrap();
    let base = fake.base_url();
    let api = fake.api_url();
    assert_eq!(doc["issuer"], base.as_str());
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(doc["token_endpoint"], format!("{api}/token"));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{api}/token/introspect")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{api}/token/revoke"));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(fake.discovery_requests_seen(), 1);
    // Not under /api/v1.
    let nested = reqwest::get(format!("{api}/.well-known/jwks.json"))
        .await
        .unwrap();
    assert_eq!(nested.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_under_the_tokens_kid() {
    let fake = FakeAgentIdp::builder()
        .oidc(true)
        .jwks_max_age(Duration::from_secs(7))
        .start()
        .await
        .unwrap();
    let reply = get_from_fake(&fake, "/.well-known/jwks.json").await;
    assert_eq!(
        reply.headers()["cache-control"].to_str().unwrap(),
        "public, max-age=7"
    );
    let body: Value = reply.json().await.unwrap();
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "RS256");
    assert_eq!(jwk["kid"], "fake-key-1");
    for field in ["n", "e"] {
        let value = jwk[field].as_str().unwrap();
        assert!(
            !value.contains(['=', '+', '/']),
            "{field} is base64url without padding: {value}"
        );
    }
    assert_eq!(jwk["e"], "AQAB");

    let token = issue(&fake).await;
    let header = jwt_part(&token, 0);
    assert_eq!(header["kid"], "fake-key-1");
    assert_eq!(header["alg"], "RS256");
    assert!(verified(&token, &jwk_key(jwk)).is_some());
    assert_eq!(fake.jwks_requests_seen(), 1);
}

#[tokio::test]
async fn jwks_requests_are_counted_and_can_fail() {
    let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
    assert_eq!(jwks(&fake).await.len(), 1);
    fake.fail_jwks(true);
    let failed = get_from_fake(&fake, "/.well-known/jwks.json").await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Discovery keeps working while the key set fails.
    let discovery = get_from_fake(&fake, "/.well-known/openid-configuration").await;
    assert_eq!(discovery.status(), StatusCode::OK);
    fake.fail_jwks(false);
    assert_eq!(jwks(&fake).await.len(), 1);
    assert_eq!(fake.jwks_requests_seen(), 3);
    assert_eq!(fake.discovery_requests_seen(), 1);
}

// ------------------------------------------------------------ rotation

/// On a paused clock (the fake's key ring reads tokio's clock): the grace
/// ends when the test says, however slowly the checks during it run.
#[tokio::test(start_paused = true)]
async fn rotation_signs_with_a_new_kid_and_old_tokens_verify_during_the_grace() {
    let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
    let old_pem = fake.public_key_pem();
    let old_token = issue(&fake).await;

    let grace = Duration::from_secs(60);
    fake.rotate_signing_key(grace);
    let rotated = tokio::time::Instant::now();
    let new_pem = fake.public_key_pem();
    assert_ne!(new_pem, old_pem);
    let new_token = issue(&fake).await;
    assert_eq!(jwt_part(&new_token, 0)["kid"], "fake-key-2");
    assert!(verified(&new_token, &pem_key(&new_pem)).is_some());
    assert!(verified(&new_token, &pem_key(&old_pem)).is_none());

    // During the grace: both keys published (current first), both tokens good.
    let keys = jwks(&fake).await;
    assert_eq!(kids(&keys), ["fake-key-2", "fake-key-1"]);
    assert!(verified(&old_token, &jwk_key(&keys[1])).is_some());
    assert!(verified(&new_token, &jwk_key(&keys[0])).is_some());
    assert!(introspect_active(&fake, &new_token, &old_token).await);
    assert_eq!(api_status(&fake, &old_token).await, StatusCode::OK);
    assert!(
        rotated.elapsed() < grace,
        "the checks above ran within the grace period (on the paused clock)"
    );

    // After the grace: the old key is gone, its tokens refused.
    tokio::time::sleep_until(rotated + grace).await;
    assert_eq!(kids(&jwks(&fake).await), ["fake-key-2"]);
    assert!(!introspect_active(&fake, &new_token, &old_token).await);
    assert_eq!(
        api_status(&fake, &old_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api_status(&fake, &new_token).await, StatusCode::OK);
}

#[tokio::test]
async fn rotation_without_grace_drops_the_old_key_at_once() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let old_token = issue(&fake).await;
    fake.rotate_signing_key(Duration::ZERO);
    fake.rotate_signing_key(Duration::ZERO);
    let new_token = issue(&fake).await;
    // Phase-1 headers stay kid-less after a rotation.
    assert_eq!(
        jwt_part(&new_token, 0),
        json!({ "alg": "RS256", "typ": "JWT" })
    );
    assert_eq!(
        api_status(&fake, &old_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!introspect_active(&fake, &new_token, &old_token).await);
    assert!(verified(&new_token, &pem_key(&fake.public_key_pem())).is_some());
}

// ------------------------------------------------------------ sign_claims

#[tokio::test]
async fn sign_claims_signs_anything_with_the_current_key_and_header() {
    let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
    fake.rotate_signing_key(Duration::from_secs(60));
    let claims = json!({ "sub": "agent-x", "exp": 1, "nbf": 4_000_000_000_i64, "odd": [1, 2] });
    let token = fake.sign_claims(claims.clone());
    assert_eq!(
        jwt_part(&token, 0),
        json!({ "alg": "RS256", "typ": "JWT", "kid": "fake-key-2" })
    );
    assert_eq!(jwt_part(&token, 1), claims);
    assert!(verified(&token, &pem_key(&fake.public_key_pem())).is_some());
}

// ------------------------------------------------------------ counters

#[tokio::test]
async fn each_introspection_is_counted_once() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = fake.client_builder().build().unwrap();
    let token = SecretString::from(issue(&fake).await);
    for round in 1..=3 {
        let answer = client.tokens().introspect(&token).send().await.unwrap();
        assert!(answer.active);
        assert_eq!(fake.requests_seen(Operation::IntrospectToken), round);
    }
    // Refused introspections count too (no bearer token: 401).
    let refused = reqwest::Client::new()
        .post(format!("{}/token/introspect", fake.api_url()))
        .form(&[("token", token.expose_secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fake.requests_seen(Operation::IntrospectToken), 4);
}
