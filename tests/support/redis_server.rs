//! A real `redis-server` for the tests: started on a free loopback port
//! with a temporary directory and no persistence, stopped on drop. Not a
//! mock.
//!
//! When `redis-server` is not installed the tests that need it skip, unless
//! `SENTRYAGENT_REQUIRE_REDIS=1` (set by `.ci/run`, which installs it): then
//! they fail.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to answer its first PING.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A running `redis-server`, stopped when dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one, or `None` (the test skips) when redis-server is missing
    /// and not required.
    pub fn start() -> Option<RedisServer> {
        let required = std::env::var("SENTRYAGENT_REQUIRE_REDIS").is_ok_and(|v| v == "1");
        let dir = tempfile::tempdir().unwrap();
        // A free port: bind, read it, release it for the server.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!(
                    "redis-server is not installed: skipping (set SENTRYAGENT_REQUIRE_REDIS=1 to fail instead)"
                );
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        server.wait_ready();
        Some(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection, to look at what the store wrote.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Stops the server now (to test a store that went away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_LIMIT;
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
