//! Retries: the policy, a client-wide budget so an outage does not multiply
//! the load, and the classification of each attempt's outcome.
//!
//! Whether an operation may be replayed at all is the spec's decision
//! (`x-sentryagent-replay`, `x-sentryagent-done-codes`); [`decide`] applies it
//! to what an attempt observed. It is a pure function of plain data, so every
//! rule is unit-tested here without HTTP; the seam only turns responses and
//! transport errors into an [`Observed`] and acts on the [`Decision`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::StatusCode;

use crate::operation::{OperationSpec, Replay};

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
    level: AtomicU32,
}

impl RetryBudget {
    pub(crate) fn new(capacity: u32) -> Self {
        Self {
            capacity,
            level: AtomicU32::new(capacity),
        }
    }

    /// Takes `cost` if the bucket holds it.
    pub(crate) fn withdraw(&self, cost: RetryCost) -> bool {
        let cost = cost as u32;
        self.level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |level| {
                level.checked_sub(cost)
            })
            .is_ok()
    }

    /// A success gives one token back (a full bucket, the usual case, costs
    /// one load).
    pub(crate) fn refund(&self) {
        if self.level.load(Ordering::Acquire) >= self.capacity {
            return;
        }
        let _ = self
            .level
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |level| {
                (level < self.capacity).then_some(level + 1)
            });
    }

    #[cfg(test)]
    fn level(&self) -> u32 {
        self.level.load(Ordering::Acquire)
    }
}

/// What one attempt came to, as the retry rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A response arrived. `code` is the error body's code, read only for a
    /// `409` of an operation with done codes.
    Response {
        status: StatusCode,
        retry_after: Option<Duration>,
        code: Option<String>,
    },
    /// The connection could not be made: nothing was sent.
    Unsent,
    /// The transport failed after the request may have been sent.
    Failed {
        /// The attempt timed out (rather than the connection breaking).
        timeout: bool,
    },
    /// The SDK refused the answer (too large, from another origin); final.
    Refused,
}

/// What the earlier attempts of a call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct History {
    /// Attempts made so far, the current one included.
    pub attempts: u32,
    /// Whether a refused token was already replaced once.
    pub refreshed: bool,
    /// Whether an earlier attempt may have been applied by the server (it
    /// failed after sending, or answered 5xx), as opposed to provably doing
    /// nothing (connect error, 4xx, 429).
    pub may_have_applied: bool,
}

impl History {
    /// Records the outcome of the attempt just classified.
    pub(crate) fn record(&mut self, observed: &Observed) {
        let applied = match observed {
            Observed::Response { status, .. } => status.is_server_error(),
            Observed::Failed { .. } => true,
            Observed::Unsent | Observed::Refused => false,
        };
        self.may_have_applied |= applied;
    }
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Return this outcome to the caller.
    Return,
    /// The bearer token was refused: drop it, fetch a new one, replay once.
    Refresh,
    /// Wait, then send again (if the attempt count and budget allow).
    Retry { wait: Duration, cost: RetryCost },
    /// A `409` done code after an attempt that may have been applied: that
    /// attempt did the work; the call succeeded.
    Done,
    /// An unsent-only write failed after it may have reached the server:
    /// return with [`ErrorKind::OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown).
    Unknown(&'static str),
}

/// Applies the operation's replay rule and the policy to an attempt.
pub(crate) fn decide(
    op: &OperationSpec,
    policy: &RetryPolicy,
    history: &History,
    observed: &Observed,
) -> Decision {
    let unsent_only = op.replay == Replay::UnsentOnly;
    let retry = |wait: Duration, cost: RetryCost| {
        if history.attempts >= policy.max_attempts {
            Decision::Return
        } else {
            Decision::Retry { wait, cost }
        }
    };
    match observed {
        Observed::Refused => Decision::Return,
        Observed::Unsent => retry(policy.backoff(history.attempts), RetryCost::Retry),
        Observed::Failed { timeout } if unsent_only => Decision::Unknown(if *timeout {
            "the attempt timed out after the request was sent"
        } else {
            "the connection failed after the request was sent"
        }),
        Observed::Failed { timeout } => retry(
            policy.backoff(history.attempts),
            if *timeout {
                RetryCost::AfterTimeout
            } else {
                RetryCost::Retry
            },
        ),
        Observed::Response {
            status,
            retry_after,
            code,
        } => {
            if status.is_success() {
                return Decision::Return;
            }
            if *status == StatusCode::UNAUTHORIZED && op.bearer && !history.refreshed {
                return Decision::Refresh;
            }
            if *status == StatusCode::CONFLICT
                && op.replay == Replay::ConflictMeansDone
                && history.may_have_applied
                && code.as_deref().is_some_and(|c| op.done_codes.contains(&c))
            {
                return Decision::Done;
            }
            // Any 5xx, retried or not, may come after the work was done:
            // reported as such, the status kept, never as a plain failure.
            if unsent_only && status.is_server_error() {
                return Decision::Unknown(
                    "the server answered with a server error (5xx) after the request was sent; \
                     it may have been applied",
                );
            }
            if !policy.retries_status(*status) {
                return Decision::Return;
            }
            // A 429 is the rate limiter refusing before any work: safe for
            // every operation. Any other retryable status (a 4xx the caller
            // added) a proxy may send after forwarding the request.
            if unsent_only && *status != StatusCode::TOO_MANY_REQUESTS {
                return Decision::Unknown(
                    "the server answered with a retryable status after the request was sent",
                );
            }
            match retry_after {
                Some(wait) if *wait > policy.max_retry_after => Decision::Return,
                Some(wait) => retry(*wait, RetryCost::Retry),
                None => retry(policy.backoff(history.attempts), RetryCost::Retry),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::operation::Operation;

    fn status(code: u16) -> Observed {
        Observed::Response {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
            code: None,
        }
    }

    fn conflict(code: &str) -> Observed {
        Observed::Response {
            status: StatusCode::CONFLICT,
            retry_after: None,
            code: Some(code.to_owned()),
        }
    }

    fn first() -> History {
        History {
            attempts: 1,
            ..History::default()
        }
    }

    fn is_retry(d: &Decision) -> bool {
        matches!(d, Decision::Retry { .. })
    }

    #[test]
    fn reads_are_retried_on_transient_failures_until_the_attempts_run_out() {
        let op = Operation::GetAgent.spec();
        let p = RetryPolicy::default();
        for observed in [
            status(429),
            status(502),
            status(503),
            status(504),
            Observed::Unsent,
            Observed::Failed { timeout: true },
        ] {
            assert!(
                is_retry(&decide(op, &p, &first(), &observed)),
                "{observed:?}"
            );
        }
        let last = History {
            attempts: 3,
            ..History::default()
        };
        assert_eq!(decide(op, &p, &last, &status(503)), Decision::Return);
        for code in [200, 400, 404, 409, 500] {
            assert_eq!(
                decide(op, &p, &first(), &status(code)),
                Decision::Return,
                "{code}"
            );
        }
    }

    #[test]
    fn unsent_only_writes_are_replayed_only_when_nothing_was_done() {
        let p = RetryPolicy::default();
        for op in [
            Operation::RegisterAgent,
            Operation::GenerateCredential,
            Operation::RotateCredential,
            Operation::UpdateAgent,
        ] {
            let op = op.spec();
            assert!(is_retry(&decide(op, &p, &first(), &Observed::Unsent)));
            assert!(is_retry(&decide(op, &p, &first(), &status(429))));
            for code in [500, 501, 502, 503, 504, 599] {
                assert!(
                    matches!(
                        decide(op, &p, &first(), &status(code)),
                        Decision::Unknown(_)
                    ),
                    "{code}"
                );
            }
            for code in [400, 404, 409, 422] {
                assert_eq!(decide(op, &p, &first(), &status(code)), Decision::Return);
            }
            assert!(matches!(
                decide(op, &p, &first(), &Observed::Failed { timeout: true }),
                Decision::Unknown(_)
            ));
            assert!(matches!(
                decide(op, &p, &first(), &Observed::Failed { timeout: false }),
                Decision::Unknown(_)
            ));
        }
    }

    #[test]
    fn a_401_refreshes_the_token_once() {
        let p = RetryPolicy::default();
        let op = Operation::RegisterAgent.spec();
        assert_eq!(decide(op, &p, &first(), &status(401)), Decision::Refresh);
        let refreshed = History {
            refreshed: true,
            ..first()
        };
        assert_eq!(decide(op, &p, &refreshed, &status(401)), Decision::Return);
        let token = Operation::IssueToken.spec();
        assert_eq!(decide(token, &p, &first(), &status(401)), Decision::Return);
    }

    #[test]
    fn a_done_code_means_done_only_after_an_attempt_that_may_have_been_applied() {
        let p = RetryPolicy::default();
        let op = Operation::DecommissionAgent.spec();
        let done = conflict("AGENT_ALREADY_DECOMMISSIONED");
        assert_eq!(decide(op, &p, &first(), &done), Decision::Return);
        let mut history = first();
        for provably_nothing in [status(429), status(401), status(403), Observed::Unsent] {
            history.record(&provably_nothing);
        }
        assert_eq!(decide(op, &p, &history, &done), Decision::Return);
        for maybe in [status(503), Observed::Failed { timeout: true }] {
            let mut history = first();
            history.record(&maybe);
            assert_eq!(decide(op, &p, &history, &done), Decision::Done, "{maybe:?}");
            assert_eq!(
                decide(op, &p, &history, &conflict("SOMETHING_ELSE")),
                Decision::Return
            );
            let revoke = Operation::RevokeCredential.spec();
            assert_eq!(
                decide(revoke, &p, &history, &done),
                Decision::Return,
                "another op's code"
            );
        }
    }

    #[test]
    fn retry_after_is_waited_out_up_to_the_maximum() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(5));
        let op = Operation::GetAgent.spec();
        let after = |secs| Observed::Response {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(secs)),
            code: None,
        };
        assert_eq!(
            decide(op, &p, &first(), &after(3)),
            Decision::Retry {
                wait: Duration::from_secs(3),
                cost: RetryCost::Retry
            }
        );
        assert_eq!(decide(op, &p, &first(), &after(6)), Decision::Return);
    }

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
