//! The one support layer of the test binaries (`sdk`, `redaction`,
//! `fleet`): each helper is defined once, here. Suites reach it as
//! `crate::support`; the modules that need an optional feature are compiled
//! only with it.
#![allow(dead_code)]

mod fixtures;
pub use fixtures::*;

pub mod paged;
pub mod scripted;

// Two files stay where the CLI and contract suites include them from
// (`tests/common/spec.rs`, `tests/fake_support/schema.rs`); this layer
// includes the same files, so each is still defined once.
/// The spec's response schemas as validators (of the fake's answers); it
/// names the spec `super::openapi`, as `tests/cli_support` does.
#[cfg(feature = "testing")]
#[path = "../fake_support/schema.rs"]
pub mod schema;
/// The spec as data.
#[path = "../common/spec.rs"]
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
