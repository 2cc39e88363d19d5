//! The axum extractor of [`AgentPrincipal`] (feature `axum`).

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;

use super::error::VerifyError;
use super::principal::AgentPrincipal;

/// Reads the principal [`VerifyLayer`](super::VerifyLayer) put in the
/// request; without one (the layer is missing), the RFC 6750 401.
///
/// ```
/// use axum::{Router, routing::get};
/// use sentryagent_idp::verify::{AgentPrincipal, RequireScopes, Verifier, VerifyLayer};
/// use sentryagent_idp::Scope;
///
/// async fn whoami(agent: AgentPrincipal) -> String {
///     agent.agent_id.to_string()
/// }
///
/// fn app(verifier: Verifier) -> Router {
///     Router::new()
///         .route("/whoami", get(whoami))
///         .route_layer(RequireScopes::all([Scope::AGENTS_READ]))
///         .layer(VerifyLayer::new(verifier))
/// }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S: Send + Sync> FromRequestParts<S> for AgentPrincipal {
    type Rejection = VerifyError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AgentPrincipal>()
            .cloned()
            .ok_or(VerifyError::MissingToken)
    }
}

/// The RFC 6750 answer of [`VerifyError::to_response`].
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl IntoResponse for VerifyError {
    fn into_response(self) -> Response {
        self.to_response()
    }
}
