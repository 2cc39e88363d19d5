//! `sentryagent fake`: the SDK's in-process fake AgentIdP as a local server
//! for development, with its bootstrap credentials printed as `export` lines.

use clap::Args;
use secrecy::ExposeSecret;

use super::failure::CliError;
use super::output::{Format, Printer};
use crate::testing::FakeAgentIdp;

#[derive(Debug, Args)]
pub(crate) struct FakeArgs {
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

impl FakeArgs {
    pub async fn run(self, out: &Printer) -> Result<(), CliError> {
        let fake = FakeAgentIdp::builder()
            .port(self.port)
            .oidc(true)
            .start()
            .await?;
        // The bootstrap secret is a throwaway of this in-memory fake, made up
        // at start and gone when it stops; printing it is how one logs in.
        let secret = fake.client_secret();
        // `export` lines unless JSON is asked for, so that `sentryagent fake > fake.env` works.
        if !matches!(out.asked, Some(Format::Json | Format::Jsonl)) {
            out.plain(&format!(
                "export AGENTIDP_BASE_URL={}\nexport AGENTIDP_CLIENT_ID={}\nexport AGENTIDP_CLIENT_SECRET={}",
                fake.base_url(),
                fake.client_id(),
                secret.expose_secret()
            ))?;
        } else {
            let line = serde_json::json!({
                "baseUrl": fake.base_url(),
                "clientId": fake.client_id(),
                "clientSecret": secret.expose_secret(),
                "bootstrapAgentId": fake.bootstrap_agent_id(),
            });
            out.plain(&line.to_string())?;
        }
        eprintln!(
            "fake AgentIdP listening on {}; Ctrl-C stops it",
            fake.base_url()
        );
        stopped().await;
        fake.shutdown().await;
        Ok(())
    }
}

/// Until Ctrl-C, or SIGTERM on Unix.
async fn stopped() {
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        let terminated = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = interrupted => {}
            () = terminated => {}
        }
    }
    #[cfg(not(unix))]
    interrupted.await;
}
