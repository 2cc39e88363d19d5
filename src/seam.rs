//! The one seam between the generated client and the facade: progenitor's
//! `ClientHooks`. Every operation passes through it, keyed by its operation id,
//! so auth, scope checks, retries, the 401 replay, the body limit and tracing
//! are wired once.
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

use bytes::Bytes;
use futures::TryStreamExt;
use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH};
use tracing::Instrument;

use crate::auth::{AccessToken, TokenCache};
use crate::error::{Error, ErrorBody, IntoErrorBody, Result, Seen};
use crate::operation::{OperationSpec, Replay};
use crate::raw;
use crate::retry::{RetryBudget, RetryCost, RetryPolicy};
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
    pub retry: RetryPolicy,
    pub budget: Option<Arc<RetryBudget>>,
    /// The largest response body read.
    pub max_body: u64,
    /// Caps the requests on the wire at once, client-wide.
    pub in_flight: Option<Arc<tokio::sync::Semaphore>>,
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
            .field("retry", &self.0.retry)
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
    /// The operation, for the error.
    operation: Option<&'static OperationSpec>,
    /// Whether an attempt was handed to the transport.
    sent: bool,
}

tokio::task_local! {
    static CALL: RefCell<Call>;
}

/// Records the error the call will return. The first report wins: it is the
/// cause, and what progenitor makes of the aftermath is not.
fn report_error(error: Error) {
    // Outside `call` (not reachable from the public API) the error still
    // surfaces as progenitor's string.
    let _ = CALL.try_with(|c| {
        c.borrow_mut().error.get_or_insert(error);
    });
}

fn with_call(f: impl FnOnce(&mut Call)) {
    let _ = CALL.try_with(|c| f(&mut c.borrow_mut()));
}

/// Runs one generated call within `total` and maps its outcome into the
/// facade's types.
pub(crate) fn call<T, E, F>(fut: F, total: Option<Duration>) -> impl Future<Output = Result<T>>
where
    F: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
    E: IntoErrorBody,
{
    // Boxed once: the layers below move a pointer, not the generated future.
    let fut = Box::pin(fut);
    async move {
        let (result, call) = CALL
            .scope(RefCell::new(Call::default()), async move {
                let run = async move {
                    match fut.await {
                        Ok(value) => Ok(value.into_inner()),
                        // An undocumented status: its body is still unread.
                        Err(raw::Error::UnexpectedResponse(response)) => {
                            Err(unexpected(response).await)
                        }
                        Err(other) => Err(other),
                    }
                };
                let result = match total {
                    Some(limit) => match tokio::time::timeout(limit, run).await {
                        Ok(result) => result,
                        Err(_elapsed) => {
                            report_error(timed_out(limit));
                            Err(raw::Error::Custom(String::new()))
                        }
                    },
                    None => run.await,
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
                Some(op) => error.with_operation(op.id),
                None => error,
            }
        })
    }
}

/// The error for a call cut off by its total timeout: an unsent-only write
/// that was already sent has an unknown outcome.
fn timed_out(limit: Duration) -> Error {
    let (op, sent) = CALL.with(|c| {
        let c = c.borrow();
        (c.operation, c.sent)
    });
    match (op, sent) {
        (Some(op), true) if op.replay == Replay::UnsentOnly => Error::outcome_unknown(
            op.id,
            &format!("the call hit its total timeout of {limit:?} after the request was sent"),
            op.outcome_check
                .unwrap_or("check the resource before trying again"),
        ),
        _ => Error::total_timeout(limit),
    }
}

/// Like [`call`] for operations that answer with no body, also accepting a
/// 2xx the spec does not list (`x-sentryagent-also-succeeds`).
pub(crate) fn call_unit<E, F>(fut: F, total: Option<Duration>) -> impl Future<Output = Result<()>>
where
    F: Future<Output = std::result::Result<raw::ResponseValue<()>, raw::Error<E>>>,
    E: IntoErrorBody,
{
    let accept_other_2xx = async move {
        match fut.await {
            Err(raw::Error::UnexpectedResponse(r)) if r.status().is_success() => {
                Ok(raw::ResponseValue::new((), r.status(), r.headers().clone()))
            }
            other => other,
        }
    };
    // Not awaited here: `call` boxes it once.
    call(accept_other_2xx, total)
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
            fail(Error::config(format!(
                "operation `{}` is not in the spec",
                info.operation_id
            )))
        })?;
        with_call(|c| c.operation = Some(op));
        let state = self.inner.state();
        if let Some(timeout) = state.attempt_timeout {
            *request.timeout_mut() = Some(timeout);
        }
        if !op.bearer {
            return Ok(());
        }
        if let Some(requested) = state.requested.as_ref().filter(|r| !op.granted_by(r)) {
            return Err(fail(Error::missing_scope(
                op.required_scopes(),
                requested.clone(),
            )));
        }
        let Some(tokens) = &state.tokens else {
            return Err(fail(Error::config("this client has no token source")));
        };
        let token = tokens
            .token()
            .await
            .map_err(|e| fail(e.with_operation("issue_token")))?;
        if let Some(granted) = token.scopes().filter(|g| !op.granted_by(g)) {
            return Err(fail(Error::missing_scope(
                op.required_scopes(),
                granted.clone(),
            )));
        }
        let header = token.bearer_header().map_err(fail)?;
        request.headers_mut().insert(AUTHORIZATION, header);
        with_call(|c| c.token = Some(token));
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let op = OperationSpec::find(info.operation_id);
        let span = tracing::debug_span!(
            "agentidp.request",
            operation = info.operation_id,
            route = op.map_or("", |op| op.path),
            method = %request.method(),
            path = request.url().path(),
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        // Waiting for a slot holds only this small future; the attempts (and
        // their buffers) start once a slot is free.
        let _slot = match &self.inner.state().in_flight {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        let response = Box::pin(self.attempts(request, op))
            .instrument(span.clone())
            .await;
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Ok(r) = &response {
            span.record("status", r.status().as_u16());
            // Only error mapping needs these; spare successes the copy.
            if !r.status().is_success() {
                let seen = Seen {
                    status: r.status(),
                    headers: r.headers().clone(),
                };
                with_call(|c| c.seen = Some(seen));
            }
        }
        response
    }
}

/// What to do after one attempt.
enum Next {
    Return,
    Retry {
        wait: Duration,
        cost: RetryCost,
    },
    /// The attempt was sent and failed in a way that leaves an unsent-only
    /// write's outcome unknown.
    Unknown(&'static str),
}

impl raw::Client {
    /// Sends `request`, retrying as the policy and the operation's replay rule
    /// allow. Every attempt is logged in the span.
    async fn attempts(
        &self,
        mut request: reqwest::Request,
        op: Option<&'static OperationSpec>,
    ) -> reqwest::Result<reqwest::Response> {
        let state = self.inner.state();
        let replay = op.map_or(Replay::UnsentOnly, |op| op.replay);
        let mut refreshed = false;
        let mut attempt = 1u32;
        loop {
            tracing::Span::current().record("attempt", attempt);
            let spare = request.try_clone();
            with_call(|c| c.sent = true);
            let outcome = match self.client.execute(request).await {
                Ok(response) => self.checked(response, replay, attempt).await,
                Err(e) => Err(e),
            };
            let refused = matches!(&outcome, Ok(r) if r.status() == StatusCode::UNAUTHORIZED);
            if let (true, false, Some(spare)) = (refused, refreshed, &spare) {
                refreshed = true;
                if let Some(next) = self.replay_after_401(spare, op).await {
                    tracing::debug!(attempt, "token refused; replaying once with a new token");
                    request = next;
                    attempt += 1;
                    continue;
                }
            }
            let next = match &outcome {
                Ok(response) => after_response(response, replay, &state.retry, attempt),
                Err(e) => after_transport_error(e, replay, &state.retry, attempt),
            };
            match next {
                Next::Return => {}
                Next::Unknown(what) => {
                    if let Some(op) = op {
                        let check = op
                            .outcome_check
                            .unwrap_or("check the resource before trying again");
                        let error = Error::outcome_unknown(op.id, what, check);
                        report_error(match &outcome {
                            Ok(response) => {
                                error.with_status(response.status(), response.headers())
                            }
                            Err(_) => error,
                        });
                    }
                }
                Next::Retry { wait, cost } => {
                    let allowed = attempt < state.retry.max_attempts
                        && state.budget.as_ref().is_none_or(|b| b.withdraw(cost));
                    if let (true, Some(spare)) = (allowed, spare) {
                        log_retry(&outcome, attempt, wait);
                        // Drain what is left of a retried response so its
                        // connection can go back to the pool.
                        if let Ok(response) = outcome {
                            let _ = response.bytes().await;
                        }
                        tokio::time::sleep(wait).await;
                        request = spare;
                        attempt += 1;
                        continue;
                    }
                }
            }
            if let (Ok(response), Some(budget)) = (&outcome, &state.budget)
                && response.status().is_success()
            {
                budget.refund();
            }
            if let Err(e) = &outcome {
                tracing::debug!(attempt, error = %redact_url(e), "transport error");
            }
            return outcome;
        }
    }

    /// Applies the body limit and the "conflict on a replay means done" rule.
    async fn checked(
        &self,
        response: reqwest::Response,
        replay: Replay,
        attempt: u32,
    ) -> reqwest::Result<reqwest::Response> {
        let max = self.inner.state().max_body;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if replay == Replay::ConflictMeansDone
            && attempt > 1
            && response.status() == StatusCode::CONFLICT
        {
            let (parts, body) = split(response, max).await?;
            let done = ErrorBody::parse(&body).is_some_and(|b| b.code.contains("_ALREADY_"));
            if done {
                tracing::debug!(
                    attempt,
                    "a replay found the work done by an earlier attempt"
                );
                return Ok(rebuild(StatusCode::NO_CONTENT, parts.headers, Bytes::new()));
            }
            return Ok(rebuild(parts.status, parts.headers, body));
        }
        match declared {
            Some(length) if length <= max => Ok(response),
            _ => Ok(limited(response, max)),
        }
    }

    /// After a 401 on a bearer call: drops the token that was refused, fetches
    /// one new token and returns the request to send once more. Never loops:
    /// the caller replays at most once.
    async fn replay_after_401(
        &self,
        replay: &reqwest::Request,
        op: Option<&'static OperationSpec>,
    ) -> Option<reqwest::Request> {
        let tokens = self
            .inner
            .state()
            .tokens
            .as_ref()
            .filter(|_| op.is_some_and(|op| op.bearer))?;
        let used = CALL.try_with(|c| c.borrow().token.clone()).ok().flatten()?;
        tokens.invalidate(&used);
        match tokens.token().await {
            Ok(fresh) if !Arc::ptr_eq(&fresh, &used) => {
                let mut next = replay.try_clone()?;
                let header = fresh.bearer_header().ok()?;
                next.headers_mut().insert(AUTHORIZATION, header);
                with_call(|c| c.token = Some(fresh));
                Some(next)
            }
            Ok(_) => None,
            Err(e) => {
                report_error(e.with_operation("issue_token"));
                None
            }
        }
    }
}

/// Classifies a response.
fn after_response(
    response: &reqwest::Response,
    replay: Replay,
    policy: &RetryPolicy,
    attempt: u32,
) -> Next {
    let status = response.status();
    if !policy.retries_status(status) {
        return Next::Return;
    }
    // A 429 is the rate limiter refusing before any work: safe for every
    // operation. Any other retryable status a proxy may send after forwarding.
    if replay == Replay::UnsentOnly && status != StatusCode::TOO_MANY_REQUESTS {
        return Next::Unknown(
            "the server answered with a gateway or availability error after the request was sent",
        );
    }
    match Error::from_response(status, response.headers(), b"").retry_after() {
        Some(wait) if wait > policy.max_retry_after => Next::Return,
        Some(wait) => Next::Retry {
            wait,
            cost: RetryCost::Retry,
        },
        None => Next::Retry {
            wait: policy.backoff(attempt),
            cost: RetryCost::Retry,
        },
    }
}

/// Classifies a transport failure: a connect error provably sent nothing.
fn after_transport_error(
    e: &reqwest::Error,
    replay: Replay,
    policy: &RetryPolicy,
    attempt: u32,
) -> Next {
    let wait = policy.backoff(attempt);
    if e.is_connect() {
        return Next::Retry {
            wait,
            cost: RetryCost::Retry,
        };
    }
    if replay == Replay::UnsentOnly {
        return Next::Unknown(if e.is_timeout() {
            "the attempt timed out after the request was sent"
        } else {
            "the connection failed after the request was sent"
        });
    }
    let cost = if e.is_timeout() {
        RetryCost::AfterTimeout
    } else {
        RetryCost::Retry
    };
    Next::Retry { wait, cost }
}

fn log_retry(outcome: &reqwest::Result<reqwest::Response>, attempt: u32, wait: Duration) {
    let wait_ms = wait.as_millis() as u64;
    match outcome {
        Ok(r) => tracing::debug!(attempt, status = r.status().as_u16(), wait_ms, "retrying"),
        Err(e) => tracing::debug!(attempt, error = %redact_url(e), wait_ms, "retrying"),
    }
}

/// A transport error's text with the URL cut down to its path.
fn redact_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text.replace(url.as_str(), url.path()),
        None => text,
    }
}

/// Reads a whole response, up to `max` bytes.
async fn split(
    response: reqwest::Response,
    max: u64,
) -> reqwest::Result<(http::response::Parts, Bytes)> {
    let response = limited(response, max);
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.headers = headers;
    Ok((parts, body))
}

fn rebuild(
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
) -> reqwest::Response {
    let mut response = http::Response::new(reqwest::Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    reqwest::Response::from(response)
}

/// The error a body stream yields past the limit.
#[derive(Debug)]
struct TooLarge(u64);

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "response body over {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

/// Wraps the body so reading past `max` bytes fails (and reports
/// `ResponseTooLarge`) instead of buffering it.
fn limited(response: reqwest::Response, max: u64) -> reqwest::Response {
    let status = response.status();
    let headers = response.headers().clone();
    let mut seen = 0u64;
    let body = response
        .bytes_stream()
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        .and_then(move |chunk| {
            seen += chunk.len() as u64;
            let result = if seen > max {
                report_error(Error::response_too_large(max));
                Err(Box::new(TooLarge(max)) as Box<dyn std::error::Error + Send + Sync>)
            } else {
                Ok(chunk)
            };
            std::future::ready(result)
        });
    let mut limited = http::Response::new(reqwest::Body::wrap_stream(body));
    *limited.status_mut() = status;
    *limited.headers_mut() = headers;
    reqwest::Response::from(limited)
}
