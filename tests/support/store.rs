//! Shared by the token store tests: a client on the fake with a file store,
//! and child processes (this test binary run again) that each build a
//! client, make one call and exit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ClientBuilder, ExposeSecret};

/// The environment variable that makes the test binary a child.
pub const CHILD: &str = "SENTRYAGENT_STORE_CHILD_DIR";

/// How long a child may take before the test fails.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// A client on `fake` sharing tokens through a file store in `dir`.
pub fn file_store_client(fake: &FakeAgentIdp, dir: &Path) -> Client {
    with_file_store(fake.client_builder(), dir)
}

pub fn with_file_store(builder: ClientBuilder, dir: &Path) -> Client {
    builder
        .token_store(sentryagent_idp::store::FileStore::in_dir(dir).unwrap())
        .build()
        .unwrap()
}

/// A child process of `test_binary` running the test `child` with the
/// fake's credentials and the store in `dir`.
pub fn spawn_child(fake: &FakeAgentIdp, dir: &Path, child: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, dir)
        .env("AGENTIDP_BASE_URL", fake.base_url())
        .env("AGENTIDP_CLIENT_ID", fake.client_id())
        .env(
            "AGENTIDP_CLIENT_SECRET",
            fake.client_secret().expose_secret(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child`, at most [`CHILD_LIMIT`], and fails unless it passed.
pub fn wait_ok(mut child: Child) {
    let deadline = Instant::now() + CHILD_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            assert!(status.success(), "the child failed: {stderr}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not finish within {CHILD_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In a child: the client from the environment and the store dir.
pub fn child_client() -> Option<Client> {
    let dir = std::env::var_os(CHILD)?;
    Some(with_file_store(
        ClientBuilder::from_env().unwrap(),
        Path::new(&dir),
    ))
}
