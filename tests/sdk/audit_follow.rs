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
    // A follow starts at the millisecond of its call: the events before it
    // are in earlier ones.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let client = fake.client_builder().build().unwrap();
    // Only the seeded action: the token the first poll fetches writes a
    // `token.issued` event after the call, which the follow delivers.
    let follow = client.audit().query().action(AuditAction::AgentUpdated);
    let mut driven = Driven::start(follow.poll_interval(POLL).follow());
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
    // Not the `token.issued` event of the first poll's token (written after
    // the call to `.follow()`, so delivered).
    let mut follow = client
        .audit()
        .query()
        .action(AuditAction::AgentUpdated)
        .poll_interval(POLL)
        .follow();
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

// Against a listing server that keeps microsecond times and prints
// milliseconds (`support::paged::Log`), on a paused clock: the follow's
// waits are tokio timers, so a count of requests over a virtual interval
// does not depend on how busy the machine is.

use crate::support::paged::{Knobs, Log, now_us};
use crate::support::scripted::Act;

/// Reads `follow` until `virtual_secs` of (paused) time have passed, at most
/// `max` items; returns what it yielded and whether it ended.
async fn drain(
    follow: &mut sentryagent_idp::Follow,
    virtual_secs: u64,
    max: usize,
) -> (Vec<Result<AuditEvent>>, bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(virtual_secs);
    let mut out = Vec::new();
    while out.len() < max {
        match tokio::time::timeout_at(deadline, follow.next()).await {
            Ok(Some(item)) => out.push(item),
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
    (out, false)
}

fn ids(items: &[Result<AuditEvent>]) -> Vec<Uuid> {
    items
        .iter()
        .map(|i| i.as_ref().expect("no error").event_id)
        .collect()
}

/// Issue 23, item 5: "from now" costs one request, however long the log.
#[tokio::test(start_paused = true)]
async fn following_from_now_costs_one_request_however_long_the_log() {
    let log = Log::start(Knobs::default()).await;
    // 5,000 events over the hour before the follow.
    let hour_ago = now_us() - 3_600_000_000;
    for i in 0..5_000 {
        log.add_at(1, hour_ago + i * 700_000);
    }
    let client = log.client();
    let mut follow = client
        .audit()
        .query()
        .poll_interval(Duration::from_secs(600))
        .follow();
    let (items, ended) = drain(&mut follow, 60, 10).await;
    assert!(items.is_empty() && !ended, "{items:?}");
    assert_eq!(
        log.listings(),
        1,
        "the first poll of a follow from now made {} requests",
        log.listings()
    );
}

/// Issue 23, item 6: a `Retry-After` of 0, or a date in the past, does not
/// make the follow poll sooner than its interval; a huge one is capped.
#[tokio::test(start_paused = true)]
async fn a_retry_after_of_zero_or_in_the_past_never_polls_sooner_than_the_interval() {
    for hint in ["0", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let log = Log::start(Knobs {
            refuse: Some(Act::Respond(
                429,
                vec![
                    ("content-type", "application/json".into()),
                    ("retry-after", hint.into()),
                ],
                r#"{"code":"RATE_LIMIT_EXCEEDED","message":"slow down"}"#.into(),
            )),
            ..Knobs::default()
        })
        .await;
        let client = log.client();
        let mut follow = client
            .audit()
            .query()
            .poll_interval(Duration::from_millis(250))
            .follow();
        let (items, ended) = drain(&mut follow, 10, 5_000).await;
        assert!(!ended);
        assert!(items.iter().all(Result::is_err));
        // Polls at 0, 0.25, …, 10 s at most: 41.
        assert!(
            log.listings() <= 41,
            "Retry-After: {hint}: {} requests in 10 s at a 250 ms interval",
            log.listings()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_ceiling_is_waited_only_up_to_the_ceiling() {
    let log = Log::start(Knobs {
        refuse: Some(Act::Respond(
            429,
            vec![("retry-after", "86400".into())],
            r#"{"code":"RATE_LIMIT_EXCEEDED","message":"slow down"}"#.into(),
        )),
        ..Knobs::default()
    })
    .await;
    let client = log.client();
    let mut follow = client
        .audit()
        .query()
        .poll_interval(Duration::from_millis(250))
        .follow();
    let span = sentryagent_idp::MAX_FOLLOW_BACKOFF * 3 + Duration::from_secs(1);
    let (items, _) = drain(&mut follow, span.as_secs(), 100).await;
    assert_eq!(items.len(), 4, "a poll at 0 and one per ceiling: {items:?}");
}

/// Issue 23, item 7: an event committed late (stamped before the newest one
/// delivered) is delivered, once.
#[tokio::test(start_paused = true)]
async fn an_event_committed_late_is_delivered_once() {
    let log = Log::start(Knobs::default()).await;
    let client = log.client();
    let t0 = now_us();
    let mut follow = client
        .audit()
        .query()
        .poll_interval(Duration::from_millis(500))
        .follow();
    // The first poll finds nothing.
    let (items, _) = drain(&mut follow, 1, 1).await;
    assert!(items.is_empty(), "{items:?}");
    let newer = log.add_at(1, t0 + 2_000_000);
    let (items, _) = drain(&mut follow, 5, 1).await;
    assert_eq!(ids(&items), newer);
    // Committed now, stamped a second before the one delivered.
    let late = log.add_at(1, t0 + 1_000_000);
    let (items, _) = drain(&mut follow, 5, 10).await;
    assert_eq!(ids(&items), late, "the late event, once, and nothing again");
}

/// Issue 23, item 8: `.to(...)` bounds a follow: nothing after it, and the
/// stream ends once the bound is past.
#[tokio::test(start_paused = true)]
async fn a_follow_with_a_to_bound_delivers_nothing_after_it_and_ends() {
    let log = Log::start(Knobs::default()).await;
    let t0 = now_us();
    let mut inside = log.add_at(1, t0 - 300_000_000);
    inside.extend(log.add_at(1, t0 - 200_000_000));
    log.add_at(1, t0 - 100_000_000);
    let client = log.client();
    let at = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap();
    let mut follow = client
        .audit()
        .query()
        .from(at(t0 - 400_000_000))
        .to(at(t0 - 150_000_000))
        .poll_interval(Duration::from_millis(250))
        .follow();
    let (items, ended) = drain(&mut follow, 30, 10).await;
    assert_eq!(ids(&items), inside, "only the events up to `to`");
    assert!(ended, "the follow ends once `to` is past");
}

/// Issue 23, item 9: "now" is the call to `.follow()`: an event written
/// before the stream is first polled is delivered.
#[tokio::test(start_paused = true)]
async fn an_event_written_between_follow_and_its_first_poll_is_delivered() {
    let log = Log::start(Knobs::default()).await;
    log.add_at(3, now_us() - 60_000_000);
    let client = log.client();
    let mut follow = client
        .audit()
        .query()
        .poll_interval(Duration::from_millis(250))
        .follow();
    let written = log.add_at(1, now_us());
    let (items, _) = drain(&mut follow, 5, 10).await;
    assert_eq!(ids(&items), written, "that event, and nothing from before");
}

/// Issue 23, item 10: a follow over a server that keeps microseconds and
/// prints milliseconds delivers every event of a busy millisecond.
#[tokio::test(start_paused = true)]
async fn a_follow_delivers_every_event_of_a_millisecond_the_server_prints_as_one() {
    let log = Log::start(Knobs::default()).await;
    let ms = (now_us() / 1000 - 60_000) * 1000;
    let written: HashSet<Uuid> = (0..250).flat_map(|i| log.add_at(1, ms + i)).collect();
    let client = log.client();
    let mut follow = client
        .audit()
        .query()
        .from(chrono::DateTime::from_timestamp_micros(ms).unwrap())
        .poll_interval(Duration::from_millis(250))
        .follow();
    let (items, _) = drain(&mut follow, 5, 1_000).await;
    let got = ids(&items);
    let unique: HashSet<Uuid> = got.iter().copied().collect();
    assert_eq!(got.len(), unique.len(), "no event twice");
    assert_eq!(unique.len(), 250, "every event of that millisecond");
    assert_eq!(unique, written);
}
