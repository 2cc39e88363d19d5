//! The session a command that talks to AgentIdP opens: the client for the
//! settings, the printer and the confirmation policy. Above both `args` (the
//! flags) and `config` (what they resolve to), so that neither imports the
//! other's caller.

use sentryagent_idp::Client;

use crate::args::Global;
use crate::config;
use crate::failure::CliError;
use crate::output::Printer;

/// What a command that talks to AgentIdP works with.
#[derive(Debug)]
pub(crate) struct Session {
    pub client: Client,
    pub out: Printer,
    pub yes: bool,
}

impl Session {
    /// A client for the settings the flags resolve to, with the token cached
    /// across commands unless `--no-token-cache`.
    pub fn open(global: &Global) -> Result<Session, CliError> {
        let client = config::resolve(global)?.client(!global.no_token_cache)?;
        Ok(Session {
            client,
            out: global.printer(),
            yes: global.yes,
        })
    }
}
