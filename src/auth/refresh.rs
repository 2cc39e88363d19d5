//! When a cached token is refreshed: before its expiry by the refresh
//! buffer, but never by more than half its lifetime (a 60 s token with the
//! 60 s default buffer would otherwise be "due" at once, and every call would
//! ask for a new one), at a random point of the buffer's earlier half (so a
//! fleet of processes spreads its refreshes). After a fetch that failed (or
//! ended abnormally), no background refresh starts for
//! [`MIN_REFRESH_INTERVAL`], so a failing token endpoint is not asked again on
//! every call; a success ends that quiet period, since the new token's
//! refresh point is already at least half its lifetime away.

use std::time::{Duration, Instant};

/// No background refresh starts sooner than this (5 s) after a fetch that
/// did not bring a token.
pub(crate) const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The instant a token received at `received`, expiring at `expires_at`,
/// is due for a background refresh. `jitter` is uniform in `[0, 1)`.
pub(crate) fn refresh_at(
    received: Instant,
    expires_at: Instant,
    buffer: Duration,
    jitter: f64,
) -> Instant {
    let lifetime = expires_at.saturating_duration_since(received);
    let effective = buffer.min(lifetime / 2);
    let lead = effective.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
    expires_at
        .checked_sub(lead)
        .unwrap_or(received)
        .max(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_buffer_is_at_most_half_the_lifetime() {
        let now = Instant::now();
        for jitter in [0.0, 0.5, 0.999] {
            let at = refresh_at(now, now + S(60), S(60), jitter);
            let after = at - now;
            assert!(after >= S(30) && after <= S(45), "{after:?}");
        }
    }

    #[test]
    fn a_long_token_is_refreshed_inside_the_buffer_at_a_random_point() {
        let now = Instant::now();
        let early = refresh_at(now, now + S(3600), S(60), 0.999) - now;
        let late = refresh_at(now, now + S(3600), S(60), 0.0) - now;
        assert!(
            early >= S(3540) && late <= S(3570) && early < late,
            "{early:?} {late:?}"
        );
    }

    #[test]
    fn huge_buffers_and_expired_tokens_do_not_overflow() {
        let now = Instant::now();
        assert!(refresh_at(now, now + S(10), Duration::MAX, 0.3) > now);
        assert_eq!(refresh_at(now, now, S(60), 0.3), now);
    }
}
