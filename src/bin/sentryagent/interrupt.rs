//! Ctrl-C while a command waits on the network (a listing, `audit tail`):
//! it ends with 130 (128 + SIGINT, as shells report an interrupted
//! command) after clearing what it drew, rather than dying half-drawn or,
//! as `tail --follow` did, ending with 0. Commands that never install the
//! handler die by the signal itself, which shells report as 130 too.

use std::io::IsTerminal;

use crate::failure::{CliError, INTERRUPTED};

/// Runs `work` to its end, or until Ctrl-C: then `CliError::Exit(130)`.
pub(crate) async fn or_exit<T>(work: impl Future<Output = T>) -> Result<T, CliError> {
    tokio::select! {
        done = work => Ok(done),
        () = ctrl_c() => {
            // The terminal echoed `^C`; the shell's prompt goes on the next line.
            if std::io::stderr().is_terminal() {
                eprintln!();
            }
            Err(CliError::Exit(INTERRUPTED))
        }
    }
}

/// Resolves at Ctrl-C; never where it cannot be watched.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
