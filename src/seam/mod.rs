//! The one seam between the generated client and the facade.
//!
//! Every raw call goes through [`Seam::call`]: it builds the generated client
//! for that one call (so nothing else can reach it), runs the caller's closure
//! on it within the total timeout, and maps the outcome into the facade's
//! types. The generated client calls back into the seam through progenitor's
//! hooks ([`hooks`]), keyed by the call's own state ([`Call`]), which carries
//! the operation, what the hooks learnt (an error they raised, the status of
//! the last response) and nothing else. Retry decisions are made by
//! [`crate::retry::decide`]; this module only observes and acts.

mod attempt;
mod hooks;

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::auth::source::ClientCredentials;
use crate::auth::{AccessToken, TokenCache};
use crate::client::Config;
use crate::error::{Error, ErrorKind, IntoErrorBody, Result};
use crate::operation::{Operation, OperationSpec, Replay};
use crate::raw;
use crate::retry::History;
use crate::scope::ScopeSet;

/// Where a family of clients meets the generated bindings: the HTTP client,
/// the API root, the settings and, for API calls, the token cache.
pub(crate) struct Seam {
    http: reqwest::Client,
    api_url: Arc<str>,
    config: Arc<Config>,
    /// `None` for the seam of the token endpoint itself.
    auth: Option<Auth>,
    /// Caps the API requests on the wire; token requests never wait for it.
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

struct Auth {
    tokens: Arc<TokenCache>,
    /// The scopes the client requests; a call needing another is refused unsent.
    requested: Option<ScopeSet>,
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
    /// The seam of `POST /token`: no bearer, no in-flight cap.
    pub(crate) fn token_endpoint(
        http: reqwest::Client,
        api_url: Arc<str>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            http,
            api_url,
            config,
            auth: None,
            in_flight: None,
        }
    }

    /// The seam of the API calls.
    pub(crate) fn api(
        http: reqwest::Client,
        api_url: Arc<str>,
        config: Arc<Config>,
        tokens: Arc<TokenCache>,
        requested: Option<ScopeSet>,
        in_flight: Option<Arc<tokio::sync::Semaphore>>,
    ) -> Self {
        Self {
            http,
            api_url,
            config,
            auth: Some(Auth { tokens, requested }),
            in_flight,
        }
    }

    /// A seam for a token of its own with only `scopes`, sharing the pool,
    /// the settings and the client secret.
    pub(crate) fn narrowed(&self, scopes: ScopeSet) -> Result<Self> {
        let tokens = self.tokens();
        let credentials = tokens
            .and_then(|t| t.client_credentials())
            .ok_or_else(|| Error::config("only a client-credentials client can be narrowed"))?;
        let mut held = credentials.scopes().clone();
        if let Some(granted) = tokens
            .and_then(|t| t.peek())
            .and_then(|t| t.scopes().cloned())
        {
            held = held
                .iter()
                .filter(|s| granted.contains(s))
                .cloned()
                .collect();
        }
        let extra = held.missing_from(&scopes);
        if !extra.is_empty() {
            return Err(Error::invalid_input(format!(
                "cannot narrow to scopes this client does not hold: {extra}"
            )));
        }
        if scopes.is_empty() {
            return Err(Error::invalid_input("cannot narrow to no scopes"));
        }
        let narrowed = ClientCredentials::narrowed(credentials, scopes.clone());
        Ok(Self::api(
            self.http.clone(),
            Arc::clone(&self.api_url),
            Arc::clone(&self.config),
            TokenCache::new(Box::new(narrowed), &self.config),
            Some(scopes),
            self.in_flight.clone(),
        ))
    }

    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn tokens(&self) -> Option<&Arc<TokenCache>> {
        self.auth.as_ref().map(|a| &a.tokens)
    }

    pub(crate) fn requested_scopes(&self) -> Option<&ScopeSet> {
        self.auth.as_ref().and_then(|a| a.requested.as_ref())
    }

    /// Runs one operation: `send` gets the generated client, built for this
    /// call only, and returns its future; the seam bounds it by the total
    /// timeout and maps whatever comes out.
    pub(crate) async fn call<T, E, S, Fut>(
        self: &Arc<Self>,
        operation: Operation,
        send: S,
    ) -> Result<T>
    where
        S: FnOnce(raw::Client) -> Fut,
        Fut: Future<Output = std::result::Result<raw::ResponseValue<T>, raw::Error<E>>>,
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        let call = Call(Arc::new(CallState {
            seam: Arc::clone(self),
            op: operation.spec(),
            report: Mutex::new(Report::default()),
        }));
        let raw = raw::Client::new_with_client(&self.api_url, self.http.clone(), call.clone());
        let total = self.config.total_timeout;
        // Boxed once: the generated future is large, the caller's stays small.
        let outcome = tokio::time::timeout(total, Box::pin(send(raw))).await;
        call.0.finish(outcome, total).await
    }
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
    report: Mutex<Report>,
}

/// What the hooks learnt of the call.
#[derive(Default)]
struct Report {
    /// The error the call returns. The first report wins: it is the cause,
    /// and what progenitor makes of the aftermath is not.
    error: Option<Error>,
    /// Status and headers of the last non-2xx response.
    seen: Option<(StatusCode, HeaderMap)>,
    /// The token on the request, for the 401 replay.
    token: Option<Arc<AccessToken>>,
    /// An attempt is on the wire right now.
    in_flight: bool,
    /// The in-flight slot of the last attempt, held until its body is read
    /// (by progenitor, after the hooks return) and given back at the end of
    /// the call, or before a backoff or a token fetch.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    history: History,
}

impl CallState {
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

    /// Maps the generated call's outcome.
    async fn finish<T, E>(
        &self,
        outcome: std::result::Result<
            std::result::Result<raw::ResponseValue<T>, raw::Error<E>>,
            tokio::time::error::Elapsed,
        >,
        total: Duration,
    ) -> Result<T>
    where
        T: DeserializeOwned,
        E: IntoErrorBody,
    {
        let (reported, seen, in_flight, history) = {
            let mut report = self.report();
            report.slot = None;
            (
                report.error.take(),
                report.seen.take(),
                report.in_flight,
                report.history,
            )
        };
        let may_have_applied = in_flight || history.may_have_applied;
        let error = match (reported, outcome) {
            (Some(error), _) => error,
            (None, Ok(Ok(value))) => return Ok(value.into_inner()),
            (None, Ok(Err(raw_error))) => match map_raw(raw_error, seen.as_ref()).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            },
            (None, Err(_elapsed)) if in_flight && self.op.replay == Replay::UnsentOnly => {
                Error::outcome_unknown(
                    &format!(
                        "the call hit its total timeout of {total:?} while the request was on the wire"
                    ),
                    self.op.outcome_check(),
                )
            }
            (None, Err(_elapsed)) => Error::total_timeout(total),
        };
        let error = if self.op.replay == Replay::UnsentOnly && may_have_applied {
            error.not_replay_safe()
        } else {
            error
        };
        Err(error.with_operation(self.op.operation))
    }
}

/// Maps progenitor's error, with what the hooks saw of the last response.
async fn map_raw<T, E>(e: raw::Error<E>, seen: Option<&(StatusCode, HeaderMap)>) -> Result<T>
where
    T: DeserializeOwned,
    E: IntoErrorBody,
{
    Err(match e {
        raw::Error::ErrorResponse(rv) => {
            let (status, headers) = (rv.status(), rv.headers().clone());
            Error::from_body(status, &headers, rv.into_inner().into_error_body())
        }
        raw::Error::InvalidResponsePayload(bytes, _) => match seen {
            // progenitor drops the status here; the hooks kept it.
            Some((status, headers)) if !status.is_success() => {
                Error::from_response(*status, headers, &bytes)
            }
            // A success body that does not fit: decode again to name the field.
            _ => {
                let de = &mut serde_json::Deserializer::from_slice(&bytes);
                match serde_path_to_error::deserialize::<_, T>(de) {
                    Ok(value) => return Ok(value),
                    Err(e) => Error::decode(&e.path().to_string(), e.inner()),
                }
            }
        },
        raw::Error::UnexpectedResponse(response) => {
            // Only non-2xx get here (any 2xx decodes); the body is buffered.
            let (status, headers) = (response.status(), response.headers().clone());
            match response.bytes().await {
                Ok(body) => Error::from_response(status, &headers, &body),
                Err(e) => Error::transport(e),
            }
        }
        raw::Error::CommunicationError(e)
        | raw::Error::ResponseBodyError(e)
        | raw::Error::InvalidUpgrade(e) => Error::transport(e),
        raw::Error::InvalidRequest(message) => Error::invalid_input(message),
        raw::Error::Custom(message) => Error::new(ErrorKind::Transport, message),
    })
}
