//! Revoked and refused tokens leave the store, and entries replayed into
//! it by whoever can write it cannot make every call fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::store::file_store_client;
use sentryagent_idp::store::{StoreError, StoreKey, StoreLock, TokenStore};
use sentryagent_idp::testing::FakeAgentIdp;

/// A store written by an attacker: each load finds the next of `entries`,
/// in turn; saves are lost (overwritten at once).
#[derive(Clone)]
struct Replay(Arc<Entries>);

struct Entries {
    entries: Vec<Vec<u8>>,
    loads: AtomicUsize,
    removed: Mutex<Vec<Vec<u8>>>,
}

impl TokenStore for Replay {
    async fn load(&self, _: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let i = self.0.loads.fetch_add(1, Ordering::Relaxed);
        Ok(Some(self.0.entries[i % self.0.entries.len()].clone()))
    }
    async fn save(&self, _: &StoreKey, _: &[u8], _: Duration) -> Result<(), StoreError> {
        Ok(())
    }
    async fn remove(&self, _: &StoreKey, entry: &[u8]) -> Result<(), StoreError> {
        self.0.removed.lock().unwrap().push(entry.to_vec());
        Ok(())
    }
    async fn try_lock(&self, _: &StoreKey, _: Duration) -> Result<Option<StoreLock>, StoreError> {
        Ok(Some(StoreLock::new("attacker")))
    }
    async fn unlock(&self, _: &StoreKey, _: StoreLock) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A sealed entry of the fake's bootstrap credentials whose token was then
/// revoked (by a client without a store, so the entry stays as written).
async fn revoked_entry(fake: &FakeAgentIdp) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let token = file_store_client(fake, dir.path())
        .access_token()
        .await
        .unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "token"))
        .unwrap();
    let sealed = std::fs::read(entry).unwrap();
    fake.client_builder()
        .build()
        .unwrap()
        .tokens()
        .revoke(&token)
        .send()
        .await
        .unwrap();
    sealed
}

#[tokio::test]
async fn two_revoked_entries_replayed_in_turn_do_not_make_every_call_fail() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let entries = vec![revoked_entry(&fake).await, revoked_entry(&fake).await];
    let replay = Replay(Arc::new(Entries {
        entries: entries.clone(),
        loads: AtomicUsize::new(0),
        removed: Mutex::new(Vec::new()),
    }));
    let victim = fake
        .client_builder()
        .token_store(replay.clone())
        .build()
        .unwrap();
    let agent = fake.bootstrap_agent_id();
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(victim.agents().get(agent).send().await.is_ok());
    }
    // The first call may meet both before it knows them; none after.
    assert!(
        outcomes[1..].iter().all(|ok| *ok),
        "calls that succeeded: {outcomes:?}"
    );
    // Both refused entries were removed from the store, not just skipped.
    let removed = replay.0.removed.lock().unwrap();
    for entry in &entries {
        assert!(removed.contains(entry), "a refused entry was not removed");
    }
}
