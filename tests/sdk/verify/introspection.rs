//! The introspection cache: single flight, the revocation bound, the
//! negative cache, failing closed, and the opt-in grace.

use std::time::Duration;

use crate::support::verify::*;
use futures::future::join_all;
use sentryagent_idp::testing::{Failure, FakeAgentIdp};
use sentryagent_idp::verify::{Verifier, VerifyError};
use sentryagent_idp::{ExposeSecret, Operation, Scope};
use serde_json::json;

fn introspections(fake: &FakeAgentIdp) -> usize {
    fake.requests_seen(Operation::IntrospectToken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_requests_with_one_new_token_make_one_introspection() {
    let fake = FakeAgentIdp::builder()
        .latency(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let results = join_all((0..1_000).map(|_| {
        let (verifier, good) = (verifier.clone(), good.clone());
        tokio::spawn(async move { verifier.verify(&good).await })
    }))
    .await;
    for result in results {
        assert_eq!(result.unwrap().map(|p| p.agent_id), Ok(live));
    }
    assert_eq!(introspections(&fake), 1);

    // A flood of one bad token: one introspection, then the negative cache.
    let bad = tampered(&good);
    let results = join_all((0..1_000).map(|_| {
        let (verifier, bad) = (verifier.clone(), bad.clone());
        tokio::spawn(async move { verifier.verify(&bad).await })
    }))
    .await;
    for result in results {
        assert_eq!(result.unwrap(), Err(VerifyError::InvalidToken));
    }
    for _ in 0..100 {
        assert_eq!(verifier.verify(&bad).await, Err(VerifyError::InvalidToken));
    }
    assert_eq!(introspections(&fake), 2);
}

/// On a paused clock (the verifier's cache reads tokio's clock): max age
/// passes when the test advances it, not while a slow machine checks.
#[tokio::test(start_paused = true)]
async fn a_revocation_is_seen_within_max_age_and_not_before_the_cache_says_so() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(60);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .build()
        .unwrap();
    let (_, good) = known_token(&fake, &verifier).await;
    revoke(&fake, &good).await;
    // Still cached as active: no new introspection yet (the documented bound).
    let before = introspections(&fake);
    assert!(verifier.verify(&good).await.is_ok());
    assert_eq!(introspections(&fake), before);
    // Past max_age, the next request asks again and sees the revocation.
    tokio::time::advance(max_age).await;
    assert_eq!(verifier.verify(&good).await, Err(VerifyError::InvalidToken));
    assert_eq!(introspections(&fake), before + 1);
}

/// On a paused clock: the twenty checks run within max age however slow
/// the machine, and max age ends when the test advances the clock.
#[tokio::test(start_paused = true)]
async fn a_decommissioned_agent_is_refused_within_max_age() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(60);
    let verifier = builder_pem_first_sight(&fake)
        .max_age(max_age)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    for _ in 0..20 {
        assert!(verifier.verify(&good).await.is_ok());
    }
    assert_eq!(introspections(&fake), 1, "first sight only");
    service_client(&fake)
        .agents()
        .decommission(live)
        .send()
        .await
        .unwrap();
    tokio::time::advance(max_age).await;
    assert_eq!(verifier.verify(&good).await, Err(VerifyError::InvalidToken));
    // A token failing the local check is never introspected.
    let before = introspections(&fake);
    assert_eq!(
        verifier.verify(&tampered(&good)).await,
        Err(VerifyError::InvalidToken)
    );
    assert_eq!(introspections(&fake), before);
}

fn builder_pem_first_sight(fake: &FakeAgentIdp) -> sentryagent_idp::verify::VerifierBuilder {
    Verifier::public_key_pem(fake.public_key_pem())
        .unwrap()
        .introspect_first_sight(service_client(fake))
}

#[tokio::test]
async fn agentidp_down_is_503_not_401_and_is_not_cached() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    for failure in [
        Failure::Status(503),
        Failure::DropConnection,
        Failure::Status(500),
        Failure::RateLimited {
            retry_after: Duration::from_secs(7),
        },
    ] {
        fake.fail_next(Operation::IntrospectToken, failure.clone(), 1);
        let refused = verifier.verify(&good).await.unwrap_err();
        assert!(
            matches!(refused, VerifyError::Unavailable { .. }),
            "{failure:?}: {refused:?}"
        );
        let response = refused.to_response::<String>();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        assert!(!response.headers().contains_key("www-authenticate"));
        if let Failure::RateLimited { .. } = failure {
            assert_eq!(response.headers()["retry-after"], "7");
        }
    }
    // The failure was not cached: AgentIdP back, the token passes.
    assert_eq!(verifier.verify(&good).await.map(|p| p.agent_id), Ok(live));

    // The service's own credentials lacking `tokens:read`: 503 too, not 401.
    let weak = fake
        .client_builder()
        .scopes([Scope::AGENTS_READ])
        .build()
        .unwrap();
    let verifier = Verifier::introspection(weak).build().unwrap();
    assert!(matches!(
        verifier.verify(&good).await,
        Err(VerifyError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn grace_keeps_known_active_verdicts_while_agentidp_is_down_never_past_exp() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_millis(200);
    let graced = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .grace_when_unavailable(Duration::from_secs(60))
        .build()
        .unwrap();
    let strict = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    // Expires in 5 s (real time: `exp` is checked against the system clock,
    // which no test clock moves): the grace must stop there.
    let mut short = claims(live, "agents:read");
    short["exp"] = json!(now() + 5);
    let short = fake.sign_claims(short);
    let never_seen = token(&fake, live, "agents:read");
    for t in [&good, &short] {
        assert!(graced.verify(t).await.is_ok());
        assert!(strict.verify(t).await.is_ok());
    }

    fake.fail_next(Operation::IntrospectToken, Failure::Status(503), 10_000);
    tokio::time::sleep(max_age + Duration::from_millis(50)).await;
    assert_eq!(graced.verify(&good).await.map(|p| p.agent_id), Ok(live));
    assert!(matches!(
        strict.verify(&good).await,
        Err(VerifyError::Unavailable { .. })
    ));
    // Grace serves only what was known active.
    assert!(matches!(
        graced.verify(&never_seen).await,
        Err(VerifyError::Unavailable { .. })
    ));

    // Past the short token's exp, no grace.
    let passed = eventually(Duration::from_secs(30), async || now() > short_exp(&short)).await;
    assert!(passed);
    assert!(graced.verify(&short).await.is_err());
    assert_eq!(graced.verify(&good).await.map(|p| p.agent_id), Ok(live));
}

fn short_exp(token: &str) -> i64 {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn the_real_grant_token_verifies_and_its_principal_is_complete() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let token = fake
        .client_builder()
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    let principal = verifier.verify(token.expose_secret()).await.unwrap();
    assert_eq!(principal.agent_id, fake.bootstrap_agent_id());
    assert_eq!(principal.client_id, fake.client_id());
    assert!(principal.has_all(&Scope::DOCUMENTED));
    assert!(principal.jti.is_some());
    assert!(principal.expires_at.unwrap() > principal.issued_at.unwrap());
    let debug = format!("{principal:?} {verifier:?}");
    assert!(!debug.contains(token.expose_secret()));
}

/// Review 21, class "`Instant + Duration` and `Duration::MAX`": the negative
/// TTL is a user-settable duration added to "now" unchecked
/// (`src/verify/introspect.rs`, `fresh_until: now + settings.negative_ttl`).
/// With "keep refusals forever" any caller sending a token AgentIdP calls
/// inactive (here a tampered one: anyone can make one) panics the verify call.
#[tokio::test]
async fn a_negative_ttl_of_duration_max_does_not_panic_on_an_inactive_token() {
    let fake = fake_with_oidc().await;
    let verifier = Verifier::introspection(service_client(&fake))
        .negative_ttl(Duration::MAX)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let junk = tampered(&token(&fake, live, "agents:read"));
    let verdict = tokio::spawn(async move { verifier.verify(&junk).await.map(|p| p.agent_id) })
        .await
        .expect("verify panicked with negative_ttl(Duration::MAX)");
    assert_eq!(
        verdict,
        Err(sentryagent_idp::verify::VerifyError::InvalidToken)
    );
}

/// Review 21, class "hints from a server used without bounds": AgentIdP's
/// `Retry-After` goes, unclamped, into the verifier's own 503
/// (`src/verify/introspect.rs`: `error.retry_after().unwrap_or(..)`), so a
/// year-long hint (from AgentIdP or anything in front of it) tells every
/// caller of the service to stay away for a year. Clamp it to a named ceiling.
#[tokio::test]
async fn agentidp_retry_after_reaches_the_services_503_bounded() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let year = Duration::from_secs(365 * 24 * 3600);
    fake.fail_next(
        Operation::IntrospectToken,
        Failure::RateLimited { retry_after: year },
        1,
    );
    let refused = verifier.verify(&good).await.unwrap_err();
    let response = refused.to_response::<String>();
    assert_eq!(response.status(), 503);
    let seconds: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        seconds <= 24 * 3600,
        "the service answers Retry-After: {seconds} (AgentIdP's hint, unbounded)"
    );
}
