//! The outgoing middleware for reqwest-middleware: the token goes only to
//! allowed origins (also across redirects), a refused token is replaced and
//! the call replayed once, a missing scope is a typed error.

use std::time::Duration;

use crate::support::present::{Destination, fake_and_client};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use sentryagent_idp::present::{OutgoingAuth, PresentError, Replayable};
use sentryagent_idp::{ErrorKind, ExposeSecret, Operation, Scope};

fn http(auth: OutgoingAuth) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(auth)
        .build()
}

fn bearer_value(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test]
async fn attaches_the_clients_current_token_to_an_allowed_origin() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let auth = service.auth(&client);
    let response = http(auth).get(service.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let token = client.access_token().await.unwrap();
    let seen = service.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization, bearer_value(token.expose_secret()));
    // The middleware and the client share one token.
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}

#[tokio::test]
async fn never_sends_to_an_origin_outside_the_allowlist() {
    let (fake, client) = fake_and_client().await;
    let allowed = Destination::start().await;
    let other = Destination::start().await;
    let http = http(allowed.auth(&client));
    let error = http
        .get(other.url("/ok?secret=1"))
        .send()
        .await
        .unwrap_err();
    match PresentError::find(&error) {
        Some(PresentError::OriginNotAllowed { origin }) => {
            assert_eq!(origin, &other.origin());
        }
        other => panic!("expected OriginNotAllowed, got {other:?}"),
    }
    assert!(!error.to_string().contains("secret=1"), "{error}");
    assert!(other.seen().is_empty());
    // Refused before a token was even fetched.
    assert_eq!(fake.requests_seen(Operation::IssueToken), 0);
}

#[tokio::test]
async fn a_redirect_to_another_origin_carries_no_token() {
    let (_fake, client) = fake_and_client().await;
    let allowed = Destination::start().await;
    let other = Destination::start().await;
    let http = http(
        allowed
            .auth_builder(&client)
            .allow_origin(other.origin())
            .build()
            .unwrap(),
    );
    // Allowed to allowed, but another origin: reqwest drops the header, and
    // only the first hop (checked by the middleware) gets the token.
    let to = other.url("/ok");
    let response = http
        .get(allowed.url(&format!("/redirect?to={to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(allowed.seen()[0].authorization.is_some());
    assert_eq!(other.seen().len(), 1);
    assert_eq!(other.seen()[0].authorization, None);

    // Same origin: the token follows.
    let to = allowed.url("/ok");
    http.get(allowed.url(&format!("/redirect?to={to}")))
        .send()
        .await
        .unwrap();
    let seen = allowed.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].path, "/ok");
    assert!(seen[2].authorization.is_some());
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_an_idempotent_call_replayed_once() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(service.auth(&client));
    let first = client.access_token().await.unwrap();
    service.refuse(first.expose_secret());
    let response = http
        .get(service.url("/ok"))
        .header("x-trace", "t-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let second = client.access_token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    let seen = service.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].authorization, bearer_value(first.expose_secret()));
    assert_eq!(seen[1].authorization, bearer_value(second.expose_secret()));
    // The replay is the same request: the caller's own headers are kept.
    assert_eq!(seen[1].trace.as_deref(), Some("t-1"));
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn a_post_is_replayed_only_when_marked_replayable() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(
        service
            .auth_builder(&client)
            .refresh_cooldown(Duration::ZERO)
            .build()
            .unwrap(),
    );
    let first = client.access_token().await.unwrap();
    service.refuse(first.expose_secret());
    let response = http
        .post(service.url("/orders"))
        .body("one order")
        .send()
        .await
        .unwrap();
    // Not replayed: the 401 comes back, and the token was dropped.
    assert_eq!(response.status(), 401);
    assert_eq!(service.seen().len(), 1);
    let second = client.access_token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());

    service.refuse(second.expose_secret());
    let response = http
        .post(service.url("/orders"))
        .body("another order")
        .with_extension(Replayable)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = service.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].body, "another order");
    assert_ne!(seen[2].authorization, bearer_value(second.expose_secret()));
    assert_eq!(fake.requests_seen(Operation::IssueToken), 3);
}

#[tokio::test]
async fn a_destination_refusing_every_token_gets_one_replay_and_a_cooldown() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(service.auth(&client));
    // Each token is refused as soon as it exists.
    let first = client.access_token().await.unwrap();
    service.refuse(first.expose_secret());
    let response = http.get(service.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let second = client.access_token().await.unwrap();
    service.refuse(second.expose_secret());
    // Within the cooldown: the 401 stands, no token request, no replay.
    let response = http.get(service.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(service.seen().len(), 3);
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn a_replay_refused_again_is_returned_not_retried() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(
        service
            .auth_builder(&client)
            .refresh_cooldown(Duration::ZERO)
            .build()
            .unwrap(),
    );
    service.refuse_all();
    let response = http.get(service.url("/ok")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // The call and one replay with a new token; no third attempt.
    assert_eq!(service.seen().len(), 2);
    assert_ne!(
        service.seen()[0].authorization,
        service.seen()[1].authorization
    );
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn insufficient_scope_is_a_typed_error_naming_the_scope() {
    let (_fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(service.auth(&client));
    let error = http
        .get(service.url("/scope?scope=reports:read"))
        .send()
        .await
        .unwrap_err();
    match PresentError::find(&error) {
        Some(PresentError::InsufficientScope { required }) => {
            assert_eq!(required.to_string(), "reports:read");
        }
        other => panic!("expected InsufficientScope, got {other:?}"),
    }
    assert!(error.to_string().contains("reports:read"), "{error}");
}

#[tokio::test]
async fn invalid_request_is_not_a_reason_for_a_new_token() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(service.auth(&client));
    let response = http.get(service.url("/bad-request")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(service.seen().len(), 1);
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}

fn scopes_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["scope"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_destination_gets_a_token_with_only_its_scopes() {
    let (fake, client) = fake_and_client().await;
    let audit = Destination::start().await;
    let registry = Destination::start().await;
    let to_audit = http(
        audit
            .auth_builder(&client)
            .with_scopes([Scope::AUDIT_READ])
            .build()
            .unwrap(),
    );
    let to_registry = http(
        registry
            .auth_builder(&client)
            .with_scopes([Scope::AGENTS_READ])
            .build()
            .unwrap(),
    );
    to_audit.get(audit.url("/ok")).send().await.unwrap();
    to_registry.get(registry.url("/ok")).send().await.unwrap();
    to_audit.get(audit.url("/ok")).send().await.unwrap();
    let token = |seen: &crate::support::present::Seen| {
        seen.authorization.as_deref().unwrap()["Bearer ".len()..].to_owned()
    };
    assert_eq!(scopes_of(&token(&audit.seen()[0])), "audit:read");
    assert_eq!(scopes_of(&token(&registry.seen()[0])), "agents:read");
    // One token per destination, cached.
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn the_builder_refuses_what_would_leak_or_cannot_work() {
    let (_fake, client) = fake_and_client().await;
    let no_origin = OutgoingAuth::builder(&client).build().unwrap_err();
    assert_eq!(no_origin.kind(), ErrorKind::InvalidInput);
    let leaky = OutgoingAuth::builder(&client)
        .allow_origin("https://user:hunter2@api.example.com/")
        .build()
        .unwrap_err();
    assert_eq!(leaky.kind(), ErrorKind::InvalidInput);
    assert!(!leaky.to_string().contains("hunter2"), "{leaky}");
    let clear = OutgoingAuth::builder(&client)
        .allow_origin("http://api.example.com")
        .build()
        .unwrap_err();
    assert!(clear.to_string().contains("clear text"), "{clear}");
    let narrowed = client.with_scopes([Scope::AUDIT_READ]).unwrap();
    let wider = OutgoingAuth::builder(&narrowed)
        .allow_origin("https://api.example.com")
        .with_scopes([Scope::AGENTS_WRITE])
        .build()
        .unwrap_err();
    assert_eq!(wider.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn neither_debug_nor_errors_show_the_token() {
    let (_fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let auth = service.auth(&client);
    let http = http(auth.clone());
    let error = http
        .get(service.url("/scope?scope=x"))
        .send()
        .await
        .unwrap_err();
    let token = client.access_token().await.unwrap();
    for shown in [format!("{auth:?}"), format!("{error:?}"), error.to_string()] {
        assert!(!shown.contains(token.expose_secret()), "{shown}");
    }
}

/// Issue 24, item 14: a 401 that carries no Bearer challenge (none at all,
/// or only `Basic`) is not a refusal of the token: the token is kept (no
/// new token request) and the call is not replayed.
#[tokio::test]
async fn a_401_without_a_bearer_challenge_does_not_drop_the_token() {
    use crate::support::scripted::{Act, Scripted};
    let (fake, client) = fake_and_client().await;
    for challenge in [None, Some(r#"Basic realm="x""#)] {
        let headers = challenge
            .map(|c| vec![("www-authenticate", c.to_owned())])
            .unwrap_or_default();
        let service = Scripted::start(vec![(
            "/x",
            vec![Act::Respond(401, headers, String::new())],
        )])
        .await;
        let auth = OutgoingAuth::builder(&client)
            .allow_origin(service.base_url.clone())
            .build()
            .unwrap();
        let before = fake.requests_seen(Operation::IssueToken);
        let response = http(auth)
            .get(format!("{}/x", service.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(service.count("/x"), 1, "{challenge:?}: replayed");
        assert_eq!(
            fake.requests_seen(Operation::IssueToken),
            before.max(1),
            "{challenge:?}: the token was dropped and fetched again"
        );
        // The token was kept: the next call fetches none either.
        let _ = http(
            OutgoingAuth::builder(&client)
                .allow_origin(service.base_url.clone())
                .build()
                .unwrap(),
        )
        .get(format!("{}/x", service.base_url))
        .send()
        .await
        .unwrap();
        assert_eq!(
            fake.requests_seen(Operation::IssueToken),
            before.max(1),
            "{challenge:?}"
        );
    }
}

/// Issue 24 defect 12: a 401 from another origin, reached by a redirect
/// (reqwest drops the token on the way), is no refusal of the token: the
/// token is kept, no new one is fetched, nothing is replayed.
#[tokio::test]
async fn a_401_from_a_redirect_target_that_never_got_the_token_keeps_the_token() {
    let (fake, client) = fake_and_client().await;
    let allowed = Destination::start().await;
    let other = Destination::start().await;
    other.refuse_all();
    let http = http(allowed.auth(&client));
    let to = other.url("/ok");
    let response = http
        .get(allowed.url(&format!("/redirect?to={to}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(other.seen().len(), 1);
    assert_eq!(other.seen()[0].authorization, None, "the token stayed home");
    assert_eq!(allowed.seen().len(), 1, "no replay");
    assert_eq!(
        fake.requests_seen(Operation::IssueToken),
        1,
        "the good token was dropped and replaced"
    );
}

/// Issue 24 defect 12: only a `Bearer` challenge refuses a bearer token; a
/// 401 with none, or with `Basic` alone, is returned as it is.
#[tokio::test]
async fn a_401_without_a_bearer_challenge_is_returned_as_is() {
    let (fake, client) = fake_and_client().await;
    let service = Destination::start().await;
    let http = http(
        service
            .auth_builder(&client)
            .refresh_cooldown(Duration::ZERO)
            .build()
            .unwrap(),
    );
    for path in [
        "/unauthorized",
        "/unauthorized?challenge=Basic%20realm%3D%22files%22",
    ] {
        let response = http.get(service.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
    }
    assert_eq!(service.seen().len(), 2, "no replay");
    assert_eq!(
        fake.requests_seen(Operation::IssueToken),
        1,
        "a token was dropped for a 401 that did not refuse it"
    );
    // A Bearer challenge among others still counts.
    let first = client.access_token().await.unwrap();
    let path =
        "/unauthorized?challenge=Basic%20realm%3D%22a%22%2C%20Bearer%20error%3D%22invalid_token%22";
    http.get(service.url(path)).send().await.unwrap();
    let second = client.access_token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
}
