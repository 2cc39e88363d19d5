//! The async facade against httpmock: every operation's documented responses,
//! token management, scopes and error mapping.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::spec::{Documented, documented_responses};
use common::*;
use futures::TryStreamExt;
use httpmock::prelude::*;
use sentryagent_idp::auth::{AccessToken, StaticToken, TokenSource};
use sentryagent_idp::model::AuditAction;
use sentryagent_idp::{Client, ErrorKind, Scope, ScopeSet};
use serde_json::json;

async fn token_mock<'a>(server: &'a MockServer, token: &str, scope: &str) -> httpmock::Mock<'a> {
    let body = token_body(token, scope, 3600);
    server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200).json_body(body);
        })
        .await
}

/// A token endpoint that answers `token` after `delay`.
async fn slow_token_mock<'a>(
    server: &'a MockServer,
    token: &str,
    delay: Duration,
) -> httpmock::Mock<'a> {
    let body = token_body(token, ALL_SCOPES, 3600);
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200).json_body(body).delay(delay);
        })
        .await
}

/// Mocks one documented response of `d` (the `example`-th example, if any).
async fn api_mock<'a>(
    server: &'a MockServer,
    d: &Documented,
    example: Option<&serde_json::Value>,
) -> httpmock::Mock<'a> {
    let (method, path, status) = (d.method.clone(), request_path(&d.path), d.status);
    let example = example.cloned();
    server
        .mock_async(move |when, then| {
            when.method(method.as_str()).path(path);
            let then = then.status(status);
            if let Some(body) = example {
                then.json_body(body);
            }
        })
        .await
}

#[tokio::test]
async fn every_operation_succeeds_on_its_documented_examples() {
    let mut checked = 0;
    for d in documented_responses().iter().filter(|d| d.status < 300) {
        let examples: Vec<Option<&serde_json::Value>> = if d.examples.is_empty() {
            vec![None]
        } else {
            d.examples.iter().map(Some).collect()
        };
        for example in examples {
            let server = MockServer::start_async().await;
            let client = client(&server.base_url());
            if d.operation == "issue_token" {
                let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
                invoke(&client, &d.operation).await.unwrap();
                assert_eq!(token.calls_async().await, 1);
            } else {
                let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
                let api = api_mock(&server, d, example).await;
                invoke(&client, &d.operation)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e:?}", d.operation));
                assert_eq!(
                    (api.calls_async().await, token.calls_async().await),
                    (1, 1),
                    "{}",
                    d.operation
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} success cases");
}

#[tokio::test]
async fn every_documented_error_status_maps_to_its_kind_and_code() {
    let mut checked = 0;
    for d in documented_responses().iter().filter(|d| d.status >= 400) {
        for example in &d.examples {
            let server = MockServer::start_async().await;
            let client = client(&server.base_url());
            let (token, api) = if d.operation == "issue_token" {
                (api_mock(&server, d, Some(example)).await, None)
            } else {
                let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
                (token, Some(api_mock(&server, d, Some(example)).await))
            };
            let err = invoke(&client, &d.operation).await.unwrap_err();
            let case = format!("{} {} {example}", d.operation, d.status);
            assert_eq!(err.kind(), &expected_kind(d.status), "{case}");
            assert_eq!(err.status().map(|s| s.as_u16()), Some(d.status), "{case}");
            assert_eq!(err.code(), example_code(example), "{case}");
            // A 401 on a bearer call drops the token, refreshes and replays once.
            let expected_sends = if d.status == 401 && api.is_some() {
                2
            } else {
                1
            };
            if let Some(api) = api {
                assert_eq!(api.calls_async().await, expected_sends, "{case}");
            }
            assert_eq!(token.calls_async().await, expected_sends, "{case}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} error cases");
}

#[tokio::test]
async fn hundred_concurrent_cold_calls_share_one_token_request() {
    let server = MockServer::start_async().await;
    let token = slow_token_mock(&server, ACCESS_TOKEN, Duration::from_millis(200)).await;
    let api = server
        .mock_async(|when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(200).json_body(agent_json());
        })
        .await;
    let client = client(&server.base_url());
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.agents().get(agent_id()).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(token.calls_async().await, 1);
    assert_eq!(api.calls_async().await, 100);
}

#[tokio::test]
async fn a_cancelled_caller_does_not_cancel_the_shared_token_fetch() {
    let server = MockServer::start_async().await;
    let token = slow_token_mock(&server, ACCESS_TOKEN, Duration::from_millis(300)).await;
    let client = client(&server.base_url());
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    first.abort();
    let second = client.access_token().await.unwrap();
    assert_eq!(
        sentryagent_idp::ExposeSecret::expose_secret(&second),
        ACCESS_TOKEN
    );
    assert_eq!(token.calls_async().await, 1);
}

#[tokio::test]
async fn a_token_inside_the_refresh_buffer_is_used_while_a_new_one_is_fetched_in_the_background() {
    let server = MockServer::start_async().await;
    let first_token = token_mock(&server, "tok-A", ALL_SCOPES).await;
    let with = |token: &'static str| {
        let server = &server;
        async move {
            server
                .mock_async(move |when, then| {
                    when.method(GET)
                        .path(request_path("/agents/{agentId}"))
                        .header("authorization", format!("Bearer {token}"));
                    then.status(200).json_body(agent_json());
                })
                .await
        }
    };
    let (api_a, api_b) = (with("tok-A").await, with("tok-B").await);
    // A buffer longer than the lifetime: every token is "about to expire" but valid.
    let client = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .refresh_buffer(Duration::from_secs(7200))
        .build()
        .unwrap();
    client.agents().get(agent_id()).await.unwrap();
    first_token.delete_async().await;
    let second_token = slow_token_mock(&server, "tok-B", Duration::from_millis(300)).await;
    client.agents().get(agent_id()).await.unwrap();
    assert_eq!(
        api_a.calls_async().await,
        2,
        "the valid token is used without waiting"
    );
    for _ in 0..100 {
        if second_token.calls_async().await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        second_token.calls_async().await,
        1,
        "one background refresh"
    );
    // Let the background task store the new token.
    for _ in 0..100 {
        client.agents().get(agent_id()).await.unwrap();
        if api_b.calls_async().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        api_b.calls_async().await >= 1,
        "later calls use the refreshed token"
    );
}

/// Hands out `tok-1`, `tok-2`, … and counts fetches.
struct CountingSource(Arc<AtomicUsize>);

impl TokenSource for CountingSource {
    async fn fetch(&self) -> sentryagent_idp::Result<AccessToken> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(format!("tok-{n}")))
    }
}

/// A client whose tokens come from a [`CountingSource`], and its fetch count.
fn counting_client(server: &MockServer) -> (Client, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = Client::builder()
        .base_url(server.base_url())
        .token_source(CountingSource(Arc::clone(&fetches)))
        .build()
        .unwrap();
    (client, fetches)
}

async fn bearer_mock<'a>(server: &'a MockServer, token: &str, status: u16) -> httpmock::Mock<'a> {
    let header = format!("Bearer {token}");
    server
        .mock_async(move |when, then| {
            when.method(GET)
                .path(request_path("/agents/{agentId}"))
                .header("authorization", header);
            if status == 200 {
                then.status(200).json_body(agent_json());
            } else {
                then.status(status)
                    .json_body(json!({"code": "UNAUTHORIZED", "message": "expired"}));
            }
        })
        .await
}

#[tokio::test]
async fn a_401_refreshes_the_token_and_replays_once() {
    let server = MockServer::start_async().await;
    let (client, fetches) = counting_client(&server);
    let (refused, accepted) = (
        bearer_mock(&server, "tok-1", 401).await,
        bearer_mock(&server, "tok-2", 200).await,
    );
    client.agents().get(agent_id()).await.unwrap();
    assert_eq!(
        (refused.calls_async().await, accepted.calls_async().await),
        (1, 1)
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_second_401_is_returned_not_replayed_again() {
    let server = MockServer::start_async().await;
    let (client, fetches) = counting_client(&server);
    let (first, second) = (
        bearer_mock(&server, "tok-1", 401).await,
        bearer_mock(&server, "tok-2", 401).await,
    );
    let err = client.agents().get(agent_id()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unauthorized);
    assert_eq!(err.code(), Some("UNAUTHORIZED"));
    assert_eq!(
        (first.calls_async().await, second.calls_async().await),
        (1, 1)
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_scope_the_client_does_not_request_is_refused_with_nothing_sent() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, "agents:read").await;
    let audit = server
        .mock_async(|when, then| {
            when.path_includes("/audit");
            then.status(200).json_body(json!({"data": []}));
        })
        .await;
    let client = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scopes([Scope::AGENTS_READ])
        .build()
        .unwrap();
    let err = client.audit().query().send().await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::MissingScope {
            required: ScopeSet::from([Scope::AUDIT_READ]),
            granted: ScopeSet::from([Scope::AGENTS_READ])
        }
    );
    assert_eq!(
        (token.calls_async().await, audit.calls_async().await),
        (0, 0)
    );
}

#[tokio::test]
async fn a_scope_the_server_did_not_grant_is_refused_before_the_api_call() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, "agents:read").await;
    let audit = server
        .mock_async(|when, then| {
            when.path_includes("/audit");
            then.status(200).json_body(json!({"data": []}));
        })
        .await;
    let client = client(&server.base_url());
    let err = client.audit().get(event_id()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::MissingScope { granted, .. } if granted == &ScopeSet::from([Scope::AGENTS_READ]))
    );
    assert_eq!(err.operation(), Some("get_audit_event"));
    assert_eq!(
        (token.calls_async().await, audit.calls_async().await),
        (1, 0)
    );
}

#[tokio::test]
async fn with_scopes_narrows_with_a_token_of_its_own_and_refuses_broadening() {
    let server = MockServer::start_async().await;
    let narrow = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/v1/token")
                .form_urlencoded_tuple("scope", "agents:read");
            then.status(200)
                .json_body(token_body("tok-narrow", "agents:read", 3600));
        })
        .await;
    let get = bearer_mock(&server, "tok-narrow", 200).await;
    let parent = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scopes([Scope::AGENTS_READ, Scope::AGENTS_WRITE])
        .build()
        .unwrap();
    let reader = parent.with_scopes([Scope::AGENTS_READ]).unwrap();
    reader.agents().get(agent_id()).await.unwrap();
    assert_eq!(
        (narrow.calls_async().await, get.calls_async().await),
        (1, 1)
    );
    let err = reader.credentials().list(agent_id()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::MissingScope { .. }));
    let err = parent.with_scopes([Scope::AUDIT_READ]).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidInput);
    let fixed = Client::builder()
        .base_url(server.base_url())
        .token_source(StaticToken::new("t"))
        .build()
        .unwrap();
    assert_eq!(
        fixed.with_scopes([Scope::AGENTS_READ]).unwrap_err().kind(),
        &ErrorKind::Config
    );
}

#[tokio::test]
async fn list_stream_walks_every_page_lazily() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    let mut pages = Vec::new();
    for (page, count) in [(1, 2), (2, 2), (3, 1)] {
        let items: Vec<_> = (0..count)
            .map(|i| {
                let mut a = agent_json();
                a["agentId"] = json!(uuid::Uuid::from_u128(page * 10 + i).to_string());
                a
            })
            .collect();
        pages.push(
            server
                .mock_async(move |when, then| {
                    when.method(GET)
                        .path("/api/v1/agents")
                        .query_param("page", page.to_string())
                        .query_param("limit", "2")
                        .query_param("owner", "platform-team");
                    then.status(200)
                        .json_body(json!({"data": items, "total": 5, "page": page, "limit": 2}));
                })
                .await,
        );
    }
    let client = client(&server.base_url());
    let first = client
        .agents()
        .list()
        .owner("platform-team")
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (first.items.len(), first.total, first.has_more()),
        (2, Some(5), true)
    );
    let all: Vec<_> = client
        .agents()
        .list()
        .owner("platform-team")
        .limit(2)
        .stream()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let hits = futures::future::join_all(pages.iter().map(|m| m.calls_async())).await;
    assert_eq!(hits, vec![2, 1, 1]);
}

#[tokio::test]
async fn audit_query_sends_every_filter() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    let from = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let to = chrono::DateTime::parse_from_rfc3339("2026-03-31T23:59:59Z")
        .unwrap()
        .to_utc();
    let audit = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/v1/audit")
                .query_param("agentId", AGENT_ID)
                .query_param("action", "credential.rotated")
                .query_param("outcome", "failure")
                .query_param("fromDate", "2026-03-01T00:00:00Z")
                .query_param("toDate", "2026-03-31T23:59:59Z")
                .query_param("page", "3")
                .query_param("limit", "50");
            then.status(200).json_body(json!({"data": []}));
        })
        .await;
    let page = client(&server.base_url())
        .audit()
        .query()
        .agent_id(agent_id())
        .action(AuditAction::CredentialRotated)
        .outcome(sentryagent_idp::model::AuditOutcome::Failure)
        .from(from)
        .to(to)
        .page(3)
        .limit(50)
        .send()
        .await
        .unwrap();
    assert!(page.items.is_empty() && !page.has_more());
    assert_eq!(audit.calls_async().await, 1);
}

#[tokio::test]
async fn clear_token_cache_forces_a_new_token() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    let client = client(&server.base_url());
    client.access_token().await.unwrap();
    client.access_token().await.unwrap();
    assert_eq!(token.calls_async().await, 1);
    client.clear_token_cache();
    client.access_token().await.unwrap();
    assert_eq!(token.calls_async().await, 2);
    assert_eq!(
        client.granted_scopes().await.unwrap(),
        Some(ScopeSet::parse(ALL_SCOPES))
    );
}

#[tokio::test]
async fn non_json_error_bodies_keep_their_status() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    // 404 is documented for get_agent, so progenitor tries (and fails) to decode it.
    server
        .mock_async(|when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(404)
                .header("content-type", "text/html")
                .body("<html>not here</html>");
        })
        .await;
    // 502 is not documented for list_agents.
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/v1/agents");
            then.status(502)
                .header("content-type", "text/html")
                .header("x-request-id", "req-9")
                .body("<html>Bad Gateway</html>");
        })
        .await;
    let client = client(&server.base_url());
    let err = client.agents().get(agent_id()).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status().map(|s| s.as_u16())),
        (&ErrorKind::NotFound, Some(404))
    );
    assert!(err.message().contains("not here"), "{err}");
    let err = client.agents().list().send().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status().map(|s| s.as_u16())),
        (&ErrorKind::Server, Some(502))
    );
    assert_eq!(err.request_id(), Some("req-9"));
    assert_eq!(err.operation(), Some("list_agents"));
}

#[tokio::test]
async fn bad_arguments_are_refused_before_anything_is_sent() {
    use sentryagent_idp::model::{NewAgent, builder::AgentUpdate};
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(500);
        })
        .await;
    let client = client(&server.base_url());
    let cases = [
        client
            .agents()
            .update(agent_id(), AgentUpdate::default())
            .await
            .unwrap_err(),
        client
            .agents()
            .register(NewAgent::builder().email("a@b.c"))
            .await
            .unwrap_err(),
        client.agents().list().page(0).send().await.unwrap_err(),
        client.audit().query().limit(0).send().await.unwrap_err(),
    ];
    for err in cases {
        assert_eq!(err.kind(), &ErrorKind::InvalidInput, "{err}");
    }
    assert!(
        "no colon"
            .parse::<sentryagent_idp::model::Capability>()
            .is_err()
    );
    assert_eq!(any.calls_async().await, 0);
}

#[tokio::test]
async fn revoke_credential_also_accepts_200_with_the_revoked_credential() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    server
        .mock_async(|when, then| {
            when.method(DELETE)
                .path(request_path("/agents/{agentId}/credentials/{credentialId}"));
            then.status(200).json_body(
                json!({"credentialId": CREDENTIAL_ID, "clientId": AGENT_ID, "status": "revoked",
                "createdAt": "2026-03-28T09:00:00.000Z", "revokedAt": "2026-03-29T09:00:00.000Z"}),
            );
        })
        .await;
    client(&server.base_url())
        .credentials()
        .revoke(agent_id(), credential_id())
        .await
        .unwrap();
}

#[tokio::test]
async fn list_credentials_accepts_a_bare_array() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES).await;
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path(request_path("/agents/{agentId}/credentials"));
            then.status(200).json_body(
                json!([{"credentialId": CREDENTIAL_ID, "clientId": AGENT_ID, "status": "active",
                "createdAt": "2026-03-28T09:00:00.000Z", "expiresAt": null, "revokedAt": null}]),
            );
        })
        .await;
    let list = client(&server.base_url())
        .credentials()
        .list(agent_id())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].credential_id, credential_id());
}

#[tokio::test]
async fn token_request_is_a_form_with_the_credentials_and_scopes() {
    let server = MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/v1/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header_missing("authorization")
                .form_urlencoded_tuple("grant_type", "client_credentials")
                .form_urlencoded_tuple("client_id", CLIENT_ID)
                .form_urlencoded_tuple("client_secret", CLIENT_SECRET)
                .form_urlencoded_tuple("scope", "agents:read audit:read");
            then.status(200)
                .json_body(token_body(ACCESS_TOKEN, "agents:read audit:read", 3600));
        })
        .await;
    let client = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .scopes([Scope::AUDIT_READ, Scope::AGENTS_READ])
        .build()
        .unwrap();
    client.access_token().await.unwrap();
    assert_eq!(token.calls_async().await, 1);
}

#[tokio::test]
async fn a_fetch_started_before_clear_does_not_refill_the_cache() {
    let server = MockServer::start_async().await;
    let token = slow_token_mock(&server, ACCESS_TOKEN, Duration::from_millis(300)).await;
    let client = client(&server.base_url());
    let before_clear = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.clear_token_cache();
    // Its caller still gets a token, but the cache stays empty: it may have
    // been fetched with a secret that was just replaced.
    before_clear.await.unwrap().unwrap();
    client.access_token().await.unwrap();
    assert_eq!(token.calls_async().await, 2);
}
