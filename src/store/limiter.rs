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
/// the hosts' clocks do not matter): the key holds the theoretical arrival
/// time (ms); a request is admitted when it is within the burst tolerance
/// of it, and otherwise told how long to wait.
const GCRA: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call("GET", KEYS[1]))
if not tat or tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local next_tat = tat + interval
redis.call("SET", KEYS[1], next_tat, "PX", math.max(1, next_tat - now))
return 0
"#;

/// AgentIdP's limit per client: 100 requests a minute.
pub const SERVER_LIMIT: (u32, Duration) = (100, Duration::from_secs(60));

/// The requests let through at once before the steady rate applies.
pub const DEFAULT_BURST: u32 = 10;

/// A fleet-wide rate limit for one client id, shared through Redis by every
/// process that uses it; from [`RedisStore::rate_limiter`](super::RedisStore::rate_limiter),
/// given to [`ClientBuilder::fleet_rate_limit`](crate::ClientBuilder::fleet_rate_limit).
///
/// Every request of the client (token requests included) first asks for a
/// slot: a burst of [`DEFAULT_BURST`], then a steady rate, so that no
/// window of `per` holds more than 90 % of `limit` requests (the rest is
/// headroom for the time between admission and arrival). A call
/// waits for its slot within its total timeout; one that cannot get it in
/// time fails at once with [`ErrorKind::RateLimited`] (and
/// [`Error::retry_after`]) without reaching the server. If Redis cannot
/// answer, the request goes ahead: the limiter can only help.
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

    /// At most `limit` requests in any `per` (default: the server's, 100 a
    /// minute). Set it to your server's limit if it differs.
    #[must_use]
    pub fn limit(mut self, limit: u32, per: Duration) -> Self {
        self.limit = limit.max(1);
        self.per = per;
        self
    }

    /// How many requests may go at once (default [`DEFAULT_BURST`]; at most
    /// `limit - 1`).
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Waits for a slot for `client_id`, until `deadline` at the latest.
    pub(crate) async fn admit(&self, client_id: &str, deadline: Option<Instant>) -> Result<()> {
        let (interval, tolerance) = cell(self.limit, self.per, self.burst);
        let key = format!("{}{client_id}:rate", self.key_prefix);
        // Each round either admits, fails, or sleeps until the slot it was
        // told of: bounded by the deadline, and by a count besides.
        for _ in 0..10_000 {
            let answer = tokio::time::timeout(
                super::STORE_TIMEOUT,
                self.script
                    .key(&key)
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async::<u64>(&mut self.connection.clone()),
            )
            .await;
            let wait = match answer {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(ms)) => Duration::from_millis(ms),
                Ok(Err(e)) => return fail_open(&e),
                Err(_) => return fail_open(&"no answer in time"),
            };
            if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "the fleet's rate limit ({} requests per {:?}) leaves no slot before this call's deadline; nothing was sent",
                        self.limit, self.per
                    ),
                )
                .with_retry_after(wait));
            }
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

/// (interval between requests, burst tolerance), in ms, so that no window
/// of `per` admits more than 90 % of `limit` (at least one less): a burst,
/// then one per interval. The headroom absorbs the jitter between a
/// request's admission here and its arrival at the server.
fn cell(limit: u32, per: Duration, burst: u32) -> (u64, u64) {
    let limit = limit.saturating_sub((limit / 10).max(1)).max(1);
    let burst = burst.min(limit.saturating_sub(1)).max(1);
    let steady = u64::from(limit.saturating_sub(burst)).max(1);
    let per_ms = u64::try_from(per.as_millis()).unwrap_or(u64::MAX);
    let interval = per_ms.div_ceil(steady).max(1);
    (interval, interval.saturating_mul(u64::from(burst - 1)))
}

/// Lets the request go when the limiter cannot answer: it can only help.
fn fail_open(why: &dyn fmt::Display) -> Result<()> {
    tracing::warn!(reason = %why, "the fleet rate limiter cannot answer; sending without it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_admits_more_than_the_limit() {
        for (limit, per_ms, burst) in [
            (100, 60_000, 10),
            (100, 60_000, 1),
            (20, 1_000, 5),
            (2, 1_000, 10),
            (1, 1_000, 1),
        ] {
            let (interval, tolerance) = cell(limit, Duration::from_millis(per_ms), burst);
            // Admitted at once: the tolerance's worth plus one; then one per
            // interval for the rest of the window.
            let most = tolerance / interval + 1 + (per_ms - 1) / interval;
            // At most 90 % of the limit, and one less than it when it is small.
            let planned = limit - (limit / 10).max(1).min(limit - 1);
            assert!(
                most <= u64::from(planned),
                "{limit}/{per_ms} ms, burst {burst}: {most}"
            );
        }
        // 100 a minute: 90 planned, a burst of 10, then one every 750 ms.
        assert_eq!(cell(100, Duration::from_secs(60), 10), (750, 6750));
    }
}
