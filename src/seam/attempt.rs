//! Sending one request, attempt after attempt: each attempt's outcome is
//! observed ([`Observed`]), the retry rules decide ([`retry::decide`]), and
//! this module does what they say. An in-flight slot is held only while an
//! attempt is on the wire and its body is read, never across a token fetch
//! or a backoff sleep.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH};
use tracing::Instrument;

use super::CallState;
use crate::error::{self as error_mod, Error, ErrorBody};
use crate::retry::{self, Decision, Observed};

/// One attempt's outcome, with the body read (or the reason it was not).
enum Attempt {
    /// A response, its body in memory.
    Answered(reqwest::Response),
    /// The transport failed.
    Failed(reqwest::Error),
    /// The SDK refused the answer; the error is reported. The response, if
    /// any, is handed on only for progenitor to finish with.
    Refused(reqwest::Response),
}

impl CallState {
    /// Sends `request` as the retry rules allow; every attempt is logged in
    /// the `agentidp.request` span.
    pub(super) async fn attempts(
        &self,
        request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        let op = self.op;
        let span = tracing::debug_span!(
            "agentidp.request",
            operation = op.id,
            route = op.path,
            method = op.method,
            status = tracing::field::Empty,
            attempt = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        if span.is_disabled() {
            // Nobody listens: spare the records.
            let outcome = self.attempt_loop(request, &span).await;
            if let Ok(response) = &outcome {
                self.see(response);
            }
            return outcome;
        }
        let started = Instant::now();
        let outcome = self.attempt_loop(request, &span).instrument(span.clone()).await;
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Ok(response) = &outcome {
            span.record("status", response.status().as_u16());
            self.see(response);
        }
        outcome
    }

    /// Keeps what error mapping needs of a non-2xx answer.
    fn see(&self, response: &reqwest::Response) {
        if !response.status().is_success() {
            self.report().seen = Some((response.status(), response.headers().clone()));
        }
    }

    async fn attempt_loop(
        &self,
        mut request: reqwest::Request,
        span: &tracing::Span,
    ) -> reqwest::Result<reqwest::Response> {
        let config = &self.seam.config;
        let mut history = self.report().history;
        loop {
            history.attempts += 1;
            span.record("attempt", history.attempts);
            let spare = request.try_clone();
            let attempt = self.send_once(request, spare.as_ref()).await;
            let observed = self.observe(&attempt);
            let decision = retry::decide(self.op, &config.retry, &history, &observed);
            history.record(&observed);
            if decision == Decision::Refresh {
                history.refreshed = true;
            }
            {
                let mut report = self.report();
                report.history = history;
                if decision != Decision::Return {
                    // No slot is held across a token fetch or a backoff.
                    report.slot = None;
                }
            }
            let next = match decision {
                Decision::Return => None,
                Decision::Done => {
                    tracing::debug!(
                        attempt = history.attempts,
                        "a replay found the work done by an earlier attempt"
                    );
                    return Ok(empty(StatusCode::NO_CONTENT));
                }
                Decision::Unknown(what) => {
                    let error = Error::outcome_unknown(what, self.op.outcome_check());
                    let error = match &attempt {
                        Attempt::Answered(r) => error.with_status(r.status(), r.headers()),
                        _ => error,
                    };
                    self.report().error.get_or_insert(error);
                    None
                }
                Decision::Refresh => match self.fresh_token().await {
                    Ok(Some(header)) => spare.map(|mut next| {
                        tracing::debug!(
                            attempt = history.attempts,
                            "token refused; replaying once with a new token"
                        );
                        next.headers_mut().insert(AUTHORIZATION, header);
                        next
                    }),
                    Ok(None) => None,
                    Err(error) => {
                        self.report().error.get_or_insert(error);
                        None
                    }
                },
                Decision::Retry { wait, cost } => {
                    let allowed = config.budget.as_ref().is_none_or(|b| b.withdraw(cost));
                    match spare.filter(|_| allowed) {
                        Some(next) => {
                            log_retry(&attempt, history.attempts, wait);
                            tokio::time::sleep(wait).await;
                            Some(next)
                        }
                        None => None,
                    }
                }
            };
            match next {
                Some(next) => request = next,
                None => return self.returned(attempt),
            }
        }
    }

    /// What the caller's progenitor code gets back.
    fn returned(&self, attempt: Attempt) -> reqwest::Result<reqwest::Response> {
        match attempt {
            Attempt::Answered(response) => {
                if let (true, Some(budget)) =
                    (response.status().is_success(), &self.seam.config.budget)
                {
                    budget.refund();
                }
                Ok(response)
            }
            Attempt::Refused(response) => Ok(response),
            Attempt::Failed(e) => {
                tracing::debug!(error = %redact_url(&e), "transport error");
                Err(e)
            }
        }
    }

    /// One attempt on the wire. An error response's body is read here (the
    /// retry rules may need it); a success whose declared length is within
    /// the limit is handed on unread, its in-flight slot kept until the call
    /// ends, so that progenitor reads it straight from the connection.
    async fn send_once(&self, request: reqwest::Request, spare: Option<&reqwest::Request>) -> Attempt {
        let asked = match spare {
            Some(spare) => Cow::Borrowed(spare.url()),
            None => Cow::Owned(request.url().clone()),
        };
        // Waiting for a slot holds nothing else.
        let slot = match &self.seam.in_flight {
            Some(slots) => Arc::clone(slots).acquire_owned().await.ok(),
            None => None,
        };
        {
            let mut report = self.report();
            report.in_flight = true;
            report.slot = slot;
        }
        let max = self.seam.config.max_body;
        let attempt = match self.seam.http.execute(request).await {
            Err(e) => Attempt::Failed(e),
            Ok(response) if !same_origin(response.url(), &asked) => {
                self.report().error.get_or_insert(Error::invalid_response(
                    "the answer came from another origin than the request went to (a redirect \
                     was followed); it was refused. A reqwest::Client given to the SDK should \
                     not follow redirects",
                ));
                Attempt::Refused(response)
            }
            Ok(response) if response.status().is_success() && declared_length(&response).is_some_and(|n| n <= max) => {
                Attempt::Answered(response)
            }
            Ok(response) => match buffered(response, max).await {
                Ok(response) => Attempt::Answered(response),
                Err(Unread::Transport(e)) => Attempt::Failed(e),
                Err(Unread::TooLarge(status)) => {
                    self.report().error.get_or_insert(Error::response_too_large(max));
                    Attempt::Refused(empty(status))
                }
            },
        };
        self.report().in_flight = false;
        attempt
    }

    /// The attempt as the retry rules see it.
    fn observe(&self, attempt: &Attempt) -> Observed {
        match attempt {
            Attempt::Refused(_) => Observed::Refused,
            Attempt::Failed(e) if e.is_connect() => Observed::Unsent,
            Attempt::Failed(e) => Observed::Failed {
                timeout: e.is_timeout(),
            },
            Attempt::Answered(response) => {
                let status = response.status();
                let code = (status == StatusCode::CONFLICT && !self.op.done_codes.is_empty())
                    .then(|| {
                        peek_body(response)
                            .and_then(|b| ErrorBody::parse(b))
                            .map(|b| b.code)
                    })
                    .flatten();
                Observed::Response {
                    status,
                    retry_after: error_mod::retry_after(response.headers()),
                    code,
                }
            }
        }
    }
}

/// Why a body was not read.
enum Unread {
    Transport(reqwest::Error),
    TooLarge(StatusCode),
}

/// The body of a buffered response (see [`buffered`]).
#[derive(Clone)]
struct Body(Bytes);

/// Reads the whole body, up to `max` bytes, and returns the response with
/// the body in memory.
async fn buffered(mut response: reqwest::Response, max: u64) -> Result<reqwest::Response, Unread> {
    let status = response.status();
    let declared = declared_length(&response);
    if declared.is_some_and(|length| length > max) {
        return Err(Unread::TooLarge(status));
    }
    let mut body = BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(Unread::Transport)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(Unread::TooLarge(status));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let mut rebuilt = http::Response::new(reqwest::Body::from(body.clone()));
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = std::mem::take(response.headers_mut());
    rebuilt.extensions_mut().insert(Body(body));
    Ok(reqwest::Response::from(rebuilt))
}

/// The body length a response declares.
fn declared_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// Whether two URLs share scheme, host and port (without building either
/// origin, which allocates).
fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// The body of a response [`buffered`] read.
fn peek_body(response: &reqwest::Response) -> Option<&[u8]> {
    response.extensions().get::<Body>().map(|b| b.0.as_ref())
}

/// A response with no body.
fn empty(status: StatusCode) -> reqwest::Response {
    let mut response = http::Response::new(reqwest::Body::from(Bytes::new()));
    *response.status_mut() = status;
    reqwest::Response::from(response)
}

fn log_retry(attempt: &Attempt, attempts: u32, wait: Duration) {
    let wait_ms = wait.as_millis() as u64;
    match attempt {
        Attempt::Answered(r) | Attempt::Refused(r) => {
            tracing::debug!(
                attempt = attempts,
                status = r.status().as_u16(),
                wait_ms,
                "retrying"
            );
        }
        Attempt::Failed(e) => {
            tracing::debug!(attempt = attempts, error = %redact_url(e), wait_ms, "retrying")
        }
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
