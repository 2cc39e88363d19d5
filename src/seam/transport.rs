//! The one transport policy: every `reqwest::Client` the crate builds (API
//! calls, a verifier's discovery and key-set fetches) comes from
//! [`http_client`], or from the user's builder through [`user_http_client`],
//! and every body the crate reads whole goes through [`read_body`].
//!
//! - No redirects: a request carrying a secret (a token request's form, a
//!   bearer header) is never re-sent to wherever a `3xx` points.
//! - Plain http only to loopback unless allowed: [`clear_text_allowed`].
//! - No proxy from the environment: `HTTP_PROXY` would see a plain-http
//!   token request, secret and all; an `https://` proxy only when given.
//! - Idle pooled connections closed below the Node server's 5 s keep-alive.
//! - Every duration saturated to what the timers below can represent.
//! - A connection that is not made before the attempt's timeout fails as a
//!   connect error (nothing was sent), not as a timed-out request (which may
//!   have been sent): [`connect_by`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};

/// Default connect timeout: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an idle pooled connection is kept: 4 s, below the 5 s
/// keep-alive timeout of the Node server AgentIdP runs on, so the client
/// never writes to a connection the server is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The longest duration handed to the HTTP stack: hyper adds its timeouts
/// to `Instant::now()`, which panics on overflow (`Duration::MAX` did, in
/// hyper-util's pool task). A century is "never" for any client.
pub(crate) const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How a `reqwest::Client` of the crate is set up.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub connect_timeout: Duration,
    pub pool_idle_timeout: Duration,
    /// A timeout for each whole request, for clients whose callers set none
    /// per request (the seam sets one per attempt).
    pub request_timeout: Option<Duration>,
    pub user_agent: String,
    pub https_proxy: Option<String>,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            request_timeout: None,
            user_agent: format!("sentryagent-idp-rust/{}", env!("CARGO_PKG_VERSION")),
            https_proxy: None,
        }
    }
}

/// Builds a `reqwest::Client` under the crate's transport policy.
pub(crate) fn http_client(transport: &Transport) -> Result<reqwest::Client> {
    let mut http = reqwest::Client::builder()
        .connect_timeout(transport.connect_timeout.min(LONGEST))
        .pool_idle_timeout(transport.pool_idle_timeout.min(LONGEST))
        .user_agent(transport.user_agent.as_str())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connector_layer(ConnectBy);
    if let Some(timeout) = transport.request_timeout {
        http = http.timeout(timeout.min(LONGEST));
    }
    if let Some(proxy) = &transport.https_proxy {
        let proxy = reqwest::Proxy::https(proxy.as_str()).map_err(|e| {
            Error::config("https_proxy is not a valid proxy URL").with_source(e.without_url())
        })?;
        http = http.proxy(proxy);
    }
    http.build()
        .map_err(|e| Error::config("cannot build the HTTP client").with_source(e))
}

/// Builds the user's own `reqwest::ClientBuilder` (their TLS roots, proxies,
/// timeouts and pool stay theirs) under the rules that cannot be left to
/// them: no redirects (a client that follows a `307` re-posts a token
/// request's form, client secret included, to wherever it points, before
/// any check of the answer's origin can run), and the per-attempt connect
/// deadline that tells "never sent" from "sent, no answer".
pub(crate) fn user_http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    builder
        .redirect(reqwest::redirect::Policy::none())
        .connector_layer(ConnectBy)
        .build()
        .map_err(|e| Error::config("cannot build your HTTP client").with_source(e))
}

/// Whether `url` may be used, by the one rule of plain http that the
/// client's base URL, a verifier's discovery and key-set URLs and
/// `OutgoingAuth`'s origins all follow: `https`, or `http` to a loopback
/// host (`localhost`, `127.0.0.0/8`, `::1`), or `http` anywhere once the
/// user said `allow_insecure_http(true)`. Off loopback, plain http lets
/// anyone on the path read (or replace) the credentials, tokens and keys.
pub(crate) fn clear_text_allowed(url: &url::Url, allow_insecure_http: bool) -> bool {
    url.scheme() != "http" || allow_insecure_http || is_loopback(url)
}

/// What a refusal by [`clear_text_allowed`] tells the user to do.
pub(crate) const CLEAR_TEXT_REFUSED: &str =
    "is plain http to a host that is not loopback; use https, or allow_insecure_http(true)";

/// Whether `url`'s host is loopback: `localhost`, `127.0.0.0/8` or `::1`.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Reads the whole body of `response`, up to `max` bytes; `None` once it
/// grows past them (the rest is not read).
pub(crate) async fn read_body(
    response: &mut reqwest::Response,
    max: u64,
) -> reqwest::Result<Option<Bytes>> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

tokio::task_local! {
    /// When the connection of the attempt being sent on this task must be
    /// made by, set by [`connect_by`].
    static CONNECT_BY: tokio::time::Instant;
}

/// Runs `send` (one attempt) so that a connection opened for it gives up at
/// `by`, failing as a connect error. `by` is set a little before the
/// attempt's own timeout, so that a handshake cut off by that timeout
/// (which would be indistinguishable from a request sent and unanswered)
/// ends as "never sent" first. A pooled connection is not affected.
pub(crate) async fn connect_by<F: Future>(by: tokio::time::Instant, send: F) -> F::Output {
    CONNECT_BY.scope(by, send).await
}

/// How long before an attempt's timeout its connection gives up: a tenth of
/// the attempt, at most 100 ms, so the connect error always comes first.
pub(crate) fn connect_deadline(attempt: Duration) -> Option<tokio::time::Instant> {
    let margin = (attempt / 10).min(Duration::from_millis(100));
    tokio::time::Instant::now().checked_add(attempt.saturating_sub(margin))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connector layer of [`connect_by`].
#[derive(Clone, Copy, Debug)]
struct ConnectBy;

impl<S> tower_layer::Layer<S> for ConnectBy {
    type Service = ConnectByService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectByService(inner)
    }
}

#[derive(Clone, Debug)]
struct ConnectByService<S>(S);

impl<S, R> tower_service::Service<R> for ConnectByService<S>
where
    S: tower_service::Service<R, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, target: R) -> Self::Future {
        // Read here, on the task of the request the connection is opened
        // for (hyper calls the connector when it first polls that request).
        let by = CONNECT_BY.try_with(|by| *by).ok();
        let connect = self.0.call(target);
        Box::pin(async move {
            let Some(by) = by else {
                return connect.await;
            };
            match tokio::time::timeout_at(by, connect).await {
                Ok(connected) => connected,
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the connection was not made before the attempt timed out; nothing was sent",
                )) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod clear_text_tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        let url = |s: &str| url::Url::parse(s).unwrap();
        for fine in [
            "https://idp.example.com",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://127.0.0.1",
            "http://127.9.9.9:80",
            "http://[::1]:8080",
        ] {
            assert!(clear_text_allowed(&url(fine), false), "{fine}");
        }
        for refused in [
            "http://idp.example.com",
            "http://localhost.example.com",
            "http://10.0.0.1",
            "http://[::ffff:127.0.0.1]",
        ] {
            assert!(!clear_text_allowed(&url(refused), false), "{refused}");
            assert!(clear_text_allowed(&url(refused), true), "{refused}");
        }
    }
}
