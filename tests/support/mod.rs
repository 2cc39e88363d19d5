//! The one support layer of the test binaries (`sdk`, `redaction`,
//! `fleet`): each helper is defined once, here. Suites reach it as
//! `crate::support`; the modules that need an optional feature are compiled
//! only with it.
#![allow(dead_code)]

mod fixtures;
pub use fixtures::*;

pub mod paged;
pub mod scripted;

// `spec.rs` and `schema.rs` are also included by the CLI and contract
// suites (`tests/cli_support`, `tests/contract`), so each is defined once.
/// The spec's response schemas as validators (of the fake's answers); it
/// names the spec `super::openapi`, as `tests/cli_support` does.
#[cfg(feature = "testing")]
pub mod schema;
/// The spec as data.
pub mod spec;
#[cfg(feature = "testing")]
use spec as openapi;

#[cfg(feature = "testing")]
pub mod fake;
#[cfg(all(feature = "redis", feature = "testing"))]
pub mod fleet;
#[cfg(all(feature = "testing", feature = "present"))]
pub mod present;
#[cfg(feature = "redis")]
pub mod redis_server;
#[cfg(all(feature = "store", feature = "testing"))]
pub mod store;
#[cfg(all(feature = "testing", feature = "verify"))]
pub mod verify;
