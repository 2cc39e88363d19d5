//! The transport under the calls: no proxy for loopback, no token from
//! another origin after a redirect, no stale pooled connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use httpmock::prelude::*;
use sentryagent_idp::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const PROXY_CHILD_MARKER: &str = "SENTRYAGENT_REGRESSION_PROXY_CHILD";

const PROXY_CHILD_BASE_URL: &str = "SENTRYAGENT_REGRESSION_PROXY_BASE_URL";

/// The child's full test name in this binary, for `--exact`.
const PROXY_CHILD_TEST: &str = "transport::proxy_child_requests_a_token_with_http_proxy_set";

/// Not a regression test: the child half of
/// `token_request_to_localhost_never_goes_through_http_proxy`, run by it in a
/// child process with `HTTP_PROXY` set (setting env vars in-process is unsafe).
#[tokio::test]
#[ignore = "helper: run in a child process by token_request_to_localhost_never_goes_through_http_proxy"]
async fn proxy_child_requests_a_token_with_http_proxy_set() {
    if std::env::var_os(PROXY_CHILD_MARKER).is_none() {
        return;
    }
    let base = std::env::var(PROXY_CHILD_BASE_URL).unwrap();
    let client = for_mock(Client::builder(), &base)
        .timeout(Duration::from_secs(2))
        .total_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(8), client.access_token()).await;
    println!(
        "CHILD RESULT: {:?}",
        result.map(|r| r.map(|_| "got a token"))
    );
}

/// A loopback "proxy" that records what it receives and answers 502.
async fn start_recording_proxy() -> (String, Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let task = tokio::spawn({
        let received = Arc::clone(&received);
        async move {
            for _ in 0..20 {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let received = Arc::clone(&received);
                tokio::spawn(async move {
                    let mut chunk = [0u8; 8192];
                    for _ in 0..64 {
                        match tokio::time::timeout(
                            Duration::from_millis(300),
                            stream.read(&mut chunk),
                        )
                        .await
                        {
                            Ok(Ok(n)) if n > 0 => {
                                received.lock().unwrap().extend_from_slice(&chunk[..n])
                            }
                            _ => break,
                        }
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    });
    (url, received, task)
}

/// 0.1 review, defect 5: with HTTP_PROXY set, the token request to localhost goes straight to the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_request_to_localhost_never_goes_through_http_proxy() {
    let server = MockServer::start_async().await;
    let token = token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let base = format!("http://localhost:{}", server.address().port());
    let (proxy_url, received, proxy_task) = start_recording_proxy().await;

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([
            PROXY_CHILD_TEST,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROXY_CHILD_MARKER, "1")
        .env(PROXY_CHILD_BASE_URL, &base)
        .env("HTTP_PROXY", &proxy_url)
        .env_remove("http_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .kill_on_drop(true);
    let output = bounded(60, "the child process", child.output())
        .await
        .unwrap();
    let child_stdout = String::from_utf8_lossy(&output.stdout);
    let child_result = child_stdout
        .lines()
        .find(|l| l.contains("CHILD RESULT"))
        .unwrap_or("<no CHILD RESULT line>")
        .to_owned();
    assert!(
        child_stdout.contains("1 passed"),
        "the child test did not run: {child_stdout}"
    );
    proxy_task.abort();
    let seen = received.lock().unwrap().clone();
    let proxy_text = String::from_utf8_lossy(&seen);
    let server_hits = token.calls_async().await;
    assert!(
        seen.is_empty() && server_hits == 1,
        "with HTTP_PROXY={proxy_url}, the token request to {base} must not reach the proxy: \
         proxy received {} bytes (request line: {:?}; client secret in them: {}); \
         the real server received {server_hits} token requests; child: {child_result}",
        seen.len(),
        proxy_text.lines().next().unwrap_or(""),
        proxy_text.contains(CLIENT_SECRET),
    );
}

/// 0.1 review, defect 7, and issue 23, item 19: with the user's own HTTP
/// client (one that would follow redirects, as reqwest's default does), a
/// `307` from the token endpoint must not carry the client secret to another
/// origin, and no token comes back from there.
#[tokio::test]
async fn a_token_response_redirected_to_another_origin_is_refused() {
    let other = MockServer::start_async().await;
    let other_got_secret = other
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/v1/token")
                .body_includes(CLIENT_SECRET);
            then.status(200)
                .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
        })
        .await;
    let server = MockServer::start_async().await;
    let location = format!("{}/api/v1/token", other.base_url());
    server
        .mock_async(move |when, then| {
            when.method(POST).path("/api/v1/token");
            then.status(307).header("location", location);
        })
        .await;
    let client = for_mock(Client::builder(), &server.base_url())
        .http_client(reqwest::Client::builder())
        .build()
        .unwrap();
    let result = bounded(10, "access_token", client.access_token()).await;
    let with_secret = other_got_secret.calls_async().await;
    assert!(
        result.is_err() && with_secret == 0,
        "after a 307 from {} to {}, the client secret must not reach the other origin and no \
         token may come back; the other origin received {with_secret} token request(s) \
         carrying the client secret; the token request returned {}",
        server.base_url(),
        other.base_url(),
        if result.is_ok() {
            "a token"
        } else {
            "an error"
        },
    );
}

/// Issue 23, item 19: an API call answered `307` to another origin must not
/// carry the bearer token there, with the user's own HTTP client too.
#[tokio::test]
async fn an_api_call_redirected_to_another_origin_does_not_carry_the_bearer_token() {
    let other = MockServer::start_async().await;
    let other_got_token = other
        .mock_async(|when, then| {
            when.path_includes("/agents/")
                .header("authorization", format!("Bearer {ACCESS_TOKEN}"));
            then.status(200).json_body(agent_json());
        })
        .await;
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let location = format!("{}{}", other.base_url(), request_path(AGENT_PATH));
    server
        .mock_async(move |when, then| {
            when.method(GET).path(request_path(AGENT_PATH));
            then.status(307).header("location", location);
        })
        .await;
    let client = for_mock(Client::builder(), &server.base_url())
        .http_client(reqwest::Client::builder())
        .build()
        .unwrap();
    let result = bounded(10, "get_agent", client.agents().get(agent_id()).send()).await;
    let with_token = other_got_token.calls_async().await;
    assert!(
        result.is_err() && with_token == 0,
        "after a 307 to {}, the bearer token must not reach the other origin and its answer \
         must be refused; it received {with_token} request(s) with the token; result ok: {}",
        other.base_url(),
        result.is_ok()
    );
}

/// A loopback HTTP/1.1 server that keeps connections open and counts them.
struct KeepAliveServer {
    base_url: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeepAliveServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_keep_alive_server() -> KeepAliveServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let accepted = Arc::clone(&accepted);
        async move {
            for _ in 0..50 {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_keep_alive(stream));
            }
        }
    });
    KeepAliveServer {
        base_url,
        accepted,
        task,
    }
}

/// Answers up to 100 requests on one connection, never closing it first.
async fn serve_keep_alive(mut stream: TcpStream) {
    let mut buf = Vec::new();
    for _ in 0..100 {
        let Some((_, path)) = crate::support::scripted::next_request(&mut stream, &mut buf).await
        else {
            return;
        };
        let body = if path.ends_with("/token") {
            token_body(ACCESS_TOKEN, ALL_SCOPES, 3600).to_string()
        } else {
            agent_json().to_string()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// 0.1 review, defect 14: a connection idle for longer than the server's 5 s keep-alive is not reused.
#[tokio::test]
async fn a_connection_idle_past_the_servers_keep_alive_is_not_reused() {
    let server = start_keep_alive_server().await;
    let client = for_mock(Client::builder(), &server.base_url)
        .build()
        .unwrap();
    bounded(10, "first call", client.agents().get(agent_id()).send())
        .await
        .unwrap();
    let after_first = server.accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    bounded(10, "second call", client.agents().get(agent_id()).send())
        .await
        .unwrap();
    let after_second = server.accepted.load(Ordering::SeqCst);
    assert!(
        after_second > after_first,
        "after 5.5 s idle the client must open a new connection (pool idle timeout below the \
         server's 5 s keep-alive); connections accepted after the first call: {after_first}, \
         after the second: {after_second}"
    );
}

/// Panics seen on threads named [`DURATION_MAX_THREAD`].
static PANICS_ON_DURATION_MAX_THREAD: AtomicUsize = AtomicUsize::new(0);
const DURATION_MAX_THREAD: &str = "duration-max-calls";

/// Issue 23, item 3: `Duration::MAX` for every duration the builder takes
/// (the HTTP stack's included: hyper-util's pool task panicked adding the
/// idle timeout to an `Instant`) is accepted, and calls against the fake
/// work without a panic on any task of their runtime.
#[test]
fn duration_max_for_every_builder_duration_panics_nowhere() {
    // Counts panics on the calls' thread only (other tests panic on
    // purpose); every panic still reaches the previous hook.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(DURATION_MAX_THREAD) {
            PANICS_ON_DURATION_MAX_THREAD.fetch_add(1, Ordering::SeqCst);
        }
        previous(info)
    }));
    let calls = std::thread::Builder::new()
        .name(DURATION_MAX_THREAD.into())
        .spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let fake = sentryagent_idp::testing::FakeAgentIdp::builder()
                    .start()
                    .await
                    .unwrap();
                let client = fake
                    .client_builder()
                    .connect_timeout(Duration::MAX)
                    .pool_idle_timeout(Duration::MAX)
                    .timeout(Duration::MAX)
                    .total_timeout(Duration::MAX)
                    .token_timeout(Duration::MAX)
                    .refresh_buffer(Duration::MAX)
                    .retry_policy(
                        sentryagent_idp::RetryPolicy::default()
                            .base_delay(Duration::MAX)
                            .max_delay(Duration::MAX)
                            .max_retry_after(Duration::MAX),
                    )
                    .build()
                    .map_err(|e| e.to_string())?;
                let id = fake.bootstrap_agent_id();
                for _ in 0..3 {
                    let call = tokio::spawn({
                        let client = client.clone();
                        async move { client.agents().get(id).send().await.map(drop) }
                    });
                    bounded(10, "get_agent", call)
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                    // Lets the pool's idle task run with a connection in it.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok::<_, String>(())
            })
        })
        .unwrap();
    let result = calls.join();
    let panics = PANICS_ON_DURATION_MAX_THREAD.load(Ordering::SeqCst);
    assert!(
        panics == 0 && matches!(result, Ok(Ok(()))),
        "with Duration::MAX for every duration setting, {panics} panic(s) on the calls' runtime; \
         calls: {result:?}"
    );
}
