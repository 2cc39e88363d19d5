//! Memory: peak RSS (`VmHWM` of `/proc/self/status`) of a client process with
//! 10,000 `agents().get(id)` calls in flight against a server, in another
//! process, that holds every answer for 1 s.
//!
//! The client is built with every default (connection pool: unbounded, idle
//! connections kept 90 s; HTTP/1.1 only, so one connection per call in
//! flight; connect timeout 10 s, attempt 30 s, total 90 s; retries on) on a
//! multi-threaded runtime like `#[tokio::main]`'s. The same load through the
//! hand-written reqwest baseline, in its own process, shows what the transport
//! alone costs.
//!
//! Not a criterion bench (one figure per process): `cargo bench --bench
//! peak_rss` prints the same report as `--report`. `--calls N` changes the
//! number of calls in flight. Each client runs in a child process started
//! with `--measure facade|raw`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{RawClient, ServerConfig, ServerProcess};

/// Calls in flight at once.
const CALLS: usize = 10_000;
/// How long the server holds each answer.
const AGENT_DELAY: Duration = Duration::from_secs(1);
/// The `max_in_flight` of the capped facade client.
const MAX_IN_FLIGHT: usize = 256;
/// The load must finish within this.
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    if support::serve_main() {
        return;
    }
    let calls = support::arg("--calls").unwrap_or(CALLS).clamp(1, 15_000);
    if let Some(kind) = support::arg::<String>("--measure") {
        let origin: String = support::arg("--origin").expect("--origin");
        support::emit(&measure(&kind, &origin, calls));
        return;
    }
    let server = ServerProcess::spawn(ServerConfig {
        agent_delay: AGENT_DELAY,
        ..ServerConfig::default()
    });
    let facade = child(&server.origin(), "facade", calls);
    let capped = child(&server.origin(), "capped", calls);
    let raw = child(&server.origin(), "raw", calls);
    let report = json!({
        "bench": "peak_rss",
        "calls_in_flight": calls,
        "server_delay_ms": AGENT_DELAY.as_millis() as u64,
        "runtime": "tokio multi_thread (2 workers); server: child process",
        "facade": facade,
        "capped": capped,
        "max_in_flight": MAX_IN_FLIGHT,
        "raw": raw,
    });
    if support::report_mode() {
        support::emit(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}

/// Runs `--measure kind` in a new process and reads its report.
fn child(origin: &str, kind: &str, calls: usize) -> serde_json::Value {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--measure", kind, "--origin", origin])
        .args(["--calls", &calls.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{kind} measurement failed: {}",
        output.status
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-REPORT "))
        .unwrap_or_else(|| panic!("no report in {text:?}"));
    serde_json::from_str(line).unwrap()
}

/// In this (child) process: `calls` concurrent calls of `kind`; the RSS
/// before and at its peak.
fn measure(kind: &str, origin: &str, calls: usize) -> serde_json::Value {
    let fd_limit = support::raise_fd_limit();
    let runtime = support::multi_thread_runtime();
    let id = support::agent_id();
    let mut builder = sentryagent_idp::Client::builder()
        .base_url(origin)
        .client_id(support::CLIENT_ID)
        .client_secret(support::CLIENT_SECRET);
    if kind == "capped" {
        builder = builder.max_in_flight(MAX_IN_FLIGHT);
    }
    let facade = builder.build().unwrap();
    let raw = RawClient::new(origin, support::http_client());
    let (before, ok, elapsed) = runtime.block_on(async {
        // One call first: the token, one connection, the runtime's threads.
        match kind {
            "facade" | "capped" => drop(facade.agents().get(id).send().await.unwrap()),
            "raw" => drop(raw.get_agent(id).await.unwrap()),
            other => panic!("--measure takes facade, capped or raw, not {other}"),
        }
        let before = support::proc_status_kib("VmHWM").unwrap_or(0);
        let started = Instant::now();
        // Separate spawns, so each task holds only its own client's future.
        let mut tasks = Vec::with_capacity(calls);
        for _ in 0..calls {
            tasks.push(if kind != "raw" {
                let facade = facade.clone();
                tokio::spawn(async move { facade.agents().get(id).send().await.is_ok() })
            } else {
                let raw = raw.clone();
                tokio::spawn(async move { raw.get_agent(id).await.is_ok() })
            });
        }
        let all = futures::future::join_all(tasks);
        let results = tokio::time::timeout(TIME_LIMIT, all).await.unwrap();
        let ok = results
            .into_iter()
            .filter(|r| matches!(r, Ok(true)))
            .count();
        (before, ok, started.elapsed())
    });
    let peak = support::proc_status_kib("VmHWM").unwrap_or(0);
    json!({
        "client": kind,
        "ok": ok,
        "fd_limit": fd_limit,
        "seconds": elapsed.as_secs_f64(),
        "vmhwm_before_kib": before,
        "vmhwm_peak_kib": peak,
        "peak_mib": peak as f64 / 1024.0,
        "per_call_kib": (peak.saturating_sub(before)) as f64 / calls as f64,
    })
}
