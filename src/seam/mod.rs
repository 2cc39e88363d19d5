//! The one seam between the generated client and the facade.
//!
//! Every raw call goes through [`Seam::call`]. For each attempt it builds the
//! generated client for that attempt only (so nothing else can reach it) and
//! runs the caller's closure on it; progenitor's hooks ([`hooks`]) authorize
//! and send that one attempt, keyed by the call's own state ([`CallState`]).
//! What the attempt came to is observed ([`outcome`]) and handed to
//! [`crate::retry::decide`], whose decision the loop here carries out. A
//! retry is a new request built by the generated code, so nothing is cloned
//! up front, and the total timeout is a deadline every attempt, token fetch
//! and backoff is measured against, not a timer of its own.

mod config;
mod hooks;
mod outcome;
mod provider;
pub(crate) mod transport;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::access_token::AccessToken;
use crate::error::{Error, ErrorKind, IntoErrorBody, Result};
use crate::operation::{Allowed, Operation, OperationSpec, Replay};
use crate::raw;
use crate::retry::{self, Decision, History, Observed};
use crate::scope::ScopeSet;

pub(crate) use config::{Admission, Config};
pub use config::{DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT};
pub(crate) use provider::TokenProvider;

/// Where a family of clients meets the generated bindings: the HTTP client,
/// the API root, the settings and, for API calls, the token provider.
pub(crate) struct Seam {
    http: reqwest::Client,
    api_url: Arc<str>,
    /// The API root, parsed once: an answer from another origin is refused.
    origin: reqwest::Url,
    config: Arc<Config>,
    /// `None` for the seam of the token endpoint itself.
    auth: Option<Auth>,
    /// Caps the API requests on the wire; token requests never wait for it.
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

struct Auth {
    tokens: Arc<dyn TokenProvider>,
    /// The scopes the client requests; a call needing another is refused unsent.
    requested: Option<(ScopeSet, Allowed)>,
}

impl fmt::Debug for Seam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seam")
            .field("api_url", &self.api_url)
            .field("requested", &self.requested_scopes())
            .finish_non_exhaustive()
    }
}

impl Seam {
    /// A seam without a token: what the token endpoint is called through.
    /// `in_flight` caps the API requests of the seams [`authorized`](Self::authorized)
    /// from this one.
    pub(crate) fn new(
        http: reqwest::Client,
        api_url: Arc<str>,
        config: Arc<Config>,
        in_flight: Option<Arc<tokio::sync::Semaphore>>,
    ) -> Result<Self> {
        let origin = reqwest::Url::parse(&api_url)
            .map_err(|e| Error::config(format!("the base URL is not a valid URL: {e}")))?;
        Ok(Self {
            http,
            api_url,
            origin,
            config,
            auth: None,
            in_flight,
        })
    }

    /// The seam of the API calls: this one's transport and settings, with
    /// `tokens` for the bearer and `requested` (when known) refusing the
    /// calls they cannot make before anything is sent.
    pub(crate) fn authorized(
        &self,
        tokens: Arc<dyn TokenProvider>,
        requested: Option<ScopeSet>,
    ) -> Self {
        let requested = requested.map(|scopes| {
            let allowed = Allowed::by(&scopes);
            (scopes, allowed)
        });
        Self {
            auth: Some(Auth { tokens, requested }),
            ..self.transport_only()
        }
    }

    /// The seam of the token endpoint: the same transport and settings, no
    /// bearer, no in-flight cap (a token request never waits for a slot).
    pub(crate) fn token_endpoint(&self) -> Self {
        Self {
            in_flight: None,
            ..self.transport_only()
        }
    }

    fn transport_only(&self) -> Self {
        Self {
            http: self.http.clone(),
            api_url: Arc::clone(&self.api_url),
            origin: self.origin.clone(),
            config: Arc::clone(&self.config),
            auth: None,
            in_flight: self.in_flight.clone(),
        }
    }

    /// The timeout of one attempt (a rollover waits at least this long
    /// before it re-checks a write whose outcome is unknown).
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.config.attempt_timeout
    }

    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn requested_scopes(&self) -> Option<&ScopeSet> {
        self.auth
            .as_ref()
            .and_then(|a| a.requested.as_ref())
            .map(|(scopes, _)| scopes)
    }

    /// Runs one operation. `send` gets the generated client, built for one
    /// attempt only, and the call's arguments, and returns that attempt's
    /// future; it is called again (with a copy of the arguments) for each
    /// attempt the retry rules allow.
    pub(crate) async fn call<A, T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        args: A,
        send: S,
    ) -> Result<T>
    where
        A: Clone,
        S: Fn(raw::Client, A) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        self.call_by(operation, args, send, None).await
    }

    /// [`call`](Self::call), ended by `by` if that comes before the total
    /// timeout: no retry waits past it, so an answer that would be retried
    /// (a 429 and its `Retry-After`) is returned as it is rather than lost
    /// to the caller's own deadline (the verifier's).
    pub(crate) async fn call_by<A, T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        args: A,
        send: S,
        by: Option<Instant>,
    ) -> Result<T>
    where
        A: Clone,
        S: Fn(raw::Client, A) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        match self
            .call_as_by(operation, operation, args, send, by)
            .await?
        {
            Answer::Value(value) => Ok(value),
            Answer::Done(conflict) => outcome::done(conflict),
        }
    }

    /// [`call`](Self::call), sent as `operation` but retried under the
    /// replay rule of `rules` (a PATCH that decommissions is replayed as the
    /// DELETE is). A replay that found the work done is
    /// [`Answer::Done`], with the `409` it got, for the caller to turn
    /// into a value.
    pub(crate) async fn call_as<A, T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        rules: Operation,
        args: A,
        send: S,
    ) -> Result<Answer<T>>
    where
        A: Clone,
        S: Fn(raw::Client, A) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        self.call_as_by(operation, rules, args, send, None).await
    }

    async fn call_as_by<A, T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        rules: Operation,
        args: A,
        send: S,
        by: Option<Instant>,
    ) -> Result<Answer<T>>
    where
        A: Clone,
        S: Fn(raw::Client, A) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        let op = operation.spec();
        let rules = rules.spec();
        let state = CallState::start(self, op, rules, by);
        let span = tracing::debug_span!(
            "agentidp.request",
            operation = op.id,
            route = op.path,
            method = op.method,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
        );
        let mut history = History::default();
        loop {
            history.attempts += 1;
            // A call waiting for a slot holds no request yet: 10,000 calls
            // queued behind `max_in_flight` cost only their arguments.
            if let Err(error) = state.take_slot().await {
                // Nothing of this attempt was sent.
                return Err(state.finish(error, &history));
            }
            let raw = raw::Client::new_with_client(
                &self.api_url,
                self.http.clone(),
                Call(Arc::clone(&state)),
            );
            // Boxed once: the generated future is large, the caller's stays small.
            let result = Box::pin(send(raw, args.clone())).await;
            let report = state.end_attempt();
            if !span.is_disabled() {
                span.record("attempt", history.attempts);
                if let Some((status, _)) = &report.seen {
                    span.record("status", status.as_u16());
                }
            }
            let (observed, error) = match (report.error, result) {
                // The hooks refused (scopes, token, limits): final.
                (Some(error), _) => (Observed::Refused, error),
                (None, Ok(value)) => {
                    if let Some(budget) = &self.config.budget {
                        budget.refund();
                    }
                    return Ok(Answer::Value(value.into_inner()));
                }
                (None, Err(raw_error)) => {
                    match outcome::observe::<T, E>(raw_error, report.seen).await {
                        Ok(value) => return Ok(Answer::Value(value)),
                        Err(pair) => pair,
                    }
                }
            };
            let decision = retry::decide(rules, &self.config.retry, &history, &observed);
            history.record(&observed);
            tracing::debug!(parent: &span, attempt = history.attempts, ?decision, "attempt classified");
            match decision {
                Decision::Return => return Err(state.finish(error, &history)),
                Decision::Done => return Ok(Answer::Done(state.finish(error, &history))),
                Decision::Unknown(what) => {
                    let unknown = Error::outcome_unknown(what, rules.outcome_check());
                    let unknown = match (error.status(), &observed) {
                        (Some(status), Observed::Response { .. }) => {
                            unknown.with_status(status, &HeaderMap::new())
                        }
                        _ => unknown,
                    };
                    return Err(state.finish(unknown, &history));
                }
                Decision::Refresh => {
                    history.refreshed = true;
                    if let (Some(auth), Some(used)) = (&self.auth, report.token) {
                        auth.tokens.invalidate(&used);
                    }
                }
                Decision::Retry { wait, cost } => {
                    let in_time = state.remaining().is_none_or(|left| wait < left);
                    let budgeted = self.config.budget.as_ref().is_none_or(|b| b.withdraw(cost));
                    if !(in_time && budgeted) {
                        return Err(state.finish(error, &history));
                    }
                    tracing::debug!(parent: &span, attempt = history.attempts, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// The contract tests' way in: one attempt of `operation` through the same
/// hooks as every call (operation check, scopes, token, origin, limits), its
/// raw result handed back unmapped, with any error the hooks recorded.
#[cfg(any(test, sentryagent_internal))]
impl Seam {
    pub(crate) async fn raw_attempt<T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        send: S,
    ) -> (
        std::result::Result<raw::ResponseValue<T>, raw::Error<E>>,
        Option<Error>,
    )
    where
        S: FnOnce(raw::Client) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
    {
        let state = CallState::start(self, operation.spec(), operation.spec(), None);
        let raw = raw::Client::new_with_client(
            &self.api_url,
            self.http.clone(),
            Call(Arc::clone(&state)),
        );
        let result = send(raw).await;
        (result, state.end_attempt().error)
    }
}

/// What a call came to.
pub(crate) enum Answer<T> {
    /// The operation's answer.
    Value(T),
    /// A replay answered a `409` done code after an earlier attempt that may
    /// have been applied: that attempt did the work. The `409` is kept.
    Done(Error),
}

/// progenitor's inner type: the state of one call, shared by its hooks.
#[derive(Clone)]
pub(crate) struct Call(Arc<CallState>);

impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Call").field(&self.0.op.id).finish()
    }
}

pub(crate) struct CallState {
    seam: Arc<Seam>,
    op: &'static OperationSpec,
    /// The operation whose replay rule the call follows (usually `op`).
    rules: &'static OperationSpec,
    /// When the total timeout runs out (`None`: too far to represent).
    /// On tokio's clock, as every wait of the call is (so a paused clock
    /// in a test moves the deadline too).
    deadline: Option<Instant>,
    report: Mutex<Report>,
}

/// What the hooks learnt of the current attempt.
#[derive(Default)]
struct Report {
    /// An error that ends the call. The first report wins: it is the cause,
    /// and what progenitor makes of the aftermath is not.
    error: Option<Error>,
    /// Status and headers of a non-2xx answer.
    seen: Option<(StatusCode, HeaderMap)>,
    /// The token on the request, for the 401 refresh.
    token: Option<Arc<AccessToken>>,
    /// The attempt's in-flight slot, held until its body is read (by
    /// progenitor, after the hooks return) and given back when the attempt ends.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl CallState {
    /// The state of a call of `op` starting now, its deadline the total
    /// timeout away, or `by` if that is sooner.
    fn start(
        seam: &Arc<Seam>,
        op: &'static OperationSpec,
        rules: &'static OperationSpec,
        by: Option<Instant>,
    ) -> Arc<Self> {
        let total = Instant::now().checked_add(seam.config.total_timeout);
        let deadline = match (total, by) {
            (Some(total), Some(by)) => Some(total.min(by)),
            (total, by) => total.or(by),
        };
        Arc::new(Self {
            seam: Arc::clone(seam),
            op,
            rules,
            deadline,
            report: Mutex::new(Report::default()),
        })
    }

    fn report(&self) -> MutexGuard<'_, Report> {
        // Every state the fields can hold is valid, even after a panic.
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records `error` as the call's outcome (unless one is recorded) and
    /// returns what progenitor's hook signature needs.
    fn fail<E>(&self, error: Error) -> raw::Error<E> {
        self.report().error.get_or_insert(error);
        raw::Error::Custom(String::new())
    }

    /// Takes what the hooks learnt of the attempt that just ended, giving
    /// its in-flight slot back.
    fn end_attempt(&self) -> Report {
        let mut report = std::mem::take(&mut *self.report());
        // Given back now, not when the report goes out of scope after a backoff.
        report.slot = None;
        report
    }

    /// Waits for an in-flight slot (if the client caps them) unless the
    /// attempt holds one. Waiting for it holds nothing else.
    async fn take_slot(&self) -> Result<()> {
        let Some(slots) = &self.seam.in_flight else {
            return Ok(());
        };
        if self.report().slot.is_some() {
            return Ok(());
        }
        let acquire = Arc::clone(slots).acquire_owned();
        // The wait is the call's like any other: bounded by its deadline
        // (the slots of a retry queue behind calls with later deadlines).
        let slot = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, acquire)
                .await
                .map_err(|_| Error::total_timeout(self.seam.config.total_timeout))?,
            None => acquire.await,
        };
        self.report().slot = slot.ok();
        Ok(())
    }

    /// Time left before the deadline (`None`: no deadline).
    fn remaining(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The error the call returns: with its operation, the deadline's
    /// verdict, and marked not replay-safe when a write may have happened.
    fn finish(&self, error: Error, history: &History) -> Error {
        let late = self.remaining().is_some_and(|left| left.is_zero());
        let unsent_only = self.rules.replay == Replay::UnsentOnly;
        let error = match error.kind() {
            ErrorKind::Timeout if late => {
                if unsent_only && history.may_have_applied {
                    Error::outcome_unknown(
                        &format!(
                            "the call hit its total timeout of {:?} after the request was sent",
                            self.seam.config.total_timeout
                        ),
                        self.rules.outcome_check(),
                    )
                } else {
                    Error::total_timeout(self.seam.config.total_timeout)
                }
            }
            _ => error,
        };
        let error = if unsent_only && history.may_have_applied {
            error.not_replay_safe()
        } else {
            error
        };
        error.with_operation(self.op.operation)
    }
}
