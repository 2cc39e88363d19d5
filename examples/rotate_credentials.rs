//! Zero-downtime rotation of an agent's own credential.
//!
//! ```sh
//! cargo run --example rotate_credentials --features testing
//! ```
//!
//! An agent may hold several active credentials, so: generate a second one,
//! switch the running client to it (which clears the token cache), check it
//! works, then revoke the old one. Calls keep succeeding at every step.
//! Uses the in-process fake unless `AGENTIDP_*` variables point elsewhere.

use sentryagent_idp::model::CredentialStatus;
use sentryagent_idp::testing::FakeAgentIdp;
use sentryagent_idp::{Client, ExposeSecret, SecretString};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = match std::env::var_os("AGENTIDP_BASE_URL") {
        Some(_) => None,
        None => Some(FakeAgentIdp::start().await?),
    };
    let (client, me) = match &fake {
        Some(fake) => {
            let client = fake.client_builder().build()?;
            (client, fake.bootstrap_agent_id())
        }
        None => {
            let id = std::env::var("AGENTIDP_CLIENT_ID")?.parse()?;
            (Client::from_env()?, id)
        }
    };

    let before = client.credentials().list(me).send().await?;
    let old: Vec<_> = before
        .iter()
        .filter(|c| c.status == CredentialStatus::Active)
        .map(|c| c.credential_id)
        .collect();
    println!("agent {me} holds {} active credential(s)", old.len());

    // 1. A second credential: both work from now on.
    let fresh = client.credentials().generate(me).send().await?;
    println!("generated {}", fresh.credential_id);

    // 2. Switch the running client (and its clones) to the new secret. In a
    //    real deployment, store it in your secret manager first.
    let secret = SecretString::from(fresh.client_secret.expose_secret());
    client.set_client_secret(secret)?;
    client.agents().get(me).send().await?;
    println!("the client now authenticates with the new credential");

    // 3. Revoke the old credentials; the client never notices.
    for id in old {
        client.credentials().revoke(me, id).send().await?;
        println!("revoked {id}");
    }
    client.agents().get(me).send().await?;
    let after = client.credentials().list(me).send().await?;
    for c in after {
        println!("  {} {}", c.credential_id, c.status);
    }
    Ok(())
}
