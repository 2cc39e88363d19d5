//! Spec-driven contract tests of the raw generated bindings.
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

// The generated code names the facade types by their crate paths
// (`crate::model::…`, `crate::secret::Secret`, `crate::scope::ScopeSet`);
// `generated/httpmock.rs` uses only `model` today.
mod model {
    pub use sentryagent_idp::model::*;
}
#[allow(unused_imports)]
mod secret {
    pub use sentryagent_idp::secret::Secret;
}
#[allow(unused_imports)]
mod scope {
    pub use sentryagent_idp::ScopeSet;
}

/// progenitor's typed httpmock helpers, as generated from the spec.
#[allow(dead_code, unused_imports, clippy::all, clippy::pedantic)]
mod mocks {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/generated/httpmock.rs"
    ));
}

#[path = "contract/fixture.rs"]
mod fixture;
#[path = "common/spec.rs"]
mod openapi;
#[path = "contract/requests.rs"]
mod requests;
#[path = "contract/responses.rs"]
mod responses;
#[path = "contract/spec.rs"]
mod spec;
