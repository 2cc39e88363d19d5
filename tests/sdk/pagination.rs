//! Streams over paged lists: they end, and yield nothing twice.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use httpmock::prelude::*;
use sentryagent_idp::ErrorKind;
use serde_json::json;

use crate::support::*;

/// 0.1 review, defect 13: a server that repeats the same full page forever does not make the stream endless.
#[tokio::test]
async fn a_stream_over_a_server_repeating_the_same_page_ends() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let mut second = agent_json();
    second["agentId"] = json!("b2c3d4e5-f6a7-4890-abcd-ef1234567891");
    second["email"] = json!("screener-002@myproject.ai");
    let page = json!({"data": [agent_json(), second], "page": 1, "limit": 2});
    let list = server
        .mock_async(move |when, then| {
            when.method(GET).path("/api/v1/agents");
            then.status(200).json_body(page);
        })
        .await;
    let client = mock_client(&server.base_url());
    let items: Vec<_> = bounded(
        60,
        "the bounded stream",
        client
            .agents()
            .list()
            .limit(2)
            .stream()
            .take(1000)
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(
        items.len() < 1000,
        "the stream did not end: it yielded {} items (the same 2 agents over and over) \
         in {} page requests before the test's take(1000) cut it",
        items.len(),
        list.calls_async().await
    );
    // The two agents once, then the repeated page is reported, not swallowed.
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[..2].iter().all(Result::is_ok));
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err:?}");
}

/// 0.1 review, item 15(b): an audit stream over a log that grows while it pages yields no event twice.
#[cfg(feature = "testing")]
#[tokio::test]
async fn an_audit_stream_over_a_growing_log_yields_no_event_twice() {
    use sentryagent_idp::testing::{AuditEventSeed, FakeAgentIdp};
    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.bootstrap_agent_id();
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    for i in 0..45 {
        fake.seed_audit_event(
            AuditEventSeed::new(agent, "agent.updated")
                .timestamp(start + chrono::Duration::seconds(i)),
        );
    }
    let client = fake.client_builder().build().unwrap();
    let mut stream = client.audit().query().limit(20).stream();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let event = bounded(10, "page 1", stream.next())
            .await
            .expect("page 1 has 20 events")
            .unwrap();
        ids.push(event.event_id);
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for _ in 0..10 {
        fake.seed_audit_event(AuditEventSeed::new(agent, "agent.updated"));
    }
    let rest: Vec<_> = bounded(20, "the rest", stream.take(500).collect::<Vec<_>>()).await;
    for event in rest {
        ids.push(event.unwrap().event_id);
    }
    let mut seen = HashSet::new();
    let duplicates: Vec<_> = ids.iter().filter(|id| !seen.insert(**id)).collect();
    assert!(
        duplicates.is_empty(),
        "the stream yielded {} events, {} of them a second time (e.g. {:?})",
        ids.len(),
        duplicates.len(),
        duplicates.first()
    );
}
