//! The help text that is not a flag's own: one or two examples per command
//! (in gh's style), the global options shown once (in the top-level help
//! and `sentryagent help options`, not repeated in every subcommand's), and
//! how to install the completion script.

use clap::Command;

/// The command whose help lists the global options: `sentryagent help options`.
pub(crate) const OPTIONS: &str = "options";

/// What a subcommand's help says in place of the global options.
const GLOBAL_FOOTER: &str = "Global options (--profile, --base-url, --scope, -o, --yes, …): \
    `sentryagent help options`";

/// Each command's examples, by its path below `sentryagent`.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "configure",
        "$ sentryagent configure\n\
         $ sentryagent configure --profile staging --base-url https://idp.staging.example.com",
    ),
    ("configure list", "$ sentryagent configure list"),
    (
        "agents register",
        "$ sentryagent agents register --email screener-001@myproject.ai --type screener \\\n    \
         --version 1.0.0 --capability resume:read --owner platform-team --env production",
    ),
    (
        "agents list",
        "$ sentryagent agents list --owner platform-team --status active\n\
         $ sentryagent agents list --email screener-001@myproject.ai",
    ),
    (
        "agents get",
        "$ sentryagent agents get screener-001@myproject.ai\n\
         $ sentryagent agents get c3b0267b-da25-41c1-8c7c-89f67cba7f4d -o json",
    ),
    (
        "agents update",
        "$ sentryagent agents update screener-001@myproject.ai --version 1.1.0",
    ),
    (
        "agents suspend",
        "$ sentryagent agents suspend screener-001@myproject.ai",
    ),
    (
        "agents reactivate",
        "$ sentryagent agents reactivate screener-001@myproject.ai",
    ),
    (
        "agents decommission",
        "$ sentryagent agents decommission screener-001@myproject.ai\n\
         $ sentryagent agents decommission c3b0267b-da25-41c1-8c7c-89f67cba7f4d --yes",
    ),
    (
        "credentials generate",
        "$ sentryagent credentials generate screener-001@myproject.ai\n\
         $ sentryagent credentials generate screener-001@myproject.ai --expires-at 2027-06-30T00:00:00Z",
    ),
    (
        "credentials list",
        "$ sentryagent credentials list screener-001@myproject.ai",
    ),
    (
        "credentials rotate",
        "$ sentryagent credentials rotate screener-001@myproject.ai 102d3c94-9f74-4502-971e-6108de78093c",
    ),
    (
        "credentials rollover",
        "$ sentryagent credentials rollover screener-001@myproject.ai \\\n    \
         102d3c94-9f74-4502-971e-6108de78093c --secret-file /etc/screener/agent.secret --grace 5m",
    ),
    (
        "credentials revoke",
        "$ sentryagent credentials revoke screener-001@myproject.ai 102d3c94-9f74-4502-971e-6108de78093c",
    ),
    (
        "token get",
        "$ sentryagent token get\n\
         $ curl -H \"Authorization: Bearer $(sentryagent token get)\" https://service.example.com/",
    ),
    (
        "token introspect",
        "$ sentryagent token get | sentryagent token introspect",
    ),
    ("token revoke", "$ sentryagent token revoke < token.txt"),
    (
        "token exec",
        "$ sentryagent token exec -- ./call-service.sh\n\
         $ sentryagent token exec -- sh -c 'curl -H \"Authorization: Bearer $AGENTIDP_ACCESS_TOKEN\" https://service.example.com/'",
    ),
    (
        "audit query",
        "$ sentryagent audit query --action agent.created --from 2026-12-01T00:00:00Z\n\
         $ sentryagent audit query --agent c3b0267b-da25-41c1-8c7c-89f67cba7f4d --all -o jsonl",
    ),
    (
        "audit get",
        "$ sentryagent audit get 2c8fe80e-14c1-4a31-90ff-d8a177d83b09",
    ),
    (
        "audit tail",
        "$ sentryagent audit tail -n 20\n\
         $ sentryagent audit tail --follow --outcome failure",
    ),
    (
        "verify",
        "$ sentryagent token get | sentryagent verify\n\
         $ sentryagent verify --jwks https://idp.example.com < token.txt",
    ),
    (
        "fake",
        "$ sentryagent fake > fake.env &\n\
         $ . ./fake.env && sentryagent agents list",
    ),
    (
        "completions",
        "$ sentryagent completions bash > ~/.local/share/bash-completion/completions/sentryagent",
    ),
    (
        OPTIONS,
        "$ sentryagent --profile staging agents list\n\
         $ AGENTIDP_PROFILE=staging sentryagent agents list",
    ),
];

/// How to install the completion script, shell by shell (`completions --help`).
pub(crate) const COMPLETIONS_INSTALL: &str = "Install (the script asks sentryagent for \
    subcommands, flags, and agent and credential ids from the API as you type):
  bash        sentryagent completions bash > ~/.local/share/bash-completion/completions/sentryagent
  zsh         sentryagent completions zsh > \"${fpath[1]}/_sentryagent\"   (then: compinit)
  fish        sentryagent completions fish > ~/.config/fish/completions/sentryagent.fish
  elvish      echo 'eval (sentryagent completions elvish | slurp)' >> ~/.config/elvish/rc.elv
  powershell  sentryagent completions powershell >> $PROFILE";

/// The command tree with its examples, and the global options hidden from
/// every subcommand's help (they stay in the top-level help and in
/// `sentryagent help options`). Done before clap builds the tree: a
/// subcommand that already has an option of a global's id keeps its own
/// (here: the same option, hidden), and passes it on to its subcommands.
pub(crate) fn decorate(root: Command) -> Command {
    let hidden: Vec<clap::Arg> = root
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.clone().hide(true))
        .collect();
    let names: Vec<String> = root
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    names.into_iter().fold(root, |root, name| {
        root.mut_subcommand(&name, |sub| {
            let sub = if name == OPTIONS {
                sub
            } else {
                sub.args(hidden.iter().cloned())
            };
            with_help(sub, &name)
        })
    })
}

/// `command` (at `path`) and its subcommands with their examples and footers.
fn with_help(command: Command, path: &str) -> Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    let command = after_help(command, path);
    names.into_iter().fold(command, |command, name| {
        let path = format!("{path} {name}");
        command.mut_subcommand(&name, |sub| with_help(sub, &path))
    })
}

fn after_help(command: Command, path: &str) -> Command {
    let mut after = Vec::new();
    if let Some((_, examples)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        after.push(format!("Examples:\n{}", indent(examples)));
    }
    if path == "completions" {
        after.push(COMPLETIONS_INSTALL.to_owned());
    }
    if path != OPTIONS {
        after.push(GLOBAL_FOOTER.to_owned());
    }
    command.after_help(after.join("\n\n"))
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf command, by its path.
    fn leaves(command: &Command, path: &str, out: &mut Vec<String>) {
        let subs: Vec<&Command> = command
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() && !path.is_empty() {
            out.push(path.to_owned());
        }
        for sub in subs {
            let path = format!("{path} {}", sub.get_name());
            leaves(sub, path.trim_start(), out);
        }
    }

    #[test]
    fn every_command_has_examples_and_every_example_a_command() {
        let root = crate::command();
        let mut paths = Vec::new();
        leaves(&root, "", &mut paths);
        for path in &paths {
            assert!(
                EXAMPLES.iter().any(|(p, _)| p == path),
                "no example for `{path}`"
            );
        }
        for (path, _) in EXAMPLES {
            let words: Vec<&str> = path.split(' ').collect();
            let mut command = &root;
            for word in words {
                command = command
                    .find_subcommand(word)
                    .unwrap_or_else(|| panic!("`{path}` is not a command"));
            }
        }
    }
}
