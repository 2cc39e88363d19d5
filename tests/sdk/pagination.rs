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

// Against a listing server with state (`support::paged::Log`).

use crate::support::paged::{Knobs, Log, now_us};

async fn walk_agents(log: &Log, limit: u32) -> Vec<sentryagent_idp::Result<uuid::Uuid>> {
    let client = log.client();
    bounded(
        60,
        "the walk",
        client
            .agents()
            .list()
            .limit(limit)
            .stream()
            .map(|a| a.map(|a| a.agent_id))
            .take(10_000)
            .collect::<Vec<_>>(),
    )
    .await
}

fn all_ok(items: Vec<sentryagent_idp::Result<uuid::Uuid>>) -> Vec<uuid::Uuid> {
    items.into_iter().map(|i| i.expect("no error")).collect()
}

/// Issue 23, item 10: a walk over a server that keeps microseconds and
/// prints milliseconds returns every event of a busy millisecond.
#[tokio::test]
async fn an_audit_walk_returns_every_event_of_a_millisecond_the_server_prints_as_one() {
    let log = Log::start(Knobs::default()).await;
    let ms = (now_us() / 1000 - 60_000) * 1000;
    let written: HashSet<uuid::Uuid> = (0..250).flat_map(|i| log.add_at(1, ms + i)).collect();
    let client = log.client();
    let got: Vec<_> = bounded(
        60,
        "the walk",
        client
            .audit()
            .query()
            .limit(100)
            .stream()
            .collect::<Vec<_>>(),
    )
    .await;
    let got: Vec<_> = got.into_iter().map(|e| e.unwrap().event_id).collect();
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "no event twice");
    assert_eq!(
        unique.len(),
        250,
        "{} of the 250 events of one millisecond",
        unique.len()
    );
    assert_eq!(unique, written);
}

/// Issue 23, item 11: a server that serves smaller pages than asked does not
/// end the walk early, whether it echoes the page size or only says `total`.
#[tokio::test]
async fn a_walk_over_a_server_capping_the_page_size_returns_everything() {
    for echo_limit in [true, false] {
        let log = Log::start(Knobs {
            cap: 100,
            echo_limit,
            ..Knobs::default()
        })
        .await;
        let written: HashSet<_> = log.add_spread(1_000, now_us()).into_iter().collect();
        let got = all_ok(walk_agents(&log, 500).await);
        let unique: HashSet<_> = got.iter().copied().collect();
        assert_eq!(got.len(), unique.len(), "no agent twice");
        assert_eq!(
            unique.len(),
            1_000,
            "echo_limit {echo_limit}: {} of 1,000 agents",
            unique.len()
        );
        assert_eq!(unique, written);
    }
}

/// Issue 23, item 12: more than a page of insertions during a walk yields no
/// item twice and loses none of those listed when it began.
#[tokio::test]
async fn a_listing_growing_by_more_than_a_page_during_a_walk_yields_no_agent_twice() {
    let log = Log::start(Knobs {
        grow_before_page: Some((3, 250)),
        ..Knobs::default()
    })
    .await;
    let before: HashSet<_> = log.add_spread(300, now_us()).into_iter().collect();
    let got = all_ok(walk_agents(&log, 100).await);
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(
        got.len(),
        unique.len(),
        "{} agents yielded twice",
        got.len() - unique.len()
    );
    assert!(before.is_subset(&unique), "none listed at the start lost");
}

/// Issue 23, item 12: a page shifted whole onto the next by insertions is
/// not taken for a server that ignores `page`.
#[tokio::test]
async fn a_listing_growing_by_a_page_between_two_fetches_is_not_taken_for_missing_paging() {
    let log = Log::start(Knobs {
        grow_before_page: Some((2, 100)),
        ..Knobs::default()
    })
    .await;
    let before: HashSet<_> = log.add_spread(300, now_us()).into_iter().collect();
    let got = walk_agents(&log, 100).await;
    let errors: Vec<_> = got.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let got = all_ok(got);
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "no agent twice");
    assert!(before.is_subset(&unique), "none listed at the start lost");
}
