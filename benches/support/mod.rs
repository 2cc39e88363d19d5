//! What the benchmarks share: a fast, minimal AgentIdP on loopback (hyper 1),
//! the clients under test built the same way in every bench, latency
//! statistics, a per-thread counting allocator, CPU and RSS readings, and the
//! `--report` plumbing that `cargo xtask bench` uses.
//!
//! The server answers two routes only:
//! - `POST /api/v1/token`: counts the request, waits `token_delay`, and issues
//!   `bench-token-<n>` for `token_lifetime` seconds with the four documented
//!   scopes;
//! - `GET /api/v1/agents/{id}`: checks for a bearer token, waits
//!   `agent_delay`, and answers the spec's example `Agent` (a fixed body).
//!
//! It runs either in-process, on its own thread with its own single-threaded
//! runtime ([`Server::start`]), or as a child process ([`ServerProcess::spawn`],
//! the bench binary re-run with `--serve`) when the client's CPU time or RSS is
//! measured and the server's must not count.
//!
//! Every loop here is bounded: the accept loop by a shutdown signal and a
//! lifetime ([`MAX_SERVER_LIFETIME`]), the measurement loops by a count and a
//! deadline.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sentryagent_idp::{Client, RetryPolicy};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

/// The agent every `GET /agents/{id}` asks for (the spec's example id).
pub const AGENT_ID: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

/// The client id the benches authenticate with.
pub const CLIENT_ID: &str = AGENT_ID;

/// The client secret the benches authenticate with (the server accepts any).
pub const CLIENT_SECRET: &str = "sk_live_0123456789abcdef0123456789abcdef";

/// The fixed bearer token of the hand-written reqwest baseline.
pub const STATIC_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhMWIyIn0.c2ln";

/// The spec's example `Agent` (`openapi/agentidp.yaml`, `components.examples.Agent`).
pub const AGENT_JSON: &str = r#"{"agentId":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","email":"screener-001@myproject.ai","agentType":"screener","version":"1.0.0","capabilities":["resume:read","candidate:score"],"owner":"platform-team","deploymentEnv":"production","status":"active","createdAt":"2026-03-28T09:00:00.000Z","updatedAt":"2026-03-28T09:00:00.000Z"}"#;

/// The scopes every issued token grants: the four documented ones.
pub const GRANTED_SCOPES: &str = "agents:read agents:write tokens:read audit:read";

/// A server stops by itself after this long, whatever happens to its owner.
pub const MAX_SERVER_LIFETIME: Duration = Duration::from_secs(20 * 60);

/// The listen backlog; the kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 65_535;

/// At most this many token windows are recorded.
const MAX_WINDOWS: usize = 100_000;

/// How the server behaves.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// How long `POST /token` waits before answering.
    pub token_delay: Duration,
    /// How long `GET /agents/{id}` waits before answering.
    pub agent_delay: Duration,
    /// The `expires_in` of issued tokens, in seconds.
    pub token_lifetime: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token_delay: Duration::ZERO,
            agent_delay: Duration::ZERO,
            token_lifetime: 3600,
        }
    }
}

/// What the server saw.
#[derive(Default, Debug)]
pub struct Stats {
    /// `POST /token` requests received.
    pub token_requests: AtomicU64,
    /// `GET /agents/{id}` requests received.
    pub agent_requests: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// When each token request arrived and when its answer was sent.
    pub token_windows: Mutex<Vec<(Instant, Instant)>>,
}

impl Stats {
    /// The token requests received so far.
    pub fn tokens(&self) -> u64 {
        self.token_requests.load(Ordering::SeqCst)
    }

    /// The agent requests received so far.
    pub fn agents(&self) -> u64 {
        self.agent_requests.load(Ordering::SeqCst)
    }

    /// The recorded token windows.
    pub fn windows(&self) -> Vec<(Instant, Instant)> {
        self.token_windows.lock().unwrap().clone()
    }
}

/// The server in this process, on its own thread.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it saw.
    pub stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts a server on `127.0.0.1:0` on a new thread with a
    /// single-threaded runtime, so it takes at most one core.
    pub fn start(config: ServerConfig) -> Server {
        let stats = Arc::new(Stats::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown, stop) = oneshot::channel();
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = listen().await;
                    addr_tx.send(listener.local_addr().unwrap()).unwrap();
                    serve(listener, config, thread_stats, stop).await;
                });
            })
            .unwrap();
        let addr = addr_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        Server {
            addr,
            stats,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The origin to give the SDK, e.g. `http://127.0.0.1:40000`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `127.0.0.1:0` with a long backlog, for connection storms.
async fn listen() -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(BACKLOG).unwrap()
}

/// Accepts connections until `stop` fires or [`MAX_SERVER_LIFETIME`] passes.
async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    stats: Arc<Stats>,
    mut stop: oneshot::Receiver<()>,
) {
    let deadline = tokio::time::sleep(MAX_SERVER_LIFETIME);
    tokio::pin!(deadline);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // EMFILE and the like: back off briefly rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
            () = &mut deadline => return,
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, config, Arc::clone(&stats)));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = Full<Bytes>;

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn handle(
    request: Request<Incoming>,
    config: ServerConfig,
    stats: Arc<Stats>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    if request.method() == Method::POST && path == "/api/v1/token" {
        let arrived = Instant::now();
        let n = stats.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        // Read the form, as a real server would.
        let _ = request.into_body().collect().await;
        if !config.token_delay.is_zero() {
            tokio::time::sleep(config.token_delay).await;
        }
        let body = format!(
            r#"{{"access_token":"bench-token-{n}","token_type":"Bearer","expires_in":{},"scope":"{GRANTED_SCOPES}"}}"#,
            config.token_lifetime
        );
        let mut response = json(StatusCode::OK, Bytes::from(body));
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let mut windows = stats.token_windows.lock().unwrap();
        if windows.len() < MAX_WINDOWS {
            windows.push((arrived, Instant::now()));
        }
        return Ok(response);
    }
    if request.method() == Method::GET && path.starts_with("/api/v1/agents/") {
        let bearer = request
            .headers()
            .get(AUTHORIZATION)
            .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
        if !bearer {
            return Ok(json(
                StatusCode::UNAUTHORIZED,
                Bytes::from_static(br#"{"code":"UNAUTHORIZED","message":"Bearer token missing."}"#),
            ));
        }
        stats.agent_requests.fetch_add(1, Ordering::Relaxed);
        if !config.agent_delay.is_zero() {
            tokio::time::sleep(config.agent_delay).await;
        }
        return Ok(json(
            StatusCode::OK,
            Bytes::from_static(AGENT_JSON.as_bytes()),
        ));
    }
    if request.method() == Method::GET && path == "/__stats" {
        let body = format!(
            r#"{{"token_requests":{},"agent_requests":{},"connections":{}}}"#,
            stats.tokens(),
            stats.agents(),
            stats.connections.load(Ordering::Relaxed)
        );
        return Ok(json(StatusCode::OK, Bytes::from(body)));
    }
    Ok(json(
        StatusCode::NOT_FOUND,
        Bytes::from_static(br#"{"code":"NOT_FOUND","message":"No such route."}"#),
    ))
}

// ---------------------------------------------------------------------------
// The server as a child process.

/// The flag that makes a bench binary run only the server (see [`serve_main`]).
pub const SERVE_FLAG: &str = "--serve";

/// If the process was started with [`SERVE_FLAG`], runs the server until its
/// standard input closes (the parent went away) or [`MAX_SERVER_LIFETIME`]
/// passes, then returns `true`; otherwise returns `false` at once.
///
/// Flags after `--serve`: `--token-delay-ms N`, `--agent-delay-ms N`,
/// `--token-lifetime S`. The first line printed is `listening <addr>`.
pub fn serve_main() -> bool {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == SERVE_FLAG) {
        return false;
    }
    let mut config = ServerConfig::default();
    let number = |name: &str| -> Option<u64> {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)?.parse().ok()
    };
    if let Some(ms) = number("--token-delay-ms") {
        config.token_delay = Duration::from_millis(ms);
    }
    if let Some(ms) = number("--agent-delay-ms") {
        config.agent_delay = Duration::from_millis(ms);
    }
    if let Some(s) = number("--token-lifetime") {
        config.token_lifetime = s;
    }
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = listen().await;
        println!("listening {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let (stop_tx, stop) = oneshot::channel();
        // Stdin reaches EOF when the parent drops its end or dies.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            let _ = stop_tx.send(());
        });
        serve(listener, config, Arc::new(Stats::default()), stop).await;
    });
    true
}

/// A server running in a child process (this bench binary with `--serve`).
pub struct ServerProcess {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts `current_exe --serve …` and waits for its address.
    pub fn spawn(config: ServerConfig) -> ServerProcess {
        let exe = std::env::current_exe().unwrap();
        Self::spawn_exe(&exe, config)
    }

    /// Starts `exe --serve …` and waits for its address.
    pub fn spawn_exe(exe: &std::path::Path, config: ServerConfig) -> ServerProcess {
        let mut child = Command::new(exe)
            .arg(SERVE_FLAG)
            .args([
                "--token-delay-ms",
                &config.token_delay.as_millis().to_string(),
            ])
            .args([
                "--agent-delay-ms",
                &config.agent_delay.as_millis().to_string(),
            ])
            .args(["--token-lifetime", &config.token_lifetime.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected server output: {line:?}"))
            .parse()
            .unwrap();
        let stdin = child.stdin.take();
        ServerProcess { addr, child, stdin }
    }

    /// The origin to give the SDK.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin asks the child to stop; give it a moment, then kill
        // this child (ours, by its handle).
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The clients under test.

/// The SDK client the benches measure: defaults, except retries off so a
/// failure shows instead of hiding in a retry (none happen in a healthy run).
pub fn facade(origin: &str) -> Client {
    Client::builder()
        .base_url(origin)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap()
}

/// The facade on an HTTP client set up as the hand-written baseline's (its
/// own pool: the SDK takes a builder, so it can forbid redirects).
pub fn facade_on(origin: &str) -> Client {
    Client::builder()
        .base_url(origin)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(RetryPolicy::disabled())
        .http_client(http_client_builder())
        .build()
        .unwrap()
}

/// A `reqwest::Client` with the SDK's default settings (connect timeout
/// 10 s, its user agent, no redirects; reqwest's default pool).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().unwrap()
}

/// The builder of [`http_client`].
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(sentryagent_idp::DEFAULT_CONNECT_TIMEOUT)
        .user_agent(concat!("sentryagent-idp-rust/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
}

/// The hand-written baseline: what a careful user writes with reqwest alone.
#[derive(Clone)]
pub struct RawClient {
    http: reqwest::Client,
    url: String,
    bearer: HeaderValue,
}

impl RawClient {
    /// A baseline for `origin`, sending [`STATIC_TOKEN`].
    pub fn new(origin: &str, http: reqwest::Client) -> RawClient {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {STATIC_TOKEN}")).unwrap();
        bearer.set_sensitive(true);
        RawClient {
            http,
            url: format!("{origin}/api/v1/agents/"),
            bearer,
        }
    }

    /// `GET /api/v1/agents/{id}` with the fixed bearer token and the SDK's
    /// per-attempt timeout, decoded into the same `Agent` type.
    pub async fn get_agent(
        &self,
        id: uuid::Uuid,
    ) -> Result<sentryagent_idp::model::Agent, reqwest::Error> {
        self.http
            .get(format!("{}{id}", self.url))
            .header(AUTHORIZATION, self.bearer.clone())
            .header(
                hyper::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )
            .timeout(sentryagent_idp::DEFAULT_TIMEOUT)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }
}

/// The same request as [`RawClient`], built and decoded the way the code
/// progenitor generates for `get_agent` does (`generated/client.rs`): the URL
/// through `encode_path`, the `api-version` and `Accept` headers in a header
/// map, `build()`, the status matched, the headers copied into the answer,
/// the body read whole and decoded. The facade minus this is the seam's own
/// cost; this minus [`RawClient`] is what the generated code costs.
pub struct GeneratedShape {
    raw: RawClient,
    base: String,
}

impl GeneratedShape {
    /// The baseline for `origin`.
    pub fn new(origin: &str, http: reqwest::Client) -> GeneratedShape {
        GeneratedShape {
            raw: RawClient::new(origin, http),
            base: format!("{origin}/api/v1"),
        }
    }

    /// `GET /api/v1/agents/{id}`, the generated code's way.
    pub async fn get_agent(
        &self,
        id: uuid::Uuid,
    ) -> Result<(sentryagent_idp::model::Agent, hyper::HeaderMap), Box<dyn std::error::Error>> {
        let url = format!(
            "{}/agents/{}",
            self.base,
            progenitor_client::encode_path(&id.to_string())
        );
        let mut header_map = hyper::HeaderMap::with_capacity(1);
        header_map.append(
            hyper::header::HeaderName::from_static("api-version"),
            HeaderValue::from_static("1.0.0"),
        );
        let mut request = self
            .raw
            .http
            .get(url)
            .header(
                hyper::header::ACCEPT,
                HeaderValue::from_static("application/json"),
            )
            .headers(header_map)
            .build()?;
        *request.timeout_mut() = Some(sentryagent_idp::DEFAULT_TIMEOUT);
        request
            .headers_mut()
            .insert(AUTHORIZATION, self.raw.bearer.clone());
        let response = self.raw.http.execute(request).await?;
        match response.status().as_u16() {
            200..=299 => {
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok((serde_json::from_slice(&body)?, headers))
            }
            status => Err(format!("status {status}").into()),
        }
    }
}

/// The agent id as a `Uuid`.
pub fn agent_id() -> uuid::Uuid {
    AGENT_ID.parse().unwrap()
}

// ---------------------------------------------------------------------------
// Statistics.

/// The `q` quantile (0..=1) of `sorted` by nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and p99 of `samples`.
pub fn median_p99(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    (quantile(samples, 0.5), quantile(samples, 0.99))
}

/// Runs `a` and `b` one after the other `pairs` times (after `warm_up`
/// unmeasured pairs), the order alternating so neither always follows the
/// other, stopping at `limit`; returns the latencies of each.
pub async fn interleaved<A, B, FA, FB>(
    pairs: usize,
    warm_up: usize,
    limit: Duration,
    mut a: A,
    mut b: B,
) -> (Vec<Duration>, Vec<Duration>)
where
    A: FnMut() -> FA,
    B: FnMut() -> FB,
    FA: std::future::Future<Output = ()>,
    FB: std::future::Future<Output = ()>,
{
    for _ in 0..warm_up {
        a().await;
        b().await;
    }
    let (mut first, mut second) = (Vec::with_capacity(pairs), Vec::with_capacity(pairs));
    let deadline = Instant::now() + limit;
    for i in 0..pairs {
        if Instant::now() > deadline {
            break;
        }
        for a_now in [i % 2 == 0, i % 2 == 1] {
            let started = Instant::now();
            if a_now {
                a().await;
                first.push(started.elapsed());
            } else {
                b().await;
                second.push(started.elapsed());
            }
        }
    }
    (first, second)
}

/// `{"median_us", "p99_us"}` of `samples`.
pub fn latency_summary(samples: &mut [Duration]) -> serde_json::Value {
    let (median, p99) = median_p99(samples);
    serde_json::json!({"median_us": micros(median), "p99_us": micros(p99)})
}

/// Client instructions per call of each of `kinds`, counted by callgrind:
/// this bench's executable run under `valgrind --tool=callgrind` with
/// `--callgrind KIND --calls N`, twice; per call = the difference / the
/// difference in calls, so setup and warm-up cancel out. `null` when
/// valgrind is not installed.
pub fn instructions_per_call(kinds: &[&str]) -> serde_json::Value {
    let count = |kind: &str, calls: usize| {
        callgrind_collected(&[], &["--callgrind", kind, "--calls", &calls.to_string()])
    };
    let mut per_call = serde_json::Map::new();
    for kind in kinds {
        match (count(kind, 1_000), count(kind, 3_000)) {
            (Some(a), Some(b)) => {
                per_call.insert((*kind).to_owned(), serde_json::json!((b - a) / 2_000.0));
            }
            _ => return serde_json::Value::Null,
        }
    }
    serde_json::Value::Object(per_call)
}

/// The instructions callgrind collected running this bench's executable
/// with `args`, and `valgrind` options `options` (say, to count only inside
/// one function); `None` when valgrind is not installed or counted nothing.
pub fn callgrind_collected(options: &[&str], args: &[&str]) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let out = std::env::temp_dir().join(format!(
        "sentryagent-callgrind-{}-{}",
        std::process::id(),
        args.join("-").replace(['/', ' '], "_")
    ));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(options)
        .arg(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&out);
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse::<f64>().ok())
}

/// Microseconds as a float, for reports.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------
// Allocation counting.

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static ALLOC_BYTES: Cell<u64> = const { Cell::new(0) };
}

/// A global allocator that counts the allocations (and reallocations) made
/// on the current thread while counting is on. Install it with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

fn note(size: usize) {
    // `try_with`: thread-locals may be gone while a thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
            let _ = ALLOC_BYTES.try_with(|n| n.set(n.get() + size as u64));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters are plain thread-local cells that never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations (count, bytes) made on this thread while `f` runs.
pub async fn count_allocs<T>(f: impl std::future::Future<Output = T>) -> (T, u64, u64) {
    let before = (ALLOCS.with(Cell::get), ALLOC_BYTES.with(Cell::get));
    COUNTING.with(|c| c.set(true));
    let out = f.await;
    COUNTING.with(|c| c.set(false));
    let after = (ALLOCS.with(Cell::get), ALLOC_BYTES.with(Cell::get));
    (out, after.0 - before.0, after.1 - before.1)
}

// ---------------------------------------------------------------------------
// Process readings.

/// User + system CPU time of this process so far.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A field of `/proc/self/status` in KiB, e.g. `VmHWM` or `VmRSS`.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// Raises the soft open-files limit to the hard limit (for 10,000 sockets).
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        limit.rlim_cur
    }
}

// ---------------------------------------------------------------------------
// Reports.

/// The flag that makes a bench binary print one JSON report line instead of
/// running criterion.
pub const REPORT_FLAG: &str = "--report";

/// Whether this run is for `cargo xtask bench` (the [`REPORT_FLAG`] is given).
pub fn report_mode() -> bool {
    std::env::args().any(|a| a == REPORT_FLAG)
}

/// The value following `--name` on the command line, parsed.
pub fn arg<T: std::str::FromStr>(name: &str) -> Option<T> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

/// Prints the report line `cargo xtask bench` reads: `BENCH-REPORT <json>`.
pub fn emit(report: &serde_json::Value) {
    println!("BENCH-REPORT {report}");
}

/// A multi-threaded runtime like `#[tokio::main]`'s (one worker per core).
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A single-threaded runtime: one core's worth of client.
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
