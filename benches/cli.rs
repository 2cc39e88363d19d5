//! The command-line tool (`--report`; without it, a short run prints the
//! same report), against the in-process fake AgentIdP:
//!
//! - **agents_list**: wall time of `sentryagent agents list` with a warm
//!   token cache, from spawn to exit, vs the upstream Node CLI's shape
//!   (`xtask/bench/node_cli.mjs`: a token request and the listing, with
//!   `fetch`), interleaved runs, both reading the same upstream
//!   `~/.sentryagent/config.json`; and the token requests each made.
//!   For scale, in the same interleaving: the CLI without its token cache
//!   (`--no-token-cache`: the same two requests as the script) and Node
//!   starting and doing nothing (`node -e ""`).
//! - **binary**: the size of this build's `sentryagent` (the bench profile,
//!   that is release), as built and stripped.
//!
//! `--node PATH` names the Node.js to run (default `node`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{ExposeSecret, Operation};
use serde_json::json;

const RUNS: usize = 60;
/// One run taking longer fails the bench.
const RUN_LIMIT: Duration = Duration::from_secs(30);

fn main() {
    let quick = !support::report_mode();
    let runs = support::arg("--runs").unwrap_or(if quick { 10 } else { RUNS });
    let node = support::arg::<String>("--node").unwrap_or_else(|| "node".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("xtask/bench/node_cli.mjs");
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_sentryagent"));

    let runtime = support::multi_thread_runtime();
    let fake = runtime.block_on(async { FakeAgentIdp::start().await.unwrap() });
    let home = tempfile::tempdir().unwrap();
    write_upstream_config(home.path(), &fake);

    let ours = || timed(Command::new(&cli).args(["agents", "list"]), home.path());
    let theirs = || timed(Command::new(&node).arg(&script), home.path());
    let ours_uncached = || {
        timed(
            Command::new(&cli).args(["agents", "list", "--no-token-cache"]),
            home.path(),
        )
    };
    let node_idle = || timed(Command::new(&node).args(["-e", ""]), home.path());
    // The first run of each fills the token cache and the OS's caches.
    ours();
    theirs();
    let mut times: [Vec<Duration>; 4] = Default::default();
    let (mut cli_tokens, mut node_tokens) = (0, 0);
    for run in 0..runs {
        // Each run in another order, so that no kind always follows another.
        for k in 0..4 {
            let kind = (run + k) % 4;
            let before = fake.requests_seen(Operation::IssueToken);
            let took = match kind {
                0 => ours(),
                1 => theirs(),
                2 => ours_uncached(),
                _ => node_idle(),
            };
            let tokens = fake.requests_seen(Operation::IssueToken) - before;
            match kind {
                0 => cli_tokens += tokens,
                1 => node_tokens += tokens,
                _ => {}
            }
            times[kind].push(took);
        }
    }
    let [
        mut cli_times,
        mut node_times,
        mut uncached_times,
        mut idle_times,
    ] = times;
    let report = json!({
        "bench": "cli",
        "agents_list": {
            "runs": runs,
            "cli": support::latency_summary(&mut cli_times),
            "node": support::latency_summary(&mut node_times),
            "cli_no_token_cache": support::latency_summary(&mut uncached_times),
            "node_startup": support::latency_summary(&mut idle_times),
            "cli_token_requests": cli_tokens,
            "node_token_requests": node_tokens,
            "node_version": version(&node),
        },
        "binary": {
            "bytes": std::fs::metadata(&cli).map(|m| m.len()).unwrap_or(0),
            "stripped_bytes": stripped_size(&cli),
        },
    });
    support::emit(&report);
    runtime.block_on(fake.shutdown());
}

/// The upstream CLI's config file, as its `configure` writes it (0600).
fn write_upstream_config(home: &Path, fake: &FakeAgentIdp) {
    let dir = home.join(".sentryagent");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    let config = json!({
        "apiUrl": fake.base_url(),
        "clientId": fake.client_id(),
        "clientSecret": fake.client_secret().expose_secret(),
    });
    std::fs::write(&path, config.to_string()).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

/// Runs `command` in the scratch `home` to its end and returns how long it took.
fn timed(command: &mut Command, home: &Path) -> Duration {
    command
        .env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let deadline = started + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{command:?} ran past {RUN_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        panic!("{command:?} failed ({status}): {stderr}");
    }
    elapsed
}

fn version(node: &str) -> String {
    Command::new(node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The size of a stripped copy, when `strip` is there.
fn stripped_size(binary: &Path) -> Option<u64> {
    let copy = tempfile::NamedTempFile::new().ok()?;
    std::fs::copy(binary, copy.path()).ok()?;
    let ok = Command::new("strip")
        .arg(copy.path())
        .status()
        .ok()?
        .success();
    ok.then(|| std::fs::metadata(copy.path()).ok().map(|m| m.len()))
        .flatten()
}
