//! Runs progenitor over `openapi/agentidp.yaml` into `OUT_DIR`.
//!
//! The generation function is shared with `cargo xtask codegen`, which writes the
//! same files to `generated/` for review; a test checks they are identical.

#[path = "src/codegen/mod.rs"]
mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed={}", codegen::SPEC_PATH);
    println!("cargo::rerun-if-changed=src/codegen");
    let (Some(out), Ok(spec)) = (
        std::env::var_os("OUT_DIR").map(PathBuf::from),
        std::fs::read_to_string(codegen::SPEC_PATH),
    ) else {
        println!("cargo::error=cannot read {} or OUT_DIR", codegen::SPEC_PATH);
        return ExitCode::FAILURE;
    };
    match codegen::generate(&spec) {
        Ok(generated) => {
            for (name, code) in generated.files {
                if let Err(e) = std::fs::write(out.join(name), code) {
                    println!("cargo::error=cannot write {name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("cargo::error={message}");
            ExitCode::FAILURE
        }
    }
}
