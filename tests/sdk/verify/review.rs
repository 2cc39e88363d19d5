//! The adversarial review of issue 24 items 1-7 and 14: each test drives an
//! edge the first fix left open. Paused clock wherever time matters.

use std::time::Duration;

use crate::support::verify::*;
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::verify::Verifier;

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
