//! The in-process fake AgentIdP (`testing`): its HTTP API against the spec,
//! and its OIDC discovery, JWKS and key rotation.

mod oidc;
mod server;
