//! `cargo xtask conformance`: checks the fake AgentIdP against the spec with
//! Schemathesis.
//!
//! 1. Builds `examples/fake_server.rs` (feature `testing`) and starts it with
//!    its stdin on a pipe, so that it stops when this process goes away,
//!    whatever the reason; it is also killed at the end in every case.
//! 2. Reads the one JSON line it prints (API root and bootstrap credentials)
//!    and checks that the client-credentials grant gives a bearer token.
//! 3. Runs `schemathesis run openapi/agentidp.yaml` against it from the
//!    project's venv, with the hooks of `xtask/conformance/hooks.py`: a fresh
//!    bearer token for every request but `POST /token` (so a revoked token
//!    never breaks the run), and no call that would disable the bootstrap
//!    agent.
//! 4. Reads Schemathesis's JSON and NDJSON reports and prints the figures:
//!    operations covered (out of the spec's), test cases, failures, and the
//!    response statuses seen per operation.
//!
//! It fails when Schemathesis reports a failure or an error, when an
//! operation of the spec got no response, or when anything cannot be run.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pyenv::Venv;

/// The Schemathesis hooks, relative to the repository root.
pub const HOOKS: &str = "xtask/conformance/hooks.py";

/// The example that runs the fake as a process.
pub const EXAMPLE: &str = "fake_server";

/// The checks run on every response. Beyond the five that compare responses
/// with the spec (status, content type, headers, body schema, no 5xx), the
/// fake must refuse what the spec makes invalid (`negative_data_rejection`),
/// must not serve protected operations without a token (`ignored_auth`) and
/// must refuse methods the spec does not list (`unsupported_method`).
pub const CHECKS: [&str; 8] = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
    "unsupported_method",
];

/// Test cases per operation and phase, unless `--max-examples` says otherwise.
pub const DEFAULT_MAX_EXAMPLES: u32 = 50;

/// The random seed, unless `--seed` says otherwise, so that runs repeat.
pub const DEFAULT_SEED: u64 = 20_260_328;

/// How long the fake may take to print its line once built.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The fake's own time limit: it stops by itself after this long.
const FAKE_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Schemathesis is stopped after this long.
const RUN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How long the fake gets to stop after its stdin closes, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Settings of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Schemathesis's `--max-examples`.
    pub max_examples: u32,
    /// Schemathesis's `--seed`.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_examples: DEFAULT_MAX_EXAMPLES,
            seed: DEFAULT_SEED,
        }
    }
}

impl Options {
    /// Parses `[--max-examples N] [--seed N]`.
    pub fn parse(args: &[&str]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .copied()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match *arg {
                "--max-examples" => {
                    let text = value(arg)?;
                    options.max_examples =
                        text.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            format!("--max-examples {text}: not a positive number")
                        })?;
                }
                "--seed" => {
                    let text = value(arg)?;
                    options.seed = text
                        .parse()
                        .map_err(|_| format!("--seed {text}: not a number"))?;
                }
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(options)
    }
}

/// What the fake prints on its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeInfo {
    /// The API root, origin + `/api/v1`.
    pub api_url: String,
    /// The bootstrap agent's client id.
    pub client_id: String,
    /// The bootstrap agent's secret (a throwaway of the in-memory fake).
    pub client_secret: String,
}

impl FakeInfo {
    /// Parses the fake's JSON line.
    pub fn parse(line: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("the fake's first line is not JSON ({e}): {line:?}"))?;
        let field = |name: &str| {
            value[name]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("the fake's first line has no `{name}`"))
        };
        Ok(FakeInfo {
            api_url: field("api_url")?,
            client_id: field("client_id")?,
            client_secret: field("client_secret")?,
        })
    }
}

/// One operation of the spec, as Schemathesis labels it (`POST /token`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Operation {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path relative to the server URL, e.g. `/agents/{agentId}`.
    pub path: String,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// The operations of the spec, sorted.
pub fn spec_operations(spec_yaml: &str) -> Result<Vec<Operation>, String> {
    let doc: Value =
        yaml_serde::from_str(spec_yaml).map_err(|e| format!("the spec is not valid YAML: {e}"))?;
    let paths = doc["paths"]
        .as_object()
        .ok_or("the spec has no `paths` object")?;
    let mut operations = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.contains_key(method) {
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                });
            }
        }
    }
    operations.sort();
    Ok(operations)
}

/// The response statuses seen per operation label (`None`: no response).
pub type StatusCounts = BTreeMap<String, BTreeMap<Option<u16>, usize>>;

/// Counts, from Schemathesis's NDJSON event stream, the responses each
/// operation label got, by status.
pub fn statuses_from_ndjson(ndjson: &str) -> StatusCounts {
    let mut counts = StatusCounts::new();
    for line in ndjson.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let recorder = &event["ScenarioFinished"]["recorder"];
        let Some(cases) = recorder["cases"].as_object() else {
            continue;
        };
        for (id, case) in cases {
            let case = &case["value"];
            let (Some(method), Some(path)) = (case["method"].as_str(), case["path"].as_str())
            else {
                continue;
            };
            let status = recorder["interactions"][id]["response"]["status_code"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok());
            *counts
                .entry(format!("{} {path}", method.to_ascii_uppercase()))
                .or_default()
                .entry(status)
                .or_default() += 1;
        }
    }
    counts
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The spec's operations.
    pub operations: Vec<Operation>,
    /// Responses per operation label, spec operations and others (such as
    /// the unsupported-method probes).
    pub statuses: StatusCounts,
    /// Test cases Schemathesis generated.
    pub generated: u64,
    /// Test cases with at least one failed check.
    pub with_failures: u64,
    /// Distinct failures.
    pub unique_failures: u64,
    /// Errors (test cases that could not be run, network errors...).
    pub errors: u64,
    /// Schemathesis's exit code.
    pub exit_code: Option<i32>,
}

impl Summary {
    /// The spec operations that got at least one response.
    pub fn covered(&self) -> Vec<&Operation> {
        self.operations
            .iter()
            .filter(|op| {
                self.statuses
                    .get(&op.to_string())
                    .is_some_and(|by_status| by_status.keys().any(Option::is_some))
            })
            .collect()
    }

    /// Whether the run passed: exit code 0, no failure or error, every
    /// operation covered.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0)
            && self.with_failures == 0
            && self.unique_failures == 0
            && self.errors == 0
            && self.covered().len() == self.operations.len()
            && !self.operations.is_empty()
    }

    /// Builds the summary from the spec's operations, the JSON report and
    /// the NDJSON events.
    pub fn from_reports(
        operations: Vec<Operation>,
        report_json: &str,
        events_ndjson: &str,
        exit_code: Option<i32>,
    ) -> Result<Self, String> {
        let report: Value = serde_json::from_str(report_json)
            .map_err(|e| format!("Schemathesis's JSON report cannot be read: {e}"))?;
        let number = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("Schemathesis's JSON report has no number at {pointer}"))
        };
        let listed = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_array)
                .map_or(0, |items| items.len() as u64)
        };
        Ok(Summary {
            operations,
            statuses: statuses_from_ndjson(events_ndjson),
            generated: number("/test_cases/generated")?,
            with_failures: number("/test_cases/with_failures")?,
            unique_failures: number("/test_cases/unique_failures")?.max(listed("/failures")),
            errors: number("/test_cases/errored")?.max(listed("/errors")),
            exit_code,
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "responses per operation (status: count):")?;
        for op in &self.operations {
            let label = op.to_string();
            let statuses = self.statuses.get(&label);
            let cases: usize = statuses.map_or(0, |s| s.values().sum());
            let seen = statuses.map_or_else(String::new, |s| {
                s.iter()
                    .map(|(status, n)| match status {
                        Some(status) => format!("{status}: {n}"),
                        None => format!("no response: {n}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            writeln!(f, "  {label:<58} {cases:>5} cases  {seen}")?;
        }
        let spec_labels: Vec<String> = self.operations.iter().map(|op| op.to_string()).collect();
        let probes: usize = self
            .statuses
            .iter()
            .filter(|(label, _)| !spec_labels.contains(label))
            .map(|(_, s)| s.values().sum::<usize>())
            .sum();
        if probes > 0 {
            writeln!(
                f,
                "  (and {probes} requests with methods the spec does not list)"
            )?;
        }
        let covered = self.covered();
        writeln!(
            f,
            "operations covered: {}/{}",
            covered.len(),
            self.operations.len()
        )?;
        for op in &self.operations {
            if !covered.contains(&op) {
                writeln!(f, "  not covered: {op}")?;
            }
        }
        writeln!(f, "test cases generated: {}", self.generated)?;
        writeln!(
            f,
            "failures: {} unique, in {} test cases; errors: {}",
            self.unique_failures, self.with_failures, self.errors
        )?;
        write!(
            f,
            "conformance: {} passed, {} failed",
            self.generated.saturating_sub(self.with_failures),
            self.with_failures + self.errors
        )
    }
}

/// The fake server process; stopped (stdin closed, then killed) on drop.
struct FakeServer {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl FakeServer {
    /// Starts `exe`, waits for its first line and parses it.
    fn start(exe: &Path) -> Result<(Self, FakeInfo), String> {
        let mut child = Command::new(exe)
            .arg("--max-lifetime")
            .arg(FAKE_MAX_LIFETIME.as_secs().to_string())
            .env_remove("FAKE_AGENTIDP_PORT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut server = FakeServer { child, stdin };
        let stdout = stdout.ok_or("the fake's stdout was not captured")?;
        let (sender, receiver) = mpsc::channel();
        // Reads the first line, then drains the rest so the fake never blocks
        // on a full pipe; ends when the fake exits.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next());
            for _ in lines {}
        });
        let line = match receiver.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(e))) => return Err(format!("cannot read the fake's stdout: {e}")),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.stop();
                return Err(format!(
                    "the fake exited before printing its address ({status})"
                ));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the fake printed nothing within {} s",
                    STARTUP_TIMEOUT.as_secs()
                ));
            }
        };
        let info = FakeInfo::parse(&line)?;
        Ok((server, info))
    }

    /// Closes the fake's stdin, which makes it shut down, waits a moment,
    /// then kills it if it still runs. Returns how it ended.
    fn stop(&mut self) -> String {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => break,
            }
        }
        // It may have exited in between; then kill fails harmlessly.
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => format!("killed: {status}"),
            Err(e) => format!("killed; cannot wait for it: {e}"),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Builds the `fake_server` example and returns its executable.
fn build_fake(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    println!("building the fake: {cargo} build --example {EXAMPLE} --features testing");
    let output = Command::new(&cargo)
        .args([
            "build",
            "--example",
            EXAMPLE,
            "--features",
            "testing",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{cargo} build`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{cargo} build --example {EXAMPLE} --features testing` failed ({})",
            output.status
        ));
    }
    let messages = String::from_utf8_lossy(&output.stdout);
    executable_from_messages(&messages)
        .ok_or_else(|| format!("cargo built no executable for the example `{EXAMPLE}`"))
}

/// The example's executable named in cargo's JSON messages.
fn executable_from_messages(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == EXAMPLE)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "example"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// The environment the hooks read (and no `__pycache__` in the source tree).
fn hook_env(command: &mut Command, root: &Path, info: &FakeInfo) {
    command
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SCHEMATHESIS_HOOKS", root.join(HOOKS))
        .env("AGENTIDP_API_URL", &info.api_url)
        .env("AGENTIDP_CLIENT_ID", &info.client_id)
        .env("AGENTIDP_CLIENT_SECRET", &info.client_secret);
}

/// Checks that the fake grants the bootstrap agent a token, with the hooks'
/// own code (`python hooks.py`), before Schemathesis starts.
fn check_token(venv: &Venv, root: &Path, info: &FakeInfo) -> Result<(), String> {
    let mut command = venv.command("python");
    command.arg(root.join(HOOKS));
    hook_env(&mut command, root, info);
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", venv.python().display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        print!("{text}");
        Ok(())
    } else {
        Err(format!(
            "no bearer token from the fake ({}):\n{}{}",
            output.status,
            text,
            errors.trim_end()
        ))
    }
}

/// Waits for `child`, killing it after `timeout`.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "Schemathesis did not finish within {} s and was stopped",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for Schemathesis: {e}")),
        }
    }
}

/// Runs the whole check and returns its figures. `out_dir` receives
/// Schemathesis's reports and its working files.
pub fn run(root: &Path, venv: &Venv, out_dir: &Path, options: Options) -> Result<Summary, String> {
    let spec = root.join(crate::codegen::SPEC_PATH);
    let spec_text = std::fs::read_to_string(&spec)
        .map_err(|e| format!("cannot read {}: {e}", spec.display()))?;
    let operations = spec_operations(&spec_text)?;
    // Old reports must not be mistaken for this run's.
    if out_dir.exists() {
        std::fs::remove_dir_all(out_dir)
            .map_err(|e| format!("cannot clear {}: {e}", out_dir.display()))?;
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let report_json = out_dir.join("report.json");
    let events_ndjson = out_dir.join("events.ndjson");

    let exe = build_fake(root)?;
    let (fake, info) = FakeServer::start(&exe)?;
    println!("fake AgentIdP at {}", info.api_url);
    check_token(venv, root, &info)?;

    let mut command = venv.command("schemathesis");
    command
        .arg("run")
        .arg(&spec)
        .args(["--url", &info.api_url])
        .args(["--checks", &CHECKS.join(",")])
        .args(["--max-examples", &options.max_examples.to_string()])
        .args(["--seed", &options.seed.to_string()])
        // One worker: the fake's state then evolves the same way every run.
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        .args(["--report", "json,ndjson"])
        .arg("--report-json-path")
        .arg(&report_json)
        .arg("--report-ndjson-path")
        .arg(&events_ndjson)
        .arg("--no-color")
        // Schemathesis and Hypothesis keep working files in the current
        // directory: keep them out of the source tree.
        .current_dir(out_dir)
        .stdin(Stdio::null());
    hook_env(&mut command, root, &info);
    println!(
        "running Schemathesis: {} operations, checks {}, --max-examples {}, --seed {}",
        operations.len(),
        CHECKS.join(","),
        options.max_examples,
        options.seed
    );
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", venv.bin("schemathesis").display()))?;
    let status = wait_bounded(&mut child, RUN_TIMEOUT);
    drop(fake);
    let status = status?;

    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| {
            format!(
                "Schemathesis wrote no report {} ({status}): {e}",
                path.display()
            )
        })
    };
    Summary::from_reports(
        operations,
        &read(&report_json)?,
        &read(&events_ndjson)?,
        status.code(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_has_fourteen_operations() {
        let spec = std::fs::read_to_string(crate::root().join(crate::codegen::SPEC_PATH)).unwrap();
        let operations = spec_operations(&spec).unwrap();
        assert_eq!(operations.len(), 14, "{operations:?}");
        assert!(operations.contains(&Operation {
            method: "POST".into(),
            path: "/token".into()
        }));
    }

    #[test]
    fn options_parse() {
        assert_eq!(Options::parse(&[]).unwrap(), Options::default());
        let options = Options::parse(&["--seed", "7", "--max-examples", "3"]).unwrap();
        assert_eq!(
            options,
            Options {
                max_examples: 3,
                seed: 7
            }
        );
        assert!(Options::parse(&["--max-examples", "0"]).is_err());
        assert!(Options::parse(&["--seed"]).is_err());
        assert!(Options::parse(&["--bogus"]).is_err());
    }

    #[test]
    fn the_fake_line_is_parsed() {
        let info = FakeInfo::parse(
            r#"{"api_url":"http://127.0.0.1:1/api/v1","base_url":"http://127.0.0.1:1","client_id":"c","client_secret":"s"}"#,
        )
        .unwrap();
        assert_eq!(info.api_url, "http://127.0.0.1:1/api/v1");
        assert_eq!(
            (info.client_id.as_str(), info.client_secret.as_str()),
            ("c", "s")
        );
        assert!(FakeInfo::parse("listening").is_err());
        assert!(FakeInfo::parse(r#"{"api_url":"x"}"#).is_err());
    }

    #[test]
    fn the_example_executable_is_found_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"sentryagent_idp","kind":["lib"]},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"fake_server","kind":["example"]},"executable":"/t/debug/examples/fake_server"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable_from_messages(messages),
            Some(PathBuf::from("/t/debug/examples/fake_server"))
        );
        assert_eq!(executable_from_messages("not json"), None);
    }

    fn scenario(cases: &[(&str, &str, &str, Option<u16>)]) -> String {
        let mut recorder_cases = serde_json::Map::new();
        let mut interactions = serde_json::Map::new();
        for (id, method, path, status) in cases {
            recorder_cases.insert(
                (*id).to_owned(),
                serde_json::json!({"value": {"method": method, "path": path}}),
            );
            if let Some(status) = status {
                interactions.insert(
                    (*id).to_owned(),
                    serde_json::json!({"response": {"status_code": status}}),
                );
            }
        }
        serde_json::json!({"ScenarioFinished": {"recorder": {
            "cases": recorder_cases, "interactions": interactions
        }}})
        .to_string()
    }

    #[test]
    fn statuses_and_coverage_come_from_the_events() {
        let ops = vec![
            Operation {
                method: "GET".into(),
                path: "/a".into(),
            },
            Operation {
                method: "POST".into(),
                path: "/b".into(),
            },
        ];
        let events = [
            r#"{"PhaseStarted":{}}"#.to_owned(),
            scenario(&[
                ("1", "GET", "/a", Some(200)),
                ("2", "GET", "/a", Some(404)),
                ("3", "PUT", "/a", Some(405)),
            ]),
            scenario(&[("4", "POST", "/b", None)]),
        ]
        .join("\n");
        let report = r#"{"exit_code":0,"test_cases":{"generated":4,"with_failures":0,"unique_failures":0,"errored":0},"failures":[],"errors":[]}"#;
        let summary = Summary::from_reports(ops.clone(), report, &events, Some(0)).unwrap();
        assert_eq!(summary.statuses["GET /a"][&Some(200)], 1);
        assert_eq!(summary.statuses["POST /b"][&None], 1);
        // POST /b got no response: not covered, so the run fails.
        assert_eq!(summary.covered(), vec![&ops[0]]);
        assert!(!summary.passed());
        let text = summary.to_string();
        assert!(text.contains("operations covered: 1/2"), "{text}");
        assert!(text.contains("not covered: POST /b"), "{text}");
        assert!(text.contains("1 requests with methods the spec does not list"));

        let events = scenario(&[
            ("1", "GET", "/a", Some(200)),
            ("2", "POST", "/b", Some(400)),
        ]);
        let summary = Summary::from_reports(ops.clone(), report, &events, Some(0)).unwrap();
        assert!(summary.passed(), "{summary}");
        assert!(
            summary
                .to_string()
                .ends_with("conformance: 4 passed, 0 failed")
        );

        let failed = r#"{"test_cases":{"generated":4,"with_failures":1,"unique_failures":1,"errored":0},"failures":[{}]}"#;
        let summary = Summary::from_reports(ops, failed, &events, Some(1)).unwrap();
        assert!(!summary.passed());
        assert!(
            summary
                .to_string()
                .ends_with("conformance: 3 passed, 1 failed")
        );
    }
}
