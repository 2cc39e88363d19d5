//! The Redis token store against a real redis-server: replicas share one
//! token, the lock is released by its owner only, a dead fetcher's lock
//! frees at its lease's end, and Redis going away never fails a call.

use std::time::{Duration, Instant};

use crate::support::redis_server::RedisServer;
use redis::Commands;
use sentryagent_idp::store::{FleetLimiter, RedisStore, StoreKey, StoreLock, TokenStore};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ExposeSecret, Operation};

async fn replica(fake: &FakeAgentIdp, redis: &RedisServer) -> Client {
    fake.client_builder()
        .token_store(RedisStore::connect(&redis.url()).await.unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_replicas_started_together_make_one_token_request() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    fake.set_latency(Duration::from_millis(200));
    let mut replicas = Vec::new();
    for _ in 0..20 {
        replicas.push(replica(&fake, &redis).await);
    }
    let agent = fake.bootstrap_agent_id();
    let calls = replicas.iter().map(|client| {
        let client = client.clone();
        tokio::spawn(async move { client.agents().get(agent).send().await.map(drop) })
    });
    for result in futures::future::join_all(calls).await {
        result.unwrap().unwrap();
    }
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
    // A replica started later takes the token too.
    replica(&fake, &redis).await.access_token().await.unwrap();
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}

#[tokio::test]
async fn the_entry_lives_as_long_as_the_token_and_holds_no_token() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::builder()
        .token_lifetime(Duration::from_secs(600))
        .start()
        .await
        .unwrap();
    let token = replica(&fake, &redis).await.access_token().await.unwrap();
    let mut connection = redis.connection();
    let keys: Vec<String> = connection.keys("sentryagent:token:*").unwrap();
    let entries: Vec<&String> = keys.iter().filter(|k| !k.ends_with(":lock")).collect();
    assert_eq!(entries.len(), 1, "{keys:?}");
    // The lock was released after the fetch.
    assert_eq!(keys.len(), 1, "{keys:?}");
    let ttl: i64 = connection.pttl(entries[0]).unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "{ttl}");
    let bytes: Vec<u8> = connection.get(entries[0]).unwrap();
    for part in token.expose_secret().split('.') {
        assert!(!bytes.windows(part.len()).any(|w| w == part.as_bytes()));
    }
}

fn key() -> StoreKey {
    StoreKey::derive(
        "http://127.0.0.1:9/api/v1",
        "agent",
        &sentryagent_idp::ScopeSet::documented(),
        &sentryagent_idp::SecretString::from("sk_live_test"),
    )
}

#[tokio::test]
async fn only_the_owner_releases_the_lock_and_a_lease_ends_by_itself() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let key = key();
    // Real time (Redis ends the lease on its own clock): a lease of seconds,
    // so a busy machine makes the checks below within it.
    let lease = Duration::from_secs(3);
    let taken = Instant::now();
    let lock = store
        .try_lock(&key, lease)
        .await
        .unwrap()
        .expect("a free lock is taken");
    assert!(
        store
            .try_lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    // Another owner's release does nothing.
    store
        .unlock(&key, StoreLock::new("someone else"))
        .await
        .unwrap();
    assert!(
        store
            .try_lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    // The lease ends by itself, not before its time: another process may
    // take over (polled, bounded at 30 s).
    let second = loop {
        if let Some(lock) = store.try_lock(&key, Duration::from_secs(5)).await.unwrap() {
            break Some(lock);
        }
        assert!(
            taken.elapsed() < Duration::from_secs(30),
            "the lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(taken.elapsed() >= lease, "{:?}", taken.elapsed());
    // The first owner, late, cannot release the second's lock.
    store.unlock(&key, lock).await.unwrap();
    assert!(
        store
            .try_lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    store.unlock(&key, second.unwrap()).await.unwrap();
    assert!(
        store
            .try_lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_fetcher_dies_holding_the_lock_another_takes_over() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    replica(&fake, &redis).await.access_token().await.unwrap();
    let mut connection = redis.connection();
    let entry = connection
        .keys::<_, Vec<String>>("sentryagent:token:*")
        .unwrap()
        .remove(0);
    // A fetcher took the lock and died: no entry, and a lock whose lease
    // (1 s) nobody will release.
    let _: () = connection.del(&entry).unwrap();
    // Timed from before the lock is set: the lease cannot end sooner.
    let started = Instant::now();
    let _: () = redis::cmd("SET")
        .arg(format!("{entry}:lock"))
        .arg("dead-owner")
        .arg("PX")
        .arg(1_000)
        .query(&mut connection)
        .unwrap();
    let other = replica(&fake, &redis).await;
    other.access_token().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_000),
        "waited for the lease: {took:?}"
    );
    // Not the store wait: that would end in a fallback (checked below).
    assert!(took < sentryagent_idp::store::STORE_WAIT, "{took:?}");
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
    assert_eq!(other.token_store_fallbacks(), Some(0), "the store served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_never_fails_a_call() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = replica(&fake, &redis).await;
    redis.stop();
    client
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .unwrap();
    assert_eq!(client.token_store_fallbacks(), Some(1));
}

/// `clients` clients, each with its own connection to Redis (as separate
/// processes would), each making `calls` calls at once without retries, so
/// that a 429 shows; returns the 429s. Calls the limiter held back (their
/// slot lay beyond a window) were not sent: they are no 429s.
async fn burst_of_429s(
    fake: &FakeAgentIdp,
    redis: &RedisServer,
    limited: bool,
    clients: usize,
    calls: usize,
) -> usize {
    let mut all = Vec::new();
    for _ in 0..clients {
        let store = RedisStore::connect(&redis.url()).await.unwrap();
        let mut builder = fake
            .client_builder()
            .retry_policy(sentryagent_idp::RetryPolicy::disabled());
        if limited {
            builder = builder.fleet_rate_limit(
                store
                    .rate_limiter()
                    .limit(30, Duration::from_secs(3))
                    .burst(1),
            );
        }
        all.push(builder.token_store(store).build().unwrap());
    }
    let agent = fake.bootstrap_agent_id();
    let calls = all.iter().flat_map(|client| {
        (0..calls).map(move |_| {
            let client = client.clone();
            tokio::spawn(async move { client.agents().get(agent).send().await })
        })
    });
    let mut refused = 0;
    for result in futures::future::join_all(calls).await {
        match result.unwrap() {
            Ok(_) => {}
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 429) => refused += 1,
            Err(e) if limited && e.kind() == sentryagent_idp::ErrorKind::RateLimited => {}
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_limiter_keeps_a_fleet_under_the_server_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let limited_fake = FakeAgentIdp::builder()
        .rate_limit(30, Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    // 5 "processes" × 8 calls at once against 30 in 3 s, with the strict
    // setting (a burst of 1: no window above 90 % of the limit): the
    // limiter spreads over the window what fits, holds back the rest, and
    // the server refuses none.
    // (A window of seconds, so that the scheduling jitter of a loaded test
    // machine stays well inside the limiter's 10 % headroom.)
    assert_eq!(burst_of_429s(&limited_fake, &redis, true, 5, 8).await, 0);
    // Without it, the same fleet collects 429s.
    let unlimited_fake = FakeAgentIdp::builder()
        .rate_limit(30, Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    assert!(burst_of_429s(&unlimited_fake, &redis, false, 5, 8).await > 0);
}

/// Polls (every 50 ms, at most 20 s) until `store` takes the lock of `key`:
/// how long that took. A lock held for its lease (60 s in the tests below)
/// fails it.
async fn time_until_free(store: &RedisStore, key: &StoreKey) -> Duration {
    let started = Instant::now();
    loop {
        if let Some(lock) = store.try_lock(key, Duration::from_secs(60)).await.unwrap() {
            store.unlock(key, lock).await.unwrap();
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the lock stayed held with no live holder"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_try_lock_given_up_after_redis_took_the_lock_releases_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let other = RedisStore::connect(&redis.url()).await.unwrap();
    let key = key();
    // Redis holds every write for 1 s: the SET NX goes out, its caller
    // gives up before the answer, and Redis takes the lock after.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1_000)
        .arg("WRITE")
        .query(&mut redis.connection())
        .unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        store.try_lock(&key, Duration::from_secs(60)),
    )
    .await;
    assert!(gave_up.is_err(), "the paused SET answered");
    // Another process gets the lock once the pause ends, not after the
    // 60 s lease (bounded at 20 s by the poll).
    time_until_free(&other, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_dropped_unreleased_is_released_at_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let other = RedisStore::connect(&redis.url()).await.unwrap();
    let key = key();
    let lock = store
        .try_lock(&key, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a free lock is taken");
    // Its holder went away (a fetch dropped by its caller's timeout).
    drop(lock);
    time_until_free(&other, &key).await;
}

/// A client of `fake` with its own Redis connection (as a process would),
/// a shared token, `limiter` made from the store's, no retries (a 429
/// shows) and a total timeout of `deadline`.
async fn limited_client(
    fake: &FakeAgentIdp,
    redis: &RedisServer,
    limiter: impl FnOnce(FleetLimiter) -> FleetLimiter,
    deadline: Duration,
) -> Client {
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    fake.client_builder()
        .retry_policy(sentryagent_idp::RetryPolicy::disabled())
        .total_timeout(deadline)
        .fleet_rate_limit(limiter(store.rate_limiter()))
        .token_store(store)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_slot_lies_beyond_its_deadline_fails_at_once_unsent() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    // 9 a minute (one slot every 6.7 s), no burst; calls allowed 10 s.
    let deadline = Duration::from_secs(10);
    let client = limited_client(
        &fake,
        &redis,
        |l| l.limit(10, Duration::from_secs(60)).burst(1),
        deadline,
    )
    .await;
    // The token takes the first slot.
    client.access_token().await.unwrap();
    let agent = fake.bootstrap_agent_id();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = client.clone();
        calls.spawn(async move {
            let started = Instant::now();
            (
                client.agents().get(agent).send().await.map(drop),
                started.elapsed(),
            )
        });
    }
    // One call holds the next slot (6.7 s away) and waits for it; each of
    // the nine others, whose slot lies past its deadline, fails at once:
    // told when to come back, nothing sent. (Seconds of margin for a busy
    // machine; waiting the slots out would take 6.7 s and more.)
    for _ in 0..9 {
        let (result, took) = calls.join_next().await.unwrap().unwrap();
        let error = result.expect_err("a call past the deadline's slots");
        assert_eq!(
            error.kind(),
            sentryagent_idp::ErrorKind::RateLimited,
            "{error}"
        );
        assert!(took < Duration::from_secs(3), "failed after {took:?}");
        let retry_after = error.retry_after().expect("a retry_after");
        assert!(retry_after > deadline - took, "{retry_after:?}");
    }
    assert_eq!(fake.requests_seen(Operation::GetAgent), 0);
    calls.abort_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_of_fifty_replicas_within_the_servers_budget_goes_through_at_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // The server's limit, and the limiter's defaults.
    let fake = FakeAgentIdp::builder()
        .rate_limit(100, Duration::from_secs(60))
        .start()
        .await
        .unwrap();
    // 20 s per call: a burst of 10, then one per 750 ms (the old defaults)
    // needs 30 s for the 51 requests of this start.
    let mut replicas = Vec::new();
    for _ in 0..50 {
        replicas.push(limited_client(&fake, &redis, |l| l, Duration::from_secs(20)).await);
    }
    let agent = fake.bootstrap_agent_id();
    let calls = replicas.iter().map(|client| {
        let client = client.clone();
        tokio::spawn(async move { client.agents().get(agent).send().await.map(drop) })
    });
    let failed: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(fake.requests_seen(Operation::GetAgent), 50);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Redis's clock, in Unix ms.
fn redis_now_ms(connection: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(connection).unwrap();
    s * 1_000 + us / 1_000
}

// On one thread: the capturing subscriber is this thread's.
#[tokio::test]
async fn a_rate_state_an_hour_ahead_is_clamped_with_a_warning_and_the_fleet_goes_on() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let logs = Captured::default();
    let writer = logs.clone();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::WARN)
            .finish(),
    );
    let fake = FakeAgentIdp::start().await.unwrap();
    // A theoretical arrival time an hour ahead, as a Redis whose clock
    // stepped back (or a replica behind, after a failover) leaves.
    let mut connection = redis.connection();
    let key = format!("sentryagent:token:{}:rate", fake.client_id());
    let planted = redis_now_ms(&mut connection) + 3_600_000;
    let _: () = connection.set_ex(&key, planted, 3_600).unwrap();
    let client = limited_client(&fake, &redis, |l| l, Duration::from_secs(30)).await;
    let started = Instant::now();
    client
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .expect("the fleet is not shut out");
    // At most about one interval (667 ms) each for the token and the call;
    // seconds of margin.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let tat: u64 = connection.get(&key).unwrap();
    let now = redis_now_ms(&mut connection);
    // Now + the burst (80) + a few intervals, not an hour.
    assert!(tat < now + 90 * 667, "{} ms ahead", tat.saturating_sub(now));
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("WARN") && logs.contains("reset to now"),
        "{logs}"
    );
}

#[tokio::test]
async fn revoking_the_own_token_removes_the_redis_entry() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    let first = replica(&fake, &redis).await;
    let revoked = first.access_token().await.unwrap();
    first.tokens().revoke(&revoked).send().await.unwrap();
    let keys: Vec<String> = redis.connection().keys("sentryagent:token:*").unwrap();
    assert!(
        keys.is_empty(),
        "the revoked entry is still there: {keys:?}"
    );
    let other = replica(&fake, &redis).await.access_token().await.unwrap();
    assert!(
        other.expose_secret() != revoked.expose_secret(),
        "another replica got the revoked token"
    );
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn redis_remove_deletes_only_the_entry_it_was_given() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    super::file::remove_deletes_only_the_entry_it_was_given(store).await;
}

/// Bytes Redis has sent to its clients so far.
fn sent_by(redis: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut redis.connection())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_huge_value_is_refused_without_crossing_the_network() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let huge = 8 * 1024 * 1024;
    let _: () = redis
        .connection()
        .set(format!("sentryagent:token:{}", key()), vec![b'x'; huge])
        .unwrap();
    let before = sent_by(&redis);
    let loaded = store.load(&key()).await;
    let sent = sent_by(&redis) - before;
    assert!(
        sent < 1024 * 1024,
        "{sent} bytes of the value crossed the network"
    );
    assert!(loaded.is_err(), "a value over the bound is refused");
}

/// Review: a lease (user-set) or a TTL (from the server's `expires_in`)
/// beyond what Redis's `PX` accepts must still lock and save, not fail
/// every try_lock (each replica then fetching alone) or every save.
#[tokio::test]
async fn a_huge_lease_or_ttl_still_locks_and_saves() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&redis.url())
        .await
        .unwrap()
        .lock_lease(Duration::MAX);
    let key = key();
    let lock = store
        .try_lock(&key, Duration::from_secs(5))
        .await
        .expect("a lease of Duration::MAX is saturated, not refused")
        .expect("a free lock is taken");
    assert!(
        store
            .try_lock(&key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    store.unlock(&key, lock).await.unwrap();
    store
        .save(&key, b"entry", Duration::from_secs(10_000_000_000_000_000))
        .await
        .expect("a huge TTL is saturated, not refused");
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"entry"[..])
    );
}

/// Review: replicas of one client id with different limiter settings (a
/// rolling change from the default burst to `.burst(1)`) share one state.
/// A state the default replicas legitimately made (100 s ahead: their burst
/// of 80 and a minute's reservations) is not "further ahead than it can
/// be" for the others: resetting it would let another burst through.
#[tokio::test]
async fn a_state_other_replicas_made_with_a_larger_burst_is_not_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    let mut connection = redis.connection();
    let key = format!("sentryagent:token:{}:rate", fake.client_id());
    let planted = redis_now_ms(&mut connection) + 100_000;
    let _: () = connection.set_ex(&key, planted, 3_600).unwrap();
    let strict = limited_client(&fake, &redis, |l| l.burst(1), Duration::from_secs(10)).await;
    held_back(&strict, &fake, "no slot within 10 s").await;
    assert_eq!(fake.requests_seen(Operation::IssueToken), 0);
    let tat: u64 = connection.get(&key).unwrap();
    assert!(
        tat >= planted,
        "reset to {} ms before the fleet's state",
        planted - tat
    );
}

/// A `GET` of the fake's agent that the limiter holds back (`RateLimited`).
async fn held_back(client: &Client, fake: &FakeAgentIdp, why: &str) {
    let error = client
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .expect_err(why);
    assert_eq!(
        error.kind(),
        sentryagent_idp::ErrorKind::RateLimited,
        "{error}"
    );
}

/// Review: a huge `per` (a limit "per forever") still limits: the script's
/// numbers stay ones Redis takes, rather than failing it and letting
/// every call through.
#[tokio::test]
async fn a_huge_per_still_limits() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fake = FakeAgentIdp::start().await.unwrap();
    let client = limited_client(
        &fake,
        &redis,
        |l| l.limit(1, Duration::MAX).burst(1),
        Duration::from_secs(10),
    )
    .await;
    // The token takes the one slot; the call finds none.
    held_back(
        &client,
        &fake,
        "one request per forever: the call finds no slot",
    )
    .await;
    assert_eq!(fake.requests_seen(Operation::GetAgent), 0);
}

/// Review: `connect` promises an answer within 10 s, even from a Redis
/// that accepts the connection and never answers (redis-rs retries the
/// first connection by itself). Paused clock: no real wait.
#[tokio::test(start_paused = true)]
async fn connect_to_a_silent_redis_fails_within_ten_seconds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = tokio::time::Instant::now();
    let connected = tokio::time::timeout(Duration::from_secs(600), RedisStore::connect(&url)).await;
    let took = started.elapsed();
    silent.abort();
    assert!(
        matches!(connected, Ok(Err(_))),
        "{:?}",
        connected.map(|r| r.map(drop))
    );
    assert!(took <= Duration::from_secs(11), "connect took {took:?}");
}
