//! The one transport policy: every `reqwest::Client` the crate builds (API
//! calls, a verifier's discovery and key-set fetches) comes from
//! [`http_client`], or from the user's builder through [`user_http_client`],
//! and every body the crate reads whole goes through [`read_body`].
//!
//! - No redirects: a request carrying a secret (a token request's form, a
//!   bearer header) is never re-sent to wherever a `3xx` points.
//! - No proxy from the environment: `HTTP_PROXY` would see a plain-http
//!   token request, secret and all; an `https://` proxy only when given.
//! - Idle pooled connections closed below the Node server's 5 s keep-alive.
//! - Every duration saturated to what the timers below can represent.

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
        .no_proxy();
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
/// timeouts and pool stay theirs) under the one rule that cannot be left to
/// them: no redirects. A client that follows a `307` re-posts a token
/// request's form, client secret included, to wherever it points, before
/// any check of the answer's origin can run.
pub(crate) fn user_http_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client> {
    builder
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::config("cannot build your HTTP client").with_source(e))
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
