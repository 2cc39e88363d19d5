//! The client's settings, once: built by [`ClientBuilder`](super::ClientBuilder)
//! and shared (behind one `Arc`) by the client, its clones, the clients
//! narrowed from it and its token endpoint.

use std::time::Duration;

use crate::retry::{RetryBudget, RetryPolicy};

/// Default refresh buffer: a token is refreshed this long before it expires
/// (at most half its lifetime, see [`ClientBuilder::refresh_buffer`](super::ClientBuilder::refresh_buffer)).
pub const DEFAULT_REFRESH_BUFFER: Duration = Duration::from_secs(60);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of one HTTP attempt.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout of a whole call, retries and backoff included.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(90);
/// Default limit on a response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// Default time an idle pooled connection is kept: below the 5 s keep-alive
/// timeout of the Node server AgentIdP runs on, so the client never writes
/// to a connection the server is closing.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// What every call of a client family reads.
#[derive(Debug)]
pub(crate) struct Config {
    /// One HTTP attempt, from sending to the end of the body.
    pub attempt_timeout: Duration,
    /// A whole call: token fetch, attempts, backoff.
    pub total_timeout: Duration,
    /// One token fetch, by any source.
    pub token_timeout: Duration,
    pub refresh_buffer: Duration,
    pub retry: RetryPolicy,
    /// Shared by every call of the family.
    pub budget: Option<RetryBudget>,
    pub max_body: u64,
    /// The fleet-wide rate limit and the client id it counts.
    #[cfg(feature = "redis")]
    pub limiter: Option<(crate::store::FleetLimiter, String)>,
}
