//! Fleets and short-lived processes (`--report`; without it, a short run
//! prints the same report). Every process is this bench binary run again
//! as a child (`--child MODE`), against the in-process fake AgentIdP.
//!
//! - **tokens**: 200 processes started together, one call each, with a
//!   shared file store, with `RedisStore` (when `redis-server` is
//!   installed) and without: the token requests the server saw, and the
//!   fallbacks (a store operation past its timeout) the processes counted.
//! - **first_call**: a new process's first call (client built, token, call)
//!   with a warm shared store vs a cold one, alternating runs; and the
//!   token requests the warm runs made.
//! - **warm_overhead**: the per-call cost of having a store on a warm
//!   in-memory cache: the same `GET` through a client with a file store
//!   and one without, interleaved pairs, in-process; plus client
//!   instructions per call under callgrind (`--callgrind store|plain`).
//! - **limiter**: 50 processes sending 10 calls each over 5 s (500 calls)
//!   against a server limit of 100 a minute, sharing a token through Redis,
//!   with the fleet rate limiter and without: the 429s the server sent.
//!   And a fleet's start: 50 processes started together, one call each
//!   (no retries), against the same limit, with the limiter's defaults and
//!   without: the time until the last one finished, and the 429s.
//!   Needs `redis-server`; skipped (`null`) without it.

mod support;

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sentryagent_idp::store::{FileStore, RedisStore};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ClientBuilder, ErrorKind, ExposeSecret, Operation, RetryPolicy};
use serde_json::json;
use support::{Server, ServerConfig, ServerProcess};

const PROCESSES: usize = 50;
/// The fleet whose token requests are counted (issue 25: 200 replicas).
const TOKEN_PROCESSES: usize = 200;
const PAIRS: usize = 20_000;
const WARM_UP: usize = 1_000;
const FIRST_CALL_RUNS: usize = 10;
/// The measurement stops here even if fewer pairs are done.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// A child that runs longer than this is killed and the bench fails.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    if support::serve_main() {
        return;
    }
    if let Some(mode) = support::arg::<String>("--child") {
        support::current_thread_runtime().block_on(child(&mode));
        return;
    }
    if let Some(kind) = support::arg::<String>("--callgrind") {
        callgrind(&kind, support::arg("--calls").unwrap_or(2_000));
        return;
    }
    let quick = !support::report_mode();
    let processes = support::arg("--processes").unwrap_or(if quick { 10 } else { PROCESSES });
    let token_processes =
        support::arg("--token-processes").unwrap_or(if quick { 20 } else { TOKEN_PROCESSES });
    let pairs = support::arg("--pairs").unwrap_or(if quick { 2_000 } else { PAIRS });
    let runtime = support::multi_thread_runtime();
    let fake = runtime.block_on(async { FakeAgentIdp::start().await.unwrap() });
    let tokens = tokens(&runtime, token_processes);
    let first_call = first_call(&fake);
    let warm_overhead = warm_overhead(&runtime, pairs);
    let limiter = limiter(&runtime, processes);
    support::emit(&json!({
        "bench": "fleet",
        "tokens": tokens,
        "first_call": first_call,
        "warm_overhead": warm_overhead,
        "limiter": limiter,
    }));
}

/// Starts `count` children of `mode` with `env`, waits for all, and
/// returns the `CHILD …` line of each.
fn children(fake: &FakeAgentIdp, mode: &str, count: usize, env: &[(&str, String)]) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let spawned: Vec<_> = (0..count)
        .map(|_| {
            let mut command = Command::new(&exe);
            command
                .args(["--child", mode])
                .env("AGENTIDP_BASE_URL", fake.base_url())
                .env("AGENTIDP_CLIENT_ID", fake.client_id())
                .env(
                    "AGENTIDP_CLIENT_SECRET",
                    fake.client_secret().expose_secret(),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            for (name, value) in env {
                command.env(name, value);
            }
            command.spawn().unwrap()
        })
        .collect();
    let deadline = Instant::now() + CHILD_LIMIT;
    spawned
        .into_iter()
        .map(|mut child| {
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("a child ran past {CHILD_LIMIT:?}");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let output = child.wait_with_output().unwrap();
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("CHILD ").map(str::to_owned))
                .expect("a child printed no result")
        })
        .collect()
}

/// The number `name=<n>` in a child's line.
fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

fn tokens(runtime: &tokio::runtime::Runtime, processes: usize) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let redis = redis_support::RedisServer::start();
    let mut stores = vec![
        ("file", format!("file:{}", dir.path().display())),
        ("none", "none".to_owned()),
    ];
    if let Some(redis) = &redis {
        stores.insert(1, ("redis", format!("redis:{}", redis.url())));
    }
    let mut rows = serde_json::Map::new();
    for (name, store) in stores {
        // A server each: its counts start at 0.
        let fake = runtime.block_on(async { FakeAgentIdp::start().await.unwrap() });
        let started = Instant::now();
        let lines = children(&fake, "one-call", processes, &[("FLEET_STORE", store)]);
        rows.insert(
            name.to_owned(),
            json!({
                "token_requests": fake.requests_seen(Operation::IssueToken),
                "fallbacks": lines.iter().map(|l| field(l, "fallbacks")).sum::<f64>(),
                "wall_s": started.elapsed().as_secs_f64(),
            }),
        );
    }
    rows.insert("processes".into(), json!(processes));
    serde_json::Value::Object(rows)
}

fn first_call(fake: &FakeAgentIdp) -> serde_json::Value {
    let warm = tempfile::tempdir().unwrap();
    let warm_store = format!("file:{}", warm.path().display());
    children(fake, "one-call", 1, &[("FLEET_STORE", warm_store.clone())]);
    let (mut warm_us, mut cold_us) = (Vec::new(), Vec::new());
    let mut warm_tokens = 0;
    for run in 0..FIRST_CALL_RUNS {
        let cold = tempfile::tempdir().unwrap();
        let cold_store = format!("file:{}", cold.path().display());
        let order = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_warm in order {
            let store = if is_warm { &warm_store } else { &cold_store };
            let before = fake.requests_seen(Operation::IssueToken);
            let line = children(fake, "one-call", 1, &[("FLEET_STORE", store.clone())]).remove(0);
            let us = Duration::from_secs_f64(field(&line, "first_call_us") / 1e6);
            if is_warm {
                warm_tokens += fake.requests_seen(Operation::IssueToken) - before;
                warm_us.push(us);
            } else {
                cold_us.push(us);
            }
        }
    }
    json!({
        "runs": FIRST_CALL_RUNS,
        "warm": support::latency_summary(&mut warm_us),
        "cold": support::latency_summary(&mut cold_us),
        "warm_token_requests": warm_tokens,
    })
}

/// A client of the bench server, with a file store in `dir` or without.
fn bench_client(origin: &str, dir: Option<&std::path::Path>) -> Client {
    let builder = Client::builder()
        .base_url(origin)
        .client_id(support::CLIENT_ID)
        .client_secret(support::CLIENT_SECRET)
        .retry_policy(RetryPolicy::disabled())
        .http_client(support::http_client_builder());
    match dir {
        Some(dir) => builder.token_store(FileStore::in_dir(dir).unwrap()),
        None => builder,
    }
    .build()
    .unwrap()
}

fn warm_overhead(runtime: &tokio::runtime::Runtime, pairs: usize) -> serde_json::Value {
    let server = Server::start(ServerConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let stored = bench_client(&server.origin(), Some(dir.path()));
    let plain = bench_client(&server.origin(), None);
    let id = support::agent_id();
    let rt = support::current_thread_runtime();
    let _ = runtime;
    let (mut with, mut without) = rt.block_on(support::interleaved(
        pairs,
        WARM_UP,
        TIME_LIMIT,
        || async { drop(stored.agents().get(id).send().await.unwrap()) },
        || async { drop(plain.agents().get(id).send().await.unwrap()) },
    ));
    json!({
        "pairs": with.len(),
        "with_store": support::latency_summary(&mut with),
        "without_store": support::latency_summary(&mut without),
        "token_requests": server.stats.tokens(),
        "instructions_per_call": support::instructions_per_call(&["store", "plain"]),
    })
}

/// `calls` calls of one kind, the server in a child process, for callgrind.
fn callgrind(kind: &str, calls: usize) {
    let server = ServerProcess::spawn(ServerConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let store = (kind == "store").then_some(dir.path());
    let client = bench_client(&server.origin(), store);
    let id = support::agent_id();
    support::current_thread_runtime().block_on(async {
        for _ in 0..=calls {
            drop(std::hint::black_box(
                client.agents().get(id).send().await.unwrap(),
            ));
        }
    });
}

fn limiter(runtime: &tokio::runtime::Runtime, processes: usize) -> serde_json::Value {
    let Some(redis) = redis_support::RedisServer::start() else {
        return serde_json::Value::Null;
    };
    let mut rows = serde_json::Map::new();
    for limited in [true, false] {
        // A new server each time: its limit window starts empty.
        let fake = runtime.block_on(async {
            FakeAgentIdp::builder()
                .rate_limit(100, Duration::from_secs(60))
                .start()
                .await
                .unwrap()
        });
        let env = [
            ("FLEET_STORE", format!("redis:{}", redis.url())),
            ("FLEET_LIMIT", u8::from(limited).to_string()),
        ];
        let lines = children(&fake, "paced", processes, &env);
        let sum = |name: &str| lines.iter().map(|l| field(l, name)).sum::<f64>();
        rows.insert(
            if limited {
                "with_limiter"
            } else {
                "without_limiter"
            }
            .to_owned(),
            json!({
                "calls": sum("calls"),
                "ok": sum("ok"),
                "server_429": sum("server_429"),
                "held_back": sum("held_back"),
                "timed_out": sum("timed_out"),
                "token_requests": fake.requests_seen(Operation::IssueToken),
            }),
        );
    }
    for limited in [true, false] {
        let fake = runtime.block_on(async {
            FakeAgentIdp::builder()
                .rate_limit(100, Duration::from_secs(60))
                .start()
                .await
                .unwrap()
        });
        let env = [
            ("FLEET_STORE", format!("redis:{}", redis.url())),
            ("FLEET_LIMIT", u8::from(limited).to_string()),
        ];
        let started = Instant::now();
        let lines = children(&fake, "start", processes, &env);
        let took = started.elapsed();
        let sum = |name: &str| lines.iter().map(|l| field(l, name)).sum::<f64>();
        rows.insert(
            if limited {
                "start_with_limiter"
            } else {
                "start_without_limiter"
            }
            .to_owned(),
            json!({
                "wall_s": took.as_secs_f64(),
                "ok": sum("ok"),
                "server_429": sum("server_429"),
                "held_back": sum("held_back"),
                "token_requests": fake.requests_seen(Operation::IssueToken),
            }),
        );
    }
    rows.insert("processes".into(), json!(processes));
    serde_json::Value::Object(rows)
}

/// A child: `one-call` (build a client, one call, print the time it took
/// and the store's fallbacks), `start` (one call, no retries, print its
/// outcome) or `paced` (10 calls over 5 s, each allowed 5 s, print the
/// outcomes).
async fn child(mode: &str) {
    let started = Instant::now();
    let store = std::env::var("FLEET_STORE").unwrap();
    let mut builder = ClientBuilder::from_env().unwrap();
    let agent: uuid::Uuid = std::env::var("AGENTIDP_CLIENT_ID")
        .unwrap()
        .parse()
        .unwrap();
    if let Some(dir) = store.strip_prefix("file:") {
        builder = builder.token_store(FileStore::in_dir(dir).unwrap());
    } else if let Some(url) = store.strip_prefix("redis:") {
        let redis = RedisStore::connect(url).await.unwrap();
        if std::env::var("FLEET_LIMIT").is_ok_and(|v| v == "1") {
            builder = builder.fleet_rate_limit(redis.rate_limiter());
        }
        builder = builder.token_store(redis);
    }
    match mode {
        "one-call" => {
            let client = builder.build().unwrap();
            client.agents().get(agent).send().await.unwrap();
            println!(
                "CHILD first_call_us={} fallbacks={}",
                started.elapsed().as_micros(),
                client.token_store_fallbacks().unwrap_or(0)
            );
        }
        "start" => {
            let client = builder
                .retry_policy(RetryPolicy::disabled())
                .build()
                .unwrap();
            let (ok, server_429, held_back) = match client.agents().get(agent).send().await {
                Ok(_) => (1, 0, 0),
                Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => (0, 1, 0),
                Err(e) if e.kind() == ErrorKind::RateLimited => (0, 0, 1),
                Err(e) => panic!("unexpected failure: {e}"),
            };
            println!("CHILD ok={ok} server_429={server_429} held_back={held_back}");
        }
        "paced" => {
            let client = builder
                .retry_policy(RetryPolicy::disabled())
                .total_timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let calls = (0..10u64).map(|i| {
                let client = client.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(500 * i)).await;
                    client.agents().get(agent).send().await
                }
            });
            let (mut ok, mut server_429, mut held_back, mut timed_out) = (0, 0, 0, 0);
            for result in futures::future::join_all(calls).await {
                match result {
                    Ok(_) => ok += 1,
                    Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => server_429 += 1,
                    // The limiter saw no slot before the deadline: not sent.
                    Err(e) if e.kind() == ErrorKind::RateLimited => held_back += 1,
                    // Waited for a slot (its own, or its token's) until the deadline.
                    Err(e) if e.kind() == ErrorKind::Timeout => timed_out += 1,
                    Err(e) => panic!("unexpected failure: {e}"),
                }
            }
            println!(
                "CHILD calls=10 ok={ok} server_429={server_429} held_back={held_back} timed_out={timed_out}"
            );
        }
        other => panic!("unknown child mode {other}"),
    }
}
