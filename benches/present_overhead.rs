//! The outgoing middleware's cost.
//!
//! - `--report [--pairs N]` (without `--report`, a short run prints the same
//!   report): `GET /api/v1/agents/{id}` on the bench server, over loopback,
//!   through `reqwest_middleware` with [`OutgoingAuth`] (the token from the
//!   SDK's cache, the origin checked, the answer inspected for a refused
//!   token) and through plain reqwest with a fixed `Authorization` header,
//!   on one shared `reqwest::Client`, in interleaved pairs (order
//!   alternating) on a current-thread runtime; the server has its own
//!   thread. Median and p99 of each. A second pass pairs plain reqwest with
//!   an empty `reqwest_middleware` chain and the fixed header, which tells
//!   reqwest-middleware's own cost from ours. Then client instructions per
//!   call of the three, counted by callgrind when valgrind is installed.
//! - `--callgrind middleware|empty|plain [--calls N]`: N calls of one kind
//!   only, against a server in a child process, for `valgrind
//!   --tool=callgrind`.

mod support;

use std::time::Duration;

use reqwest_middleware::ClientWithMiddleware;
use sentryagent_idp::present::OutgoingAuth;
use serde_json::json;
use support::{Server, ServerConfig, ServerProcess};

const PAIRS: usize = 20_000;
const WARM_UP: usize = 1_000;
/// The measurement stops here even if fewer pairs are done.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// The three ways of making the call.
struct Callers {
    url: String,
    http: reqwest::Client,
    with: ClientWithMiddleware,
    empty: ClientWithMiddleware,
}

impl Callers {
    fn new(origin: &str) -> Callers {
        let http = support::http_client();
        let client = support::facade_on(origin);
        let auth = OutgoingAuth::builder(&client)
            .allow_origin(origin)
            .build()
            .unwrap();
        Callers {
            url: format!("{origin}/api/v1/agents/{}", support::AGENT_ID),
            with: reqwest_middleware::ClientBuilder::new(http.clone())
                .with(auth)
                .build(),
            empty: reqwest_middleware::ClientBuilder::new(http.clone()).build(),
            http,
        }
    }

    async fn middleware(&self) {
        chain_call(self.with.get(&self.url)).await
    }

    async fn empty(&self) {
        chain_call(self.empty.get(&self.url).bearer_auth(support::STATIC_TOKEN)).await
    }

    async fn plain(&self) {
        let request = self.http.get(&self.url).bearer_auth(support::STATIC_TOKEN);
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        std::hint::black_box(response.bytes().await.unwrap());
    }

    async fn call(&self, kind: &str) {
        match kind {
            "middleware" => self.middleware().await,
            "empty" => self.empty().await,
            "plain" => self.plain().await,
            other => panic!("--callgrind takes middleware, empty or plain, not {other}"),
        }
    }
}

async fn chain_call(request: reqwest_middleware::RequestBuilder) {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    std::hint::black_box(response.bytes().await.unwrap());
}

fn main() {
    if support::serve_main() {
        return;
    }
    if let Some(kind) = support::arg::<String>("--callgrind") {
        callgrind(&kind, support::arg("--calls").unwrap_or(2_000));
        return;
    }
    let quick = !support::report_mode();
    let pairs = support::arg("--pairs").unwrap_or(if quick { 2_000 } else { PAIRS });
    let server = Server::start(ServerConfig::default());
    let callers = Callers::new(&server.origin());
    let runtime = support::current_thread_runtime();
    let (mut through, mut direct) = runtime.block_on(support::interleaved(
        pairs,
        WARM_UP,
        TIME_LIMIT,
        || callers.middleware(),
        || callers.plain(),
    ));
    let (mut chain, mut direct_again) = runtime.block_on(support::interleaved(
        pairs,
        WARM_UP,
        TIME_LIMIT,
        || callers.empty(),
        || callers.plain(),
    ));
    support::emit(&json!({
        "bench": "present_overhead",
        "pairs": through.len(),
        "middleware": support::latency_summary(&mut through),
        "plain": support::latency_summary(&mut direct),
        "empty_chain": support::latency_summary(&mut chain),
        "plain_again": support::latency_summary(&mut direct_again),
        "token_requests": server.stats.tokens(),
        "instructions_per_call": support::instructions_per_call(&["middleware", "empty", "plain"]),
    }));
}

/// `calls` calls of one kind, the server in a child process so that only
/// the client's instructions are counted.
fn callgrind(kind: &str, calls: usize) {
    let server = ServerProcess::spawn(ServerConfig::default());
    let callers = Callers::new(&server.origin());
    support::current_thread_runtime().block_on(async {
        callers.call(kind).await; // the connection and the token
        for _ in 0..calls {
            callers.call(kind).await;
        }
    });
}
