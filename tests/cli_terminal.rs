//! The terminal experience of `sentryagent`, under a real pseudo-terminal:
//! tables with colours (and none with `NO_COLOR`), the spinner on long
//! listings, the confirmation prompt, and `configure` reading the secret
//! without echo.

mod cli_support;

use std::process::Command;
use std::time::Duration;

use cli_support::Cli;
use rexpect::session::{PtySession, spawn_command};
use sentryagent_idp::testing::AgentSeed;

/// How long one expectation may wait.
const EXPECT_MS: u64 = 20_000;

/// The binary with `args`, in the scratch home and with no settings.
fn in_home(cli: &Cli, args: &[&str]) -> Command {
    let mut command = Command::new(cli_support::BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("HOME", cli.home_dir())
        .env("XDG_CONFIG_HOME", cli.home.path().join("config"))
        .env("XDG_CACHE_HOME", cli.home.path().join("cache"))
        .args(args);
    command
}

/// The binary on a pseudo-terminal, configured for the fake.
fn terminal(cli: &Cli, args: &[&str], extra: &[(&str, &str)]) -> PtySession {
    let mut command = in_home(cli, args);
    command
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .envs(extra.iter().copied());
    spawn_command(command, Some(EXPECT_MS)).expect("the binary starts on a pty")
}

/// The exit status, as `Exited(pid, code)` prints.
fn exit_code(session: &mut PtySession) -> String {
    let _ = session.exp_eof();
    format!("{:?}", session.process().wait().expect("the exit status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_coloured_table_and_no_colour_with_no_color() {
    let cli = Cli::start().await;
    let mut session = terminal(&cli, &["agents", "list"], &[]);
    let shown = session.exp_eof().expect("the table");
    assert!(
        shown.contains("AGENT ID") && shown.contains("bootstrap@fake.agentidp.test"),
        "{shown:?}"
    );
    assert!(
        shown.contains("\u{1b}[32m") || shown.contains("\u{1b}[38;5;10m"),
        "the active status is green: {shown:?}"
    );

    let mut plain = terminal(&cli, &["agents", "list"], &[("NO_COLOR", "1")]);
    let shown = plain.exp_eof().expect("the table");
    assert!(shown.contains("AGENT ID"), "{shown:?}");
    // The spinner still erases its line; the table itself has no colour or weight.
    let table = shown
        .rsplit_once("\u{1b}[2K")
        .map_or(shown.as_str(), |(_, table)| table);
    assert!(
        table.contains("AGENT ID") && !table.contains('\u{1b}'),
        "no colour with NO_COLOR: {table:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_listing_shows_a_spinner_on_the_terminal() {
    let cli = Cli::start().await;
    cli.seed_owned(30, "slow", "slow", "cli.test");
    cli.fake.set_latency(Duration::from_millis(400));
    let mut session = terminal(
        &cli,
        &[
            "agents", "list", "--all", "--limit", "10", "--owner", "slow",
        ],
        &[],
    );
    session
        .exp_string("fetching agents")
        .expect("the spinner's message");
    let rest = session.exp_eof().expect("the table");
    let (spinning, table) = rest
        .rsplit_once("\u{1b}[2K")
        .expect("the spinner erased before the table");
    assert!(
        spinning.matches("fetching agents").count() >= 2,
        "the spinner ticked and counted: {spinning:?}"
    );
    assert!(
        table.contains("AGENT ID") && table.contains("slow-29@cli.test"),
        "the table after the spinner: {table:?}"
    );
    cli.fake.set_latency(Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destructive_command_asks_and_does_nothing_unless_told_yes() {
    let cli = Cli::start().await;
    let agent = cli
        .fake
        .seed_agent(AgentSeed::new().email("asked@cli.test"))
        .to_string();

    let mut declined = terminal(&cli, &["agents", "decommission", &agent], &[]);
    declined.exp_string("[y/N]").expect("the question");
    declined.send_line("n").unwrap();
    declined.exp_string("not confirmed").expect("the refusal");
    assert!(
        exit_code(&mut declined).ends_with(", 1)"),
        "declining exits 1"
    );
    assert_eq!(cli.json(&["agents", "get", &agent])["status"], "active");

    let mut confirmed = terminal(&cli, &["agents", "decommission", &agent], &[]);
    confirmed
        .exp_string("This cannot be undone. [y/N]")
        .expect("the question");
    confirmed.send_line("y").unwrap();
    confirmed
        .exp_string("decommissioned agent")
        .expect("the result");
    assert!(exit_code(&mut confirmed).ends_with(", 0)"));
    assert_eq!(
        cli.json(&["agents", "get", &agent])["status"],
        "decommissioned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_prompts_and_reads_the_secret_without_echo() {
    let cli = Cli::start().await;
    let mut session = spawn_command(in_home(&cli, &["configure"]), Some(EXPECT_MS)).unwrap();
    session
        .exp_string("API URL [http://localhost:3000]: ")
        .expect("the URL prompt");
    session.send_line(&cli.fake.base_url()).unwrap();
    session.exp_string("Client id: ").expect("the id prompt");
    session.send_line(&cli.fake.client_id()).unwrap();
    session
        .exp_string("Client secret (not shown): ")
        .expect("the secret prompt");
    session.send_line(&cli.secret()).unwrap();
    let rest = session.exp_string("saved to").expect("the result");
    assert!(
        !rest.contains(&cli.secret()),
        "the secret was echoed: {rest:?}"
    );
    assert!(exit_code(&mut session).ends_with(", 0)"));
    let out = cli
        .bare()
        .args(["agents", "list", "-o", "json"])
        .output()
        .unwrap();
    cli_support::assert_ok(&out, &["agents list (after configure on a terminal)"]);
}

/// The binary on a pseudo-terminal `columns` wide (set with `stty`, so the
/// tool reads it from the kernel as on a real terminal).
fn sized_terminal(cli: &Cli, columns: u16, args: &[&str], extra: &[(&str, &str)]) -> PtySession {
    let mut sized = Command::new("sh");
    sized
        .arg("-c")
        .arg(format!("stty cols {columns} rows 24 && exec \"$0\" \"$@\""))
        .arg(cli_support::BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("HOME", cli.home_dir())
        .env("XDG_CONFIG_HOME", cli.home.path().join("config"))
        .env("XDG_CACHE_HOME", cli.home.path().join("cache"))
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
        .env("AGENTIDP_CLIENT_SECRET", cli.secret())
        .envs(extra.iter().copied());
    spawn_command(sized, Some(EXPECT_MS)).expect("the binary starts on a pty")
}

/// The lines of what a terminal showed, without escape sequences and
/// without what the spinner drew before its last erase.
fn shown_lines(shown: &str) -> Vec<String> {
    // rexpect hands each byte over as a char: decode the UTF-8 (`…`) again.
    let bytes: Vec<u8> = shown.chars().map(|c| c as u32 as u8).collect();
    let shown = String::from_utf8_lossy(&bytes);
    let after_spinner = shown
        .rsplit_once("\u{1b}[2K")
        .map_or(&*shown, |(_, rest)| rest);
    let mut plain = String::new();
    let mut chars = after_spinner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a final letter.
            if chars.peek() == Some(&'[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\r', '\n'])
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Issue 26, item 13: a table fits the terminal (ids whole, the widest
/// columns cut with `…`); `-o wide` shows everything; `COLUMNS` overrides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_fits_an_80_column_terminal_and_wide_shows_everything() {
    let cli = Cli::start().await;
    let ids = cli.fake.seed_agents(3, |i| {
        AgentSeed::new()
            .email(format!(
                "a-rather-long-agent-name-{i}@operations.example.com"
            ))
            .owner("the-platform-reliability-team")
            .capabilities(["resume:read", "resume:write", "reports:read"])
    });
    let mut session = sized_terminal(&cli, 80, &["agents", "list"], &[]);
    let lines = shown_lines(&session.exp_eof().expect("the table"));
    assert!(lines.len() >= 5, "{lines:#?}");
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    assert!(lines[0].starts_with("AGENT ID"), "{lines:#?}");
    for id in &ids {
        assert!(
            lines.iter().any(|l| l.starts_with(&id.to_string())),
            "the id {id} whole: {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.contains('…')), "{lines:#?}");

    let mut wide = sized_terminal(&cli, 80, &["agents", "list", "-o", "wide"], &[]);
    let lines = shown_lines(&wide.exp_eof().expect("the wide table"));
    assert!(
        lines.iter().any(
            |l| l.contains("a-rather-long-agent-name-0@operations.example.com")
                && l.contains("resume:read,resume:write,reports:read")
        ),
        "{lines:#?}"
    );

    let mut narrow = sized_terminal(&cli, 200, &["agents", "list"], &[("COLUMNS", "60")]);
    let lines = shown_lines(&narrow.exp_eof().expect("the table"));
    assert!(lines.iter().all(|l| l.chars().count() <= 60), "{lines:#?}");
}

/// Issue 26, item 16: `audit tail` on a terminal starts with a header, and
/// Ctrl-C ends its follow with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_on_a_terminal_prints_a_header_and_ctrl_c_exits_130() {
    let cli = Cli::start().await;
    let mut session = sized_terminal(
        &cli,
        120,
        &["audit", "tail", "--follow", "--interval", "50ms"],
        &[],
    );
    session.exp_string("TIME").expect("the header");
    session.exp_string("ACTION").expect("the header");
    session
        .exp_string("token.issued")
        .expect("the tool's own token's event");
    session.send_control('c').unwrap();
    assert!(
        exit_code(&mut session).ends_with(", 130)"),
        "Ctrl-C exits 130"
    );
}

/// Issue 26 item 14: re-running `configure` offers the current values and
/// Enter keeps each, the secret included; the settings are tried with a
/// token request before they are saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configure_again_keeps_each_value_on_enter_and_tries_them_first() {
    let cli = Cli::start().await;
    let first = cli
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
    cli_support::assert_ok(&first, &["configure"]);

    let mut session = spawn_command(in_home(&cli, &["configure"]), Some(EXPECT_MS)).unwrap();
    session
        .exp_string(&format!("API URL [{}]: ", cli.fake.base_url()))
        .expect("the current URL offered");
    session.send_line("").unwrap();
    session
        .exp_string(&format!("Client id [{}]: ", cli.fake.client_id()))
        .expect("the current id offered");
    session.send_line("").unwrap();
    session
        .exp_string("Client secret (not shown; Enter keeps the current one): ")
        .expect("the secret prompt offers to keep it");
    session.send_line("").unwrap();
    let rest = session.exp_string("saved to").expect("the result");
    assert!(rest.contains("A token request to"), "tried first: {rest:?}");
    assert!(exit_code(&mut session).ends_with(", 0)"));
    let written = std::fs::read_to_string(cli.config_file()).unwrap();
    assert!(written.contains(&cli.secret()), "the secret was kept");
    let out = cli
        .bare()
        .args(["agents", "list", "-o", "json"])
        .output()
        .unwrap();
    cli_support::assert_ok(&out, &["agents list (after keeping every value)"]);
}

/// Issue 26 item 11: completing on a terminal with no secret configured
/// must not ask for one (the shell would hang): it offers nothing and ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_on_a_terminal_never_asks_for_a_secret() {
    let cli = Cli::start().await;
    let mut command = in_home(&cli, &["--", "sentryagent", "agents", "get", ""]);
    command
        .env("SENTRYAGENT_COMPLETE", "fish")
        .env("AGENTIDP_BASE_URL", cli.fake.base_url())
        .env("AGENTIDP_CLIENT_ID", cli.fake.client_id());
    let mut session = spawn_command(command, Some(EXPECT_MS)).unwrap();
    let shown = session.exp_eof().expect("it ends by itself");
    assert!(!shown.contains("secret"), "it asked: {shown:?}");
    assert!(exit_code(&mut session).ends_with(", 0)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_on_a_terminal_without_a_spinner_still_notes_an_outage() {
    // A terminal whose TERM is `dumb` (Emacs' shell, some CI ptys) or unset
    // draws no spinner: the outage must still be said, as plain lines.
    use sentryagent_idp::Operation;
    use sentryagent_idp::testing::{AuditEventSeed, Failure};
    for term in [Some("dumb"), None] {
        let cli = Cli::start().await;
        let agent_id = cli.fake.seed_agent(AgentSeed::new().email("dumb@cli.test"));
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
        let mut command = in_home(&cli, &args);
        command
            .env("AGENTIDP_BASE_URL", cli.fake.base_url())
            .env("AGENTIDP_CLIENT_ID", cli.fake.client_id())
            .env("AGENTIDP_CLIENT_SECRET", cli.secret());
        match term {
            Some(term) => command.env("TERM", term),
            None => command.env_remove("TERM"),
        };
        let mut session = spawn_command(command, Some(EXPECT_MS)).unwrap();
        session
            .exp_string("agent.updated")
            .expect("the first event");
        cli.fake
            .fail_next(Operation::QueryAuditEvents, Failure::Status(500), 1_000);
        session
            .exp_string("reconnecting")
            .unwrap_or_else(|e| panic!("TERM={term:?}: the outage is said: {e}"));
        let _ = session.process_mut().exit();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_error_quoting_an_argument_shows_its_escapes_on_a_terminal() {
    // A script passing on a value it read (`agents get "$id"`) must not let
    // that value drive the terminal through clap's "invalid value" message
    // (in a pipe clap strips escapes; on a terminal it writes them as they are).
    let cli = Cli::start().await;
    let hostile = "ops\u{1b}]0;owned\u{7}\u{1b}[2J";
    let mut session = terminal(&cli, &["agents", "get", hostile], &[]);
    let shown = session.exp_eof().expect("the error");
    assert!(
        !shown.contains("\u{1b}]0;") && !shown.contains('\u{7}') && !shown.contains("\u{1b}[2J"),
        "the argument's escapes reached the terminal: {shown:?}"
    );
    assert!(shown.contains(r"\u{1b}]0;owned"), "visible: {shown:?}");
    assert!(exit_code(&mut session).ends_with(", 2)"), "a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_error_quoting_a_variable_shows_its_escapes_on_a_terminal() {
    let cli = Cli::start().await;
    let hostile = "ops\u{1b}]0;owned\u{7}\u{1b}[2J";
    let mut session = terminal(&cli, &["agents", "list"], &[("AGENTIDP_OUTPUT", hostile)]);
    let shown = session.exp_eof().expect("the error");
    assert!(
        !shown.contains("\u{1b}]0;") && !shown.contains('\u{7}') && !shown.contains("\u{1b}[2J"),
        "the variable's escapes reached the terminal: {shown:?}"
    );
    assert!(shown.contains(r"\u{1b}]0;owned"), "visible: {shown:?}");
    assert!(exit_code(&mut session).ends_with(", 2)"), "a usage error");
}

/// Review: completing a credential id after an agent's email looks the
/// email up, and that look-up drew its spinner on the terminal the user is
/// typing on (and erased the line the shell had drawn). Completion draws
/// nothing: only the candidates go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_draws_no_spinner_over_the_line_being_typed() {
    let cli = Cli::start().await;
    let agent = cli
        .fake
        .seed_agent(AgentSeed::new().email("typing@cli.test"));
    let (credential, _) = cli.fake.seed_credential(agent);
    cli.fake.set_latency(Duration::from_millis(300));
    let mut session = terminal(
        &cli,
        &[
            "--",
            "sentryagent",
            "credentials",
            "revoke",
            "typing@cli.test",
            "",
        ],
        &[("SENTRYAGENT_COMPLETE", "fish")],
    );
    let shown = session.exp_eof().expect("the candidates");
    cli.fake.set_latency(Duration::ZERO);
    assert!(shown.contains(&credential.to_string()), "{shown:?}");
    assert!(
        !shown.contains("looking for") && !shown.contains('\u{1b}'),
        "completion drew on the terminal: {shown:?}"
    );
}
