//! Secrets (client secret, access token, generated secrets) never appear in
//! `Debug`, `Display`, errors, tracing output at TRACE level, or panic messages.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::spec::documented_responses;
use common::*;
use httpmock::prelude::*;
use sentryagent_idp::auth::{AccessToken, StaticToken};
use sentryagent_idp::{Client, SecretString};
use serde_json::json;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const GENERATED_SECRET: &str = "sk_live_GENERATED_9d8c7b6a5f";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_secret_escapes_through_any_output() {
    let logs = Captured::default();
    let writer = logs.clone();
    // Everything at TRACE but the mock server's own logs (it is the server side,
    // which sees the secrets by design).
    let filter = Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("httpmock", LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(move || writer.clone()))
        .with(filter)
        .init();
    let panics = Captured::default();
    let panic_sink = panics.clone();
    std::panic::set_hook(Box::new(move |info| {
        let _ = writeln!(panic_sink.clone(), "{info}");
    }));

    let server = MockServer::start_async().await;
    let credential = json!({"credentialId": CREDENTIAL_ID, "clientId": AGENT_ID, "clientSecret": GENERATED_SECRET,
        "status": "active", "createdAt": "2026-03-28T09:00:00.000Z", "expiresAt": null, "revokedAt": null});
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/api/v1/token")
                .form_urlencoded_tuple("client_secret", CLIENT_SECRET);
            then.status(200)
                .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
        })
        .await;
    server.mock_async(|when, then| {
        when.method(POST).path("/api/v1/token");
        then.status(401).json_body(json!({"error": "invalid_client", "error_description": "Client authentication failed."}));
    }).await;
    server
        .mock_async(|when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(200).json_body(agent_json());
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST)
                .path(request_path("/agents/{agentId}/credentials"));
            then.status(201).json_body(credential);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(POST).path("/api/v1/token/introspect");
            then.status(200)
                .json_body(json!({"active": true, "scope": ALL_SCOPES, "sub": AGENT_ID}));
        })
        .await;
    server.mock_async(|when, then| {
        when.method(POST).path("/api/v1/agents");
        then.status(400).json_body(json!({"code": "VALIDATION_ERROR", "message": "email is invalid", "details": {"field": "email"}}));
    }).await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/api/v1/audit");
            then.status(502).body("<html>proxy error</html>");
        })
        .await;

    let mut seen: Vec<String> = Vec::new();
    let builder = Client::builder()
        .base_url(server.base_url())
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET);
    seen.push(format!("{builder:?}"));
    let client = builder.build().unwrap();
    seen.push(format!("{client:?}"));
    seen.push(format!(
        "{:?}",
        client.agents().get(agent_id()).await.unwrap()
    ));
    let generated = client.credentials().generate(agent_id()).await.unwrap();
    seen.push(format!("{generated:?}"));
    assert_eq!(
        sentryagent_idp::ExposeSecret::expose_secret(&generated.client_secret),
        GENERATED_SECRET
    );
    let token = client.access_token().await.unwrap();
    seen.push(format!("{token:?}"));
    seen.push(format!(
        "{:?}",
        client.tokens().introspect(&token).await.unwrap()
    ));
    for err in [
        client.agents().register(new_agent()).await.unwrap_err(),
        client.audit().query().send().await.unwrap_err(),
        Client::builder()
            .base_url(server.base_url())
            .client_id(CLIENT_ID)
            .client_secret("wrong-secret")
            .build()
            .unwrap()
            .access_token()
            .await
            .unwrap_err(),
    ] {
        seen.push(format!("{err:?} / {err}"));
        let result: sentryagent_idp::Result<()> = Err(err);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::hint::black_box(result).unwrap()
        }));
    }
    // Every documented error of every operation, through a client whose
    // token is the known one.
    for d in documented_responses().iter().filter(|d| d.status >= 400) {
        let errors = MockServer::start_async().await;
        errors
            .mock_async(|when, then| {
                when.method(POST).path("/api/v1/token");
                then.status(200)
                    .json_body(token_body(ACCESS_TOKEN, ALL_SCOPES, 3600));
            })
            .await;
        let (method, path, status) = (d.method.clone(), request_path(&d.path), d.status);
        let body = d.examples.first().cloned().unwrap_or_default();
        errors
            .mock_async(move |when, then| {
                when.method(method.as_str()).path(path);
                then.status(status).json_body(body);
            })
            .await;
        let client = common::client(&errors.base_url());
        if let Err(err) = invoke(&client, &d.operation).await {
            seen.push(format!("{err:?} / {err}"));
        }
    }
    seen.push(format!(
        "{:?}",
        AccessToken::new(SecretString::from(ACCESS_TOKEN))
    ));
    seen.push(format!("{:?}", StaticToken::new(ACCESS_TOKEN)));
    seen.push(format!("{:?}", sentryagent_idp::Secret::new(CLIENT_SECRET)));
    seen.push(format!("{:?}", SecretString::from(CLIENT_SECRET)));
    let _ = std::panic::take_hook();

    let logs = logs.text();
    let panics = panics.text();
    assert!(
        logs.contains("agentidp.request"),
        "tracing spans were captured: {logs}"
    );
    assert!(
        panics.contains("invalid_client"),
        "panic messages were captured: {panics}"
    );
    for (name, text) in [
        ("debug/display", seen.join("\n")),
        ("tracing", logs),
        ("panics", panics),
    ] {
        for secret in [
            CLIENT_SECRET,
            ACCESS_TOKEN,
            GENERATED_SECRET,
            "wrong-secret",
        ] {
            assert!(
                !text.contains(secret),
                "{name} output leaks {secret}:\n{text}"
            );
        }
    }
}
