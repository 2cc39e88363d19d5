//! [`VerifyError`] and its RFC 6750 response.

use std::time::Duration;

use http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::scope::ScopeSet;

/// Why a request was refused. Never holds the token, nor why in detail
/// beyond the RFC 6750 error codes: a caller learns only what the RFC says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No bearer token: no `Authorization` header, or one of another scheme
    /// (`Basic …`). 401 with `WWW-Authenticate: Bearer` and no error code
    /// (RFC 6750 §3.1).
    #[error("the request carries no bearer token")]
    MissingToken,
    /// A malformed request: several `Authorization` headers, or a `Bearer`
    /// one that is not `Bearer <b64token>`. 400 `invalid_request`.
    #[error("the Authorization header is malformed")]
    InvalidRequest,
    /// The token is expired, revoked, malformed, not signed by the expected
    /// key, or speaks for an agent that is gone. 401 `invalid_token`.
    #[error("the access token is invalid")]
    InvalidToken,
    /// The token is valid but lacks scopes: `required` lists those asked
    /// for (all of them, or the alternatives of an "any" requirement).
    /// 403 `insufficient_scope`.
    #[error("the access token lacks the scope `{required}`")]
    InsufficientScope {
        /// The scopes the route requires.
        required: ScopeSet,
    },
    /// AgentIdP could not tell (unreachable, failing, or refusing the
    /// service's own credentials): the request is refused, failing closed.
    /// 503 with `Retry-After`.
    #[error("the token could not be verified now; retry after {retry_after:?}")]
    Unavailable {
        /// How long the caller should wait (whole seconds on the wire).
        retry_after: Duration,
    },
}

impl VerifyError {
    /// The HTTP status of the answer: 400, 401, 403 or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            VerifyError::MissingToken | VerifyError::InvalidToken => StatusCode::UNAUTHORIZED,
            VerifyError::InvalidRequest => StatusCode::BAD_REQUEST,
            VerifyError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            VerifyError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` challenge, for all but [`Unavailable`](Self::Unavailable).
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let challenge = match self {
            VerifyError::MissingToken => HeaderValue::from_static("Bearer"),
            VerifyError::InvalidRequest => HeaderValue::from_static(
                "Bearer error=\"invalid_request\", error_description=\"malformed Authorization header\"",
            ),
            VerifyError::InvalidToken => HeaderValue::from_static(
                "Bearer error=\"invalid_token\", error_description=\"the access token is invalid\"",
            ),
            VerifyError::InsufficientScope { required } => {
                // Scope names have no whitespace; refuse anything a quoted
                // string cannot carry rather than build a broken header.
                let scope = required.to_wire();
                let scope: String = scope
                    .chars()
                    .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
                    .collect();
                let value = format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"");
                HeaderValue::from_str(&value).unwrap_or_else(|_| {
                    HeaderValue::from_static("Bearer error=\"insufficient_scope\"")
                })
            }
            VerifyError::Unavailable { .. } => return None,
        };
        Some(challenge)
    }

    /// The whole answer: status, `WWW-Authenticate` (or `Retry-After` for a
    /// 503) and an empty body of any type that has one (`Default`: axum's
    /// and tonic's bodies, `http_body_util::Full` and `Empty`, `String`…).
    pub fn to_response<B: Default>(&self) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let VerifyError::Unavailable { retry_after } = self {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}
