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
    cli.seed_owned(45, "fleet", "fleet", "cli.test");
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
    // Revoking twice: done already, as a second decommission (issue 26, item 16).
    let again = cli.run(&["credentials", "revoke", &agent_id, &credential_id, "--yes"]);
    assert_ok(&again, &["credentials revoke, again"]);
    assert!(
        text(&again.stderr).contains("was already revoked; nothing changed"),
        "{}",
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
    assert!(
        text(&unknown.stderr).contains("`sentryagent credentials list AGENT`"),
        "{}",
        text(&unknown.stderr)
    );

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
            "--no-verify",
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

/// Writes a `config.toml` default profile for the fake whose secret is in a
/// 0600 file of its own, and returns the secret file's path.
#[cfg(unix)]
fn profile_with_secret_file(cli: &Cli, config: &std::path::Path, mode: u32) -> std::path::PathBuf {
    let secret_file = cli.home.path().join("client.secret");
    cli_support::write_with_mode(&secret_file, &cli.secret(), 0o600);
    let body = format!(
        "[profiles.default]\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"{}\"\n",
        cli.fake.base_url(),
        cli.fake.client_id(),
        secret_file.display()
    );
    cli_support::write_with_mode(config, &body, mode);
    secret_file
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_others_can_write_is_refused_whatever_it_holds() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::start().await;
    let config = cli.config_file();
    // No secret in it, but it says where the secret goes.
    profile_with_secret_file(&cli, &config, 0o666);
    let out = cli.bare().args(["agents", "list"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains("too open") && stderr.contains(&format!("chmod go-w {}", config.display())),
        "{stderr}"
    );
    assert_eq!(
        cli.fake.requests_seen(Operation::IssueToken),
        0,
        "no secret was sent where the file says"
    );
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fixed = cli.bare().args(["agents", "list"]).output().unwrap();
    assert_ok(&fixed, &["agents list (config 0644, secret file 0600)"]);

    // The upstream file, world-writable, with the secret in the environment.
    std::fs::remove_file(&config).unwrap();
    let upstream = cli.home_dir().join(".sentryagent").join("config.json");
    let body = serde_json::json!({
        "apiUrl": cli.fake.base_url(),
        "clientId": cli.fake.client_id(),
    });
    cli_support::write_with_mode(&upstream, &body.to_string(), 0o666);
    let before = cli.fake.requests_seen(Operation::IssueToken);
    let out = cli
        .bare()
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", upstream.display())),
        "{stderr}"
    );
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), before);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_others_can_write_or_a_file_of_another_user_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let cli = Cli::start().await;
    let config = cli.config_file();
    let secret_file = profile_with_secret_file(&cli, &config, 0o600);
    let dir = config.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = cli.bare().args(["agents", "list"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", dir.display())),
        "the directory is named: {stderr}"
    );
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), 0);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_ok(
        &cli.bare().args(["agents", "list"]).output().unwrap(),
        &["agents list (directory 0700)"],
    );

    // A client secret file in a directory anyone can write (no sticky bit).
    let open_dir = cli.home.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let planted = open_dir.join("client.secret");
    cli_support::write_with_mode(&planted, &cli.secret(), 0o600);
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .args(["--client-secret-file", planted.to_str().unwrap()])
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("chmod go-w"),
        "{}",
        text(&out.stderr)
    );

    // A link is followed to where the file really is, and that is checked.
    let linked = open_dir.join("config.toml");
    std::fs::copy(&config, &linked).unwrap();
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink(&linked, &config).unwrap();
    let out = cli.bare().args(["agents", "list"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "chmod go-w {}",
            open_dir.canonicalize().unwrap().display()
        )),
        "the link's target directory is named: {stderr}"
    );
    // Not a regular file (a FIFO would block the reader): refused at once.
    std::fs::remove_file(&config).unwrap();
    let made = Command::new("mkfifo").arg(&config).status().unwrap();
    assert!(made.success());
    let out = cli.bare().args(["agents", "list"]).output().unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not a regular file"));
    std::fs::remove_file(&config).unwrap();
    profile_with_secret_file(&cli, &config, 0o600);

    // Another user's file: only root can make one here.
    if std::fs::metadata(&secret_file).unwrap().uid() == 0 {
        std::os::unix::fs::chown(&config, Some(65534), None).unwrap();
        let out = cli.bare().args(["agents", "list"]).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 2, "{stderr}");
        assert!(stderr.contains("another user (uid 65534)"), "{stderr}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_config_that_is_not_needed_is_not_read() {
    let cli = Cli::start().await;
    let upstream = cli.home_dir().join(".sentryagent").join("config.json");
    let body = serde_json::json!({
        "apiUrl": "http://127.0.0.1:9",
        "clientId": "someone-else",
        "clientSecret": "sk_live_not_this_one",
    });
    // Readable by others with a secret: refused were it used.
    cli_support::write_with_mode(&upstream, &body.to_string(), 0o644);
    let out = cli.run(&["agents", "list"]);
    assert_ok(&out, &["agents list (flags and env give every setting)"]);
    // Not even parsed.
    cli_support::write_with_mode(&upstream, "{ not json", 0o666);
    let out = cli.run(&["agents", "list"]);
    assert_ok(&out, &["agents list (an unparsable upstream file)"]);
    // Nor is the profile, when flags and variables give every setting
    // (the scopes included).
    cli_support::write_with_mode(&cli.config_file(), "not = [toml", 0o666);
    let out = cli.run(&["agents", "list", "--scope", "agents:read"]);
    assert_ok(
        &out,
        &["agents list (an unparsable config.toml, every setting given)"],
    );
    let out = cli.run(&["agents", "list"]);
    assert_eq!(code(&out), 2, "the profile may give scopes, so it is read");
    std::fs::remove_file(cli.config_file()).unwrap();
    // Used, it is checked.
    let used = cli
        .bare()
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&used), 2, "{}", text(&used.stderr));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exec_gives_the_child_the_token_and_not_the_secret() {
    let cli = Cli::start().await;
    let secret_file = cli.home.path().join("client.secret");
    cli_support::write_with_mode(&secret_file, &cli.secret(), 0o600);
    let out = cli
        .cmd()
        .env("AGENTIDP_CLIENT_SECRET_FILE", &secret_file)
        .args(["token", "exec", "--", "env"])
        .output()
        .unwrap();
    assert_ok(&out, &["token", "exec", "--", "env"]);
    let env = text(&out.stdout);
    let token = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    assert!(
        env.lines()
            .any(|l| l == format!("AGENTIDP_ACCESS_TOKEN={token}")),
        "the child has the token: {env}"
    );
    assert!(
        !env.contains("AGENTIDP_CLIENT_SECRET") && !env.contains(&cli.secret()),
        "the child has neither the secret nor its file: {env}"
    );
    assert!(
        env.contains("AGENTIDP_CLIENT_ID="),
        "the rest is passed: {env}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_stdin_leaves_the_rest_of_stdin_to_the_child() {
    let cli = Cli::start().await;
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .args(["token", "exec", "--client-secret-stdin", "--", "cat"])
        .write_stdin(format!("{}\nchild-data\n", cli.secret()))
        .output()
        .unwrap();
    assert_ok(
        &out,
        &["token", "exec", "--client-secret-stdin", "--", "cat"],
    );
    assert_eq!(text(&out.stdout), "child-data\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_to_a_missing_directory_generates_nothing() {
    let cli = Cli::start().await;
    let agent_id = cli.register("mistyped@cli.test");
    let old = cli.json(&["credentials", "generate", &agent_id]);
    let old_id = id(&old, "credentialId");
    let generated = cli.fake.requests_seen(Operation::GenerateCredential);
    let mistyped = cli
        .home
        .path()
        .join("mistyped")
        .join("dir")
        .join("new.secret");
    let out = cli.run(&[
        "credentials",
        "rollover",
        &agent_id,
        &old_id,
        "--grace",
        "0s",
        "--yes",
        "--secret-file",
        mistyped.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert_eq!(
        cli.fake.requests_seen(Operation::GenerateCredential),
        generated,
        "nothing was generated"
    );
    assert!(
        !mistyped.parent().unwrap().exists(),
        "no directory was made"
    );
    let listed = cli.json(&["credentials", "list", &agent_id]);
    let old_now = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credentialId"] == old_id.as_str())
        .unwrap();
    assert_eq!(old_now["status"], "active", "the old credential stays");
}

/// An OSC that sets the window title, then a clear-screen CSI.
const HOSTILE: &str = "ops\u{1b}]0;owned\u{7}\u{1b}[2J";

fn assert_no_raw_escapes(what: &str, output: &[u8]) {
    let output = text(output);
    assert!(
        !output.contains(['\u{1b}', '\u{7}', '\u{9b}']),
        "{what} printed raw control characters: {output:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_the_server_are_shown_escaped() {
    let cli = Cli::start().await;
    let agent_id = cli
        .fake
        .seed_agent(AgentSeed::new().email("hostile@cli.test").owner(HOSTILE))
        .to_string();
    for args in [
        &["agents", "get", &agent_id, "-o", "table"][..],
        &["agents", "list", "-o", "table"],
        &["agents", "list", "-o", "jsonl"],
        &["agents", "get", &agent_id, "-o", "json"],
    ] {
        let out = cli.run(args);
        assert_ok(&out, args);
        assert_no_raw_escapes(&args.join(" "), &out.stdout);
        if args.contains(&"table") {
            assert!(
                text(&out.stdout).contains(r"ops\u{1b}]0;owned\u{7}\u{1b}[2J"),
                "{args:?}: visible: {}",
                text(&out.stdout)
            );
        }
    }
    // JSON keeps the value itself.
    assert_eq!(cli.json(&["agents", "get", &agent_id])["owner"], HOSTILE);

    // An error quoting a server's text.
    let server = cli_support::scripted::Scripted::start(vec![
        (
            "/token",
            vec![cli_support::scripted::token_act(
                cli_support::fixtures::ACCESS_TOKEN,
                3600,
            )],
        ),
        (
            "/agents/7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60",
            vec![cli_support::scripted::Act::json(
                404,
                serde_json::json!({ "code": format!("GONE{HOSTILE}"), "message": HOSTILE }),
            )],
        ),
    ])
    .await;
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", &server.base_url)
        .env("AGENTIDP_CLIENT_ID", cli_support::fixtures::CLIENT_ID)
        .env(
            "AGENTIDP_CLIENT_SECRET",
            cli_support::fixtures::CLIENT_SECRET,
        )
        .args(["agents", "get", "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60"])
        .args(["--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert_no_raw_escapes("the error", &out.stderr);
    assert!(
        text(&out.stderr).contains(r"\u{1b}]0;owned"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_into_a_pipe_notes_an_outage_once_and_its_end_once() {
    let cli = Cli::start().await;
    let (agent_id, mut child) = follow_an_agent(&cli, "outage@cli.test");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = child.stderr.take().unwrap();
    let notes = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("agent.updated"), "{first}");
    // Three failed polls in a row (a 500 is not retried within a poll).
    let before = cli.fake.requests_seen(Operation::QueryAuditEvents);
    cli.fake
        .fail_next(Operation::QueryAuditEvents, Failure::Status(500), 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli.fake.requests_seen(Operation::QueryAuditEvents) < before + 4
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.reactivated"));
    let next = lines.next().unwrap().unwrap();
    assert!(next.contains("agent.reactivated"), "{next}");
    child.kill().unwrap();
    let _ = child.wait();
    let notes = notes.join().unwrap();
    let outage: Vec<_> = notes
        .iter()
        .filter(|l| l.contains("reconnecting"))
        .collect();
    let resumed: Vec<_> = notes.iter().filter(|l| l.contains("resumed")).collect();
    assert_eq!(outage.len(), 1, "one note for the outage: {notes:?}");
    assert_eq!(resumed.len(), 1, "one note for its end: {notes:?}");
    assert!(resumed[0].contains("after 3 failed polls"), "{notes:?}");
    assert_eq!(notes.len(), 2, "nothing else: {notes:?}");
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
        ("bash", "_clap_complete_sentryagent()"),
        ("zsh", "#compdef sentryagent"),
        (
            "fish",
            "complete --keep-order --exclusive --command sentryagent",
        ),
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
        // The script asks the binary itself (clap_complete's dynamic protocol),
        // which completes commands, flags and ids (see the tests below).
        assert!(
            script.contains(&format!("SENTRYAGENT_COMPLETE=\"{shell}\""))
                || script.contains(&format!("SENTRYAGENT_COMPLETE={shell}")),
            "{shell} asks sentryagent: {script}"
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

/// Issue 26, item 9: a listing that shows one page of more says so on
/// stderr, and `--envelope` keeps the server's total for scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_listing_says_so_on_stderr_and_the_envelope_keeps_the_total() {
    let cli = Cli::start().await;
    cli.seed_owned(24, "bulk", "bulk", "ops.example.com");
    let first = cli.run(&["agents", "list", "--owner", "bulk"]);
    assert_ok(&first, &["agents list --owner bulk"]);
    assert_eq!(text(&first.stdout).lines().count(), 20);
    assert_eq!(
        text(&first.stderr),
        "showing 20 of 24 agents (page 1 of 2); --page 2 for the next, --all for every page\n"
    );
    let last = cli.run(&[
        "agents", "list", "--owner", "bulk", "--page", "2", "-o", "json",
    ]);
    assert!(
        text(&last.stderr).contains("showing 4 of 24 agents (page 2 of 2); --all for every page"),
        "{}",
        text(&last.stderr)
    );
    // `-o json` stays a bare array; the whole listing says nothing.
    let bare: Value = serde_json::from_slice(&last.stdout).unwrap();
    assert_eq!(bare.as_array().map(Vec::len), Some(4));
    let all = cli.run(&["agents", "list", "--owner", "bulk", "--all"]);
    assert_eq!(text(&all.stdout).lines().count(), 24);
    assert_eq!(text(&all.stderr), "", "nothing left out, nothing said");

    let envelope = cli.run(&["agents", "list", "--owner", "bulk", "--envelope"]);
    assert_ok(&envelope, &["agents list --envelope"]);
    let page: Value = serde_json::from_slice(&envelope.stdout).unwrap();
    assert_eq!(
        (&page["total"], &page["page"], &page["limit"]),
        (&Value::from(24), &Value::from(1), &Value::from(20))
    );
    assert_spec("list_agents", 200, &page);
    let every = cli.json(&["agents", "list", "--owner", "bulk", "--all", "--envelope"]);
    assert_eq!(every["total"], 24);
    assert_eq!(every["data"].as_array().map(Vec::len), Some(24));
    let line = cli.run(&[
        "agents",
        "list",
        "--owner",
        "bulk",
        "--envelope",
        "-o",
        "jsonl",
    ]);
    let lines: Vec<&str> = std::str::from_utf8(&line.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1, "the envelope on one line: {lines:?}");
    assert_eq!(
        serde_json::from_str::<Value>(lines[0]).unwrap()["total"],
        24
    );

    let before = cli.fake.requests_seen(Operation::ListAgents);
    let refused = cli.run(&["agents", "list", "--envelope", "-o", "table"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused.stderr));
    assert_eq!(cli.fake.requests_seen(Operation::ListAgents), before);
}

/// Issue 26, item 13: in a pipe, a listing is its table's rows,
/// tab-separated, with no header, padding or colour: `| awk '{print $1}'`
/// prints ids. `--fields` picks fields in every format, `-q` prints ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_pipe_rows_are_tab_separated_and_the_first_field_is_the_id() {
    let cli = Cli::start().await;
    let ids = cli.seed_owned(3, "piped team", "piped", "cli.test");
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let out = cli.run(&["agents", "list", "--owner", "piped team"]);
    assert_ok(&out, &["agents list"]);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("AGENT ID") && !stdout.contains('\u{1b}'),
        "{stdout}"
    );
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 9, "every field, no padding: {line:?}");
        assert!(fields.iter().all(|f| f.trim() == *f), "{line:?}");
        assert_eq!(
            fields[5], "piped team",
            "a space inside a field stays: {line:?}"
        );
    }
    let awk = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" agents list --owner 'piped team' | awk '{print $1}'"#)
        .arg(cli_support::BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cli.home_dir())
        .env("XDG_CACHE_HOME", cli.home.path().join("cache"))
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .output()
        .unwrap();
    let firsts: Vec<String> = text(&awk.stdout).lines().map(str::to_owned).collect();
    assert_eq!(firsts, ids, "awk's first field is the id");

    let quiet = cli.run(&["agents", "list", "--owner", "piped team", "-q"]);
    assert_eq!(text(&quiet.stdout).lines().collect::<Vec<_>>(), ids);

    let picked = cli.run(&[
        "agents",
        "list",
        "--owner",
        "piped team",
        "--fields",
        "email,status",
    ]);
    assert_eq!(
        text(&picked.stdout).lines().next(),
        Some("piped-0@cli.test\tactive")
    );
    let json = cli.json(&[
        "agents",
        "list",
        "--owner",
        "piped team",
        "--fields",
        "agent_id,email",
    ]);
    assert_eq!(
        json[0],
        serde_json::json!({ "agentId": ids[0], "email": "piped-0@cli.test" })
    );
    let one = cli.run(&["agents", "get", &ids[1], "--fields", "email"]);
    assert_eq!(text(&one.stdout), "piped-1@cli.test\n");

    let wide = cli.run(&["agents", "list", "--owner", "piped team", "-o", "wide"]);
    let header = text(&wide.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    for column in [
        "AGENT ID",
        "EMAIL",
        "VERSION",
        "ENV",
        "CAPABILITIES",
        "CREATED",
    ] {
        assert!(header.contains(column), "{column} in {header:?}");
    }

    let before = cli.fake.requests_seen(Operation::ListAgents);
    let unknown = cli.run(&["agents", "list", "--fields", "emial"]);
    assert_eq!(code(&unknown), 2, "{}", text(&unknown.stderr));
    assert!(
        text(&unknown.stderr).contains("`emial`"),
        "{}",
        text(&unknown.stderr)
    );
    assert_eq!(
        cli.fake.requests_seen(Operation::ListAgents),
        before,
        "refused before anything was sent"
    );
}

/// Issue 26, item 16: `--since`/`--from` take an age (s, m, h, d) in `audit
/// list` and `audit tail`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_list_and_tail_take_a_relative_since() {
    let cli = Cli::start().await;
    let agent_id = cli.fake.seed_agent(AgentSeed::new().email("aged@cli.test"));
    let now = chrono::Utc::now();
    for (hours, action) in [(3, "agent.suspended"), (0, "agent.reactivated")] {
        cli.fake.seed_audit_event(
            AuditEventSeed::new(agent_id, action).timestamp(now - chrono::Duration::hours(hours)),
        );
    }
    let agent = agent_id.to_string();
    let actions = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let recent = cli.json(&["audit", "list", "--agent", &agent, "--since", "1h"]);
    assert_eq!(actions(&recent), ["agent.reactivated"]);
    let older = cli.json(&[
        "audit", "query", "--agent", &agent, "--from", "4h", "--to", "2h",
    ]);
    assert_eq!(actions(&older), ["agent.suspended"]);
    let tail = cli.run(&[
        "audit", "tail", "--agent", &agent, "--since", "2d", "-o", "jsonl",
    ]);
    let tailed: Vec<Value> = text(&tail.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        actions(&Value::Array(tailed)),
        ["agent.suspended", "agent.reactivated"]
    );
    let bad = cli.run(&["audit", "list", "--since", "1w"]);
    assert_eq!(code(&bad), 2, "{}", text(&bad.stderr));
}

/// Issue 26, item 16: `audit get` shows every field, `metadata` and
/// `userAgent` included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_get_shows_metadata_and_the_user_agent() {
    let cli = Cli::start().await;
    let agent_id = cli.fake.seed_agent(AgentSeed::new().email("meta@cli.test"));
    let event = cli.fake.seed_audit_event(
        AuditEventSeed::new(agent_id, "agent.updated")
            .metadata(serde_json::json!({ "fields": ["owner"] }))
            .user_agent("screener/2.1"),
    );
    let out = cli.run(&["audit", "get", &event.to_string(), "-o", "table"]);
    assert_ok(&out, &["audit get -o table"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("USER AGENT  screener/2.1")
            && shown.contains(r#"METADATA    {"fields":["owner"]}"#),
        "{shown}"
    );
}

/// Issue 26, item 16: Ctrl-C ends `audit tail --follow` with 130, as a
/// shell reports an interrupted command (it ended with 0).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_follow_with_130() {
    let cli = Cli::start().await;
    let (_, mut child) = follow_an_agent(&cli, "interrupted@cli.test");
    // Kept open: a closed pipe would end the follow by itself.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("agent.updated"), "{first}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("SIGINT did not end the follow");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status:?}");
}

/// Issue 26, item 16: a second `suspend` and a second `decommission` (and
/// `reactivate`, `credentials revoke`) behave alike: the end state holds, so
/// they succeed, say so on stderr, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_suspend_and_a_second_decommission_both_succeed_with_a_note() {
    let cli = Cli::start().await;
    let agent_id = cli.register("twice@cli.test");
    assert_ok(&cli.run(&["agents", "suspend", &agent_id]), &["suspend"]);
    let updates = cli.fake.requests_seen(Operation::UpdateAgent);
    let again = cli.run(&["agents", "suspend", &agent_id, "-o", "json"]);
    assert_ok(&again, &["suspend, again"]);
    assert!(
        text(&again.stderr).contains("was already suspended; nothing changed"),
        "{}",
        text(&again.stderr)
    );
    let shown: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(shown["status"], "suspended");
    assert_eq!(
        cli.fake.requests_seen(Operation::UpdateAgent),
        updates,
        "no PATCH"
    );

    assert_ok(
        &cli.run(&["agents", "decommission", &agent_id, "--yes"]),
        &["decommission"],
    );
    let again = cli.run(&["agents", "decommission", &agent_id, "--yes", "-o", "json"]);
    assert_ok(&again, &["decommission, again"]);
    assert!(
        text(&again.stderr).contains("was already decommissioned; nothing changed"),
        "{}",
        text(&again.stderr)
    );
    let shown: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(shown["decommissioned"], agent_id.as_str());
    // What the end state forbids is still a conflict.
    assert_eq!(code(&cli.run(&["agents", "reactivate", &agent_id])), 5);
}

/// Issue 26, item 16: an AWS-style `[default]` section is refused with the
/// table it should be, rather than passed over ("not configured").
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_style_default_section_is_refused_naming_profiles_default() {
    let cli = Cli::start().await;
    let body = format!(
        "[default]\nbase_url = \"{}\"\nclient_id = \"{}\"\n",
        cli.fake.base_url(),
        cli.fake.client_id()
    );
    cli_support::write_with_mode(&cli.config_file(), &body, 0o600);
    let out = cli
        .bare()
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .args(["agents", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`[default]`") && stderr.contains("`[profiles.default]`"),
        "{stderr}"
    );
}

/// Issue 26, item 16: Ctrl-C while a listing waits on the server clears the
/// spinner and ends with 130 (it died by the signal, with no exit code).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_a_waiting_listing_with_130() {
    let cli = Cli::start().await;
    // Warm the token cache, so that the listing is the request that waits.
    assert_ok(&cli.run(&["token", "get"]), &["token get"]);
    cli.fake.set_latency(Duration::from_secs(20));
    let mut child = cli.process(&["agents", "list", "--all"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cli.fake.requests_seen(Operation::ListAgents) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("SIGINT did not end the listing");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cli.fake.set_latency(Duration::ZERO);
    assert_eq!(status.code(), Some(130), "{status:?}");
}

// ---- Issue 26, items 10, 11, 12, 14, 15 ----

/// Item 10: `…/api/v1` as the base URL (the API reference's "local server
/// base") works; a base URL with no token endpoint says so and names the
/// flag; a connection error prints the URL it tried; plain http to another
/// host names the CLI flag, not the SDK method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_base_url_is_forgiven_its_api_v1_and_named_when_it_is_wrong() {
    let cli = Cli::start().await;
    let pasted = cli
        .cmd()
        .env(
            "AGENTIDP_BASE_URL",
            format!("{}/api/v1", cli.fake.base_url()),
        )
        .args(["agents", "list", "--no-token-cache", "-o", "json"])
        .output()
        .unwrap();
    assert_ok(&pasted, &["agents list with a base URL ending in /api/v1"]);

    let wrong = format!("{}/idp", cli.fake.base_url());
    let no_token_endpoint = cli
        .cmd()
        .env("AGENTIDP_BASE_URL", &wrong)
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    let stderr = text(&no_token_endpoint.stderr);
    assert_eq!(code(&no_token_endpoint), 2, "configuration: {stderr}");
    assert!(
        stderr.contains(&format!("no token endpoint at {wrong}/api/v1/token"))
            && stderr.contains("--base-url"),
        "{stderr}"
    );
    assert!(!stderr.contains("check the id"), "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = cli
        .cmd()
        .env("AGENTIDP_BASE_URL", &url)
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    let stderr = text(&unreachable.stderr);
    assert_eq!(code(&unreachable), 7, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach {url}/api/v1")),
        "{stderr}"
    );

    let plain = cli
        .cmd()
        .env("AGENTIDP_BASE_URL", "http://idp.example.com")
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    let stderr = text(&plain.stderr);
    assert_eq!(code(&plain), 2, "{stderr}");
    assert!(
        stderr.contains("--allow-insecure-http") && !stderr.contains("allow_insecure_http("),
        "{stderr}"
    );
}

/// Item 11: an email works wherever an agent id does, resolved through the
/// listing; none is "not found"; `agents list --email` finds one agent
/// among several pages. (Two emails differing in case, which the fake
/// refuses to hold, are tested in `agents::tests`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_names_an_agent_wherever_an_id_is_expected() {
    let cli = Cli::start().await;
    cli.seed_owned(24, "bulk", "bulk", "ops.example.com");
    let wanted = cli.fake.seed_agent(
        AgentSeed::new()
            .email("wanted@ops.example.com")
            .owner("bulk"),
    );
    let got = cli.json(&["agents", "get", "wanted@ops.example.com"]);
    assert_eq!(got["agentId"], wanted.to_string());

    let listed = cli.json(&["agents", "list", "--email", "wanted@ops.example.com"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["agentId"], wanted.to_string());

    let generated = cli.json(&["credentials", "generate", "wanted@ops.example.com"]);
    assert_eq!(generated["clientId"], wanted.to_string());
    let credentials = cli.json(&["credentials", "list", "WANTED@ops.example.com"]);
    assert_eq!(credentials.as_array().map(Vec::len), Some(1));

    let suspended = cli.json(&["agents", "suspend", "wanted@ops.example.com"]);
    assert_eq!(suspended["status"], "suspended");

    let missing = cli.run(&["agents", "get", "nobody@ops.example.com"]);
    let stderr = text(&missing.stderr);
    assert_eq!(code(&missing), 4, "{stderr}");
    assert!(
        stderr.contains("no agent has the email nobody@ops.example.com"),
        "{stderr}"
    );

    let neither = cli.run(&["agents", "get", "bulk-3"]);
    assert_eq!(code(&neither), 2);
    assert!(
        text(&neither.stderr).contains("neither an agent id (a UUID) nor an agent's email"),
        "{}",
        text(&neither.stderr)
    );
}

/// What the shell's completion asks for (clap_complete's fish protocol: one
/// `value<TAB>help` a line) with `words` on the line.
fn complete(command: &mut assert_cmd::Command, words: &[&str]) -> std::process::Output {
    command
        .env("SENTRYAGENT_COMPLETE", "fish")
        .arg("--")
        .arg("sentryagent")
        .args(words)
        .output()
        .unwrap()
}

/// Item 11: the shell completes agent ids (with their emails) and the
/// credential ids of the agent on the line, from the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_completes_agent_and_credential_ids_from_the_api() {
    let cli = Cli::start().await;
    let agent = cli
        .fake
        .seed_agent(AgentSeed::new().email("complete-me@cli.test"));
    let (credential, _) = cli.fake.seed_credential(agent);

    let out = complete(&mut cli.cmd(), &["agents", "get", ""]);
    assert_ok(&out, &["complete agents get"]);
    let offered = text(&out.stdout);
    assert!(
        offered.contains(&format!("{agent}\tcomplete-me@cli.test")),
        "{offered}"
    );
    assert!(offered.contains(&format!("complete-me@cli.test\t{agent}")));

    let out = complete(
        &mut cli.cmd(),
        &["credentials", "revoke", "complete-me@cli.test", ""],
    );
    let offered = text(&out.stdout);
    assert!(
        offered.contains(&format!("{credential}\tactive")),
        "{offered}"
    );

    // Subcommands still complete, with no request made.
    let out = complete(&mut cli.bare(), &["agents", "dec"]);
    assert!(
        text(&out.stdout).contains("decommission"),
        "{}",
        text(&out.stdout)
    );
}

/// Item 11: completing never prompts and never hangs: with no settings it
/// offers nothing at once; against a server that never answers it gives up
/// within its 2 s budget; silent on stderr either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_is_silent_and_bounded_when_the_api_cannot_answer() {
    let cli = Cli::start().await;
    // Only the flags (`--help`) are offered: no id, and nothing on stderr.
    let no_ids = |out: &std::process::Output| {
        let offered = text(&out.stdout);
        assert!(offered.lines().all(|l| l.starts_with('-')), "{offered}");
        assert_eq!(text(&out.stderr), "");
    };
    let out = complete(&mut cli.bare(), &["agents", "get", ""]);
    assert_ok(&out, &["complete with no settings"]);
    no_ids(&out);

    // Connections are taken (the backlog) but never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let out = complete(
        cli.cmd().env(
            "AGENTIDP_BASE_URL",
            format!("http://{}", silent.local_addr().unwrap()),
        ),
        &["agents", "get", ""],
    );
    let took = started.elapsed();
    assert_ok(&out, &["complete against a silent server"]);
    no_ids(&out);
    // The budget is 2 s; the margin is for a loaded machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(silent);
}

/// Item 12: each command's help has examples and no copy of the global
/// options, which `sentryagent help options` and the top-level help list;
/// `completions --help` says how to install the script in each shell.
#[test]
fn help_has_examples_and_shows_the_global_options_once() {
    let help = |args: &[&str]| {
        let out = assert_cmd::Command::new(cli_support::BIN)
            .env_clear()
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    for command in [
        &["agents", "get"][..],
        &["agents", "list"],
        &["credentials", "rollover"],
        &["token", "exec"],
        &["audit", "tail"],
        &["configure"],
        &["verify"],
    ] {
        let shown = help(&[command, &["--help"]].concat());
        assert!(
            shown.contains("Examples:\n  $ sentryagent "),
            "{command:?}: {shown}"
        );
        // Listed as an option, not mentioned in prose (`token exec` names
        // `--client-secret-stdin` in its description).
        let lists = |flag: &str| shown.lines().any(|l| l.trim_start().starts_with(flag));
        assert!(
            !lists("--client-secret-stdin") && !lists("--no-token-cache"),
            "{command:?} repeats the global options: {shown}"
        );
        assert!(
            shown.contains("sentryagent help options"),
            "{command:?}: {shown}"
        );
    }
    for place in [help(&["help", "options"]), help(&["--help"])] {
        for option in [
            "--profile",
            "--base-url",
            "--client-secret-file",
            "--scope",
            "--output",
            "--allow-insecure-http",
        ] {
            assert!(place.contains(option), "{option}: {place}");
        }
    }
    let completions = help(&["completions", "--help"]);
    for line in [
        "sentryagent completions bash > ~/.local/share/bash-completion/completions/sentryagent",
        "sentryagent completions zsh > \"${fpath[1]}/_sentryagent\"",
        "sentryagent completions fish > ~/.config/fish/completions/sentryagent.fish",
    ] {
        assert!(completions.contains(line), "{line}: {completions}");
    }
}

/// Item 14: `configure` tries a token request before saving: a wrong
/// secret is refused with exit 3 and nothing is written; `--no-verify`
/// saves untried; values from `AGENTIDP_*` variables are not written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_saves_only_what_works_and_never_the_environment() {
    let cli = Cli::start().await;
    let configure = |secret: &str, extra: &[&str]| {
        cli.bare()
            .args([
                "configure",
                "--base-url",
                &cli.fake.base_url(),
                "--client-id",
            ])
            .arg(cli.fake.client_id())
            .args(["--client-secret-stdin"])
            .args(extra)
            .write_stdin(format!("{secret}\n"))
            .output()
            .unwrap()
    };
    let wrong = configure("sk_live_wrong", &[]);
    let stderr = text(&wrong.stderr);
    assert_eq!(code(&wrong), 3, "{stderr}");
    assert!(stderr.contains("not saved"), "{stderr}");
    assert!(!cli.config_file().exists(), "a wrong secret was saved");

    assert_ok(
        &configure("sk_live_wrong", &["--no-verify"]),
        &["--no-verify"],
    );
    assert!(
        std::fs::read_to_string(cli.config_file())
            .unwrap()
            .contains("sk_live_wrong")
    );

    let right = configure(&cli.secret(), &[]);
    assert_ok(&right, &["configure with the right secret"]);
    assert!(
        text(&right.stderr).contains("token request"),
        "{}",
        text(&right.stderr)
    );

    // Re-running with only a new id: the URL and the secret are kept.
    let kept = cli
        .bare()
        .args(["configure", "--client-id"])
        .arg(cli.fake.client_id())
        .output()
        .unwrap();
    assert_ok(&kept, &["configure keeping the URL and secret"]);
    assert!(
        std::fs::read_to_string(cli.config_file())
            .unwrap()
            .contains(&cli.secret())
    );

    // Variables are not written into the profile.
    let from_env = cli
        .bare()
        .env("AGENTIDP_BASE_URL", "http://127.0.0.1:9")
        .env("AGENTIDP_CLIENT_SECRET", "sk_live_from_env")
        .args([
            "configure",
            "--profile",
            "other",
            "--client-id",
            "x",
            "--no-verify",
        ])
        .arg("--client-secret-stdin")
        .write_stdin("sk_live_typed\n")
        .output()
        .unwrap();
    assert_ok(&from_env, &["configure with variables set"]);
    let written = std::fs::read_to_string(cli.config_file()).unwrap();
    assert!(
        !written.contains("127.0.0.1:9") && !written.contains("sk_live_from_env"),
        "{written}"
    );
    assert!(
        text(&from_env.stderr).contains("AGENTIDP_BASE_URL is set"),
        "{}",
        text(&from_env.stderr)
    );
}

/// Item 14: `configure list` shows each setting and where it comes from
/// (flag, variable, profile), and never a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_list_says_where_each_setting_comes_from_and_hides_secrets() {
    let cli = Cli::start().await;
    let saved = cli
        .bare()
        .args([
            "configure",
            "--base-url",
            &cli.fake.base_url(),
            "--client-id",
        ])
        .arg(cli.fake.client_id())
        .arg("--client-secret-stdin")
        .write_stdin(format!("{}\n", cli.secret()))
        .output()
        .unwrap();
    assert_ok(&saved, &["configure"]);
    let out = cli
        .bare()
        .env("AGENTIDP_CLIENT_ID", "from-the-variable")
        .args(["--scope", "agents:read", "configure", "list"])
        .output()
        .unwrap();
    assert_ok(&out, &["configure list"]);
    let shown = text(&out.stdout);
    let row = |name: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row: {shown}"))
            .to_owned()
    };
    assert!(
        row("base_url").contains(&cli.fake.base_url())
            && row("base_url").contains("profile `default`"),
        "{shown}"
    );
    assert!(
        row("client_id").contains("from-the-variable")
            && row("client_id").contains("variable AGENTIDP_CLIENT_ID"),
        "{shown}"
    );
    assert!(row("scopes").contains("flag --scope"), "{shown}");
    assert!(row("client_secret").contains("(hidden)"), "{shown}");
    assert!(
        !shown.contains(&cli.secret()),
        "a secret was shown: {shown}"
    );
}

/// Item 15: errors speak in commands and flags: a missing scope names the
/// command and `--scope`, a 404 has no SDK operation name, and an unknown
/// outcome fits in a short line and says what to run next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_speak_in_commands_and_flags() {
    let cli = Cli::start().await;
    let scoped = cli.run(&[
        "--scope",
        "agents:read",
        "audit",
        "query",
        "--no-token-cache",
    ]);
    let stderr = text(&scoped.stderr);
    assert_eq!(code(&scoped), 3, "{stderr}");
    assert!(
        stderr.contains("`audit query` needs the scope `audit:read`")
            && stderr.contains("--scope audit:read"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("build a client") && !stderr.contains("query_audit_events"),
        "{stderr}"
    );

    let missing = cli.run(&["agents", "get", "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60"]);
    let stderr = text(&missing.stderr);
    assert!(stderr.starts_with("error: Agent not found"), "{stderr}");
    assert!(!stderr.contains("get_agent"), "{stderr}");

    cli.fake
        .fail_next(Operation::RegisterAgent, Failure::DropAnswer, 1);
    let unknown = cli.run(&[
        "agents",
        "register",
        "--email",
        "lost@cli.test",
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
    let stderr = text(&unknown.stderr);
    assert_eq!(code(&unknown), 8, "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("`agents register` may or may not have been applied") && first.len() < 160,
        "{first}"
    );
    assert!(
        stderr.contains("sentryagent agents list --email"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("list agents filtered by owner"),
        "{stderr}"
    );

    // A rollover that could not publish: refused before anything is
    // generated, in the flag's words, not the SDK's `Publish`.
    let agent_id = cli.register("words@cli.test");
    let old = cli.json(&["credentials", "generate", &agent_id]);
    let into_a_directory = cli.home.path().to_str().unwrap().to_owned();
    let stopped = cli.run(&[
        "credentials",
        "rollover",
        &agent_id,
        &id(&old, "credentialId"),
        "--grace",
        "0s",
        "--yes",
        "--secret-file",
        &into_a_directory,
    ]);
    let stderr = text(&stopped.stderr);
    assert_ne!(code(&stopped), 0, "{stderr}");
    assert!(
        stderr.contains("--secret-file")
            && stderr.contains("nothing was generated")
            && !stderr.contains("Publish"),
        "{stderr}"
    );

    let typo = "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60";
    let no_such = cli.run(&[
        "credentials",
        "rollover",
        &agent_id,
        typo,
        "--grace",
        "0s",
        "--yes",
    ]);
    let stderr = text(&no_such.stderr);
    assert_eq!(code(&no_such), 4, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "agent {agent_id} has no credential {typo}; nothing was generated"
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arabic_letter_mark_is_shown_escaped_like_the_other_bidi_marks() {
    // U+061C is a bidi control (as U+200E/U+200F are): it reorders what a
    // terminal shows after it.
    let cli = Cli::start().await;
    let owner = "ops\u{61c}\u{5d0}-1";
    let agent_id = cli
        .fake
        .seed_agent(AgentSeed::new().email("alm@cli.test").owner(owner))
        .to_string();
    for args in [
        &["agents", "get", &agent_id, "-o", "table"][..],
        &["agents", "get", &agent_id, "-o", "json"],
    ] {
        let out = cli.run(args);
        assert_ok(&out, args);
        assert!(
            !text(&out.stdout).contains('\u{61c}'),
            "{args:?} printed a raw U+061C: {:?}",
            text(&out.stdout)
        );
    }
    assert_eq!(cli.json(&["agents", "get", &agent_id])["owner"], owner);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_in_a_directory_others_can_write_is_refused() {
    // Whoever can write the directory holding the link can point it at
    // another of the user's private files (a private key), whose text
    // would then go to the token endpoint as the client secret.
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::start().await;
    let secret_file = cli.home.path().join("client.secret");
    cli_support::write_with_mode(&secret_file, &cli.secret(), 0o600);
    let open_dir = cli.home.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let link = open_dir.join("client.secret");
    std::os::unix::fs::symlink(&secret_file, &link).unwrap();
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .args(["--client-secret-file", link.to_str().unwrap()])
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 2, "the link's directory is checked: {stderr}");
    assert!(
        stderr.contains(&format!("chmod go-w {}", open_dir.display())),
        "{stderr}"
    );
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), 0);

    // The same for a config file reached through a directory link.
    let real_dir = cli.home.path().join("real-config");
    let config = real_dir.join("config.toml");
    profile_with_secret_file(&cli, &config, 0o600);
    let linked_dir = open_dir.join("config-dir");
    std::os::unix::fs::symlink(&real_dir, &linked_dir).unwrap();
    let out = cli
        .bare()
        .args(["--config", linked_dir.join("config.toml").to_str().unwrap()])
        .args(["agents", "list", "--no-token-cache"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert_eq!(cli.fake.requests_seen(Operation::IssueToken), 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_reads_the_secret_where_its_link_points_now() {
    // `ln -sfn v2 current` (or a Kubernetes secret volume's `..data` swap)
    // publishes a rotated secret: a long-running command must read it there,
    // not in the directory the link pointed to when it started.
    let cli = Cli::start().await;
    let dir = cli.home.path().join("secrets");
    cli_support::write_with_mode(&dir.join("v1").join("client.secret"), &cli.secret(), 0o600);
    std::os::unix::fs::symlink("v1", dir.join("current")).unwrap();
    let secret_path = dir.join("current").join("client.secret");

    let agent_id = cli
        .fake
        .seed_agent(AgentSeed::new().email("linked@cli.test"));
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.updated"));
    let agent = agent_id.to_string();
    let mut child = cli
        .process(&[
            "audit",
            "tail",
            "--follow",
            "--agent",
            &agent,
            "--interval",
            "50ms",
            "-o",
            "jsonl",
        ])
        .env_remove("AGENTIDP_CLIENT_SECRET")
        .args(["--no-token-cache", "--client-secret-file"])
        .arg(&secret_path)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.contains("agent.updated"), "{first}");

    // The bootstrap credential rotated; its new secret published by the link.
    let client_id = cli.fake.client_id().to_string();
    let listed = cli.json(&["credentials", "list", &client_id]);
    let credential = listed[0]["credentialId"].as_str().unwrap().to_owned();
    let rotated = cli.json(&["credentials", "rotate", &client_id, &credential, "--yes"]);
    let new_secret = rotated["clientSecret"].as_str().unwrap();
    cli_support::write_with_mode(&dir.join("v2").join("client.secret"), new_secret, 0o600);
    std::os::unix::fs::symlink("v2", dir.join("next")).unwrap();
    std::fs::rename(dir.join("next"), dir.join("current")).unwrap();

    // The follow needs a new token.
    let tokens = cli.fake.requests_seen(Operation::IssueToken);
    cli.fake
        .fail_next(Operation::QueryAuditEvents, Failure::Status(401), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli.fake.requests_seen(Operation::IssueToken) == tokens && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.reactivated"));
    let next = lines_rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let next = next.unwrap_or_else(|e| {
        panic!(
            "no event after the rotation ({e}): {}",
            text(&output.stderr)
        )
    });
    assert!(next.contains("agent.reactivated"), "{next}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_to_a_directory_it_cannot_write_generates_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let cli = Cli::start().await;
    let agent_id = cli.register("readonly@cli.test");
    let old = cli.json(&["credentials", "generate", &agent_id]);
    let old_id = id(&old, "credentialId");
    let generated = cli.fake.requests_seen(Operation::GenerateCredential);
    // A directory that exists and is safe, but that the tool cannot write
    // to: read-only for its owner; root ignores modes, so as root the tool
    // runs as nobody and the directory is root's.
    let root = rustix::process::geteuid().is_root();
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(cli.home.path(), open.clone()).unwrap();
    let dir = cli.home.path().join("published");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(
        &dir,
        std::fs::Permissions::from_mode(if root { 0o755 } else { 0o555 }),
    )
    .unwrap();
    let target = dir.join("new.secret");
    let mut command = std::process::Command::new(cli_support::BIN);
    command
        .env_clear()
        .env("HOME", cli.home_dir())
        .env("XDG_CONFIG_HOME", cli.home.path().join("config"))
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .args([
            "credentials",
            "rollover",
            &agent_id,
            &old_id,
            "--grace",
            "0s",
        ])
        .args(["--yes", "--no-token-cache", "--secret-file"])
        .arg(&target);
    if root {
        command.uid(65534).gid(65534);
    }
    let out = command.output().unwrap();
    let stderr = text(&out.stderr);
    std::fs::set_permissions(&dir, open).unwrap();
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(stderr.contains("nothing was generated"), "{stderr}");
    assert_eq!(
        cli.fake.requests_seen(Operation::GenerateCredential),
        generated,
        "nothing was generated: {stderr}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_that_does_not_exist_is_not_refused_for_its_directory() {
    // Nothing is read from a file that is not there, whoever could write
    // its directory (a home of mode 0775 is common).
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::start().await;
    std::fs::set_permissions(cli.home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = cli.run(&["agents", "list", "--no-token-cache"]);
    std::fs::set_permissions(cli.home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_ok(&out, &["agents list (no config file, its directory open)"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollover_over_another_users_file_in_a_sticky_directory_generates_nothing() {
    // In a sticky directory (`/tmp`) no one may replace another user's file:
    // one planted at the path (here by uid 65533) would make the publish
    // fail after the credential was generated. Only root can make one.
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let cli = Cli::start().await;
    let agent_id = cli.register("sticky@cli.test");
    let old = cli.json(&["credentials", "generate", &agent_id]);
    let old_id = id(&old, "credentialId");
    let generated = cli.fake.requests_seen(Operation::GenerateCredential);
    std::fs::set_permissions(cli.home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = cli.home.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = dir.join("new.secret");
    std::fs::write(&target, "planted").unwrap();
    std::os::unix::fs::chown(&target, Some(65533), Some(65533)).unwrap();
    let out = std::process::Command::new(cli_support::BIN)
        .env_clear()
        .env("HOME", cli.home_dir())
        .env("XDG_CONFIG_HOME", cli.home.path().join("config"))
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .args([
            "credentials",
            "rollover",
            &agent_id,
            &old_id,
            "--grace",
            "0s",
        ])
        .args(["--yes", "--no-token-cache", "--secret-file"])
        .arg(&target)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    std::fs::set_permissions(cli.home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(code(&out), 2, "{stderr}");
    assert!(stderr.contains("nothing was generated"), "{stderr}");
    assert_eq!(
        cli.fake.requests_seen(Operation::GenerateCredential),
        generated,
        "nothing was generated: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_whose_stderr_reader_went_away_goes_on_through_an_outage() {
    // stderr to a logger that exited: the outage note cannot be written,
    // and the follow must go on printing events, not panic (exit 101).
    let cli = Cli::start().await;
    let (agent_id, mut child) = follow_an_agent(&cli, "nolog@cli.test");
    drop(child.stderr.take());
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.contains("agent.updated"), "{first}");
    let before = cli.fake.requests_seen(Operation::QueryAuditEvents);
    cli.fake
        .fail_next(Operation::QueryAuditEvents, Failure::Status(500), 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli.fake.requests_seen(Operation::QueryAuditEvents) < before + 3
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cli.fake
        .seed_audit_event(AuditEventSeed::new(agent_id, "agent.reactivated"));
    let next = lines_rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let status = child.wait().unwrap();
    let next = next.unwrap_or_else(|e| panic!("the follow stopped ({e}): {status:?}"));
    assert!(next.contains("agent.reactivated"), "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_whose_stderr_reader_went_away_keeps_its_exit_code() {
    let cli = Cli::start().await;
    let mut child = cli
        .process(&["agents", "get", "7b0f6c3e-6f4c-4b8e-9d0a-1c2b3d4e5f60"])
        .spawn()
        .unwrap();
    // Closed before the answer comes (had the error been written first, the
    // pipe's buffer took it, and the code is the same).
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "not found, not a panic: {status:?}");
}

/// Review: a completion candidate is typed into the user's command line by
/// the shell (bash inserts it unquoted), so an agent email holding shell
/// syntax (backticks, `$`, `;`, `|`, all valid in an email's local part)
/// must never be offered: accepted and run, it would run the server's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_never_offers_server_text_holding_shell_syntax() {
    let cli = Cli::start().await;
    let hostile = "a`touch${HOME}/pwned`;b|c@cli.test";
    cli.fake.seed_agent(AgentSeed::new().email(hostile));
    let plain = cli
        .fake
        .seed_agent(AgentSeed::new().email("plain@cli.test"));

    let out = complete(&mut cli.cmd(), &["agents", "get", ""]);
    let offered = text(&out.stdout);
    assert!(
        offered.contains(&format!("{plain}\tplain@cli.test")),
        "{offered}"
    );
    for line in offered.lines() {
        let value = line.split('\t').next().unwrap_or_default();
        assert!(
            !value.contains(['`', '$', ';', '|']),
            "a candidate with shell syntax was offered: {line:?}"
        );
    }
}

/// Review: `configure list` shows the base URL, and a URL's user info is a
/// password: it must never be printed (the SDK refuses such a URL without
/// echoing it; `configure list` printed it whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_list_never_shows_a_password_in_the_base_url() {
    let cli = Cli::start().await;
    let out = cli
        .bare()
        .env("AGENTIDP_BASE_URL", "https://ops:hunter2@idp.example/")
        .args(["configure", "list"])
        .output()
        .unwrap();
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!shown.contains("hunter2"), "a password was shown: {shown}");
    assert!(shown.contains("idp.example"), "{shown}");
}

/// Review: `--fields email,email` printed the email once and an empty cell
/// after it (the first pick took the cell away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_named_twice_shows_its_value_twice() {
    let cli = Cli::start().await;
    cli.fake.seed_agent(
        AgentSeed::new()
            .email("twice@cli.test")
            .owner("twice-owner"),
    );
    let out = cli.run(&[
        "agents",
        "list",
        "--owner",
        "twice-owner",
        "-o",
        "tsv",
        "--fields",
        "email,email",
    ]);
    assert_ok(&out, &["agents list --fields email,email"]);
    assert_eq!(
        text(&out.stdout).trim_end(),
        "twice@cli.test\ttwice@cli.test"
    );
}

/// Review: `--fields` a new credential does not have was refused only when
/// printing it, after the server had generated it (or rotated the old
/// secret away): the new secret was never shown, the agent locked out.
/// It is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_on_generate_or_rotate_are_refused_before_any_write() {
    let cli = Cli::start().await;
    let agent = cli.fake.seed_agent(AgentSeed::new());
    let (credential, _) = cli.fake.seed_credential(agent);
    let (agent, credential) = (agent.to_string(), credential.to_string());

    let generate = cli.run(&["credentials", "generate", &agent, "--fields", "nope"]);
    let rotate = cli.run(&[
        "credentials",
        "rotate",
        &agent,
        &credential,
        "--yes",
        "--fields",
        "nope",
    ]);
    assert_eq!(
        (
            cli.fake.requests_seen(Operation::GenerateCredential),
            cli.fake.requests_seen(Operation::RotateCredential)
        ),
        (0, 0),
        "a write was sent: generate {:?}, rotate {:?}",
        text(&generate.stderr),
        text(&rotate.stderr)
    );
    for out in [&generate, &rotate] {
        assert_eq!(code(out), 2, "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("`nope`"),
            "{}",
            text(&out.stderr)
        );
    }
    // A field the new credential has is still taken.
    let out = cli.run(&[
        "credentials",
        "generate",
        &agent,
        "--fields",
        "clientSecret",
        "-o",
        "tsv",
    ]);
    assert_ok(&out, &["credentials generate --fields clientSecret"]);
    assert!(!text(&out.stdout).trim().is_empty());
}

/// Review: `-q` (ids only) on `credentials generate` / `rotate` printed the
/// new credential's id and dropped its secret, after the write: a
/// credential nobody holds the secret of (and, for rotate, the old secret
/// gone). It is refused before anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_only_is_refused_where_the_output_is_a_new_secret() {
    let cli = Cli::start().await;
    let agent = cli.fake.seed_agent(AgentSeed::new());
    let (credential, _) = cli.fake.seed_credential(agent);
    let (agent, credential) = (agent.to_string(), credential.to_string());

    let generate = cli.run(&["-q", "credentials", "generate", &agent]);
    let rotate = cli.run(&["credentials", "rotate", &agent, &credential, "--yes", "-q"]);
    assert_eq!(
        (
            cli.fake.requests_seen(Operation::GenerateCredential),
            cli.fake.requests_seen(Operation::RotateCredential)
        ),
        (0, 0),
        "a secret was made and not shown: generate {:?}, rotate {:?}",
        text(&generate.stdout),
        text(&rotate.stdout)
    );
    for out in [&generate, &rotate] {
        assert_eq!(code(out), 2, "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("-q"), "{}", text(&out.stderr));
    }
}

/// Review: an unknown `--fields` on `token introspect` / `verify` was
/// refused only when printing, after the introspection was sent, and with
/// exit 1 instead of the usage code 2 the README gives bad flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_on_introspect_and_verify_are_usage_errors_before_any_request() {
    let cli = Cli::start().await;
    let token = text(&cli.run(&["token", "get"]).stdout).trim().to_owned();
    let before = cli.fake.requests_seen(Operation::IntrospectToken);
    let introspect = cli.run(&["token", "introspect", &token, "--fields", "nope"]);
    let verify = cli.run(&["verify", &token, "--fields", "nope"]);
    for out in [&introspect, &verify] {
        assert_eq!(code(out), 2, "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("`nope`"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(cli.fake.requests_seen(Operation::IntrospectToken), before);
    // A field they have is still taken.
    let out = cli.run(&[
        "token",
        "introspect",
        &token,
        "--fields",
        "active",
        "-o",
        "tsv",
    ]);
    assert_ok(&out, &["token introspect --fields active"]);
    assert_eq!(text(&out.stdout).trim(), "true");
}

/// Review: an email is looked up "without regard to case", as the server
/// keeps emails unique, but only ASCII letters were folded: `ÜMLAUT@…`
/// found no agent registered as `ümlaut@…` (exit 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_in_another_case_is_found_beyond_ascii() {
    let cli = Cli::start().await;
    let agent = cli
        .fake
        .seed_agent(AgentSeed::new().email("ümlaut-ops@cli.test"));
    let out = cli.run(&["agents", "get", "ÜMLAUT-OPS@cli.test", "-q"]);
    assert_ok(&out, &["agents get ÜMLAUT-OPS@cli.test"]);
    assert_eq!(text(&out.stdout).trim(), agent.to_string());
}

/// Review: the refusal of an AWS-style `[default]` said "run `sentryagent
/// configure` to write one", and `configure` (and `configure list`) then
/// failed with the same refusal: a dead end. The refusal names the edit
/// that works, and nothing it suggests fails the same way.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_of_a_default_section_names_a_remedy_that_works() {
    let cli = Cli::start().await;
    let body = format!("[default]\nbase_url = \"{}\"\n", cli.fake.base_url());
    cli_support::write_with_mode(&cli.config_file(), &body, 0o600);
    let refused = cli.bare().args(["agents", "list"]).output().unwrap();
    let said = text(&refused.stderr);
    assert_eq!(code(&refused), 2, "{said}");
    if said.contains("sentryagent configure") {
        let configure = cli
            .bare()
            .args([
                "configure",
                "--no-verify",
                "--base-url",
                &cli.fake.base_url(),
            ])
            .args(["--client-id", &cli.fake.client_id().to_string()])
            .arg("--client-secret-stdin")
            .write_stdin(format!("{}\n", cli.secret()))
            .output()
            .unwrap();
        assert_ok(&configure, &["configure, as the refusal said: ", &said]);
    }
    assert!(said.contains("rename"), "{said}");
}

/// Review: a candidate's help (the agent's email beside its id) dropped
/// control characters but kept bidirectional overrides, so an email could
/// show in the shell's menu reordered as another agent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_help_shows_no_bidi_override_from_the_server() {
    let cli = Cli::start().await;
    let spoof = cli
        .fake
        .seed_agent(AgentSeed::new().email("moc.elpmaxe\u{202e}@ops.example"));
    let out = complete(&mut cli.cmd(), &["agents", "get", ""]);
    let offered = text(&out.stdout);
    assert!(offered.contains(&spoof.to_string()), "{offered}");
    assert!(
        !offered.contains(['\u{202e}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}']),
        "a bidi override reached the shell: {offered:?}"
    );
}

/// Review: `configure --client-secret-file s.secret` saved the path as
/// typed, relative, so every later command looked for it in whatever
/// directory it ran in (and failed elsewhere). The profile holds the file
/// the user named: its absolute path.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_saves_a_relative_secret_file_as_the_file_it_named() {
    let cli = Cli::start().await;
    let (here, elsewhere) = (
        cli.home_dir().join("here"),
        cli.home_dir().join("elsewhere"),
    );
    for dir in [&here, &elsewhere] {
        std::fs::create_dir_all(dir).unwrap();
        let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o700);
        std::fs::set_permissions(dir, private).unwrap();
    }
    cli_support::write_with_mode(&here.join("s.secret"), &cli.secret(), 0o600);
    let saved = cli
        .bare()
        .current_dir(&here)
        .args(["configure", "--base-url", &cli.fake.base_url()])
        .args(["--client-id", &cli.fake.client_id().to_string()])
        .args(["--client-secret-file", "s.secret"])
        .output()
        .unwrap();
    assert_ok(&saved, &["configure --client-secret-file s.secret"]);
    let out = cli
        .bare()
        .current_dir(&elsewhere)
        .args(["agents", "list", "-q"])
        .output()
        .unwrap();
    assert_ok(&out, &["agents list, run in another directory"]);
}
