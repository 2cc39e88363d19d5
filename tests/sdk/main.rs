//! The library's tests, one module per subject, in one binary (one link of
//! the crate instead of one per file). Modules that need an optional feature
//! are compiled only with it. The suites that must run alone have their own
//! binaries: `redaction` (one global tracing subscriber), `from_env` (changes
//! the process environment), `fleet` (fleets of child processes), and the CLI
//! and contract suites.
//!
//! Run one subject: `cargo test --all-features --test sdk -- token_cache::`.

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "testing")]
mod audit_follow;
#[cfg(feature = "blocking")]
mod blocking;
mod codegen_sync;
mod decoding;
#[cfg(feature = "testing")]
mod e2e;
#[cfg(all(feature = "testing", feature = "blocking"))]
mod e2e_blocking;
mod facade;
#[cfg(feature = "testing")]
mod fake;
mod pagination;
#[cfg(all(feature = "testing", feature = "present"))]
mod present;
mod resilience;
#[cfg(feature = "testing")]
mod rollover;
#[cfg(feature = "testing")]
mod secret_source;
#[cfg(all(feature = "store", feature = "testing"))]
mod store;
mod token_cache;
mod transport;
#[cfg(all(feature = "testing", feature = "verify"))]
mod verify;
mod writes;
