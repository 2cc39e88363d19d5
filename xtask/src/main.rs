//! Project tasks: `cargo xtask codegen [--check]`, `cargo xtask validate-spec`,
//! `cargo xtask msrv`, `cargo xtask conformance`, `cargo xtask bench`.

mod bench;
// The generator build.rs runs, kept in the SDK's package so that it ships.
#[path = "../../src/codegen/mod.rs"]
mod codegen;
mod conformance;
mod msrv;
mod node;
mod pyenv;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: cargo xtask codegen [--check] | validate-spec | msrv | conformance | bench

  codegen          regenerate generated/ from openapi/agentidp.yaml
  codegen --check  exit 1 and print a diff if generated/ is out of date
  validate-spec    check openapi/agentidp.yaml with openapi-spec-validator, run
                   from .venv/ (created or updated from xtask/requirements.txt;
                   the base interpreter is python3, or $XTASK_PYTHON)
  msrv             exit 1 if a dependency in Cargo.lock declares a rust-version
                   (or edition) newer than the workspace's rust-version
  conformance [--max-examples N] [--seed N]
                   run Schemathesis (from .venv/) with openapi/agentidp.yaml
                   against the fake AgentIdP (examples/fake_server.rs) over
                   all 14 operations; exit 1 on any failure
  bench [--build-cost] [--quick]
                   run benches/ against a loopback server (and the Python
                   client from .venv/), print one Markdown table and write it
                   to BENCHMARKS.md; --build-cost adds two clean builds (slow),
                   --quick runs less and writes nothing";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen_write(),
        ["codegen", "--check"] => codegen_check(),
        ["validate-spec"] => validate_spec(),
        ["msrv"] => msrv_check(),
        ["conformance", rest @ ..] => conformance_run(rest),
        ["bench", rest @ ..] => bench::run(&root(), rest),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    // xtask lives one level below the workspace root. `cargo run` says where
    // at run time; the path baked in at build time is a fallback only, since
    // checkouts sharing one target directory share this binary.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    dir.join("..")
}

fn generate() -> Result<codegen::Generated, String> {
    let spec_path = root().join(codegen::SPEC_PATH);
    let spec = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    codegen::generate(&spec)
}

fn codegen_write() -> Result<ExitCode, String> {
    let dir = root().join("generated");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create generated/: {e}"))?;
    for (name, code) in generate()?.files {
        std::fs::write(dir.join(name), &code).map_err(|e| format!("cannot write {name}: {e}"))?;
        println!("wrote generated/{name} ({} lines)", code.lines().count());
    }
    Ok(ExitCode::SUCCESS)
}

fn codegen_check() -> Result<ExitCode, String> {
    let mut stale = 0;
    for (name, fresh) in generate()?.files {
        let path = root().join("generated").join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != fresh {
            stale += 1;
            let diff = similar::TextDiff::from_lines(&current, &fresh);
            print!(
                "{}",
                diff.unified_diff().context_radius(3).header(
                    &format!("generated/{name}"),
                    &format!("generated/{name} (from spec)")
                )
            );
        }
    }
    if stale == 0 {
        println!("generated/ is up to date with {}", codegen::SPEC_PATH);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {stale} file(s) in generated/ are out of date relative to {}; run `cargo xtask codegen`",
            codegen::SPEC_PATH
        );
        Ok(ExitCode::FAILURE)
    }
}

fn validate_spec() -> Result<ExitCode, String> {
    let root = root();
    let root = root.canonicalize().unwrap_or(root);
    let venv = pyenv::ensure(&root)?;
    let spec = root.join(codegen::SPEC_PATH);
    match validate::validate(&venv, &spec, &validate::log_path(&root)) {
        Ok(report) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Err(failure.to_string()),
    }
}

fn msrv_check() -> Result<ExitCode, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--all-features"])
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run `{cargo} metadata`: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{cargo} metadata` failed ({})", output.status));
    }
    let metadata = String::from_utf8(output.stdout)
        .map_err(|e| format!("`{cargo} metadata` printed invalid UTF-8: {e}"))?;
    let reports = msrv::check(&metadata)?;
    for report in &reports {
        println!("{report}");
    }
    if reports.iter().any(|r| !r.violations.is_empty()) {
        Err("some dependencies need a newer Rust than the workspace's rust-version".to_owned())
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn conformance_run(args: &[&str]) -> Result<ExitCode, String> {
    let options = conformance::Options::parse(args)?;
    let root = root();
    let root = root.canonicalize().unwrap_or(root);
    let venv = pyenv::ensure(&root)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let summary = conformance::run(&root, &venv, &target.join("conformance"), options)?;
    println!("{summary}");
    if summary.passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!(
            "the fake does not conform to {}; Schemathesis's reports are in {}",
            codegen::SPEC_PATH,
            target.join("conformance").display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let spec = std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap();
        assert_eq!(
            codegen::generate(&spec).unwrap(),
            codegen::generate(&spec).unwrap()
        );
    }

    #[test]
    fn a_spec_progenitor_cannot_take_names_the_operation() {
        let spec = std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap();
        // Mixing error schemas in one operation makes progenitor panic.
        let broken = spec.replacen(
            "        '401':\n          description: '`invalid_client`: unknown client id or wrong secret.'\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/TokenError'",
            "        '401':\n          description: '`invalid_client`: unknown client id or wrong secret.'\n          content:\n            application/json:\n              schema:\n                $ref: '#/components/schemas/ApiError'",
            1,
        );
        assert_ne!(broken, spec, "the test's edit must apply");
        let err = codegen::generate(&broken).unwrap_err();
        assert!(
            err.contains("operation `issue_token` (POST /token)"),
            "{err}"
        );
    }

    #[test]
    fn an_operation_without_replay_decision_is_refused() {
        let spec = std::fs::read_to_string(root().join(codegen::SPEC_PATH)).unwrap();
        let broken = spec.replacen("      operationId: get_agent\n", "      operationId: get_agent\n      x-removed: 1\n", 1)
            .replacen("      x-sentryagent-replay: always\n      security:\n        - oauth2: [agents:read]\n      responses:\n        '200':\n          description: The agent.", "      security:\n        - oauth2: [agents:read]\n      responses:\n        '200':\n          description: The agent.", 1);
        assert_ne!(broken, spec);
        let err = codegen::generate(&broken).unwrap_err();
        assert!(
            err.contains("`get_agent`") && err.contains("x-sentryagent-replay"),
            "{err}"
        );
    }
}
