//! `SecretSource`: a replica picks up a rotated secret by itself, from a
//! file that changes or from a source read again on `invalid_client`.

use std::sync::{Arc, Mutex};

use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
use sentryagent_idp::{Client, ErrorKind, ExposeSecret, Operation, SecretString};

/// A fake with one agent holding one credential: (fake, agent, credential, secret).
async fn fake_with_agent() -> (FakeAgentIdp, uuid::Uuid, uuid::Uuid, SecretString) {
    let fake = FakeAgentIdp::start().await.unwrap();
    let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let (credential, secret) = fake.seed_credential(agent);
    (fake, agent, credential, secret)
}

fn client_with(fake: &FakeAgentIdp, agent: uuid::Uuid, source: SecretSource) -> Client {
    Client::builder()
        .base_url(fake.base_url())
        .client_id(agent.to_string())
        .scopes([sentryagent_idp::Scope::AGENTS_READ])
        .client_secret_source(source)
        .build()
        .unwrap()
}

/// The token request of the admin client in [`revoke`].
const ADMIN: usize = 1;

/// Revokes `credential` of `agent` with the fake's bootstrap client.
async fn revoke(fake: &FakeAgentIdp, agent: uuid::Uuid, credential: uuid::Uuid) {
    let admin = fake.client_builder().build().unwrap();
    admin
        .credentials()
        .revoke(agent, credential)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_secret_file_is_read_again_before_each_token_request() {
    let (fake, agent, old, secret) = fake_with_agent().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-secret");
    std::fs::write(&path, format!("{}\n", secret.expose_secret())).unwrap();
    let client = client_with(&fake, agent, SecretSource::file(&path));
    client.agents().get(agent).send().await.unwrap();

    // Rollover by the operator: a new credential, published to the file,
    // then the old one revoked.
    let (_, new_secret) = fake.seed_credential(agent);
    std::fs::write(&path, format!("{}\n", new_secret.expose_secret())).unwrap();
    revoke(&fake, agent, old).await;
    client.clear_token_cache();
    client.agents().get(agent).send().await.unwrap();
    // The file was read before asking: no refused token request (the
    // agent's two, and the admin's one to revoke).
    assert_eq!(fake.requests_seen(Operation::IssueToken), 2 + ADMIN);
}

#[tokio::test]
async fn invalid_client_reads_the_source_again_and_retries_once() {
    let (fake, agent, old, secret) = fake_with_agent().await;
    let current = Arc::new(Mutex::new(secret));
    let reads = Arc::new(Mutex::new(0));
    let source = {
        let (current, reads) = (Arc::clone(&current), Arc::clone(&reads));
        SecretSource::from_fn(move || {
            *reads.lock().unwrap() += 1;
            Ok(current.lock().unwrap().clone())
        })
    };
    let client = client_with(&fake, agent, source);
    client.agents().get(agent).send().await.unwrap();
    assert_eq!(*reads.lock().unwrap(), 1, "read once, at build");

    let (_, new_secret) = fake.seed_credential(agent);
    *current.lock().unwrap() = new_secret;
    revoke(&fake, agent, old).await;
    client.clear_token_cache();
    client.agents().get(agent).send().await.unwrap();
    // The old secret was refused, the source read again, the request retried.
    assert_eq!(*reads.lock().unwrap(), 2);
    assert_eq!(fake.requests_seen(Operation::IssueToken), 3 + ADMIN);
}

#[tokio::test]
async fn an_unchanged_source_does_not_retry_and_the_error_stands() {
    let (fake, agent, old, secret) = fake_with_agent().await;
    let client = client_with(&fake, agent, SecretSource::fixed(secret.clone()));
    revoke(&fake, agent, old).await;
    let error = client.agents().get(agent).send().await.unwrap_err();
    assert_eq!(error.code(), Some("invalid_client"));
    assert_eq!(fake.requests_seen(Operation::IssueToken), 1 + ADMIN);
    // The secret is in no error text.
    assert!(!format!("{error} {error:?}").contains(secret.expose_secret()));
}

#[tokio::test]
async fn an_unreadable_or_empty_source_fails_the_build() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let build = |source| {
        Client::builder()
            .base_url(fake.base_url())
            .client_id("agent")
            .client_secret_source(source)
            .build()
    };
    let missing = build(SecretSource::file("/nonexistent/sentryagent/secret")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Config);
    assert!(
        missing
            .to_string()
            .contains("/nonexistent/sentryagent/secret")
    );
    let unset = build(SecretSource::env("SENTRYAGENT_TEST_UNSET_VARIABLE")).unwrap_err();
    assert!(
        unset
            .to_string()
            .contains("SENTRYAGENT_TEST_UNSET_VARIABLE")
    );
    let empty = build(SecretSource::from_fn(|| Ok(SecretString::from("")))).unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::Config);
}

#[test]
fn a_source_never_shows_its_secret() {
    let fixed = SecretSource::fixed("sk_live_do_not_print");
    assert!(!format!("{fixed:?}").contains("sk_live_do_not_print"));
    assert_eq!(
        format!("{:?}", SecretSource::env("AGENTIDP_CLIENT_SECRET")),
        "SecretSource::Env(AGENTIDP_CLIENT_SECRET)"
    );
}

/// Issue 23, item 2: `set_client_secret` after a rotation (the documented
/// single-process recipe) is not undone by a `SecretSource::file` that still
/// holds the dead secret; the file wins again once its content changes.
#[tokio::test]
async fn an_explicit_secret_wins_over_a_secret_file_until_the_file_changes() {
    let (fake, agent, old, secret) = fake_with_agent().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-secret");
    std::fs::write(&path, format!("{}\n", secret.expose_secret())).unwrap();
    let client = client_with(&fake, agent, SecretSource::file(&path));
    client.agents().get(agent).send().await.unwrap();

    // The rotation: the old secret dies, the new one is set in the process;
    // the file still holds the old one.
    let (second, second_secret) = fake.seed_credential(agent);
    revoke(&fake, agent, old).await;
    client.set_client_secret(second_secret).unwrap();
    let after_set = client.agents().get(agent).send().await;
    assert!(
        after_set.is_ok(),
        "the file's dead secret undid set_client_secret: {after_set:?}"
    );

    // The operator publishes a third secret to the file: it wins now.
    let (_, third_secret) = fake.seed_credential(agent);
    std::fs::write(&path, format!("{}\n", third_secret.expose_secret())).unwrap();
    revoke(&fake, agent, second).await;
    client.clear_token_cache();
    client.agents().get(agent).send().await.unwrap();
}

/// Issue 23, item 4(d): a secret path that is a FIFO (or anything but a
/// regular file) is refused at once instead of blocking the reader until
/// someone writes to it.
#[cfg(unix)]
#[test]
fn a_secret_path_that_is_a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-secret");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    let (done, reading) = std::sync::mpsc::channel();
    let source = SecretSource::file(&path);
    std::thread::spawn(move || {
        let _ = done.send(source.read().map(|_| ()));
    });
    match reading.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(read) => {
            let err = read.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.message().contains("not a regular file"), "{err}");
        }
        Err(_) => {
            // Unblock the reader so the test process can end.
            let _ = std::fs::write(&path, "x");
            panic!("reading a FIFO as the secret file blocked for 30 s");
        }
    }
}
