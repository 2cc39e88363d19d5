//! The async facade against httpmock: every operation's documented responses,
//! token management, scopes and error mapping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::scripted::{Act, Scripted, scripted_credentials_builder, token_act};
use crate::support::spec::{Documented, documented_responses};
use crate::support::*;
use futures::{StreamExt, TryStreamExt};
use httpmock::prelude::*;
use sentryagent_idp::auth::{AccessToken, StaticToken, TokenSource};
use sentryagent_idp::model::AuditAction;
use sentryagent_idp::{
    Client, DEFAULT_PAGE_SIZE, DEFAULT_STREAM_PAGE_SIZE, ErrorKind, Operation, Scope, ScopeSet,
};
use serde_json::json;

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

/// Mocks one documented response of `d` (the `example`-th example, if any),
/// answering with `status` instead of the documented one when given.
async fn api_mock_as<'a>(
    server: &'a MockServer,
    d: &Documented,
    status: u16,
    example: Option<&serde_json::Value>,
) -> httpmock::Mock<'a> {
    let (method, path) = (d.method.clone(), request_path(&d.path));
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

/// Mocks one documented response of `d` (the `example`-th example, if any).
async fn api_mock<'a>(
    server: &'a MockServer,
    d: &Documented,
    example: Option<&serde_json::Value>,
) -> httpmock::Mock<'a> {
    api_mock_as(server, d, d.status, example).await
}

/// The examples of a documented response, or one "no body" case.
fn bodies(d: &Documented) -> Vec<Option<&serde_json::Value>> {
    if d.examples.is_empty() {
        vec![None]
    } else {
        d.examples.iter().map(Some).collect()
    }
}

/// Serves `d`'s example with `status` and checks the call succeeds, with one
/// request to the operation's route and one token request.
async fn succeeds_when_answered(d: &Documented, status: u16, example: Option<&serde_json::Value>) {
    let case = format!("{} answered {status}", d.operation);
    let server = MockServer::start_async().await;
    let client = mock_client(&server.base_url());
    if d.operation == "issue_token" {
        let body = example
            .cloned()
            .unwrap_or_else(|| token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
        let token = server
            .mock_async(move |when, then| {
                when.method(POST).path("/api/v1/token");
                then.status(status).json_body(body);
            })
            .await;
        invoke(&client, &d.operation)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(token.calls_async().await, 1, "{case}");
    } else {
        let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
        let api = api_mock_as(&server, d, status, example).await;
        invoke(&client, &d.operation)
            .await
            .unwrap_or_else(|e| panic!("{case}: {e:?}"));
        assert_eq!(
            (api.calls_async().await, token.calls_async().await),
            (1, 1),
            "{case}"
        );
    }
}

#[tokio::test]
async fn every_operation_succeeds_on_its_documented_examples() {
    let mut checked = 0;
    for d in documented_responses().iter().filter(|d| d.status < 300) {
        for example in bodies(d) {
            if d.operation == "issue_token" {
                // The token endpoint's own mock serves the spec's example
                // here, and the token the client fetched is the example's.
                let server = MockServer::start_async().await;
                let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
                invoke(&mock_client(&server.base_url()), &d.operation)
                    .await
                    .unwrap();
                assert_eq!(token.calls_async().await, 1);
            } else {
                succeeds_when_answered(d, d.status, example).await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} success cases");
}

/// 0.2: any 2xx decodes with the operation's success schema, whether or not
/// the spec documents that status for the operation.
#[tokio::test]
async fn every_operation_succeeds_on_an_undocumented_2xx_with_its_success_body() {
    let mut checked = 0;
    for d in documented_responses().iter().filter(|d| d.status < 300) {
        for status in [200, 201, 202, 203].into_iter().filter(|s| *s != d.status) {
            succeeds_when_answered(d, status, bodies(d)[0]).await;
            checked += 1;
        }
    }
    assert!(checked >= 14 * 3, "only {checked} undocumented 2xx cases");
}

#[tokio::test]
async fn every_documented_error_status_maps_to_its_kind_and_code() {
    let mut checked = 0;
    for d in documented_responses().iter().filter(|d| d.status >= 400) {
        for example in &d.examples {
            let server = MockServer::start_async().await;
            let client = mock_client(&server.base_url());
            let (token, api) = if d.operation == "issue_token" {
                (api_mock(&server, d, Some(example)).await, None)
            } else {
                let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
                (token, Some(api_mock(&server, d, Some(example)).await))
            };
            let err = invoke(&client, &d.operation).await.unwrap_err();
            let case = format!("{} {} {example}", d.operation, d.status);
            assert_eq!(err.kind(), expected_kind(d.status), "{case}");
            assert_eq!(err.status().map(|s| s.as_u16()), Some(d.status), "{case}");
            assert_eq!(err.code(), example_code(example), "{case}");
            assert_eq!(
                err.operation().map(Operation::as_str),
                Some(d.operation.as_str()),
                "{case}"
            );
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
    let client = mock_client(&server.base_url());
    let calls = (0..100).map(|_| {
        let client = client.clone();
        async move { client.agents().get(agent_id()).send().await }
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
    let client = mock_client(&server.base_url());
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
    // 0.2: the buffer used is at most half the token's lifetime, the refresh
    // falls at a random point of its earlier half, and no background refresh
    // starts within 5 s of the previous fetch. So a 16 s token with a buffer
    // longer than its lifetime is due for refresh between 8 s and 12 s after
    // it was fetched, and valid until 16 s: seconds of margin on either side
    // for a busy machine. Real time: the token cache reads the system clock.
    const LIFETIME: u64 = 16;
    let server = MockServer::start_async().await;
    let first_body = token_body("tok-A", ALL_SCOPES, LIFETIME);
    let first_token = server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200).json_body(first_body);
        })
        .await;
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
    let client = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .refresh_buffer(Duration::from_secs(7200))
        .build()
        .unwrap();
    let fetched = std::time::Instant::now();
    client.agents().get(agent_id()).send().await.unwrap();
    first_token.delete_async().await;
    let second_token = slow_token_mock(&server, "tok-B", Duration::from_millis(300)).await;
    // Not yet due: used as is, no refresh.
    client.agents().get(agent_id()).send().await.unwrap();
    assert_eq!(second_token.calls_async().await, 0, "no refresh before due");
    // Due (past 12 s and the 5 s quiet time), still valid (before 16 s).
    tokio::time::sleep(Duration::from_millis(12_100).saturating_sub(fetched.elapsed())).await;
    client.agents().get(agent_id()).send().await.unwrap();
    assert!(
        fetched.elapsed() < Duration::from_secs(LIFETIME),
        "the test ran too slowly to tell"
    );
    assert_eq!(
        api_a.calls_async().await,
        3,
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
        client.agents().get(agent_id()).send().await.unwrap();
        if api_b.calls_async().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        api_b.calls_async().await >= 1,
        "later calls use the refreshed token"
    );
    assert_eq!(second_token.calls_async().await, 1, "still one refresh");
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
    client.agents().get(agent_id()).send().await.unwrap();
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
    let err = client.agents().get(agent_id()).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
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
    let token = token_mock(&server, ACCESS_TOKEN, "agents:read", 3600).await;
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
    assert_eq!(err.kind(), ErrorKind::MissingScope);
    assert_eq!(
        err.required_scopes(),
        Some(&ScopeSet::from([Scope::AUDIT_READ]))
    );
    assert_eq!(
        err.missing_scopes(),
        Some(ScopeSet::from([Scope::AUDIT_READ]))
    );
    // Refused from what the client requests: no token was fetched.
    assert_eq!(
        err.requested_scopes(),
        Some(&ScopeSet::from([Scope::AGENTS_READ]))
    );
    assert_eq!(err.granted_scopes(), None);
    assert_eq!(err.operation(), Some(Operation::QueryAuditEvents));
    assert!(!err.is_retryable());
    assert_eq!(
        (token.calls_async().await, audit.calls_async().await),
        (0, 0)
    );
}

#[tokio::test]
async fn a_scope_the_server_did_not_grant_is_refused_before_the_api_call() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, "agents:read", 3600).await;
    let audit = server
        .mock_async(|when, then| {
            when.path_includes("/audit");
            then.status(200).json_body(json!({"data": []}));
        })
        .await;
    let client = mock_client(&server.base_url());
    let err = client.audit().get(event_id()).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingScope);
    // Refused after a token was fetched: what the server granted it.
    assert_eq!(
        err.granted_scopes(),
        Some(&ScopeSet::from([Scope::AGENTS_READ]))
    );
    assert_eq!(err.requested_scopes(), None);
    assert_eq!(
        err.required_scopes(),
        Some(&ScopeSet::from([Scope::AUDIT_READ]))
    );
    assert_eq!(
        err.missing_scopes(),
        Some(ScopeSet::from([Scope::AUDIT_READ]))
    );
    assert_eq!(err.operation(), Some(Operation::GetAuditEvent));
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
    assert_eq!(
        reader.requested_scopes(),
        Some(&ScopeSet::from([Scope::AGENTS_READ]))
    );
    reader.agents().get(agent_id()).send().await.unwrap();
    assert_eq!(
        (narrow.calls_async().await, get.calls_async().await),
        (1, 1)
    );
    let err = reader
        .credentials()
        .list(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingScope);
    assert_eq!(
        err.missing_scopes(),
        Some(ScopeSet::from([Scope::AGENTS_WRITE]))
    );
    assert_eq!(
        err.requested_scopes(),
        Some(&ScopeSet::from([Scope::AGENTS_READ]))
    );
    let err = parent.with_scopes([Scope::AUDIT_READ]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let fixed = Client::builder()
        .base_url(server.base_url())
        .token_source(StaticToken::new("t"))
        .build()
        .unwrap();
    assert_eq!(
        fixed.with_scopes([Scope::AGENTS_READ]).unwrap_err().kind(),
        ErrorKind::Config
    );
}

/// Page `page` of a listing with `count` agents of distinct ids.
fn agents_page(page: u128, count: u128) -> Vec<serde_json::Value> {
    (0..count)
        .map(|i| {
            let mut a = agent_json();
            a["agentId"] = json!(uuid::Uuid::from_u128(page * 10 + i).to_string());
            a
        })
        .collect()
}

#[tokio::test]
async fn list_stream_walks_every_page_lazily() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let mut pages = Vec::new();
    for (page, count) in [(1, 2), (2, 2), (3, 1)] {
        let items = agents_page(page, count);
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
    let client = mock_client(&server.base_url());
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
    // Lazily: a stream that is read only in part fetches only its first page;
    // the paginator is `Unpin`, so `next()` needs no `pin!`.
    let mut stream = client
        .agents()
        .list()
        .owner("platform-team")
        .limit(2)
        .stream();
    let mut read = 0;
    while let Some(agent) = stream.next().await {
        agent.unwrap();
        read += 1;
        if read == 2 {
            break;
        }
    }
    drop(stream);
    let hits = futures::future::join_all(pages.iter().map(|m| m.calls_async())).await;
    assert_eq!(hits, vec![3, 1, 1]);
}

/// 0.2: `.send()` asks for 20 items unless told otherwise, a walk for 100.
#[tokio::test]
async fn one_page_asks_for_the_default_page_size_and_a_walk_for_the_stream_page_size() {
    assert_eq!((DEFAULT_PAGE_SIZE, DEFAULT_STREAM_PAGE_SIZE), (20, 100));
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let mut mocks = Vec::new();
    for (path, limit) in [("/api/v1/agents", 20), ("/api/v1/audit", 20)]
        .into_iter()
        .chain([("/api/v1/agents", 100), ("/api/v1/audit", 100)])
    {
        mocks.push(
            server
                .mock_async(move |when, then| {
                    when.method(GET)
                        .path(path)
                        .query_param("page", "1")
                        .query_param("limit", limit.to_string());
                    then.status(200).json_body(json!({"data": [], "total": 0}));
                })
                .await,
        );
    }
    let client = mock_client(&server.base_url());
    client.agents().list().send().await.unwrap();
    client.audit().query().send().await.unwrap();
    let agents: Vec<_> = client.agents().list().stream().try_collect().await.unwrap();
    let events: Vec<_> = client.audit().query().stream().try_collect().await.unwrap();
    assert!(agents.is_empty() && events.is_empty());
    let hits = futures::future::join_all(mocks.iter().map(|m| m.calls_async())).await;
    assert_eq!(hits, vec![1, 1, 1, 1]);
}

/// 0.2: a server that answers the same page again (one that ignores `page`)
/// ends the walk with `InvalidResponse`, not an endless stream.
#[tokio::test]
async fn a_server_that_repeats_a_page_ends_the_stream_with_invalid_response() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let items = agents_page(1, 2);
    let listing = server
        .mock_async(move |when, then| {
            when.method(GET).path("/api/v1/agents");
            then.status(200).json_body(json!({"data": items}));
        })
        .await;
    let mut stream = mock_client(&server.base_url())
        .agents()
        .list()
        .limit(2)
        .stream();
    let mut got = Vec::new();
    // Bounded: a correct walk ends after the second page.
    for _ in 0..10 {
        match stream.next().await {
            Some(item) => got.push(item),
            None => break,
        }
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].is_ok() && got[1].is_ok());
    let err = got.pop().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(stream.next().await.is_none(), "nothing after the error");
    assert_eq!(listing.calls_async().await, 2);
}

#[tokio::test]
async fn audit_query_sends_every_filter() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
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
    let page = mock_client(&server.base_url())
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
    let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let client = mock_client(&server.base_url());
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
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
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
    let client = mock_client(&server.base_url());
    let err = client.agents().get(agent_id()).send().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status().map(|s| s.as_u16())),
        (ErrorKind::NotFound, Some(404))
    );
    assert!(err.message().contains("not here"), "{err}");
    let err = client.agents().list().send().await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status().map(|s| s.as_u16())),
        (ErrorKind::Server, Some(502))
    );
    assert_eq!(err.request_id(), Some("req-9"));
    assert_eq!(err.operation(), Some(Operation::ListAgents));
    assert_eq!(err.operation().map(Operation::as_str), Some("list_agents"));
}

#[tokio::test]
async fn bad_arguments_are_refused_before_anything_is_sent() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.any_request();
            then.status(500);
        })
        .await;
    let client = mock_client(&server.base_url());
    let register = || new_agent(&client);
    // The complete request is valid: every case below breaks one thing.
    let cases = [
        (
            "empty update",
            client.agents().update(agent_id()).send().await.unwrap_err(),
        ),
        (
            "register with only an email",
            client
                .agents()
                .register()
                .email("a@b.c")
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "capability without a colon",
            register()
                .capabilities(["no colon"])
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "no capabilities",
            register()
                .capabilities(Vec::<String>::new())
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "not an email",
            register().email("not-an-email").send().await.unwrap_err(),
        ),
        (
            "not a version",
            register().version("one").send().await.unwrap_err(),
        ),
        (
            "owner over 128 characters",
            register().owner("o".repeat(129)).send().await.unwrap_err(),
        ),
        (
            "update with a bad capability",
            client
                .agents()
                .update(agent_id())
                .capabilities(["no colon"])
                .send()
                .await
                .unwrap_err(),
        ),
        (
            "page 0",
            client.agents().list().page(0).send().await.unwrap_err(),
        ),
        (
            "limit 0",
            client.audit().query().limit(0).send().await.unwrap_err(),
        ),
    ];
    for (case, err) in cases {
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{case}: {err}");
    }
    assert!("no colon".parse::<Scope>().is_err());
    assert_eq!(any.calls_async().await, 0);
}

/// 0.2: `revoke_credential` documents only 204; a 200 (here with the revoked
/// credential) or any other 2xx succeeds by the "any 2xx decodes" rule.
#[tokio::test]
async fn revoke_credential_also_accepts_200_with_the_revoked_credential() {
    for (status, body) in [
        (
            200,
            Some(
                json!({"credentialId": CREDENTIAL_ID, "clientId": AGENT_ID, "status": "revoked",
                "createdAt": "2026-03-28T09:00:00.000Z", "revokedAt": "2026-03-29T09:00:00.000Z"}),
            ),
        ),
        (200, None),
        (202, None),
    ] {
        let server = MockServer::start_async().await;
        token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
        let revoke = server
            .mock_async(|when, then| {
                when.method(DELETE)
                    .path(request_path("/agents/{agentId}/credentials/{credentialId}"));
                let then = then.status(status);
                if let Some(body) = body {
                    then.json_body(body);
                }
            })
            .await;
        mock_client(&server.base_url())
            .credentials()
            .revoke(agent_id(), credential_id())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{status}: {e:?}"));
        assert_eq!(revoke.calls_async().await, 1);
    }
}

#[tokio::test]
async fn list_credentials_accepts_a_bare_array() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
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
    let list = mock_client(&server.base_url())
        .credentials()
        .list(agent_id())
        .send()
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

/// On a paused clock (the scripted server holds the token answer on a
/// tokio timer): the cache is cleared while that fetch is held, however
/// slowly the fetch starts.
#[tokio::test(start_paused = true)]
async fn a_fetch_started_before_clear_does_not_refill_the_cache() {
    let held = Act::After(
        Duration::from_millis(300),
        Box::new(token_act(ACCESS_TOKEN, 3600)),
    );
    let server = Scripted::start(vec![("/token", vec![held, token_act(ACCESS_TOKEN, 3600)])]).await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    let before_clear = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.clear_token_cache();
    // Its caller still gets a token, but the cache stays empty: it may have
    // been fetched with a secret that was just replaced.
    tokio::time::timeout(Duration::from_secs(30), before_clear)
        .await
        .expect("the fetch ends")
        .unwrap()
        .unwrap();
    client.access_token().await.unwrap();
    assert_eq!(server.count("/token"), 2);
}

/// Review 21, class "docs that promise more than the code": the new
/// `ScopeSet::parse_strict` promises that "every word must have the
/// `resource:action` form … so that a typo is reported instead of becoming a
/// scope no server grants", but only checks that a word contains a `:`. A
/// comma-separated list (the common typo), a lone `:`, or half a scope pass.
#[test]
fn parse_strict_reports_words_that_are_not_resource_action() {
    use sentryagent_idp::{ScopeParseError, ScopeSet};
    for typed in [
        "agents:read,audit:read",
        ":",
        "agents:",
        ":read",
        "agents:read:",
    ] {
        assert!(
            matches!(
                ScopeSet::parse_strict(typed),
                Err(ScopeParseError::NotAScope(_))
            ),
            "`{typed}` was accepted as {:?}",
            ScopeSet::parse_strict(typed)
        );
    }
}

/// Review 21, class "Standards' MUSTs" (RFC 6749 §3.3: `scope = scope-token
/// *( SP scope-token )`, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`):
/// the one tokenizer behind `ScopeSet::parse` and `parse_strict` splits on any
/// Unicode whitespace and keeps any non-whitespace character. A server's
/// `scope` of `agents:read<NBSP>audit:read` is one malformed token, not a
/// grant of `audit:read`; a typed word with an escape sequence is not a scope.
#[test]
fn scope_lists_follow_rfc_6749_syntax() {
    use sentryagent_idp::{Scope, ScopeSet};
    let granted = ScopeSet::parse("agents:read\u{a0}audit:read");
    assert!(
        !granted.contains(&Scope::AUDIT_READ),
        "a non-breaking space split the server's scope string: {granted:?}"
    );
    for typed in [
        "agents:read\u{1b}[2J",
        "agents:r\u{e9}ad",
        "agents:\"read\"",
    ] {
        assert!(
            ScopeSet::parse_strict(typed).is_err(),
            "{typed:?} was accepted as {:?}",
            ScopeSet::parse_strict(typed)
        );
    }
}
