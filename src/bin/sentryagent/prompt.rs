//! Talking to the person at the terminal: confirmations, prompts (the
//! secret without echo) and spinners, all on stderr so stdout stays clean.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secrecy::SecretString;

use crate::failure::CliError;

/// Set while completing a command line: no one is there to answer.
static NEVER_ASK: AtomicBool = AtomicBool::new(false);

/// Whether a person can answer: stdin and stderr are terminals, and the
/// process is not completing a command line for the shell.
pub(crate) fn interactive() -> bool {
    !NEVER_ASK.load(Ordering::Relaxed)
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// From now on, this process asks nothing (shell completion: a prompt
/// would hang the shell).
pub(crate) fn never_ask() {
    NEVER_ASK.store(true, Ordering::Relaxed);
}

/// Asks before a destructive step. `--yes` answers for the user; without a
/// terminal to ask on, the command is refused rather than run unasked.
pub(crate) fn confirm(yes: bool, action: &str, warning: &str) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !interactive() {
        return Err(CliError::Usage(format!(
            "refusing to {action} without confirmation: there is no terminal to ask on; pass --yes"
        )));
    }
    let answer = line(&format!("{}? {warning} [y/N] ", capitalized(action)))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(CliError::Declined),
    }
}

/// Reads a line from the terminal after `prompt` on stderr.
pub(crate) fn line(prompt: &str) -> Result<String, CliError> {
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes())?;
    stderr.flush()?;
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer)? == 0 {
        return Err(CliError::Declined);
    }
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}

/// Reads a secret from the terminal without echoing it.
pub(crate) fn secret(prompt: &str) -> Result<SecretString, CliError> {
    secret_or_empty(prompt)?.ok_or_else(|| CliError::Usage("no client secret was entered".into()))
}

/// Reads a secret from the terminal without echoing it; `None` when
/// nothing was typed (Enter alone).
pub(crate) fn secret_or_empty(prompt: &str) -> Result<Option<SecretString>, CliError> {
    let secret = rpassword::prompt_password(prompt)?;
    Ok((!secret.is_empty()).then(|| SecretString::from(secret)))
}

/// Writes `text` and a line ending to stderr, ignoring a failure: a note
/// must not end the command (`eprintln!` panics, exit 101, when stderr's
/// reader went away, e.g. a logger that exited under a follow).
pub(crate) fn note(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Whether [`spinner`] draws anything: stderr is a terminal whose `TERM`
/// is set and not `dumb` (indicatif's rule).
pub(crate) fn spinner_shown() -> bool {
    !ProgressDrawTarget::stderr().is_hidden()
}

/// A spinner on stderr, drawn only when stderr is a terminal (see
/// [`spinner_shown`]), and never while completing (after [`never_ask`]).
pub(crate) fn spinner(message: impl Into<String>) -> ProgressBar {
    // Shell completion draws nothing: the terminal holds the line being typed.
    if NEVER_ASK.load(Ordering::Relaxed) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.into());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
