//! `cargo xtask bench --build-cost`: what a clean build of the crate costs,
//! and how much of it progenitor in build.rs adds.
//!
//! Two clean `cargo build -p sentryagent-idp --timings`, each in a scratch
//! target directory under `target/xtask-bench/`:
//! - the crate as shipped;
//! - a scratch copy of the repository whose `build.rs` only copies the
//!   checked-in `generated/*.rs` (identical to what progenitor writes; CI's
//!   `cargo xtask codegen --check` guarantees it) into `OUT_DIR`, and whose
//!   manifest has no `[build-dependencies]`.
//!
//! The shipped crate is not touched. The wall-clock difference is the share;
//! cargo's `--timings` report (`UNIT_DATA` in the HTML) names the units only
//! the shipped build compiles, and the build script's own compile and run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Build-cost rows of the table start with this (so a later run without
/// `--build-cost` can keep them).
pub const ROW_PREFIX: &str = "| 6";

/// How long one clean build may take.
const BUILD_LIMIT: Duration = Duration::from_secs(45 * 60);

/// Directory-copy limits (the repository is small; these only bound the walk).
const MAX_DEPTH: usize = 16;
const MAX_ENTRIES: usize = 50_000;

/// Directories not copied into the variant.
const SKIP: [&str; 4] = ["target", ".git", ".venv", "fuzz"];

/// The build script of the variant: copy the checked-in bindings.
const VARIANT_BUILD_RS: &str = r#"//! Bench variant (cargo xtask bench --build-cost): no progenitor, copies generated/.
fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    for entry in std::fs::read_dir("generated").expect("generated/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            std::fs::copy(&path, out.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}
"#;

/// One unit of cargo's timings report.
#[derive(Debug, Clone)]
struct Unit {
    name: String,
    version: String,
    mode: String,
    target: String,
    features: String,
    duration: f64,
}

impl Unit {
    fn key(&self) -> (String, String, String, String) {
        (
            self.name.clone(),
            self.version.clone(),
            self.target.clone(),
            self.features.clone(),
        )
    }
}

/// What the two builds showed.
#[derive(Debug)]
pub struct BuildCost {
    normal_s: f64,
    variant_s: f64,
    normal_units: usize,
    script_compile_s: f64,
    script_run_s: f64,
    only_normal: Vec<(String, f64)>,
    date: String,
}

impl BuildCost {
    /// The table rows (each starting with [`ROW_PREFIX`]).
    pub fn rows(&self) -> Vec<String> {
        let saved = self.normal_s - self.variant_s;
        let only_sum: f64 = self.only_normal.iter().map(|(_, s)| s).sum();
        let largest: Vec<String> = self
            .only_normal
            .iter()
            .take(6)
            .map(|(name, s)| format!("{name} {s:.1} s"))
            .collect();
        vec![
            format!(
                "| 6a | Build cost: clean `cargo build -p sentryagent-idp` (dev profile, default features, 2 jobs), the crate and all its dependencies (measured {}) | **{:.0} s** wall, {} units | (reported) | — |",
                self.date, self.normal_s, self.normal_units
            ),
            format!(
                "| 6b | Build cost: share of progenitor in build.rs: the same clean build with build.rs copying `generated/` and no build-dependencies (measured {}) | {:.0} s, so progenitor adds **{:.0} s = {:.0}%** of the clean build. Units only the shipped build compiles: {} ({:.0} s of compile time, largest: {}); its build script: compile {:.1} s, run {:.1} s | (reported) | — |",
                self.date,
                self.variant_s,
                saved,
                100.0 * saved / self.normal_s,
                self.only_normal.len(),
                only_sum,
                largest.join(", "),
                self.script_compile_s,
                self.script_run_s,
            ),
        ]
    }
}

/// Runs both clean builds and compares them.
pub fn measure(root: &Path) -> Result<BuildCost, String> {
    let scratch = root.join("target").join("xtask-bench").join("build-cost");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)
            .map_err(|e| format!("cannot clear {}: {e}", scratch.display()))?;
    }
    fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;

    let variant = scratch.join("variant");
    copy_tree(root, &variant)?;
    make_variant(&variant)?;

    eprintln!("==> clean build, as shipped (this takes minutes)");
    let normal_target = scratch.join("target-normal");
    let normal_s = timed_build(root, &normal_target)?;
    let normal = units(&normal_target)?;
    eprintln!("==> clean build, progenitor replaced by a copy of generated/");
    let variant_target = scratch.join("target-variant");
    let variant_s = timed_build(&variant, &variant_target)?;
    let variant_units = units(&variant_target)?;

    let in_variant: std::collections::HashSet<_> = variant_units.iter().map(Unit::key).collect();
    let mut only_normal: Vec<(String, f64)> = normal
        .iter()
        .filter(|u| !in_variant.contains(&u.key()))
        .map(|u| (label(u), u.duration))
        .collect();
    only_normal.sort_by(|a, b| b.1.total_cmp(&a.1));
    let script = |run: bool| {
        normal
            .iter()
            .filter(|u| u.name == "sentryagent-idp" && u.target.contains("build-script"))
            .filter(|u| (u.mode == "run-custom-build") == run)
            .map(|u| u.duration)
            .sum::<f64>()
    };
    let cost = BuildCost {
        normal_s,
        variant_s,
        normal_units: normal.len(),
        script_compile_s: script(false),
        script_run_s: script(true),
        only_normal,
        date: super::today(),
    };
    // The scratch builds are large; keep only their timing reports.
    for (target, name) in [(&normal_target, "normal"), (&variant_target, "variant")] {
        let report = target.join("cargo-timings").join("cargo-timing.html");
        let _ = fs::copy(&report, scratch.join(format!("cargo-timing-{name}.html")));
        let _ = fs::remove_dir_all(target);
    }
    let _ = fs::remove_dir_all(&variant);
    Ok(cost)
}

/// `name v1.2.3 (target)` for a unit.
fn label(unit: &Unit) -> String {
    let target = unit.target.trim();
    if target.is_empty() || target.contains("lib") {
        unit.name.clone()
    } else {
        format!("{} ({})", unit.name, target.replace('"', ""))
    }
}

/// `cargo build -p sentryagent-idp --timings` in `dir` into `target`; returns
/// the wall time in seconds.
fn timed_build(dir: &Path, target: &Path) -> Result<f64, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["build", "-p", "sentryagent-idp", "--timings"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(dir);
    let started = Instant::now();
    super::run_limited(command, BUILD_LIMIT, "cargo build --timings")?;
    Ok(started.elapsed().as_secs_f64())
}

/// The units of the timings report under `target`.
fn units(target: &Path) -> Result<Vec<Unit>, String> {
    let path = target.join("cargo-timings").join("cargo-timing.html");
    let html =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_units(&html).ok_or_else(|| format!("no UNIT_DATA in {}", path.display()))
}

/// Parses `const UNIT_DATA = [...];` out of cargo's timings HTML.
fn parse_units(html: &str) -> Option<Vec<Unit>> {
    let start = html.find("const UNIT_DATA = ")? + "const UNIT_DATA = ".len();
    let rest = &html[start..];
    let end = rest.find("\n];")? + 2;
    let data: Value = serde_json::from_str(&rest[..end]).ok()?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    Some(
        data.as_array()?
            .iter()
            .map(|u| Unit {
                name: text(&u["name"]),
                version: text(&u["version"]),
                mode: text(&u["mode"]),
                target: text(&u["target"]),
                features: u["features"].to_string(),
                duration: u["duration"].as_f64().unwrap_or(0.0),
            })
            .collect(),
    )
}

/// Copies the repository at `from` to `to`, leaving out build outputs and VCS data.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let mut stack: Vec<(PathBuf, PathBuf, usize)> = vec![(from.to_path_buf(), to.to_path_buf(), 0)];
    let mut entries = 0usize;
    while let Some((src, dst, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(format!("{} is nested too deeply to copy", src.display()));
        }
        fs::create_dir_all(&dst).map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
        let listing =
            fs::read_dir(&src).map_err(|e| format!("cannot list {}: {e}", src.display()))?;
        for entry in listing {
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(format!(
                    "more than {MAX_ENTRIES} files to copy from {}",
                    from.display()
                ));
            }
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", src.display()))?;
            let name = entry.file_name();
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
            if kind.is_dir() {
                if !SKIP.iter().any(|s| name == *s) {
                    stack.push((path, dst.join(&name), depth + 1));
                }
            } else if kind.is_file() {
                fs::copy(&path, dst.join(&name))
                    .map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Turns the copy at `dir` into the variant: build.rs copies `generated/`,
/// and the manifest has no `[build-dependencies]`.
fn make_variant(dir: &Path) -> Result<(), String> {
    let build_rs = dir.join("build.rs");
    fs::write(&build_rs, VARIANT_BUILD_RS)
        .map_err(|e| format!("cannot write {}: {e}", build_rs.display()))?;
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let stripped = strip_table(&text, "[build-dependencies]");
    if stripped == text {
        return Err("the manifest has no [build-dependencies] table to remove".to_owned());
    }
    fs::write(&manifest, stripped).map_err(|e| format!("cannot write {}: {e}", manifest.display()))
}

/// `manifest` without the table headed `header` (up to the next table).
fn strip_table(manifest: &str, header: &str) -> String {
    let mut out = String::with_capacity(manifest.len());
    let mut skipping = false;
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            skipping = trimmed == header;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_one_table() {
        let manifest = "[package]\nname = \"x\"\n\n[build-dependencies]\nprogenitor = \"1\"\n\n[features]\na = []\n";
        assert_eq!(
            strip_table(manifest, "[build-dependencies]"),
            "[package]\nname = \"x\"\n\n[features]\na = []\n"
        );
    }

    #[test]
    fn parses_cargo_timings() {
        let html = "<script>\nconst UNIT_DATA = [\n  {\"i\": 1, \"name\": \"tt\", \"version\": \"0.1.0\", \"mode\": \"run-custom-build\", \"target\": \" build-script (run)\", \"features\": [], \"start\": 0.1, \"duration\": 0.25}\n];\nconst CONCURRENCY_DATA = [\n];\n";
        let units = parse_units(html).unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].mode, "run-custom-build");
        assert!((units[0].duration - 0.25).abs() < 1e-9);
    }
}
