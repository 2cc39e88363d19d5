//! The knobs a test turns at run time: latency, token lifetime, injected
//! failures, the rate limiter, and per-operation request counters.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::failure::Failure;
use crate::operation::Operation;

/// A sliding-window limiter over every request the fake serves.
#[derive(Debug)]
struct Limiter {
    max: u32,
    per: Duration,
    /// When each admitted request of the current window arrived, oldest first.
    admitted: VecDeque<Instant>,
}

impl Limiter {
    /// `None` to admit the request, or how long until a slot frees.
    fn check(&mut self, now: Instant) -> Option<Duration> {
        while self
            .admitted
            .front()
            .is_some_and(|&t| now.duration_since(t) >= self.per)
        {
            self.admitted.pop_front();
        }
        if self.admitted.len() < self.max as usize {
            self.admitted.push_back(now);
            return None;
        }
        let wait = match self.admitted.front() {
            Some(&oldest) => self.per.saturating_sub(now.duration_since(oldest)),
            None => self.per,
        };
        Some(wait.max(Duration::from_secs(1)))
    }
}

#[derive(Debug)]
struct Knobs {
    latency: Duration,
    token_lifetime: Duration,
    failures: HashMap<Operation, VecDeque<Failure>>,
    seen: HashMap<Operation, usize>,
    limiter: Option<Limiter>,
}

/// What the guard does with one request, decided when it arrives.
#[derive(Debug)]
pub(crate) struct Ticket {
    /// Wait this long first.
    pub latency: Duration,
    /// Then fail like this, if a failure was queued.
    pub failure: Option<Failure>,
}

/// The shared knobs.
#[derive(Debug)]
pub(crate) struct Control {
    knobs: Mutex<Knobs>,
}

impl Control {
    /// Knobs with these starting values.
    pub(crate) fn new(
        latency: Duration,
        token_lifetime: Duration,
        rate_limit: Option<(u32, Duration)>,
    ) -> Control {
        Control {
            knobs: Mutex::new(Knobs {
                latency,
                token_lifetime,
                failures: HashMap::new(),
                seen: HashMap::new(),
                limiter: rate_limit.map(|(max, per)| Limiter {
                    max,
                    per,
                    admitted: VecDeque::new(),
                }),
            }),
        }
    }

    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request of `operation` and takes its next queued failure.
    pub(crate) fn admit(&self, operation: Operation) -> Ticket {
        let mut knobs = self.knobs();
        *knobs.seen.entry(operation).or_default() += 1;
        let failure = knobs
            .failures
            .get_mut(&operation)
            .and_then(VecDeque::pop_front);
        Ticket {
            latency: knobs.latency,
            failure,
        }
    }

    /// `None` when the rate limiter admits the request, else the wait.
    pub(crate) fn rate_limited(&self) -> Option<Duration> {
        let mut knobs = self.knobs();
        knobs
            .limiter
            .as_mut()
            .and_then(|limiter| limiter.check(Instant::now()))
    }

    /// Queues `times` copies of `failure` for `operation`.
    pub(crate) fn fail_next(&self, operation: Operation, failure: Failure, times: usize) {
        let mut knobs = self.knobs();
        let queue = knobs.failures.entry(operation).or_default();
        queue.extend(std::iter::repeat_n(failure, times));
    }

    /// Requests of `operation` seen so far.
    pub(crate) fn seen(&self, operation: Operation) -> usize {
        self.knobs().seen.get(&operation).copied().unwrap_or(0)
    }

    /// Sets the latency added before every response.
    pub(crate) fn set_latency(&self, latency: Duration) {
        self.knobs().latency = latency;
    }

    /// The lifetime of newly issued tokens.
    pub(crate) fn token_lifetime(&self) -> Duration {
        self.knobs().token_lifetime
    }

    /// Sets the lifetime of newly issued tokens.
    pub(crate) fn set_token_lifetime(&self, lifetime: Duration) {
        self.knobs().token_lifetime = lifetime;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_admits_max_per_window_then_reports_the_wait() {
        let mut limiter = Limiter {
            max: 2,
            per: Duration::from_secs(10),
            admitted: VecDeque::new(),
        };
        let start = Instant::now();
        assert_eq!(limiter.check(start), None);
        assert_eq!(limiter.check(start + Duration::from_secs(1)), None);
        assert_eq!(
            limiter.check(start + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(limiter.check(start + Duration::from_secs(10)), None);
    }
}
