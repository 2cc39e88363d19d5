//! What a failed command prints on stderr (the error, its kind, code, HTTP
//! status and request id, and a hint) and the exit code it ends with.

use std::path::PathBuf;
use std::process::ExitCode;

use sentryagent_idp::{Error, ErrorKind, Operation, RolloverError, RolloverStep};

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
/// Interrupted by Ctrl-C (128 + SIGINT).
pub(crate) const INTERRUPTED: u8 = 130;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The SDK's error, with everything the server said, in the CLI's words.
    #[error("{}", api_message(.0))]
    Api(#[from] Error),
    #[error("{}", rollover_message(.0))]
    Rollover(#[from] RolloverError),
    /// The SDK's error where the server's URL is what to check: it could
    /// not be reached, or it has no token endpoint.
    #[error("{}", at_url_message(.url, .error))]
    AtUrl { url: String, error: Error },
    /// No agent has this email.
    #[error("no agent has the email {0}")]
    NoAgent(String),
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
            // No token endpoint at the URL: the URL is the configuration to fix.
            CliError::AtUrl { error, .. } if error.kind() == ErrorKind::NotFound => USAGE,
            CliError::Api(e) | CliError::AtUrl { error: e, .. } => api_exit_code(e),
            CliError::NoAgent(_) => NOT_FOUND,
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
                CliError::AtUrl { url, error } => Some(at_url_hint(url, error)),
                CliError::NoAgent(email) => Some(format!(
                    "emails are matched whole: `sentryagent agents list` shows every agent, \
                     `sentryagent agents list --email {email}` this one"
                )),
                CliError::Rollover(RolloverError::Orphaned { orphans, .. }) => Some(format!(
                    "nobody holds the secret of the new credential; revoke it: {}",
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
            ErrorKind::MissingScope => match (e.missing_scopes(), e.granted_scopes()) {
                (Some(missing), None) => format!(
                    "ask for it: `--scope {missing}` (repeat --scope for each scope the commands need), \
                     or `scopes` in the profile"
                ),
                (Some(missing), Some(_)) => format!(
                    "if you name scopes, add `--scope {missing}`; otherwise the agent is not granted \
                     it: use the credentials of an agent that is (`sentryagent configure`)"
                ),
                (None, _) => "the token lacks a scope this command needs".into(),
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
            ErrorKind::NotFound => not_found_hint(e.operation()).into(),
            ErrorKind::RateLimited => match e.retry_after() {
                Some(wait) => format!(
                    "the server asks to wait {}s before the next request",
                    wait.as_secs().max(1)
                ),
                None => "wait a minute: the server allows 100 requests a minute per client".into(),
            },
            // Only a build with the fake (`cli-fake`) can offer it.
            ErrorKind::Connect if cfg!(feature = "cli-fake") => {
                "is the server running? check --base-url; `sentryagent fake` starts a local one"
                    .into()
            }
            ErrorKind::Connect => "is the server running? check --base-url".into(),
            ErrorKind::Timeout => "the server did not answer in time; try again".into(),
            ErrorKind::OutcomeUnknown => outcome_hint(e.operation()).into(),
            ErrorKind::Config if e.message().contains("plain http") => {
                "use an https URL, or pass --allow-insecure-http if the network between you and \
                 the server is trusted"
                    .into()
            }
            ErrorKind::Config => {
                "check the settings: `sentryagent configure list` shows them and where each comes from"
                    .into()
            }
            _ => return None,
        })
    }
}

/// The command a user typed for an operation, e.g. `agents get`.
fn command_of(operation: Operation) -> &'static str {
    match operation {
        Operation::IssueToken => "the token request",
        Operation::IntrospectToken => "token introspect",
        Operation::RevokeToken => "token revoke",
        Operation::RegisterAgent => "agents register",
        Operation::ListAgents => "agents list",
        Operation::GetAgent => "agents get",
        Operation::UpdateAgent => "agents update",
        Operation::DecommissionAgent => "agents decommission",
        Operation::GenerateCredential => "credentials generate",
        Operation::ListCredentials => "credentials list",
        Operation::RotateCredential => "credentials rotate",
        Operation::RevokeCredential => "credentials revoke",
        Operation::QueryAuditEvents => "audit query",
        Operation::GetAuditEvent => "audit get",
        _ => "the command",
    }
}

/// The SDK's error in the CLI's words: the server's message without the
/// SDK's operation name, a missing scope as the flag that asks for it, an
/// unknown outcome in one line.
fn api_message(e: &Error) -> String {
    let command = e.operation().map_or("the command", command_of);
    match e.kind() {
        ErrorKind::MissingScope => match (e.missing_scopes(), e.granted_scopes()) {
            (Some(missing), None) => format!(
                "`{command}` needs the scope `{missing}`, which this command does not ask for; nothing was sent"
            ),
            (Some(missing), Some(_)) => format!(
                "`{command}` needs the scope `{missing}`, which the token was not granted; nothing was sent"
            ),
            (None, _) => e.message().to_owned(),
        },
        ErrorKind::OutcomeUnknown => {
            // The SDK's message: "<what happened>, so it may or may not have been applied; …".
            let what = e.message().split(", so it may").next().unwrap_or_default();
            format!("`{command}` may or may not have been applied ({what}); it was not sent again")
        }
        ErrorKind::Config => e
            .message()
            .replace("allow_insecure_http(true)", "--allow-insecure-http"),
        _ => e.message().to_owned(),
    }
}

/// What to run after a 404, by the operation that got it.
fn not_found_hint(operation: Option<Operation>) -> &'static str {
    match operation {
        Some(Operation::RotateCredential | Operation::RevokeCredential) => {
            "no such credential of this agent: `sentryagent credentials list AGENT` lists them"
        }
        Some(Operation::GetAuditEvent) => "no such event: `sentryagent audit query` lists them",
        _ => {
            "no agent has this id: `sentryagent agents list` lists them (an email works where an id \
             does: `sentryagent agents get EMAIL`)"
        }
    }
}

/// How to find out whether a write whose answer was lost was applied.
fn outcome_hint(operation: Option<Operation>) -> &'static str {
    match operation {
        Some(Operation::RegisterAgent) => {
            "look before registering again: `sentryagent agents list --email EMAIL`"
        }
        Some(Operation::UpdateAgent) => {
            "compare with `sentryagent agents get AGENT` before running it again"
        }
        Some(Operation::GenerateCredential) => {
            "`sentryagent credentials list AGENT`: revoke a new credential whose secret you did not get"
        }
        Some(Operation::RotateCredential) => {
            "the old secret may no longer work: rotate again and use the secret that prints"
        }
        _ => "look (`list` or `get`) before running it again",
    }
}

/// A rollover's failure in the CLI's words: the step as what was being done.
fn rollover_message(e: &RolloverError) -> String {
    let step = |step: &RolloverStep| match step {
        RolloverStep::List => "listing the credentials",
        RolloverStep::Generate => "generating the new credential",
        RolloverStep::Prove => "trying the new secret",
        RolloverStep::Publish => "publishing the new secret",
        RolloverStep::Revoke => "revoking the old credential",
        _ => "rolling over",
    };
    let cause = |source: &(dyn std::error::Error + 'static)| match source.downcast_ref::<Error>() {
        Some(e) => api_message(e),
        None => source.to_string(),
    };
    match e {
        RolloverError::Undone { step: at, source } => format!(
            "credentials rollover stopped while {}; nothing changed: {}",
            step(at),
            cause(source.as_ref())
        ),
        RolloverError::Unresolved {
            step: at, source, ..
        } => format!(
            "credentials rollover stopped while {}; whether a new credential was made is unknown, \
             and nothing was revoked: {}",
            step(at),
            cause(source.as_ref())
        ),
        RolloverError::Orphaned {
            step: at,
            orphans,
            source,
        } => format!(
            "credentials rollover stopped while {}; the new credential {} is left behind: {}",
            step(at),
            orphans
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            cause(source.as_ref())
        ),
        RolloverError::OldNotActive {
            agent_id,
            old_credential_id,
            status,
        } => match status {
            Some(status) => format!(
                "credential {old_credential_id} of agent {agent_id} is {}, not active; nothing was generated",
                status.as_str()
            ),
            None => format!(
                "agent {agent_id} has no credential {old_credential_id}; nothing was generated"
            ),
        },
        RolloverError::OldNotRevoked {
            new_credential_id,
            old_credential_id,
            source,
        } => format!(
            "the new credential {new_credential_id} is in use, but the old one \
             {old_credential_id} could not be revoked: {}",
            api_message(source)
        ),
        other => other.to_string(),
    }
}

/// The SDK's error at `url`, with the URL.
fn at_url_message(url: &str, e: &Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => format!(
            "there is no token endpoint at {url}/token (404): this base URL is not an AgentIdP's"
        ),
        ErrorKind::Timeout => format!("{url} did not answer in time: {}", e.message()),
        _ => format!("cannot reach {url}: {}", e.message()),
    }
}

/// What to check about `url`.
fn at_url_hint(url: &str, e: &Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "give the server's origin, e.g. `--base-url http://localhost:3000` \
             (/api/v1 is added), and check its port"
            .into(),
        ErrorKind::Timeout => "the server did not answer in time; try again".into(),
        // Only a build with the fake (`cli-fake`) can offer it.
        _ if cfg!(feature = "cli-fake") => format!(
            "is the server running at {url}? check --base-url (`sentryagent configure list`); \
             `sentryagent fake` starts a local one"
        ),
        _ => format!(
            "is the server running at {url}? check --base-url (`sentryagent configure list`)"
        ),
    }
}

impl CliError {
    /// This error, with the API URL when it is what to check: a server not
    /// reached, or no token endpoint there.
    pub fn at(self, url: &str) -> CliError {
        match self {
            CliError::Api(e)
                if matches!(e.kind(), ErrorKind::Connect | ErrorKind::Timeout)
                    || (e.kind() == ErrorKind::NotFound
                        && e.operation() == Some(Operation::IssueToken)) =>
            {
                CliError::AtUrl {
                    url: url.to_owned(),
                    error: e,
                }
            }
            e => e,
        }
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
        CliError::Api(e) | CliError::AtUrl { error: e, .. } => Some(e),
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
