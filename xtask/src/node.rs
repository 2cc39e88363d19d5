//! Node.js for the `cli` bench's upstream-shaped script
//! (`xtask/bench/node_cli.mjs`), which needs nothing but Node 18 or later
//! (its built-in `fetch`). A machine without Node gets Debian's `nodejs`
//! when `apt-get` can install it, as `.ci/run` installs redis-server.

use std::path::PathBuf;
use std::process::Command;

/// The oldest Node whose `fetch` the script relies on.
const MIN_MAJOR: u32 = 18;

/// The `node` to run, installing it when the machine has none.
pub fn ensure() -> Result<Option<PathBuf>, String> {
    if let Some(major) = major("node") {
        return if major >= MIN_MAJOR {
            Ok(Some(PathBuf::from("node")))
        } else {
            Err(format!(
                "the cli bench needs Node {MIN_MAJOR} or later; `node` is {major}"
            ))
        };
    }
    eprintln!("--> apt-get install nodejs (for the cli bench)");
    let installed = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    match major("node") {
        Some(major) if installed && major >= MIN_MAJOR => Ok(Some(PathBuf::from("node"))),
        _ => Err(format!(
            "the cli bench needs Node.js {MIN_MAJOR} or later, and it could not be installed; install it and run again"
        )),
    }
}

/// The major version `program --version` prints (`v20.1.0` → 20).
fn major(program: &str) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}
