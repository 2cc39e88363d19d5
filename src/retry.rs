//! Retries: which failures are retried, how long to wait, and a client-wide
//! budget so an outage does not multiply the load.
//!
//! Whether an operation may be replayed at all is the spec's decision
//! (`x-sentryagent-replay`); this module decides when and how often.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use reqwest::StatusCode;

/// How the client retries failed attempts.
///
/// Default: 3 attempts in all, exponential backoff with full jitter from
/// 100 ms up to 20 s, on connect errors, timeouts, 429, 502, 503 and 504;
/// `Retry-After` honoured up to 20 s; a client-wide retry budget of 500
/// tokens (a retry costs 5, a retry after a timeout 10, a success refunds 1).
///
/// ```
/// use sentryagent_idp::RetryPolicy;
/// use std::time::Duration;
///
/// let policy = RetryPolicy::default().max_attempts(5).max_delay(Duration::from_secs(5));
/// let none = RetryPolicy::disabled();
/// # let _ = (policy, none);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    pub(crate) max_retry_after: Duration,
    pub(crate) statuses: Vec<StatusCode>,
    pub(crate) budget: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(20),
            statuses: vec![
                StatusCode::TOO_MANY_REQUESTS,
                StatusCode::BAD_GATEWAY,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::GATEWAY_TIMEOUT,
            ],
            budget: Some(500),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn disabled() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The first backoff ceiling; it doubles with each retry.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The largest backoff ceiling.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest `Retry-After` the client waits; a longer one ends the
    /// retries and returns the 429/503 with [`Error::retry_after`](crate::Error::retry_after) set.
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.max_retry_after = wait;
        self
    }

    /// The response statuses that are retried (default 429, 502, 503, 504).
    pub fn retry_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// The capacity of the client-wide retry budget (default 500), or `None`
    /// for no budget.
    pub fn budget(mut self, capacity: Option<u32>) -> Self {
        self.budget = capacity;
        self
    }

    /// The wait before retry number `retry` (1-based): full jitter, a uniform
    /// draw below `min(max_delay, base_delay * 2^(retry-1))`.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(
                1u32.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    pub(crate) fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(&status)
    }
}

/// What a retry costs from the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryCost {
    Retry = 5,
    AfterTimeout = 10,
}

/// A token bucket shared by every call of a client (as in the AWS SDKs):
/// retries draw from it, successes refill it slowly, and when it is empty
/// failures are returned at once.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    capacity: u32,
    level: Mutex<u32>,
}

impl RetryBudget {
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            capacity,
            level: Mutex::new(capacity),
        }
    }

    /// Takes `cost` if the bucket holds it.
    pub(crate) fn withdraw(&self, cost: RetryCost) -> bool {
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        let cost = cost as u32;
        if *level >= cost {
            *level -= cost;
            true
        } else {
            false
        }
    }

    /// A success gives one token back.
    pub(crate) fn refund(&self) {
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        *level = (*level + 1).min(self.capacity);
    }

    #[cfg(test)]
    fn level(&self) -> u32 {
        *self.level.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_below_a_capped_exponential_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 1..=40 {
            let ceiling = (Duration::from_millis(100) * 2u32.saturating_pow(retry - 1))
                .min(Duration::from_secs(20));
            for _ in 0..50 {
                assert!(policy.backoff(retry) <= ceiling, "retry {retry}");
            }
        }
        let spread: Vec<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(spread.iter().any(|d| *d != spread[0]), "jittered");
    }

    #[test]
    fn budget_runs_dry_and_refills() {
        let budget = RetryBudget::new(12);
        assert!(budget.withdraw(RetryCost::AfterTimeout));
        assert!(!budget.withdraw(RetryCost::Retry));
        for _ in 0..20 {
            budget.refund();
        }
        assert_eq!(budget.level(), 12);
        assert!(budget.withdraw(RetryCost::Retry) && budget.withdraw(RetryCost::Retry));
        assert!(!budget.withdraw(RetryCost::Retry));
    }

    #[test]
    fn disabled_means_one_attempt() {
        assert_eq!(RetryPolicy::disabled().max_attempts, 1);
        assert_eq!(RetryPolicy::default().max_attempts(0).max_attempts, 1);
    }
}
