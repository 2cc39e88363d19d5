//! `Client::from_env` with the real process environment; alone in its test
//! binary because it changes the environment.

use sentryagent_idp::{Client, ErrorKind, Scope, ScopeSet};

#[tokio::test]
async fn from_env_reads_the_agentidp_variables() {
    let server = httpmock::MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.path("/api/v1/token").form_urlencoded_tuple("client_id", "env-id").form_urlencoded_tuple("scope", "agents:read tokens:read");
            then.status(200).json_body(serde_json::json!({"access_token": "t", "token_type": "Bearer", "expires_in": 60, "scope": "agents:read tokens:read"}));
        })
        .await;
    // SAFETY: this test binary has this single test, so no other thread reads the environment.
    unsafe {
        std::env::remove_var("AGENTIDP_CLIENT_ID");
        std::env::set_var("AGENTIDP_BASE_URL", server.base_url());
    }
    let err = Client::from_env().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Config);
    assert!(err.to_string().contains("AGENTIDP_CLIENT_ID"), "{err}");
    unsafe {
        std::env::set_var("AGENTIDP_CLIENT_ID", "env-id");
        std::env::set_var("AGENTIDP_CLIENT_SECRET", "env-secret");
        std::env::set_var("AGENTIDP_SCOPES", "tokens:read agents:read");
    }
    let client = Client::from_env().unwrap();
    assert_eq!(
        client.granted_scopes().await.unwrap(),
        Some(ScopeSet::from([Scope::AGENTS_READ, Scope::TOKENS_READ]))
    );
    assert_eq!(token.calls_async().await, 1);
}
