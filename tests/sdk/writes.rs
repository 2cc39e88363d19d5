//! Writes (register, rotate, generate, decommission, revoke): success
//! statuses, unknown outcomes that are never replayed, and what a 409
//! `_ALREADY_` means after earlier attempts.

use std::time::Duration;

use httpmock::prelude::*;
use sentryagent_idp::{ErrorKind, ExposeSecret};
use serde_json::json;

use crate::support::scripted::*;
use crate::support::*;

/// 0.1 review, defect 1 (rotate): a 201 to rotate is still a success carrying the secret.
#[tokio::test]
async fn rotate_answered_201_returns_the_new_secret() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(request_path(
                "/agents/{agentId}/credentials/{credentialId}/rotate",
            ));
            then.status(201)
                .json_body(credential_with_secret_json(NEW_SECRET));
        })
        .await;
    let result = bounded(
        10,
        "rotate",
        mock_client(&server.base_url())
            .credentials()
            .rotate(agent_id(), credential_id())
            .send(),
    )
    .await;
    match result {
        Ok(credential) => assert_eq!(credential.client_secret.expose_secret(), NEW_SECRET),
        Err(e) => panic!(
            "rotate answered 201 must succeed with the new secret; got a {:?} error \
             whose text contains the new clientSecret: {}; Display: {e}",
            e.kind(),
            error_leaks(&e, NEW_SECRET)
        ),
    }
}

/// 0.1 review, defect 1 (generate): a 200 to generate is still a success carrying the secret.
#[tokio::test]
async fn generate_answered_200_returns_the_new_secret() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(request_path("/agents/{agentId}/credentials"));
            then.status(200)
                .json_body(credential_with_secret_json(NEW_SECRET));
        })
        .await;
    let result = bounded(
        10,
        "generate",
        mock_client(&server.base_url())
            .credentials()
            .generate(agent_id())
            .send(),
    )
    .await;
    match result {
        Ok(credential) => assert_eq!(credential.client_secret.expose_secret(), NEW_SECRET),
        Err(e) => panic!(
            "generate answered 200 must succeed with the new secret; got a {:?} error \
             whose text contains the new clientSecret: {}; Display: {e}",
            e.kind(),
            error_leaks(&e, NEW_SECRET)
        ),
    }
}

/// 0.1 review, defect 6: a rotate whose first attempt timed out is not silently replayed.
#[tokio::test]
async fn rotate_that_timed_out_after_sending_is_an_unknown_outcome_not_a_replayed_secret() {
    let slow = Act::After(
        Duration::from_millis(800),
        Box::new(Act::json(
            200,
            credential_with_secret_json("sk_live_S1_FIRST_ATTEMPT"),
        )),
    );
    let fast = Act::json(200, credential_with_secret_json("sk_live_S2_REPLAY"));
    let server = Scripted::start(vec![("/rotate", vec![slow, fast])]).await;
    let client = scripted_static_builder(&server.base_url)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let result = bounded(
        10,
        "rotate",
        client
            .credentials()
            .rotate(agent_id(), credential_id())
            .send(),
    )
    .await;
    match result {
        Err(e) => assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}"),
        Ok(credential) => panic!(
            "rotate must fail with OutcomeUnknown after a timed-out attempt; it returned Ok \
             with secret {:?} after {} rotate requests (the first attempt may still apply, \
             making that secret dead)",
            credential.client_secret.expose_secret(),
            server.count("/rotate")
        ),
    }
}

fn conflict(code: &str) -> Act {
    Act::json(409, json!({"code": code, "message": "already"}))
}

fn rate_limited() -> Act {
    Act::Respond(
        429,
        vec![("retry-after", "0".into())],
        r#"{"code":"RATE_LIMIT_EXCEEDED","message":"slow down"}"#.into(),
    )
}

fn token_expired() -> Act {
    Act::json(
        401,
        json!({"code": "UNAUTHORIZED", "message": "Token expired."}),
    )
}

fn assert_conflict(result: sentryagent_idp::Result<()>, code: &str, requests: usize) {
    match result {
        Ok(()) => panic!(
            "a 409 {code} after a first attempt that provably did nothing must be an Err \
             (Conflict); got Ok(()) after {requests} requests"
        ),
        Err(e) => assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Conflict, Some(code)),
            "{e:?}"
        ),
    }
}

/// 0.1 review, defect 9: 429 then 409 on decommission is a Conflict, not done.
#[tokio::test]
async fn decommission_429_then_409_already_is_a_conflict() {
    let server = Scripted::start(vec![(
        AGENT_PATH,
        vec![rate_limited(), conflict("AGENT_ALREADY_DECOMMISSIONED")],
    )])
    .await;
    let client = scripted_static_builder(&server.base_url).build().unwrap();
    let result = bounded(
        10,
        "decommission",
        client.agents().decommission(agent_id()).send(),
    )
    .await;
    assert_conflict(
        result,
        "AGENT_ALREADY_DECOMMISSIONED",
        server.count(AGENT_PATH),
    );
}

/// 0.1 review, defect 9: 401 (refresh, replay) then 409 on decommission is a Conflict, not done.
#[tokio::test]
async fn decommission_401_then_409_already_is_a_conflict() {
    let server = Scripted::start(vec![
        (
            "/token",
            vec![token_act("tok-1", 3600), token_act("tok-2", 3600)],
        ),
        (
            AGENT_PATH,
            vec![token_expired(), conflict("AGENT_ALREADY_DECOMMISSIONED")],
        ),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    let result = bounded(
        10,
        "decommission",
        client.agents().decommission(agent_id()).send(),
    )
    .await;
    assert_conflict(
        result,
        "AGENT_ALREADY_DECOMMISSIONED",
        server.count(AGENT_PATH),
    );
}

/// 0.1 review, defect 9: 429 then 409 on revoke credential is a Conflict, not done.
#[tokio::test]
async fn revoke_credential_429_then_409_already_is_a_conflict() {
    let server = Scripted::start(vec![(
        CREDENTIAL_PATH,
        vec![rate_limited(), conflict("CREDENTIAL_ALREADY_REVOKED")],
    )])
    .await;
    let client = scripted_static_builder(&server.base_url).build().unwrap();
    let result = bounded(
        10,
        "revoke",
        client
            .credentials()
            .revoke(agent_id(), credential_id())
            .send(),
    )
    .await;
    assert_conflict(
        result,
        "CREDENTIAL_ALREADY_REVOKED",
        server.count(CREDENTIAL_PATH),
    );
}

/// 0.1 review, defect 9: 401 (refresh, replay) then 409 on revoke credential is a Conflict, not done.
#[tokio::test]
async fn revoke_credential_401_then_409_already_is_a_conflict() {
    let server = Scripted::start(vec![
        (
            "/token",
            vec![token_act("tok-1", 3600), token_act("tok-2", 3600)],
        ),
        (
            CREDENTIAL_PATH,
            vec![token_expired(), conflict("CREDENTIAL_ALREADY_REVOKED")],
        ),
    ])
    .await;
    let client = scripted_credentials_builder(&server.base_url)
        .build()
        .unwrap();
    let result = bounded(
        10,
        "revoke",
        client
            .credentials()
            .revoke(agent_id(), credential_id())
            .send(),
    )
    .await;
    assert_conflict(
        result,
        "CREDENTIAL_ALREADY_REVOKED",
        server.count(CREDENTIAL_PATH),
    );
}

/// 0.1 review, item 15(a): an unknown outcome is not retryable, so generic retry loops do not repeat the write.
/// (In 0.1 `is_transient()` answered `true` for one that carries a 502/503/504.)
#[tokio::test]
async fn an_outcome_unknown_error_is_not_retryable() {
    let mut transient = Vec::new();
    for status in [502u16, 503, 504] {
        let server = Scripted::start(vec![(
            "/agents",
            vec![Act::Respond(status, vec![], "gateway trouble".into())],
        )])
        .await;
        let client = scripted_static_builder(&server.base_url).build().unwrap();
        let err = bounded(
            10,
            "register",
            register_request(&client, "screener-001@myproject.ai").send(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{err:?}");
        assert_eq!(server.count("/agents"), 1, "register must not be replayed");
        if err.is_retryable() {
            transient.push(format!("{status}: {err:?}"));
        }
    }
    assert!(
        transient.is_empty(),
        "an OutcomeUnknown error must not be retryable (retrying may duplicate the write); \
         is_retryable() = true for: {transient:#?}"
    );
}

/// Issue 23, item 21: a write that may not be replayed, answered with any
/// 5xx (500 included), may have been applied: the reported kind says so
/// (`OutcomeUnknown`, with the status kept), as the retry rules already do.
#[tokio::test]
async fn an_unsent_only_write_answered_500_is_an_unknown_outcome_with_its_status() {
    let server_error = || {
        Act::json(
            500,
            json!({"code": "INTERNAL_SERVER_ERROR", "message": "boom"}),
        )
    };
    let server = Scripted::start(vec![
        ("/rotate", vec![server_error()]),
        ("/credentials", vec![server_error()]),
        ("/agents", vec![server_error()]),
    ])
    .await;
    let client = scripted_static_builder(&server.base_url).build().unwrap();
    let credentials = client.credentials();
    let results = [
        (
            "register",
            bounded(
                10,
                "register",
                register_request(&client, "screener-500@myproject.ai").send(),
            )
            .await
            .map(drop),
        ),
        (
            "generate",
            bounded(10, "generate", credentials.generate(agent_id()).send())
                .await
                .map(drop),
        ),
        (
            "rotate",
            bounded(
                10,
                "rotate",
                credentials.rotate(agent_id(), credential_id()).send(),
            )
            .await
            .map(drop),
        ),
    ];
    for (write, result) in results {
        let e = result.expect_err(write);
        assert_eq!(
            (e.kind(), e.status().map(|s| s.as_u16()), e.is_retryable()),
            (ErrorKind::OutcomeUnknown, Some(500), false),
            "{write} answered 500 may have been applied: {e:?}"
        );
    }
    for path in ["/agents", "/credentials", "/rotate"] {
        assert_eq!(server.count(path), 1, "{path} must not be replayed");
    }
}

/// Issue 23, item 13: decommissioning by PATCH and by DELETE reach the same
/// end state, so a lost answer (the work done, the answer never sent) is
/// reported the same way for both: done.
#[tokio::test]
async fn a_lost_answer_to_a_decommission_is_done_by_patch_as_by_delete() {
    use sentryagent_idp::Operation;
    use sentryagent_idp::model::AgentStatus;
    use sentryagent_idp::testing::{AgentSeed, Failure, FakeAgentIdp};

    let fake = FakeAgentIdp::start().await.unwrap();
    let client = fake.client_builder().build().unwrap();
    let by_delete = fake.seed_agent(AgentSeed::new());
    let by_patch = fake.seed_agent(AgentSeed::new());
    fake.fail_next(Operation::DecommissionAgent, Failure::DropAnswer, 1);
    fake.fail_next(Operation::UpdateAgent, Failure::DropAnswer, 1);
    let deleted = bounded(
        10,
        "decommission",
        client.agents().decommission(by_delete).send(),
    )
    .await;
    let patched = bounded(
        10,
        "update",
        client
            .agents()
            .update(by_patch)
            .status(AgentStatus::Decommissioned)
            .send(),
    )
    .await;
    for id in [by_delete, by_patch] {
        let agent = client.agents().get(id).send().await.unwrap();
        assert_eq!(agent.status, AgentStatus::Decommissioned);
    }
    assert!(deleted.is_ok(), "{deleted:?}");
    match patched {
        Ok(agent) => assert_eq!(agent.status, AgentStatus::Decommissioned),
        Err(e) => panic!(
            "update().status(Decommissioned) whose answer was lost decommissioned the agent, \
             as decommission() does, which reports Ok; it must report the same, got {:?} {:?}: {e}",
            e.kind(),
            e.code()
        ),
    }
}

/// A loopback address whose TCP handshake hangs: a listener that never
/// accepts, its backlog (1) filled by connections held here, so the kernel
/// drops further SYNs. Bounded: at most 8 connections of 2 s each.
async fn hanging_handshake() -> (
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
    std::net::SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("cannot stage a hanging handshake: {e}"),
            // This one hangs: the backlog is full.
            Err(_) => return (listener, held, addr),
        }
    }
    panic!(
        "cannot stage a hanging handshake: the listener accepted 8 connections into a backlog of 1"
    );
}

/// Issue 23, item 14: an attempt or total timeout that fires while the TCP
/// handshake hangs sent nothing; the write is not reported as one that may
/// have been applied.
#[tokio::test]
async fn a_register_whose_connection_never_opened_is_not_an_unknown_outcome() {
    let (_listener, _held, addr) = hanging_handshake().await;
    let base = format!("http://{addr}");
    let timeouts = [
        (
            "attempt timeout",
            scripted_static_builder(&base).timeout(Duration::from_secs(1)),
        ),
        (
            "total timeout",
            scripted_static_builder(&base).total_timeout(Duration::from_secs(1)),
        ),
    ];
    for (which, builder) in timeouts {
        let client = builder
            .retry_policy(sentryagent_idp::RetryPolicy::disabled())
            .build()
            .unwrap();
        let e = bounded(
            10,
            "register",
            register_request(&client, "never-sent@myproject.ai").send(),
        )
        .await
        .unwrap_err();
        assert!(
            e.kind() != ErrorKind::OutcomeUnknown && e.is_retryable(),
            "the {which} fired during the TCP handshake: nothing reached the server, so the \
             register is safe to repeat; got {:?} (retryable: {}): {e}",
            e.kind(),
            e.is_retryable()
        );
    }
}

/// Issue 23, item 20: an update whose first attempt may still be in flight
/// is not replayed blindly: a slow first PATCH landing after a later update
/// would silently undo it.
#[tokio::test]
async fn an_update_that_timed_out_is_not_replayed_over_a_later_one() {
    use sentryagent_idp::Operation;
    use sentryagent_idp::model::AgentStatus;
    use sentryagent_idp::testing::{AgentSeed, Failure, FakeAgentIdp};

    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.seed_agent(AgentSeed::new().status("suspended"));
    let client = fake
        .client_builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    client.access_token().await.unwrap();
    // The first attempt is applied 3 s after it arrives, long after the
    // client's 1 s attempt timeout.
    fake.fail_next(
        Operation::UpdateAgent,
        Failure::FinishLate(Duration::from_secs(3)),
        1,
    );
    let reactivate = bounded(
        10,
        "update",
        client
            .agents()
            .update(agent)
            .status(AgentStatus::Active)
            .send(),
    )
    .await;
    match reactivate {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::OutcomeUnknown, "{e:?}");
            assert!(!e.is_retryable());
            assert_eq!(
                fake.requests_seen(Operation::UpdateAgent),
                1,
                "not replayed"
            );
        }
        Ok(_) => {
            // Told it worked, the caller moves on and suspends the agent.
            let suspended = bounded(
                10,
                "update",
                client
                    .agents()
                    .update(agent)
                    .status(AgentStatus::Suspended)
                    .send(),
            )
            .await
            .unwrap();
            assert_eq!(suspended.status, AgentStatus::Suspended);
            tokio::time::sleep(Duration::from_secs(4)).await;
            let now = client.agents().get(agent).send().await.unwrap().status;
            assert_eq!(
                now,
                AgentStatus::Suspended,
                "update(Active) timed out and was replayed (Ok), then the agent was suspended \
                 (Ok); the first, slow PATCH landed last and the agent is {now:?} again, silently \
                 ({} PATCH requests)",
                fake.requests_seen(Operation::UpdateAgent)
            );
        }
    }
}
