//! The knobs every mode shares, with their defaults.

use std::time::Duration;

/// Default [`max_age`](super::VerifierBuilder::max_age), 30 s: a revocation
/// is seen within 30 s in the introspecting modes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30);
/// Default [`negative_ttl`](super::VerifierBuilder::negative_ttl): 5 s.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Default [`capacity`](super::VerifierBuilder::capacity), in entries.
pub const DEFAULT_CAPACITY: u64 = 10_000;
/// Default [`leeway`](super::VerifierBuilder::leeway) on `exp` and `nbf`: 5 s.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// The longest [`leeway`](super::VerifierBuilder::leeway) applied (24 h); a
/// longer one is taken as this.
pub(crate) const MAX_LEEWAY: Duration = Duration::from_secs(24 * 3600);
/// Default [`jwks_refetch_cooldown`](super::VerifierBuilder::jwks_refetch_cooldown): 10 s.
pub const DEFAULT_JWKS_COOLDOWN: Duration = Duration::from_secs(10);
/// Default [`deadline`](super::VerifierBuilder::deadline): 5 s, within
/// which every verification answers, 503 if AgentIdP has not.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
/// The shortest [`deadline`](super::VerifierBuilder::deadline) allowed:
/// 100 ms. A remote call that opens a connection (TCP, then TLS) cannot be
/// counted on to answer in less, and a deadline no answer fits in refuses
/// every token that is not a cache hit with 503;
/// [`build`](super::VerifierBuilder::build) refuses a shorter one.
pub const MIN_DEADLINE: Duration = Duration::from_millis(100);
/// The longest [`jwks_refetch_cooldown`](super::VerifierBuilder::jwks_refetch_cooldown)
/// applied: 5 min (the lifetime of a key set without `max-age`); a longer
/// one is taken as this. Within the cooldown, a failed fetch is not tried
/// again and a key rotated in is not looked for (503 for its tokens), so a
/// cooldown of days would stop the verifier for days.
pub const MAX_JWKS_COOLDOWN: Duration = Duration::from_secs(300);
/// Default number of [`introspection_miss_limit`](super::VerifierBuilder::introspection_miss_limit):
/// 30 introspections of tokens not known active…
pub const DEFAULT_INTROSPECTION_MISSES: u32 = 30;
/// …per 60 s (the default window of
/// [`introspection_miss_limit`](super::VerifierBuilder::introspection_miss_limit)),
/// well under the 100 requests a minute AgentIdP allows a client.
pub const DEFAULT_INTROSPECTION_MISS_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) max_age: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) capacity: u64,
    pub(crate) leeway: Duration,
    pub(crate) grace: Option<Duration>,
    pub(crate) issuer: Option<String>,
    pub(crate) audience: Option<String>,
    pub(crate) deadline: Duration,
    pub(crate) misses: (u32, Duration),
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_age: DEFAULT_MAX_AGE,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
            capacity: DEFAULT_CAPACITY,
            leeway: DEFAULT_LEEWAY,
            grace: None,
            issuer: None,
            audience: None,
            deadline: DEFAULT_DEADLINE,
            misses: (
                DEFAULT_INTROSPECTION_MISSES,
                DEFAULT_INTROSPECTION_MISS_WINDOW,
            ),
        }
    }
}
