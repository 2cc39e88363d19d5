//! Facade overhead: the same authenticated `GET /api/v1/agents/{id}` through
//! the SDK (`client.agents().get(id)`) and through a hand-written reqwest call
//! with a fixed bearer token, against the same loopback server, on one shared
//! `reqwest::Client` (so the same pool and connection settings).
//!
//! - `cargo bench --bench facade_overhead`: criterion, one benchmark each.
//! - `--report [--pairs N]`: the two calls interleaved one after the other (the
//!   order alternating), N pairs on a single-threaded runtime; prints the
//!   median and p99 of each, their ratios, and the allocations per call
//!   (counted on the client thread by a counting global allocator).
//! - `--callgrind facade|generated|raw [--calls N]`: N calls of one kind only, against a
//!   server in a child process, for `valgrind --tool=callgrind`.

mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::json;
use support::{CountingAlloc, RawClient, Server, ServerConfig, ServerProcess};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Calls of each kind before measuring (connection, token, caches).
const WARM_UP: usize = 1_000;
/// Default number of interleaved pairs.
const PAIRS: usize = 20_000;
/// The measurement stops here even if fewer pairs are done.
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    if support::serve_main() {
        return;
    }
    if let Some(kind) = support::arg::<String>("--callgrind") {
        callgrind(&kind, support::arg("--calls").unwrap_or(2_000));
        return;
    }
    if support::report_mode() {
        report(support::arg("--pairs").unwrap_or(PAIRS));
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}

fn bench(c: &mut Criterion) {
    let server = Server::start(ServerConfig::default());
    let runtime = support::current_thread_runtime();
    let http = support::http_client();
    let facade = support::facade_on(&server.origin());
    let raw = RawClient::new(&server.origin(), http);
    let id = support::agent_id();
    runtime.block_on(async {
        facade.agents().get(id).send().await.unwrap();
        raw.get_agent(id).await.unwrap();
    });
    let mut group = c.benchmark_group("get_agent");
    group.bench_function("facade", |b| {
        b.to_async(&runtime)
            .iter(|| async { facade.agents().get(id).send().await.unwrap() });
    });
    group.bench_function("raw_reqwest", |b| {
        b.to_async(&runtime)
            .iter(|| async { raw.get_agent(id).await.unwrap() });
    });
    group.finish();
}

/// One measured call: latency, allocations, allocated bytes.
#[derive(Default)]
struct Samples {
    latency: Vec<Duration>,
    allocs: Vec<u64>,
    bytes: Vec<u64>,
}

impl Samples {
    fn push(&mut self, latency: Duration, allocs: u64, bytes: u64) {
        self.latency.push(latency);
        self.allocs.push(allocs);
        self.bytes.push(bytes);
    }

    fn summary(&mut self) -> serde_json::Value {
        let (median, p99) = support::median_p99(&mut self.latency);
        self.allocs.sort_unstable();
        self.bytes.sort_unstable();
        let n = self.allocs.len().max(1) as f64;
        json!({
            "calls": self.latency.len(),
            "median_us": support::micros(median),
            "p99_us": support::micros(p99),
            "allocs_per_call": self.allocs.iter().sum::<u64>() as f64 / n,
            "allocs_median": self.allocs.get(self.allocs.len() / 2).copied().unwrap_or(0),
            "bytes_per_call": self.bytes.iter().sum::<u64>() as f64 / n,
        })
    }
}

fn report(pairs: usize) {
    let server = Server::start(ServerConfig::default());
    let runtime = support::current_thread_runtime();
    let http = support::http_client();
    let facade = support::facade_on(&server.origin());
    let raw = RawClient::new(&server.origin(), http);
    let id = support::agent_id();
    let (mut f, mut r) = (Samples::default(), Samples::default());
    runtime.block_on(async {
        for _ in 0..WARM_UP {
            facade.agents().get(id).send().await.unwrap();
            raw.get_agent(id).await.unwrap();
        }
        let deadline = Instant::now() + TIME_LIMIT;
        for i in 0..pairs {
            if Instant::now() > deadline {
                break;
            }
            // Alternate the order so neither call always follows the other.
            for which in [i % 2, (i + 1) % 2] {
                let started = Instant::now();
                if which == 0 {
                    let (agent, allocs, bytes) =
                        support::count_allocs(facade.agents().get(id).send()).await;
                    let elapsed = started.elapsed();
                    std::hint::black_box(agent.unwrap());
                    f.push(elapsed, allocs, bytes);
                } else {
                    let (agent, allocs, bytes) = support::count_allocs(raw.get_agent(id)).await;
                    let elapsed = started.elapsed();
                    std::hint::black_box(agent.unwrap());
                    r.push(elapsed, allocs, bytes);
                }
            }
        }
    });
    let (facade_summary, raw_summary) = (f.summary(), r.summary());
    let ratio =
        |key: &str| facade_summary[key].as_f64().unwrap() / raw_summary[key].as_f64().unwrap();
    support::emit(&json!({
        "bench": "facade_overhead",
        "runtime": "tokio current_thread; server on its own thread; one shared reqwest::Client",
        "facade": facade_summary,
        "raw": raw_summary,
        "median_ratio": ratio("median_us"),
        "p99_ratio": ratio("p99_us"),
        "token_requests": server.stats.tokens(),
        "instructions_per_call": support::instructions_per_call(&["facade", "generated", "raw"]),
    }));
}

/// `calls` calls of one kind, the server in a child process so that only the
/// client's instructions are counted.
fn callgrind(kind: &str, calls: usize) {
    let server = ServerProcess::spawn(ServerConfig::default());
    let runtime = support::current_thread_runtime();
    let http = support::http_client();
    let facade = support::facade_on(&server.origin());
    let raw = RawClient::new(&server.origin(), http.clone());
    let generated = support::GeneratedShape::new(&server.origin(), http);
    let id = support::agent_id();
    runtime.block_on(async {
        // One warm-up call: connection and (for the facade) the token.
        match kind {
            "facade" => drop(facade.agents().get(id).send().await.unwrap()),
            "raw" => drop(raw.get_agent(id).await.unwrap()),
            "generated" => drop(generated.get_agent(id).await.unwrap()),
            other => panic!("--callgrind takes facade, generated or raw, not {other}"),
        }
        for _ in 0..calls {
            match kind {
                "facade" => drop(std::hint::black_box(
                    facade.agents().get(id).send().await.unwrap(),
                )),
                "generated" => drop(std::hint::black_box(generated.get_agent(id).await.unwrap())),
                _ => drop(std::hint::black_box(raw.get_agent(id).await.unwrap())),
            }
        }
    });
}
