//! A destination service for the outgoing suites: it records what each
//! request carried and answers as the test scripts it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use sentryagent_idp::Client;
use sentryagent_idp::present::{OutgoingAuth, OutgoingAuthBuilder};
use sentryagent_idp::testing::FakeAgentIdp;
use tokio::task::JoinHandle;

/// What a destination saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
    /// The `x-trace` header, to tell a replay kept the caller's headers.
    pub trace: Option<String>,
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    seen: Vec<Seen>,
    /// Tokens answered with 401 invalid_token (as if revoked).
    refused: Vec<String>,
    /// Every token answered with 401 invalid_token.
    refuse_all: bool,
}

/// A loopback service on a free port, stopped when dropped.
pub struct Destination {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

fn param(uri: &axum::http::Uri, name: &str) -> String {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

impl Destination {
    /// Routes: `/ok` (200), `/scope?scope=…` (403 insufficient_scope),
    /// `/redirect?to=URL` (302), `/bad-request` (401 invalid_request),
    /// `/unauthorized?challenge=…` (401 with that `WWW-Authenticate`, none
    /// when the parameter is absent); any path answers 401 invalid_token to
    /// a refused token.
    pub async fn start() -> Destination {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new()
            .fallback(any(answer))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Destination { addr, shared, task }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The outgoing auth of `client`, allowed to this destination only.
    pub fn auth(&self, client: &Client) -> OutgoingAuth {
        self.auth_builder(client).build().unwrap()
    }

    /// The builder of [`auth`](Self::auth), to add options.
    pub fn auth_builder(&self, client: &Client) -> OutgoingAuthBuilder {
        OutgoingAuth::builder(client).allow_origin(self.origin())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }

    /// Answers `401 invalid_token` to `token` from now on.
    pub fn refuse(&self, token: &str) {
        self.shared
            .lock()
            .unwrap()
            .refused
            .push(format!("Bearer {token}"));
    }
}

impl Destination {
    /// Answers `401 invalid_token` to every token from now on.
    pub fn refuse_all(&self) {
        self.shared.lock().unwrap().refuse_all = true;
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refused = {
        let mut shared = shared.lock().unwrap();
        shared.seen.push(Seen {
            method,
            path: uri.path().to_owned(),
            authorization: authorization.clone(),
            trace: headers
                .get("x-trace")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body,
        });
        shared.refuse_all || authorization.is_some_and(|a| shared.refused.contains(&a))
    };
    let challenge = |value: String| [(header::WWW_AUTHENTICATE, value)];
    if refused {
        let value = r#"Bearer error="invalid_token""#.to_owned();
        return (StatusCode::UNAUTHORIZED, challenge(value)).into_response();
    }
    match uri.path() {
        "/scope" => {
            let scope = param(&uri, "scope");
            let value = format!(r#"Bearer error="insufficient_scope", scope="{scope}""#);
            (StatusCode::FORBIDDEN, challenge(value)).into_response()
        }
        "/redirect" => (StatusCode::FOUND, [(header::LOCATION, param(&uri, "to"))]).into_response(),
        "/unauthorized" if uri.query().is_some_and(|q| q.contains("challenge=")) => (
            StatusCode::UNAUTHORIZED,
            challenge(param(&uri, "challenge")),
        )
            .into_response(),
        "/unauthorized" => StatusCode::UNAUTHORIZED.into_response(),
        "/bad-request" => {
            let value = r#"Bearer error="invalid_request""#.to_owned();
            (StatusCode::UNAUTHORIZED, challenge(value)).into_response()
        }
        _ => "ok".into_response(),
    }
}

/// The fake AgentIdP and a client of its bootstrap agent.
pub async fn fake_and_client() -> (FakeAgentIdp, Client) {
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = fake.client_builder().build().unwrap();
    (fake, client)
}
