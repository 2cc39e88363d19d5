//! The `sentryagent` binary, driven as a user would, against the fake
//! AgentIdP: every command's success path and main failures, exit codes,
//! JSON checked against the spec's schemas, tables as snapshots, the config
//! file, confirmations, secrets kept off stderr, and the token cache.
//! Needs `cli-fake`: one test runs `sentryagent fake` itself.

mod cli_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Cli, assert_ok, assert_spec, assert_spec_items, code, text};
use sentryagent_idp::Operation;
use sentryagent_idp::testing::{AgentSeed, AuditEventSeed, Failure, FakeAgentIdp};
use serde_json::Value;

fn id(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_command_works_and_prints_the_spec_shapes() {
    let cli = Cli::start().await;
    let agent = cli.json(&[
        "agents",
        "register",
        "--email",
        "screener@cli.test",
        "--type",
        "screener",
        "--version",
        "1.0.0",
        "--capability",
        "resume:read",
        "--capability",
        "resume:write",
        "--owner",
        "platform",
        "--env",
        "staging",
    ]);
    assert_spec("register_agent", 201, &agent);
    let agent_id = id(&agent, "agentId");

    let got = cli.json(&["agents", "get", &agent_id]);
    assert_spec("get_agent", 200, &got);
    assert_eq!(
        got["capabilities"],
        serde_json::json!(["resume:read", "resume:write"])
    );

    let listed = cli.json(&["agents", "list", "--owner", "platform"]);
    assert_spec_items("list_agents", &listed);
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "the owner filter: {listed}"
    );

    let updated = cli.json(&[
        "agents",
        "update",
        &agent_id,
        "--version",
        "1.1.0",
        "--env",
        "production",
    ]);
    assert_spec("update_agent", 200, &updated);
    assert_eq!(
        (
            updated["version"].as_str(),
            updated["deploymentEnv"].as_str()
        ),
        (Some("1.1.0"), Some("production"))
    );

    assert_eq!(
        cli.json(&["agents", "suspend", &agent_id])["status"],
        "suspended"
    );
    assert_eq!(
        cli.json(&["agents", "list", "--status", "suspended"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        cli.json(&["agents", "reactivate", &agent_id])["status"],
        "active"
    );

    let gone = cli.json(&["agents", "decommission", &agent_id, "--yes"]);
    assert_eq!(gone["decommissioned"], agent_id.as_str());
    assert_eq!(
        cli.json(&["agents", "get", &agent_id])["status"],
        "decommissioned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_all_walks_every_page_and_jsonl_prints_one_object_a_line() {
    let cli = Cli::start().await;
    cli.fake.seed_agents(45, |i| {
        AgentSeed::new()
            .email(format!("fleet-{i}@cli.test"))
            .owner("fleet")
    });
    let one_page = cli.json(&["agents", "list", "--owner", "fleet", "--limit", "20"]);
    assert_eq!(one_page.as_array().map(Vec::len), Some(20));
    let all = cli.json(&[
        "agents", "list", "--owner", "fleet", "--limit", "20", "--all",
    ]);
    assert_spec_items("list_agents", &all);
    assert_eq!(all.as_array().map(Vec::len), Some(45));
    let third = cli.json(&[
        "agents", "list", "--owner", "fleet", "--limit", "20", "--page", "3",
    ]);
    assert_eq!(third.as_array().map(Vec::len), Some(5));

    let out = cli.run(&[
        "agents", "list", "--owner", "fleet", "--all", "--output", "jsonl",
    ]);
    assert_ok(&out, &["agents", "list", "--output", "jsonl"]);
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 45);
    assert!(lines.iter().all(|l| l["owner"] == "fleet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_commands_print_the_secret_once_to_stdout_only() {
    let cli = Cli::start().await;
    let agent_id = cli.register("creds@cli.test");

    let out = cli
        .cmd()
        .args(["credentials", "generate", &agent_id, "-o", "json"])
        .output()
        .unwrap();
    assert_ok(&out, &["credentials", "generate"]);
    let generated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_spec("generate_credential", 201, &generated);
    let secret = id(&generated, "clientSecret");
    assert!(
        secret.starts_with("sk_live_"),
        "the real secret, not [REDACTED]: {secret}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("not shown again") && !stderr.contains(&secret),
        "{stderr}"
    );
    let credential_id = id(&generated, "credentialId");

    let listed = cli.json(&["credentials", "list", &agent_id]);
    assert_spec_items("list_credentials", &listed);
    assert!(
        !listed.to_string().contains(&secret),
        "a listing holds no secret"
    );

    let rotated = cli.json(&["credentials", "rotate", &agent_id, &credential_id, "--yes"]);
    assert_spec("rotate_credential", 200, &rotated);
    assert_ne!(id(&rotated, "clientSecret"), secret);

    let revoked = cli.json(&["credentials", "revoke", &agent_id, &credential_id, "--yes"]);
    assert_eq!(revoked["revoked"], credential_id.as_str());
    let again = cli.run(&["credentials", "revoke", &agent_id, &credential_id, "--yes"]);
    assert_eq!(
        code(&again),
        5,
        "revoking twice is a conflict: {}",
        text(&again.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_publishes_the_new_secret_to_a_file_then_revokes_the_old() {
    let cli = Cli::start().await;
    let agent_id = cli.register("roll@cli.test");
    let old = cli.json(&["credentials", "generate", &agent_id]);
    let old_id = id(&old, "credentialId");
    let published = cli.home.path().join("agent.secret");
    let summary = cli.json(&[
        "credentials",
        "rollover",
        &agent_id,
        &old_id,
        "--grace",
        "0s",
        "--yes",
        "--secret-file",
        published.to_str().unwrap(),
    ]);
    let new_id = id(&summary["rollover"], "newCredentialId");
    assert_eq!(summary["rollover"]["revokedCredentialId"], old_id.as_str());

    let secret = std::fs::read_to_string(&published).expect("the published secret");
    assert!(secret.starts_with("sk_live_") && secret != id(&old, "clientSecret"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&published).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the published secret is private");
    }
    let listed = cli.json(&["credentials", "list", &agent_id]);
    let status = |cid: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["credentialId"] == cid)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status(&old_id), Some("revoked".into()));
    assert_eq!(status(&new_id), Some("active".into()));

    // The published secret works: the agent gets a token with it.
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", &agent_id)
        .args([
            "--client-secret-file",
            published.to_str().unwrap(),
            "token",
            "get",
        ])
        .output()
        .unwrap();
    assert_ok(&out, &["token", "get", "--client-secret-file"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_commands_get_introspect_revoke_and_exec() {
    let cli = Cli::start().await;
    let out = cli.run(&["token", "get"]);
    assert_ok(&out, &["token", "get"]);
    let token = text(&out.stdout).trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "a bare JWT in a pipe: {token}");

    let introspected = cli
        .cmd()
        .args(["token", "introspect", "-o", "json"])
        .write_stdin(format!("{token}\n"))
        .output()
        .unwrap();
    assert_ok(&introspected, &["token", "introspect"]);
    let body: Value = serde_json::from_slice(&introspected.stdout).unwrap();
    assert_spec("introspect_token", 200, &body);
    assert_eq!(
        (body["active"].as_bool(), body["sub"].as_str()),
        (Some(true), Some(cli.fake.client_id().as_str()))
    );

    let json = cli.json(&["token", "get"]);
    assert_eq!(
        json["access_token"],
        token.as_str(),
        "the cached token, as JSON when asked"
    );
    assert_eq!(json["token_type"], "Bearer");

    // exec: the child sees the token and its status is passed on.
    let exec = cli.run(&[
        "token",
        "exec",
        "--",
        "sh",
        "-c",
        "test \"$AGENTIDP_ACCESS_TOKEN\" = \"$1\" && exit 7",
        "sh",
        &token,
    ]);
    assert_eq!(
        code(&exec),
        7,
        "the child's own status: {}",
        text(&exec.stderr)
    );
    let missing = cli.run(&["token", "exec", "--", "/nonexistent/command"]);
    assert_eq!(code(&missing), 2);

    // A token to revoke: one of another agent, so the caching client keeps its own.
    let agent_id = cli.register("revoked@cli.test");
    let generated = cli.json(&["credentials", "generate", &agent_id]);
    let other = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", &agent_id)
        .env("AGENTIDP_CLIENT_SECRET", id(&generated, "clientSecret"))
        .args(["token", "get", "--no-token-cache"])
        .output()
        .unwrap();
    let other = text(&other.stdout).trim().to_owned();
    let unasked = cli
        .cmd()
        .args(["token", "revoke"])
        .write_stdin(other.clone())
        .output()
        .unwrap();
    assert_eq!(code(&unasked), 2, "revoking needs --yes without a terminal");
    let revoked = cli
        .cmd()
        .args(["token", "revoke", "--yes", "-o", "json"])
        .write_stdin(other.clone())
        .output()
        .unwrap();
    assert_ok(&revoked, &["token", "revoke"]);
    let after = cli.json(&["token", "introspect", &other]);
    assert_eq!(after["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_whose_a_token_is_in_each_mode_and_refuses_a_bad_one() {
    let cli = Cli::with(FakeAgentIdp::builder().oidc(true).start().await.unwrap());
    let token = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    let pem = cli.home.path().join("agentidp.pem");
    std::fs::write(&pem, cli.fake.public_key_pem()).unwrap();
    for mode in [
        vec![],
        vec!["--public-key", pem.to_str().unwrap()],
        vec!["--jwks", &cli.fake.base_url()],
    ] {
        let mut args = vec!["verify", token.as_str()];
        args.extend(mode.iter().copied());
        let verified = cli.json(&args);
        assert_eq!(verified["active"], true, "{mode:?}");
        assert_eq!(verified["sub"], cli.fake.client_id().as_str(), "{mode:?}");
        assert!(
            verified["scope"].as_str().unwrap().contains("agents:read"),
            "{mode:?}: {verified}"
        );
        assert!(verified["exp"].as_i64().unwrap() > verified["iat"].as_i64().unwrap());
    }
    let forged = format!("{}.{}", &token[..token.rfind('.').unwrap()], "c2lnbmF0dXJl");
    let out = cli.run(&["verify", &forged, "-o", "json"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["active"],
        false
    );
    assert!(
        !text(&out.stderr).contains(&forged[..40]),
        "the token is not quoted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_query_get_and_tail_print_events() {
    let cli = Cli::start().await;
    let agent_id = cli.register("audited@cli.test");
    cli.json(&["agents", "suspend", &agent_id]);
    let events = cli.json(&["audit", "query", "--agent", &agent_id]);
    assert_spec_items("query_audit_events", &events);
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["agent.suspended", "agent.created"],
        "newest first"
    );
    let suspended = cli.json(&[
        "audit",
        "query",
        "--agent",
        &agent_id,
        "--action",
        "agent.suspended",
    ]);
    assert_eq!(suspended.as_array().map(Vec::len), Some(1));
    let event_id = id(&suspended[0], "eventId");
    let one = cli.json(&["audit", "get", &event_id]);
    assert_spec("get_audit_event", 200, &one);

    let tail = cli.run(&[
        "audit", "tail", "--agent", &agent_id, "-n", "5", "-o", "jsonl",
    ]);
    assert_ok(&tail, &["audit", "tail"]);
    let tailed: Vec<String> = text(&tail.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(tailed, ["agent.created", "agent.suspended"], "oldest first");

    let bad = cli.run(&["audit", "query", "--action", "agent.exploded"]);
    assert_eq!(
        code(&bad),
        2,
        "only the spec's actions: {}",
        text(&bad.stderr)
    );
}

/// An agent with one `agent.updated` event, and `audit tail --follow` of
/// its events running (JSON lines, polling every 50 ms).
fn follow_an_agent(cli: &Cli, email: &str) -> (sentryagent_idp::model::Uuid, std::process::Child) {
    let agent_id = cli.fake.seed_agent(AgentSeed::new().email(email));
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.updated"));
    let agent = agent_id.to_string();
    let args = [
        "audit",
        "tail",
        "--follow",
        "--agent",
        &agent,
        "--interval",
        "50ms",
        "-o",
        "jsonl",
    ];
    (agent_id, cli.process(&args).spawn().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_new_events_and_resumes_after_a_network_error() {
    let cli = Cli::start().await;
    let (agent_id, mut child) = follow_an_agent(&cli, "followed@cli.test");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_action = move || -> String {
        let line = lines
            .next()
            .expect("a line before the end")
            .expect("readable");
        serde_json::from_str::<Value>(&line).unwrap()["action"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(next_action(), "agent.updated", "the latest first");
    for _ in 0..3 {
        cli.fake
            .seed_audit_event(AuditEventSeed::new(agent_id, "agent.suspended"));
    }
    for _ in 0..3 {
        assert_eq!(next_action(), "agent.suspended");
    }
    // Two failed polls (a dropped connection, then a 503), then an event.
    cli.fake
        .fail_next(Operation::QueryAuditEvents, Failure::DropConnection, 1);
    cli.fake
        .fail_next(Operation::QueryAuditEvents, Failure::Status(503), 1);
    let before = cli.fake.requests_seen(Operation::QueryAuditEvents);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli.fake.requests_seen(Operation::QueryAuditEvents) < before + 2
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.reactivated"));
    assert_eq!(
        next_action(),
        "agent.reactivated",
        "resumed, with nothing repeated"
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_whose_reader_goes_away_ends_quietly() {
    let cli = Cli::start().await;
    let (_, mut child) = follow_an_agent(&cli, "piped@cli.test");
    // `| head -n 1`: one line read, then the pipe closed.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("agent.updated"), "{first}");
    // No new event comes to write: the closed pipe alone must end it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("the follow went on polling with no one to read it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "", "no error and no panic for a closed pipe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_to_a_closed_pipe_ends_quietly() {
    let cli = Cli::start().await;
    for args in [
        &["completions", "bash"][..],
        &["token", "get"],
        &["agents", "list"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = cli
            .process(args)
            .stdout(writer)
            .spawn()
            .unwrap()
            .wait_with_output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), "", "{args:?}: no error and no panic");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_error_class_and_errors_say_kind_status_and_hint() {
    let cli = Cli::start().await;
    let missing = cli.run(&["agents", "get", "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60"]);
    assert_eq!(code(&missing), 4);
    let stderr = text(&missing.stderr);
    for part in [
        "error:",
        "kind: not_found",
        "status: 404",
        "code: AGENT_NOT_FOUND",
        "hint:",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }

    let agent_id = cli.register("dup@cli.test");
    let dup = cli.run(&[
        "agents",
        "register",
        "--email",
        "dup@cli.test",
        "--type",
        "screener",
        "--version",
        "1.0.0",
        "--capability",
        "a:b",
        "--owner",
        "o",
        "--env",
        "production",
    ]);
    assert_eq!(code(&dup), 5, "{}", text(&dup.stderr));

    assert_eq!(code(&cli.run(&["agents", "get", "not-a-uuid"])), 2);
    assert_eq!(code(&cli.run(&["agents", "frobnicate"])), 2);
    let invalid = cli.run(&[
        "agents",
        "update",
        &agent_id,
        "--capability",
        "not a capability",
    ]);
    assert_eq!(
        code(&invalid),
        2,
        "refused before sending: {}",
        text(&invalid.stderr)
    );

    let refused = cli
        .cmd()
        .env("AGENTIDP_CLIENT_SECRET", "sk_live_wrong")
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&refused), 3, "{}", text(&refused.stderr));
    assert!(
        !text(&refused.stderr).contains("sk_live_wrong"),
        "the secret is in no error"
    );

    cli.fake.fail_next(
        Operation::ListAgents,
        Failure::RateLimited {
            retry_after: Duration::from_secs(30),
        },
        1,
    );
    let limited = cli.run(&["agents", "list"]);
    assert_eq!(code(&limited), 6, "{}", text(&limited.stderr));
    assert!(
        text(&limited.stderr).contains("30s"),
        "the wait is in the hint: {}",
        text(&limited.stderr)
    );

    cli.fake
        .fail_next(Operation::ListAgents, Failure::Status(500), 10);
    assert_eq!(code(&cli.run(&["agents", "list"])), 7);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = cli
        .cmd()
        .env("AGENTIDP_BASE_URL", url)
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&unreachable), 7, "{}", text(&unreachable.stderr));
    assert!(
        text(&unreachable.stderr).contains("sentryagent fake"),
        "the hint: {}",
        text(&unreachable.stderr)
    );

    cli.fake
        .fail_next(Operation::GenerateCredential, Failure::DropAnswer, 1);
    let unknown = cli.run(&["credentials", "generate", &agent_id]);
    assert_eq!(code(&unknown), 8, "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("look (list or get) before you run it again"));

    assert_ok(&cli.run(&["agents", "suspend", &agent_id]), &["suspend"]);
    let inactive = cli.run(&["credentials", "generate", &agent_id]);
    assert_eq!(code(&inactive), 3, "{}", text(&inactive.stderr));
    for part in ["status: 403", "code: AGENT_NOT_ACTIVE", "agents reactivate"] {
        assert!(
            text(&inactive.stderr).contains(part),
            "{part} in {}",
            text(&inactive.stderr)
        );
    }

    let unconfigured = cli.bare().args(["agents", "list"]).output().unwrap();
    assert_eq!(code(&unconfigured), 2);
    assert!(text(&unconfigured.stderr).contains("sentryagent configure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_commands_need_yes_without_a_terminal_and_change_nothing_unasked() {
    let cli = Cli::start().await;
    let agent_id = cli.register("keep@cli.test");
    let credential = cli.json(&["credentials", "generate", &agent_id]);
    let credential_id = id(&credential, "credentialId");
    for args in [
        vec!["agents", "decommission", agent_id.as_str()],
        vec![
            "credentials",
            "revoke",
            agent_id.as_str(),
            credential_id.as_str(),
        ],
        vec![
            "credentials",
            "rotate",
            agent_id.as_str(),
            credential_id.as_str(),
        ],
        vec![
            "credentials",
            "rollover",
            agent_id.as_str(),
            credential_id.as_str(),
        ],
    ] {
        let out = cli.run(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(
            text(&out.stderr).contains("pass --yes"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(cli.json(&["agents", "get", &agent_id])["status"], "active");
    let listed = cli.json(&["credentials", "list", &agent_id]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["status"], "active");
    assert_eq!(cli.fake.requests_seen(Operation::DecommissionAgent), 0);
    assert_eq!(cli.fake.requests_seen(Operation::RotateCredential), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_consecutive_commands_make_one_token_request() {
    let cli = Cli::start().await;
    for _ in 0..10 {
        assert_ok(&cli.run(&["agents", "list"]), &["agents", "list"]);
    }
    assert_eq!(cli.fake.requests_seen(Operation::ListAgents), 10);
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), 1);
    let cached = std::fs::read_dir(cli.home.path().join("cache"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        cached > 0,
        "the token store is under the user's cache directory"
    );
    // Nothing in the cache holds the token or the secret in clear.
    let token = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    for entry in walk(&cli.home.path().join("cache")) {
        let bytes = std::fs::read(&entry).unwrap();
        let body = String::from_utf8_lossy(&bytes);
        assert!(
            !body.contains(&token[..30]) && !body.contains(&cli.secret()),
            "{}",
            entry.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_revoking_its_own_cached_token_exec_and_get_use_a_new_one() {
    let cli = Cli::start().await;
    let revoked = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    let out = cli
        .cmd()
        .args(["token", "revoke", "--yes"])
        .write_stdin(format!("{revoked}\n"))
        .output()
        .unwrap();
    assert_ok(&out, &["token", "revoke"]);
    // The child gets a new token, not the revoked one from the cache.
    let exec = cli.run(&[
        "token",
        "exec",
        "--",
        "sh",
        "-c",
        "printf %s \"$AGENTIDP_ACCESS_TOKEN\"",
    ]);
    assert_ok(&exec, &["token", "exec"]);
    let handed = text(&exec.stdout);
    assert!(
        handed != revoked,
        "token exec handed the child the revoked token"
    );
    let got = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    assert!(got != revoked, "token get printed the revoked token");
    assert!(got == handed, "one new token, cached between commands");
    let introspected = cli.json(&["token", "introspect", &got]);
    assert_eq!(introspected["active"], true);
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), 2);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_writes_a_private_profile_that_later_commands_use() {
    let cli = Cli::start().await;
    let out = cli
        .bare()
        .args([
            "configure",
            "--base-url",
            &cli.fake.base_url(),
            "--client-id",
            &cli.fake.client_id(),
            "--client-secret-stdin",
        ])
        .write_stdin(format!("{}\n", cli.secret()))
        .output()
        .unwrap();
    assert_ok(&out, &["configure"]);
    assert!(!text(&out.stderr).contains(&cli.secret()));
    let file = cli.config_file();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(file.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("[profiles.default]"), "{written}");

    let listed = cli
        .bare()
        .args(["agents", "list", "-o", "json"])
        .output()
        .unwrap();
    assert_ok(&listed, &["agents", "list (configured)"]);

    // A second profile leaves the first alone; --profile picks it.
    let staging = cli
        .bare()
        .args([
            "configure",
            "--profile",
            "staging",
            "--base-url",
            "http://127.0.0.1:9",
            "--client-id",
            "x",
            "--client-secret-stdin",
        ])
        .write_stdin("sk_live_other\n")
        .output()
        .unwrap();
    assert_ok(&staging, &["configure --profile staging"]);
    assert_ok(
        &cli.bare().args(["agents", "list"]).output().unwrap(),
        &["agents list (default)"],
    );
    let other = cli
        .bare()
        .args(["--profile", "staging", "agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(
        code(&other),
        7,
        "the staging profile's unreachable server: {}",
        text(&other.stderr)
    );
    let nowhere = cli
        .bare()
        .args(["--profile", "prod", "agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&nowhere), 2);

    // Flags and variables beat the file.
    let flagged = cli
        .bare()
        .env("AGENTIDP_BASE_URL", "http://127.0.0.1:9")
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&flagged), 7, "the variable's URL was used");
    let flag = cli
        .bare()
        .env("AGENTIDP_BASE_URL", "http://127.0.0.1:9")
        .args([
            "--base-url",
            &cli.fake.base_url(),
            "agents",
            "list",
            "--no-token-cache",
        ])
        .output()
        .unwrap();
    assert_ok(&flag, &["--base-url over AGENTIDP_BASE_URL"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_file_others_can_read_is_refused() {
    let cli = Cli::start().await;
    let body = format!(
        "[profiles.default]\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
        cli.fake.base_url(),
        cli.fake.client_id(),
        cli.secret()
    );
    cli_support::write_with_mode(&cli.config_file(), &body, 0o644);
    let out = cli.bare().args(["agents", "list"]).output().unwrap();
    assert_eq!(code(&out), 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("too open") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains(&cli.secret()));
    assert_eq!(
        cli.fake.requests_seen(Operation::IssueToken),
        0,
        "nothing was sent"
    );

    let secret_file = cli.home.path().join("secret");
    cli_support::write_with_mode(&secret_file, &cli.secret(), 0o640);
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .args([
            "--client-secret-file",
            secret_file.to_str().unwrap(),
            "agents",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));

    cli_support::write_with_mode(&cli.config_file(), &body, 0o600);
    assert_ok(
        &cli.bare().args(["agents", "list"]).output().unwrap(),
        &["agents list (0600)"],
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_cli_config_is_read_as_it_is() {
    let cli = Cli::start().await;
    // What `sentryagent configure` of the Node CLI writes.
    let upstream = serde_json::json!({
        "apiUrl": cli.fake.base_url(),
        "clientId": cli.fake.client_id(),
        "clientSecret": cli.secret(),
    });
    let path = cli.home_dir().join(".sentryagent").join("config.json");
    cli_support::write_with_mode(
        &path,
        &serde_json::to_string_pretty(&upstream).unwrap(),
        0o600,
    );
    let out = cli
        .bare()
        .args(["agents", "list", "-o", "json"])
        .output()
        .unwrap();
    assert_ok(&out, &["agents list (upstream config)"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["agentId"], cli.fake.client_id().as_str());

    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let open = cli.bare().args(["agents", "list"]).output().unwrap();
    assert_eq!(code(&open), 2, "{}", text(&open.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_stderr_on_any_failure() {
    let cli = Cli::start().await;
    let secret = cli.secret();
    cli.fake
        .fail_next(Operation::IssueToken, Failure::Status(401), 1);
    cli.fake
        .fail_next(Operation::IssueToken, Failure::Status(500), 10);
    let runs = [
        cli.run(&["agents", "list"]),
        cli.run(&["agents", "list"]),
        cli.run(&["token", "get"]),
        cli.run(&["credentials", "generate", "not-a-uuid"]),
        cli.cmd()
            .args(["--client-secret-stdin", "agents", "list"])
            .write_stdin("\n")
            .output()
            .unwrap(),
    ];
    for out in &runs {
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains(&secret) && !stderr.contains(&secret[8..]),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_aligned_and_stable() {
    let cli = Cli::start().await;
    let created = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .to_utc();
    for (minutes, email, kind, status) in [
        (0, "alpha@cli.test", "screener", "active"),
        (1, "beta@cli.test", "router", "suspended"),
    ] {
        let at = created + chrono::Duration::minutes(minutes);
        cli.fake.seed_agent(
            AgentSeed::new()
                .email(email)
                .agent_type(kind)
                .owner("snapshots")
                .status(status)
                .created_at(at),
        );
    }
    let out = cli.run(&["agents", "list", "--owner", "snapshots", "-o", "table"]);
    assert_ok(&out, &["agents list -o table"]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[uuid]                              ",
    );
    settings.bind(|| insta::assert_snapshot!("agents_list_table", text(&out.stdout)));

    let agent_id = cli.register("gamma@cli.test");
    let out = cli.run(&["credentials", "generate", &agent_id, "-o", "table"]);
    settings.add_filter(r"sk_live_[0-9a-f]+", "[secret]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]");
    settings.bind(|| insta::assert_snapshot!("credentials_generate_table", text(&out.stdout)));

    // An empty listing: a sentence on stderr rather than a bare header, and
    // still `[]` for scripts.
    let none = ["agents", "list", "--owner", "nobody"];
    let out = cli.run(&[&none[..], &["-o", "table"]].concat());
    assert_ok(&out, &["agents list, none, -o table"]);
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "No agents found.\n");
    assert_eq!(cli.json(&none), serde_json::json!([]));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_sentryagent()"),
        ("zsh", "#compdef sentryagent"),
        ("fish", "complete -c sentryagent"),
    ] {
        let out = assert_cmd::Command::new(cli_support::BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains(marker),
            "{shell}: {}",
            &script[..script.len().min(200)]
        );
        assert!(
            script.contains("decommission"),
            "{shell} completes the commands"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_starts_a_server_and_prints_its_credentials() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(cli_support::BIN)
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .args(["fake", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut vars = Vec::new();
    for _ in 0..3 {
        let line = lines.next().unwrap().unwrap();
        let (name, value) = line
            .strip_prefix("export ")
            .and_then(|l| l.split_once('='))
            .expect("export NAME=value");
        vars.push((name.to_owned(), value.to_owned()));
    }
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "AGENTIDP_BASE_URL",
            "AGENTIDP_CLIENT_ID",
            "AGENTIDP_CLIENT_SECRET"
        ]
    );
    let out = assert_cmd::Command::new(cli_support::BIN)
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .envs(vars)
        .args(["agents", "list", "-o", "json"])
        .timeout(cli_support::COMMAND_TIMEOUT)
        .output()
        .unwrap();
    assert_ok(&out, &["agents list (against `sentryagent fake`)"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["email"], "bootstrap@fake.agentidp.test");
    child.kill().unwrap();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_scope_is_refused_before_the_wire_and_the_hint_names_it() {
    let cli = Cli::start().await;
    let reader = cli.fake.seed_agent(
        AgentSeed::new()
            .email("reader@cli.test")
            .scopes(["agents:read"]),
    );
    let (_, secret) = cli.fake.seed_credential(reader);
    let as_reader = |args: &[&str]| {
        cli.bare()
            .env("AGENTIDP_BASE_URL", cli.fake.base_url())
            .env("AGENTIDP_CLIENT_ID", reader.to_string())
            .env(
                "AGENTIDP_CLIENT_SECRET",
                sentryagent_idp::ExposeSecret::expose_secret(&secret),
            )
            .args(args)
            .output()
            .unwrap()
    };
    // The default asks for all four scopes, which this agent may not have.
    let refused = as_reader(&["agents", "list"]);
    assert_eq!(
        code(&refused),
        2,
        "invalid_scope: {}",
        text(&refused.stderr)
    );
    let reading = ["--scope", "agents:read"];
    assert_ok(
        &as_reader(&[&reading[..], &["agents", "list"]].concat()),
        &["--scope agents:read agents list"],
    );
    assert_eq!(
        code(&as_reader(&["--scope", "agents", "agents", "list"])),
        2,
        "not a scope"
    );
    let before = cli.fake.requests_seen(Operation::QueryAuditEvents);
    let out = as_reader(&[&reading[..], &["audit", "query"]].concat());
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("kind: missing_scope") && stderr.contains("`audit:read`"),
        "{stderr}"
    );
    assert_eq!(
        cli.fake.requests_seen(Operation::QueryAuditEvents),
        before,
        "nothing was sent"
    );
}
