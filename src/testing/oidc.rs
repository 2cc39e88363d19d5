//! OIDC discovery and the JWKS, served at the server root (outside
//! `/api/v1`) when the builder's [`oidc`](super::FakeAgentIdpBuilder::oidc)
//! is on, as later AgentIdP releases do; and the knobs tests turn on them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::errors::ApiError;
use super::state::ALL_SCOPES;
use super::tokens::TokenKeys;
use crate::client::API_PREFIX;

/// The discovery document's path.
pub(crate) const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The key set's path.
pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The knobs of the two routes.
#[derive(Debug)]
pub(crate) struct Oidc {
    max_age: Duration,
    discovery_seen: AtomicUsize,
    jwks_seen: AtomicUsize,
    fail_jwks: AtomicBool,
}

impl Oidc {
    /// Both routes answer with `Cache-Control: public, max-age=<max_age>`.
    pub(crate) fn new(max_age: Duration) -> Oidc {
        Oidc {
            max_age,
            discovery_seen: AtomicUsize::new(0),
            jwks_seen: AtomicUsize::new(0),
            fail_jwks: AtomicBool::new(false),
        }
    }

    /// Requests of the discovery document so far.
    pub(crate) fn discovery_seen(&self) -> usize {
        self.discovery_seen.load(Ordering::Relaxed)
    }

    /// Requests of the key set so far, failed ones included.
    pub(crate) fn jwks_seen(&self) -> usize {
        self.jwks_seen.load(Ordering::Relaxed)
    }

    /// Whether the key set answers 503.
    pub(crate) fn set_fail_jwks(&self, fail: bool) {
        self.fail_jwks.store(fail, Ordering::Relaxed);
    }

    fn cache_control(&self) -> HeaderValue {
        let value = format!("public, max-age={}", self.max_age.as_secs());
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("no-store"))
    }
}

/// What the two handlers share: the signing keys (shared with the API's
/// handlers, not the whole app, so that this module sits below `app`, which
/// holds an [`Oidc`]).
#[derive(Clone)]
struct WellKnown {
    keys: Arc<TokenKeys>,
    oidc: Arc<Oidc>,
    discovery: Arc<serde_json::Value>,
}

/// The two routes for a fake whose origin is `issuer` (e.g.
/// `http://127.0.0.1:41234`).
pub(crate) fn router(keys: Arc<TokenKeys>, oidc: Arc<Oidc>, issuer: &str) -> Router {
    let state = WellKnown {
        keys,
        oidc,
        discovery: Arc::new(discovery_document(issuer)),
    };
    Router::new()
        .route(DISCOVERY_PATH, get(discovery))
        .route(JWKS_PATH, get(jwks))
        .with_state(state)
}

/// `GET /.well-known/openid-configuration`.
async fn discovery(State(state): State<WellKnown>) -> Response {
    state.oidc.discovery_seen.fetch_add(1, Ordering::Relaxed);
    let mut response = axum::Json(state.discovery.as_ref().clone()).into_response();
    cacheable(&mut response, &state.oidc);
    response
}

fn discovery_document(issuer: &str) -> serde_json::Value {
    let api = format!("{issuer}{API_PREFIX}");
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{JWKS_PATH}"),
        "token_endpoint": format!("{api}/token"),
        "introspection_endpoint": format!("{api}/token/introspect"),
        "revocation_endpoint": format!("{api}/token/revoke"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "revocation_endpoint_auth_methods_supported": ["bearer"],
        "scopes_supported": ALL_SCOPES,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// `GET /.well-known/jwks.json`: the live keys, current first.
async fn jwks(State(state): State<WellKnown>) -> Response {
    let oidc = &state.oidc;
    oidc.jwks_seen.fetch_add(1, Ordering::Relaxed);
    if oidc.fail_jwks.load(Ordering::Relaxed) {
        return ApiError::injected(StatusCode::SERVICE_UNAVAILABLE).into_response();
    }
    let mut response = axum::Json(json!({ "keys": state.keys.jwks() })).into_response();
    cacheable(&mut response, oidc);
    response
}

fn cacheable(response: &mut Response, oidc: &Oidc) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, oidc.cache_control());
}
