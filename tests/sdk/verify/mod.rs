//! Verifying agents' tokens in a service (`verify`).

mod agent_status;
mod introspection;
mod jwks;
#[cfg(feature = "axum")]
mod layer;
mod modes;
mod rfc;
