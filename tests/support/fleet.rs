//! Fleets of real processes for the store tests: this test binary run
//! again as a child (`fleet_child`, an ignored test), told by environment
//! variables which store to use, how many clients to build and for how
//! long to call. Each client has its own in-memory cache, as separate
//! processes would; the child prints `FLEET ok=<n> failed=<n> fallbacks=<n>`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::store::{FileStore, RedisStore};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ExposeSecret};

/// `file:<dir>` or `redis:<url>`.
pub const STORE: &str = "FLEET_STORE";
const CLIENTS: &str = "FLEET_CLIENTS";
const CHURN_MS: &str = "FLEET_CHURN_MS";
const START_AT_MS: &str = "FLEET_START_AT_MS";
const SECRET_FILE: &str = "FLEET_SECRET_FILE";
const LEASE_MS: &str = "FLEET_LEASE_MS";
const READY_DIR: &str = "FLEET_READY_DIR";
const TOKEN_ONLY: &str = "FLEET_TOKEN_ONLY";

/// How long a child may run before the test fails.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// What a child is told.
#[derive(Clone, Debug)]
pub struct Plan {
    pub store: String,
    pub clients: usize,
    /// 0: one call per client. Otherwise, for this long, a new client every
    /// 100 ms, one call each (so the store is read all along).
    pub churn: Duration,
    /// Read the secret from this file (a `SecretSource::file`) rather than
    /// the environment.
    pub secret_file: Option<std::path::PathBuf>,
    /// The Redis lock lease.
    pub lease: Option<Duration>,
    /// Each child creates a file here once its store is open, just before
    /// its calls: see [`wait_ready`].
    pub ready_dir: Option<std::path::PathBuf>,
    /// Each client asks for its token only (`access_token`), no API call:
    /// a fleet's start against a server's rate limit, counting only the
    /// token requests.
    pub token_only: bool,
}

impl Plan {
    pub fn new(store: impl Into<String>) -> Plan {
        Plan {
            store: store.into(),
            clients: 10,
            churn: Duration::ZERO,
            secret_file: None,
            lease: None,
            ready_dir: None,
            token_only: false,
        }
    }
}

/// A running child.
pub struct Running(Child);

/// Starts `count` children on `plan`, all told to begin at the same instant.
pub fn start(fake: &FakeAgentIdp, plan: &Plan, count: usize) -> Vec<Running> {
    let start_at = unix_ms() + 300 + 20 * count as u64;
    (0..count)
        .map(|_| {
            let mut command = Command::new(std::env::current_exe().unwrap());
            command
                .args([
                    "fleet_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(STORE, &plan.store)
                .env(CLIENTS, plan.clients.to_string())
                .env(CHURN_MS, plan.churn.as_millis().to_string())
                .env(START_AT_MS, start_at.to_string())
                .env("AGENTIDP_BASE_URL", fake.base_url())
                .env("AGENTIDP_CLIENT_ID", fake.client_id())
                .env(
                    "AGENTIDP_CLIENT_SECRET",
                    fake.client_secret().expose_secret(),
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            if let Some(file) = &plan.secret_file {
                command.env(SECRET_FILE, file);
            }
            if let Some(lease) = plan.lease {
                command.env(LEASE_MS, lease.as_millis().to_string());
            }
            if let Some(dir) = &plan.ready_dir {
                command.env(READY_DIR, dir);
            }
            if plan.token_only {
                command.env(TOKEN_ONLY, "1");
            }
            Running(command.spawn().unwrap())
        })
        .collect()
}

impl Running {
    /// Kills the child now.
    pub fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    /// Waits (at most [`CHILD_LIMIT`]) and returns what it did.
    pub fn finish(mut self) -> Tally {
        let deadline = Instant::now() + CHILD_LIMIT;
        while self.0.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                panic!("a fleet child ran past {CHILD_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = self.0.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("WARN") {
            eprintln!("child: {stderr}");
        }
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("FLEET ").map(|(_, result)| result))
            .unwrap_or_else(|| {
                panic!(
                    "the child ({}) printed no result: {stdout} {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let field = |name: &str| -> usize {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap()
        };
        Tally {
            ok: field("ok="),
            failed: field("failed="),
            fallbacks: field("fallbacks="),
        }
    }
}

/// What children did: calls that succeeded and failed, and token fetches
/// their stores could not serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub fallbacks: usize,
}

/// Waits for every child; the sum of what they did.
pub fn finish_all(children: Vec<Running>) -> Tally {
    children
        .into_iter()
        .map(Running::finish)
        .fold(Tally::default(), |a, b| Tally {
            ok: a.ok + b.ok,
            failed: a.failed + b.failed,
            fallbacks: a.fallbacks + b.fallbacks,
        })
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn env_ms(name: &str) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// In a child: runs the plan from the environment and prints the result;
/// does nothing outside a child.
pub async fn child_main() {
    let Ok(store) = std::env::var(STORE) else {
        return;
    };
    // The store's warnings (why a fetch fell back) on stderr.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
    let clients: usize = std::env::var(CLIENTS).unwrap().parse().unwrap();
    let churn = env_ms(CHURN_MS);
    let start_at = env_ms(START_AT_MS).as_millis() as u64;
    let wait = start_at.saturating_sub(unix_ms());
    tokio::time::sleep(Duration::from_millis(wait.min(10_000))).await;
    let agent: uuid::Uuid = std::env::var("AGENTIDP_CLIENT_ID")
        .unwrap()
        .parse()
        .unwrap();
    let (mut ok, mut failed) = (0, 0);
    let mut tally = |result: sentryagent_idp::Result<()>| match result {
        Ok(()) => ok += 1,
        Err(e) => {
            eprintln!("call failed: {e}");
            failed += 1;
        }
    };
    let fallbacks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let token_only = std::env::var(TOKEN_ONLY).is_ok_and(|v| v == "1");
    let one_call = |client: Client| {
        let fallbacks = std::sync::Arc::clone(&fallbacks);
        async move {
            let result = if token_only {
                client.access_token().await.map(drop)
            } else {
                client.agents().get(agent).send().await.map(drop)
            };
            let fell_back = client.token_store_fallbacks().unwrap_or(0);
            fallbacks.fetch_add(fell_back, std::sync::atomic::Ordering::Relaxed);
            result
        }
    };
    let store = Store::open(&store).await;
    if let Some(dir) = std::env::var_os(READY_DIR) {
        let mine = std::path::Path::new(&dir).join(std::process::id().to_string());
        std::fs::write(mine, b"").unwrap();
    }
    if churn.is_zero() {
        let built: Vec<Client> = (0..clients).map(|_| store.client()).collect();
        let calls = built.into_iter().map(|c| tokio::spawn(one_call(c)));
        for result in futures::future::join_all(calls).await {
            tally(result.unwrap());
        }
    } else {
        let end = Instant::now() + churn;
        while Instant::now() < end {
            tally(one_call(store.client()).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // On a line of its own: the test harness prints around it.
    let fallbacks = fallbacks.load(std::sync::atomic::Ordering::Relaxed);
    println!("\nFLEET ok={ok} failed={failed} fallbacks={fallbacks}");
}

/// The child's one store, shared by its clients (as one process would).
#[derive(Clone)]
enum Store {
    File(FileStore),
    Redis(RedisStore),
}

impl Store {
    async fn open(spec: &str) -> Store {
        if let Some(dir) = spec.strip_prefix("file:") {
            return Store::File(FileStore::in_dir(dir).unwrap());
        }
        let url = spec
            .strip_prefix("redis:")
            .expect("file:<dir> or redis:<url>");
        let mut redis = RedisStore::connect(url).await.unwrap();
        let lease = env_ms(LEASE_MS);
        if !lease.is_zero() {
            redis = redis.lock_lease(lease);
        }
        Store::Redis(redis)
    }

    /// A new client on this store; the secret from the file when told so.
    fn client(&self) -> Client {
        let mut builder = sentryagent_idp::ClientBuilder::from_env().unwrap();
        if let Some(file) = std::env::var_os(SECRET_FILE) {
            builder = builder.client_secret_source(SecretSource::file(file));
        }
        match self.clone() {
            Store::File(store) => builder.token_store(store),
            Store::Redis(store) => builder.token_store(store),
        }
        .build()
        .unwrap()
    }
}

/// Waits (bounded at 60 s) until `count` children have opened their store
/// and begun calling: events the test can then time its own acts after,
/// however long a busy machine took to start them.
pub async fn wait_ready(dir: &std::path::Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = std::fs::read_dir(dir).unwrap().count();
        if ready >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} of {count} children ready in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
