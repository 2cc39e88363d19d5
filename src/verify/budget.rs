//! The introspection-miss budget: a token bucket bounding the introspections
//! that tokens not known active can cause, so that anonymous callers cannot
//! spend the service's AgentIdP rate limit (and turn it into 503s for real
//! tokens, or into a 429 the grace would have served).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The shortest and longest `Retry-After` of a 503 for a spent budget.
const MIN_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `capacity` units, refilled evenly over `per`.
#[derive(Debug)]
pub(crate) struct MissBudget {
    capacity: f64,
    /// Units back per second; infinite for a `per` of zero (no limit).
    rate: f64,
    level: Mutex<(f64, Instant)>,
}

impl MissBudget {
    /// A full budget. `capacity` 0 is taken as 1 (an introspection mode that
    /// can never ask about a new token would refuse every one).
    pub(crate) fn new(capacity: u32, per: Duration) -> MissBudget {
        let capacity = f64::from(capacity.max(1));
        let seconds = per.as_secs_f64();
        let rate = if seconds > 0.0 {
            capacity / seconds
        } else {
            f64::INFINITY
        };
        MissBudget {
            capacity,
            rate,
            level: Mutex::new((capacity, super::cache::now())),
        }
    }

    /// Takes one unit for an introspection about to be made; `Err` with the
    /// wait until one is back (within [1 s, 60 s]) when none is left.
    pub(crate) fn take(&self) -> Result<(), Duration> {
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        let now = super::cache::now();
        let (tokens, at) = *level;
        let elapsed = now.saturating_duration_since(at).as_secs_f64();
        let tokens = (tokens + elapsed * self.rate).min(self.capacity);
        if tokens >= 1.0 {
            *level = (tokens - 1.0, now);
            return Ok(());
        }
        *level = (tokens, now);
        let wait = Duration::try_from_secs_f64((1.0 - tokens) / self.rate).unwrap_or(MAX_WAIT);
        Err(wait.clamp(MIN_WAIT, MAX_WAIT))
    }

    /// The wait until a unit is back when none is left now (`take` would
    /// fail), without taking or changing anything.
    pub(crate) fn spent(&self) -> Option<Duration> {
        let level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = *level;
        drop(level);
        let elapsed = super::cache::now()
            .saturating_duration_since(at)
            .as_secs_f64();
        let tokens = (tokens + elapsed * self.rate).min(self.capacity);
        if tokens >= 1.0 {
            return None;
        }
        let wait = Duration::try_from_secs_f64((1.0 - tokens) / self.rate).unwrap_or(MAX_WAIT);
        Some(wait.clamp(MIN_WAIT, MAX_WAIT))
    }

    /// Gives back a unit taken for what turned out to be no miss (the token
    /// was active).
    pub(crate) fn refund(&self) {
        let mut level = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        level.0 = (level.0 + 1.0).min(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_misses_and_refills_over_its_window() {
        let budget = MissBudget::new(3, Duration::from_secs(30));
        for _ in 0..3 {
            assert_eq!(budget.take(), Ok(()));
        }
        assert_eq!(budget.take(), Err(Duration::from_secs(10)));
        budget.refund();
        assert_eq!(budget.take(), Ok(()));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(budget.take(), Ok(()));
        assert!(budget.take().is_err());
        tokio::time::advance(Duration::from_secs(3600)).await;
        for _ in 0..3 {
            assert_eq!(budget.take(), Ok(()));
        }
        assert!(budget.take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn extreme_windows_neither_panic_nor_wait_unbounded() {
        let unlimited = MissBudget::new(1, Duration::ZERO);
        for _ in 0..100 {
            assert_eq!(unlimited.take(), Ok(()));
        }
        let never = MissBudget::new(0, Duration::MAX);
        assert_eq!(never.take(), Ok(()));
        assert_eq!(never.take(), Err(MAX_WAIT));
    }
}
