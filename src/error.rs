//! The one error type of the SDK, for API errors, transport failures and misuse alike.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::raw;
use crate::scope::ScopeSet;

/// A specialized `Result` for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for matching. See [`Error::kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401: the credentials or the bearer token were refused.
    Unauthorized,
    /// 403: refused by the server (insufficient scope, inactive agent, free-tier limit…).
    Forbidden,
    /// The token lacks a scope the operation requires; nothing was sent.
    MissingScope {
        /// The scopes the operation requires.
        required: ScopeSet,
        /// The scopes the token holds.
        granted: ScopeSet,
    },
    /// 404: no such agent, credential or audit event.
    NotFound,
    /// 409: the resource is in a conflicting state (already exists, already revoked…).
    Conflict,
    /// 400: the server rejected a value; [`Error::details`] names the field.
    Validation,
    /// 429: rate limited; see [`Error::retry_after`].
    RateLimited,
    /// 5xx: the server failed.
    Server,
    /// A status the API does not document for this operation.
    UnexpectedStatus,
    /// The request or the connection timed out.
    Timeout,
    /// The server could not be reached.
    Connect,
    /// Another transport failure (connection reset, TLS, body read).
    Transport,
    /// The response could not be decoded.
    Decode,
    /// The response body is larger than the client accepts; it was not read.
    ResponseTooLarge,
    /// A write that must not be repeated failed after it was sent, so whether
    /// the server applied it is unknown; [`Error::message`] says what to check.
    /// The SDK never replays such a write.
    OutcomeUnknown,
    /// An argument was refused before anything was sent.
    InvalidInput,
    /// The client is misconfigured (bad URL, missing credential…).
    Config,
}

/// An error from the AgentIdP SDK.
///
/// Cheap to clone. Never contains a client secret or an access token.
#[derive(Clone)]
#[non_exhaustive]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    status: Option<StatusCode>,
    code: Option<String>,
    message: String,
    details: Option<serde_json::Map<String, serde_json::Value>>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    operation: Option<&'static str>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                status: None,
                code: None,
                message: message.into(),
                details: None,
                retry_after: None,
                request_id: None,
                operation: None,
                source: None,
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// The HTTP status, when a response arrived.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The server's error code: the API's `code` (`AGENT_NOT_FOUND`) or the
    /// OAuth2 `error` (`invalid_client`). Kept as a string so new codes pass through.
    pub fn code(&self) -> Option<&str> {
        self.inner.code.as_deref()
    }

    /// A human-readable message (the server's, when it sent one).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The server's `details` object, e.g. the field that failed validation.
    pub fn details(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.inner.details.as_ref()
    }

    /// How long the server asked to wait (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The request id the server sent (`x-request-id` or `request-id`), if any.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    /// The spec's operation id of the failed call, e.g. `get_agent`.
    pub fn operation(&self) -> Option<&'static str> {
        self.inner.operation
    }

    /// Whether the failure is transient, so the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Transport
        ) || matches!(self.inner.status.map(|s| s.as_u16()), Some(502..=504))
    }

    fn render(&self) -> String {
        let i = &*self.inner;
        let mut out = String::new();
        if let Some(op) = i.operation {
            out.push_str(op);
            out.push_str(": ");
        }
        out.push_str(&i.message);
        match (i.status, &i.code) {
            (Some(status), Some(code)) => out.push_str(&format!(" ({status}, {code})")),
            (Some(status), None) => out.push_str(&format!(" ({status})")),
            (None, Some(code)) => out.push_str(&format!(" ({code})")),
            (None, None) => {}
        }
        out
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let i = &*self.inner;
                let mut copy = Inner {
                    kind: i.kind.clone(),
                    status: i.status,
                    code: i.code.clone(),
                    message: i.message.clone(),
                    details: i.details.clone(),
                    retry_after: i.retry_after,
                    request_id: i.request_id.clone(),
                    operation: i.operation,
                    source: None,
                };
                f(&mut copy);
                self.inner = Arc::new(copy);
            }
        }
        self
    }

    pub(crate) fn with_operation(self, operation: &'static str) -> Self {
        if self.inner.operation.is_some() {
            return self;
        }
        self.edit(|i| i.operation = Some(operation))
    }

    pub(crate) fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.edit(|i| i.source = Some(Box::new(source)))
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn decode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Decode, message)
    }

    pub(crate) fn outcome_unknown(
        operation: &'static str,
        what_happened: &str,
        check: &str,
    ) -> Self {
        Self::new(
            ErrorKind::OutcomeUnknown,
            format!("{what_happened}, so it may or may not have been applied; it was not replayed. To find out, {check}"),
        )
        .with_operation(operation)
    }

    pub(crate) fn with_status(self, status: StatusCode, headers: &HeaderMap) -> Self {
        self.edit(|i| {
            i.status = Some(status);
            i.request_id = request_id(headers);
            i.retry_after = retry_after(headers);
        })
    }

    pub(crate) fn response_too_large(limit: u64) -> Self {
        Self::new(
            ErrorKind::ResponseTooLarge,
            format!("the response body is larger than the {limit}-byte limit"),
        )
    }

    pub(crate) fn total_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("the call did not finish within its total timeout of {limit:?}"),
        )
    }

    pub(crate) fn missing_scope(required: ScopeSet, granted: ScopeSet) -> Self {
        let missing = granted.missing_from(&required);
        Self::new(
            ErrorKind::MissingScope { required, granted },
            format!("the token lacks the scope `{missing}`; nothing was sent"),
        )
    }

    /// An error from a transport failure.
    pub(crate) fn transport(e: reqwest::Error) -> Self {
        let (kind, what) = if e.is_timeout() {
            (ErrorKind::Timeout, "the request timed out")
        } else if e.is_connect() {
            (ErrorKind::Connect, "could not connect to the server")
        } else if e.is_decode() {
            (ErrorKind::Decode, "the response could not be decoded")
        } else {
            (ErrorKind::Transport, "the request failed in transit")
        };
        // reqwest's own text may name the URL, which carries no secret.
        Self::new(kind, format!("{what}: {e}")).with_source(e.without_url())
    }

    /// An error from a response with an error status and its body, in either
    /// of the API's error shapes or none.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let parsed = ErrorBody::parse(body);
        let message = match &parsed {
            Some(b) if !b.message.is_empty() => b.message.clone(),
            _ => default_message(status, body),
        };
        let kind = kind_for_status(status);
        let mut err = Self::new(kind, message);
        err = err.edit(|i| {
            i.status = Some(status);
            i.retry_after = retry_after(headers);
            i.request_id = request_id(headers);
            if let Some(b) = parsed {
                i.code = Some(b.code);
                i.details = b.details;
            }
        });
        err
    }

    /// Maps progenitor's error, with what the seam saw of the response.
    pub(crate) fn from_raw<E: IntoErrorBody>(e: raw::Error<E>, seen: Option<&Seen>) -> Self {
        match e {
            raw::Error::ErrorResponse(rv) => {
                let status = rv.status();
                let headers = rv.headers().clone();
                let body = rv.into_inner().into_error_body();
                let mut err = Self::new(kind_for_status(status), body.message.clone());
                err = err.edit(|i| {
                    i.status = Some(status);
                    i.code = Some(body.code);
                    i.details = body.details;
                    i.retry_after = retry_after(&headers);
                    i.request_id = request_id(&headers);
                });
                err
            }
            raw::Error::InvalidResponsePayload(bytes, source) => match seen {
                // progenitor drops the status here; the seam kept it.
                Some(seen) if !seen.status.is_success() => {
                    Self::from_response(seen.status, &seen.headers, &bytes)
                }
                _ => Self::decode(format!(
                    "the response body does not match the API: {source}"
                ))
                .with_source(source),
            },
            raw::Error::UnexpectedResponse(response) => {
                // The body is read by the caller when it needs it; here only
                // the status and headers are at hand.
                Self::from_response(response.status(), response.headers(), b"")
            }
            raw::Error::CommunicationError(e)
            | raw::Error::ResponseBodyError(e)
            | raw::Error::InvalidUpgrade(e) => Self::transport(e),
            raw::Error::InvalidRequest(message) => Self::invalid_input(message),
            raw::Error::Custom(message) => Self::new(ErrorKind::Transport, message),
        }
    }
}

/// What the seam saw of the last response of a call.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

fn kind_for_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        400 | 422 => ErrorKind::Validation,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::UnexpectedStatus,
    }
}

fn default_message(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let text = String::from_utf8_lossy(body);
    let snippet: String = text.trim().chars().take(120).collect();
    if snippet.is_empty() {
        format!("the server answered {reason}")
    } else {
        format!("the server answered {reason} with a non-API body: {snippet}")
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-correlation-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok().map(str::to_owned))
}

/// An error body in either of the API's shapes.
pub(crate) struct ErrorBody {
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ErrorBody {
    /// Tries `{code, message, details}`, then `{error, error_description}`.
    pub(crate) fn parse(body: &[u8]) -> Option<ErrorBody> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(code) = text("code") {
            return Some(ErrorBody {
                code,
                message: text("message").unwrap_or_default(),
                details: value.get("details").and_then(|d| d.as_object()).cloned(),
            });
        }
        text("error").map(|code| ErrorBody {
            code,
            message: text("error_description").unwrap_or_default(),
            details: None,
        })
    }
}

/// The generated error types, seen as one body.
pub(crate) trait IntoErrorBody {
    fn into_error_body(self) -> ErrorBody;
}

impl IntoErrorBody for raw::types::ApiError {
    fn into_error_body(self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message,
            details: Some(self.details).filter(|d| !d.is_empty()),
        }
    }
}

impl IntoErrorBody for raw::types::TokenError {
    fn into_error_body(self) -> ErrorBody {
        match self {
            raw::types::TokenError::OAuthError(e) => ErrorBody {
                code: e.error,
                message: e.error_description.unwrap_or_default(),
                details: None,
            },
            raw::types::TokenError::ApiError(e) => e.into_error_body(),
        }
    }
}

impl IntoErrorBody for () {
    fn into_error_body(self) -> ErrorBody {
        ErrorBody {
            code: String::new(),
            message: String::new(),
            details: None,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(op) = i.operation {
            d.field("operation", &op);
        }
        if let Some(status) = i.status {
            d.field("status", &status.as_u16());
        }
        if let Some(code) = &i.code {
            d.field("code", code);
        }
        d.field("message", &i.message);
        if let Some(details) = &i.details {
            d.field("details", details);
        }
        if let Some(r) = i.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(id) = &i.request_id {
            d.field("request_id", id);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

// Written by hand rather than with thiserror: the fields sit behind one `Arc`
// so the error is cheap to clone (the token single-flight hands one error to
// every waiter), and thiserror cannot reach a `source` inside it.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_shapes_and_plain_text_map_into_one_error() {
        let h = HeaderMap::new();
        let api = Error::from_response(
            StatusCode::NOT_FOUND,
            &h,
            br#"{"code":"AGENT_NOT_FOUND","message":"Agent not found.","details":{"id":"x"}}"#,
        );
        assert_eq!(api.kind(), &ErrorKind::NotFound);
        assert_eq!(api.code(), Some("AGENT_NOT_FOUND"));
        assert_eq!(api.details().unwrap()["id"], "x");
        let oauth = Error::from_response(
            StatusCode::UNAUTHORIZED,
            &h,
            br#"{"error":"invalid_client","error_description":"Client authentication failed."}"#,
        );
        assert_eq!(
            (oauth.kind(), oauth.code()),
            (&ErrorKind::Unauthorized, Some("invalid_client"))
        );
        assert_eq!(oauth.message(), "Client authentication failed.");
        let html = Error::from_response(StatusCode::BAD_GATEWAY, &h, b"<html>Bad gateway</html>");
        assert_eq!((html.kind(), html.code()), (&ErrorKind::Server, None));
        assert!(html.message().contains("Bad gateway"));
        assert!(html.is_transient());
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        h.insert("x-request-id", "req-1".parse().unwrap());
        let e = Error::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.request_id(), Some("req-1"));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let e = Error::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"");
        let wait = e.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn display_names_operation_status_and_code() {
        let e = Error::from_response(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            br#"{"code":"AGENT_ALREADY_EXISTS","message":"exists"}"#,
        )
        .with_operation("register_agent");
        assert_eq!(
            e.to_string(),
            "register_agent: exists (409 Conflict, AGENT_ALREADY_EXISTS)"
        );
    }
}
