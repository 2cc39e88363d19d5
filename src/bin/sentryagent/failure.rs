//! What a failed command prints on stderr (the error, its kind, code, HTTP
//! status and request id, and a hint) and the exit code it ends with.

use std::path::PathBuf;
use std::process::ExitCode;

use sentryagent_idp::{Error, ErrorKind, RolloverError};

/// Any other failure.
pub(crate) const OTHER: u8 = 1;
/// Usage or configuration.
pub(crate) const USAGE: u8 = 2;
/// Authentication or authorization.
pub(crate) const AUTH: u8 = 3;
/// Not found.
pub(crate) const NOT_FOUND: u8 = 4;
/// Conflict.
pub(crate) const CONFLICT: u8 = 5;
/// Rate limited.
pub(crate) const RATE_LIMITED: u8 = 6;
/// Server or network failure.
pub(crate) const SERVER: u8 = 7;
/// A write whose outcome is unknown.
pub(crate) const OUTCOME_UNKNOWN: u8 = 8;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The SDK's error, with everything the server said.
    #[error(transparent)]
    Api(#[from] Error),
    #[error(transparent)]
    Rollover(#[from] RolloverError),
    /// Bad arguments or configuration, said in words.
    #[error("{0}")]
    Usage(String),
    #[error(
        "not configured: run `sentryagent configure` first, or set AGENTIDP_BASE_URL, AGENTIDP_CLIENT_ID and AGENTIDP_CLIENT_SECRET"
    )]
    NotConfigured,
    /// The token is not active (or not valid), with why when known.
    #[error("{0}")]
    Refused(String),
    /// AgentIdP could not tell whether a token is valid.
    #[error("{0}")]
    Unavailable(String),
    #[error("not confirmed; nothing was changed")]
    Declined,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{path}: {error}", path = .0.display(), error = .1)]
    File(PathBuf, std::io::Error),
    /// End with this code and print nothing (a child's status).
    #[error("exit status {0}")]
    Exit(u8),
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Api(e) => api_exit_code(e),
            CliError::Rollover(RolloverError::Undone { source, .. }) => {
                source.downcast_ref::<Error>().map_or(OTHER, api_exit_code)
            }
            // Nothing generated: the id is wrong (no such credential) or already revoked.
            CliError::Rollover(RolloverError::OldNotActive { status, .. }) => {
                if status.is_some() {
                    CONFLICT
                } else {
                    NOT_FOUND
                }
            }
            // Half done or unknown (orphans, candidates, the old credential
            // still active): the hint says what to check.
            CliError::Rollover(_) => OUTCOME_UNKNOWN,
            CliError::Usage(_) | CliError::NotConfigured => USAGE,
            CliError::Refused(_) => AUTH,
            CliError::Unavailable(_) => SERVER,
            CliError::Declined | CliError::Io(_) | CliError::File(..) => OTHER,
            CliError::Exit(code) => *code,
        }
    }

    /// A line on what to do next, when there is one worth saying.
    fn hint(&self) -> Option<String> {
        let CliError::Api(e) = self else {
            return match self {
                CliError::Rollover(RolloverError::Orphaned { orphans, .. }) => Some(format!(
                    "revoke the orphaned credentials by hand: {}",
                    orphans.iter().map(|id| format!("sentryagent credentials revoke AGENT {id}")).collect::<Vec<_>>().join("; ")
                )),
                CliError::Rollover(RolloverError::Unresolved { candidates, .. }) => Some(match candidates {
                    Some(ids) => format!(
                        "nothing was revoked; of {}, one may be this rollover's credential (nobody holds its secret), any may be another operator's: check with `sentryagent credentials list AGENT` before revoking",
                        ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    None => "nothing was revoked; look for a credential nobody holds the secret of with `sentryagent credentials list AGENT`".into(),
                }),
                CliError::Rollover(RolloverError::OldNotRevoked { .. }) => Some(
                    "the new credential is in use; revoke the old one with `sentryagent credentials revoke`".into(),
                ),
                _ => None,
            };
        };
        Some(match e.kind() {
            ErrorKind::MissingScope => match e.missing_scopes() {
                Some(missing) => format!(
                    "the token lacks the scope `{missing}`; use a credential of an agent granted it"
                ),
                None => "the token lacks a scope this command needs".into(),
            },
            ErrorKind::Unauthorized => {
                "the client id or secret was refused: check them, or run `sentryagent configure`"
                    .into()
            }
            ErrorKind::Forbidden if e.code() == Some("AGENT_NOT_ACTIVE") => {
                "the agent is not active: `sentryagent agents reactivate AGENT` if it is suspended \
                 (a decommissioned agent stays so)"
                    .into()
            }
            ErrorKind::Forbidden => {
                "the server refused: the agent may be suspended or decommissioned, or lack a scope"
                    .into()
            }
            ErrorKind::NotFound => {
                "check the id (`sentryagent agents list`, `sentryagent credentials list AGENT`)"
                    .into()
            }
            ErrorKind::RateLimited => match e.retry_after() {
                Some(wait) => format!(
                    "the server asks to wait {}s before the next request",
                    wait.as_secs().max(1)
                ),
                None => "wait a minute: the server allows 100 requests a minute per client".into(),
            },
            // Only a build with the fake (`cli-fake`) can offer it.
            ErrorKind::Connect if cfg!(feature = "cli-fake") => {
                "is the server running at that URL? `sentryagent fake` starts a local one".into()
            }
            ErrorKind::Connect => "is the server running at that URL?".into(),
            ErrorKind::Timeout => "the server did not answer in time; try again".into(),
            ErrorKind::OutcomeUnknown => {
                "the write may have been applied: look (list or get) before you run it again".into()
            }
            ErrorKind::Config => {
                "check the settings: flags, AGENTIDP_* variables, `sentryagent configure`".into()
            }
            _ => return None,
        })
    }
}

/// The exit code of an SDK error.
fn api_exit_code(e: &Error) -> u8 {
    match e.kind() {
        ErrorKind::Validation | ErrorKind::InvalidInput | ErrorKind::Config => USAGE,
        ErrorKind::Unauthorized | ErrorKind::Forbidden | ErrorKind::MissingScope => AUTH,
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::Conflict => CONFLICT,
        ErrorKind::RateLimited => RATE_LIMITED,
        ErrorKind::Server
        | ErrorKind::UnexpectedStatus
        | ErrorKind::Timeout
        | ErrorKind::Connect
        | ErrorKind::Transport
        | ErrorKind::Decode
        | ErrorKind::InvalidResponse
        | ErrorKind::ResponseTooLarge => SERVER,
        ErrorKind::OutcomeUnknown => OUTCOME_UNKNOWN,
        _ => OTHER,
    }
}

/// Prints `e` on stderr and returns its exit code. The SDK's errors never
/// hold a secret, and the tool's own say only what was asked.
pub(crate) fn report(e: &CliError, color: bool) -> ExitCode {
    use std::fmt::Write;
    let code = e.exit_code();
    match e {
        CliError::Exit(code) => return ExitCode::from(*code),
        // The reader went away (`| head`): what it wanted was printed.
        CliError::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // Server text (a message, a code, a request id) may hold escape sequences.
    let mut text = format!(
        "{}: {}\n",
        crate::output::paint("error", crate::output::Style::Red, color),
        crate::sanitize::terminal(&e.to_string())
    );
    let api = match e {
        CliError::Api(e) => Some(e),
        CliError::Rollover(r) => {
            std::error::Error::source(r).and_then(|s| s.downcast_ref::<Error>())
        }
        _ => None,
    };
    if let Some(api) = api {
        let mut facts = vec![format!("kind: {}", kind_name(api.kind()))];
        if let Some(status) = api.status() {
            facts.push(format!("status: {}", status.as_u16()));
        }
        if let Some(code) = api.code() {
            facts.push(format!("code: {code}"));
        }
        if let Some(id) = api.request_id() {
            facts.push(format!("request id: {id}"));
        }
        let _ = writeln!(text, "  {}", crate::sanitize::terminal(&facts.join(" · ")));
    }
    if let Some(hint) = e.hint() {
        let _ = writeln!(
            text,
            "  {}: {hint}",
            crate::output::paint("hint", crate::output::Style::Bold, color),
            hint = crate::sanitize::terminal(&hint)
        );
    }
    // Not eprint!: it panics (exit 101) when stderr's reader went away, and
    // the documented code must still be the one the command ends with.
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    ExitCode::from(code)
}

/// The error kind as a user reads it: `not_found`.
fn kind_name(kind: ErrorKind) -> String {
    let name = format!("{kind:?}");
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_in_snake_case() {
        assert_eq!(kind_name(ErrorKind::NotFound), "not_found");
        assert_eq!(kind_name(ErrorKind::OutcomeUnknown), "outcome_unknown");
        assert_eq!(kind_name(ErrorKind::Server), "server");
    }
}
