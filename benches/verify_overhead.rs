//! The verifier's costs, side by side in one run (`--report [--pairs N]
//! [--tokens N] [--trials N]`; without `--report` a short run prints the same
//! report):
//!
//! - **layer**: the same axum handler behind `VerifyLayer` (introspection
//!   mode, cache hit) and without it, two servers on one server thread,
//!   called over loopback in interleaved pairs (order alternating); median
//!   and p99 of each. Also the in-process cost of one cache hit.
//! - **rs256**: local verifications per CPU-second, `Verifier::verify` (PEM
//!   mode, every token new so every call verifies the signature and fills
//!   the cache) vs `jsonwebtoken::decode` into a claims struct on the same
//!   tokens, in alternating rounds.
//! - **burst**: 1,000 concurrent `verify` calls bearing one new token, per
//!   trial: the introspections the fake AgentIdP saw.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use sentryagent_idp::Operation;
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp, token_claims};
use sentryagent_idp::verify::{AgentPrincipal, Verifier, VerifyLayer};
use serde_json::json;
use tower::ServiceExt;

const PAIRS: usize = 20_000;
const TOKENS: usize = 2_000;
const ROUNDS: usize = 4;
const TRIALS: usize = 5;
const BURST: usize = 1_000;
const WARM_UP: usize = 1_000;
/// Each measurement stops here even if fewer iterations are done.
const TIME_LIMIT: Duration = Duration::from_secs(120);

fn main() {
    if let Some(calls) = support::arg::<u32>("--hit-loop") {
        hit_loop(calls);
        return;
    }
    let quick = !support::report_mode();
    let pairs = support::arg("--pairs").unwrap_or(if quick { 2_000 } else { PAIRS });
    let tokens = support::arg("--tokens").unwrap_or(if quick { 500 } else { TOKENS });
    let trials = support::arg("--trials").unwrap_or(if quick { 2 } else { TRIALS });
    let runtime = support::multi_thread_runtime();
    let fake = runtime.block_on(async {
        FakeAgentIdp::builder()
            .token_lifetime(Duration::from_secs(3600))
            .start()
            .await
            .unwrap()
    });
    let layer = layer(&runtime, &fake, pairs);
    let rs256 = rs256(&fake, tokens);
    let burst = burst(&runtime, &fake, trials);
    support::emit(&json!({
        "bench": "verify_overhead",
        "layer": layer,
        "rs256": rs256,
        "burst": burst,
    }));
}

/// `--hit-loop N`: N cache hits of the introspection verifier and nothing
/// else measured, for a profiler (`perf record`, `valgrind --tool=callgrind`).
fn hit_loop(calls: u32) {
    let runtime = support::current_thread_runtime();
    runtime.block_on(async {
        let fake = FakeAgentIdp::start().await.unwrap();
        let verifier = Verifier::introspection(fake.client_builder().build().unwrap())
            .max_age(Duration::from_secs(3600))
            .build()
            .unwrap();
        let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
        let mut headers = HeaderMap::new();
        let bearer = format!("Bearer {}", fake.sign_claims(claims(agent)));
        headers.insert("authorization", bearer.parse().unwrap());
        verifier.verify_request_headers(&headers).await.unwrap();
        for _ in 0..calls {
            std::hint::black_box(verifier.verify_request_headers(&headers).await.unwrap());
        }
    });
}

async fn hello(agent: AgentPrincipal) -> String {
    agent.agent_id.to_string()
}

async fn hello_plain() -> String {
    support::AGENT_ID.to_owned()
}

fn claims(agent: uuid::Uuid) -> serde_json::Value {
    token_claims(agent, "agents:read", Duration::from_secs(3600))
}

fn layer(
    runtime: &tokio::runtime::Runtime,
    fake: &FakeAgentIdp,
    pairs: usize,
) -> serde_json::Value {
    let service = fake.client_builder().build().unwrap();
    let verifier = Verifier::introspection(service)
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let token = fake.sign_claims(claims(agent));

    // In-process: one cache hit.
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let hit_ns = runtime.block_on(async {
        verifier.verify_request_headers(&headers).await.unwrap();
        let n = 100_000u32;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(verifier.verify_request_headers(&headers).await.unwrap());
        }
        started.elapsed().as_nanos() as f64 / f64::from(n)
    });

    // Over loopback: two servers on one thread of their own.
    let protected = Router::new()
        .route("/hello", get(hello))
        .layer(VerifyLayer::new(verifier));
    let plain = Router::new().route("/hello", get(hello_plain));

    // In-process: one request through each router, no network.
    let in_process = |router: &Router| {
        let router = router.clone();
        let bearer = format!("Bearer {token}");
        runtime.block_on(async move {
            let n = 50_000u32;
            let started = Instant::now();
            for _ in 0..n {
                let request = http::Request::get("/hello")
                    .header("authorization", &bearer)
                    .body(axum::body::Body::empty())
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert!(response.status().is_success());
                let body = axum::body::to_bytes(response.into_body(), 1024).await;
                std::hint::black_box(body.unwrap());
            }
            started.elapsed().as_nanos() as f64 / f64::from(n)
        })
    };
    let (router_with_ns, router_without_ns) = (in_process(&protected), in_process(&plain));
    let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = support::current_thread_runtime();
        rt.block_on(async move {
            let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs_tx
                .send((a.local_addr().unwrap(), b.local_addr().unwrap()))
                .unwrap();
            let serve_a = axum::serve(a, protected);
            let serve_b = axum::serve(b, plain);
            tokio::select! {
                _ = serve_a => {}
                _ = serve_b => {}
                _ = stop_rx => {}
                _ = tokio::time::sleep(support::MAX_SERVER_LIFETIME) => {}
            }
        });
    });
    let (with_addr, without_addr) = addrs_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let client_rt = support::current_thread_runtime();
    let http = support::http_client();
    let bearer = format!("Bearer {token}");
    let call = |addr: std::net::SocketAddr| {
        let request = http
            .get(format!("http://{addr}/hello"))
            .header("authorization", &bearer);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.unwrap();
        }
    };
    let (mut with, mut without) = client_rt.block_on(support::interleaved(
        pairs,
        WARM_UP,
        TIME_LIMIT,
        || call(with_addr),
        || call(without_addr),
    ));
    let _ = stop_tx.send(());
    server.join().unwrap();
    json!({
        "pairs": with.len(),
        "with": support::latency_summary(&mut with),
        "without": support::latency_summary(&mut without),
        "cache_hit_ns": hit_ns,
        "router_with_ns": router_with_ns,
        "router_without_ns": router_without_ns,
    })
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    client_id: String,
    scope: String,
    jti: String,
    exp: i64,
    iat: i64,
}

fn rs256(fake: &FakeAgentIdp, tokens: usize) -> serde_json::Value {
    let agent = fake.seed_agent(AgentSeed::new());
    let rounds: Vec<Vec<String>> = (0..ROUNDS)
        .map(|_| {
            (0..tokens)
                .map(|_| fake.sign_claims(claims(agent)))
                .collect()
        })
        .collect();
    let pem = fake.public_key_pem();
    let verifier = Verifier::public_key_pem(&pem)
        .unwrap()
        .capacity((tokens * ROUNDS) as u64 + 1)
        .build()
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let rt = support::current_thread_runtime();
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let (mut ours_n, mut theirs_n) = (0usize, 0usize);
    for (round, batch) in rounds.iter().enumerate() {
        let mut run_ours = || {
            let started = support::process_cpu();
            rt.block_on(async {
                for token in batch {
                    std::hint::black_box(verifier.verify(token).await.unwrap());
                }
            });
            ours += support::process_cpu() - started;
            ours_n += batch.len();
        };
        let mut run_theirs = || {
            let started = support::process_cpu();
            for token in batch {
                std::hint::black_box(
                    jsonwebtoken::decode::<Claims>(token, &key, &validation).unwrap(),
                );
            }
            theirs += support::process_cpu() - started;
            theirs_n += batch.len();
        };
        if round % 2 == 0 {
            run_ours();
            run_theirs();
        } else {
            run_theirs();
            run_ours();
        }
    }
    json!({
        "tokens": ours_n,
        "ours_per_cpu_s": ours_n as f64 / ours.as_secs_f64(),
        "jsonwebtoken_per_cpu_s": theirs_n as f64 / theirs.as_secs_f64(),
    })
}

fn burst(
    runtime: &tokio::runtime::Runtime,
    fake: &FakeAgentIdp,
    trials: usize,
) -> serde_json::Value {
    let service = fake.client_builder().build().unwrap();
    let verifier = Verifier::introspection(service).build().unwrap();
    let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let per_trial: Vec<usize> = (0..trials)
        .map(|_| {
            let token = fake.sign_claims(claims(agent));
            let before = fake.requests_seen(Operation::IntrospectToken);
            runtime.block_on(async {
                let calls = (0..BURST).map(|_| {
                    let (verifier, token) = (verifier.clone(), token.clone());
                    tokio::spawn(async move { verifier.verify(&token).await.is_ok() })
                });
                let results = futures::future::join_all(calls).await;
                assert!(
                    results.into_iter().all(|r| r.unwrap()),
                    "every call verified"
                );
            });
            fake.requests_seen(Operation::IntrospectToken) - before
        })
        .collect();
    json!({"burst": BURST, "introspections_per_trial": per_trial})
}
