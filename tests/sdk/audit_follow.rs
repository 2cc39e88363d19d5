//! `QueryAudit::follow`: new events as they arrive, against the fake.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use sentryagent_idp::model::{AuditAction, AuditEvent, Uuid};
use sentryagent_idp::testing::{AuditEventSeed, Failure, FakeAgentIdp};
use sentryagent_idp::{ErrorKind, Operation, Result, Scope};

const POLL: Duration = Duration::from_millis(40);

/// Waits (bounded at 20 s: seconds, for a busy machine) until the fake has
/// answered `n` audit queries.
async fn polls(fake: &FakeAgentIdp, n: usize) {
    for _ in 0..2_000 {
        if fake.requests_seen(Operation::QueryAuditEvents) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the follow made fewer than {n} polls in 20 s");
}

/// The next `n` items of `follow`, within 20 s.
async fn take(follow: &mut sentryagent_idp::Follow, n: usize) -> Vec<Result<AuditEvent>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, follow.next()).await {
            Ok(Some(item)) => out.push(item),
            Ok(None) => panic!("the follow ended after {} items", out.len()),
            Err(_) => panic!("only {} of {n} items within 20 s", out.len()),
        }
    }
    out
}

/// A follow driven in the background while a test adds events.
struct Driven {
    received: tokio::sync::mpsc::UnboundedReceiver<Result<AuditEvent>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Driven {
    fn start(mut follow: sentryagent_idp::Follow) -> Driven {
        let (sender, received) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(item) = follow.next().await {
                if sender.send(item).is_err() {
                    return;
                }
            }
        });
        Driven { received, driver }
    }

    /// The ids of the next `n` events, within 20 s.
    async fn ids(&mut self, n: usize) -> Vec<Uuid> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while got.len() < n {
            match tokio::time::timeout_at(deadline, self.received.recv()).await {
                Ok(Some(item)) => got.push(item.unwrap().event_id),
                _ => panic!("{} of {n} events within 20 s", got.len()),
            }
        }
        got
    }

    /// Fails if anything more is delivered over three more polls (the
    /// follow's own audit queries write no events), then stops the follow.
    async fn nothing_more(mut self, fake: &FakeAgentIdp) {
        let seen = fake.requests_seen(Operation::QueryAuditEvents);
        polls(fake, seen + 3).await;
        let more = self.received.try_recv();
        self.driver.abort();
        assert!(
            more.is_err(),
            "an event was delivered twice or from before: {more:?}"
        );
    }
}

/// `t` without its fraction of a second (the fake keeps milliseconds).
fn whole_second(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

fn seed(fake: &FakeAgentIdp, n: usize) -> HashSet<Uuid> {
    let agent = fake.bootstrap_agent_id();
    (0..n)
        .map(|_| fake.seed_audit_event(AuditEventSeed::new(agent, "agent.updated")))
        .collect()
}

#[tokio::test]
async fn a_burst_larger_than_a_page_is_delivered_whole_once_and_nothing_older() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let before = seed(&fake, 30);
    let client = fake.client_builder().build().unwrap();
    let mut driven = Driven::start(client.audit().query().poll_interval(POLL).follow());
    // Two polls: the first only set the mark.
    polls(&fake, 2).await;
    let burst = seed(&fake, 250);
    let got = driven.ids(250).await;
    driven.nothing_more(&fake).await;
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len(), 250, "no event twice");
    assert_eq!(unique, burst, "exactly the burst");
    assert!(
        unique.is_disjoint(&before),
        "nothing from before the follow began"
    );
}

#[tokio::test]
async fn events_are_delivered_oldest_first_and_a_from_bound_includes_history() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.bootstrap_agent_id();
    let start = whole_second(chrono::Utc::now() - chrono::Duration::minutes(10));
    for i in 0..5 {
        fake.seed_audit_event(
            AuditEventSeed::new(agent, "credential.rotated")
                .timestamp(start + chrono::Duration::seconds(i)),
        );
    }
    let client = fake.client_builder().build().unwrap();
    let mut follow = client
        .audit()
        .query()
        .from(start)
        .poll_interval(POLL)
        .follow();
    let events: Vec<_> = take(&mut follow, 5)
        .await
        .into_iter()
        .map(|e| e.unwrap())
        .collect();
    let times: Vec<_> = events.iter().map(|e| e.timestamp.unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "oldest first");
    assert_eq!(times[0], start);
}

#[tokio::test]
async fn events_arriving_while_a_poll_walks_its_pages_are_delivered_once() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.bootstrap_agent_id();
    let start = whole_second(chrono::Utc::now() - chrono::Duration::minutes(10));
    let mut seeded: HashSet<_> = (0..25)
        .map(|i| {
            fake.seed_audit_event(
                AuditEventSeed::new(agent, "agent.updated")
                    .timestamp(start + chrono::Duration::seconds(i)),
            )
        })
        .collect();
    let client = fake.client_builder().build().unwrap();
    client.access_token().await.unwrap();
    // Pages of 10, each answer held 300 ms: the first poll walks three pages.
    fake.set_latency(Duration::from_millis(300));
    let mut driven = Driven::start(
        client
            .audit()
            .query()
            .from(start)
            .action(AuditAction::AgentUpdated) // not the token.issued above
            .limit(10)
            .poll_interval(POLL)
            .follow(),
    );
    // While page 2 is held, five events arrive at the head of the log: they
    // would push five of page 1's onto page 2, and must not be lost to the
    // walk either (the next poll brings them).
    polls(&fake, 2).await;
    seeded.extend(seed(&fake, 5));
    fake.set_latency(Duration::ZERO);
    let got = driven.ids(30).await;
    driven.nothing_more(&fake).await;
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len(), 30, "no event twice: {got:?}");
    assert_eq!(unique, seeded, "every event, none lost");
}

#[tokio::test]
async fn it_resumes_after_server_errors_without_losing_or_repeating_events() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = fake
        .client_builder()
        .retry_policy(sentryagent_idp::RetryPolicy::disabled())
        .build()
        .unwrap();
    let mut follow = client.audit().query().poll_interval(POLL).follow();
    let first = tokio::spawn(async move {
        let items = take(&mut follow, 1).await;
        (follow, items)
    });
    polls(&fake, 2).await;
    let early = seed(&fake, 3);
    let (mut follow, mut items) = tokio::time::timeout(Duration::from_secs(20), first)
        .await
        .unwrap()
        .unwrap();
    // The server fails the next two polls, while more events arrive.
    fake.fail_next(Operation::QueryAuditEvents, Failure::Status(503), 1);
    fake.fail_next(Operation::QueryAuditEvents, Failure::DropConnection, 1);
    let late = seed(&fake, 4);
    items.extend(take(&mut follow, 2 + 2 + 4).await);
    let errors: Vec<_> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.kind() == ErrorKind::Server || e.is_retryable()),
        "{errors:?}"
    );
    let ids: Vec<_> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|e| e.event_id)
        .collect();
    let unique: HashSet<_> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no event twice");
    let all: HashSet<_> = early.union(&late).copied().collect();
    assert_eq!(unique, all, "no event lost across the outage");
}

#[tokio::test]
async fn a_refusal_that_will_not_pass_ends_the_follow() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let reader = fake
        .client_builder()
        .scopes([Scope::AGENTS_READ])
        .build()
        .unwrap();
    let mut follow = reader.audit().query().poll_interval(POLL).follow();
    let first = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .unwrap()
        .expect("an error, not the end");
    assert_eq!(first.unwrap_err().kind(), ErrorKind::MissingScope);
    let end = tokio::time::timeout(Duration::from_secs(10), follow.next())
        .await
        .unwrap();
    assert!(end.is_none(), "the follow ends after a refusal");
}

#[cfg(feature = "blocking")]
#[test]
fn the_blocking_client_follows_as_an_iterator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeAgentIdp::start()).unwrap();
    let agent = fake.bootstrap_agent_id();
    let start = whole_second(chrono::Utc::now() - chrono::Duration::minutes(1));
    let seeded: HashSet<_> = (0..3)
        .map(|i| {
            fake.seed_audit_event(
                AuditEventSeed::new(agent, "agent.updated")
                    .timestamp(start + chrono::Duration::seconds(i)),
            )
        })
        .collect();
    let client = fake.client_builder().blocking().build().unwrap();
    let got: HashSet<_> = client
        .audit()
        .query()
        .from(start)
        .poll_interval(POLL)
        .follow()
        .take(3)
        .map(|e| e.unwrap().event_id)
        .collect();
    assert_eq!(got, seeded);
}
