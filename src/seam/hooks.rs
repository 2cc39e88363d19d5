//! progenitor's hooks, the only way the generated client calls back into the
//! facade, once per attempt: `pre` authorizes the request, `exec` sends it.

use std::sync::Arc;

use bytes::Bytes;
use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH};

use tokio::time::Instant;

use super::transport::{self, LONGEST, read_body};
use super::{Call, CallState, TokenProvider};
use crate::access_token::AccessToken;
use crate::error::{Error, Result};
use crate::operation::Operation;
use crate::raw;

impl ClientHooks<Call> for raw::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> std::result::Result<(), raw::Error<E>> {
        let call = &self.inner.0;
        match call.authorize(request, info).await {
            Ok(()) => Ok(()),
            Err(error) => Err(call.fail(error)),
        }
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        self.inner.0.send(request).await
    }
}

impl CallState {
    /// Sets the attempt's timeout (never past the call's deadline) and, for
    /// bearer operations, checks the scopes and puts the token on the request.
    async fn authorize(&self, request: &mut reqwest::Request, info: &OperationInfo) -> Result<()> {
        let op = self.op;
        if info.operation_id != op.id {
            return Err(Error::config(format!(
                "the seam was asked for `{}` but the bindings sent `{}`",
                op.id, info.operation_id
            )));
        }
        let config = &self.seam.config;
        let remaining = self.remaining();
        if remaining.is_some_and(|left| left.is_zero()) {
            return Err(Error::total_timeout(config.total_timeout));
        }
        let attempt = remaining.map_or(config.attempt_timeout, |left| {
            left.min(config.attempt_timeout)
        });
        // Saturated: reqwest hands it to the timer (a `Duration::MAX` setting).
        *request.timeout_mut() = Some(attempt.min(LONGEST));
        if !op.bearer {
            return Ok(());
        }
        let Some(auth) = &self.seam.auth else {
            return Err(Error::config("this client has no token source"));
        };
        if let Some((requested, _)) = auth
            .requested
            .as_ref()
            .filter(|(_, allowed)| !allowed.contains(op.operation))
        {
            return Err(Error::missing_scope(
                op.operation.required_scopes(),
                requested.clone(),
                false,
            ));
        }
        let token = match auth.tokens.fresh() {
            Some(token) => token,
            None => {
                // No slot is held while waiting for a token.
                self.report().slot = None;
                Box::pin(self.fetch_token(Arc::clone(&auth.tokens))).await?
            }
        };
        if !token.allows(op.operation) {
            return Err(Error::missing_scope(
                op.operation.required_scopes(),
                token.scopes().cloned().unwrap_or_default(),
                true,
            ));
        }
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.bearer_header()?);
        self.report().token = Some(token);
        Ok(())
    }

    /// Waits for a token (a fetch, or one in flight), within the deadline.
    /// Boxed by the caller: the common path finds a fresh token cached.
    async fn fetch_token(&self, tokens: Arc<dyn TokenProvider>) -> Result<Arc<AccessToken>> {
        let fetch = tokens.token();
        match self.remaining() {
            Some(left) => tokio::time::timeout(left, fetch)
                .await
                .map_err(|_| Error::total_timeout(self.seam.config.total_timeout))?,
            None => fetch.await,
        }
        .map_err(|e| e.with_operation(Operation::IssueToken))
    }

    /// One attempt on the wire. A success whose declared length is within
    /// the limit is handed on unread, its in-flight slot kept until the
    /// attempt ends, so that progenitor reads it straight off the
    /// connection; any other body is read here, within the limit.
    async fn send(&self, request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
        // The admission hook (the fleet's rate limit) is asked last, with
        // the token on the request: a slot taken before a token wait would
        // be spent later, in a clump with the slots after it. No in-flight
        // slot is held while waiting for it.
        if let Some(admission) = &self.seam.config.admission {
            self.report().slot = None;
            if let Err(error) = admission.admit(self.deadline.map(Instant::into_std)).await {
                self.report().error.get_or_insert(error);
                return Ok(empty(StatusCode::TOO_MANY_REQUESTS));
            }
        }
        // Taken again if a token fetch made the attempt give it back.
        if let Err(error) = self.take_slot().await {
            self.report().error.get_or_insert(error);
            return Ok(empty(StatusCode::SERVICE_UNAVAILABLE));
        }
        // A connection still being made when the attempt's timeout is near
        // gives up first, so the attempt ends as "never sent".
        let deadline = request
            .timeout()
            .copied()
            .and_then(transport::connect_deadline);
        let execute = self.seam.http.execute(request);
        let response = match deadline {
            Some(by) => transport::connect_by(by, execute).await?,
            None => execute.await?,
        };
        let max = self.seam.config.max_body;
        if !same_origin(response.url(), &self.seam.origin) {
            self.report().error.get_or_insert(Error::invalid_response(
                "the answer came from another origin than the request went to (a redirect was \
                 followed); it was refused. A reqwest::Client given to the SDK should not follow \
                 redirects",
            ));
            return Ok(empty(response.status()));
        }
        let status = response.status();
        if !status.is_success() {
            self.report().seen = Some((status, response.headers().clone()));
        }
        match declared_length(&response) {
            Some(length) if length > max => {
                self.report()
                    .error
                    .get_or_insert(Error::response_too_large(max));
                Ok(empty(status))
            }
            Some(_) if status.is_success() => Ok(response),
            _ => match Box::pin(buffered(response, max)).await? {
                Some(response) => Ok(response),
                None => {
                    self.report()
                        .error
                        .get_or_insert(Error::response_too_large(max));
                    Ok(empty(status))
                }
            },
        }
    }
}

/// Whether two URLs share scheme, host and port (without building either
/// origin, which allocates).
fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The body length a response declares.
fn declared_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// Reads the whole body, up to `max` bytes (`None` past it), and returns the
/// response with the body in memory.
async fn buffered(
    mut response: reqwest::Response,
    max: u64,
) -> reqwest::Result<Option<reqwest::Response>> {
    let Some(body) = read_body(&mut response, max).await? else {
        return Ok(None);
    };
    let mut rebuilt = http::Response::new(reqwest::Body::from(body));
    *rebuilt.status_mut() = response.status();
    *rebuilt.headers_mut() = std::mem::take(response.headers_mut());
    Ok(Some(reqwest::Response::from(rebuilt)))
}

/// A response with no body.
fn empty(status: StatusCode) -> reqwest::Response {
    let mut response = http::Response::new(reqwest::Body::from(Bytes::new()));
    *response.status_mut() = status;
    reqwest::Response::from(response)
}
