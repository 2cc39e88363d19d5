//! `sentryagent`, the AgentIdP command-line tool: see `sentryagent --help`
//! and the README's "Command line" section. All of it lives in
//! `sentryagent_idp::cli`, on the SDK's facade.

fn main() -> std::process::ExitCode {
    sentryagent_idp::cli::main()
}
