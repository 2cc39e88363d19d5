//! Both sides of an agent's token, against the in-process fake AgentIdP: an
//! axum service protected by the verifier's layer, and an agent calling it
//! through the outgoing middleware.
//!
//! ```sh
//! cargo run --example protected_service --features testing,axum,reqwest-middleware
//! ```
//!
//! It prints what is allowed and what is refused: a missing scope, a revoked
//! token (seen within the verifier's max age), a decommissioned agent.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use reqwest_middleware::ClientWithMiddleware;
use sentryagent_idp::present::{OutgoingAuth, PresentError};
use sentryagent_idp::testing::{AgentSeed, FakeAgentIdp};
use sentryagent_idp::verify::{AgentPrincipal, RequireScopes, Verifier, VerifyLayer};
use sentryagent_idp::{ExposeSecret, Scope};

/// How long the service trusts a verdict: a revocation shows within it.
const MAX_AGE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = FakeAgentIdp::start().await?;

    // The service: an agent itself, introspecting the tokens it receives.
    let service_identity = fake.client_builder().build()?;
    let verifier = Verifier::introspection(service_identity.clone())
        .max_age(MAX_AGE)
        .build()?;
    let app = Router::new()
        .route("/reports", get(report))
        .route_layer(RequireScopes::all([Scope::AUDIT_READ]))
        .route("/agents", get(whoami))
        .layer(VerifyLayer::new(verifier));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("service at {service}, verifying by introspection (max age {MAX_AGE:?})");

    // The caller: an agent that may read agents, not the audit trail.
    let caller_id = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
    let (_, secret) = fake.seed_credential(caller_id);
    let caller = fake
        .client_builder()
        .client_id(caller_id.to_string())
        .client_secret(secret)
        .scopes([Scope::AGENTS_READ])
        .build()?;
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            OutgoingAuth::builder(&caller)
                .allow_origin(&service)
                .build()?,
        )
        .build();

    call(&http, &service, "/agents", "1. allowed").await;
    call(&http, &service, "/reports", "2. missing scope").await;

    // 3. The caller's token is revoked: the service sees it within MAX_AGE.
    let revoked = caller.access_token().await?;
    service_identity.tokens().revoke(&revoked).send().await?;
    let plain = reqwest::Client::new();
    let bearer = format!("Bearer {}", revoked.expose_secret());
    let before = plain
        .get(format!("{service}/agents"))
        .header("authorization", &bearer);
    println!(
        "3. revoked token, still cached by the service: {}",
        before.send().await?.status()
    );
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;
    let after = plain
        .get(format!("{service}/agents"))
        .header("authorization", &bearer);
    let after = after.send().await?;
    println!(
        "   after the max age: {} {}",
        after.status(),
        header(&after, "www-authenticate")
    );
    call(
        &http,
        &service,
        "/agents",
        "   the middleware fetches a new token and replays",
    )
    .await;

    // 4. The caller is decommissioned: its tokens and credentials die.
    service_identity
        .agents()
        .decommission(caller_id)
        .send()
        .await?;
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;
    call(&http, &service, "/agents", "4. decommissioned agent").await;
    caller.clear_token_cache();
    match caller.access_token().await {
        Ok(_) => println!("   AgentIdP still issues it tokens (unexpected)"),
        Err(e) => println!("   and AgentIdP issues it no new token: {e}"),
    }

    fake.shutdown().await;
    Ok(())
}

async fn whoami(agent: AgentPrincipal) -> String {
    format!("hello agent {} (scopes: {})", agent.agent_id, agent.scopes)
}

async fn report(agent: AgentPrincipal) -> String {
    format!("the audit report, for {}", agent.agent_id)
}

/// One call through the middleware, printed as allowed or refused.
async fn call(http: &ClientWithMiddleware, service: &str, path: &str, what: &str) {
    match http.get(format!("{service}{path}")).send().await {
        Ok(response) if response.status().is_success() => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            println!("{what}: GET {path} -> {status}: {body}");
        }
        Ok(response) => println!(
            "{what}: GET {path} -> refused {} {}",
            response.status(),
            header(&response, "www-authenticate")
        ),
        Err(error) => match PresentError::find(&error) {
            Some(PresentError::InsufficientScope { required }) => {
                println!("{what}: GET {path} -> refused 403, the token lacks `{required}`")
            }
            Some(PresentError::Token(e)) => {
                println!("{what}: GET {path} -> no token for the caller: {e}")
            }
            _ => println!("{what}: GET {path} -> failed: {error}"),
        },
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
