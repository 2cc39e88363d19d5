//! The one error type of the SDK, for API errors, transport failures and misuse alike.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::operation::Operation;
use crate::raw;
use crate::redact;
use crate::scope::ScopeSet;

/// A specialized `Result` for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, for matching: `e.kind() == ErrorKind::NotFound`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401: the credentials or the bearer token were refused.
    Unauthorized,
    /// 403: refused by the server (insufficient scope, inactive agent, free-tier limit…).
    Forbidden,
    /// The operation needs a scope the client does not request or the token
    /// was not granted; nothing was sent. See [`Error::missing_scopes`].
    MissingScope,
    /// 404: no such agent, credential or audit event.
    NotFound,
    /// 409: the resource is in a conflicting state (already exists, already revoked…).
    Conflict,
    /// 400: the server rejected a value; [`Error::details`] names the field.
    Validation,
    /// 429: rate limited; see [`Error::retry_after`].
    RateLimited,
    /// 5xx: the server failed. A write that may not be replayed (`register`,
    /// `generate`, `rotate`, an `update`) answered 5xx is an
    /// [`OutcomeUnknown`](ErrorKind::OutcomeUnknown) instead, the status kept.
    Server,
    /// A status the API does not document for this operation.
    UnexpectedStatus,
    /// The request, the call or a token fetch timed out.
    Timeout,
    /// The server could not be reached.
    Connect,
    /// Another transport failure (connection reset, TLS, body read).
    Transport,
    /// The response could not be decoded; [`Error::message`] names the field.
    Decode,
    /// The response decoded but cannot be right (a listing that answers the
    /// same page again, an answer from another origin).
    InvalidResponse,
    /// The response body is larger than the client accepts; it was not read.
    ResponseTooLarge,
    /// A write that must not be repeated failed after it may have reached
    /// the server, so whether it was applied is unknown; [`Error::message`]
    /// says what to check. The SDK never replays such a write.
    OutcomeUnknown,
    /// An argument was refused before anything was sent.
    InvalidInput,
    /// The client is misconfigured (bad URL, missing credential…).
    Config,
    /// A token source failed abnormally (it panicked, or its task was cancelled).
    TokenSource,
}

/// An error from the AgentIdP SDK.
///
/// Cheap to clone (one `Arc`). Never contains a client secret or an access
/// token: a body is quoted only when it is an error body, and then with its
/// secret-bearing fields replaced. `Display` prints one line; the cause, if
/// any, is [`source`](StdError::source) (so `{:#}` with anyhow prints it once).
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(thiserror::Error)]
#[error("{operation}{message}{tail}", operation = Prefix(.operation), tail = Tail(.status, .code.as_deref()))]
struct Inner {
    kind: ErrorKind,
    status: Option<StatusCode>,
    code: Option<String>,
    message: String,
    details: Option<serde_json::Map<String, serde_json::Value>>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    operation: Option<Operation>,
    scopes: Option<Box<ScopeCheck>>,
    /// Whether repeating the call cannot duplicate a write.
    replay_safe: bool,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The scopes an operation needs against those the client held.
#[derive(Clone, Debug)]
struct ScopeCheck {
    required: ScopeSet,
    held: ScopeSet,
    /// `true` when `held` is what the server granted, `false` when it is
    /// what the client requests (no token was fetched).
    granted: bool,
}

/// `get_agent: ` before the message.
struct Prefix<'a>(&'a Option<Operation>);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(op) => write!(f, "{op}: "),
            None => Ok(()),
        }
    }
}

/// ` (404 Not Found, AGENT_NOT_FOUND)` after the message.
struct Tail<'a>(&'a Option<StatusCode>, Option<&'a str>);

impl fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(status), Some(code)) => write!(f, " ({status}, {code})"),
            (Some(status), None) => write!(f, " ({status})"),
            (None, Some(code)) => write!(f, " ({code})"),
            (None, None) => Ok(()),
        }
    }
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
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
                scopes: None,
                replay_safe: true,
                source: None,
            }),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
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

    /// The operation of the failed call.
    pub fn operation(&self) -> Option<Operation> {
        self.inner.operation
    }

    /// For [`ErrorKind::MissingScope`]: the scopes the operation requires.
    pub fn required_scopes(&self) -> Option<&ScopeSet> {
        self.inner.scopes.as_ref().map(|s| &s.required)
    }

    /// For [`ErrorKind::MissingScope`]: the required scopes the client lacks.
    pub fn missing_scopes(&self) -> Option<ScopeSet> {
        self.inner
            .scopes
            .as_ref()
            .map(|s| s.held.missing_from(&s.required))
    }

    /// For [`ErrorKind::MissingScope`] refused after a token was fetched: the
    /// scopes the server granted it.
    pub fn granted_scopes(&self) -> Option<&ScopeSet> {
        self.inner
            .scopes
            .as_ref()
            .filter(|s| s.granted)
            .map(|s| &s.held)
    }

    /// For [`ErrorKind::MissingScope`] refused before any token was fetched:
    /// the scopes the client requests.
    pub fn requested_scopes(&self) -> Option<&ScopeSet> {
        self.inner
            .scopes
            .as_ref()
            .filter(|s| !s.granted)
            .map(|s| &s.held)
    }

    /// Whether the same call may succeed if made again later, and making it
    /// again cannot duplicate a write: rate limiting, timeouts, connection
    /// failures and gateway errors, but never an
    /// [`OutcomeUnknown`](ErrorKind::OutcomeUnknown) nor any failure of a
    /// non-idempotent write that may have reached the server.
    pub fn is_retryable(&self) -> bool {
        let i = &*self.inner;
        let transient = matches!(
            i.kind,
            ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Transport
        ) || (i.kind == ErrorKind::Server
            && matches!(i.status.map(|s| s.as_u16()), Some(502..=504)));
        transient && i.replay_safe
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
            return self;
        }
        let i = &*self.inner;
        let mut copy = Inner {
            kind: i.kind,
            status: i.status,
            code: i.code.clone(),
            message: i.message.clone(),
            details: i.details.clone(),
            retry_after: i.retry_after,
            request_id: i.request_id.clone(),
            operation: i.operation,
            scopes: i.scopes.clone(),
            replay_safe: i.replay_safe,
            // A shared error keeps its cause; a copy cannot take it.
            source: None,
        };
        f(&mut copy);
        self.inner = Arc::new(copy);
        self
    }

    /// Names the operation, unless one is named already.
    pub(crate) fn with_operation(self, operation: Operation) -> Self {
        if self.inner.operation.is_some() {
            return self;
        }
        self.edit(|i| i.operation = Some(operation))
    }

    /// Marks the error as one after which a retry could duplicate a write.
    pub(crate) fn not_replay_safe(self) -> Self {
        if !self.inner.replay_safe {
            return self;
        }
        self.edit(|i| i.replay_safe = false)
    }

    /// Sets how long to wait before trying again (the fleet limiter says
    /// so without a response).
    #[allow(dead_code, reason = "used only by the fleet limiter, an add-on")]
    pub(crate) fn with_retry_after(self, wait: Duration) -> Self {
        self.edit(|i| i.retry_after = Some(wait))
    }

    pub(crate) fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.edit(|i| i.source = Some(Box::new(source)))
    }

    pub(crate) fn with_status(self, status: StatusCode, headers: &HeaderMap) -> Self {
        self.edit(|i| {
            i.status = Some(status);
            i.request_id = request_id(headers);
            i.retry_after = retry_after(headers);
        })
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn invalid_response(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidResponse, message)
    }

    pub(crate) fn outcome_unknown(what_happened: &str, check: &str) -> Self {
        Self::new(
            ErrorKind::OutcomeUnknown,
            format!(
                "{what_happened}, so it may or may not have been applied; it was not replayed. \
                 To find out, {check}"
            ),
        )
        .not_replay_safe()
    }

    pub(crate) fn response_too_large(limit: u64) -> Self {
        Self::new(
            ErrorKind::ResponseTooLarge,
            format!("the response body is larger than the {limit}-byte limit"),
        )
    }

    pub(crate) fn total_timeout(limit: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!("the call did not finish within its total timeout of {limit:?}"),
        )
    }

    /// The token lacks a scope the operation needs: `held` is what the
    /// server `granted`, or (when `granted` is false) what the client requests.
    pub(crate) fn missing_scope(required: ScopeSet, held: ScopeSet, granted: bool) -> Self {
        let missing = held.missing_from(&required);
        let message = if granted {
            format!("the server did not grant the token the scope `{missing}`; nothing was sent")
        } else {
            format!(
                "this client requests `{held}` but the operation needs `{missing}`; nothing was \
                 sent (build a client that requests it)"
            )
        };
        let mut error = Self::new(ErrorKind::MissingScope, message);
        error = error.edit(|i| {
            i.scopes = Some(Box::new(ScopeCheck {
                required,
                held,
                granted,
            }))
        });
        error
    }

    /// A failure of the transport.
    pub(crate) fn transport(e: reqwest::Error) -> Self {
        let (kind, what) = if e.is_timeout() {
            (ErrorKind::Timeout, "the request timed out")
        } else if e.is_connect() {
            (ErrorKind::Connect, "could not connect to the server")
        } else {
            (ErrorKind::Transport, "the request failed in transit")
        };
        Self::new(kind, what).with_source(e.without_url())
    }

    /// A success body that does not fit the operation's schema: names the
    /// JSON path, never quotes a value (a 2xx body may hold a new secret).
    pub(crate) fn decode(path: &str, cause: &serde_json::Error) -> Self {
        let at = if path.is_empty() || path == "." {
            String::from("the response body")
        } else {
            format!("`{path}`")
        };
        Self::new(
            ErrorKind::Decode,
            format!(
                "the response does not fit the API at {at}: {}",
                redact::serde_message(&cause.to_string())
            ),
        )
    }

    /// An error from a response with an error status and its body, in either
    /// of the API's error shapes or none.
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        match ErrorBody::parse(body) {
            Some(parsed) => Self::from_body(status, headers, parsed),
            None => {
                let reason = status.canonical_reason().unwrap_or("error");
                let message = match redact::snippet(body) {
                    Some(snippet) => {
                        format!("the server answered {reason} with a non-API body: {snippet}")
                    }
                    None => format!("the server answered {reason}"),
                };
                Self::new(kind_for_status(status), message).with_status(status, headers)
            }
        }
    }

    /// An error from one of the API's error bodies.
    pub(crate) fn from_body(status: StatusCode, headers: &HeaderMap, body: ErrorBody) -> Self {
        let message = if body.message.is_empty() {
            format!(
                "the server answered {}",
                status.canonical_reason().unwrap_or("with an error")
            )
        } else {
            redact::text(&body.message).into_owned()
        };
        let details = body.details.map(|details| {
            let mut value = serde_json::Value::Object(details);
            redact::json(&mut value);
            match value {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            }
        });
        Self::new(kind_for_status(status), message)
            .with_status(status, headers)
            .edit(|i| {
                i.code = Some(redact::text(&body.code).into_owned());
                i.details = details;
            })
    }
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

/// `Retry-After`, in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
#[derive(Debug)]
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

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(op) = i.operation {
            d.field("operation", &op.as_str());
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
        if let Some(source) = &i.source {
            d.field("source", &source.to_string());
        }
        d.finish()
    }
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.inner, f)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
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
        assert_eq!(api.kind(), ErrorKind::NotFound);
        assert_eq!(api.code(), Some("AGENT_NOT_FOUND"));
        assert_eq!(api.details().unwrap()["id"], "x");
        let oauth = Error::from_response(
            StatusCode::UNAUTHORIZED,
            &h,
            br#"{"error":"invalid_client","error_description":"Client authentication failed."}"#,
        );
        assert_eq!(
            (oauth.kind(), oauth.code()),
            (ErrorKind::Unauthorized, Some("invalid_client"))
        );
        assert_eq!(oauth.message(), "Client authentication failed.");
        let html = Error::from_response(StatusCode::BAD_GATEWAY, &h, b"<html>Bad gateway</html>");
        assert_eq!((html.kind(), html.code()), (ErrorKind::Server, None));
        assert!(html.message().contains("Bad gateway"));
        assert!(html.is_retryable());
    }

    #[test]
    fn secret_fields_of_an_error_body_are_never_quoted() {
        let h = HeaderMap::new();
        let e = Error::from_response(
            StatusCode::IM_A_TEAPOT,
            &h,
            br#"{"access_token":"eyJhbGciOi.x.y","clientSecret":"sk_live_1"}"#,
        );
        let all = format!("{e} {e:?}");
        assert!(
            !all.contains("eyJhbGciOi") && !all.contains("sk_live_1"),
            "{all}"
        );
        let e = Error::from_response(
            StatusCode::BAD_REQUEST,
            &h,
            br#"{"code":"X","message":"bad secret sk_live_2","details":{"token":"t0k"}}"#,
        );
        let all = format!("{e} {e:?}");
        assert!(!all.contains("sk_live_2") && !all.contains("t0k"), "{all}");
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
    fn display_names_operation_status_and_code_and_the_cause_is_only_the_source() {
        let e = Error::from_response(
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            br#"{"code":"AGENT_ALREADY_EXISTS","message":"exists"}"#,
        )
        .with_operation(Operation::RegisterAgent);
        assert_eq!(
            e.to_string(),
            "register_agent: exists (409 Conflict, AGENT_ALREADY_EXISTS)"
        );
        let cause = std::io::Error::other("disk on fire");
        let e = Error::config("cannot read").with_source(cause);
        assert_eq!(e.to_string(), "cannot read");
        assert_eq!(e.source().unwrap().to_string(), "disk on fire");
    }

    #[test]
    fn an_unknown_outcome_is_never_retryable() {
        let e = Error::outcome_unknown("the gateway failed", "look")
            .with_status(StatusCode::BAD_GATEWAY, &HeaderMap::new());
        assert!(!e.is_retryable());
        assert!(
            !Error::new(ErrorKind::Timeout, "t")
                .not_replay_safe()
                .is_retryable()
        );
        assert!(Error::new(ErrorKind::Timeout, "t").is_retryable());
    }

    #[test]
    fn missing_scope_says_which_scopes_and_whose() {
        use crate::scope::Scope;
        let e = Error::missing_scope(
            ScopeSet::from([Scope::AUDIT_READ]),
            ScopeSet::from([Scope::AGENTS_READ]),
            false,
        );
        assert_eq!(e.kind(), ErrorKind::MissingScope);
        assert_eq!(
            e.missing_scopes(),
            Some(ScopeSet::from([Scope::AUDIT_READ]))
        );
        assert!(e.requested_scopes().is_some() && e.granted_scopes().is_none());
        assert!(e.message().contains("requests"), "{e}");
    }
}
