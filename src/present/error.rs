//! [`PresentError`]: why an outgoing call was not sent, or was refused.

use crate::scope::ScopeSet;

/// Why [`OutgoingAuth`](super::OutgoingAuth) did not send a call, or the
/// destination refused the agent's token for want of a scope. Never holds
/// the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresentError {
    /// The request goes to an origin outside the allowlist: it was not sent,
    /// so the token did not leave. `origin` is the request's scheme, host
    /// and port only (no path or query).
    #[error("`{origin}` is not an allowed origin for the agent's token; the call was not sent")]
    OriginNotAllowed {
        /// The origin of the refused request.
        origin: String,
    },
    /// The destination answered 403 `insufficient_scope`: the token lacks
    /// `required` (empty when the destination did not say which).
    #[error("the destination requires the scope `{required}`, which the agent's token lacks")]
    InsufficientScope {
        /// The scopes the destination asked for in its challenge.
        required: ScopeSet,
    },
    /// No token could be had from AgentIdP; the call was not sent.
    #[error("no access token for the call: {0}")]
    Token(#[source] crate::Error),
}

#[cfg(feature = "reqwest-middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
impl PresentError {
    /// The `PresentError` inside an error of a `reqwest-middleware` client,
    /// if that is what failed the call.
    pub fn find(error: &reqwest_middleware::Error) -> Option<&PresentError> {
        match error {
            reqwest_middleware::Error::Middleware(inner) => inner.downcast_ref(),
            reqwest_middleware::Error::Reqwest(_) => None,
        }
    }
}
