//! Issue 24, items 6 and 7: `issuer`/`audience` in introspection mode, and
//! `Duration::MAX` settings with an answer that has no `exp` (RFC 7662 makes
//! every claim but `active` optional). AgentIdP here is a scripted server,
//! to answer exactly what each case needs.

use std::time::Duration;

use crate::support::scripted::{Act, Scripted, scripted_static_builder};
use crate::support::verify::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentryagent_idp::verify::{Verifier, VerifierBuilder, VerifyError};
use serde_json::{Value, json};

const AGENT: &str = "6f1c1f7e-4a0b-4c43-9a57-2f1bb1d0c0de";

/// A token that passes the local syntax checks (a compact JWS, RS256).
fn bearer() -> String {
    bearer_until(now() + 600)
}

/// [`bearer`] with its own `exp` at `exp`.
fn bearer_until(exp: i64) -> String {
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT"})),
        part(json!({"sub": AGENT, "exp": exp})),
        URL_SAFE_NO_PAD.encode([1u8; 256])
    )
}

/// An active answer without `exp`, plus `extra` claims.
fn active(extra: Value) -> Value {
    let mut answer =
        json!({"active": true, "sub": AGENT, "client_id": AGENT, "scope": "agents:read"});
    for (k, v) in extra.as_object().unwrap() {
        answer[k] = v.clone();
    }
    answer
}

async fn agentidp(answers: Vec<Act>) -> Scripted {
    Scripted::start(vec![("/token/introspect", answers)]).await
}

fn introspecting(server: &Scripted) -> VerifierBuilder {
    Verifier::introspection(
        scripted_static_builder(&server.base_url)
            .retry_policy(sentryagent_idp::RetryPolicy::disabled())
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn introspection_mode_checks_issuer_and_audience_against_the_answer() {
    let me = "https://billing.example";
    let idp = "https://idp.example";
    for (answer, issuer, audience, accepted) in [
        (json!({}), None, None, true),
        (json!({"aud": "https://other.example"}), None, None, true),
        (
            json!({"aud": "https://other.example"}),
            None,
            Some(me),
            false,
        ),
        (
            json!({"aud": ["https://other.example"]}),
            None,
            Some(me),
            false,
        ),
        (json!({"aud": me}), None, Some(me), true),
        (
            json!({"aud": ["https://other.example", me]}),
            None,
            Some(me),
            true,
        ),
        (json!({}), None, Some(me), false),
        (
            json!({"iss": "https://evil.example"}),
            Some(idp),
            None,
            false,
        ),
        (json!({"iss": idp}), Some(idp), None, true),
        (json!({}), Some(idp), None, false),
        (json!({"iss": idp, "aud": me}), Some(idp), Some(me), true),
        (json!({"iss": idp, "aud": "x"}), Some(idp), Some(me), false),
    ] {
        let server = agentidp(vec![Act::json(200, active(answer.clone()))]).await;
        let mut builder = introspecting(&server);
        if let Some(issuer) = issuer {
            builder = builder.issuer(issuer);
        }
        if let Some(audience) = audience {
            builder = builder.audience(audience);
        }
        let verdict = builder.build().unwrap().verify(&bearer()).await;
        let case =
            format!("answer {answer}, issuer {issuer:?}, audience {audience:?}: {verdict:?}");
        assert_eq!(server.count("/token/introspect"), 1, "{case}");
        if accepted {
            assert!(verdict.is_ok(), "{case}");
        } else {
            assert_eq!(verdict, Err(VerifyError::InvalidToken), "{case}");
        }
    }
}

/// Paused clock: max age and the grace's retry pass when the test says.
#[tokio::test(start_paused = true)]
async fn duration_max_settings_with_an_answer_without_exp_do_not_panic() {
    let max = Duration::MAX;
    for (max_age, grace) in [
        (max, None),
        (max, Some(max)),
        (Duration::from_secs(1), Some(max)),
        (max, Some(Duration::from_secs(1))),
    ] {
        // Active without `exp`, then AgentIdP fails (the grace's path).
        let server = agentidp(vec![
            Act::json(200, active(json!({}))),
            Act::json(
                503,
                json!({"code": "SERVICE_UNAVAILABLE", "message": "down"}),
            ),
        ])
        .await;
        let mut builder = introspecting(&server).max_age(max_age).deadline(max);
        if let Some(grace) = grace {
            builder = builder.grace_when_unavailable(grace);
        }
        let verifier = builder.build().unwrap();
        let case = format!("max_age {max_age:?}, grace {grace:?}");
        let run = tokio::spawn(async move {
            let token = bearer();
            let first = verifier.verify(&token).await.map(|p| p.agent_id);
            tokio::time::advance(Duration::from_secs(2)).await;
            let second = verifier.verify(&token).await.map(|p| p.agent_id);
            (first, second)
        })
        .await;
        let (first, second) = run.unwrap_or_else(|e| panic!("{case}: verify panicked: {e}"));
        let agent: uuid::Uuid = AGENT.parse().unwrap();
        assert_eq!(first, Ok(agent), "{case}");
        // Served from the cache, or by the grace (on for every case that
        // gets past its max age here).
        assert_eq!(second, Ok(agent), "{case}");
    }
}

/// The verdict cached from an answer without `exp` (RFC 7662 makes it
/// optional) ends at the token's own `exp`, as the module docs promise
/// ("never past the token's `exp`"): in introspection mode the token's
/// `exp` was checked on every request until the cache hit came before
/// that check; at first sight the signed `exp` was checked once only.
/// The tokio clock is paused (the cache would stay fresh for an hour by
/// it); the wall clock passes the token's `exp` for real, in about 2 s.
#[tokio::test(start_paused = true)]
async fn a_verdict_from_an_answer_without_exp_ends_at_the_tokens_own_exp() {
    let key = TestKey::generate();
    for first_sight in [false, true] {
        // A token 2 s from its exp, verified while it still had at least a
        // second to live: on a busy machine, tried again with a new token
        // (bounded) rather than failed.
        let mut verified = None;
        for _ in 0..5 {
            let server = agentidp(vec![Act::json(200, active(json!({})))]).await;
            let exp = now() + 2;
            let (builder, token) = if first_sight {
                let client = scripted_static_builder(&server.base_url)
                    .retry_policy(sentryagent_idp::RetryPolicy::disabled())
                    .build()
                    .unwrap();
                let builder = Verifier::public_key_pem(&key.public_pem)
                    .unwrap()
                    .introspect_first_sight(client);
                let claims = json!({"sub": AGENT, "exp": exp, "scope": "agents:read"});
                (
                    builder,
                    key.sign(json!({"alg": "RS256", "typ": "JWT"}), &claims),
                )
            } else {
                (introspecting(&server), bearer_until(exp))
            };
            let verifier = builder
                .leeway(Duration::ZERO)
                .max_age(Duration::from_secs(3600))
                .build()
                .unwrap();
            let first = verifier.verify(&token).await;
            if now() < exp {
                assert!(first.is_ok(), "first sight {first_sight}: {first:?}");
                verified = Some((server, verifier, token, exp));
                break;
            }
        }
        let (_server, verifier, token, exp) =
            verified.expect("a token verified within its lifetime in 5 tries");
        // Bounded: 40 steps of 100 ms of wall clock.
        for _ in 0..40 {
            if now() > exp {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(now() > exp, "the wall clock passed the token's exp");
        assert_eq!(
            verifier.verify(&token).await,
            Err(VerifyError::InvalidToken),
            "first sight {first_sight}: a token past its own exp is served from the cache"
        );
    }
}
