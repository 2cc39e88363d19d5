//! `sentryagent`, the AgentIdP command-line tool (feature `cli`; its `fake`
//! subcommand needs `cli-fake`): see `sentryagent --help` and the README's
//! "Command line" section. It is built on the SDK's public API only: it
//! sends no HTTP of its own, so every command inherits the SDK's scopes
//! before the wire, retries that never repeat a write, typed errors and
//! secrets that do not print by accident.
//!
//! One module per command group (`agents`, `credentials`, `token`, `audit`,
//! `verify`, `fake`, `configure`) over small shared ones, each importing only
//! from those below it: `session` (the client a command works with) over
//! `config` (profiles, the upstream file, the environment; files pass
//! `permissions` first) over `args` (the flags), then `prompt`
//! (confirmation, spinners), `failure` (exit codes, errors in the CLI's
//! words, hints) and `output` (tables fitted to the terminal, tab-separated
//! rows, JSON, JSON lines), which print server text through `sanitize`;
//! `help` (examples, the global options shown once) and `complete` (shell
//! completion, agent and credential ids from the API) decorate the tree.
//!
//! Exit codes, stable for scripts:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | any other failure (I/O, declined confirmation) |
//! | 2 | usage or configuration (bad flags, a value the server rejected, not configured) |
//! | 3 | authentication or authorization (refused credentials, missing scope, invalid token) |
//! | 4 | not found |
//! | 5 | conflict |
//! | 6 | rate limited |
//! | 7 | server or network failure |
//! | 8 | outcome unknown: a write may or may not have been applied |
//! | 130 | interrupted (Ctrl-C) |

#![forbid(unsafe_code)]

mod agents;
mod args;
mod audit;
mod complete;
mod config;
mod configure;
mod credentials;
mod failure;
mod fake;
mod help;
mod interrupt;
mod output;
mod permissions;
mod prompt;
mod sanitize;
mod session;
mod token;
mod verify;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use failure::CliError;
use session::Session;

/// Runs the tool with the process's arguments and returns its exit code.
fn main() -> ExitCode {
    // `SENTRYAGENT_COMPLETE=bash sentryagent -- …`: the shell asks for completions (see `completions`).
    clap_complete::CompleteEnv::with_factory(command)
        .var(complete::VAR)
        .complete();
    let cli = match command()
        .try_get_matches()
        .and_then(|matches| Cli::from_matches(&matches))
    {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0), usage errors to stderr (exit 2).
            let code = u8::try_from(e.exit_code()).unwrap_or(failure::USAGE);
            print_clap(e);
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return failure::report(&CliError::Io(e), false),
    };
    let color = output::stderr_color();
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) => failure::report(&e, color),
    }
}

/// The command tree as it parses and prints its help: with examples, and
/// the global options shown once.
pub(crate) fn command() -> clap::Command {
    help::decorate(Cli::command())
}

/// Prints clap's message. A usage error quotes the value it refused (an
/// argument, or an `AGENTIDP_*` variable), and on a terminal clap writes it
/// as it is: the values it quotes are sanitised first, so that control
/// characters in them (a value a script passed on) show as escapes.
fn print_clap(mut e: clap::Error) {
    use clap::error::ContextValue;
    let safe = |text: &String| sanitize::terminal(text).into_owned();
    let sanitised: Vec<_> = e
        .context()
        .filter_map(|(kind, value)| {
            let clean = match value {
                ContextValue::String(text) => ContextValue::String(safe(text)),
                ContextValue::Strings(texts) => {
                    ContextValue::Strings(texts.iter().map(safe).collect())
                }
                _ => return None,
            };
            (clean != *value).then_some((kind, clean))
        })
        .collect();
    for (kind, clean) in sanitised {
        e.insert(kind, clean);
    }
    let _ = e.print();
}

/// The AgentIdP from a terminal: agents, credentials, tokens and the audit trail.
///
/// Settings come from flags, then `AGENTIDP_*` environment variables, then
/// the profile in the config file (`sentryagent configure`), then the
/// upstream CLI's `~/.sentryagent/config.json`.
#[derive(Debug, Parser)]
#[command(name = "sentryagent", version, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 ok, 1 other, 2 usage or configuration, 3 auth, \
    4 not found, 5 conflict, 6 rate limited, 7 server or network, 8 outcome unknown, \
    130 interrupted.\n\
    The global options above apply to every command (`sentryagent help options`)."
)]
struct Cli {
    #[command(flatten)]
    global: args::Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a profile (API URL, client id, client secret prompted without echo) once a
    /// token request with it works; `configure list` shows the settings in effect.
    Configure(configure::Configure),
    /// Registers, lists, reads, updates, suspends and decommissions agents.
    #[command(subcommand)]
    Agents(agents::AgentsCommand),
    /// Generates, lists, rotates, rolls over and revokes an agent's credentials.
    #[command(subcommand)]
    Credentials(credentials::CredentialsCommand),
    /// Gets, introspects and revokes access tokens; runs a command with one.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Queries, reads and follows the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Verifies an access token: whose it is, its scopes, its expiry.
    Verify(verify::VerifyArgs),
    /// Runs the in-process fake AgentIdP for local development.
    #[command(hide = !fake::BUILT_IN)]
    Fake(fake::FakeArgs),
    /// Prints a shell completion script (it completes agent and credential ids too).
    Completions {
        /// The shell.
        #[arg(value_parser = ["bash", "zsh", "fish", "elvish", "powershell"])]
        shell: String,
    },
    /// The options every command takes (`sentryagent help options`).
    #[command(name = help::OPTIONS, hide = true)]
    Options,
}

impl Cli {
    /// The parsed command line, with where each global option's value came from.
    fn from_matches(matches: &clap::ArgMatches) -> Result<Cli, clap::Error> {
        let mut cli = Cli::from_arg_matches(matches)?;
        cli.global.note_sources(matches);
        Ok(cli)
    }

    async fn run(self) -> Result<ExitCode, CliError> {
        let global = self.global;
        match self.command {
            Command::Configure(c) => c.run(&global).await,
            Command::Agents(c) => {
                let s = Session::open(&global)?;
                c.run(&s).await.map_err(|e| e.at(s.client.api_url()))
            }
            Command::Credentials(c) => {
                let s = Session::open(&global)?;
                c.run(&s).await.map_err(|e| e.at(s.client.api_url()))
            }
            Command::Token(c) => {
                let s = Session::open(&global)?;
                c.run(&s).await.map_err(|e| e.at(s.client.api_url()))
            }
            Command::Audit(c) => {
                let s = Session::open(&global)?;
                c.run(&s).await.map_err(|e| e.at(s.client.api_url()))
            }
            Command::Verify(c) => c.run(&global).await,
            Command::Fake(c) => c.run(&global.printer()).await,
            Command::Completions { shell } => {
                let script = complete::registration(&shell)?;
                Ok(global.printer().plain(script.trim_end_matches('\n'))?)
            }
            Command::Options => {
                let mut options = command();
                let help = options
                    .find_subcommand_mut(help::OPTIONS)
                    .map(|c| c.render_long_help().to_string())
                    .unwrap_or_default();
                Ok(global.printer().plain(help.trim_end())?)
            }
        }
        .map(|()| ExitCode::SUCCESS)
        .or_else(|e| match e {
            CliError::Exit(code) => Ok(ExitCode::from(code)),
            e => Err(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
        super::command().debug_assert();
    }

    #[test]
    fn the_help_lists_fake_only_when_it_is_built_in() {
        let help = Cli::command().render_long_help().to_string();
        assert_eq!(
            help.contains("\n  fake "),
            cfg!(feature = "cli-fake"),
            "{help}"
        );
    }

    // `cargo test --no-default-features --features rustls,cli --bin sentryagent`.
    #[cfg(not(feature = "cli-fake"))]
    #[test]
    fn without_cli_fake_the_fake_says_which_feature_it_needs() {
        use super::failure;
        use clap::Parser;

        let cli = Cli::try_parse_from(["sentryagent", "fake", "--port", "0"])
            .expect("the flags of a build with the fake are taken");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let refused = runtime.block_on(cli.run()).unwrap_err();
        assert_eq!(refused.exit_code(), failure::USAGE);
        assert!(
            refused.to_string().contains("--features cli-fake"),
            "{refused}"
        );
    }
}
