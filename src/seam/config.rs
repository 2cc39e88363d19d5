//! What every call of a client family reads: its timeouts, retry rules and
//! limits, and the add-on asked before each attempt. Built once by the
//! client builder and shared (behind one `Arc`) by the client, its clones,
//! the clients narrowed from it and its token endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::error::Result;
use crate::retry::{RetryBudget, RetryPolicy};

/// Default timeout of one HTTP attempt: 30 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout of a whole call, retries and backoff included: 90 s.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(90);
/// Default limit on a response body: 8 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// An add-on the seam asks right before each attempt goes on the wire (the
/// fleet-wide rate limit). It may wait, within the call's deadline, or
/// refuse the attempt with the error the call returns.
pub(crate) trait Admission: Send + Sync + fmt::Debug + 'static {
    /// Waits for the attempt's turn; `deadline` is the call's (`None`: too
    /// far to represent).
    fn admit(&self, deadline: Option<Instant>) -> BoxFuture<'_, Result<()>>;
}

/// The settings of one client family.
#[derive(Debug)]
pub(crate) struct Config {
    /// One HTTP attempt, from sending to the end of the body.
    pub attempt_timeout: Duration,
    /// A whole call: token fetch, attempts, backoff.
    pub total_timeout: Duration,
    pub retry: RetryPolicy,
    /// Shared by every call of the family.
    pub budget: Option<RetryBudget>,
    pub max_body: u64,
    /// Asked before each attempt; `None` for most clients.
    pub admission: Option<Arc<dyn Admission>>,
}
