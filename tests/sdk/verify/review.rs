//! The adversarial review of issue 24 items 1-7 and 14: each test drives an
//! edge the first fix left open. Paused clock wherever time matters.

use std::time::Duration;

use crate::support::verify::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentryagent_idp::Operation;
use sentryagent_idp::testing::{Failure, FakeAgentIdp};
use sentryagent_idp::verify::{Verifier, VerifyError};
use serde_json::json;

fn introspections(fake: &FakeAgentIdp) -> usize {
    fake.requests_seen(Operation::IntrospectToken)
}

/// A compact JWS with an RS256 header and AgentIdP-like claims whose
/// signature no key made: unknown until AgentIdP is asked (inactive).
fn well_formed_unknown() -> String {
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(json!({"sub": uuid::Uuid::new_v4().to_string(), "exp": now() + 600})),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// `leeway(Duration::MAX)` is a setting like any other: saturated, never a
/// panic in the request path (jsonwebtoken computes `now - leeway`).
#[tokio::test]
async fn a_leeway_of_duration_max_does_not_panic_the_local_check() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::public_key_pem(fake.public_key_pem())
        .unwrap()
        .leeway(Duration::MAX)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let checked = tokio::spawn(async move { verifier.verify(&good).await }).await;
    assert!(checked.is_ok(), "the check panicked: {checked:?}");
}

/// The service's client as a service would build it: the SDK's default
/// retry policy (429 retried, honouring a `Retry-After` up to 20 s).
fn default_client(fake: &FakeAgentIdp) -> sentryagent_idp::Client {
    fake.client_builder().build().unwrap()
}

/// Defect 2 through the client's retries: a 429 whose `Retry-After` the
/// client honours runs the introspection past the verifier's deadline; that
/// must stay a 429 (not an outage), so a revoked token is not served.
#[tokio::test(start_paused = true)]
async fn a_429_the_client_retries_past_the_deadline_does_not_switch_the_grace_on() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(30);
    let verifier = Verifier::introspection(default_client(&fake))
        .max_age(max_age)
        .grace_when_unavailable(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (_, good) = known_token(&fake, &verifier).await;
    revoke(&fake, &good).await;
    fake.fail_next(
        Operation::IntrospectToken,
        Failure::RateLimited {
            retry_after: Duration::from_secs(6),
        },
        1_000,
    );
    tokio::time::advance(max_age).await;
    let verdict = verifier.verify(&good).await;
    assert!(
        matches!(verdict, Err(VerifyError::Unavailable { .. })),
        "a revoked token was served by the grace during a 429: {verdict:?}"
    );
}

/// A token seen active keeps its free re-check after one re-check that
/// failed: the 503 of that failure must not make it "unknown", to be
/// charged to a miss budget an anonymous flood keeps spent.
#[tokio::test(start_paused = true)]
async fn a_failed_recheck_does_not_make_a_known_token_pay_the_miss_budget() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(30);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .introspection_miss_limit(1, Duration::from_secs(3600))
        .build()
        .unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    // One blip of AgentIdP at the re-check: 503 (no grace), as it should.
    tokio::time::advance(max_age).await;
    fake.fail_next(Operation::IntrospectToken, Failure::Status(502), 1);
    assert!(matches!(
        verifier.verify(&good).await,
        Err(VerifyError::Unavailable { .. })
    ));
    // The flood spends the budget.
    assert_eq!(
        verifier.verify(&well_formed_unknown()).await,
        Err(VerifyError::InvalidToken)
    );
    let before = introspections(&fake);
    let verdict = verifier.verify(&good).await;
    assert_eq!(
        verdict.as_ref().map(|p| p.agent_id),
        Ok(live),
        "a known token answered {verdict:?} after one failed re-check"
    );
    assert_eq!(introspections(&fake), before + 1);
}

/// A token seen active, idle for a while (many max ages, well within its
/// `exp`), is still known: its re-check is not charged to the budget. Real
/// time (moka evicts on its own clock), but only "at least" this long: a
/// slow machine only makes the idle longer.
#[tokio::test]
async fn an_idle_known_token_is_rechecked_without_charge_until_its_exp() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_millis(20);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .introspection_miss_limit(1, Duration::from_secs(3600))
        .build()
        .unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    tokio::time::sleep(10 * max_age).await;
    assert_eq!(
        verifier.verify(&well_formed_unknown()).await,
        Err(VerifyError::InvalidToken)
    );
    let verdict = verifier.verify(&good).await;
    assert_eq!(
        verdict.as_ref().map(|p| p.agent_id),
        Ok(live),
        "a known token idle for 10 max ages answered {verdict:?}"
    );
}

/// Defect 3 within the cooldown: anyone can make the verifier fetch the key
/// set (a token with a random `kid`), so the cooldown can always be running.
/// A token issued after that fetch, signed by a key rotated in since, cannot
/// be checked until the cooldown ends: 503 (the token may be fine), never
/// 401, which makes a client drop a good token. Junk naming a random `kid`
/// with no later `iat` stays 401.
#[tokio::test(start_paused = true)]
async fn a_rotation_within_an_attacker_started_cooldown_is_503_not_401() {
    let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
    let verifier = Verifier::jwks(&fake.base_url()).unwrap().build().unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    // After the cooldown, an anonymous token with a random kid: a fetch.
    tokio::time::advance(Duration::from_secs(11)).await;
    let random = with_header(
        &good,
        json!({"alg": "RS256", "typ": "JWT", "kid": "random"}),
    );
    assert_eq!(
        verifier.verify(&random).await,
        Err(VerifyError::InvalidToken)
    );
    assert_eq!(fake.jwks_requests_seen(), 2);
    // AgentIdP rotates its key; a token is issued (a little later).
    fake.rotate_signing_key(Duration::from_secs(3600));
    let mut claims = claims(live, "agents:read");
    claims["iat"] = json!(now() + 2);
    let rotated = fake.sign_claims(claims);
    let verdict = verifier.verify(&rotated).await;
    assert!(
        matches!(verdict, Err(VerifyError::Unavailable { .. })),
        "a token of a rotated key, within the cooldown: {verdict:?}"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        verifier.verify(&rotated).await.map(|p| p.agent_id),
        Ok(live)
    );
}

/// Junk that passes the header check still costs nothing when its own
/// claims say it cannot be live: a token (genuinely signed, even) expired
/// past the leeway, or a payload without `sub`/`exp`, is refused 401 with no
/// introspection and no unit of the miss budget.
#[tokio::test]
async fn a_token_expired_by_its_own_claims_costs_no_introspection() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let mut expired = claims(live, "agents:read");
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let header = b64(json!({"alg": "RS256", "typ": "JWT"}));
    let sig = URL_SAFE_NO_PAD.encode([7u8; 256]);
    let junk = [
        fake.sign_claims(expired),
        format!("{header}.{}.{sig}", b64(json!({}))),
        format!("{header}.{}.{sig}", b64(json!({"sub": "x"}))),
        format!("{header}.{}.{sig}", URL_SAFE_NO_PAD.encode("not json")),
    ];
    let before = introspections(&fake);
    for token in &junk {
        assert_eq!(verifier.verify(token).await, Err(VerifyError::InvalidToken));
    }
    assert_eq!(
        introspections(&fake) - before,
        0,
        "tokens that cannot be live were introspected"
    );
    // A live one still is.
    let good = token(&fake, live, "agents:read");
    assert_eq!(verifier.verify(&good).await.map(|p| p.agent_id), Ok(live));
}

/// A known token is not pushed out of the verdict cache by a flood of
/// unknown tokens refused for a spent budget: those are not cached at all,
/// so the known token keeps its free re-check.
#[tokio::test(start_paused = true)]
async fn a_flood_refused_by_the_budget_does_not_evict_known_tokens() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(30);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .capacity(16)
        .introspection_miss_limit(1, Duration::from_secs(3600))
        .build()
        .unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    assert!(verifier.verify(&good).await.is_ok());
    for _ in 0..2_000 {
        let _ = verifier.verify(&well_formed_unknown()).await;
    }
    tokio::time::advance(max_age).await;
    let verdict = verifier.verify(&good).await;
    assert_eq!(
        verdict.as_ref().map(|p| p.agent_id),
        Ok(live),
        "a known token after a flood: {verdict:?}"
    );
}
