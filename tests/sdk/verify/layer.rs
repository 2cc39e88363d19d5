//! The tower layers and the axum extractor: RFC 6750 answers, scopes per
//! route on every request, and no panic on any `Authorization` bytes.

use std::convert::Infallible;

use crate::support::verify::*;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use proptest::prelude::*;
use sentryagent_idp::Scope;
use sentryagent_idp::verify::{AgentPrincipal, RequireScopes, Verifier, VerifyLayer};
use tower::ServiceExt;

async fn whoami(agent: AgentPrincipal) -> String {
    agent.agent_id.to_string()
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/write", get(whoami))
        .route_layer(RequireScopes::all([Scope::AGENTS_WRITE]))
        .route("/read", get(whoami))
        .route("/open", get(|| async { "open" }))
        .layer(VerifyLayer::new(verifier))
}

async fn call(app: &Router, path: &str, authorization: Option<&[u8]>) -> http::Response<Body> {
    let mut request = Request::builder().uri(path);
    if let Some(value) = authorization {
        request = request.header(
            "authorization",
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_layer_answers_rfc_6750_and_checks_scopes_per_route_every_time() {
    let fake = fake_with_oidc().await;
    let app = app(verifier(&fake, Mode::Introspection));
    let reader = seeded_agent(&fake, &["agents:read"]);
    let token = token(&fake, reader, "agents:read");
    let bearer = format!("Bearer {token}");

    let ok = call(&app, "/read", Some(bearer.as_bytes())).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(text(ok).await, reader.to_string());

    // Cached principal, scope checked again on each request (CVE-2021-32701).
    for _ in 0..3 {
        let refused = call(&app, "/write", Some(bearer.as_bytes())).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Bearer error=\"insufficient_scope\", scope=\"agents:write\""
        );
        assert_eq!(
            call(&app, "/read", Some(bearer.as_bytes())).await.status(),
            StatusCode::OK
        );
    }

    let missing = call(&app, "/open", None).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");

    let basic = call(&app, "/read", Some(b"Basic dXNlcjpwdw==")).await;
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(basic.headers()["www-authenticate"], "Bearer");
    let bad = format!("Bearer {}", tampered(&token));
    let invalid = call(&app, "/read", Some(bad.as_bytes())).await;
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    let challenge = invalid.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(
        !challenge.contains(&token[..20]),
        "the token is never echoed"
    );
    assert!(text(invalid).await.is_empty());

    let malformed = call(&app, "/read", Some(b"Bearer a b")).await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(
        malformed.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_request\"")
    );
}

#[tokio::test]
async fn require_scopes_without_the_verify_layer_is_401() {
    let handler = tower::service_fn(|_: Request<String>| async {
        Ok::<_, Infallible>(http::Response::new(String::from("reached")))
    });
    let service = tower::ServiceBuilder::new()
        .layer(RequireScopes::any([Scope::AGENTS_READ]))
        .service(handler);
    let response = service.oneshot(Request::new(String::new())).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.body().is_empty(), "the handler was not reached");
}

#[tokio::test]
async fn agentidp_down_through_the_layer_is_503_with_retry_after() {
    let fake = fake_with_oidc().await;
    let app = app(verifier(&fake, Mode::Introspection));
    let reader = seeded_agent(&fake, &["agents:read"]);
    let bearer = format!("Bearer {}", token(&fake, reader, "agents:read"));
    fake.fail_next(
        sentryagent_idp::Operation::IntrospectToken,
        sentryagent_idp::testing::Failure::DropConnection,
        1,
    );
    let response = call(&app, "/read", Some(bearer.as_bytes())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any header bytes: never a panic; always 400, 401 or the principal
    /// (403 cannot happen on `/read`, which the token reaches only when
    /// valid). Local PEM mode, so each case is fast and offline.
    #[test]
    fn any_authorization_bytes_get_a_clean_answer(
        value in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            "[Bb][Ee][Aa][Rr][Ee][Rr][ \t]{0,3}[ -~]{0,80}".prop_map(String::into_bytes),
        ]
    ) {
        let Ok(header) = http::HeaderValue::from_bytes(&value) else {
            return Ok(()); // http refuses it before any service sees it
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = shared();
        let status = runtime.block_on(async {
            let request = Request::builder()
                .uri("/read")
                .header("authorization", header)
                .body(Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        });
        prop_assert!(
            [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::OK].contains(&status),
            "{status}"
        );
    }
}

/// One PEM verifier and app for all property cases (the PEM is the fake's
/// fixed first key, read from a fake started once).
fn shared() -> Router {
    use std::sync::OnceLock;
    static PEM: OnceLock<String> = OnceLock::new();
    let pem = PEM.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            sentryagent_idp::testing::FakeAgentIdp::start()
                .await
                .unwrap()
                .public_key_pem()
        })
    });
    app(Verifier::public_key_pem(pem).unwrap().build().unwrap())
}
