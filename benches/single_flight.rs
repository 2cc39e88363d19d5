//! Single-flight at scale: 1,000 concurrent `agents().get(id)` calls on a new
//! client (cold token cache, empty pool), on a multi-threaded runtime like
//! `#[tokio::main]`'s, against the loopback server.
//!
//! Figures: the token requests the server saw (the goal is exactly 1), and the
//! time until the last of the 1,000 answers came back compared with one cold
//! call, and with the same 1,000 calls on a client whose token is already
//! cached (which isolates what the shared token fetch adds), and with the
//! same burst through hand-written reqwest on a new pool (what 1,000 new
//! connections cost without the SDK).
//!
//! - `cargo bench --bench single_flight`: criterion, cold 1,000 vs warm 1,000.
//! - `--report [--trials N]`: the figures above, each scenario N times, with
//!   the token endpoint answering at once and again after 100 ms.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::json;
use support::{Server, ServerConfig};

/// Concurrent calls per burst.
const CALLS: usize = 1_000;
/// Default trials per scenario.
const TRIALS: usize = 5;
/// Pause between measurements.
const SETTLE: Duration = Duration::from_millis(300);
/// A burst that takes longer than this fails the bench.
const BURST_LIMIT: Duration = Duration::from_secs(60);

fn main() {
    if support::serve_main() {
        return;
    }
    if support::report_mode() {
        report(support::arg("--trials").unwrap_or(TRIALS));
        return;
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}

fn bench(c: &mut Criterion) {
    let server = Server::start(ServerConfig::default());
    let runtime = support::multi_thread_runtime();
    let origin = server.origin();
    let mut group = c.benchmark_group("single_flight_1000");
    group.bench_function("cold_cache", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let origin = origin.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += burst(&support::facade(&origin)).await;
                }
                total
            }
        });
    });
    group.bench_function("warm_cache", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let origin = origin.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let client = support::facade(&origin);
                    client.access_token().await.unwrap();
                    total += burst(&client).await;
                }
                total
            }
        });
    });
    group.finish();
}

/// Starts [`CALLS`] concurrent calls on `client` and returns the time until
/// the last one answered.
async fn burst(client: &sentryagent_idp::Client) -> Duration {
    let id = support::agent_id();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.agents().get(id).send().await.unwrap();
        }));
    }
    let all = futures::future::join_all(tasks);
    for joined in tokio::time::timeout(BURST_LIMIT, all).await.unwrap() {
        joined.unwrap();
    }
    started.elapsed()
}

/// The same burst through the hand-written reqwest baseline on a new pool:
/// what 1,000 new connections cost without the SDK.
async fn raw_burst(origin: &str) -> Duration {
    let raw = support::RawClient::new(origin, support::http_client());
    let id = support::agent_id();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let raw = raw.clone();
        tasks.push(tokio::spawn(async move {
            raw.get_agent(id).await.unwrap();
        }));
    }
    let all = futures::future::join_all(tasks);
    for joined in tokio::time::timeout(BURST_LIMIT, all).await.unwrap() {
        joined.unwrap();
    }
    started.elapsed()
}

/// One cold call on a new client.
async fn one_cold(origin: &str) -> Duration {
    let client = support::facade(origin);
    let started = Instant::now();
    client
        .agents()
        .get(support::agent_id())
        .send()
        .await
        .unwrap();
    started.elapsed()
}

/// Lets the runtime and the server finish closing the last burst's
/// connections before the next measurement.
async fn settle() {
    tokio::time::sleep(SETTLE).await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// The figures for one server configuration.
fn scenario(
    runtime: &tokio::runtime::Runtime,
    token_delay: Duration,
    trials: usize,
) -> serde_json::Value {
    let server = Server::start(ServerConfig {
        token_delay,
        ..ServerConfig::default()
    });
    let origin = server.origin();
    let stats = Arc::clone(&server.stats);
    let (mut cold1, mut cold, mut warm, mut tokens) = (vec![], vec![], vec![], vec![]);
    let mut raw = vec![];
    runtime.block_on(async {
        // Warm the runtime and the server's code paths once.
        one_cold(&origin).await;
        for _ in 0..trials {
            cold1.push(one_cold(&origin).await);
            settle().await;

            let before = stats.tokens();
            cold.push(burst(&support::facade(&origin)).await);
            tokens.push(stats.tokens() - before);
            settle().await;

            let client = support::facade(&origin);
            client.access_token().await.unwrap();
            warm.push(burst(&client).await);
            drop(client);
            settle().await;

            raw.push(raw_burst(&origin).await);
            settle().await;
        }
    });
    let (cold1, cold, warm, raw) = (median(cold1), median(cold), median(warm), median(raw));
    json!({
        "token_delay_ms": token_delay.as_millis() as u64,
        "token_requests_per_burst": tokens,
        "one_cold_call_ms": cold1.as_secs_f64() * 1e3,
        "cold_burst_ms": cold.as_secs_f64() * 1e3,
        "warm_burst_ms": warm.as_secs_f64() * 1e3,
        "raw_burst_ms": raw.as_secs_f64() * 1e3,
        "cold_burst_vs_one_cold_call": cold.as_secs_f64() / cold1.as_secs_f64(),
        "cold_burst_vs_warm_burst": cold.as_secs_f64() / warm.as_secs_f64(),
        "cold_burst_vs_raw_burst": cold.as_secs_f64() / raw.as_secs_f64(),
    })
}

fn report(trials: usize) {
    support::raise_fd_limit();
    let runtime = support::multi_thread_runtime();
    let fast = scenario(&runtime, Duration::ZERO, trials);
    let slow = scenario(&runtime, Duration::from_millis(100), trials);
    support::emit(&json!({
        "bench": "single_flight",
        "calls": CALLS,
        "trials": trials,
        "runtime": "tokio multi_thread (2 workers); server on its own thread; a new client per burst",
        "fast_token": fast,
        "slow_token": slow,
    }));
}
