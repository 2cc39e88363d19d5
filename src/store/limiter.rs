//! [`FleetLimiter`]: one rate limit for every process of a client id, in
//! Redis (GCRA), so a fleet stays under AgentIdP's limit instead of
//! collecting 429s.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;

use crate::client::ClientBuilder;
use crate::error::{Error, ErrorKind, Result};
use crate::flavor::Flavor;
use crate::seam::Admission;

/// The generic cell rate algorithm in one script, on Redis's clock (so
/// the hosts' clocks do not matter). The key holds the theoretical arrival
/// time (TAT, ms). A request whose slot (TAT - tolerance) is due within
/// `max_wait` takes it at once, moving the TAT on by one interval: it is
/// admitted now, or told how long to sleep for the slot it now holds. One
/// whose slot lies further out takes nothing and is told when it would be.
/// A TAT beyond `ceiling` of now (more than any reservation can make: the
/// clock of Redis stepped back, or a failover to a replica behind) is
/// clamped to now + tolerance + interval, and the answer says so.
///
/// Answers `{reserved (1|0), wait ms, clamped (1|0)}`.
const GCRA: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local ceiling = tonumber(ARGV[4])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call("GET", KEYS[1]))
if not tat or tat < now then tat = now end
local clamped = 0
if tat > now + ceiling then
  tat = now + tolerance + interval
  clamped = 1
end
local wait = math.max(0, tat - tolerance - now)
if wait > max_wait then
  if clamped == 1 then
    redis.call("SET", KEYS[1], tat, "PX", math.max(1, tat - now))
  end
  return {0, wait, clamped}
end
local next_tat = tat + interval
redis.call("SET", KEYS[1], next_tat, "PX", math.max(1, next_tat - now))
return {1, wait, clamped}
"#;

/// The longest `per` a limiter counts in: 365 days.
const MAX_PER: Duration = Duration::from_secs(365 * 24 * 3_600);

/// AgentIdP's limit per client: 100 requests a minute.
pub const SERVER_LIMIT: (u32, Duration) = (100, Duration::from_secs(60));

/// The requests let through at once before the steady rate applies: 80,
/// so that a fleet's start within the server's budget (say 50 replicas,
/// their token and first calls) goes through at once.
pub const DEFAULT_BURST: u32 = 80;

/// A fleet-wide rate limit for one client id, shared through Redis by every
/// process that uses it; from [`RedisStore::rate_limiter`](super::RedisStore::rate_limiter),
/// given to [`ClientBuilder::fleet_rate_limit`](crate::ClientBuilder::fleet_rate_limit).
///
/// Every request of the client (token requests included) first asks for a
/// slot (GCRA, in one Redis script): a burst of [`DEFAULT_BURST`] (80) at
/// once, then a steady rate of 90 % of the limit (by default 90 a minute,
/// one every 667 ms; the rest is headroom for the time between admission
/// and arrival). A request whose slot is due before its call's deadline
/// (and within one `per`, 60 s by default) takes that slot at once and
/// waits for it; one whose slot lies beyond fails at once with
/// [`ErrorKind::RateLimited`] and [`Error::retry_after`] (when the slot
/// would be), without reaching the server. If Redis cannot answer, the
/// request goes ahead: the limiter can only help.
///
/// **The trade-off of the defaults.** A limit of 100 a minute is a budget
/// per minute, so a start within it (50 replicas: 51 requests) should not
/// be spread over half a minute: the burst lets it through at once. The
/// price: a fleet that spends its whole burst and then keeps asking at the
/// full steady rate for the rest of that minute can send up to burst + 90 %
/// of the limit in it (170), and meets the server's 429s (which the retry
/// policy waits out). For a strict ceiling (no window of `per` above 90 %
/// of the limit) at the price of spacing a start out, set `.burst(1)`.
///
/// The limiter's state in Redis can never legitimately lie further ahead
/// than the largest burst (90 % of the limit, whatever `.burst` each
/// replica sets), one interval and one `per`; one that does (Redis's
/// clock stepped back, a failover to a replica whose clock is behind) is
/// reset to where a whole burst taken now would leave it (now + burst ×
/// interval: one interval's wait) with a warning in `tracing`, rather than
/// shutting the fleet out.
#[derive(Clone)]
pub struct FleetLimiter {
    connection: ConnectionManager,
    key_prefix: String,
    script: redis::Script,
    limit: u32,
    per: Duration,
    burst: u32,
}

impl fmt::Debug for FleetLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetLimiter")
            .field("limit", &self.limit)
            .field("per", &self.per)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl<F: Flavor> ClientBuilder<F> {
    /// Every request of this client (token requests included) waits for a
    /// slot of `limiter`, shared through Redis by every process of the same
    /// client id (feature `redis`; off unless set). See [`FleetLimiter`].
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn fleet_rate_limit(self, limiter: FleetLimiter) -> Self {
        self.add_on(move |client| {
            let client_id = client.client_id.ok_or_else(|| {
                Error::config("a fleet rate limit counts a client id: set client_id")
            })?;
            client.admission = Some(Arc::new(FleetAdmission {
                limiter,
                client_id: client_id.to_owned(),
            }));
            Ok(())
        })
    }
}

/// The limiter as the seam asks it: for one client id.
#[derive(Debug)]
struct FleetAdmission {
    limiter: FleetLimiter,
    client_id: String,
}

impl Admission for FleetAdmission {
    fn admit(&self, deadline: Option<Instant>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.limiter.admit(&self.client_id, deadline))
    }
}

impl FleetLimiter {
    pub(crate) fn new(connection: ConnectionManager, key_prefix: String) -> Self {
        Self {
            connection,
            key_prefix,
            script: redis::Script::new(GCRA),
            limit: SERVER_LIMIT.0,
            per: SERVER_LIMIT.1,
            burst: DEFAULT_BURST,
        }
    }

    /// The server's limit: `limit` requests in any `per` (default
    /// [`SERVER_LIMIT`], 100 a minute; `per` at least 1 ms, at most 365
    /// days: the limiter's script computes in Redis's Lua numbers, which a
    /// larger window would push past what Redis takes). The steady
    /// rate is 90 % of it. Set it to your server's limit if it differs.
    #[must_use]
    pub fn limit(mut self, limit: u32, per: Duration) -> Self {
        self.limit = limit.max(1);
        self.per = per.clamp(Duration::from_millis(1), MAX_PER);
        self
    }

    /// How many requests may go at once, on top of the steady rate
    /// (default [`DEFAULT_BURST`], 80; at least 1, at most 90 % of the
    /// limit). See the trade-off above.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Takes a slot for `client_id` (waiting for it when it is due before
    /// `deadline`), or fails at once when there is none in time.
    pub(crate) async fn admit(&self, client_id: &str, deadline: Option<Instant>) -> Result<()> {
        let (interval, tolerance) = cell(self.limit, self.per, self.burst);
        let key = format!("{}{client_id}:rate", self.key_prefix);
        // tokio's clock: the one the call's deadline is on.
        let now = tokio::time::Instant::now().into_std();
        let horizon = deadline
            .map_or(self.per, |d| d.saturating_duration_since(now))
            .min(self.per);
        // The furthest any replica of this limit can legitimately push the
        // state, whatever its burst (replicas of one client id may differ,
        // say during a rolling change of `.burst`): resetting a state
        // another's larger burst made would let a burst through again.
        let (_, largest_tolerance) = cell(self.limit, self.per, u32::MAX);
        let ceiling = largest_tolerance
            .saturating_add(interval)
            .saturating_add(millis(self.per));
        let answer = tokio::time::timeout(
            super::STORE_TIMEOUT,
            self.script
                .key(&key)
                .arg(interval)
                .arg(tolerance)
                .arg(millis(horizon))
                .arg(ceiling)
                .invoke_async::<(u8, u64, u8)>(&mut self.connection.clone()),
        )
        .await;
        let (reserved, wait, clamped) = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return fail_open(&e),
            Err(_) => return fail_open(&"no answer in time"),
        };
        if clamped == 1 {
            tracing::warn!(
                key = %key,
                "the fleet rate limiter's state in Redis lay further ahead than it can (Redis's clock stepped back, or a failover); reset to now"
            );
        }
        let wait = Duration::from_millis(wait);
        if reserved == 0 {
            return Err(Error::new(
                ErrorKind::RateLimited,
                format!(
                    "the fleet's rate limit ({} requests per {:?}) leaves no slot before this call's deadline; nothing was sent",
                    self.limit, self.per
                ),
            )
            .with_retry_after(wait));
        }
        // The slot is this call's: it is due within the horizon.
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

/// (interval between requests, burst tolerance), in ms: a steady rate of
/// 90 % of `limit` per `per` (at least one less than it), and `burst`
/// requests at once on top (GCRA's tolerance: `burst - 1` intervals). The
/// headroom absorbs the jitter between a request's admission here and its
/// arrival at the server. In any window of `per`, at most `burst - 1` plus
/// the steady rate's share are admitted.
fn cell(limit: u32, per: Duration, burst: u32) -> (u64, u64) {
    let planned = limit.saturating_sub((limit / 10).max(1)).max(1);
    let burst = burst.min(planned).max(1);
    let interval = millis(per).div_ceil(u64::from(planned)).max(1);
    (interval, interval.saturating_mul(u64::from(burst - 1)))
}

/// `d` in whole ms, saturated.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Lets the request go when the limiter cannot answer: it can only help.
fn fail_open(why: &dyn fmt::Display) -> Result<()> {
    tracing::warn!(reason = %why, "the fleet rate limiter cannot answer; sending without it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most requests GCRA admits in any window of `per_ms` from an idle
    /// start: the burst at once, then one per interval.
    fn most_in_a_window(interval: u64, tolerance: u64, per_ms: u64) -> u64 {
        tolerance / interval + 1 + (per_ms - 1) / interval
    }

    #[test]
    fn with_a_burst_of_one_no_window_admits_more_than_the_planned_rate() {
        for (limit, per_ms) in [(100, 60_000), (20, 1_000), (2, 1_000), (1, 1_000)] {
            let (interval, tolerance) = cell(limit, Duration::from_millis(per_ms), 1);
            let planned = limit - (limit / 10).max(1).min(limit - 1);
            let most = most_in_a_window(interval, tolerance, per_ms);
            assert!(most <= u64::from(planned), "{limit}/{per_ms} ms: {most}");
        }
    }

    #[test]
    fn the_defaults_let_a_start_of_eighty_through_at_once_then_ninety_a_minute() {
        let (interval, tolerance) = cell(SERVER_LIMIT.0, SERVER_LIMIT.1, DEFAULT_BURST);
        // 90 a minute: one every 667 ms; 80 at once.
        assert_eq!((interval, tolerance), (667, 667 * 79));
        assert_eq!(tolerance / interval + 1, 80);
        // The documented worst case of a window: the burst and the rate.
        assert!(most_in_a_window(interval, tolerance, 60_000) <= 170);
        // The burst never exceeds the planned rate's minute.
        assert_eq!(cell(100, Duration::from_secs(60), 1_000).1, 667 * 89);
    }

    #[test]
    fn a_huge_per_saturates() {
        let (interval, tolerance) = cell(100, Duration::MAX, DEFAULT_BURST);
        assert!(interval > 0 && tolerance >= interval);
    }
}
