//! The token cache: what it accepts from the token endpoint, single-flight
//! refresh, and that no abnormal fetch (a panic, a hang, a dead runtime)
//! wedges it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpmock::prelude::*;
use sentryagent_idp::auth::{AccessToken, TokenSource};
use sentryagent_idp::{Client, RetryPolicy};
use serde_json::json;

use crate::support::scripted::*;
use crate::support::*;

/// 0.1 review, defect 1 (token): after a 201 token answer, the first API call succeeds.
#[tokio::test]
async fn first_api_call_after_a_201_token_answer_succeeds() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(201)
                .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
        })
        .await;
    let api = get_agent_mock(&server).await;
    let result = bounded(
        10,
        "get_agent",
        mock_client(&server.base_url())
            .agents()
            .get(agent_id())
            .send(),
    )
    .await;
    match result {
        Ok(agent) => {
            assert_eq!(agent.agent_id, agent_id());
            assert_eq!(api.calls_async().await, 1);
        }
        Err(e) => panic!(
            "a 201 token answer must be accepted and the call succeed; got a {:?} error \
             whose text contains the access token: {}; Display: {e}",
            e.kind(),
            error_leaks(&e, ACCESS_TOKEN)
        ),
    }
}

/// 0.1 review, defect 2: with one in-flight slot, a 401 replay still gets its new token.
#[tokio::test]
async fn max_in_flight_1_still_refreshes_and_replays_after_a_401() {
    let refused = Act::json(
        401,
        json!({"code": "UNAUTHORIZED", "message": "Token expired."}),
    );
    let server = Scripted::start(vec![
        (
            "/token",
            vec![token_act("tok-A", 3600), token_act("tok-B", 3600)],
        ),
        (AGENT_PATH, vec![refused, Act::json(200, agent_json())]),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .max_in_flight(1)
        .total_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The total timeout is 20 s; a healthy replay takes milliseconds, a busy
    // machine seconds; a deadlock runs into the 15 s bound.
    let outcome = tokio::time::timeout(
        Duration::from_secs(15),
        client.agents().get(agent_id()).send(),
    )
    .await;
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("the replayed call must succeed; got {e:?}"),
        Err(_) => panic!(
            "deadlock: get_agent did not complete within 15 s (total timeout 20 s); \
             requests seen: {:?}",
            server.seen()
        ),
    }
}

/// Panics on its first fetch, succeeds afterwards.
struct PanicsFirst(Arc<AtomicUsize>);

impl TokenSource for PanicsFirst {
    async fn fetch(&self) -> sentryagent_idp::Result<AccessToken> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("token source failure staged by the regression test");
        }
        Ok(AccessToken::new(ACCESS_TOKEN))
    }
}

/// Hangs forever on its first fetch, succeeds afterwards.
struct HangsFirst(Arc<AtomicUsize>);

impl TokenSource for HangsFirst {
    async fn fetch(&self) -> sentryagent_idp::Result<AccessToken> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            return std::future::pending().await;
        }
        Ok(AccessToken::new(ACCESS_TOKEN))
    }
}

/// 0.1 review, defect 3(a): a panicking source is reported as a panic, and does not wedge the cache.
#[tokio::test]
async fn a_token_source_that_panicked_once_does_not_fail_every_later_call() {
    let server = MockServer::start_async().await;
    get_agent_mock(&server).await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = Client::builder()
        .base_url(server.base_url())
        .token_source(PanicsFirst(Arc::clone(&fetches)))
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap();
    let first = bounded(10, "first call", client.agents().get(agent_id()).send()).await;
    let second = bounded(10, "second call", client.agents().get(agent_id()).send()).await;
    let first_says_panic = first
        .as_ref()
        .err()
        .is_some_and(|e| e.to_string().to_lowercase().contains("panic"));
    assert!(
        first_says_panic && second.is_ok(),
        "the first call must fail saying the token source panicked, and the second must \
         succeed; first: {first:?}; second: {second:?}; source fetches: {}",
        fetches.load(Ordering::SeqCst)
    );
}

/// 0.1 review, defect 3(b): a custom source that hangs is bounded, and a later call gets a new fetch.
#[tokio::test]
async fn a_token_source_that_hung_once_does_not_block_later_calls() {
    let server = MockServer::start_async().await;
    get_agent_mock(&server).await;
    let fetches = Arc::new(AtomicUsize::new(0));
    let client = Client::builder()
        .base_url(server.base_url())
        .token_source(HangsFirst(Arc::clone(&fetches)))
        .retry_policy(RetryPolicy::disabled())
        .timeout(Duration::from_secs(1))
        .total_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    // The first call may fail (its fetch hangs), but must end.
    let first = tokio::time::timeout(
        Duration::from_secs(8),
        client.agents().get(agent_id()).send(),
    )
    .await;
    let second = tokio::time::timeout(
        Duration::from_secs(8),
        client.agents().get(agent_id()).send(),
    )
    .await;
    assert!(
        first.is_ok(),
        "the first call (hung token fetch) must be bounded; it did not end within 8 s"
    );
    assert!(
        matches!(second, Ok(Ok(_))),
        "a later call must get a fresh token and succeed; first: {first:?}; second: {second:?}; \
         source fetches: {}",
        fetches.load(Ordering::SeqCst)
    );
}

/// 0.1 review, defect 3(c): a fetch left behind by a shut-down runtime does not poison later calls.
#[test]
fn a_token_fetch_on_a_runtime_that_was_shut_down_does_not_poison_the_cache() {
    let server = MockServer::start();
    let token = server.mock(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(200)
            .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600))
            .delay(Duration::from_millis(1000));
    });
    server.mock(|when, then| {
        when.method(GET).path(request_path("/agents/{agentId}"));
        then.status(200).json_body(agent_json());
    });
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let first_runtime = rt();
    let client = first_runtime.block_on(async { mock_client(&server.base_url()) });
    first_runtime.block_on(async {
        // Starts the (slow) token fetch, then gives up on the call.
        let started = tokio::time::timeout(
            Duration::from_millis(200),
            client.agents().get(agent_id()).send(),
        )
        .await;
        assert!(
            started.is_err(),
            "the first call should still be waiting for its token"
        );
    });
    drop(first_runtime);
    let second_runtime = rt();
    let second = second_runtime.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(10),
            client.agents().get(agent_id()).send(),
        )
        .await
    });
    match second {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!(
            "a call from a new runtime must succeed; got {e:?} (token requests: {})",
            token.calls()
        ),
        Err(_) => panic!("a call from a new runtime hung for 10 s (joined the dead fetch)"),
    }
}

/// A current-thread runtime, as a sync program builds one per call.
fn call_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The fixture agent fetched on a runtime of its own, bounded.
fn get_agent_on_a_new_runtime(client: &Client) -> sentryagent_idp::Result<()> {
    call_runtime().block_on(async {
        bounded(
            10,
            "get_agent on a new runtime",
            client.agents().get(agent_id()).send(),
        )
        .await
        .map(drop)
    })
}

/// Issue 23, item 1(a): a sync program runs each call on a fresh runtime; a
/// call in the refresh window spawns the background refresh and returns at
/// once (the cached token is still good), and its runtime is dropped before
/// the refresh task is ever polled. Later calls, once the token expired, must
/// start a fetch of their own, not join the dead one.
#[test]
fn a_background_refresh_dropped_with_its_runtime_before_its_first_poll_does_not_wedge_the_cache() {
    let server = MockServer::start();
    // A 4 s token: due for refresh 2 to 3 s after it arrives.
    let token = server.mock(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(200)
            .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 4));
    });
    server.mock(|when, then| {
        when.method(GET).path(request_path("/agents/{agentId}"));
        then.status(200).json_body(agent_json());
    });
    let client = call_runtime().block_on(async { mock_client(&server.base_url()) });
    get_agent_on_a_new_runtime(&client).unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    // In the refresh window: the cached token comes back without a wait and
    // the refresh task is left, unpolled, on a runtime that is then dropped.
    call_runtime()
        .block_on(client.access_token())
        .expect("the cached token, still valid");
    // Past the token's expiry: the next call needs a new token.
    std::thread::sleep(Duration::from_millis(1500));
    let next = get_agent_on_a_new_runtime(&client);
    assert!(
        next.is_ok(),
        "a call after a background refresh died with its runtime must get a new token; \
         got {next:?} (token requests: {})",
        token.calls()
    );
}

/// Issue 23, item 1(b): a call polled once (which starts the token fetch
/// task) and dropped, on a runtime that then ends before the task is ever
/// polled, must not leave a dead fetch for every later call to join.
#[test]
fn a_fetch_task_dropped_before_its_first_poll_does_not_wedge_the_cache() {
    let server = MockServer::start();
    let token = token_mock_sync(&server);
    server.mock(|when, then| {
        when.method(GET).path(request_path("/agents/{agentId}"));
        then.status(200).json_body(agent_json());
    });
    let client = call_runtime().block_on(async { mock_client(&server.base_url()) });
    call_runtime().block_on(async {
        let call = client.agents().get(agent_id()).send();
        let mut call = std::pin::pin!(call);
        assert!(
            futures::poll!(call.as_mut()).is_pending(),
            "the first poll should be waiting for the token fetch"
        );
    });
    let next = get_agent_on_a_new_runtime(&client);
    assert!(
        next.is_ok(),
        "a call after a fetch task died unpolled with its runtime must get a token; \
         got {next:?} (token requests: {})",
        token.calls()
    );
}

/// 0.1 review, defect 4: 20 calls with a 60 s token and the default 60 s buffer need at most 2 tokens.
#[tokio::test]
async fn a_token_living_no_longer_than_the_refresh_buffer_is_not_fetched_on_every_call() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 60).await;
    let api = get_agent_mock(&server).await;
    let client = mock_client(&server.base_url());
    for _ in 0..20 {
        bounded(10, "get_agent", client.agents().get(agent_id()).send())
            .await
            .unwrap();
        // Lets any background refresh finish, so each call sees its result.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(api.calls_async().await, 20);
    let fetched = token.calls_async().await;
    assert!(
        fetched <= 2,
        "20 sequential calls with a 60 s token made {fetched} token requests (at most 2 expected)"
    );
}

/// Issue 23, item 4(b): a token answered with `expires_in` of 0 or a
/// negative number is kept for 10 s, not fetched again on every call.
#[tokio::test]
async fn a_token_answered_with_a_lifetime_of_zero_or_less_is_not_fetched_on_every_call() {
    for expires_in in [json!(0), json!(-5)] {
        let token = json!({
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": ALL_SCOPES,
        });
        let server = Scripted::start(vec![
            ("/token", vec![Act::json(200, token)]),
            (AGENT_PATH, vec![agent_act()]),
        ])
        .await;
        let client = scripted_credentials_builder(&server.base_url)
            .build()
            .unwrap();
        for _ in 0..10 {
            bounded(10, "get_agent", client.agents().get(agent_id()).send())
                .await
                .unwrap();
        }
        assert_eq!(
            server.count("/token"),
            1,
            "10 calls with a token of `expires_in: {expires_in}` made {} token requests",
            server.count("/token")
        );
    }
}

/// Issue 23, item 4(c): `expires_in` sent as a string or with a fraction (or
/// as a word) decodes: the token is used and kept, not refused as a decode
/// error.
#[tokio::test]
async fn a_token_answered_with_a_string_or_fractional_lifetime_is_used_and_kept() {
    for expires_in in [json!("3600"), json!(3599.5), json!("soon")] {
        let token = json!({
            "access_token": ACCESS_TOKEN,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "scope": ALL_SCOPES,
        });
        let server = Scripted::start(vec![
            ("/token", vec![Act::json(200, token)]),
            (AGENT_PATH, vec![agent_act()]),
        ])
        .await;
        let client = scripted_credentials_builder(&server.base_url)
            .build()
            .unwrap();
        for _ in 0..3 {
            let got = bounded(10, "get_agent", client.agents().get(agent_id()).send()).await;
            assert!(got.is_ok(), "`expires_in: {expires_in}`: {got:?}");
        }
        assert_eq!(server.count("/token"), 1, "`expires_in: {expires_in}`");
    }
}

/// 0.1 review, defect 10(a): a huge refresh buffer does not overflow `Instant + Duration`.
#[tokio::test]
async fn a_refresh_buffer_of_duration_max_does_not_panic() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    get_agent_mock(&server).await;
    let client = for_mock(Client::builder(), &server.base_url())
        .refresh_buffer(Duration::MAX)
        .build()
        .unwrap();
    let calls = tokio::spawn(async move {
        // The first call fetches a token; the second compares it with the buffer.
        let first = client.agents().get(agent_id()).send().await.map(drop);
        let second = client.agents().get(agent_id()).send().await.map(drop);
        (first, second)
    });
    match bounded(10, "two calls", calls).await {
        Ok((first, second)) => {
            assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}")
        }
        Err(e) if e.is_panic() => panic!(
            "a call with refresh_buffer(Duration::MAX) panicked: {}",
            panic_text(&*e.into_panic())
        ),
        Err(e) => panic!("the calls' task failed: {e}"),
    }
}

/// 0.1 review, item 15(c): a token response without `scope` works.
#[tokio::test]
async fn a_token_response_without_scope_works() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(200).json_body(
                json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600}),
            );
        })
        .await;
    get_agent_mock(&server).await;
    let result = bounded(
        10,
        "get_agent",
        mock_client(&server.base_url())
            .agents()
            .get(agent_id())
            .send(),
    )
    .await;
    if let Err(e) = result {
        panic!("a token response without `scope` must be accepted; got {e:?}");
    }
}

/// Revoking the client's own token: the cache forgets it.
#[cfg(feature = "testing")]
#[tokio::test]
async fn revoking_the_own_token_without_a_store_fetches_a_new_one() {
    use sentryagent_idp::ExposeSecret;
    let fake = sentryagent_idp::testing::FakeAgentIdp::start()
        .await
        .unwrap();
    let client = fake.client_builder().build().unwrap();
    let revoked = client.access_token().await.unwrap();
    client.tokens().revoke(&revoked).send().await.unwrap();
    let now = client.access_token().await.unwrap();
    assert!(
        now.expose_secret() != revoked.expose_secret(),
        "the revoked token stayed in the cache"
    );
    assert_eq!(
        fake.requests_seen(sentryagent_idp::Operation::IssueToken),
        2
    );
}
