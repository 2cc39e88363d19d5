//! Verifying agents' tokens in a service (`verify`).

mod agent_status;
mod claims;
mod introspection;
mod junk;
mod jwks;
#[cfg(feature = "axum")]
mod layer;
mod modes;
mod outage;
mod review;
mod rfc;
mod settings;
