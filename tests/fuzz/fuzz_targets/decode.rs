//! Response decoding under arbitrary input: every response type of the spec
//! and the error mapping must return, never panic.
//!
//! Run: `cargo +nightly fuzz run --fuzz-dir tests/fuzz decode -- -max_total_time=60`
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentryagent_idp::__raw::{map_error_response, types};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (head, body) = rest.split_at(rest.len().min(2));
    let status = u16::from_le_bytes([head.first().copied().unwrap_or(0), head.get(1).copied().unwrap_or(0)]);
    let (retry_after, body) = body.split_at(body.len().min(usize::from(selector >> 4)));
    let error = map_error_response(status % 1000, retry_after, body);
    let _ = (error.to_string(), error.kind(), error.retry_after());
    match selector % 10 {
        0 => drop(serde_json::from_slice::<types::Agent>(body)),
        1 => drop(serde_json::from_slice::<types::AgentPage>(body)),
        2 => drop(serde_json::from_slice::<types::CredentialWithSecret>(body)),
        3 => drop(serde_json::from_slice::<types::CredentialList>(body)),
        4 => drop(serde_json::from_slice::<types::AuditEvent>(body)),
        5 => drop(serde_json::from_slice::<types::AuditEventPage>(body)),
        6 => drop(serde_json::from_slice::<types::TokenResponse>(body)),
        7 => drop(serde_json::from_slice::<types::Introspection>(body)),
        8 => drop(serde_json::from_slice::<types::TokenError>(body)),
        _ => drop(serde_json::from_slice::<types::ApiError>(body)),
    }
});
