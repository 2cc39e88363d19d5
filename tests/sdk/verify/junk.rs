//! Issue 24, items 1 and 2: what an anonymous caller can make the verifier
//! spend. Junk is refused locally (no introspection); well-formed unknown
//! tokens are bounded by the introspection-miss budget; and a 429 (which the
//! verifier's own misses can cause) never switches the grace on.

use std::time::Duration;

use crate::support::verify::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentryagent_idp::Operation;
use sentryagent_idp::testing::{Failure, FakeAgentIdp};
use sentryagent_idp::verify::{DEFAULT_INTROSPECTION_MISSES, Verifier, VerifyError};
use serde_json::json;

fn introspections(fake: &FakeAgentIdp) -> usize {
    fake.requests_seen(Operation::IntrospectToken)
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A compact JWS with an RS256 header and AgentIdP-like claims, but a
/// signature no key made: it could be real until AgentIdP is asked.
fn well_formed_unknown(i: usize) -> String {
    let claims = json!({
        "sub": uuid::Uuid::new_v4().to_string(),
        "scope": "agents:read",
        "jti": format!("jti-{i}"),
        "iat": now(),
        "exp": now() + 600,
    });
    format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    )
}

/// Bearer strings that cannot be an AgentIdP token: not three parts, a
/// header that is not base64url JSON, or not RS256.
fn junk(good: &str) -> Vec<String> {
    let (_, rest) = good.split_once('.').unwrap();
    let mut junk: Vec<String> = (0..40)
        .map(|i| format!("junk-{i}-{}", uuid::Uuid::new_v4()))
        .collect();
    junk.extend([
        "a.b.c".to_owned(),
        "abc".to_owned(),
        format!("{good}.extra"),
        good.rsplit_once('.').unwrap().0.to_owned(),
        format!("{}.{rest}", b64(&json!({"alg": "HS256"}))),
        format!("{}.{rest}", b64(&json!({"alg": "none"}))),
        format!("{}.{rest}", b64(&json!({"typ": "JWT"}))),
        format!("{}.{rest}", b64(&json!(["RS256"]))),
        format!("{}.{rest}", URL_SAFE_NO_PAD.encode("not json")),
        format!("e30.{rest}"),
        format!("{}.{rest}", b64(&json!({"alg": "RS256"})).replace('e', "+")),
        format!("{}..sig", b64(&json!({"alg": "RS256"}))),
    ]);
    junk
}

#[tokio::test]
async fn junk_bearer_strings_are_refused_401_without_an_introspection() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let verifier = Verifier::introspection(service_client(&fake))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let junk = junk(&good);
    for j in &junk {
        assert_eq!(
            verifier.verify(j).await,
            Err(VerifyError::InvalidToken),
            "{j}"
        );
    }
    assert_eq!(
        introspections(&fake),
        0,
        "{} junk strings were introspected",
        junk.len()
    );
    // A real token still costs its one introspection.
    assert_eq!(verifier.verify(&good).await.map(|p| p.agent_id), Ok(live));
    assert_eq!(introspections(&fake), 1);
}

/// Paused clock: the budget refills on tokio's clock, which only the test moves.
#[tokio::test(start_paused = true)]
async fn a_flood_of_well_formed_unknown_tokens_is_bounded_by_the_miss_budget() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(30);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .build()
        .unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    let before = introspections(&fake);

    let flood = 3 * DEFAULT_INTROSPECTION_MISSES as usize;
    let (mut refused, mut unavailable) = (0, 0);
    for i in 0..flood {
        match verifier.verify(&well_formed_unknown(i)).await {
            Err(VerifyError::InvalidToken) => refused += 1,
            Err(e @ VerifyError::Unavailable { .. }) => {
                unavailable += 1;
                let response = e.to_response::<String>();
                assert_eq!(response.status(), 503);
                assert!(response.headers().contains_key("retry-after"));
            }
            other => panic!("{other:?}"),
        }
    }
    let spent = introspections(&fake) - before;
    assert!(
        spent <= DEFAULT_INTROSPECTION_MISSES as usize,
        "{flood} unknown tokens made {spent} introspections"
    );
    assert_eq!(refused, spent);
    assert_eq!(unavailable, flood - spent);

    // A new real token could be real: 503 while the budget is spent (no
    // remote call), served once it refills.
    let fresh = token(&fake, live, "agents:read");
    let before = introspections(&fake);
    assert!(matches!(
        verifier.verify(&fresh).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert_eq!(introspections(&fake), before);

    // The token known active is not held hostage: past its max age, with
    // the budget spent again, it is asked about again and passes.
    tokio::time::advance(max_age).await;
    for i in 0..flood {
        let _ = verifier.verify(&well_formed_unknown(flood + i)).await;
    }
    let before = introspections(&fake);
    assert_eq!(verifier.verify(&good).await.map(|p| p.agent_id), Ok(live));
    assert_eq!(introspections(&fake), before + 1);

    tokio::time::advance(Duration::from_secs(120)).await;
    assert_eq!(verifier.verify(&fresh).await.map(|p| p.agent_id), Ok(live));
}

/// Paused clock: max age passes when the test says.
#[tokio::test(start_paused = true)]
async fn a_revoked_token_stays_refused_after_max_age_during_a_429_flood() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let max_age = Duration::from_secs(30);
    let verifier = Verifier::introspection(service_client(&fake))
        .max_age(max_age)
        .grace_when_unavailable(Duration::from_secs(3600))
        .build()
        .unwrap();
    let (_, good) = known_token(&fake, &verifier).await;
    revoke(&fake, &good).await;
    // AgentIdP rate-limits the service (as the verifier's misses could make it).
    fake.fail_next(
        Operation::IntrospectToken,
        Failure::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        1_000,
    );
    tokio::time::advance(max_age).await;
    for _ in 0..5 {
        let verdict = verifier.verify(&good).await;
        assert!(
            matches!(verdict, Err(VerifyError::Unavailable { .. })),
            "a revoked token was served by the grace during a 429: {verdict:?}"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
    }
}

/// Paused clock: max age passes when the test says.
#[tokio::test(start_paused = true)]
async fn the_grace_is_served_for_a_5xx_but_not_for_another_4xx() {
    let max_age = Duration::from_secs(30);
    for (failure, graced) in [
        (Failure::Status(400), false),
        (Failure::Status(403), false),
        (Failure::Status(429), false),
        (Failure::Status(502), true),
        (Failure::DropConnection, true),
    ] {
        let fake = FakeAgentIdp::start().await.unwrap();
        let live = seeded_agent(&fake, &["agents:read"]);
        let good = token(&fake, live, "agents:read");
        let verifier = Verifier::introspection(service_client(&fake))
            .max_age(max_age)
            .grace_when_unavailable(Duration::from_secs(3600))
            .build()
            .unwrap();
        assert!(verifier.verify(&good).await.is_ok());
        tokio::time::advance(max_age).await;
        fake.fail_next(Operation::IntrospectToken, failure.clone(), 1);
        let verdict = verifier.verify(&good).await;
        assert_eq!(verdict.is_ok(), graced, "{failure:?}: {verdict:?}");
        if !graced {
            assert!(matches!(verdict, Err(VerifyError::Unavailable { .. })));
        }
    }
}
