//! Shell completion: the script `sentryagent completions SHELL` prints (it
//! asks the binary itself, through clap_complete's protocol with
//! `SENTRYAGENT_COMPLETE=SHELL`), and the agent and credential ids offered from the API.
//!
//! Completing runs while someone types, so it never prompts (no terminal is
//! asked for a secret), never takes longer than [`BUDGET`], and fails
//! silently: no settings, no server or no answer in time offer nothing.

use std::future::Future;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use clap_complete::engine::CompletionCandidate;
use sentryagent_idp::Client;

use crate::args::Global;
use crate::config;
use crate::failure::CliError;

/// The longest a completion may wait for the API: 2 s.
pub(crate) const BUDGET: Duration = Duration::from_secs(2);

/// The environment variable the completion script sets: not clap_complete's
/// default `COMPLETE`, which a user's environment may hold for something
/// else (every command would then answer as a completer).
pub(crate) const VAR: &str = "SENTRYAGENT_COMPLETE";

/// How many agents are offered at most: one page of the listing.
const AGENTS_OFFERED: u32 = 100;

/// The global options that take a value, as typed: read from the line being
/// completed so that `--profile staging agents get <TAB>` asks staging.
const VALUE_FLAGS: &[&str] = &[
    "--profile",
    "--config",
    "--base-url",
    "--client-id",
    "--client-secret-file",
    "--scope",
];

/// The flags of the credential commands that take a value, skipped when
/// looking for the agent on the line.
const OTHER_VALUE_FLAGS: &[&str] = &["--output", "-o", "--expires-at", "--grace", "--secret-file"];

/// The script that registers completion for `shell`.
pub(crate) fn registration(shell: &str) -> Result<String, CliError> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell)
        .ok_or_else(|| CliError::Usage(format!("no completion script for the shell `{shell}`")))?;
    let mut script = Vec::new();
    completer.write_registration(
        VAR,
        "sentryagent",
        "sentryagent",
        "sentryagent",
        &mut script,
    )?;
    Ok(String::from_utf8_lossy(&script).into_owned())
}

/// Agents: each id (with its email as help) and each email (with its id).
pub(crate) fn agents() -> Vec<CompletionCandidate> {
    from_api(|client| async move {
        let page = client.agents().list().limit(AGENTS_OFFERED).send().await?;
        Ok(page
            .items
            .into_iter()
            .flat_map(|agent| {
                let id = agent.agent_id.to_string();
                [
                    candidate(id.clone(), &agent.email),
                    candidate(agent.email, &id),
                ]
            })
            .flatten()
            .collect())
    })
}

/// The credentials of the agent named earlier on the line, with their status.
pub(crate) fn credentials() -> Vec<CompletionCandidate> {
    let Some(agent) = agent_on_the_line(&line()) else {
        return Vec::new();
    };
    let Ok(agent) = agent.parse::<crate::agents::AgentRef>() else {
        return Vec::new();
    };
    from_api(|client| async move {
        let agent_id = agent.resolve(&client).await?;
        let listed = client.credentials().list(agent_id).send().await?;
        Ok(listed
            .into_iter()
            .filter_map(|c| candidate(c.credential_id.to_string(), c.status.as_str()))
            .collect())
    })
}

/// A candidate, unless the server's value could upset the shell; its help
/// made safe for a terminal.
///
/// The shell types a candidate into the command line as it is (bash does
/// not quote it), so a value holding shell syntax (an email's local part may
/// hold `` ` ``, `$`, `;`, `|`, quotes) would run the server's text once
/// accepted: only ids and emails of plain characters are offered.
fn candidate(value: String, help: &str) -> Option<CompletionCandidate> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '+' | '-');
    if value.is_empty() || !value.chars().all(plain) {
        return None;
    }
    // As every server text on a terminal: control characters and bidi
    // overrides shown as escapes (an override could make one email read as another).
    let help = crate::sanitize::terminal(help).into_owned();
    Some(CompletionCandidate::new(value).help(Some(help.into())))
}

/// What `fetch` offers, or nothing when it fails or takes longer than [`BUDGET`].
fn from_api<F, Fut>(fetch: F) -> Vec<CompletionCandidate>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<Vec<CompletionCandidate>, CliError>>,
{
    crate::prompt::never_ask();
    let Some(global) = global_of(&line()) else {
        return Vec::new();
    };
    // Settings and the client before the clock starts: they read local files only.
    let Ok(client) = config::resolve(&global).and_then(|s| s.client(!global.no_token_cache)) else {
        return Vec::new();
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let offered = runtime
        .block_on(async { tokio::time::timeout(BUDGET, fetch(client)).await })
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    // A token store's file work left behind is not waited for.
    runtime.shutdown_background();
    offered
}

/// The words of the line being completed (after the `--` the script passes).
fn line() -> Vec<String> {
    std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .skip_while(|arg| arg != "--")
        .skip(2)
        .collect()
}

/// The global options from the environment and from the value flags on the
/// line; `None` when they do not parse.
fn global_of(words: &[String]) -> Option<Global> {
    let mut argv = vec!["sentryagent".to_owned()];
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if let Some((flag, _)) = word.split_once('=')
            && VALUE_FLAGS.contains(&flag)
        {
            argv.push(word.clone());
        } else if VALUE_FLAGS.contains(&word.as_str()) {
            argv.push(word.clone());
            argv.push(words.next()?.clone());
        } else if word == "--no-token-cache" {
            argv.push(word.clone());
        }
    }
    let command = Global::augment_args(clap::Command::new("sentryagent"));
    let matches = command.try_get_matches_from(argv).ok()?;
    Global::from_arg_matches(&matches).ok()
}

/// The first argument after `credentials SUBCOMMAND` that is not a flag or a
/// flag's value: the agent.
fn agent_on_the_line(words: &[String]) -> Option<String> {
    let start = words.iter().position(|w| w == "credentials")? + 2;
    let mut rest = words.get(start..)?.iter();
    while let Some(word) = rest.next() {
        if VALUE_FLAGS.contains(&word.as_str()) || OTHER_VALUE_FLAGS.contains(&word.as_str()) {
            rest.next();
        } else if !word.starts_with('-') {
            return Some(word.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_agent_is_the_first_word_after_the_credentials_subcommand() {
        assert_eq!(
            agent_on_the_line(&words("credentials rotate -o json a@b.c ")).as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            agent_on_the_line(&words("--profile x credentials revoke --yes id1 ")).as_deref(),
            Some("id1")
        );
        assert_eq!(agent_on_the_line(&words("agents get ")), None);
    }

    #[test]
    fn the_profile_on_the_line_is_used() {
        let global = global_of(&words("--profile staging credentials list ")).unwrap();
        assert_eq!(global.profile, "staging");
        assert!(global_of(&words("--profile")).is_none());
    }

    #[test]
    fn a_candidate_with_control_characters_is_not_offered() {
        assert!(candidate("a\u{1b}]0;x\u{7}".into(), "h").is_none());
        assert!(candidate("a b".into(), "h").is_none());
        assert!(candidate("a`id`$x;y|z'@x.y".into(), "h").is_none());
        assert!(candidate("\u{202e}ab@x.y".into(), "h").is_none());
        let shown = candidate("ok@x.y".into(), "\u{1b}[2J").unwrap();
        assert_eq!(shown.get_help().unwrap().to_string(), "\\u{1b}[2J");
    }
}
