//! Presenting the agent's token to other services (`present`).

mod layer;
#[cfg(feature = "reqwest-middleware")]
mod middleware;
