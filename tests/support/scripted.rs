//! A raw TCP server that misbehaves on cue, for faults httpmock cannot stage
//! (resets, truncated bodies, stalls). Loopback only; one request per
//! connection; bounded by the script.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use sentryagent_idp::auth::StaticToken;
use sentryagent_idp::{Client, ClientBuilder, RetryPolicy};

use super::{ACCESS_TOKEN, ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, token_body};

/// How long the server waits for a request to arrive whole.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Act {
    /// Answer with this status, extra headers and body.
    Respond(u16, Vec<(&'static str, String)>, String),
    /// Read the request, then close without answering.
    Close,
    /// Wait, then act.
    After(Duration, Box<Act>),
    /// Announce `declared` bytes of body, send `body`, close.
    Truncated { declared: usize, body: String },
    /// `before` until the tokio clock reaches `at`, then `after` (a server
    /// whose state changes at a time, not at a request count).
    Switch {
        at: tokio::time::Instant,
        before: Box<Act>,
        after: Box<Act>,
    },
}

impl Act {
    pub fn json(status: u16, body: serde_json::Value) -> Act {
        Act::Respond(
            status,
            vec![("content-type", "application/json".into())],
            body.to_string(),
        )
    }
}

/// One recorded request: method and path.
pub type Seen = (String, String);

type Routes = Arc<Mutex<Vec<(&'static str, Vec<Act>)>>>;

/// Answers a request from its path and query (for servers with state, such
/// as [`super::paged::Log`]).
pub type Handler = Arc<dyn Fn(&str) -> Act + Send + Sync>;

/// A running scripted server.
pub struct Scripted {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    routes: Routes,
    busy: Arc<Busy>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// Serves requests whose path ends with a key of `routes`, each route
    /// consuming its acts in order (the last act repeats).
    pub async fn start(routes: Vec<(&'static str, Vec<Act>)>) -> Scripted {
        Self::serve(routes, None).await
    }

    /// Serves every request with `handler` (given the path and query);
    /// requests are recorded as with [`Scripted::start`].
    pub async fn start_with(handler: Handler) -> Scripted {
        Self::serve(Vec::new(), Some(handler)).await
    }

    async fn serve(routes: Vec<(&'static str, Vec<Act>)>, handler: Option<Handler>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let routes: Routes = Arc::new(Mutex::new(routes));
        let busy = Arc::new(Busy::default());
        let task = tokio::spawn({
            let seen = Arc::clone(&seen);
            let routes = Arc::clone(&routes);
            let busy = Arc::clone(&busy);
            async move {
                // Owned by this task: aborting it (when the server is dropped)
                // aborts every connection still being served, stalls included.
                let mut connections = tokio::task::JoinSet::new();
                // Bounded: a test never needs more than a few hundred requests.
                for _ in 0..2000 {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    while connections.try_join_next().is_some() {}
                    let (seen, routes, busy) =
                        (Arc::clone(&seen), Arc::clone(&routes), Arc::clone(&busy));
                    let handler = handler.clone();
                    connections
                        .spawn(async move { serve(stream, seen, routes, handler, busy).await });
                }
                // Let the last connections finish before the listener goes.
                while connections.join_next().await.is_some() {}
            }
        });
        Scripted {
            base_url,
            seen,
            routes,
            busy,
            task,
        }
    }

    /// The most requests the server was answering at once.
    pub fn most_at_once(&self) -> usize {
        self.busy.most.load(Ordering::SeqCst)
    }

    /// Replaces the script: every path now gets `act`.
    pub fn answer_all(&self, act: Act) {
        *self.routes.lock().unwrap() = vec![("", vec![act])];
    }

    /// How many requests reached a path ending with `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, path)| path.ends_with(suffix))
            .count()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Requests being answered now, and the most at once.
#[derive(Default)]
struct Busy {
    now: AtomicUsize,
    most: AtomicUsize,
}

async fn serve(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<Seen>>>,
    routes: Routes,
    handler: Option<Handler>,
    busy: Arc<Busy>,
) {
    // A client that connects but never sends a whole request is not waited for.
    let Ok(Some((method, path))) =
        tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await
    else {
        return;
    };
    let act = if let Some(handler) = &handler {
        Some(handler(&path))
    } else {
        let mut routes = routes.lock().unwrap();
        routes
            .iter_mut()
            .find(|(suffix, _)| path.split('?').next().unwrap_or("").ends_with(suffix))
            .map(|(_, acts)| {
                if acts.len() > 1 {
                    acts.remove(0)
                } else {
                    acts[0].clone()
                }
            })
    };
    seen.lock().unwrap().push((method, path));
    let now = busy.now.fetch_add(1, Ordering::SeqCst) + 1;
    busy.most.fetch_max(now, Ordering::SeqCst);
    let act = act.unwrap_or_else(|| {
        Act::json(
            404,
            serde_json::json!({"code": "NO_SCRIPT", "message": "no script"}),
        )
    });
    perform(&mut stream, act).await;
    busy.now.fetch_sub(1, Ordering::SeqCst);
}

async fn perform(stream: &mut TcpStream, mut act: Act) {
    // Bounded: a script nests a handful of acts.
    for _ in 0..64 {
        match act {
            Act::After(wait, next) => {
                tokio::time::sleep(wait).await;
                act = *next;
            }
            Act::Switch { at, before, after } => {
                act = if tokio::time::Instant::now() < at {
                    *before
                } else {
                    *after
                };
            }
            _ => break,
        }
    }
    let bytes = match act {
        Act::Respond(status, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            format!("{head}\r\n{body}")
        }
        Act::Truncated { declared, body } => {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {declared}\r\nconnection: close\r\n\r\n{body}"
            )
        }
        Act::Close | Act::After(..) | Act::Switch { .. } => String::new(),
    };
    let _ = stream.write_all(bytes.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one request (head and body); returns its method and path.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    next_request(stream, &mut Vec::new()).await
}

/// Reads the next request of a connection, head and body, into `buf` (which
/// may already hold some of it) and takes it out, leaving what follows it;
/// returns its method and path. `None` when the connection ends first.
pub async fn next_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    let mut first = head.lines().next()?.split_whitespace();
    Some((first.next()?.to_owned(), first.next()?.to_owned()))
}

/// A static-token client builder of a scripted server: fast retries (jitter
/// below 10 ms), and only API calls reach the server.
pub fn scripted_static_builder(base_url: &str) -> ClientBuilder {
    Client::builder()
        .base_url(base_url)
        .token_source(StaticToken::new(ACCESS_TOKEN))
        .retry_policy(RetryPolicy::default().base_delay(Duration::from_millis(10)))
}

/// A client-credentials client builder of a scripted server, with fast retries.
pub fn scripted_credentials_builder(base_url: &str) -> ClientBuilder {
    Client::builder()
        .base_url(base_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(RetryPolicy::default().base_delay(Duration::from_millis(10)))
}

/// The fixture agent, as `GET /agents/{id}` answers it.
pub fn agent_act() -> Act {
    Act::json(200, super::agent_json())
}

/// A token answer: `token` with every scope, valid for `expires_in` seconds.
pub fn token_act(token: &str, expires_in: u64) -> Act {
    Act::json(200, token_body(token, ALL_SCOPES, expires_in))
}

/// [`scripted_static_builder`], built.
pub fn scripted_static_client(base_url: &str) -> Client {
    scripted_static_builder(base_url).build().unwrap()
}
