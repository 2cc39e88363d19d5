//! The outgoing `tower::Layer` on hyper-util's client: the same policy as
//! the reqwest middleware, and a redirect follower outside the layer makes
//! each hop pass the origin check.

use crate::support::present::{Destination, fake_and_client};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sentryagent_idp::present::{BoxError, PresentError, Replayable};
use sentryagent_idp::{ExposeSecret, Operation};
use tower::{Layer, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

fn hyper() -> Hyper {
    HyperClient::builder(TokioExecutor::new()).build_http()
}

fn get_request(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

fn present_error(error: &BoxError) -> &PresentError {
    error
        .downcast_ref::<PresentError>()
        .unwrap_or_else(|| panic!("not a PresentError: {error}"))
}

#[tokio::test]
async fn attaches_the_token_and_replays_a_refused_get_once() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let auth = service.auth(&client);
    let http = auth.layer(hyper());
    let response: Response<Incoming> = http
        .clone()
        .oneshot(get_request(&service.url("/ok")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let first = client.access_token().await.unwrap();
    assert_eq!(
        service.seen()[0].authorization,
        Some(format!("Bearer {}", first.expose_secret()))
    );

    service.refuse(first.expose_secret());
    let response = http
        .clone()
        .oneshot(get_request(&service.url("/ok")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = client.access_token().await.unwrap();
    let seen = service.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[2].authorization,
        Some(format!("Bearer {}", second.expose_secret()))
    );
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn a_marked_post_is_replayed_with_its_body() {
    let (_fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = service.auth(&client).layer(hyper());
    let first = client.access_token().await.unwrap();
    service.refuse(first.expose_secret());
    let mut request = Request::post(service.url("/orders"))
        .body(Full::new(Bytes::from_static(b"an order")))
        .unwrap();
    request.extensions_mut().insert(Replayable);
    let response = http.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = service.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, "an order");
}

#[tokio::test]
async fn an_origin_outside_the_allowlist_is_refused_unsent() {
    let (_fake, client) = fake_and_client().await;
    let allowed = Destination::start().await;
    let other = Destination::start().await;
    let http = allowed.auth(&client).layer(hyper());
    let error = http
        .oneshot(get_request(&other.url("/ok")))
        .await
        .unwrap_err();
    assert!(matches!(
        present_error(&error),
        PresentError::OriginNotAllowed { .. }
    ));
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn with_a_redirect_follower_outside_each_hop_is_checked() {
    let (_fake, client) = fake_and_client().await;
    let allowed = Destination::start().await;
    let other = Destination::start().await;
    let auth = allowed.auth(&client);
    let http = FollowRedirectLayer::new().layer(auth.layer(hyper()));

    // A hop within the allowed origin is followed, with the token.
    let to = allowed.url("/ok");
    let response = http
        .clone()
        .oneshot(get_request(&allowed.url(&format!("/redirect?to={to}"))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(allowed.seen().iter().all(|s| s.authorization.is_some()));
    assert_eq!(allowed.seen().len(), 2);

    // A hop to another origin fails there: that origin sees nothing.
    let to = other.url("/ok");
    let error = http
        .oneshot(get_request(&allowed.url(&format!("/redirect?to={to}"))))
        .await
        .unwrap_err();
    assert!(matches!(
        present_error(&error),
        PresentError::OriginNotAllowed { .. }
    ));
    assert!(other.seen().is_empty());
}

#[tokio::test]
async fn insufficient_scope_is_a_typed_error() {
    let (_fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = service.auth(&client).layer(hyper());
    let error = http
        .oneshot(get_request(&service.url("/scope?scope=reports:write")))
        .await
        .unwrap_err();
    match present_error(&error) {
        PresentError::InsufficientScope { required } => {
            assert_eq!(required.to_string(), "reports:write")
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 24 defect 12, the tower layer: a 401 without a `Bearer` challenge
/// (none, or `Basic` alone) keeps the token and is returned as it is.
#[tokio::test]
async fn a_401_without_a_bearer_challenge_keeps_the_token() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = service.auth(&client).layer(hyper());
    for path in [
        "/unauthorized",
        "/unauthorized?challenge=Basic%20realm%3D%22files%22",
    ] {
        let response = http
            .clone()
            .oneshot(get_request(&service.url(path)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(service.seen().len(), 2, "no replay");
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}
