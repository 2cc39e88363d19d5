//! The file token store: processes share one token; the entry is sealed,
//! private and atomic; a bad entry or a failing store never fails a call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::store::{child_client, file_store_client, spawn_child, wait_ok};
use sentryagent_idp::store::{FileStore, StoreError, StoreKey, StoreLock, TokenStore};
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{ExposeSecret, Operation};

/// Run as a child process by the tests below: one call, then exit.
#[tokio::test]
#[ignore = "a child process of the multi-process tests"]
async fn child_one_call() {
    let Some(client) = child_client() else {
        return;
    };
    // The bootstrap agent's id is its client id.
    let agent: uuid::Uuid = std::env::var("AGENTIDP_CLIENT_ID")
        .unwrap()
        .parse()
        .unwrap();
    client.agents().get(agent).send().await.unwrap();
}

fn token_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "token"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_consecutive_processes_make_one_token_request() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..10 {
        let child = spawn_child(&fake, dir.path(), "store::file::child_one_call");
        tokio::task::spawn_blocking(move || wait_ok(child))
            .await
            .unwrap();
    }
    assert_eq!(fake.requests_seen(Operation::GetAgent), 10);
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_started_together_share_one_fetch() {
    let fake = FakeAgentIdp::start().await.unwrap();
    // A slow server: every process arrives while the first still fetches.
    fake.set_latency(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| spawn_child(&fake, dir.path(), "store::file::child_one_call"))
        .collect();
    tokio::task::spawn_blocking(move || children.into_iter().for_each(wait_ok))
        .await
        .unwrap();
    assert_eq!(fake.requests_seen(Operation::GetAgent), 6);
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1);
}

#[tokio::test]
async fn the_entry_is_private_sealed_and_written_whole() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("tokens");
    let client = file_store_client(&fake, &store_dir);
    let token = client.access_token().await.unwrap();
    let files = token_files(&store_dir);
    assert_eq!(files.len(), 1, "one entry: {files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let token = token.expose_secret();
    // Neither the token nor any part of it that matters, nor the secret.
    for part in token.split('.') {
        assert!(
            !contains(&bytes, part.as_bytes()),
            "a token part is in the file"
        );
    }
    let secret = fake.client_secret();
    assert!(!contains(&bytes, secret.expose_secret().as_bytes()));
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(&store_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".token") || n.ends_with(".lock")),
        "{names:?}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600);
        assert_eq!(mode(&store_dir), 0o700);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() >= 8 && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_tampered_entry_is_ignored_and_replaced() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    file_store_client(&fake, dir.path())
        .access_token()
        .await
        .unwrap();
    let file = token_files(dir.path()).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();

    // A new process: the entry does not open, so it fetches and replaces it.
    file_store_client(&fake, dir.path())
        .access_token()
        .await
        .unwrap();
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
    assert_ne!(std::fs::read(&file).unwrap(), bytes);
    // The replacement is good: the next process takes it.
    file_store_client(&fake, dir.path())
        .access_token()
        .await
        .unwrap();
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn another_secret_never_reuses_the_token() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = file_store_client(&fake, dir.path())
        .access_token()
        .await
        .unwrap();
    let (_, second_secret) = fake.seed_credential(fake.bootstrap_agent_id());
    let rotated = crate::support::store::with_file_store(
        fake.client_builder().client_secret(second_secret),
        dir.path(),
    );
    let second = rotated.access_token().await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
    assert_eq!(token_files(dir.path()).len(), 2);
}

#[tokio::test]
async fn a_token_the_server_refused_is_not_taken_from_the_store_again() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = file_store_client(&fake, dir.path());
    let token = first.access_token().await.unwrap();
    first.tokens().revoke(&token).send().await.unwrap();
    // A new process takes the stored token, is refused, and fetches anew
    // instead of taking the same token from the store again.
    let second = file_store_client(&fake, dir.path());
    second
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .unwrap();
    let now = second.access_token().await.unwrap();
    assert_ne!(now.expose_secret(), token.expose_secret());
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
}

/// A store whose every operation fails, counting them.
#[derive(Clone, Default)]
struct Broken(Arc<AtomicUsize>);

impl TokenStore for Broken {
    async fn load(&self, _: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::new("disk on fire"))
    }
    async fn save(&self, _: &StoreKey, _: &[u8], _: Duration) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::new("disk on fire"))
    }
    async fn remove(&self, _: &StoreKey, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::new("disk on fire"))
    }
    async fn try_lock(&self, _: &StoreKey, _: Duration) -> Result<Option<StoreLock>, StoreError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::new("disk on fire"))
    }
    async fn unlock(&self, _: &StoreKey, _: StoreLock) -> Result<(), StoreError> {
        Err(StoreError::new("disk on fire"))
    }
}

/// A store that never answers.
struct Hung;

impl TokenStore for Hung {
    async fn load(&self, _: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        std::future::pending().await
    }
    async fn save(&self, _: &StoreKey, _: &[u8], _: Duration) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn remove(&self, _: &StoreKey, _: &[u8]) -> Result<(), StoreError> {
        std::future::pending().await
    }
    async fn try_lock(&self, _: &StoreKey, _: Duration) -> Result<Option<StoreLock>, StoreError> {
        std::future::pending().await
    }
    async fn unlock(&self, _: &StoreKey, _: StoreLock) -> Result<(), StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_failing_or_hung_store_never_fails_a_call() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let broken = Broken::default();
    let client = fake
        .client_builder()
        .token_store(broken.clone())
        .build()
        .unwrap();
    let agent = fake.bootstrap_agent_id();
    client.agents().get(agent).send().await.unwrap();
    assert!(broken.0.load(Ordering::Relaxed) >= 1, "the store was asked");
    assert_eq!(client.token_store_fallbacks(), Some(1));

    let client = fake.client_builder().token_store(Hung).build().unwrap();
    let started = std::time::Instant::now();
    client.agents().get(agent).send().await.unwrap();
    assert_eq!(client.token_store_fallbacks(), Some(1));
    // Bounded by the store timeout, not by the store (which never answers);
    // generous, as a busy machine adds seconds.
    assert!(started.elapsed() < sentryagent_idp::store::STORE_TIMEOUT * 10);
}

#[tokio::test]
async fn a_store_needs_client_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let error = sentryagent_idp::Client::builder()
        .base_url("http://127.0.0.1:9")
        .token_source(sentryagent_idp::auth::StaticToken::new("t"))
        .token_store(FileStore::in_dir(dir.path()).unwrap())
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), sentryagent_idp::ErrorKind::Config);
}

/// The store key of `client`'s entry (the fake's bootstrap credentials).
fn key_of(fake: &FakeAgentIdp, client: &sentryagent_idp::Client) -> StoreKey {
    StoreKey::derive(
        client.api_url(),
        &fake.client_id(),
        client.requested_scopes().unwrap(),
        &fake.client_secret(),
    )
}

#[tokio::test]
async fn revoking_the_own_token_removes_it_from_memory_and_the_store() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = file_store_client(&fake, dir.path());
    let revoked = first.access_token().await.unwrap();
    first.tokens().revoke(&revoked).send().await.unwrap();
    // Another process on the same store fetches a new token.
    let second = file_store_client(&fake, dir.path());
    let theirs = second.access_token().await.unwrap();
    assert!(
        theirs.expose_secret() != revoked.expose_secret(),
        "another process got the revoked token from the store"
    );
    // This process too, not the revoked one from its memory.
    let ours = first.access_token().await.unwrap();
    assert!(
        ours.expose_secret() != revoked.expose_secret(),
        "this process kept the revoked token in memory"
    );
    // One new token, shared through the store.
    assert!(ours.expose_secret() == theirs.expose_secret());
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2);
    first
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .unwrap();
}

pub(super) async fn remove_deletes_only_the_entry_it_was_given(store: impl TokenStore) {
    let key = StoreKey::derive(
        "http://127.0.0.1:9/api/v1",
        "agent",
        &sentryagent_idp::ScopeSet::documented(),
        &sentryagent_idp::SecretString::from("sk_live_test"),
    );
    let ttl = Duration::from_secs(60);
    store.save(&key, b"newer entry", ttl).await.unwrap();
    // Another entry than the one there: the newer one stays.
    store.remove(&key, b"older entry").await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"newer entry"[..])
    );
    store.remove(&key, b"newer entry").await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    // Nothing there: not an error.
    store.remove(&key, b"newer entry").await.unwrap();
}

#[tokio::test]
async fn file_remove_deletes_only_the_entry_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    remove_deletes_only_the_entry_it_was_given(FileStore::in_dir(dir.path()).unwrap()).await;
    // No entry or temporary file is left over; only the removers' turn
    // file, which stays as the fetch lock's does (unlinking a lock file
    // races its next taker).
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.iter().all(|name| name.ends_with(".remove")),
        "{left:?}"
    );
}

/// A child of `a_fifo_at_the_entry_falls_back_and_the_runtime_shuts_down`'s
/// kind: runs `work` on a runtime of its own and reports whether dropping
/// that runtime finished within `limit`.
async fn runtime_shuts_down_within(
    limit: Duration,
    work: impl FnOnce(&tokio::runtime::Runtime) + Send + 'static,
) -> bool {
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        work(&runtime);
        drop(runtime);
        let _ = done.send(());
    });
    tokio::time::timeout(limit, finished).await.is_ok()
}

/// Plants what `plant` makes at the entry's path, then makes one call on a
/// runtime of its own: the call must succeed by itself (one fallback) and
/// the runtime must then shut down.
#[cfg(unix)]
async fn an_entry_path_holding(plant: impl FnOnce(&std::path::Path)) {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let probe = file_store_client(&fake, dir.path());
    let entry = dir.path().join(format!("{}.token", key_of(&fake, &probe)));
    plant(&entry);
    let builder = fake.client_builder();
    let store_dir = dir.path().to_owned();
    let agent = fake.bootstrap_agent_id();
    let (fallbacks_tx, fallbacks) = std::sync::mpsc::channel();
    // Seconds, not a short window: the property is "it ends", not "fast".
    let shut_down = runtime_shuts_down_within(Duration::from_secs(30), move |runtime| {
        let client = crate::support::store::with_file_store(builder, &store_dir);
        runtime.block_on(client.agents().get(agent).send()).unwrap();
        fallbacks_tx.send(client.token_store_fallbacks()).unwrap();
    })
    .await;
    // Unblocks a reader stuck on a FIFO (the unfixed store), if any.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(&entry);
    assert!(
        shut_down,
        "the runtime did not shut down: a read of the entry hangs it"
    );
    assert_eq!(fallbacks.recv().unwrap(), Some(1));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_at_the_entry_falls_back_and_the_runtime_shuts_down() {
    an_entry_path_holding(|entry| {
        let made = std::process::Command::new("mkfifo")
            .arg(entry)
            .status()
            .unwrap();
        assert!(made.success());
    })
    .await;
}

/// `O_NONBLOCK` for the test's own open of the FIFO.
#[cfg(unix)]
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

#[cfg(unix)]
impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// The unfixed store read `/dev/zero` until memory ran out.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_is_a_symlink_to_dev_zero_is_refused() {
    let before = peak_memory_kib();
    an_entry_path_holding(|entry| std::os::unix::fs::symlink("/dev/zero", entry).unwrap()).await;
    if let (Some(before), Some(after)) = (before, peak_memory_kib()) {
        let grown = after.saturating_sub(before) / 1024;
        assert!(grown < 256, "the process's peak memory grew by {grown} MiB");
    }
}

/// This process's peak resident memory (Linux's `VmHWM`), if known.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn an_entry_larger_than_the_bound_is_not_used() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = file_store_client(&fake, dir.path());
    let entry = dir.path().join(format!("{}.token", key_of(&fake, &client)));
    std::fs::write(
        &entry,
        vec![b'x'; sentryagent_idp::store::MAX_ENTRY_LEN + 1],
    )
    .unwrap();
    client.access_token().await.unwrap();
    assert_eq!(client.token_store_fallbacks(), Some(1));
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_the_lock_path_creates_nothing_elsewhere() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("planted");
    let client = file_store_client(&fake, dir.path());
    let lock = dir.path().join(format!("{}.lock", key_of(&fake, &client)));
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    client
        .agents()
        .get(fake.bootstrap_agent_id())
        .send()
        .await
        .unwrap();
    assert!(
        !target.exists(),
        "the store created a file through the planted symlink"
    );
    assert_eq!(client.token_store_fallbacks(), Some(1));
}

#[cfg(unix)]
#[test]
fn a_store_directory_others_can_write_is_refused_naming_the_chmod() {
    use sentryagent_idp::store::StoreErrorKind;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (mode, who) in [(0o770, "its group"), (0o777, "anyone"), (0o1777, "anyone")] {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let error = FileStore::in_dir(dir.path()).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::UnsafeDirectory, "{mode:o}");
        let message = error.to_string();
        assert!(message.contains(who), "{message}");
        assert!(
            message.contains(&format!("chmod 700 '{}'", dir.path().display())),
            "{message}"
        );
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    FileStore::in_dir(dir.path()).unwrap();
    // Another user's directory (only root can make one to try).
    if std::os::unix::fs::chown(dir.path(), Some(65_534), None).is_ok() {
        let error = FileStore::in_dir(dir.path()).unwrap_err();
        assert_eq!(error.kind(), StoreErrorKind::UnsafeDirectory);
        assert!(error.to_string().contains("chown"), "{error}");
    }
}
