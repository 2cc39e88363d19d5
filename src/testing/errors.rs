//! The two error bodies the AgentIdP answers with: the API envelope
//! `{code, message, details?}` and the RFC 6749 OAuth body of `POST /token`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error in the API envelope (every endpoint but `POST /token`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// `400 VALIDATION_ERROR`, `details.field` naming the field.
    pub(crate) fn validation(field: &str, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message);
        error.details = Some(json!({ "field": field }));
        error
    }

    /// `401 UNAUTHORIZED`.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// `403 FORBIDDEN` for a token without the required scopes.
    pub(crate) fn forbidden(required: &[&str]) -> Self {
        let mut error = Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Insufficient scope.");
        error.details = Some(json!({ "requiredScopes": required }));
        error
    }

    /// `403 FORBIDDEN` for another agent's credentials.
    pub(crate) fn not_your_credentials() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "An agent may manage only its own credentials.",
        )
    }

    /// `403 AGENT_NOT_ACTIVE`.
    pub(crate) fn agent_not_active(status: &str) -> Self {
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            "AGENT_NOT_ACTIVE",
            "Agent is not active.",
        );
        error.details = Some(json!({ "status": status }));
        error
    }

    /// `404 AGENT_NOT_FOUND`.
    pub(crate) fn agent_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "AGENT_NOT_FOUND", "Agent not found.")
    }

    /// `404 CREDENTIAL_NOT_FOUND`.
    pub(crate) fn credential_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "CREDENTIAL_NOT_FOUND",
            "Credential not found.",
        )
    }

    /// `404 AUDIT_EVENT_NOT_FOUND`.
    pub(crate) fn audit_event_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "AUDIT_EVENT_NOT_FOUND",
            "Audit event not found.",
        )
    }

    /// `404 NOT_FOUND` for a path that is none of the 14 operations.
    pub(crate) fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint.")
    }

    /// `405 METHOD_NOT_ALLOWED`.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed on this endpoint.",
        )
    }

    /// `409 AGENT_ALREADY_EXISTS`.
    pub(crate) fn agent_already_exists() -> Self {
        let mut error = Self::new(
            StatusCode::CONFLICT,
            "AGENT_ALREADY_EXISTS",
            "An agent with this email already exists.",
        );
        error.details = Some(json!({ "field": "email" }));
        error
    }

    /// `409 AGENT_ALREADY_DECOMMISSIONED`.
    pub(crate) fn agent_already_decommissioned() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AGENT_ALREADY_DECOMMISSIONED",
            "Agent is already decommissioned.",
        )
    }

    /// `409 CREDENTIAL_ALREADY_REVOKED`.
    pub(crate) fn credential_already_revoked() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "CREDENTIAL_ALREADY_REVOKED",
            "Credential is already revoked.",
        )
    }

    /// `429 RATE_LIMIT_EXCEEDED` with a `Retry-After` header.
    pub(crate) fn rate_limited(retry_after: Duration) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
            "Too many requests.",
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// `500 INTERNAL_SERVER_ERROR`: the fake itself failed (it should not).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            message,
        )
    }

    /// An injected failure with `status`, coded after the status.
    pub(crate) fn injected(status: StatusCode) -> Self {
        let code = match status.as_u16() {
            400 => "VALIDATION_ERROR",
            401 => "UNAUTHORIZED",
            403 => "FORBIDDEN",
            404 => "NOT_FOUND",
            409 => "CONFLICT",
            429 => "RATE_LIMIT_EXCEEDED",
            500 => "INTERNAL_SERVER_ERROR",
            502 => "BAD_GATEWAY",
            503 => "SERVICE_UNAVAILABLE",
            504 => "GATEWAY_TIMEOUT",
            _ => "INJECTED_FAILURE",
        };
        let mut error = Self::new(status, code, "Injected failure (fake AgentIdP).");
        if status == StatusCode::TOO_MANY_REQUESTS {
            error.retry_after = Some(Duration::from_secs(1));
        }
        error
    }
}

/// `Retry-After` in whole seconds, rounded up.
pub(crate) fn retry_after_value(wait: Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(details), Some(map)) = (self.details, body.as_object_mut()) {
            map.insert("details".to_owned(), details);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_value(wait));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// An RFC 6749 §5.2 error of `POST /token`.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    /// `400 invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `400 unsupported_grant_type`.
    pub(crate) fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials.",
        )
    }

    /// `400 invalid_scope`.
    pub(crate) fn invalid_scope(scope: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("Scope `{scope}` is not allowed for this client."),
        )
    }

    /// `401 invalid_client`; `basic` adds the RFC 6749 `WWW-Authenticate` challenge.
    pub(crate) fn invalid_client(basic: bool) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
        error.basic_challenge = basic;
        error
    }

    /// `403 unauthorized_client` for a suspended or decommissioned agent.
    pub(crate) fn unauthorized_client(status: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            format!("Agent is {status}."),
        )
    }

    /// An injected failure with `status` (OAuth-coded for 400, 401 and 403).
    pub(crate) fn injected(status: StatusCode) -> Option<Self> {
        let error = match status.as_u16() {
            400 => "invalid_request",
            401 => "invalid_client",
            403 => "unauthorized_client",
            _ => return None,
        };
        Some(Self::new(
            status,
            error,
            "Injected failure (fake AgentIdP).",
        ))
    }

    /// The `error` code, e.g. `invalid_client`.
    pub(crate) fn code(&self) -> &'static str {
        self.error
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"agentidp\""),
            );
        }
        response
    }
}
