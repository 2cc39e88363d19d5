//! The raw bindings progenitor generates from the spec at build time.
//!
//! Not public API: the facade wraps them. The same code is checked in under
//! `generated/client.rs` for review.
#![allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    dead_code,
    unused_imports,
    unreachable_pub,
    unreachable_patterns,
    private_interfaces
)]

include!(concat!(env!("OUT_DIR"), "/client.rs"));
