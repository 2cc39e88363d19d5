//! Fault injection: one named test per scenario, each asserting the outcome
//! and the exact number of requests the server saw.

use std::time::Duration;

use crate::support::scripted::*;
use crate::support::*;
use sentryagent_idp::{ErrorKind, Operation, RetryPolicy};
use serde_json::json;

const CREDENTIALS: &str = "/agents/a1b2c3d4-e5f6-7890-abcd-ef1234567890/credentials";

fn unavailable() -> Act {
    Act::json(
        503,
        json!({"code": "SERVICE_UNAVAILABLE", "message": "try later"}),
    )
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_after_the_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = scripted_static_client(&base)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
}

#[tokio::test]
async fn reset_before_the_response_is_retried_for_a_read() {
    let server = Scripted::start(vec![(AGENT_PATH, vec![Act::Close, agent_act()])]).await;
    scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(server.count(AGENT_PATH), 2);
}

#[tokio::test]
async fn reset_after_the_request_was_sent_never_duplicates_register() {
    let server = Scripted::start(vec![(
        "/agents",
        vec![Act::Close, Act::json(201, agent_json())],
    )])
    .await;
    let err = new_agent(&scripted_static_client(&server.base_url))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert!(err.message().contains("look the agent up"), "{err}");
    assert_eq!(server.count("/agents"), 1);
}

#[tokio::test]
async fn reset_after_the_request_was_sent_never_duplicates_generate() {
    let server = Scripted::start(vec![(CREDENTIALS, vec![Act::Close])]).await;
    let err = scripted_static_client(&server.base_url)
        .credentials()
        .generate(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(err.operation(), Some(Operation::GenerateCredential));
    assert_eq!(server.count(CREDENTIALS), 1);
}

#[tokio::test]
async fn a_gateway_error_on_register_is_an_unknown_outcome_not_a_retry() {
    let server = Scripted::start(vec![(
        "/agents",
        vec![Act::Respond(502, vec![], "bad gateway".into())],
    )])
    .await;
    let err = new_agent(&scripted_static_client(&server.base_url))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(server.count("/agents"), 1);
}

#[tokio::test]
async fn a_429_on_register_is_retried_since_nothing_was_done() {
    let limited = Act::Respond(
        429,
        vec![("retry-after", "0".into())],
        r#"{"code":"RATE_LIMIT_EXCEEDED","message":"slow"}"#.into(),
    );
    let server = Scripted::start(vec![(
        "/agents",
        vec![limited, Act::json(201, agent_json())],
    )])
    .await;
    new_agent(&scripted_static_client(&server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(server.count("/agents"), 2);
}

#[tokio::test]
async fn a_5xx_burst_then_success() {
    let server = Scripted::start(vec![(
        AGENT_PATH,
        vec![unavailable(), unavailable(), agent_act()],
    )])
    .await;
    scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(server.count(AGENT_PATH), 3);
}

#[tokio::test]
async fn a_5xx_burst_longer_than_the_attempts_returns_the_last_error() {
    let server = Scripted::start(vec![(AGENT_PATH, vec![unavailable()])]).await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Server, Some("SERVICE_UNAVAILABLE"))
    );
    assert_eq!(server.count(AGENT_PATH), 3);
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_waited_out() {
    let limited = Act::Respond(429, vec![("retry-after", "1".into())], String::new());
    let server = Scripted::start(vec![(AGENT_PATH, vec![limited, agent_act()])]).await;
    scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(server.count(AGENT_PATH), 2);
}

#[tokio::test]
async fn a_429_with_an_http_date_is_waited_out() {
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(1));
    let limited = Act::Respond(429, vec![("retry-after", at)], String::new());
    let server = Scripted::start(vec![(AGENT_PATH, vec![limited, agent_act()])]).await;
    scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(server.count(AGENT_PATH), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_maximum_is_returned_not_waited() {
    let limited = Act::Respond(
        429,
        vec![("retry-after", "3600".into())],
        r#"{"code":"RATE_LIMIT_EXCEEDED","message":"slow"}"#.into(),
    );
    let server = Scripted::start(vec![(AGENT_PATH, vec![limited])]).await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(server.count(AGENT_PATH), 1);
}

/// On a paused clock (the scripted server's delay and the attempt timeout
/// are both tokio timers): the retry is answered however busy the machine.
#[tokio::test(start_paused = true)]
async fn a_slow_server_past_the_attempt_timeout_is_retried() {
    let slow = Act::After(Duration::from_secs(10), Box::new(agent_act()));
    let server = Scripted::start(vec![(AGENT_PATH, vec![slow, agent_act()])]).await;
    let client = scripted_static_builder(&server.base_url)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    client.agents().get(agent_id()).send().await.unwrap();
    assert_eq!(server.count(AGENT_PATH), 2);
}

#[tokio::test]
async fn the_total_timeout_bounds_all_attempts() {
    // Real time: the total timeout's deadline is on the system clock. The
    // attempts are a second apart so that a busy machine still fits two.
    let slow = Act::After(Duration::from_secs(30), Box::new(agent_act()));
    let server = Scripted::start(vec![(AGENT_PATH, vec![slow])]).await;
    let client = scripted_static_builder(&server.base_url)
        .timeout(Duration::from_secs(1))
        .total_timeout(Duration::from_millis(2_500))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(10)
                .base_delay(Duration::ZERO),
        )
        .build()
        .unwrap();
    let err = client.agents().get(agent_id()).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("total timeout"), "{err}");
    // Attempts start at about 0, 1 and 2 s; the third is cut at 2.5 s. No
    // attempt can start sooner than its predecessor timed out, so a slow
    // machine makes fewer, never more, and ten were allowed.
    let attempts = server.count(AGENT_PATH);
    assert!((2..=3).contains(&attempts), "{attempts} attempts");
}

#[tokio::test]
async fn a_truncated_body_is_a_transport_error() {
    let server = Scripted::start(vec![(
        AGENT_PATH,
        vec![Act::Truncated {
            declared: 500,
            body: "{\"agentId\":".into(),
        }],
    )])
    .await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Transport | ErrorKind::Decode),
        "{err:?}"
    );
    // A GET whose answer broke off is replayed: all 3 attempts of the policy.
    assert_eq!(server.count(AGENT_PATH), 3);
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let server = Scripted::start(vec![(
        AGENT_PATH,
        vec![Act::Respond(
            200,
            vec![("content-type", "application/json".into())],
            "{not json".into(),
        )],
    )])
    .await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(server.count(AGENT_PATH), 1);
}

#[tokio::test]
async fn an_html_error_page_from_a_proxy_keeps_its_status() {
    let page = Act::Respond(
        502,
        vec![("content-type", "text/html".into())],
        "<html><h1>502 Bad Gateway</h1></html>".into(),
    );
    let server = Scripted::start(vec![(AGENT_PATH, vec![page])]).await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.status().map(|s| s.as_u16())),
        (ErrorKind::Server, Some(502))
    );
    assert!(err.message().contains("502 Bad Gateway"), "{err}");
    assert_eq!(server.count(AGENT_PATH), 3);
}

#[tokio::test]
async fn a_response_over_the_size_limit_is_refused() {
    let huge = Act::Respond(
        200,
        vec![("content-type", "application/json".into())],
        format!("\"{}\"", "x".repeat(64 * 1024)),
    );
    let server = Scripted::start(vec![(AGENT_PATH, vec![huge])]).await;
    let client = scripted_static_builder(&server.base_url)
        .max_response_bytes(16 * 1024)
        .build()
        .unwrap();
    let err = client.agents().get(agent_id()).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResponseTooLarge);
    assert_eq!(server.count(AGENT_PATH), 1);
}

#[tokio::test]
async fn token_expiry_mid_flight_refreshes_once_and_succeeds() {
    let expired = Act::json(
        401,
        json!({"code": "UNAUTHORIZED", "message": "Token expired."}),
    );
    let server = Scripted::start(vec![
        (
            "/token",
            vec![token_act("tok-1", 3600), token_act("tok-2", 3600)],
        ),
        (AGENT_PATH, vec![expired, agent_act()]),
    ])
    .await;
    scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap()
        .agents()
        .get(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!((server.count("/token"), server.count(AGENT_PATH)), (2, 2));
}

#[tokio::test]
async fn token_endpoint_down_while_the_cached_token_is_valid_lets_calls_go_on() {
    // A 16 s token with a huge buffer: due for refresh at 8-12 s (the buffer
    // is at most half its lifetime), valid to 16 s: the calls below have
    // seconds to run before it expires. Real time: the token cache's clock.
    let server = Scripted::start(vec![
        ("/token", vec![token_act("tok-1", 16), unavailable()]),
        (AGENT_PATH, vec![agent_act()]),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .refresh_buffer(Duration::from_secs(7200))
        .build()
        .unwrap();
    client.agents().get(agent_id()).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(12_050)).await;
    for _ in 0..5 {
        client.agents().get(agent_id()).send().await.unwrap();
    }
    // One background refresh (3 attempts: its own retries), then a quiet
    // period instead of a refresh per call.
    for _ in 0..100 {
        if server.count("/token") >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        client.agents().get(agent_id()).send().await.unwrap();
    }
    assert_eq!(server.count(AGENT_PATH), 11);
    assert_eq!(
        server.count("/token"),
        1 + 3,
        "the first token, then one failed refresh"
    );
}

/// On a paused clock: the caller is cancelled while the token is held,
/// however long the machine takes to get there.
#[tokio::test(start_paused = true)]
async fn cancellation_mid_refresh_still_delivers_the_token() {
    let slow_token = Act::After(
        Duration::from_millis(300),
        Box::new(token_act("tok-1", 3600)),
    );
    let server = Scripted::start(vec![
        ("/token", vec![slow_token]),
        (AGENT_PATH, vec![agent_act()]),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    let cancelled = tokio::spawn({
        let client = client.clone();
        async move { client.agents().get(agent_id()).send().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    cancelled.abort();
    client.agents().get(agent_id()).send().await.unwrap();
    assert_eq!((server.count("/token"), server.count(AGENT_PATH)), (1, 1));
}

#[tokio::test]
async fn a_server_clock_skewed_by_hours_does_not_expire_the_token() {
    let skewed =
        httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(5 * 3600));
    let token = Act::Respond(
        200,
        vec![
            ("content-type", "application/json".into()),
            ("date", skewed),
        ],
        token_body("tok-1", ALL_SCOPES, 3600).to_string(),
    );
    let server = Scripted::start(vec![
        ("/token", vec![token]),
        (AGENT_PATH, vec![agent_act()]),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    for _ in 0..3 {
        client.agents().get(agent_id()).send().await.unwrap();
    }
    assert_eq!((server.count("/token"), server.count(AGENT_PATH)), (1, 3));
}

#[tokio::test]
async fn a_conflict_on_a_replayed_delete_means_the_first_attempt_did_it() {
    let done = Act::json(
        409,
        json!({"code": "AGENT_ALREADY_DECOMMISSIONED", "message": "already"}),
    );
    let server = Scripted::start(vec![(AGENT_PATH, vec![Act::Close, done])]).await;
    scripted_static_client(&server.base_url)
        .agents()
        .decommission(agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(server.count(AGENT_PATH), 2);
}

#[tokio::test]
async fn a_conflict_on_a_first_delete_is_an_error() {
    let done = Act::json(
        409,
        json!({"code": "AGENT_ALREADY_DECOMMISSIONED", "message": "already"}),
    );
    let server = Scripted::start(vec![(AGENT_PATH, vec![done])]).await;
    let err = scripted_static_client(&server.base_url)
        .agents()
        .decommission(agent_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Conflict, Some("AGENT_ALREADY_DECOMMISSIONED"))
    );
    assert_eq!(server.count(AGENT_PATH), 1);
}

#[tokio::test]
async fn the_retry_budget_keeps_a_dead_server_from_tripling_the_load() {
    let server = Scripted::start(vec![(AGENT_PATH, vec![unavailable()])]).await;
    // 20 tokens: four retries in all, then failures return at once.
    let client = scripted_static_builder(&server.base_url)
        .retry_policy(
            RetryPolicy::default()
                .base_delay(Duration::ZERO)
                .budget(Some(20)),
        )
        .build()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(
            client
                .agents()
                .get(agent_id())
                .send()
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Server
        );
    }
    assert_eq!(server.count(AGENT_PATH), 10 + 4);
}

#[tokio::test]
async fn disabled_retries_send_once() {
    let server = Scripted::start(vec![(AGENT_PATH, vec![unavailable(), agent_act()])]).await;
    let client = scripted_static_builder(&server.base_url)
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap();
    assert_eq!(
        client
            .agents()
            .get(agent_id())
            .send()
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Server
    );
    assert_eq!(server.count(AGENT_PATH), 1);
}

/// On a paused clock: the server holds each answer until all three slots
/// are taken, however slowly the calls start.
#[tokio::test(start_paused = true)]
async fn max_in_flight_caps_the_requests_on_the_wire() {
    let slow = Act::After(Duration::from_millis(100), Box::new(agent_act()));
    let server = Scripted::start(vec![(AGENT_PATH, vec![slow])]).await;
    let client = scripted_static_builder(&server.base_url)
        .max_in_flight(3)
        .build()
        .unwrap();
    let calls = (0..12).map(|_| {
        let client = client.clone();
        async move { client.agents().get(agent_id()).send().await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.count(AGENT_PATH), 12);
    assert_eq!(server.most_at_once(), 3);
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_in_the_background_before_it_expires() {
    // A 2 s token is due at 1-1.5 s. The refresh must start then, not wait
    // for a quiet period after the first fetch that outlasts the token (0.2
    // waited 5 s, so every caller stalled on a fetch once the token expired).
    let server = Scripted::start(vec![
        (
            "/token",
            vec![token_act("tok-1", 2), token_act("tok-2", 3600)],
        ),
        (AGENT_PATH, vec![agent_act()]),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    client.agents().get(agent_id()).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_550)).await;
    client.agents().get(agent_id()).send().await.unwrap();
    // Bounded at 10 s: the background refresh may be slow on a busy machine.
    for _ in 0..1_000 {
        if server.count("/token") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.count("/token"),
        2,
        "a background refresh while the first token was still valid"
    );
}

/// Issue 23, item 4(a): waiting for a `max_in_flight` slot counts against
/// the call's total timeout. On a paused clock, call A (503, `Retry-After: 1`)
/// queues its retry behind call B, which holds the one slot on a server that
/// never answers, until B's own deadline half a second after A's.
#[tokio::test(start_paused = true)]
async fn waiting_for_an_in_flight_slot_ends_at_the_calls_total_timeout() {
    let busy = Act::Respond(
        503,
        vec![
            ("content-type", "application/json".into()),
            ("retry-after", "1".into()),
        ],
        json!({"code": "SERVICE_UNAVAILABLE", "message": "busy"}).to_string(),
    );
    let hang = Act::After(Duration::from_secs(3600), Box::new(agent_act()));
    let server = Scripted::start(vec![(AGENT_PATH, vec![busy, hang])]).await;
    let client = scripted_static_builder(&server.base_url)
        .max_in_flight(1)
        .total_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let a = async {
        let answer = client.agents().get(agent_id()).send().await;
        (answer, started.elapsed())
    };
    let b = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.agents().get(agent_id()).send().await
    };
    let ((a, waited), _) = tokio::join!(a, b);
    let err = a.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        waited <= Duration::from_millis(2_050),
        "call A ended {waited:?} after it started, past its 2 s total timeout ({err})"
    );
    assert_eq!(
        server.count(AGENT_PATH),
        2,
        "A's retry, which never got a slot in time, was not sent"
    );
}

/// On a paused clock: the other call is answered within the `Retry-After`
/// second however slowly it runs.
#[tokio::test(start_paused = true)]
async fn a_call_backing_off_gives_its_in_flight_slot_to_another() {
    // With one slot, a call waiting out `Retry-After: 1` must not keep it:
    // the other call is answered during that second, before the retry.
    let busy = Act::Respond(
        503,
        vec![
            ("content-type", "application/json".into()),
            ("retry-after", "1".into()),
        ],
        json!({"code": "SERVICE_UNAVAILABLE", "message": "busy"}).to_string(),
    );
    let listing = json!({"data": [agent_json()], "total": 1});
    let server = Scripted::start(vec![
        (AGENT_PATH, vec![busy, agent_act()]),
        ("/agents", vec![Act::json(200, listing)]),
    ])
    .await;
    let client = scripted_static_builder(&server.base_url)
        .max_in_flight(1)
        .build()
        .unwrap();
    let backing_off = client.agents().get(agent_id()).send();
    let other = async {
        // Starts once the first call has had its 503.
        for _ in 0..2_000 {
            if server.count(AGENT_PATH) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client.agents().list().send().await
    };
    let (got, listed) = tokio::join!(backing_off, other);
    got.unwrap();
    listed.unwrap();
    let order: Vec<bool> = server
        .seen()
        .into_iter()
        .map(|(_, path)| !path.contains(AGENT_PATH))
        .collect();
    assert_eq!(
        order,
        [false, true, false],
        "503, the other call, then the retry"
    );
}
