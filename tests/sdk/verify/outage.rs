//! Issue 24, items 3, 4 and 5: when AgentIdP (introspection, discovery or
//! the key set) is down, hung or answering garbage, the verifier answers
//! 503 with `Retry-After` by its own deadline, never 401 for a token that may
//! be fine; waiters for the key set share one fetch. Every test runs on
//! tokio's paused clock: a hung server costs no real time, and "by the
//! deadline" is read on the clock the verifier uses.

use std::time::Duration;

use crate::support::scripted::{Act, Scripted, scripted_static_builder};
use crate::support::verify::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::verify::{Verifier, VerifyError};
use serde_json::json;
use tokio::time::Instant;

/// The verifier's default deadline.
const DEADLINE: Duration = Duration::from_secs(5);
const HOUR: Duration = Duration::from_secs(3600);

/// A key rotation, for the JWKS tests: an agent, a token of the first key
/// (`old`), the key set holding only that key (`held`), the key set after
/// the rotation (`rotated`) and a token of the new key (`new`). The fake
/// only signs; the tests serve the key sets themselves.
struct Rotation {
    _fake: FakeAgentIdp,
    live: uuid::Uuid,
    old: String,
    held: serde_json::Value,
    rotated: serde_json::Value,
    new: String,
}

async fn rotation() -> Rotation {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let old = token(&fake, live, "agents:read");
    let held = key_set_of(&fake).await;
    fake.rotate_signing_key(HOUR);
    let rotated = key_set_of(&fake).await;
    let new = token(&fake, live, "agents:read");
    Rotation {
        _fake: fake,
        live,
        old,
        held,
        rotated,
        new,
    }
}

fn hang() -> Act {
    Act::After(HOUR, Box::new(Act::json(200, json!({}))))
}

fn unavailable(verdict: &Result<sentryagent_idp::verify::AgentPrincipal, VerifyError>) -> bool {
    match verdict {
        Err(e @ VerifyError::Unavailable { .. }) => {
            let response = e.to_response::<String>();
            response.status() == 503 && response.headers().contains_key("retry-after")
        }
        _ => false,
    }
}

/// A well-formed token (RS256 compact JWS) AgentIdP is to be asked about.
fn bearer() -> String {
    let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT"})),
        part(json!({"sub": uuid::Uuid::new_v4().to_string(), "exp": now() + 600})),
        URL_SAFE_NO_PAD.encode([1u8; 256])
    )
}

#[tokio::test(start_paused = true)]
async fn a_hung_introspection_answers_503_at_the_verifiers_deadline() {
    let hung = Scripted::start(vec![("/token/introspect", vec![hang()])]).await;
    // The client's own policy: 3 attempts of 30 s each. The verifier's
    // deadline is its own.
    let client = scripted_static_builder(&hung.base_url).build().unwrap();
    let verifier = Verifier::introspection(client).build().unwrap();
    let start = Instant::now();
    let verdict = verifier.verify(&bearer()).await;
    let took = start.elapsed();
    assert!(unavailable(&verdict), "{verdict:?}");
    assert!(took <= DEADLINE, "answered after {took:?}");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_a_setting_and_covers_discovery_and_the_key_set() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    // Discovery hangs.
    let discovery =
        Scripted::start(vec![("/.well-known/openid-configuration", vec![hang()])]).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    let start = Instant::now();
    let verdict = verifier.verify(&good).await;
    assert!(unavailable(&verdict), "{verdict:?}");
    assert_eq!(start.elapsed(), Duration::from_secs(2));

    // The key set hangs (default deadline).
    let keys = Scripted::start(vec![("/jwks.json", vec![hang()])]).await;
    let discovery = discovery_of(&keys).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .build()
        .unwrap();
    let start = Instant::now();
    let verdict = verifier.verify(&good).await;
    assert!(unavailable(&verdict), "{verdict:?}");
    assert!(
        start.elapsed() <= DEADLINE,
        "answered after {:?}",
        start.elapsed()
    );

    // Introspection at first sight hangs.
    let hung = Scripted::start(vec![("/token/introspect", vec![hang()])]).await;
    let verifier = Verifier::public_key_pem(fake.public_key_pem())
        .unwrap()
        .introspect_first_sight(scripted_static_builder(&hung.base_url).build().unwrap())
        .build()
        .unwrap();
    let start = Instant::now();
    let verdict = verifier.verify(&good).await;
    assert!(unavailable(&verdict), "{verdict:?}");
    assert!(
        start.elapsed() <= DEADLINE,
        "answered after {:?}",
        start.elapsed()
    );
}

/// A discovery document naming `keys`' `/jwks.json`.
async fn discovery_of(keys: &Scripted) -> Scripted {
    let jwks_uri = format!("{}/jwks.json", keys.base_url);
    Scripted::start(vec![(
        "/.well-known/openid-configuration",
        vec![Act::json(200, json!({ "jwks_uri": jwks_uri }))],
    )])
    .await
}

/// The fake's key set as it publishes it now.
async fn key_set_of(fake: &FakeAgentIdp) -> serde_json::Value {
    reqwest::get(format!("{}/.well-known/jwks.json", fake.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_unknown_kid_while_the_key_set_cannot_be_refreshed_is_503_not_401() {
    let Rotation {
        live,
        old,
        held,
        new,
        ..
    } = rotation().await;
    let garbage = |body: &str| Act::Respond(200, vec![], body.to_owned());
    for (name, failing) in [
        ("503", Act::json(503, json!({}))),
        ("hung", hang()),
        ("not json", garbage("<html>")),
        ("no keys", Act::json(200, json!({"keys": []}))),
        (
            "only an EC key",
            Act::json(
                200,
                json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}),
            ),
        ),
        ("closed", Act::Close),
    ] {
        let keys = Scripted::start(vec![(
            "/jwks.json",
            vec![Act::json(200, held.clone()), failing],
        )])
        .await;
        let discovery = discovery_of(&keys).await;
        let verifier = Verifier::jwks(&discovery.base_url)
            .unwrap()
            .jwks_refetch_cooldown(Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(
            verifier.verify(&old).await.map(|p| p.agent_id),
            Ok(live),
            "{name}"
        );
        let verdict = verifier.verify(&new).await;
        assert!(unavailable(&verdict), "{name}: {verdict:?}");
        assert!(
            keys.count("/jwks.json") >= 2,
            "{name}: no refresh was tried"
        );
        // The held key set still serves the kid it has.
        assert_eq!(
            verifier.verify(&old).await.map(|p| p.agent_id),
            Ok(live),
            "{name}"
        );
        // After a failed fetch, the next one reads the discovery document again.
        // (A hung fetch ends at the same instant as its first waiter.)
        tokio::time::sleep(Duration::from_secs(1)).await;
        let discovery_path = "/.well-known/openid-configuration";
        assert_eq!(discovery.count(discovery_path), 1, "{name}");
        assert!(unavailable(&verifier.verify(&new).await), "{name}");
        assert_eq!(discovery.count(discovery_path), 2, "{name}");
    }

    // A kid still unknown after a successful refresh is refused: 401.
    let keys = Scripted::start(vec![("/jwks.json", vec![Act::json(200, held.clone())])]).await;
    let discovery = discovery_of(&keys).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .jwks_refetch_cooldown(Duration::ZERO)
        .build()
        .unwrap();
    assert!(verifier.verify(&old).await.is_ok());
    assert_eq!(verifier.verify(&new).await, Err(VerifyError::InvalidToken));
    assert_eq!(keys.count("/jwks.json"), 2);
}

#[tokio::test(start_paused = true)]
async fn waiters_share_the_one_key_set_fetch_in_flight_and_all_are_answered_by_the_deadline() {
    let Rotation { old, held, new, .. } = rotation().await;
    let keys = Scripted::start(vec![("/jwks.json", vec![Act::json(200, held), hang()])]).await;
    let discovery = discovery_of(&keys).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .build()
        .unwrap();
    assert!(verifier.verify(&old).await.is_ok());
    // Past the cooldown of that first fetch.
    tokio::time::advance(Duration::from_secs(60)).await;

    let start = Instant::now();
    let k = 50;
    let answers = futures::future::join_all((0..k).map(|_| {
        let (verifier, new) = (verifier.clone(), new.clone());
        tokio::spawn(async move {
            let verdict = verifier.verify(&new).await;
            (verdict, Instant::now())
        })
    }))
    .await;
    for answer in answers {
        let (verdict, at) = answer.unwrap();
        assert!(unavailable(&verdict), "{verdict:?}");
        assert!(at - start <= DEADLINE, "answered after {:?}", at - start);
    }
    assert_eq!(keys.count("/jwks.json"), 2, "{k} waiters, one fetch");
    // The cooldown counts from the end of that fetch: no new fetch at once.
    assert!(unavailable(&verifier.verify(&new).await));
    assert_eq!(keys.count("/jwks.json"), 2);
}

/// The waiters of one fetch are bounded (1,024): beyond that, 503 at once
/// rather than a queue that grows with the flood.
#[tokio::test(start_paused = true)]
async fn waiters_beyond_the_bound_get_503_at_once() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    let keys = Scripted::start(vec![("/jwks.json", vec![hang()])]).await;
    let discovery = discovery_of(&keys).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .build()
        .unwrap();
    let (bound, extra) = (1024, 100);
    let start = Instant::now();
    let answers = futures::future::join_all((0..bound + extra).map(|_| {
        let (verifier, good) = (verifier.clone(), good.clone());
        tokio::spawn(async move {
            let verdict = verifier.verify(&good).await;
            (verdict, Instant::now())
        })
    }))
    .await;
    let mut at_once = 0;
    for answer in answers {
        let (verdict, at) = answer.unwrap();
        assert!(unavailable(&verdict), "{verdict:?}");
        assert!(at - start <= DEADLINE);
        at_once += usize::from(at == start);
    }
    assert_eq!(at_once, extra, "{extra} beyond the bound answered at once");
    assert_eq!(keys.count("/jwks.json"), 1);
}

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// A discovery server naming each of `uris` in turn (the last repeats),
/// then acting `then`, if given, for good.
async fn discovery_naming(uris: &[String], then: Option<Act>) -> Scripted {
    let mut acts: Vec<Act> = uris
        .iter()
        .map(|uri| Act::json(200, json!({ "jwks_uri": uri })))
        .collect();
    acts.extend(then);
    Scripted::start(vec![(DISCOVERY, acts)]).await
}

/// Past the discovery document's lifetime (5 min without `max-age`) and the
/// refetch cooldown.
const PAST_DISCOVERY: Duration = Duration::from_secs(301);

/// Once the discovery document's own lifetime has passed, a key-set refresh
/// reads it again first. When discovery then cannot be read (hung, 5xx,
/// garbage, a document without a usable `jwks_uri`, a closed connection)
/// while the `jwks_uri` known already still answers, the refresh uses that
/// `jwks_uri`: a token of a key rotated in verifies, by the deadline (a hung
/// discovery is given half of it, so the key set still has time). Discovery
/// is tried again on the next refresh.
#[tokio::test(start_paused = true)]
async fn a_discovery_that_cannot_be_read_falls_back_to_the_known_jwks_uri() {
    let Rotation {
        live,
        old,
        held,
        rotated,
        new,
        ..
    } = rotation().await;
    let garbage = |body: &str| Act::Respond(200, vec![], body.to_owned());
    for (name, failing) in [
        ("hung", hang()),
        ("503", Act::json(503, json!({}))),
        ("not json", garbage("<html>")),
        ("no jwks_uri", Act::json(200, json!({"issuer": "x"}))),
        (
            "jwks_uri not a URL",
            Act::json(200, json!({"jwks_uri": "::"})),
        ),
        (
            "jwks_uri in clear text off loopback",
            Act::json(200, json!({"jwks_uri": "http://keys.example/jwks.json"})),
        ),
        ("closed", Act::Close),
    ] {
        for deadline in [DEADLINE, Duration::from_secs(1)] {
            let case = format!("{name}, deadline {deadline:?}");
            let keys = Scripted::start(vec![(
                "/jwks.json",
                vec![
                    Act::json(200, held.clone()),
                    Act::json(200, rotated.clone()),
                ],
            )])
            .await;
            let jwks_uri = format!("{}/jwks.json", keys.base_url);
            let discovery = discovery_naming(&[jwks_uri], Some(failing.clone())).await;
            let verifier = Verifier::jwks(&discovery.base_url)
                .unwrap()
                .deadline(deadline)
                .build()
                .unwrap();
            assert_eq!(
                verifier.verify(&old).await.map(|p| p.agent_id),
                Ok(live),
                "{case}"
            );
            tokio::time::advance(PAST_DISCOVERY).await;

            let start = Instant::now();
            let verdict = verifier.verify(&new).await;
            let took = start.elapsed();
            assert_eq!(
                verdict.map(|p| p.agent_id),
                Ok(live),
                "{case}: a token of the rotated key, while discovery fails"
            );
            assert!(took <= deadline, "{case}: answered after {took:?}");
            if name == "hung" {
                assert_eq!(
                    took,
                    deadline / 2,
                    "{case}: discovery gets half the deadline"
                );
            }
            assert_eq!(
                discovery.count(DISCOVERY),
                2,
                "{case}: discovery read again"
            );
            assert_eq!(keys.count("/jwks.json"), 2, "{case}");

            // The next refresh (a kid nobody published, past the cooldown)
            // tries discovery again, and falls back again.
            tokio::time::advance(Duration::from_secs(11)).await;
            let unknown = with_header(&new, json!({"alg": "RS256", "typ": "JWT", "kid": "nobody"}));
            assert_eq!(
                verifier.verify(&unknown).await,
                Err(VerifyError::InvalidToken),
                "{case}: refused after a refresh that succeeded"
            );
            assert_eq!(
                discovery.count(DISCOVERY),
                3,
                "{case}: discovery tried again"
            );
            assert_eq!(keys.count("/jwks.json"), 3, "{case}");
        }
    }
}

/// Only a discovery that answers with a valid `jwks_uri` replaces the one
/// known: the key set is then read there, and a later discovery failure
/// falls back to that new one, not to the first.
#[tokio::test(start_paused = true)]
async fn a_discovery_naming_another_jwks_uri_replaces_the_known_one() {
    let Rotation {
        live,
        old,
        held,
        rotated,
        new,
        ..
    } = rotation().await;
    let first = Scripted::start(vec![("/jwks.json", vec![Act::json(200, held)])]).await;
    let moved = Scripted::start(vec![("/jwks.json", vec![Act::json(200, rotated)])]).await;
    let uris = [
        format!("{}/jwks.json", first.base_url),
        format!("{}/jwks.json", moved.base_url),
    ];
    let discovery = discovery_naming(&uris, Some(Act::json(503, json!({})))).await;
    let verifier = Verifier::jwks(&discovery.base_url)
        .unwrap()
        .build()
        .unwrap();
    assert!(verifier.verify(&old).await.is_ok());
    tokio::time::advance(PAST_DISCOVERY).await;
    assert_eq!(verifier.verify(&new).await.map(|p| p.agent_id), Ok(live));
    assert_eq!(
        (first.count("/jwks.json"), moved.count("/jwks.json")),
        (1, 1)
    );

    // Discovery now fails (503): the fallback is the jwks_uri it named last.
    tokio::time::advance(PAST_DISCOVERY).await;
    let unknown = with_header(&new, json!({"alg": "RS256", "typ": "JWT", "kid": "nobody"}));
    assert_eq!(
        verifier.verify(&unknown).await,
        Err(VerifyError::InvalidToken)
    );
    assert_eq!(discovery.count(DISCOVERY), 3);
    assert_eq!(
        (first.count("/jwks.json"), moved.count("/jwks.json")),
        (1, 2)
    );
}
