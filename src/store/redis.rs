//! [`RedisStore`]: the entries and the fetch lock in Redis, for fleets.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::limiter::FleetLimiter;
use super::lock::process_nonce;
use super::{MAX_ENTRY_LEN, STORE_TIMEOUT, StoreError, StoreKey, StoreLock, TokenStore};

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`: a holder whose lease
/// ran out must not release the lock another process took since, and an
/// entry is removed only if no newer one replaced it.
const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
"#;

/// How long [`RedisStore::connect`] may take to connect: 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default prefix of every key this store writes.
pub const DEFAULT_KEY_PREFIX: &str = "sentryagent:token:";

/// Token entries in Redis, for fleets: every replica of an identity, on any
/// host, shares one token. Redis is what the AgentIdP server itself runs
/// on, so operators already have it.
///
/// - An entry is a string key with the token's remaining life as its TTL.
/// - The fetch lock is `SET <key>:lock <random owner> NX PX <lease>`,
///   released by a Lua script only while it still holds the owner's value;
///   a fetcher that dies frees it when the lease ends. A lock whose taker
///   gave up (its `try_lock` timed out or was dropped after Redis may have
///   taken it) or was dropped unreleased is released at once, on a task.
/// - No timed operation does CPU work of note: the owner id is made
///   cheaply from this process's random part, drawn when the store is
///   built.
/// - An entry is read with `GETRANGE` up to [`MAX_ENTRY_LEN`] bytes: a huge
///   value someone wrote there is refused without crossing the network.
/// - A revoked or refused entry is removed by a Lua script only while it
///   still holds the same bytes (compare and delete).
/// - The connection is redis-rs's tokio `ConnectionManager`, which
///   reconnects by itself; while Redis is down, each client fetches alone.
/// - The entries are sealed with the client secret: reading Redis gives no
///   usable token to whoever lacks it.
///
/// ```no_run
/// use sentryagent_idp::Client;
/// use sentryagent_idp::store::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let client = Client::builder()
///     .base_url("https://idp.example.com")
///     .client_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
///     .client_secret(std::env::var("AGENTIDP_CLIENT_SECRET")?)
///     .token_store(store)
///     .build()?;
/// # let _ = client; Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    lease: Option<Duration>,
    release: redis::Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not kept, so it cannot show.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[:password@]host:port/db`,
    /// or `rediss://` for TLS), within 10 s. The error never quotes the URL.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("bad Redis URL ({:?})", e.kind())))?;
        Self::with_client(client).await
    }

    /// The store on a `redis::Client` you configured, connected within 10 s.
    pub async fn with_client(client: redis::Client) -> Result<RedisStore, StoreError> {
        // The client bounds every store operation (STORE_TIMEOUT); redis-rs's
        // own 500 ms response timeout would fail a busy fleet's lookups
        // before that.
        // Connecting (outside any store operation) gets longer than one: a
        // fleet's start loads the machine, and a connection refused here
        // costs the process its store for good.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        // Connected here, before any timed operation: a lookup bounded by
        // STORE_TIMEOUT pays for one round trip, not the connection's setup.
        // The whole connect bounded, not only each attempt: redis-rs
        // retries the first connection by itself (about 80 s against a
        // Redis that accepts and never answers).
        let connection = tokio::time::timeout(
            CONNECT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| StoreError::new(format!("Redis did not answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(redis_error)?;
        // The random part of the lock owners, drawn now rather than inside
        // the first (timed) try_lock.
        process_nonce();
        Ok(RedisStore {
            connection,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            lease: None,
            release: redis::Script::new(RELEASE),
        })
    }

    /// Writes keys under `prefix` instead of [`DEFAULT_KEY_PREFIX`].
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a fetch lock lasts when its holder dies before releasing
    /// it (default [`LOCK_LEASE`](super::LOCK_LEASE)): the longest the
    /// other replicas wait before one of them fetches instead. Keep it above
    /// the time a token request takes.
    #[must_use]
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// A fleet-wide rate limiter for the client id, on this store's
    /// connection, for [`ClientBuilder::fleet_rate_limit`](crate::ClientBuilder::fleet_rate_limit).
    /// Off unless given to a client.
    pub fn rate_limiter(&self) -> FleetLimiter {
        FleetLimiter::new(self.connection.clone(), self.prefix.clone())
    }

    fn entry_key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.prefix)
    }

    fn lock_key(&self, key: &StoreKey) -> String {
        format!("{}{key}:lock", self.prefix)
    }
}

impl TokenStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        // One byte past the limit tells a value at the limit from a larger
        // one; a missing key reads as empty, as does an empty value: no entry.
        let bytes: Vec<u8> = redis::cmd("GETRANGE")
            .arg(self.entry_key(key))
            .arg(0)
            .arg(MAX_ENTRY_LEN)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(StoreError::new(format!(
                "the entry in Redis is larger than {MAX_ENTRY_LEN} bytes"
            )));
        }
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    async fn save(&self, key: &StoreKey, entry: &[u8], ttl: Duration) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(self.entry_key(key))
            .arg(entry)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(redis_error)
    }

    async fn remove(&self, key: &StoreKey, entry: &[u8]) -> Result<(), StoreError> {
        self.release
            .key(self.entry_key(key))
            .arg(entry)
            .invoke_async::<i64>(&mut self.connection.clone())
            .await
            .map(drop)
            .map_err(redis_error)
    }

    async fn try_lock(
        &self,
        key: &StoreKey,
        lease: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        let owner = StoreLock::random_owner();
        // Armed before the SET is sent: if this future is dropped (the
        // caller's timeout) after Redis took the lock, or the answer is
        // lost, the lock is released rather than held for its lease.
        let mut release = Release {
            connection: self.connection.clone(),
            script: self.release.clone(),
            key: self.lock_key(key),
            owner: owner.clone(),
            armed: true,
        };
        let set: Option<String> = redis::cmd("SET")
            .arg(&release.key)
            .arg(&owner)
            .arg("NX")
            .arg("PX")
            .arg(millis(self.lease.unwrap_or(lease)))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        match set {
            // Dropping the lock unreleased (its holder dropped) releases it.
            Some(_) => Ok(Some(StoreLock::holding(owner, release))),
            None => {
                release.armed = false;
                Ok(None)
            }
        }
    }

    async fn unlock(&self, key: &StoreKey, mut lock: StoreLock) -> Result<(), StoreError> {
        self.release
            .key(self.lock_key(key))
            .arg(lock.owner())
            .invoke_async::<i64>(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        // Released: nothing left for the guard to do. (Had this failed or
        // been dropped, the guard would try once more.)
        if let Some(release) = lock
            .held_mut()
            .and_then(|held| held.downcast_mut::<Release>())
        {
            release.armed = false;
        }
        Ok(())
    }
}

/// A lock this process may hold: released (compare-and-delete on the
/// owner id) when dropped armed, on a task bounded by [`STORE_TIMEOUT`],
/// sent on the connection after the `SET` so Redis runs it after. Without a
/// runtime to run it on, the lease frees the lock.
struct Release {
    connection: ConnectionManager,
    script: redis::Script,
    key: String,
    owner: String,
    armed: bool,
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (mut connection, script) = (self.connection.clone(), self.script.clone());
        let (key, owner) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.owner),
        );
        runtime.spawn(async move {
            let mut release = script.prepare_invoke();
            release.key(key).arg(owner);
            let released =
                tokio::time::timeout(STORE_TIMEOUT, release.invoke_async::<i64>(&mut connection))
                    .await;
            if !matches!(released, Ok(Ok(_))) {
                tracing::debug!(
                    "could not release an abandoned token store lock; it frees at its lease's end"
                );
            }
        });
    }
}

/// The longest `PX` this store sends: 10 years. Redis refuses an expiry
/// past `i64::MAX` ms from its now, so a larger lease or TTL (a user's
/// `Duration::MAX`, a server's huge `expires_in`) would fail every lock or
/// save.
const MAX_PX_MS: u64 = 10 * 365 * 24 * 3_600 * 1_000;

/// At least 1 ms (Redis refuses `PX 0`), at most [`MAX_PX_MS`].
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_PX_MS)
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::new(e)
}
