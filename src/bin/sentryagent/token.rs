//! `sentryagent token …`: the client's access token, and any token's
//! introspection and revocation. A token to inspect is read from stdin
//! unless given, so that it need not show in `ps`.

use std::ffi::OsString;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{SECRET_VARIABLES, stdin_secret_line};
use crate::failure::{CliError, OTHER};
use crate::output::{Format, Record, Style, status_style, to_json, when};
use crate::prompt;
use crate::session::Session;
use sentryagent_idp::model::Introspection;

/// The variable `token exec` puts the access token in.
const TOKEN_VARIABLE: &str = "AGENTIDP_ACCESS_TOKEN";

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Prints the client's access token (cached between commands).
    Get,
    /// Asks AgentIdP whether a token is active, and whose it is.
    Introspect {
        /// The token; read from stdin when absent or `-`.
        token: Option<String>,
    },
    /// Revokes a token (asks first).
    Revoke {
        /// The token; read from stdin when absent or `-`.
        token: Option<String>,
    },
    /// Runs a command with the access token in `AGENTIDP_ACCESS_TOKEN`,
    /// e.g. `token exec -- sh -c 'curl -H "Authorization: Bearer $AGENTIDP_ACCESS_TOKEN" …'`.
    ///
    /// The command gets this tool's environment without the client secret's
    /// variables (`AGENTIDP_CLIENT_SECRET`, `AGENTIDP_CLIENT_SECRET_FILE`),
    /// plus `AGENTIDP_ACCESS_TOKEN`: the short-lived token, never the
    /// long-lived secret. Its standard input is this tool's; with
    /// `--client-secret-stdin`, what follows the secret's line.
    Exec {
        /// The command and its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<OsString>,
    },
}

impl TokenCommand {
    pub async fn run(self, s: &Session) -> Result<(), CliError> {
        match self {
            TokenCommand::Get => {
                let token = s.client.access_token().await?;
                // Plain unless JSON is asked for: `$(sentryagent token get)` must work in a pipe.
                if !matches!(s.out.asked, Some(Format::Json | Format::Jsonl)) {
                    s.out
                        .plain(&crate::sanitize::terminal(token.expose_secret()))?;
                } else {
                    let scope = s
                        .client
                        .granted_scopes()
                        .await?
                        .map(|scopes| scopes.to_string());
                    let json = serde_json::json!({
                        "access_token": token.expose_secret(),
                        "token_type": "Bearer",
                        "scope": scope,
                    });
                    s.out.plain(&crate::sanitize::json_text(json.to_string()))?;
                }
                Ok(())
            }
            TokenCommand::Introspect { token } => {
                s.out.check::<Introspection>().map_err(CliError::Usage)?;
                let token = given_or_stdin(token)?;
                Ok(s.out
                    .one(&s.client.tokens().introspect(&token).send().await?)?)
            }
            TokenCommand::Revoke { token } => {
                let token = given_or_stdin(token)?;
                prompt::confirm(s.yes, "revoke this token", "It stops working at once.")?;
                s.client.tokens().revoke(&token).send().await?;
                Ok(s.out.status("revoked", true.into(), "revoked")?)
            }
            TokenCommand::Exec { command } => {
                let token = s.client.access_token().await?;
                let (program, args) = command
                    .split_first()
                    .ok_or_else(|| CliError::Usage("no command to run".into()))?;
                let mut child = std::process::Command::new(program);
                for variable in SECRET_VARIABLES {
                    child.env_remove(variable);
                }
                let status = child
                    .args(args)
                    .env(TOKEN_VARIABLE, token.expose_secret())
                    .status()
                    .map_err(|e| {
                        CliError::Usage(format!("cannot run {}: {e}", program.to_string_lossy()))
                    })?;
                Err(CliError::Exit(exit_status(status)))
            }
        }
    }
}

/// The exit code that passes a child's status on: its own, or 128 plus the
/// signal that ended it.
fn exit_status(status: std::process::ExitStatus) -> u8 {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return u8::try_from(128 + signal).unwrap_or(OTHER);
    }
    status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .unwrap_or(OTHER)
}

/// The token argument, or the first line of stdin.
pub(crate) fn given_or_stdin(token: Option<String>) -> Result<SecretString, CliError> {
    match token {
        Some(token) if token != "-" => Ok(SecretString::from(token)),
        _ => stdin_secret_line()
            .map_err(|_| CliError::Usage("no token: give it as an argument or on stdin".into())),
    }
}

/// A Unix time as a table shows it.
pub(crate) fn unix_time(seconds: Option<i64>) -> String {
    when(seconds.and_then(|s| chrono::DateTime::from_timestamp(s, 0)))
}

impl Record for Introspection {
    const COLUMNS: &'static [&'static str] = &[
        "ACTIVE",
        "SUBJECT",
        "CLIENT ID",
        "SCOPE",
        "EXPIRES",
        "ISSUED",
        "TOKEN ID",
    ];
    const FIELDS: &'static [&'static str] =
        &["active", "sub", "client_id", "scope", "exp", "iat", "jti"];
    const ID: usize = 1;

    fn cells(&self) -> Vec<(String, Style)> {
        let text = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        vec![
            (
                self.active.to_string(),
                status_style(if self.active { "true" } else { "false" }),
            ),
            (text(&self.sub), Style::Plain),
            (text(&self.client_id), Style::Plain),
            (
                self.scope
                    .as_ref()
                    .map_or_else(|| "-".into(), ToString::to_string),
                Style::Plain,
            ),
            (unix_time(self.exp), Style::Plain),
            (unix_time(self.iat), Style::Plain),
            (text(&self.jti), Style::Plain),
        ]
    }

    fn json(&self) -> serde_json::Value {
        to_json(self)
    }
}
