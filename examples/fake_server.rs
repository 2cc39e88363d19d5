//! Runs the fake AgentIdP (`sentryagent_idp::testing::FakeAgentIdp`) as a
//! process, for other tools and for trying the API by hand.
//!
//! ```sh
//! cargo run --example fake_server --features testing
//! cargo run --example fake_server --features testing -- --port 3000
//! ```
//!
//! Once it listens, it prints exactly one line to stdout, a JSON object with
//! `base_url` (the origin, what the SDK takes), `api_url` (`base_url` +
//! `/api/v1`), `client_id`, `client_secret` and `bootstrap_agent_id`: the
//! credentials of the bootstrap agent, which holds all four scopes. Everything
//! else goes to stderr.
//!
//! It serves until the first of:
//! - its stdin reaches end-of-file, when stdin is a pipe (so a parent process
//!   that dies or closes the pipe takes the server down with it); a terminal
//!   or `/dev/null` as stdin is not watched;
//! - Ctrl-C, or the process being killed;
//! - `--max-lifetime SECS` seconds (default 1800), so that a forgotten server
//!   does not run for ever.
//!
//! Options: `--port N` (default: `$FAKE_AGENTIDP_PORT`, else a port the OS
//! picks) and `--max-lifetime SECS`. It only ever listens on 127.0.0.1.

use std::io::Write;
use std::time::Duration;

use secrecy::ExposeSecret;
use sentryagent_idp::testing::FakeAgentIdp;

/// The environment variable naming the port, when `--port` is not given.
const PORT_ENV: &str = "FAKE_AGENTIDP_PORT";

/// How long the server runs at most, unless `--max-lifetime` says otherwise.
const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

const USAGE: &str = "usage: fake_server [--port N] [--max-lifetime SECS]

Runs the fake AgentIdP on 127.0.0.1 and prints one JSON line with base_url,
api_url, client_id, client_secret and bootstrap_agent_id. Stops when stdin (a
pipe) closes, on Ctrl-C, or after --max-lifetime seconds (default 1800).
The port defaults to $FAKE_AGENTIDP_PORT, else one the OS picks.";

/// The command line, parsed.
struct Options {
    port: u16,
    max_lifetime: Duration,
}

fn parse_options() -> Result<Options, String> {
    let mut port = match std::env::var(PORT_ENV) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{PORT_ENV}={value} is not a port number"))?,
        Err(_) => 0,
    };
    let mut max_lifetime = DEFAULT_MAX_LIFETIME;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--port" => {
                let value = value()?;
                port = value
                    .parse()
                    .map_err(|_| format!("--port {value} is not a port number"))?;
            }
            "--max-lifetime" => {
                let value = value()?;
                let secs: u64 = value
                    .parse()
                    .map_err(|_| format!("--max-lifetime {value} is not a number of seconds"))?;
                max_lifetime = Duration::from_secs(secs);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Options { port, max_lifetime })
}

/// Whether stdin is a pipe (or socket) whose end-of-file should stop the server.
#[cfg(unix)]
fn stdin_is_pipe() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| meta.file_type().is_fifo() || meta.file_type().is_socket())
}

/// Whether stdin is a pipe (or socket) whose end-of-file should stop the server.
#[cfg(not(unix))]
fn stdin_is_pipe() -> bool {
    use std::io::IsTerminal;
    !std::io::stdin().is_terminal()
}

/// Resolves once stdin reaches end-of-file (or fails). Reads on a plain
/// thread, which, unlike Tokio's blocking pool, does not hold up the exit.
async fn stdin_closed() {
    let (done, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Whatever is written to stdin is ignored; only its end matters.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = done.send(());
    });
    // An error only means the reader thread is gone, which is end-of-file too.
    let _ = closed.await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if message.is_empty() { 0 } else { 2 });
        }
    };
    let fake = FakeAgentIdp::builder().port(options.port).start().await?;

    // The bootstrap secret is a throwaway credential of this in-memory test
    // fake, made up at start and gone when the process ends; printing it is
    // how other tools get to log in. It is no secret of any real server.
    let line = serde_json::json!({
        "base_url": fake.base_url(),
        "api_url": fake.api_url(),
        "client_id": fake.client_id(),
        "client_secret": fake.client_secret().expose_secret(),
        "bootstrap_agent_id": fake.bootstrap_agent_id(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    drop(stdout);

    let watch_stdin = stdin_is_pipe();
    eprintln!(
        "fake AgentIdP listening on {} (stops {}on Ctrl-C, or after {} s)",
        fake.api_url(),
        if watch_stdin {
            "when stdin closes, "
        } else {
            ""
        },
        options.max_lifetime.as_secs()
    );

    let stdin_eof = async {
        if watch_stdin {
            stdin_closed().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let interrupted = async {
        // Without a signal handler, Ctrl-C simply ends the process.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let reason = tokio::select! {
        () = stdin_eof => "stdin closed",
        () = interrupted => "interrupted",
        () = tokio::time::sleep(options.max_lifetime) => "maximum lifetime reached",
    };
    eprintln!("fake AgentIdP stopping: {reason}");
    fake.shutdown().await;
    Ok(())
}
