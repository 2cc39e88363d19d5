//! The builder's durations at their edges: a value that would silently
//! leave the verifier unable to verify a new token is refused by `build`
//! (too short) or saturated (too long); `Duration::MAX` keeps meaning "as
//! long as can be". Paused clock wherever time matters.

use std::time::Duration;

use crate::support::scripted::{Act, Scripted};
use crate::support::verify::*;
use sentryagent_idp::ErrorKind;
use sentryagent_idp::verify::{MAX_JWKS_COOLDOWN, MIN_DEADLINE, Verifier, VerifyError};
use serde_json::json;

/// A deadline too short for any remote call to answer within it made every
/// request that is not a cache hit answer 503 at once, for ever, without a
/// word at start-up. `build` refuses it in every mode, naming the setting;
/// the floor itself, and `Duration::MAX`, are accepted.
#[tokio::test]
async fn a_deadline_too_short_for_any_answer_is_refused_by_build() {
    let fake = fake_with_oidc().await;
    let floor = MIN_DEADLINE;
    for mode in MODES {
        for short in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_micros(1),
            floor - Duration::from_nanos(1),
        ] {
            let case = format!("{mode:?}, deadline {short:?}");
            let built = builder(&fake, mode).deadline(short).build();
            let error = match built {
                Ok(verifier) => panic!("{case}: accepted ({verifier:?})"),
                Err(error) => error,
            };
            assert_eq!(error.kind(), ErrorKind::Config, "{case}: {error}");
            assert!(
                error.message().contains("deadline")
                    && error.message().contains(&format!("{floor:?}")),
                "{case}: the error names neither the setting nor its floor: {error}"
            );
        }
        for fine in [floor, DEADLINE_DEFAULT, Duration::MAX] {
            let built = builder(&fake, mode).deadline(fine).build();
            assert!(built.is_ok(), "{mode:?}, deadline {fine:?}: {built:?}");
        }
    }
    // At the floor, a verifier that needs no remote call verifies.
    let live = seeded_agent(&fake, &["agents:read"]);
    let verifier = builder(&fake, Mode::Pem).deadline(floor).build().unwrap();
    assert_eq!(
        verifier
            .verify(&token(&fake, live, "agents:read"))
            .await
            .map(|p| p.agent_id),
        Ok(live)
    );
}

const DEADLINE_DEFAULT: Duration = sentryagent_idp::verify::DEFAULT_DEADLINE;

/// A key-set server whose first answer fails, then serves `keys`.
async fn failing_once_then(keys: serde_json::Value) -> (Scripted, Scripted) {
    let key_set = Scripted::start(vec![(
        "/jwks.json",
        vec![Act::json(503, json!({})), Act::json(200, keys)],
    )])
    .await;
    let jwks_uri = format!("{}/jwks.json", key_set.base_url);
    let discovery = Scripted::start(vec![(
        "/.well-known/openid-configuration",
        vec![Act::json(200, json!({ "jwks_uri": jwks_uri }))],
    )])
    .await;
    (discovery, key_set)
}

/// A refetch cooldown of `Duration::MAX` (or of days) made one failed
/// first fetch (AgentIdP restarting while the service starts) a 503 for
/// every token for the life of the process, and a key rotation the same for
/// every token of the new key. The cooldown is at most
/// [`MAX_JWKS_COOLDOWN`]: once that has passed, the key set is fetched again.
#[tokio::test(start_paused = true)]
async fn a_refetch_cooldown_of_duration_max_does_not_stop_fetches_for_ever() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let keys: serde_json::Value =
        reqwest::get(format!("{}/.well-known/jwks.json", fake.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for cooldown in [Duration::MAX, Duration::from_secs(30 * 24 * 3600)] {
        let (discovery, key_set) = failing_once_then(keys.clone()).await;
        let verifier = Verifier::jwks(&discovery.base_url)
            .unwrap()
            .jwks_refetch_cooldown(cooldown)
            .build()
            .unwrap();
        let first = verifier.verify(&token(&fake, live, "agents:read")).await;
        assert!(
            matches!(first, Err(VerifyError::Unavailable { .. })),
            "{cooldown:?}: {first:?}"
        );
        assert_eq!(key_set.count("/jwks.json"), 1);
        tokio::time::advance(MAX_JWKS_COOLDOWN).await;
        let later = verifier.verify(&token(&fake, live, "agents:read")).await;
        assert_eq!(
            later.map(|p| p.agent_id),
            Ok(live),
            "cooldown {cooldown:?}: still refused {MAX_JWKS_COOLDOWN:?} after a failed fetch"
        );
        assert_eq!(key_set.count("/jwks.json"), 2, "{cooldown:?}");
    }
}

/// The durations that look alike but are not this defect stay allowed:
/// `max_age`, `negative_ttl` and `agent_status_max_age` of zero mean "ask
/// AgentIdP every time", and a verifier so built still verifies (and
/// refuses a revoked token every time).
#[tokio::test]
async fn zero_max_ages_mean_ask_every_time_and_still_verify() {
    use sentryagent_idp::Operation::{GetAgent, IntrospectToken};
    let fake = fake_with_oidc().await;
    for mode in MODES {
        let verifier = builder(&fake, mode)
            .max_age(Duration::ZERO)
            .negative_ttl(Duration::ZERO)
            .check_agent_status(service_client(&fake))
            .agent_status_max_age(Duration::ZERO)
            .build()
            .unwrap();
        let live = seeded_agent(&fake, &["agents:read"]);
        let good = token(&fake, live, "agents:read");
        let introspecting = !matches!(mode, Mode::Pem | Mode::Jwks);
        let (statuses, introspections) = (
            fake.requests_seen(GetAgent),
            fake.requests_seen(IntrospectToken),
        );
        for _ in 0..3 {
            assert_eq!(
                verifier.verify(&good).await.map(|p| p.agent_id),
                Ok(live),
                "{mode:?}"
            );
        }
        assert_eq!(
            fake.requests_seen(GetAgent) - statuses,
            3,
            "{mode:?}: the status is asked every time"
        );
        assert_eq!(
            fake.requests_seen(IntrospectToken) - introspections,
            if introspecting { 3 } else { 0 },
            "{mode:?}: introspected every time (max_age zero)"
        );
        if introspecting {
            revoke(&fake, &good).await;
            let before = fake.requests_seen(IntrospectToken);
            for _ in 0..2 {
                assert_eq!(
                    verifier.verify(&good).await,
                    Err(VerifyError::InvalidToken),
                    "{mode:?}"
                );
            }
            assert_eq!(
                fake.requests_seen(IntrospectToken) - before,
                2,
                "{mode:?}: a refused token is asked about again (negative_ttl zero)"
            );
        }
    }
}
