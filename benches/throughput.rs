//! Throughput per core: authenticated `GET /api/v1/agents/{id}` calls per
//! second of client CPU time, for the facade, the hand-written reqwest
//! baseline, and (with `--python`) a Python `httpx.AsyncClient` client shaped
//! like the upstream SDK (`xtask/bench/python_client.py`), all against the same
//! server running in a child process, so that only the client's CPU counts.
//!
//! Each Rust client runs on a single-threaded runtime (one core); the Python
//! client runs on one asyncio loop. All three are measured with 1, 4 and 16
//! calls in flight ([`CONCURRENCY`]). "Per core" = completed calls / (user +
//! system CPU seconds of the client process). The headline ratio is taken at
//! the concurrency where the Python client does best (httpcore's pool slows
//! down as more requests wait on it), with both sides at that concurrency.
//!
//! - `cargo bench --bench throughput`: criterion, batches of calls through
//!   the facade and the baseline, reported as elements per second (wall).
//! - `--report [--requests N] [--python PY --python-script FILE
//!   --python-requests N]`: the figures `cargo xtask bench` prints.

mod support;

use std::cell::Cell;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use serde_json::json;
use support::{RawClient, ServerConfig, ServerProcess};

/// The numbers of calls in flight measured.
const CONCURRENCY: [usize; 3] = [1, 4, 16];
/// Calls in flight in the criterion bench.
const CRITERION_CONCURRENCY: usize = 16;
/// Default calls per Rust measurement.
const REQUESTS: u64 = 40_000;
/// Default calls for the Python client (it is much slower).
const PYTHON_REQUESTS: u64 = 4_000;
/// Any measurement stops after this long.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Calls per criterion iteration.
const BATCH: u64 = 256;

fn main() {
    if support::serve_main() {
        return;
    }
    if support::report_mode() {
        report();
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}

fn bench(c: &mut Criterion) {
    let server = ServerProcess::spawn(ServerConfig::default());
    let runtime = support::current_thread_runtime();
    let facade = support::facade(&server.origin());
    let raw = Rc::new(RawClient::new(&server.origin(), support::http_client()));
    let mut group = c.benchmark_group("throughput_get_agent");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("facade", |b| {
        b.to_async(&runtime)
            .iter(|| run_facade(&facade, BATCH, CRITERION_CONCURRENCY));
    });
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&runtime)
            .iter(|| run_raw(&raw, BATCH, CRITERION_CONCURRENCY));
    });
    group.finish();
}

/// `total` facade calls, `concurrency` at a time; returns the calls done.
async fn run_facade(client: &sentryagent_idp::Client, total: u64, concurrency: usize) -> u64 {
    let id = support::agent_id();
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + TIME_LIMIT;
    let workers = (0..concurrency).map(|_| {
        let next = Rc::clone(&next);
        async move {
            while next.get() < total && Instant::now() < deadline {
                next.set(next.get() + 1);
                std::hint::black_box(client.agents().get(id).send().await.unwrap());
            }
        }
    });
    futures::future::join_all(workers).await;
    next.get()
}

/// `total` baseline calls, `concurrency` at a time; returns the calls done.
async fn run_raw(client: &RawClient, total: u64, concurrency: usize) -> u64 {
    let id = support::agent_id();
    let next = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + TIME_LIMIT;
    let workers = (0..concurrency).map(|_| {
        let next = Rc::clone(&next);
        async move {
            while next.get() < total && Instant::now() < deadline {
                next.set(next.get() + 1);
                std::hint::black_box(client.get_agent(id).await.unwrap());
            }
        }
    });
    futures::future::join_all(workers).await;
    next.get()
}

/// Calls, wall time and CPU time of one measurement, as JSON.
fn figures(calls: u64, wall: Duration, cpu: Duration) -> serde_json::Value {
    json!({
        "requests": calls,
        "wall_s": wall.as_secs_f64(),
        "cpu_s": cpu.as_secs_f64(),
        "req_per_s_wall": calls as f64 / wall.as_secs_f64(),
        "req_per_cpu_s": calls as f64 / cpu.as_secs_f64(),
    })
}

/// Runs `f` after a warm-up and measures it.
fn measure<F, Fut>(runtime: &tokio::runtime::Runtime, requests: u64, f: F) -> serde_json::Value
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    runtime.block_on(f(requests / 10));
    let (cpu, wall) = (support::process_cpu(), Instant::now());
    let calls = runtime.block_on(f(requests));
    figures(calls, wall.elapsed(), support::process_cpu() - cpu)
}

fn report() {
    let requests = support::arg("--requests").unwrap_or(REQUESTS);
    let python: Option<String> = support::arg("--python");
    let script: Option<String> = support::arg("--python-script");
    let python_requests = support::arg("--python-requests").unwrap_or(PYTHON_REQUESTS);
    let server = ServerProcess::spawn(ServerConfig::default());
    let origin = server.origin();
    // Both Rust clients on the main thread's single-threaded runtime.
    let runtime = support::current_thread_runtime();
    let facade = support::facade(&origin);
    let raw = RawClient::new(&origin, support::http_client());
    let mut rows = Vec::new();
    for concurrency in CONCURRENCY {
        let facade_figures = measure(&runtime, requests, |n| run_facade(&facade, n, concurrency));
        let raw_figures = measure(&runtime, requests, |n| run_raw(&raw, n, concurrency));
        let python_figures = python.as_ref().map(|python| {
            let script = script.as_deref().expect("--python-script FILE");
            run_python(python, script, &origin, python_requests, concurrency)
        });
        rows.push(json!({
            "concurrency": concurrency,
            "facade": facade_figures,
            "raw": raw_figures,
            "python": python_figures,
        }));
    }
    let per_cpu = |row: &serde_json::Value, who: &str| row[who]["req_per_cpu_s"].as_f64();
    // The concurrency at which Python does best, and the ratio there.
    let best = rows
        .iter()
        .filter(|row| per_cpu(row, "python").is_some())
        .max_by(|a, b| {
            per_cpu(a, "python")
                .partial_cmp(&per_cpu(b, "python"))
                .unwrap()
        });
    let headline = best.map(|row| {
        json!({
            "concurrency": row["concurrency"],
            "facade_req_per_cpu_s": per_cpu(row, "facade"),
            "python_req_per_cpu_s": per_cpu(row, "python"),
            "ratio": per_cpu(row, "facade").unwrap() / per_cpu(row, "python").unwrap(),
        })
    });
    support::emit(&json!({
        "bench": "throughput",
        "runtime": "client: one thread (tokio current_thread / one asyncio loop); server: child process",
        "rows": rows,
        "facade_vs_python": headline,
    }));
}

/// Runs the Python client and reads its one JSON line.
fn run_python(
    python: &str,
    script: &str,
    origin: &str,
    requests: u64,
    concurrency: usize,
) -> serde_json::Value {
    let output = Command::new(python)
        .arg(script)
        .args(["--base-url", origin])
        .args(["--agent-id", support::AGENT_ID])
        .args(["--client-id", support::CLIENT_ID])
        .args(["--client-secret", support::CLIENT_SECRET])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--requests", &requests.to_string()])
        .args(["--max-seconds", &TIME_LIMIT.as_secs().to_string()])
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Python client failed: {}",
        output.status
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad Python output {text:?}: {e}"))
}
