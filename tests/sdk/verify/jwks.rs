//! JWKS mode: discovery, the refetch cooldown, the stale key set kept, and
//! key rotation through the fake.

use std::time::Duration;

use crate::support::verify::*;
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::verify::{Verifier, VerifyError};
use serde_json::json;

async fn oidc_fake(max_age: Duration) -> FakeAgentIdp {
    FakeAgentIdp::builder()
        .oidc(true)
        .jwks_max_age(max_age)
        .start()
        .await
        .unwrap()
}

fn random_kid(token: &str, i: usize) -> String {
    with_header(
        token,
        json!({"alg": "RS256", "typ": "JWT", "kid": format!("random-{i}-{}", uuid::Uuid::new_v4())}),
    )
}

/// On a paused clock (the verifier's key-set times read tokio's clock): a
/// flood that takes long on a busy machine is still within the cooldown.
#[tokio::test(start_paused = true)]
async fn a_flood_of_unknown_kids_refetches_at_most_once_per_cooldown() {
    let fake = oidc_fake(Duration::from_secs(300)).await;
    let cooldown = Duration::from_secs(30);
    let verifier = Verifier::jwks(&fake.base_url())
        .unwrap()
        .jwks_refetch_cooldown(cooldown)
        .build()
        .unwrap();
    let (_, good) = known_token(&fake, &verifier).await;
    assert_eq!(
        (fake.discovery_requests_seen(), fake.jwks_requests_seen()),
        (1, 1)
    );

    // Within the cooldown of that first fetch: no refetch at all.
    let flood = futures::future::join_all((0..500).map(|i| {
        let (verifier, t) = (verifier.clone(), random_kid(&good, i));
        tokio::spawn(async move { verifier.verify(&t).await })
    }))
    .await;
    for r in flood {
        assert_eq!(r.unwrap(), Err(VerifyError::InvalidToken));
    }
    assert_eq!(fake.jwks_requests_seen(), 1);

    // After the cooldown: one refetch for the whole next flood.
    tokio::time::advance(cooldown + Duration::from_secs(1)).await;
    let flood = futures::future::join_all((0..500).map(|i| {
        let (verifier, t) = (verifier.clone(), random_kid(&good, i));
        tokio::spawn(async move { verifier.verify(&t).await })
    }))
    .await;
    for r in flood {
        assert_eq!(r.unwrap(), Err(VerifyError::InvalidToken));
    }
    assert_eq!(fake.jwks_requests_seen(), 2);
    assert_eq!(fake.discovery_requests_seen(), 1, "discovery is read once");
    // Known keys kept working throughout.
    assert!(verifier.verify(&good).await.is_ok());
}

/// On a paused clock: the key set goes stale when the test advances it.
#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_the_stale_key_set() {
    // max-age 1 s, and the verifier allows it (bounds lowered).
    let fake = oidc_fake(Duration::from_secs(1)).await;
    let verifier = Verifier::jwks(&fake.base_url())
        .unwrap()
        .jwks_cache_bounds(Duration::from_millis(100), Duration::from_secs(60))
        .jwks_refetch_cooldown(Duration::from_millis(100))
        .build()
        .unwrap();
    let (live, good) = known_token(&fake, &verifier).await;
    fake.fail_jwks(true);
    tokio::time::advance(Duration::from_secs(2)).await;
    // The key set is stale; the refresh fails; the stale set still serves.
    // (New tokens each time: a token seen before is a cache hit, which
    // reads no key set.)
    for _ in 0..5 {
        let new = token(&fake, live, "agents:read");
        assert_eq!(verifier.verify(&new).await.map(|p| p.agent_id), Ok(live));
    }
    // The refresh runs in the background (no request waits for it).
    let tried = eventually(Duration::from_secs(30), async || {
        fake.jwks_requests_seen() >= 2
    })
    .await;
    assert!(tried, "a refresh was tried");
    assert_eq!(verifier.verify(&good).await.map(|p| p.agent_id), Ok(live));
    fake.fail_jwks(false);
    let seen = fake.jwks_requests_seen();
    let refreshed = eventually(Duration::from_secs(30), async || {
        let new = token(&fake, live, "agents:read");
        verifier.verify(&new).await.is_ok() && fake.jwks_requests_seen() > seen
    })
    .await;
    assert!(refreshed, "refreshes resume once the route is back");
}

#[tokio::test]
async fn no_key_set_ever_fetched_is_503() {
    let fake = oidc_fake(Duration::from_secs(300)).await;
    fake.fail_jwks(true);
    let verifier = Verifier::jwks(&fake.base_url()).unwrap().build().unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    assert!(matches!(
        verifier.verify(&good).await,
        Err(VerifyError::Unavailable { .. })
    ));
    // Within the cooldown: refused again without a new fetch.
    let seen = fake.jwks_requests_seen();
    assert!(matches!(
        verifier.verify(&good).await,
        Err(VerifyError::Unavailable { .. })
    ));
    assert_eq!(fake.jwks_requests_seen(), seen);
}

#[tokio::test]
async fn key_rotation_new_kid_is_fetched_and_old_tokens_verify_during_grace() {
    let fake = oidc_fake(Duration::from_secs(300)).await;
    let verifier = Verifier::jwks(&fake.base_url())
        .unwrap()
        .jwks_refetch_cooldown(Duration::ZERO)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let old = token(&fake, live, "agents:read");
    assert!(verifier.verify(&old).await.is_ok());
    let pem_before = Verifier::public_key_pem(fake.public_key_pem())
        .unwrap()
        .build()
        .unwrap();

    fake.rotate_signing_key(Duration::from_secs(60));
    let new = token(&fake, live, "agents:read");
    assert_ne!(
        jsonwebtoken::decode_header(&new).unwrap().kid,
        jsonwebtoken::decode_header(&old).unwrap().kid
    );
    // The new kid is unknown: one refetch finds it.
    assert_eq!(verifier.verify(&new).await.map(|p| p.agent_id), Ok(live));
    assert_eq!(fake.jwks_requests_seen(), 2);
    // The old key is still published during the grace.
    assert!(verifier.verify(&old).await.is_ok());
    // A verifier pinned to the old PEM refuses the new key's tokens.
    assert_eq!(
        pem_before.verify(&new).await,
        Err(VerifyError::InvalidToken)
    );
    assert!(pem_before.verify(&old).await.is_ok());
}

/// Review 21, class "`Instant + Duration` and `Duration::MAX`": the key-set
/// cache bounds are user-settable durations (`jwks_cache_bounds`), and the
/// key set's lifetime is clamped into them, then added to "now" unchecked
/// (`src/verify/jwks.rs`, `fresh_until: now() + ttl`). "Cache forever" must
/// not panic the first verification.
#[tokio::test]
async fn jwks_cache_bounds_of_duration_max_do_not_panic_the_first_verify() {
    let fake = oidc_fake(Duration::from_secs(300)).await;
    let verifier = Verifier::jwks(&fake.base_url())
        .unwrap()
        .jwks_cache_bounds(Duration::MAX, Duration::MAX)
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let verdict = tokio::spawn(async move { verifier.verify(&good).await.map(|p| p.agent_id) })
        .await
        .expect("verify panicked with jwks_cache_bounds(Duration::MAX, Duration::MAX)");
    assert_eq!(verdict, Ok(live));
}

/// Issue 24, item 14: the key-set fetch follows no redirect, whatever
/// client the service gives (here reqwest's default builder, which follows
/// ten): the other origin never sees a request.
#[tokio::test]
async fn a_key_set_redirect_is_not_followed_even_with_your_own_client() {
    use crate::support::scripted::{Act, Scripted};
    let fake = oidc_fake(Duration::from_secs(300)).await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let other = Scripted::start(vec![(
        "/jwks.json",
        vec![Act::Respond(
            200,
            vec![],
            reqwest::get(format!("{}/.well-known/jwks.json", fake.base_url()))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )],
    )])
    .await;
    let location = format!("{}/jwks.json", other.base_url);
    let redirecting = Scripted::start(vec![(
        "/jwks.json",
        vec![Act::Respond(
            302,
            vec![("location", location)],
            String::new(),
        )],
    )])
    .await;
    let jwks_uri = format!("{}/jwks.json", redirecting.base_url);
    let discovery = Scripted::start(vec![(
        "/.well-known/openid-configuration",
        vec![Act::json(200, json!({ "jwks_uri": jwks_uri }))],
    )])
    .await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .http_client(reqwest::Client::builder())
        .build()
        .unwrap();
    let verdict = verifier.verify(&good).await;
    assert!(
        matches!(verdict, Err(VerifyError::Unavailable { .. })),
        "{verdict:?}"
    );
    assert_eq!(redirecting.count("/jwks.json"), 1);
    assert_eq!(other.count("/jwks.json"), 0, "the redirect was followed");
}

/// Issue 24, item 14: the discovery document is read again once its
/// `max-age` has passed, not once for the life of the process. Paused clock.
#[tokio::test(start_paused = true)]
async fn the_discovery_document_is_read_again_after_its_max_age() {
    let fake = oidc_fake(Duration::from_secs(60)).await;
    let verifier = Verifier::jwks(&fake.base_url())
        .unwrap()
        .jwks_cache_bounds(Duration::from_secs(1), Duration::from_secs(3600))
        .build()
        .unwrap();
    let live = seeded_agent(&fake, &["agents:read"]);
    assert!(
        verifier
            .verify(&token(&fake, live, "agents:read"))
            .await
            .is_ok()
    );
    assert_eq!(fake.discovery_requests_seen(), 1);
    tokio::time::advance(Duration::from_secs(120)).await;
    fake.rotate_signing_key(Duration::from_secs(3600));
    assert!(
        verifier
            .verify(&token(&fake, live, "agents:read"))
            .await
            .is_ok()
    );
    assert_eq!(fake.discovery_requests_seen(), 2);
}
