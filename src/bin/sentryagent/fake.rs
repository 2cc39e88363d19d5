//! `sentryagent fake`: the SDK's in-process fake AgentIdP as a local server
//! for development, with its bootstrap credentials printed as `export` lines.
//!
//! Only with the `cli-fake` feature: the fake brings axum, a server and a
//! published private key that a production binary has no use for. Without
//! it the subcommand is hidden and says which feature it needs, rather than
//! leaving a user who read the README with "unrecognized subcommand".

use clap::Args;

use crate::failure::CliError;
use crate::output::Printer;

#[cfg(feature = "cli-fake")]
pub(crate) use real::FakeArgs;
#[cfg(not(feature = "cli-fake"))]
pub(crate) use stub::FakeArgs;

/// Whether `sentryagent fake` is built in; hides the subcommand otherwise.
pub(crate) const BUILT_IN: bool = cfg!(feature = "cli-fake");

#[cfg(not(feature = "cli-fake"))]
mod stub {
    use super::*;

    /// What `sentryagent fake` says in a build without the fake.
    pub(crate) const NOT_BUILT_IN: &str = "this sentryagent was built without the fake \
        AgentIdP (feature `cli-fake`); for local development install it with \
        `cargo install sentryagent-idp --features cli-fake --locked`";

    #[derive(Debug, Args)]
    pub(crate) struct FakeArgs {
        /// Whatever was passed (e.g. `--port 0`): taken so that the answer
        /// is the missing feature, not an unknown flag.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        _ignored: Vec<std::ffi::OsString>,
    }

    impl FakeArgs {
        pub async fn run(self, _: &Printer) -> Result<(), CliError> {
            Err(CliError::Usage(NOT_BUILT_IN.into()))
        }
    }
}

#[cfg(feature = "cli-fake")]
mod real {
    use secrecy::ExposeSecret;
    use sentryagent_idp::testing::FakeAgentIdp;

    use super::*;
    use crate::output::Format;

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
}
