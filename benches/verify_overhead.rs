//! The verifier's costs, side by side in one run (`--report [--pairs N]
//! [--tokens N] [--trials N]`; without `--report` a short run prints the same
//! report):
//!
//! - **layer**: the same axum handler behind `VerifyLayer` in each mode
//!   (introspection, PEM, PEM with introspection at first sight, JWKS; every
//!   request a cache hit) and without it: five servers on one server thread,
//!   called over loopback in interleaved rounds (one request to each, the
//!   order rotating); median and p99 of each. Also the in-process cost of
//!   one request through each router and, with valgrind, the instructions
//!   per request of each (`--callgrind MODE --calls N`).
//! - **rs256**: the first sight of a token, local verifications per
//!   CPU-second: `Verifier::verify` (PEM mode, every token new so every call
//!   checks the header and the signature and fills the verdict cache) vs
//!   `jsonwebtoken::decode` into a claims struct on the same tokens, in
//!   alternating rounds.
//!   With valgrind, the instructions per token of each, counted inside the
//!   verifying loop only (`--first-sight ours|jsonwebtoken --tokens-file F`,
//!   the tokens signed beforehand by this process).
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

const PAIRS: usize = 5_000;
const TOKENS: usize = 2_000;
const ROUNDS: usize = 4;
const TRIALS: usize = 5;
/// The tokens counted per first-sight run under callgrind.
const FIRST_SIGHT_COUNTED: usize = 500;
const BURST: usize = 1_000;
const WARM_UP: usize = 500;
/// Each measurement stops here even if fewer iterations are done.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// The modes measured, by the names the report uses.
const MODES: [&str; 4] = ["introspection", "pem", "pem_first_sight", "jwks"];

fn main() {
    if let Some(calls) = support::arg::<u32>("--hit-loop") {
        hit_loop(calls);
        return;
    }
    if let Some(kind) = support::arg::<String>("--callgrind") {
        callgrind(&kind, support::arg("--calls").unwrap_or(2_000));
        return;
    }
    if let Some(kind) = support::arg::<String>("--first-sight") {
        let tokens = support::arg::<String>("--tokens-file").expect("--tokens-file");
        first_sight(&kind, std::path::Path::new(&tokens));
        return;
    }
    let quick = !support::report_mode();
    let pairs = support::arg("--pairs").unwrap_or(if quick { 1_000 } else { PAIRS });
    let tokens = support::arg("--tokens").unwrap_or(if quick { 500 } else { TOKENS });
    let trials = support::arg("--trials").unwrap_or(if quick { 2 } else { TRIALS });
    let runtime = support::multi_thread_runtime();
    let fake = runtime.block_on(start_fake());
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

/// The fake AgentIdP every part uses: hour-long tokens, discovery and JWKS.
async fn start_fake() -> FakeAgentIdp {
    FakeAgentIdp::builder()
        .token_lifetime(Duration::from_secs(3600))
        .oidc(true)
        .start()
        .await
        .unwrap()
}

/// The verifier of `mode` (one of [`MODES`]), verdicts kept an hour.
fn verifier(fake: &FakeAgentIdp, mode: &str) -> Verifier {
    let service = || fake.client_builder().build().unwrap();
    let builder = match mode {
        "introspection" => Verifier::introspection(service()),
        "pem" => Verifier::public_key_pem(fake.public_key_pem()).unwrap(),
        "pem_first_sight" => Verifier::public_key_pem(fake.public_key_pem())
            .unwrap()
            .introspect_first_sight(service()),
        "jwks" => Verifier::jwks(&fake.base_url()).unwrap(),
        other => panic!("no mode {other}"),
    };
    builder.max_age(Duration::from_secs(3600)).build().unwrap()
}

/// `--hit-loop N`: N cache hits of the introspection verifier and nothing
/// else measured, for a profiler (`perf record`, `valgrind --tool=callgrind`).
fn hit_loop(calls: u32) {
    let runtime = support::current_thread_runtime();
    runtime.block_on(async {
        let fake = start_fake().await;
        let verifier = verifier(&fake, "introspection");
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

/// `--callgrind MODE --calls N`: N requests in process through the router
/// of `MODE` (one of [`MODES`], a cache hit each) or `plain` (no layer), for
/// `support::instructions_per_call`.
fn callgrind(kind: &str, calls: usize) {
    let runtime = support::current_thread_runtime();
    runtime.block_on(async {
        let fake = start_fake().await;
        let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
        let bearer = format!("Bearer {}", fake.sign_claims(claims(agent)));
        let router = if kind == "plain" {
            plain_router()
        } else {
            protected_router(verifier(&fake, kind))
        };
        for _ in 0..=calls {
            std::hint::black_box(through(&router, &bearer).await);
        }
    });
}

async fn hello(agent: AgentPrincipal) -> String {
    agent.agent_id.to_string()
}

async fn hello_plain() -> String {
    support::AGENT_ID.to_owned()
}

fn protected_router(verifier: Verifier) -> Router {
    Router::new()
        .route("/hello", get(hello))
        .layer(VerifyLayer::new(verifier))
}

fn plain_router() -> Router {
    Router::new().route("/hello", get(hello_plain))
}

/// One request through `router` in process, its body read.
async fn through(router: &Router, bearer: &str) -> axum::body::Bytes {
    let request = http::Request::get("/hello")
        .header("authorization", bearer)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap()
}

fn claims(agent: uuid::Uuid) -> serde_json::Value {
    token_claims(agent, "agents:read", Duration::from_secs(3600))
}

fn layer(
    runtime: &tokio::runtime::Runtime,
    fake: &FakeAgentIdp,
    pairs: usize,
) -> serde_json::Value {
    let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let token = fake.sign_claims(claims(agent));
    let bearer = format!("Bearer {token}");
    let verifiers: Vec<Verifier> = MODES.iter().map(|mode| verifier(fake, mode)).collect();

    // In-process: one cache hit of each verifier, then one request through
    // each router, no network.
    let mut headers = HeaderMap::new();
    headers.insert("authorization", bearer.parse().unwrap());
    let hit_ns: Vec<f64> = verifiers
        .iter()
        .map(|verifier| {
            runtime.block_on(async {
                verifier.verify_request_headers(&headers).await.unwrap();
                let n = 100_000u32;
                let started = Instant::now();
                for _ in 0..n {
                    std::hint::black_box(verifier.verify_request_headers(&headers).await.unwrap());
                }
                started.elapsed().as_nanos() as f64 / f64::from(n)
            })
        })
        .collect();
    let routers: Vec<Router> = std::iter::once(plain_router())
        .chain(verifiers.iter().cloned().map(protected_router))
        .collect();
    let router_ns: Vec<f64> = routers
        .iter()
        .map(|router| {
            runtime.block_on(async {
                let n = 50_000u32;
                let started = Instant::now();
                for _ in 0..n {
                    std::hint::black_box(through(router, &bearer).await);
                }
                started.elapsed().as_nanos() as f64 / f64::from(n)
            })
        })
        .collect();

    // Over loopback: the five servers on one thread of their own.
    let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = routers.clone();
    let server = std::thread::spawn(move || {
        let rt = support::current_thread_runtime();
        rt.block_on(async move {
            let mut addrs = Vec::new();
            let mut serving = tokio::task::JoinSet::new();
            for router in served {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addrs.push(listener.local_addr().unwrap());
                serving.spawn(async move { axum::serve(listener, router).await });
            }
            addrs_tx.send(addrs).unwrap();
            tokio::select! {
                _ = serving.join_next() => {}
                _ = stop_rx => {}
                _ = tokio::time::sleep(support::MAX_SERVER_LIFETIME) => {}
            }
        });
    });
    let addrs = addrs_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let client_rt = support::current_thread_runtime();
    let http = support::http_client();
    let samples = client_rt.block_on(async {
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
        let mut samples = vec![Vec::with_capacity(pairs); addrs.len()];
        let deadline = Instant::now() + TIME_LIMIT;
        for round in 0..WARM_UP + pairs {
            if Instant::now() > deadline {
                break;
            }
            // One request to each server, starting one further each round,
            // so none always follows another.
            for k in 0..addrs.len() {
                let which = (round + k) % addrs.len();
                let started = Instant::now();
                call(addrs[which]).await;
                if round >= WARM_UP {
                    samples[which].push(started.elapsed());
                }
            }
        }
        samples
    });
    let _ = stop_tx.send(());
    server.join().unwrap();
    let mut samples = samples.into_iter();
    let mut without = samples.next().unwrap_or_default();
    let without_summary = support::latency_summary(&mut without);
    let mut modes = serde_json::Map::new();
    for (i, (mode, mut with)) in MODES.iter().zip(samples).enumerate() {
        modes.insert(
            (*mode).to_owned(),
            json!({
                "with": support::latency_summary(&mut with),
                "cache_hit_ns": hit_ns[i],
                "router_ns": router_ns[i + 1],
            }),
        );
    }
    let mut kinds = vec!["plain"];
    kinds.extend(MODES);
    json!({
        "pairs": without.len(),
        "without": without_summary,
        "router_without_ns": router_ns[0],
        "modes": modes,
        "instructions_per_request": support::instructions_per_call(&kinds),
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
    // The fake's tokens carry a `kid`; the PEM mode ignores it.
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
        "instructions_per_token": first_sight_instructions(&pem, &rounds[0]),
    })
}

/// Instructions per first sight, ours and `jsonwebtoken::decode`'s, counted
/// by callgrind inside [`counted`] only (so neither the signing nor the
/// setup counts): `null` without valgrind.
fn first_sight_instructions(pem: &str, tokens: &[String]) -> serde_json::Value {
    let tokens = &tokens[..tokens.len().min(FIRST_SIGHT_COUNTED)];
    let file = std::env::temp_dir().join(format!(
        "sentryagent-first-sight-{}.json",
        std::process::id()
    ));
    std::fs::write(&file, json!({"pem": pem, "tokens": tokens}).to_string()).unwrap();
    let path = file.display().to_string();
    let count = |kind: &str| {
        support::callgrind_collected(
            &["--collect-atstart=no", "--toggle-collect=*counted*"],
            &["--first-sight", kind, "--tokens-file", &path],
        )
        // The first token is the warm-up, not counted.
        .map(|n| n / (tokens.len() - 1) as f64)
    };
    let counts = (count("ours"), count("jsonwebtoken"));
    let _ = std::fs::remove_file(&file);
    match counts {
        (Some(ours), Some(theirs)) => {
            json!({"ours": ours, "jsonwebtoken": theirs, "tokens": tokens.len() - 1})
        }
        _ => serde_json::Value::Null,
    }
}

/// `--first-sight KIND --tokens-file F`: each token of `F` verified once,
/// by the PEM verifier (`ours`) or by `jsonwebtoken::decode`, inside
/// [`counted`], after one warm-up token outside it.
fn first_sight(kind: &str, file: &std::path::Path) {
    let input: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    let pem = input["pem"].as_str().unwrap();
    let tokens: Vec<String> = serde_json::from_value(input["tokens"].clone()).unwrap();
    let (warm_up, tokens) = tokens.split_first().unwrap();
    let rt = support::current_thread_runtime();
    match kind {
        "ours" => {
            let verifier = Verifier::public_key_pem(pem)
                .unwrap()
                .capacity(tokens.len() as u64 + 1)
                .build()
                .unwrap();
            rt.block_on(verifier.verify(warm_up)).unwrap();
            counted(|| {
                rt.block_on(async {
                    for token in tokens {
                        std::hint::black_box(verifier.verify(token).await.unwrap());
                    }
                })
            });
        }
        "jsonwebtoken" => {
            let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
            let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
            let decode =
                |token: &String| jsonwebtoken::decode::<Claims>(token, &key, &validation).unwrap();
            decode(warm_up);
            counted(|| {
                for token in tokens {
                    std::hint::black_box(decode(token));
                }
            });
        }
        other => panic!("no first-sight kind {other}"),
    }
}

/// What callgrind counts in `--first-sight` runs (`--toggle-collect`).
#[inline(never)]
fn counted<T>(f: impl FnOnce() -> T) -> T {
    f()
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
