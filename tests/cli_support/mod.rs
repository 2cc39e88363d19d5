//! Drives the real `sentryagent` binary against an in-process fake
//! AgentIdP, in a scratch home: its own config and token-cache directories,
//! and no `AGENTIDP_*` variable of the machine's.

#![allow(dead_code)]

#[path = "../support/spec.rs"]
pub mod openapi;
#[path = "../support/schema.rs"]
pub mod schema;
// The SDK suites' raw scripted server, for answers the fake never gives
// (error text with escape sequences), and the fixtures it uses.
#[path = "../support/fixtures.rs"]
pub mod fixtures;
#[path = "../support/scripted.rs"]
pub mod scripted;
use fixtures::{ACCESS_TOKEN, ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, agent_json, token_body};

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use secrecy::ExposeSecret;
use sentryagent_idp::testing::FakeAgentIdp;
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sentryagent");

/// How long one command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A fake AgentIdP and a scratch home to run the binary in.
pub struct Cli {
    pub fake: FakeAgentIdp,
    pub home: TempDir,
}

impl Cli {
    /// A fresh fake and home.
    pub async fn start() -> Cli {
        let fake = FakeAgentIdp::start().await.expect("the fake starts");
        Cli::with(fake)
    }

    /// A scratch home for `fake`.
    pub fn with(fake: FakeAgentIdp) -> Cli {
        let home = tempfile::tempdir().expect("a scratch home");
        std::fs::create_dir_all(home.path().join("home")).expect("the home dir");
        Cli { fake, home }
    }

    /// The user's home directory.
    pub fn home_dir(&self) -> PathBuf {
        self.home.path().join("home")
    }

    /// Where the tool's config file is by default.
    pub fn config_file(&self) -> PathBuf {
        self.home
            .path()
            .join("config")
            .join("sentryagent")
            .join("config.toml")
    }

    /// The bootstrap secret.
    pub fn secret(&self) -> String {
        self.fake.client_secret().expose_secret().to_owned()
    }

    /// The binary with the scratch home and no settings.
    pub fn bare(&self) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::new(BIN);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home_dir())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .timeout(COMMAND_TIMEOUT);
        command
    }

    /// The binary configured for the fake through the environment.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut command = self.bare();
        command
            .env("AGENTIDP_BASE_URL", self.fake.base_url())
            .env("AGENTIDP_CLIENT_ID", self.fake.client_id())
            .env("AGENTIDP_CLIENT_SECRET", self.secret());
        command
    }

    /// A long-running command (`tail --follow`) configured as `cmd` is, to
    /// spawn with pipes; the caller stops it.
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(BIN);
        command
            .env_clear()
            .env("HOME", self.home_dir())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("AGENTIDP_BASE_URL", self.fake.base_url())
            .env("AGENTIDP_CLIENT_ID", self.fake.client_id())
            .env("AGENTIDP_CLIENT_SECRET", self.secret())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// Runs `args`, blocking this worker thread (the fake runs on the others).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("the binary runs")
    }

    /// Runs `args` with `--output json`, expects success, and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .args(args)
            .args(["--output", "json"])
            .output()
            .expect("the binary runs");
        assert_ok(&out, args);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {}", text(&out.stdout)))
    }

    /// Registers an agent by `email` and returns its id.
    pub fn register(&self, email: &str) -> String {
        let agent = self.json(&[
            "agents",
            "register",
            "--email",
            email,
            "--type",
            "screener",
            "--version",
            "1.0.0",
            "--capability",
            "resume:read",
            "--owner",
            "platform",
            "--env",
            "production",
        ]);
        agent["agentId"].as_str().expect("an agent id").to_owned()
    }

    /// Seeds `count` agents of `owner` straight into the fake, emailed
    /// `{name}-{i}@{domain}`; their ids.
    pub fn seed_owned(
        &self,
        count: usize,
        owner: &str,
        name: &str,
        domain: &str,
    ) -> Vec<uuid::Uuid> {
        self.fake.seed_agents(count, |i| {
            sentryagent_idp::testing::AgentSeed::new()
                .email(format!("{name}-{i}@{domain}"))
                .owner(owner)
        })
    }
}

/// Fails with the command's stderr unless it succeeded.
pub fn assert_ok(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status.code(),
        text(&out.stderr)
    );
}

/// Bytes as text, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit code, or a failure when the process was killed.
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("the binary exited by itself")
}

/// Writes `text` to `path` with `mode`.
#[cfg(unix)]
pub fn write_with_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("the directory");
    std::fs::write(path, text).expect("the file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("its mode");
}

/// Checks `body` against the spec's schema of `operation`'s `status` answer.
pub fn assert_spec(operation: &str, status: u16, body: &Value) {
    let spec = schema::spec();
    let op = spec
        .operations()
        .iter()
        .find(|o| o.id == operation)
        .unwrap_or_else(|| panic!("no operation {operation}"));
    let schema::Expected::Json(validator) = spec.expected(op, status) else {
        panic!("{operation} {status} has no JSON body in the spec");
    };
    let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{operation} {status}: {errors:?}\n{body:#}"
    );
}

/// Checks a listing the tool printed as the items of `operation`'s envelope.
pub fn assert_spec_items(operation: &str, items: &Value) {
    assert!(items.is_array(), "a listing prints an array: {items}");
    assert_spec(operation, 200, &serde_json::json!({ "data": items }));
}
