//! `cargo xtask validate-spec`: checks the OpenAPI document with the pinned
//! `openapi-spec-validator` from the project's venv.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::pyenv::Venv;

/// The validator's executable in the venv.
pub const VALIDATOR: &str = "openapi-spec-validator";

/// At most this many lines of the validator's output are printed; the rest
/// goes to a log file.
const MAX_PRINTED_LINES: usize = 40;

/// Why a spec was not accepted.
#[derive(Debug)]
pub enum Failure {
    /// The validator ran and rejected the spec; carries its message.
    Invalid(String),
    /// The validator could not be run at all.
    CannotRun(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Invalid(message) => write!(f, "the OpenAPI document is invalid:\n{message}"),
            Failure::CannotRun(message) => f.write_str(message),
        }
    }
}

/// Runs the validator on `spec`. On success returns its report (such as
/// `openapi/agentidp.yaml: OK`). When it rejects the spec, its output is
/// returned in [`Failure::Invalid`]; if that output is long, only its
/// unindented lines (the error headlines) are kept and the whole output is
/// written to `full_log`, whose path the message names.
pub fn validate(venv: &Venv, spec: &Path, full_log: &Path) -> Result<String, Failure> {
    let program = venv.bin(VALIDATOR);
    let output = venv
        .command(VALIDATOR)
        .args(["--validation-errors", "all"])
        .arg(spec)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::CannotRun(format!("cannot run {}: {e}", program.display())))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let text = text.trim_end().to_owned();
    if output.status.success() {
        return Ok(text);
    }
    if text.is_empty() {
        return Err(Failure::Invalid(format!(
            "{} exited with {} and printed nothing",
            program.display(),
            output.status
        )));
    }
    Err(Failure::Invalid(shorten(&text, full_log)))
}

/// `text` itself if it is short; otherwise its headlines and where the whole
/// of it was written.
fn shorten(text: &str, full_log: &Path) -> String {
    if text.lines().count() <= MAX_PRINTED_LINES {
        return text.to_owned();
    }
    let headlines: Vec<&str> = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
        .take(MAX_PRINTED_LINES)
        .collect();
    let mut message = headlines.join("\n");
    let written = full_log
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(full_log, text));
    match written {
        Ok(()) => message.push_str(&format!(
            "\n(the validator's full output, {} lines, is in {})",
            text.lines().count(),
            full_log.display()
        )),
        Err(e) => message.push_str(&format!(
            "\n(the validator's full output could not be written to {}: {e})",
            full_log.display()
        )),
    }
    message
}

/// Where `validate-spec` writes the validator's full output when it is long.
pub fn log_path(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("xtask").join("validate-spec.log")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codegen, pyenv, root};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Needs the venv: the first run creates it (PyPI access).
    #[test]
    fn the_validator_accepts_the_spec_and_rejects_a_broken_copy() {
        let venv = pyenv::ensure(&root()).unwrap();
        let spec_path = root().join(codegen::SPEC_PATH);
        let dir = scratch("validate");
        let log = dir.join("full.log");

        let report = validate(&venv, &spec_path, &log).unwrap();
        assert!(report.ends_with("OK"), "{report}");

        let spec = std::fs::read_to_string(&spec_path).unwrap();
        // A field OpenAPI does not define on an operation, and a path
        // parameter that is not declared.
        let broken = spec
            .replacen(
                "      operationId: get_agent\n",
                "      operationId: get_agent\n      notAnOpenApiField: 1\n",
                1,
            )
            .replacen(
                "\n  /agents/{agentId}:\n",
                "\n  /agents/{agentId}/{undeclared}:\n",
                1,
            );
        assert_ne!(broken, spec, "the test's edits must apply");
        let broken_path = dir.join("broken.yaml");
        std::fs::write(&broken_path, broken).unwrap();

        match validate(&venv, &broken_path, &log) {
            Err(Failure::Invalid(message)) => {
                assert!(message.contains("notAnOpenApiField"), "{message}");
                assert!(message.contains("Path parameter 'undeclared'"), "{message}");
                assert!(message.contains("Validation Error"), "{message}");
            }
            other => panic!("expected the broken spec to be rejected, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_output_keeps_the_headlines_and_logs_the_rest() {
        let dir = scratch("shorten");
        let log = dir.join("sub").join("full.log");
        let mut text = String::from("spec.yaml: Validation Error: [1] bad\n\nOn instance:\n");
        for i in 0..100 {
            text.push_str(&format!("    detail {i}\n"));
        }
        text.push_str("spec.yaml: 1 validation errors found");
        let short = shorten(&text, &log);
        assert!(short.starts_with("spec.yaml: Validation Error: [1] bad\nOn instance:\nspec.yaml: 1 validation errors found\n"), "{short}");
        assert!(!short.contains("detail"), "{short}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
        assert_eq!(shorten("a\n  b", &log), "a\n  b");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
