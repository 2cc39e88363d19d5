//! The Redis token store against a real redis-server: replicas share one
//! token, the lock is released by its owner only, a dead fetcher's lock
//! frees at its lease's end, and Redis going away never fails a call.

use std::time::{Duration, Instant};

use crate::support::redis_server::RedisServer;
use redis::Commands;
use sentryagent_idp::store::{RedisStore, StoreKey, StoreLock, TokenStore};
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
/// that a 429 shows; returns the 429s.
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
                    .burst(5),
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
    // 5 "processes" × 8 calls at once against 30 in 3 s: the limiter
    // spreads them over about five seconds, and the server refuses none.
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
