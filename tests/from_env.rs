//! `Client::from_env` with the real process environment; alone in its test
//! binary because it changes the environment.

use std::time::Duration;

use sentryagent_idp::{Client, ClientBuilder, ErrorKind, Scope, ScopeSet};

#[tokio::test]
async fn from_env_reads_the_agentidp_variables() {
    let server = httpmock::MockServer::start_async().await;
    let token = server
        .mock_async(|when, then| {
            when.path("/api/v1/token")
                .form_urlencoded_tuple("client_id", "env-id")
                .form_urlencoded_tuple("client_secret", "env-secret")
                .form_urlencoded_tuple("scope", "agents:read tokens:read");
            then.status(200).json_body(serde_json::json!({"access_token": "t", "token_type": "Bearer", "expires_in": 60, "scope": "agents:read tokens:read"}));
        })
        .await;
    // SAFETY: this test binary has this single test, so no other thread reads the environment.
    unsafe {
        std::env::remove_var("AGENTIDP_CLIENT_ID");
        std::env::remove_var("AGENTIDP_CLIENT_SECRET");
        std::env::remove_var("AGENTIDP_SCOPES");
        std::env::set_var("AGENTIDP_BASE_URL", server.base_url());
    }
    let err = Client::from_env().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("AGENTIDP_CLIENT_ID"), "{err}");
    // The builder form fails the same way, before anything is chained.
    let err = ClientBuilder::from_env().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("AGENTIDP_CLIENT_ID"), "{err}");
    unsafe {
        std::env::set_var("AGENTIDP_CLIENT_ID", "env-id");
        std::env::set_var("AGENTIDP_CLIENT_SECRET", "env-secret");
        std::env::set_var("AGENTIDP_SCOPES", "tokens:read agents:read");
    }
    let client = Client::from_env().unwrap();
    let expected = ScopeSet::from([Scope::AGENTS_READ, Scope::TOKENS_READ]);
    assert_eq!(client.requested_scopes(), Some(&expected));
    assert_eq!(client.api_url(), format!("{}/api/v1", server.base_url()));
    assert_eq!(
        client.granted_scopes().await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(token.calls_async().await, 1);

    // `ClientBuilder::from_env()` presets the same settings and takes more.
    let client = ClientBuilder::from_env()
        .unwrap()
        .timeout(Duration::from_secs(5))
        .total_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    assert_eq!(client.requested_scopes(), Some(&expected));
    assert_eq!(
        client.granted_scopes().await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(token.calls_async().await, 2);

    // 0.2: the blocking client is built from the same builder.
    #[cfg(feature = "blocking")]
    {
        let blocking = ClientBuilder::from_env()
            .unwrap()
            .total_timeout(Duration::from_secs(20))
            .blocking()
            .build()
            .unwrap();
        let granted = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::task::spawn_blocking(move || blocking.granted_scopes()),
        )
        .await
        .expect("the blocking call ends")
        .unwrap()
        .unwrap();
        assert_eq!(granted, Some(expected));
        assert_eq!(token.calls_async().await, 3);
    }
}
