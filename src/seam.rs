//! The one seam between the generated client and the facade: progenitor's
//! `ClientHooks`. Every operation passes through it, keyed by its operation id,
//! so auth, scope checks, the 401 replay and tracing are wired once.
//!
//! What the hooks learn of a call (an error they raised, the status of the last
//! response) travels back to the facade through a task-local [`Call`], since
//! progenitor's error type can only carry strings and drops the status of
//! undecodable error bodies.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::header::AUTHORIZATION;
use tracing::Instrument;

use crate::auth::{AccessToken, TokenCache};
use crate::error::{Error, IntoErrorBody, Result, Seen};
use crate::operation::OperationSpec;
use crate::raw;
use crate::scope::ScopeSet;

/// The facade's state inside the generated client (progenitor's "inner type").
#[derive(Clone)]
pub(crate) struct Seam(Arc<SeamState>);

pub(crate) struct SeamState {
    /// `None` for the client that fetches tokens itself.
    pub tokens: Option<Arc<TokenCache>>,
    /// The scopes this client requests; a call needing another is refused unsent.
    pub requested: Option<ScopeSet>,
    /// Per-attempt timeout.
    pub attempt_timeout: Option<Duration>,
}

impl Seam {
    pub(crate) fn new(state: SeamState) -> Self {
        Self(Arc::new(state))
    }

    pub(crate) fn state(&self) -> &SeamState {
        &self.0
    }
}

impl fmt::Debug for Seam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seam")
            .field("tokens", &self.0.tokens.is_some())
            .field("requested", &self.0.requested)
            .finish_non_exhaustive()
    }
}

/// What the hooks report about the call in progress.
#[derive(Default)]
struct Call {
    error: Option<Error>,
    seen: Option<Seen>,
    /// The token `pre` put on the request, for the 401 replay.
    token: Option<Arc<AccessToken>>,
    /// The operation id, for the error.
    operation: Option<&'static str>,
}

tokio::task_local! {
    static CALL: RefCell<Call>;
}

fn report_error(error: Error) {
    // Outside `call` (not reachable from the public API) the error still
    // surfaces as progenitor's string.
    let _ = CALL.try_with(|c| c.borrow_mut().error = Some(error));
}

fn report_response(response: &reqwest::Response) {
    let seen = Seen { status: response.status(), headers: response.headers().clone() };
    let _ = CALL.try_with(|c| c.borrow_mut().seen = Some(seen));
}

/// Runs one generated call and maps its outcome into the facade's types.
pub(crate) async fn call<T, E, F>(fut: F) -> Result<T>
where
    F: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
    E: IntoErrorBody,
{
    let (result, call) = CALL
        .scope(RefCell::new(Call::default()), async move {
            let result = match fut.await {
                Ok(value) => Ok(value.into_inner()),
                // An undocumented status: its body is still unread.
                Err(raw::Error::UnexpectedResponse(response)) => Err(unexpected(response).await),
                Err(other) => Err(other),
            };
            let call = CALL.with(|c| std::mem::take(&mut *c.borrow_mut()));
            (result, call)
        })
        .await;
    result.map_err(|raw_error| {
        let error = match call.error {
            Some(error) => error,
            None => Error::from_raw(raw_error, call.seen.as_ref()),
        };
        match call.operation {
            Some(op) => error.with_operation(op),
            None => error,
        }
    })
}

/// Like [`call`] for operations that answer with no body, also accepting a
/// 2xx the spec does not list (`x-sentryagent-also-succeeds`).
pub(crate) async fn call_unit<E, F>(fut: F) -> Result<()>
where
    F: Future<Output = std::result::Result<raw::ResponseValue<()>, raw::Error<E>>>,
    E: IntoErrorBody,
{
    call(async move {
        match fut.await {
            Err(raw::Error::UnexpectedResponse(r)) if r.status().is_success() => {
                Ok(raw::ResponseValue::new((), r.status(), r.headers().clone()))
            }
            other => other,
        }
    })
    .await
}

/// Reads the body of a response with an undocumented status into the error.
async fn unexpected<E>(response: reqwest::Response) -> raw::Error<E> {
    let status = response.status();
    let headers = response.headers().clone();
    let error = match response.bytes().await {
        Ok(body) => Error::from_response(status, &headers, &body),
        Err(e) => Error::transport(e),
    };
    let message = error.to_string();
    report_error(error);
    raw::Error::Custom(message)
}

impl ClientHooks<Seam> for raw::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> std::result::Result<(), raw::Error<E>> {
        let fail = |error: Error| {
            let message = error.to_string();
            report_error(error);
            raw::Error::Custom(message)
        };
        let op = OperationSpec::find(info.operation_id).ok_or_else(|| {
            fail(Error::config(format!("operation `{}` is not in the spec", info.operation_id)))
        })?;
        let _ = CALL.try_with(|c| c.borrow_mut().operation = Some(op.id));
        let state = self.inner.state();
        if let Some(timeout) = state.attempt_timeout {
            *request.timeout_mut() = Some(timeout);
        }
        if !op.bearer {
            return Ok(());
        }
        let required = op.required_scopes();
        if let Some(requested) = &state.requested {
            if !requested.is_superset(&required) {
                return Err(fail(Error::missing_scope(required, requested.clone()).with_operation(op.id)));
            }
        }
        let Some(tokens) = &state.tokens else {
            return Err(fail(Error::config("this client has no token source").with_operation(op.id)));
        };
        let token = tokens.token().await.map_err(|e| fail(e.with_operation("issue_token")))?;
        if let Some(granted) = token.scopes() {
            if !granted.is_superset(&required) {
                return Err(fail(Error::missing_scope(required, granted.clone()).with_operation(op.id)));
            }
        }
        let header = token.bearer_header().map_err(fail)?;
        request.headers_mut().insert(AUTHORIZATION, header);
        let _ = CALL.try_with(|c| c.borrow_mut().token = Some(token));
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let route = OperationSpec::find(info.operation_id).map_or("", |op| op.path);
        let span = tracing::debug_span!(
            "agentidp.request",
            operation = info.operation_id,
            route,
            method = %request.method(),
            path = %request.url().path(),
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        async move {
            let started = Instant::now();
            let replay = request.try_clone();
            let mut attempt = 1u32;
            let mut response = self.client.execute(request).await;
            if let (Ok(first), Some(replay)) = (&response, replay) {
                if first.status() == reqwest::StatusCode::UNAUTHORIZED {
                    if let Some(next) = self.replay_after_401(replay, info).await {
                        attempt += 1;
                        response = self.client.execute(next).await;
                    }
                }
            }
            let current = tracing::Span::current();
            current.record("attempt", attempt);
            current.record("latency_ms", started.elapsed().as_millis() as u64);
            match &response {
                Ok(r) => {
                    current.record("status", r.status().as_u16());
                    report_response(r);
                    tracing::debug!(status = r.status().as_u16(), "response");
                }
                Err(e) => tracing::debug!(error = %e.without_url_ref(), "transport error"),
            }
            response
        }
        .instrument(span)
        .await
    }
}

impl raw::Client {
    /// After a 401 on a bearer call: drops the token that was refused, fetches
    /// one new token and returns the request to send once more. Never loops:
    /// the caller replays at most once.
    async fn replay_after_401(
        &self,
        mut replay: reqwest::Request,
        info: &OperationInfo,
    ) -> Option<reqwest::Request> {
        let op = OperationSpec::find(info.operation_id)?;
        let tokens = self.inner.state().tokens.as_ref().filter(|_| op.bearer)?;
        let used = CALL.try_with(|c| c.borrow().token.clone()).ok().flatten()?;
        tokens.invalidate(&used);
        match tokens.token().await {
            Ok(fresh) if !Arc::ptr_eq(&fresh, &used) => {
                let header = fresh.bearer_header().ok()?;
                replay.headers_mut().insert(AUTHORIZATION, header);
                tracing::debug!("token refused; replaying once with a new token");
                Some(replay)
            }
            Ok(_) => None,
            Err(e) => {
                report_error(e.with_operation("issue_token"));
                None
            }
        }
    }
}

trait WithoutUrlRef {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrlRef for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), url.path());
        }
        text
    }
}
