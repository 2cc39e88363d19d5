//! Spec-driven contract tests of the raw generated bindings (run as the
//! library's unit tests: `cargo test --lib contract`).
//!
//! `openapi/agentidp.yaml` is read at run time and is the oracle: every
//! operation is called through the raw bindings (`sentryagent_idp::__raw::call`,
//! which runs them inside the seam's hooks, as every facade call does)
//! against httpmock, using progenitor's typed mock helpers
//! (`generated/httpmock.rs`), and every documented example response is served
//! back and must decode into the typed value the spec names.
//!
//! - `spec`: reads the spec (anchors expanded, `$ref`s resolved).
//! - `fixture`: the fixture ids, the one call per operation, its outcome.
//! - `requests`: one test per operation on what goes on the wire.
//! - `responses`: every documented example, plus the documented special cases.

// These tests are compiled into the library's unit-test binary (see
// `src/lib.rs`), so the generated mocks' `crate::model::…` paths name the
// facade's own types, and `sentryagent_idp::__raw` is the crate itself.

/// progenitor's typed httpmock helpers, as generated from the spec.
#[allow(dead_code, unused_imports, clippy::all, clippy::pedantic)]
mod mocks {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/httpmock.rs"
    ));
}

mod fixture;
#[path = "../support/spec.rs"]
mod openapi;
mod requests;
mod responses;
mod spec;
