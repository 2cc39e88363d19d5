//! Sending one request, attempt after attempt: each attempt's outcome is
//! observed ([`Observed`]), the retry rules decide ([`retry::decide`]), and
//! this module does what they say. An in-flight slot is held only while an
//! attempt is on the wire and its body is read, never across a token fetch
//! or a backoff sleep.

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
        let started = Instant::now();
        let outcome = self.attempt_loop(request).instrument(span.clone()).await;
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        if let Ok(response) = &outcome {
            span.record("status", response.status().as_u16());
            if !response.status().is_success() {
                // Only error mapping needs these; spare successes the copy.
                self.report().seen = Some((response.status(), response.headers().clone()));
            }
        }
        outcome
    }

    async fn attempt_loop(
        &self,
        mut request: reqwest::Request,
    ) -> reqwest::Result<reqwest::Response> {
        let config = &self.seam.config;
        let mut history = self.report().history;
        loop {
            history.attempts += 1;
            tracing::Span::current().record("attempt", history.attempts);
            let spare = request.try_clone();
            let attempt = self.send_once(request).await;
            let observed = self.observe(&attempt);
            let decision = retry::decide(self.op, &config.retry, &history, &observed);
            history.record(&observed);
            if decision == Decision::Refresh {
                history.refreshed = true;
            }
            self.report().history = history;
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

    /// One attempt on the wire, its body read within the limit.
    async fn send_once(&self, request: reqwest::Request) -> Attempt {
        let asked = request.url().origin();
        // Waiting for a slot holds nothing else; the slot is given back as
        // soon as the body is read.
        let _slot = match &self.seam.in_flight {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        self.report().in_flight = true;
        let attempt = match self.seam.http.execute(request).await {
            Err(e) => Attempt::Failed(e),
            Ok(response) if response.url().origin() != asked => {
                self.report().error.get_or_insert(Error::invalid_response(
                    "the answer came from another origin than the request went to (a redirect \
                     was followed); it was refused. A reqwest::Client given to the SDK should \
                     not follow redirects",
                ));
                Attempt::Refused(response)
            }
            Ok(response) => match buffered(response, self.seam.config.max_body).await {
                Ok(response) => Attempt::Answered(response),
                Err(Unread::Transport(e)) => Attempt::Failed(e),
                Err(Unread::TooLarge(status)) => {
                    let limit = self.seam.config.max_body;
                    self.report()
                        .error
                        .get_or_insert(Error::response_too_large(limit));
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
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
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
