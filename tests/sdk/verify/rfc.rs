//! The MUSTs of the RFCs the verifier implements (issue 24, defects 8–11):
//! RFC 6749 scope syntax, RFC 7515 `crit`, RFC 7517 `use`/`key_ops`, and
//! one rule for plain http shared with `OutgoingAuth`.

use crate::support::verify::*;
use sentryagent_idp::verify::{RequireScopes, Verifier, VerifyError};
use sentryagent_idp::{ErrorKind, Scope};
use serde_json::{Value, json};

/// Whether `scope` is an RFC 6749 §3.3 `scope-token`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Defect 8: only a space separates scopes, and a word holding anything
/// outside `%x21 / %x23-5B / %x5D-7E` is no scope: it grants nothing and
/// never reaches the principal (choice: the word is dropped, the token and
/// its other scopes stand), in every mode.
#[tokio::test]
async fn a_scope_word_that_is_not_a_scope_token_grants_nothing_in_any_mode() {
    let fake = fake_with_oidc().await;
    let agent = seeded_agent(&fake, &["agents:read"]);
    let tokens = [
        "reports:view\u{a0}agents:write",
        "agents:read agents:write\u{200b}",
        "agents:read \u{1b}[2Jagents:write",
        "agents:read agents:\"write",
    ]
    .map(|scope| (scope, token(&fake, agent, scope)));
    for mode in MODES {
        let verifier = verifier(&fake, mode);
        for (scope, token) in &tokens {
            let principal = verifier
                .verify(token)
                .await
                .unwrap_or_else(|e| panic!("{mode:?} × {scope:?}: {e:?}"));
            assert!(
                RequireScopes::all([Scope::AGENTS_WRITE])
                    .check(Some(&principal))
                    .is_err(),
                "{mode:?} × {scope:?} passed agents:write"
            );
            assert!(
                principal.scopes.iter().all(|s| is_scope_token(s.as_str())),
                "{mode:?} × {scope:?}: the principal holds {:?}",
                principal.scopes
            );
        }
    }
}

fn claims_for(agent: uuid::Uuid) -> Value {
    claims(agent, "agents:read")
}

/// Defect 9: RFC 7515 §4.1.11: a `crit` naming an extension the verifier
/// does not implement (it implements none) MUST be refused; so must a
/// `crit` that is empty, null or not an array of strings. Signed with a
/// key the verifier trusts, so only the header can be the reason.
#[tokio::test]
async fn a_token_with_a_crit_header_is_refused_in_every_local_mode() {
    let fake = fake_with_oidc().await;
    let agent = seeded_agent(&fake, &["agents:read"]);
    let key = TestKey::generate();
    let keys = key_set_server(vec![key.jwk("k1", json!({"use": "sig"}))]).await;
    let pem = Verifier::public_key_pem(&key.public_pem)
        .unwrap()
        .build()
        .unwrap();
    let jwks = Verifier::jwks(&keys.base_url).unwrap().build().unwrap();
    let claims = claims_for(agent);
    let good = key.sign_raw_header(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#, &claims);
    let critical = [
        r#"{"alg":"RS256","kid":"k1","crit":["urn:example:ext"],"urn:example:ext":true}"#,
        r#"{"alg":"RS256","kid":"k1","crit":["b64"],"b64":true}"#,
        r#"{"alg":"RS256","kid":"k1","crit":["exp"]}"#,
        r#"{"alg":"RS256","kid":"k1","crit":[]}"#,
        r#"{"alg":"RS256","kid":"k1","crit":null}"#,
        r#"{"alg":"RS256","kid":"k1","crit":[1]}"#,
        r#"{"alg":"RS256","kid":"k1","crit":"urn:example:ext"}"#,
    ];
    for (name, verifier) in [("pem", &pem), ("jwks", &jwks)] {
        assert_eq!(
            verifier.verify(&good).await.map(|p| p.agent_id),
            Ok(agent),
            "{name}: the same key without crit"
        );
        for header in critical {
            let token = key.sign_raw_header(header, &claims);
            assert_eq!(
                verifier.verify(&token).await,
                Err(VerifyError::InvalidToken),
                "{name} × {header}"
            );
        }
    }
}

/// Defect 10: RFC 7517 §4.2–4.3: a key published for anything but
/// signatures (`use` other than `sig`, `key_ops` without `verify`) never
/// verifies a token, even one it did sign.
#[tokio::test]
async fn jwks_keys_not_meant_for_verifying_never_verify() {
    let fake = fake_with_oidc().await;
    let agent = seeded_agent(&fake, &["agents:read"]);
    let key = TestKey::generate();
    let published = [
        ("enc", json!({"use": "enc"}), false),
        ("wrap", json!({"key_ops": ["encrypt", "wrapKey"]}), false),
        (
            "sign-only",
            json!({"use": "sig", "key_ops": ["sign"]}),
            false,
        ),
        ("other-use", json!({"use": "tls"}), false),
        ("no-ops", json!({"key_ops": []}), false),
        ("sig", json!({"use": "sig", "key_ops": ["verify"]}), true),
        ("verify", json!({"key_ops": ["verify"]}), true),
        ("plain", json!({}), true),
    ];
    let keys = key_set_server(
        published
            .iter()
            .map(|(kid, extra, _)| key.jwk(kid, extra.clone()))
            .collect(),
    )
    .await;
    let verifier = Verifier::jwks(&keys.base_url).unwrap().build().unwrap();
    let claims = claims_for(agent);
    for (kid, extra, usable) in &published {
        let token = key.sign(json!({"alg": "RS256", "typ": "JWT", "kid": kid}), &claims);
        let want = if *usable {
            Ok(agent)
        } else {
            Err(VerifyError::InvalidToken)
        };
        assert_eq!(
            verifier.verify(&token).await.map(|p| p.agent_id),
            want,
            "{kid}: {extra}"
        );
    }
}

/// Defect 11: the key set would travel in clear text. The verifier follows
/// the rule `ClientBuilder` and `OutgoingAuth` follow: plain http only to
/// loopback unless `allow_insecure_http(true)`.
#[test]
fn plain_http_to_a_host_that_is_not_loopback_is_refused_as_for_outgoing_auth() {
    let refused = Verifier::jwks("http://idp.example.com").and_then(|b| b.build());
    let error = refused.expect_err("plain http to a remote host was accepted");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("allow_insecure_http"), "{error}");
    for fine in [
        "https://idp.example.com",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        assert!(
            Verifier::jwks(fine).and_then(|b| b.build()).is_ok(),
            "{fine}"
        );
    }
}

/// Defect 11: the opt-in is the one `ClientBuilder` and `OutgoingAuth` spell.
#[test]
fn allow_insecure_http_is_the_opt_in_for_plain_http() {
    let allowed = Verifier::jwks("http://idp.example.com")
        .unwrap()
        .allow_insecure_http(true)
        .build();
    assert!(allowed.is_ok());
}
