//! Every mode × every case of issue 11: each cell a real assertion. Where a
//! mode cannot see something (a local check cannot see a revocation before
//! `exp`), the cell asserts that documented behaviour.

use crate::support::verify::*;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use sentryagent_idp::verify::{RequireScopes, VerifyError};
use sentryagent_idp::{ExposeSecret, Scope, ScopeSet};
use serde_json::json;

/// What a cell expects.
#[derive(Clone, Debug, PartialEq)]
enum Want {
    Agent(uuid::Uuid),
    Refused(VerifyError),
}

use Want::{Agent, Refused};

const INVALID: Want = Refused(VerifyError::InvalidToken);

fn bearer_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    headers
}

async fn run(verifier: &sentryagent_idp::verify::Verifier, headers: &HeaderMap) -> Want {
    match verifier.verify_request_headers(headers).await {
        Ok(principal) => Agent(principal.agent_id),
        Err(e) => Refused(e),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_by_every_case() {
    let fake = fake_with_oidc().await;
    let admin = service_client(&fake);
    let all = "agents:read agents:write tokens:read audit:read";

    // One agent per case that changes server state.
    let live = seeded_agent(&fake, &["agents:read"]);
    let revoked_agent = seeded_agent(&fake, &["agents:read"]);
    let gone = seeded_agent(&fake, &["agents:read"]);
    admin
        .agents()
        .decommission(gone)
        .send()
        .await
        .expect("decommission");

    let valid = token(&fake, live, "agents:read");
    let mut expired = claims(live, "agents:read");
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 60);
    let expired = fake.sign_claims(expired);
    let mut early = claims(live, "agents:read");
    early["nbf"] = json!(now() + 600);
    let early = fake.sign_claims(early);
    let revoked = token(&fake, revoked_agent, "agents:read");
    admin
        .tokens()
        .revoke(&sentryagent_idp::SecretString::from(revoked.clone()))
        .send()
        .await
        .expect("revoke");
    let decommissioned = token(&fake, gone, "agents:read");
    let wrong_signature = tampered(&valid);
    let none = unsigned(&claims(live, all));
    let hs256 = hs256_with_public_key(&fake, &claims(live, all));
    let unknown_kid = with_header(&valid, json!({"alg": "RS256", "typ": "JWT", "kid": "nope"}));
    let odd_alg = with_header(
        &valid,
        json!({"alg": "RS512", "typ": "JWT", "kid": "fake-key-1"}),
    );

    for mode in MODES {
        let verifier = verifier(&fake, mode);
        let local = matches!(mode, Mode::Pem | Mode::Jwks);
        let cases: Vec<(&str, HeaderMap, Want)> = vec![
            ("valid", bearer_headers(&valid), Agent(live)),
            ("expired", bearer_headers(&expired), INVALID),
            // The introspection mode asks the server, whose Phase-1 tokens
            // carry no `nbf` (the fake ignores it): the server's `active` rules.
            (
                "not yet valid",
                bearer_headers(&early),
                if mode == Mode::Introspection {
                    Agent(live)
                } else {
                    INVALID
                },
            ),
            // A local check cannot see a revocation before `exp` (documented).
            (
                "revoked",
                bearer_headers(&revoked),
                if local { Agent(revoked_agent) } else { INVALID },
            ),
            (
                "decommissioned agent",
                bearer_headers(&decommissioned),
                if local { Agent(gone) } else { INVALID },
            ),
            ("wrong signature", bearer_headers(&wrong_signature), INVALID),
            ("alg none", bearer_headers(&none), INVALID),
            (
                "HS256 keyed with the public key",
                bearer_headers(&hs256),
                INVALID,
            ),
            ("RS512 header", bearer_headers(&odd_alg), INVALID),
            ("unknown kid", bearer_headers(&unknown_kid), INVALID),
            ("malformed: not a JWT", bearer_headers("abc.def"), INVALID),
            (
                "malformed: bad base64",
                bearer_headers("a~b.c~d.e~f"),
                INVALID,
            ),
            (
                "missing header",
                HeaderMap::new(),
                Refused(VerifyError::MissingToken),
            ),
            (
                "another scheme",
                {
                    let mut h = HeaderMap::new();
                    h.insert(
                        AUTHORIZATION,
                        HeaderValue::from_static("Basic dXNlcjpwdw=="),
                    );
                    h
                },
                Refused(VerifyError::MissingToken),
            ),
            (
                "duplicate header",
                {
                    let mut h = bearer_headers(&valid);
                    h.append(
                        AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {valid}")).unwrap(),
                    );
                    h
                },
                Refused(VerifyError::InvalidRequest),
            ),
            (
                "odd header",
                {
                    let mut h = HeaderMap::new();
                    h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a b"));
                    h
                },
                Refused(VerifyError::InvalidRequest),
            ),
        ];
        for (case, headers, want) in cases {
            assert_eq!(run(&verifier, &headers).await, want, "{mode:?} × {case}");
        }

        // Insufficient scope: the token is good, the route wants more.
        let principal = verifier.verify(&valid).await.expect("valid");
        let write = RequireScopes::all([Scope::AGENTS_WRITE]);
        assert_eq!(
            write.check(Some(&principal)),
            Err(VerifyError::InsufficientScope {
                required: ScopeSet::from([Scope::AGENTS_WRITE])
            }),
            "{mode:?} × insufficient scope"
        );
        assert_eq!(
            RequireScopes::all([Scope::AGENTS_READ]).check(Some(&principal)),
            Ok(())
        );
        assert_eq!(
            RequireScopes::any([Scope::AGENTS_WRITE, Scope::AGENTS_READ]).check(Some(&principal)),
            Ok(())
        );
    }
    // A bootstrap token from the real grant passes every mode too.
    let token = fake
        .client_builder()
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    for mode in MODES {
        let principal = verifier(&fake, mode).verify(token.expose_secret()).await;
        assert_eq!(
            principal.map(|p| p.agent_id),
            Ok(fake.bootstrap_agent_id()),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn issuer_and_audience_are_checked_only_when_set() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let plain = token(&fake, live, "agents:read");
    let mut with = claims(live, "agents:read");
    with["iss"] = json!("https://idp.example");
    with["aud"] = json!("orders");
    with["extra"] = json!({"unknown": "claims are ignored"});
    let with = fake.sign_claims(with);

    let lax = verifier(&fake, Mode::Pem);
    assert!(lax.verify(&plain).await.is_ok());
    assert!(lax.verify(&with).await.is_ok());

    let strict = builder(&fake, Mode::Pem)
        .issuer("https://idp.example")
        .audience("orders")
        .build()
        .unwrap();
    assert_eq!(strict.verify(&plain).await, Err(VerifyError::InvalidToken));
    assert!(strict.verify(&with).await.is_ok());
    let other = builder(&fake, Mode::Pem)
        .audience("billing")
        .build()
        .unwrap();
    assert_eq!(other.verify(&with).await, Err(VerifyError::InvalidToken));
}

#[tokio::test]
async fn leeway_allows_a_little_skew_and_no_more() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let mut just = claims(live, "agents:read");
    just["exp"] = json!(now() - 2);
    let just = fake.sign_claims(just);
    let mut sub = claims(live, "agents:read");
    sub["sub"] = json!("not-a-uuid");
    let sub = fake.sign_claims(sub);
    let verifier = verifier(&fake, Mode::Pem);
    assert!(
        verifier.verify(&just).await.is_ok(),
        "2 s past exp is within the 5 s leeway"
    );
    let strict = builder(&fake, Mode::Pem)
        .leeway(std::time::Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(strict.verify(&just).await, Err(VerifyError::InvalidToken));
    assert_eq!(
        verifier.verify(&sub).await,
        Err(VerifyError::InvalidToken),
        "sub must be a UUID"
    );
}

#[test]
fn a_pem_that_is_not_an_rsa_key_is_a_config_error() {
    let err = sentryagent_idp::verify::Verifier::public_key_pem(
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap_err();
    assert_eq!(err.kind(), sentryagent_idp::ErrorKind::Config);
    assert!(sentryagent_idp::verify::Verifier::jwks("ftp://x").is_err());
}

/// (case, token, issuer setting, audience setting, accepted)
type ClaimCase<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, bool);

/// The local modes read the claims themselves (jsonwebtoken checks only
/// the signature): each rule at its edge, in both local modes. `iss` and
/// `aud` in an odd shape fail a token only when the setting checks them.
#[tokio::test]
async fn local_claim_checks_hold_at_their_edges() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let signed = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(live, "agents:read");
        edit(&mut c);
        fake.sign_claims(c)
    };
    let idp = "https://idp.example";
    let cases: Vec<ClaimCase<'_>> = vec![
        (
            "exp 4 s past, 5 s leeway",
            signed(&|c| c["exp"] = json!(now() - 4)),
            None,
            None,
            true,
        ),
        (
            "exp 30 s past",
            signed(&|c| c["exp"] = json!(now() - 30)),
            None,
            None,
            false,
        ),
        (
            "no exp",
            signed(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
            None,
            None,
            false,
        ),
        (
            "exp a string",
            signed(&|c| c["exp"] = json!("4102444800")),
            None,
            None,
            false,
        ),
        (
            "exp a fraction",
            signed(&|c| c["exp"] = json!(4102444800.5)),
            None,
            None,
            false,
        ),
        (
            "no sub",
            signed(&|c| drop(c.as_object_mut().unwrap().remove("sub"))),
            None,
            None,
            false,
        ),
        (
            "nbf 4 s ahead",
            signed(&|c| c["nbf"] = json!(now() + 4)),
            None,
            None,
            true,
        ),
        (
            "nbf 60 s ahead",
            signed(&|c| c["nbf"] = json!(now() + 60)),
            None,
            None,
            false,
        ),
        (
            "aud in a list",
            signed(&|c| c["aud"] = json!(["billing", "orders"])),
            None,
            Some("orders"),
            true,
        ),
        (
            "aud a list without it",
            signed(&|c| c["aud"] = json!(["billing"])),
            None,
            Some("orders"),
            false,
        ),
        ("aud missing", signed(&|_| {}), None, Some("orders"), false),
        (
            "aud a number, unchecked",
            signed(&|c| c["aud"] = json!(7)),
            None,
            None,
            true,
        ),
        (
            "aud a number, checked",
            signed(&|c| c["aud"] = json!(7)),
            None,
            Some("7"),
            false,
        ),
        (
            "iss a list, unchecked",
            signed(&|c| c["iss"] = json!([idp])),
            None,
            None,
            true,
        ),
        (
            "iss a list, checked",
            signed(&|c| c["iss"] = json!([idp])),
            Some(idp),
            None,
            false,
        ),
        (
            "iss another",
            signed(&|c| c["iss"] = json!("https://evil.example")),
            Some(idp),
            None,
            false,
        ),
        (
            "iss the issuer",
            signed(&|c| c["iss"] = json!(idp)),
            Some(idp),
            None,
            true,
        ),
        ("iss missing", signed(&|_| {}), Some(idp), None, false),
    ];
    for mode in [Mode::Pem, Mode::Jwks] {
        for (case, token, issuer, audience, accepted) in &cases {
            let mut b = builder(&fake, mode);
            if let Some(issuer) = issuer {
                b = b.issuer(*issuer);
            }
            if let Some(audience) = audience {
                b = b.audience(*audience);
            }
            let got = b.build().unwrap().verify(token).await;
            if *accepted {
                assert_eq!(got.map(|p| p.agent_id), Ok(live), "{mode:?}: {case}");
            } else {
                assert_eq!(got, Err(VerifyError::InvalidToken), "{mode:?}: {case}");
            }
        }
    }
}

/// A cache hit skips the b64token check (only checked tokens are cached):
/// so a good token, once cached, must not make its malformed variants hits.
/// Each still answers `invalid_request` in every mode.
#[tokio::test]
async fn a_cached_token_does_not_vouch_for_its_malformed_variants() {
    let fake = fake_with_oidc().await;
    let live = seeded_agent(&fake, &["agents:read"]);
    let good = token(&fake, live, "agents:read");
    for mode in MODES {
        let verifier = verifier(&fake, mode);
        let ok = verifier
            .verify_request_headers(&bearer_headers(&good))
            .await;
        assert_eq!(ok.map(|p| p.agent_id), Ok(live), "{mode:?}");
        for bad in [
            format!("Bearer {good} "),
            format!("Bearer {good},"),
            format!("Bearer {good}=x"),
            format!("Bearer {good}\t"),
            format!("Bearer {}", good.replacen('.', ",", 1)),
            format!("Bearer {good}{}", "a".repeat(9 * 1024)),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&bad).unwrap());
            assert_eq!(
                verifier.verify_request_headers(&headers).await,
                Err(VerifyError::InvalidRequest),
                "{mode:?}: {}",
                &bad[bad.len().min(7 + good.len())..]
            );
        }
        let mut latin1 = format!("Bearer {good}").into_bytes();
        latin1.push(0xe9);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(&latin1).unwrap());
        assert_eq!(
            verifier.verify_request_headers(&headers).await,
            Err(VerifyError::InvalidRequest),
            "{mode:?}: obs-text"
        );
        assert_eq!(
            verifier.verify(&format!("{good} ")).await,
            Err(VerifyError::InvalidToken),
            "{mode:?}: verify(token + space)"
        );
    }
}
