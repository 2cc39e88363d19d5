//! The blocking client: the same documented responses as the async facade,
//! plus its own iterator and runtime rules.
#![cfg(feature = "blocking")]

mod common;

use common::spec::documented_responses;
use common::*;
use httpmock::prelude::*;
use sentryagent_idp::ErrorKind;
use sentryagent_idp::blocking::Client;
use serde_json::json;

fn blocking_client(base_url: &str) -> Client {
    for_mock(Client::builder(), base_url).build().unwrap()
}

fn token_mock(server: &MockServer) -> httpmock::Mock<'_> {
    server.mock(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(200)
            .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
    })
}

/// Serves `status` with `body` for the operation's route.
fn route_mock<'a>(
    server: &'a MockServer,
    d: &common::spec::Documented,
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
            let token = token_mock(&server);
            let api = route_mock(&server, d, body);
            let result = invoke_blocking(&blocking_client(&server.base_url()), &d.operation);
            let case = format!("{} {}", d.operation, d.status);
            match result {
                Ok(()) => assert!(d.status < 300, "{case}"),
                Err(err) => {
                    assert_eq!(err.kind(), &expected_kind(d.status), "{case}");
                    assert_eq!(err.code(), body.and_then(example_code), "{case}");
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
    let err = blocking_client(&server.base_url())
        .access_token()
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (&ErrorKind::Unauthorized, Some("invalid_client"))
    );
    assert_eq!(err.operation(), Some("issue_token"));
}

#[test]
fn iter_walks_every_page() {
    let server = MockServer::start();
    token_mock(&server);
    let mocks: Vec<_> = (1..=3)
        .map(|page| {
            let data: Vec<_> = (0..if page < 3 { 2 } else { 1 })
                .map(|_| agent_json())
                .collect();
            server.mock(move |when, then| {
                when.method(GET)
                    .path("/api/v1/agents")
                    .query_param("page", page.to_string());
                then.status(200)
                    .json_body(json!({"data": data, "total": 5, "page": page, "limit": 2}));
            })
        })
        .collect();
    let agents: Vec<_> = blocking_client(&server.base_url())
        .agents()
        .list()
        .limit(2)
        .iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(agents.len(), 5);
    assert!(mocks.iter().all(|m| m.calls() == 1));
}

#[test]
fn iter_stops_after_an_error() {
    let server = MockServer::start();
    token_mock(&server);
    let failing = server.mock(|when, then| {
        when.method(GET).path("/api/v1/audit");
        then.status(503).body("down");
    });
    let mut events = blocking_client(&server.base_url()).audit().query().iter();
    assert_eq!(
        events.next().unwrap().unwrap_err().kind(),
        &ErrorKind::Server
    );
    assert!(events.next().is_none());
    assert_eq!(failing.calls(), 1);
}

#[tokio::test]
async fn calling_it_inside_an_async_runtime_is_an_error_not_a_hang() {
    let server = MockServer::start_async().await;
    let base = server.base_url();
    let client = tokio::task::spawn_blocking(move || blocking_client(&base))
        .await
        .unwrap();
    let err = client.agents().get(agent_id()).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    tokio::task::spawn_blocking(move || drop(client))
        .await
        .unwrap();
}
