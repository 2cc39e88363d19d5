//! The 14 operations under `/api/v1`, and the guard in front of them that
//! counts requests, adds latency, injects failures, rate-limits and checks the
//! bearer token and its scopes.

mod agents;
mod audit;
mod credentials;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::app::{App, Origin};
use super::errors::{ApiError, OAuthError};
use super::failure::Failure;
use super::server::Connection;
use super::tokens::Claims;
use crate::client::API_PREFIX;
use crate::operation::{Operation, OperationSpec};

/// Request bodies larger than this are refused.
const BODY_LIMIT: usize = 1 << 20;

/// The fake's router: the 14 operations behind the guard.
pub(crate) fn router(app: Arc<App>) -> Router {
    let at = |path: &str| format!("{API_PREFIX}{path}");
    Router::new()
        .route(&at("/token"), post(token::issue))
        .route(&at("/token/introspect"), post(token::introspect))
        .route(&at("/token/revoke"), post(token::revoke))
        .route(&at("/agents"), post(agents::register).get(agents::list))
        .route(
            &at("/agents/{agentId}"),
            get(agents::get)
                .patch(agents::update)
                .delete(agents::decommission),
        )
        .route(
            &at("/agents/{agentId}/credentials"),
            post(credentials::generate).get(credentials::list),
        )
        .route(
            &at("/agents/{agentId}/credentials/{credentialId}/rotate"),
            post(credentials::rotate),
        )
        .route(
            &at("/agents/{agentId}/credentials/{credentialId}"),
            axum::routing::delete(credentials::revoke),
        )
        .route(&at("/audit"), get(audit::query))
        .route(&at("/audit/{eventId}"), get(audit::get))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&app), guard))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .fallback(|| async { ApiError::route_not_found() })
        .with_state(app)
}

/// The spec operation a matched route stands for.
fn operation(method: &Method, matched: &str) -> Option<&'static OperationSpec> {
    let path = matched.strip_prefix(API_PREFIX)?;
    Operation::ALL
        .iter()
        .map(|op| op.spec())
        .find(|op| op.method == method.as_str() && op.path == path)
}

/// Runs before every handler, in this order: count the request, wait the
/// latency, apply an injected failure, rate-limit, authenticate.
async fn guard(
    State(app): State<Arc<App>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let Some(op) = matched.and_then(|m| operation(request.method(), m.as_str())) else {
        return next.run(request).await;
    };
    let ticket = app.control.admit(op.operation);
    if !ticket.latency.is_zero() {
        tokio::time::sleep(ticket.latency).await;
    }
    match ticket.failure {
        None => {}
        Some(Failure::Delay(wait)) => tokio::time::sleep(wait).await,
        Some(Failure::Status(status)) => return injected(op, status),
        Some(Failure::RateLimited { retry_after }) => {
            return ApiError::rate_limited(retry_after).into_response();
        }
        Some(Failure::DropConnection) => {
            return drop_connection(request.extensions().get::<Connection>().cloned()).await;
        }
        Some(Failure::DropAnswer) => {
            let connection = request.extensions().get::<Connection>().cloned();
            let _served = serve(&app, op, request, next).await;
            return drop_connection(connection).await;
        }
        Some(Failure::FinishLate(wait)) => return finish_late(app, op, request, next, wait).await,
    }
    serve(&app, op, request, next).await
}

/// Serves `request` after `wait` on a task of its own, so that the client
/// hanging up (which drops this future) does not cancel the work.
async fn finish_late(
    app: Arc<App>,
    op: &'static OperationSpec,
    request: Request,
    next: Next,
    wait: std::time::Duration,
) -> Response {
    // Read the body now: once the client hangs up, its connection (and the
    // body's source) is gone.
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::internal("could not read the request body").into_response();
    };
    let request = Request::from_parts(parts, axum::body::Body::from(body));
    let work = tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        serve(&app, op, request, next).await
    });
    match work.await {
        Ok(response) => response,
        Err(_) => ApiError::internal("the late request was cancelled").into_response(),
    }
}

/// Closes the request's connection without an answer.
async fn drop_connection(connection: Option<Connection>) -> Response {
    let Some(connection) = connection else {
        return ApiError::internal("no connection to drop").into_response();
    };
    connection.drop_now();
    // The connection task drops this future together with the socket.
    std::future::pending().await
}

/// Rate-limits, authenticates and runs the handler.
async fn serve(app: &App, op: &OperationSpec, mut request: Request, next: Next) -> Response {
    if let Some(wait) = app.control.rate_limited() {
        return ApiError::rate_limited(wait).into_response();
    }
    if op.bearer {
        match authenticate(app, request.headers(), op.scopes) {
            Ok(claims) => {
                request.extensions_mut().insert(claims);
            }
            Err(error) => return error.into_response(),
        }
    }
    next.run(request).await
}

/// The answer to an injected [`Failure::Status`].
fn injected(op: &OperationSpec, status: u16) -> Response {
    let Ok(status) = StatusCode::from_u16(status) else {
        return ApiError::internal("invalid injected status").into_response();
    };
    if !status.is_client_error() && !status.is_server_error() {
        return status.into_response();
    }
    match OAuthError::injected(status).filter(|_| op.operation == Operation::IssueToken) {
        Some(error) => error.into_response(),
        None => ApiError::injected(status).into_response(),
    }
}

/// The bearer token's claims, if it is active and holds `required`.
fn authenticate(app: &App, headers: &HeaderMap, required: &[&str]) -> Result<Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::unauthorized("A bearer token is required."))?;
    let store = app.store();
    let (claims, verdict) = app.check_token(&store, token);
    match (claims, verdict) {
        (Some(claims), Ok(())) => {
            if required
                .iter()
                .all(|need| claims.scopes().any(|s| s == *need))
            {
                Ok(claims)
            } else {
                Err(ApiError::forbidden(required))
            }
        }
        (_, Err(why)) => Err(ApiError::unauthorized(why.message())),
        (None, Ok(())) => Err(ApiError::unauthorized("Invalid token.")),
    }
}

/// Everything a handler reads from its request. Extracting it never fails:
/// what is missing or malformed is reported by the handler in the
/// documented error body.
pub(crate) struct Call {
    pub origin: Origin,
    /// The bearer token's claims, on bearer-protected operations.
    pub caller: Option<Claims>,
    params: Vec<(String, String)>,
    pub query: String,
    pub headers: HeaderMap,
    /// `None` when the body could not be read (too large or broken).
    pub body: Option<Bytes>,
}

impl<S: Send + Sync> FromRequest<S> for Call {
    type Rejection = std::convert::Infallible;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let params = match RawPathParams::from_request_parts(&mut parts, state).await {
            Ok(raw) => raw
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let origin = Origin {
            ip_address: parts
                .extensions
                .get::<Connection>()
                .map(|c| c.peer().ip().to_string())
                .unwrap_or_default(),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        };
        Ok(Call {
            origin,
            caller: parts.extensions.remove::<Claims>(),
            params,
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts.headers,
            body: axum::body::to_bytes(body, BODY_LIMIT).await.ok(),
        })
    }
}

impl Call {
    /// A path parameter as a UUID, or `None` when missing or malformed.
    pub(crate) fn id(&self, name: &str) -> Option<Uuid> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| Uuid::parse_str(v).ok())
    }

    /// A path parameter as a UUID, or `400 VALIDATION_ERROR` naming it.
    pub(crate) fn id_or_400(&self, name: &str) -> Result<Uuid, ApiError> {
        self.id(name)
            .ok_or_else(|| ApiError::validation(name, format!("{name} must be a UUID.")))
    }

    /// The query string's pairs, decoded; the last of repeated names wins.
    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(self.query.as_bytes()) {
            pairs.retain(|(name, _)| name != k.as_ref());
            pairs.push((k.into_owned(), v.into_owned()));
        }
        pairs
    }

    /// Whether the caller may manage `agent_id`'s credentials: its own, or
    /// anyone's for an admin agent; else `403 FORBIDDEN`.
    pub(crate) fn may_manage(
        &self,
        store: &super::state::Store,
        agent_id: Uuid,
    ) -> Result<(), ApiError> {
        let caller = self.caller_id();
        let admin = store.agent(caller).is_some_and(|a| a.admin);
        if caller == agent_id || admin {
            Ok(())
        } else {
            Err(ApiError::not_your_credentials())
        }
    }

    /// The caller's agent id (bearer-protected operations only).
    pub(crate) fn caller_id(&self) -> Uuid {
        self.caller
            .as_ref()
            .and_then(|c| Uuid::parse_str(&c.sub).ok())
            .unwrap_or(Uuid::nil())
    }
}

/// A `page`/`limit` pair from the query, defaults 1 and 20.
pub(crate) fn paging(pairs: &[(String, String)]) -> Result<(u32, u32), ApiError> {
    let mut page = 1;
    let mut limit = crate::DEFAULT_PAGE_SIZE;
    for (name, value) in pairs {
        match name.as_str() {
            "page" => page = super::validate::positive("page", value)?,
            "limit" => limit = super::validate::positive("limit", value)?,
            _ => {}
        }
    }
    Ok((page, limit))
}

/// The slice of `items` that page `page` of size `limit` holds.
pub(crate) fn page_of<T>(items: Vec<T>, page: u32, limit: u32) -> Vec<T> {
    let skip = (u64::from(page) - 1).saturating_mul(u64::from(limit));
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    items.into_iter().skip(skip).take(limit as usize).collect()
}
