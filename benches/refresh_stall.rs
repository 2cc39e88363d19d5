//! Refresh stalls: a steady open-loop load of `agents().get(id)` while the
//! token repeatedly crosses its refresh buffer, with the token endpoint slowed
//! to 500 ms.
//!
//! The server issues tokens for 3 s and the client refreshes 2 s before
//! expiry, so a background refresh starts 1 s after each token arrives and
//! takes 500 ms: about a third of the run is inside a refresh window. The
//! server records each token request's window (arrival to answer); a call
//! whose run overlaps one counts as "during refresh".
//!
//! Figures: p99 latency during refresh windows / p99 outside them (goal
//! ≤ 1.2×), and the calls that took longer than 400 ms, i.e. that waited on
//! the token endpoint (goal 0).
//!
//! Not a criterion bench (the figure is a ratio within one run): `cargo bench
//! --bench refresh_stall` prints the same report as `--report`, which
//! `cargo xtask bench` reads. `--seconds N` and `--rate N` (calls/s) change
//! the load.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Server, ServerConfig};

/// How slow the token endpoint is.
const TOKEN_DELAY: Duration = Duration::from_millis(500);
/// Token lifetime the server grants, in seconds.
const TOKEN_LIFETIME: u64 = 3;
/// The client's refresh buffer.
const REFRESH_BUFFER: Duration = Duration::from_secs(2);
/// A call slower than this waited on the token endpoint.
const STALL: Duration = Duration::from_millis(400);
/// Default load: calls per second, and for how long.
const RATE: u64 = 1_000;
const SECONDS: u64 = 12;

fn main() {
    if support::serve_main() {
        return;
    }
    let seconds = support::arg("--seconds").unwrap_or(SECONDS).clamp(1, 600);
    let rate = support::arg("--rate").unwrap_or(RATE).clamp(1, 20_000);
    let report = run(seconds, rate);
    if support::report_mode() {
        support::emit(&report);
    } else {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }
}

/// One finished call: when it started and ended.
type Span = (Instant, Instant);

fn run(seconds: u64, rate: u64) -> serde_json::Value {
    let server = Server::start(ServerConfig {
        token_delay: TOKEN_DELAY,
        token_lifetime: TOKEN_LIFETIME,
        ..ServerConfig::default()
    });
    let client = sentryagent_idp::Client::builder()
        .base_url(server.origin())
        .client_id(support::CLIENT_ID)
        .client_secret(support::CLIENT_SECRET)
        .retry_policy(sentryagent_idp::RetryPolicy::disabled())
        .refresh_buffer(REFRESH_BUFFER)
        .build()
        .unwrap();
    let runtime = support::multi_thread_runtime();
    let id = support::agent_id();
    let calls: Arc<Mutex<Vec<Span>>> = Arc::default();
    let total = seconds * rate;
    let (load_started, load_ended) = runtime.block_on(async {
        // The first token (a cold, 500 ms fetch) is not part of the load.
        client.agents().get(id).send().await.unwrap();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(total as usize);
        for _ in 0..total {
            tick.tick().await;
            let (client, calls) = (client.clone(), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                let begun = Instant::now();
                client.agents().get(id).send().await.unwrap();
                calls.lock().unwrap().push((begun, Instant::now()));
            }));
        }
        let all = futures::future::join_all(tasks);
        for joined in tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .unwrap()
        {
            joined.unwrap();
        }
        (started, Instant::now())
    });
    let windows: Vec<Span> = server
        .stats
        .windows()
        .into_iter()
        .filter(|(arrived, _)| *arrived >= load_started && *arrived <= load_ended)
        .collect();
    let calls = calls.lock().unwrap().clone();
    let overlaps = |(begun, ended): &Span| windows.iter().any(|(a, b)| begun <= b && ended >= a);
    let (mut inside, mut outside): (Vec<Duration>, Vec<Duration>) = (vec![], vec![]);
    for call in &calls {
        let latency = call.1 - call.0;
        if overlaps(call) {
            inside.push(latency);
        } else {
            outside.push(latency);
        }
    }
    let stalled = calls.iter().filter(|(a, b)| *b - *a > STALL).count();
    let max = calls.iter().map(|(a, b)| *b - *a).max().unwrap_or_default();
    let (in_median, in_p99) = support::median_p99(&mut inside);
    let (out_median, out_p99) = support::median_p99(&mut outside);
    json!({
        "bench": "refresh_stall",
        "runtime": "tokio multi_thread (2 workers); server on its own thread",
        "token_delay_ms": TOKEN_DELAY.as_millis() as u64,
        "token_lifetime_s": TOKEN_LIFETIME,
        "refresh_buffer_s": REFRESH_BUFFER.as_secs(),
        "rate_per_s": rate,
        "seconds": seconds,
        "calls": calls.len(),
        "refresh_windows": windows.len(),
        "calls_during_refresh": inside.len(),
        "calls_outside": outside.len(),
        "during_median_us": support::micros(in_median),
        "during_p99_us": support::micros(in_p99),
        "outside_median_us": support::micros(out_median),
        "outside_p99_us": support::micros(out_p99),
        "p99_ratio": in_p99.as_secs_f64() / out_p99.as_secs_f64(),
        "calls_over_400ms": stalled,
        "max_latency_ms": max.as_secs_f64() * 1e3,
        "token_requests_total": server.stats.tokens(),
    })
}
