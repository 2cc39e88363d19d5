//! The blocking client: the same documented responses as the async facade,
//! plus its own iterator and runtime rules.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crate::support::spec::documented_responses;
use crate::support::*;
use httpmock::prelude::*;
use sentryagent_idp::{Client, ErrorKind, ExposeSecret, Operation};
use serde_json::json;

/// Serves `status` with `body` for the operation's route.
fn route_mock<'a>(
    server: &'a MockServer,
    d: &crate::support::spec::Documented,
    body: Option<&serde_json::Value>,
) -> httpmock::Mock<'a> {
    server.mock(|when, then| {
        when.method(d.method.as_str()).path(request_path(&d.path));
        let then = then.status(d.status);
        if let Some(body) = body {
            then.json_body(body.clone());
        }
    })
}

/// `future`, bounded: every wait of these tests ends.
fn within<F: std::future::IntoFuture>(future: F) -> tokio::time::Timeout<F::IntoFuture> {
    tokio::time::timeout(Duration::from_secs(30), future)
}

/// An agent record with its own id, so a walk sees distinct items.
fn numbered_agent(n: u128) -> serde_json::Value {
    let mut agent = agent_json();
    agent["agentId"] = json!(uuid::Uuid::from_u128(n).to_string());
    agent
}

#[test]
fn every_documented_response_maps_the_same_as_in_the_async_client() {
    let mut checked = 0;
    for d in documented_responses()
        .iter()
        .filter(|d| d.operation != "issue_token")
    {
        let bodies: Vec<Option<&serde_json::Value>> = if d.examples.is_empty() {
            vec![None]
        } else {
            d.examples.iter().map(Some).collect()
        };
        for body in bodies {
            let server = MockServer::start();
            let token = token_mock_sync(&server);
            let api = route_mock(&server, d, body);
            let result = invoke_blocking(&blocking_mock_client(&server.base_url()), &d.operation);
            let case = format!("{} {}", d.operation, d.status);
            match result {
                Ok(()) => assert!(d.status < 300, "{case}"),
                Err(err) => {
                    assert!(d.status >= 400, "{case}: {err:?}");
                    assert_eq!(err.kind(), expected_kind(d.status), "{case}");
                    assert_eq!(err.code(), body.and_then(example_code), "{case}");
                    assert_eq!(
                        err.operation().map(Operation::as_str),
                        Some(d.operation.as_str()),
                        "{case}"
                    );
                }
            }
            let sends = if d.status == 401 { 2 } else { 1 };
            assert_eq!((api.calls(), token.calls()), (sends, sends), "{case}");
            checked += 1;
        }
    }
    assert!(checked >= 70, "only {checked} cases");
}

#[test]
fn token_endpoint_errors_map_to_oauth_codes() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(401).json_body(json!({"error": "invalid_client", "error_description": "Client authentication failed."}));
    });
    let err = blocking_mock_client(&server.base_url())
        .access_token()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Unauthorized, Some("invalid_client"))
    );
    assert_eq!(err.operation(), Some(Operation::IssueToken));
    assert_eq!(err.operation().map(Operation::as_str), Some("issue_token"));
}

#[test]
fn iter_walks_every_page() {
    let server = MockServer::start();
    token_mock_sync(&server);
    let mocks: Vec<_> = (1..=3u128)
        .map(|page| {
            let data: Vec<_> = (0..if page < 3 { 2 } else { 1 })
                .map(|i| numbered_agent(page * 10 + i))
                .collect();
            server.mock(move |when, then| {
                when.method(GET)
                    .path("/api/v1/agents")
                    .query_param("page", page.to_string())
                    .query_param("limit", "2");
                then.status(200)
                    .json_body(json!({"data": data, "total": 5, "page": page, "limit": 2}));
            })
        })
        .collect();
    let agents: Vec<_> = blocking_mock_client(&server.base_url())
        .agents()
        .list()
        .limit(2)
        .iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(agents.len(), 5);
    let ids: std::collections::HashSet<_> = agents.iter().map(|a| a.agent_id).collect();
    assert_eq!(ids.len(), 5, "every agent once");
    assert!(mocks.iter().all(|m| m.calls() == 1));
}

#[test]
fn iter_stops_after_an_error() {
    let server = MockServer::start();
    token_mock_sync(&server);
    let failing = server.mock(|when, then| {
        when.method(GET).path("/api/v1/audit");
        then.status(503).body("down");
    });
    let mut events = blocking_mock_client(&server.base_url())
        .audit()
        .query()
        .iter();
    assert_eq!(
        events.next().unwrap().unwrap_err().kind(),
        ErrorKind::Server
    );
    assert!(events.next().is_none());
    assert_eq!(failing.calls(), 1);
}

/// 0.2: the blocking client runs its calls on a runtime thread of its own,
/// so calling it from async code works (it blocks that thread, but does not
/// refuse or hang), and dropping it there does not panic.
#[tokio::test]
async fn calling_it_inside_an_async_runtime_works_and_dropping_it_there_does_not_panic() {
    let server = MockServer::start_async().await;
    let (token, api) = token_and_agent(&server).await;
    // Built, called and dropped on the async test's own thread. The mock
    // server runs on threads of its own; the total timeout bounds each call.
    let client = for_mock(Client::builder().blocking(), &server.base_url())
        .total_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let agent = client.agents().get(agent_id()).send().unwrap();
    assert_eq!(agent.agent_id, agent_id());
    assert_eq!(client.access_token().unwrap().expose_secret(), ACCESS_TOKEN);
    let clone = client.clone();
    drop(client);
    // The clone keeps the runtime thread alive.
    clone.agents().get(agent_id()).send().unwrap();
    drop(clone);
    assert_eq!((token.calls_async().await, api.calls_async().await), (1, 2));
}

#[test]
fn it_works_inside_spawn_blocking_and_may_be_dropped_in_async_code() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = MockServer::start_async().await;
        let (token, api) = token_and_agent(&server).await;
        let listing = server
            .mock_async(|when, then| {
                when.method(GET).path("/api/v1/agents");
                then.status(200)
                    .json_body(json!({"data": [numbered_agent(1), numbered_agent(2)], "total": 2}));
            })
            .await;
        let base = server.base_url();
        // Built and used inside spawn_blocking, then handed back to async code.
        let client = within(tokio::task::spawn_blocking(move || {
            let client = for_mock(Client::builder().blocking(), &base)
                .total_timeout(Duration::from_secs(20))
                .build()
                .unwrap();
            let agent = client.agents().get(agent_id()).send().unwrap();
            assert_eq!(agent.agent_id, agent_id());
            let all: Vec<_> = client
                .agents()
                .list()
                .iter()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(all.len(), 2);
            client
        }))
        .await
        .expect("spawn_blocking ends")
        .unwrap();
        // A clone used from another spawn_blocking task.
        let clone = client.clone();
        within(tokio::task::spawn_blocking(move || {
            clone.agents().get(agent_id()).send().map(drop)
        }))
        .await
        .expect("spawn_blocking ends")
        .unwrap()
        .unwrap();
        // Dropped inside an async task on a worker thread: no panic (the
        // task's result would be a JoinError if it panicked).
        let dropped = tokio::spawn(async move {
            drop(client);
        });
        within(dropped)
            .await
            .expect("the drop ends")
            .expect("dropping the blocking client in async code does not panic");
        assert_eq!(
            (
                token.calls_async().await,
                api.calls_async().await,
                listing.calls_async().await
            ),
            (1, 2, 1)
        );
    });
    // And the last handle dropped by a runtime shutting down.
    drop(runtime);
}

/// Mocks of `/token` and `GET /agents/{agentId}`, both answering 200.
async fn token_and_agent(server: &MockServer) -> (httpmock::Mock<'_>, httpmock::Mock<'_>) {
    let token = server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200)
                .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
        })
        .await;
    let api = server
        .mock_async(|when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(200).json_body(agent_json());
        })
        .await;
    (token, api)
}

/// 0.1 review, defect 10(b): dropping a blocking client inside an async context does not panic.
#[tokio::test]
async fn dropping_a_blocking_client_inside_an_async_context_does_not_panic() {
    let client = Client::builder()
        .base_url("http://127.0.0.1:9")
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .blocking()
        .build()
        .unwrap();
    let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(client)));
    if let Err(payload) = dropped {
        panic!(
            "dropping a blocking::Client inside #[tokio::test] panicked: {}",
            panic_text(&*payload)
        );
    }
}

/// 0.1 review, defect 10(c): the blocking client works inside `spawn_blocking`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_works_inside_spawn_blocking() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    get_agent_mock(&server).await;
    let base = server.base_url();
    let task = tokio::task::spawn_blocking(move || {
        let client = for_mock(Client::builder(), &base)
            .blocking()
            .build()
            .unwrap();
        let result = client.agents().get(agent_id()).send().map(drop);
        drop(client);
        result
    });
    let result = bounded(20, "spawn_blocking call", task).await.unwrap();
    if let Err(e) = result {
        panic!("a blocking call inside spawn_blocking must work; got {e:?}");
    }
}
