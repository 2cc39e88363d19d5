//! Verifying agents' tokens in a service (`verify`).

mod introspection;
mod jwks;
#[cfg(feature = "axum")]
mod layer;
mod modes;
