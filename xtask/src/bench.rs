//! `cargo xtask bench`: builds the benchmarks in `benches/`, runs each in its
//! report mode against its fast loopback server, runs the Python client from
//! the project's venv, prints one Markdown table and writes it, with the
//! machine described, to `BENCHMARKS.md`.
//!
//! Every child process runs under a time limit and is killed (by its handle)
//! when it overruns; every wait loop is bounded.

#[path = "bench_build.rs"]
mod build_cost;

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::pyenv;

/// The bench targets, in the order they run.
const BENCHES: [&str; 9] = [
    "facade_overhead",
    "single_flight",
    "refresh_stall",
    "throughput",
    "peak_rss",
    "verify_overhead",
    "present_overhead",
    "fleet",
    "cli",
];

/// The features the benches' `required-features` need.
const BENCH_FEATURES: &str = "testing,axum,reqwest-middleware,redis,cli";

/// The line prefix a bench prints before its JSON report.
const REPORT_PREFIX: &str = "BENCH-REPORT ";

/// The report file, relative to the repository root.
const REPORT_FILE: &str = "BENCHMARKS.md";

/// The heading of the hand-measured section at the end of `BENCHMARKS.md`
/// (a user's clean build of the published crate, issue 22): kept as it is
/// when the file is rewritten.
const BY_HAND_HEADING: &str = "## A user's clean build";

/// The Python client, relative to the repository root.
const PYTHON_CLIENT: &str = "xtask/bench/python_client.py";

/// How long building the benches may take.
const BUILD_LIMIT: Duration = Duration::from_secs(45 * 60);

/// How long one bench may run.
const RUN_LIMIT: Duration = Duration::from_secs(10 * 60);

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    build_cost: bool,
    quick: bool,
}

/// Runs `cargo xtask bench [--build-cost] [--quick]`.
pub fn run(root: &Path, args: &[&str]) -> Result<ExitCode, String> {
    let root = &root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut options = Options::default();
    for arg in args {
        match *arg {
            "--build-cost" => options.build_cost = true,
            "--quick" => options.quick = true,
            other => return Err(format!("unknown bench option `{other}`")),
        }
    }
    let machine = Machine::read(root);
    let venv = pyenv::ensure(root)?;
    let node = crate::node::ensure()?;
    let executables = build_benches(root)?;
    let python = venv.python();
    let script = root.join(PYTHON_CLIENT);
    let mut reports = Vec::new();
    for bench in BENCHES {
        let exe = executables
            .iter()
            .find(|(name, _)| name == bench)
            .map(|(_, path)| path)
            .ok_or_else(|| format!("cargo built no executable for bench `{bench}`"))?;
        let mut command = Command::new(exe);
        command.arg("--report").current_dir(root);
        command.args(bench_args(
            bench,
            options,
            &python,
            &script,
            node.as_deref(),
        ));
        eprintln!("==> {bench}");
        let started = Instant::now();
        let report = run_report(command, bench)?;
        eprintln!(
            "<== {bench} done in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        reports.push(report);
    }
    let previous = std::fs::read_to_string(root.join(REPORT_FILE)).unwrap_or_default();
    let build = if options.build_cost {
        Some(build_cost::measure(root)?)
    } else {
        None
    };
    let python_version = python_version(&python);
    let (table, notes) = table(&reports, build.as_ref(), &previous)?;
    println!("{}", machine.markdown(&python_version));
    println!("{table}");
    for note in &notes {
        println!("{note}");
    }
    if options.quick {
        eprintln!("--quick: {REPORT_FILE} left as it was");
    } else {
        let path = root.join(REPORT_FILE);
        let mut text = document(&machine, &python_version, &table, &notes);
        if let Some(start) = previous.find(BY_HAND_HEADING) {
            text.push('\n');
            text.push_str(&previous[start..]);
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments of one bench's report mode.
fn bench_args(
    bench: &str,
    options: Options,
    python: &Path,
    script: &Path,
    node: Option<&Path>,
) -> Vec<String> {
    let quick = |full: &str, short: &str| {
        if options.quick {
            short.to_owned()
        } else {
            full.to_owned()
        }
    };
    match bench {
        "facade_overhead" => vec!["--pairs".into(), quick("20000", "2000")],
        "single_flight" => vec!["--trials".into(), quick("5", "2")],
        "refresh_stall" => vec!["--seconds".into(), quick("12", "4")],
        "throughput" => vec![
            "--requests".into(),
            quick("40000", "5000"),
            "--python-requests".into(),
            quick("4000", "500"),
            "--python".into(),
            python.display().to_string(),
            "--python-script".into(),
            script.display().to_string(),
        ],
        "peak_rss" => vec!["--calls".into(), "10000".into()],
        "verify_overhead" => vec![
            "--pairs".into(),
            quick("5000", "1000"),
            "--tokens".into(),
            quick("2000", "500"),
            "--trials".into(),
            quick("5", "2"),
        ],
        "present_overhead" => vec!["--pairs".into(), quick("20000", "2000")],
        "fleet" => vec![
            "--processes".into(),
            quick("50", "10"),
            "--token-processes".into(),
            quick("200", "20"),
            "--pairs".into(),
            quick("20000", "2000"),
        ],
        "cli" => {
            let mut args = vec!["--runs".into(), quick("60", "10")];
            if let Some(node) = node {
                args.extend(["--node".into(), node.display().to_string()]);
            }
            args
        }
        _ => vec![],
    }
}

/// `cargo bench --no-run` for the bench targets; returns (name, executable).
fn build_benches(root: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command
        .args([
            "bench",
            "-p",
            "sentryagent-idp",
            "--no-run",
            "--features",
            BENCH_FEATURES,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root);
    for bench in BENCHES {
        command.args(["--bench", bench]);
    }
    eprintln!("==> cargo bench --no-run (release build of the benches)");
    let output = run_limited(command, BUILD_LIMIT, "cargo bench --no-run")?;
    let mut found = Vec::new();
    for line in output.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bench = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"));
        if let (true, Some(name), Some(exe)) = (
            is_bench,
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            found.push((name.to_owned(), PathBuf::from(exe)));
        }
    }
    Ok(found)
}

/// Runs `command`, with [`RUN_LIMIT`], and parses its report line.
fn run_report(command: Command, what: &str) -> Result<Value, String> {
    let stdout = run_limited(command, RUN_LIMIT, what)?;
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(REPORT_PREFIX))
        .ok_or_else(|| format!("{what} printed no report line"))?;
    serde_json::from_str(line).map_err(|e| format!("{what} printed a bad report: {e}"))
}

/// Runs `command` (stderr passed through) for at most `limit`, killing it
/// when it overruns, and returns its standard output.
pub(crate) fn run_limited(
    mut command: Command,
    limit: Duration,
    what: &str,
) -> Result<String, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let mut pipe = child
        .stdout
        .take()
        .ok_or_else(|| format!("no stdout from {what}"))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{what} ran over its {}s limit and was stopped",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {what}: {e}")),
        }
    };
    let stdout = reader
        .join()
        .map_err(|_| format!("reading the output of {what} failed"))?
        .map_err(|e| format!("cannot read the output of {what}: {e}"))?;
    if !status.success() {
        return Err(format!("{what} failed ({status})"));
    }
    Ok(stdout)
}

/// The venv interpreter's version and httpx's, e.g. `Python 3.11.7, httpx 0.28.1`.
fn python_version(python: &Path) -> String {
    let output = Command::new(python)
        .args([
            "-c",
            "import sys, httpx; print(f'Python {sys.version.split()[0]}, httpx {httpx.__version__}')",
        ])
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "Python (version unknown)".to_owned(),
    }
}

/// The machine the figures were taken on.
struct Machine {
    cpu: String,
    cores: String,
    memory: String,
    rustc: String,
    kernel: String,
    date: String,
}

impl Machine {
    fn read(root: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism()
            .map_or_else(|_| "unknown".to_owned(), |n| n.to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        let rustc = Command::new(rustc)
            .arg("--version")
            .current_dir(root)
            .stdin(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map_or_else(
                || "unknown".to_owned(),
                |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
            );
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        Machine {
            cpu,
            cores,
            memory,
            rustc,
            kernel,
            date: today(),
        }
    }

    fn markdown(&self, python: &str) -> String {
        format!(
            "Machine: {} cores (nproc), CPU `{}` (/proc/cpuinfo), {} memory, Linux {}; {}; {}; measured {} (UTC). Shared and noisy: latencies vary from run to run, instruction counts (callgrind) do not.",
            self.cores, self.cpu, self.memory, self.kernel, self.rustc, python, self.date
        )
    }
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a (year, month, day) date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The report of `bench` among `reports`.
fn find<'a>(reports: &'a [Value], bench: &str) -> Result<&'a Value, String> {
    reports
        .iter()
        .find(|r| r["bench"] == bench)
        .ok_or_else(|| format!("no report from {bench}"))
}

/// A number from a report.
fn num(value: &Value, path: &[&str]) -> Result<f64, String> {
    let mut at = value;
    for key in path {
        at = &at[*key];
    }
    at.as_f64()
        .ok_or_else(|| format!("report field {} is missing", path.join(".")))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The Markdown table of every figure, and a note for each missed target.
fn table(
    reports: &[Value],
    build: Option<&build_cost::BuildCost>,
    previous: &str,
) -> Result<(String, Vec<String>), String> {
    let mut notes = Vec::new();
    let mut t =
        String::from("| # | Measurement | Result | Target | Verdict |\n|---|---|---|---|---|\n");
    let mut row = |cells: [&str; 5]| {
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    };

    let f = find(reports, "facade_overhead")?;
    let (fm, rm) = (
        num(f, &["facade", "median_us"])?,
        num(f, &["raw", "median_us"])?,
    );
    let (fp, rp) = (num(f, &["facade", "p99_us"])?, num(f, &["raw", "p99_us"])?);
    let (median_ratio, p99_ratio) = (fm / rm, fp / rp);
    let pairs = num(f, &["facade", "calls"])?;
    if median_ratio > 1.05 || p99_ratio > 1.10 {
        notes.push(
            "- Facade overhead (1a/1b): the difference is client CPU work. Count it without the noise: `valgrind --tool=callgrind <facade_overhead bench executable> --callgrind facade --calls N` (and `raw`), for two values of N; instructions per call = difference / difference in N.".to_owned(),
        );
    }
    row([
        "1a",
        &format!(
            "Facade overhead, median latency of `GET /api/v1/agents/{{id}}`: facade vs hand-written reqwest with a fixed token ({pairs:.0} interleaved pairs, same server and pool)"
        ),
        &format!("{fm:.1} µs vs {rm:.1} µs = **{median_ratio:.3}×**"),
        "≤ 1.05×",
        verdict(median_ratio <= 1.05),
    ]);
    row([
        "1b",
        "Facade overhead, p99 latency (same run)",
        &format!("{fp:.1} µs vs {rp:.1} µs = **{p99_ratio:.3}×**"),
        "≤ 1.10×",
        verdict(p99_ratio <= 1.10),
    ]);
    row([
        "1c",
        "Allocations per call, client thread (counting global allocator)",
        &format!(
            "facade {:.0} ({:.1} KiB) vs reqwest {:.0} ({:.1} KiB)",
            num(f, &["facade", "allocs_per_call"])?,
            num(f, &["facade", "bytes_per_call"])? / 1024.0,
            num(f, &["raw", "allocs_per_call"])?,
            num(f, &["raw", "bytes_per_call"])? / 1024.0,
        ),
        "(reported)",
        "—",
    ]);

    match f.get("instructions_per_call").filter(|v| v.is_object()) {
        Some(counts) => {
            let (fi, gi, ri) = (
                num(counts, &["facade"])?,
                num(counts, &["generated"])?,
                num(counts, &["raw"])?,
            );
            row([
                "1d",
                "Client instructions per call (callgrind, exact): the facade vs the same request built and decoded the way the generated code does it (`GeneratedShape`: `encode_path`, `api-version` and `Accept` headers, header copy into the answer), i.e. the seam's own cost",
                &format!("{fi:.0} vs {gi:.0} = **{:.3}×**", fi / gi),
                "≤ 1.05×",
                verdict(fi / gi <= 1.05),
            ]);
            row([
                "1e",
                "Client instructions per call: the facade vs hand-written reqwest with a fixed token (the seam plus what remains inside the generated code)",
                &format!(
                    "{fi:.0} vs {ri:.0} = **{:.3}×**; of the {:.0} more, {:.0} are the generated code's (`GeneratedShape` vs reqwest) and {:.0} the seam's",
                    fi / ri,
                    fi - ri,
                    gi - ri,
                    fi - gi
                ),
                "(reported)",
                "—",
            ]);
        }
        None => notes
            .push("- Instruction counts (1d/1e) need valgrind, which is not installed.".to_owned()),
    }

    let s = find(reports, "single_flight")?;
    let tokens: Vec<u64> = s["fast_token"]["token_requests_per_burst"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            s["slow_token"]["token_requests_per_burst"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(Value::as_u64)
        .collect();
    let all_one = !tokens.is_empty() && tokens.iter().all(|&n| n == 1);
    row([
        "2a",
        "Single-flight: token requests the server saw per burst of 1,000 concurrent calls on a cold cache (token endpoint at once, then 100 ms)",
        &format!(
            "**{}** in each of {} bursts",
            if all_one {
                "1".to_owned()
            } else {
                format!("{tokens:?}")
            },
            tokens.len()
        ),
        "exactly 1",
        verdict(all_one),
    ]);
    row([
        "2b",
        "Single-flight: time to the last of the 1,000 responses vs one cold call (medians)",
        &format!(
            "{:.1} ms vs {:.2} ms = **{:.0}×** (1,000 new connections); the same burst with the token already cached: {:.1} ms ({:.2}×); through hand-written reqwest on a new pool: {:.1} ms ({:.2}×). With a 100 ms token endpoint: {:.1} ms vs {:.1} ms = {:.2}×",
            num(s, &["fast_token", "cold_burst_ms"])?,
            num(s, &["fast_token", "one_cold_call_ms"])?,
            num(s, &["fast_token", "cold_burst_vs_one_cold_call"])?,
            num(s, &["fast_token", "warm_burst_ms"])?,
            num(s, &["fast_token", "cold_burst_vs_warm_burst"])?,
            num(s, &["fast_token", "raw_burst_ms"])?,
            num(s, &["fast_token", "cold_burst_vs_raw_burst"])?,
            num(s, &["slow_token", "cold_burst_ms"])?,
            num(s, &["slow_token", "one_cold_call_ms"])?,
            num(s, &["slow_token", "cold_burst_vs_one_cold_call"])?,
        ),
        "(reported)",
        "—",
    ]);

    let r = find(reports, "refresh_stall")?;
    let refresh_ratio = num(r, &["p99_ratio"])?;
    let waited = num(r, &["calls_over_400ms"])?;
    row([
        "3a",
        &format!(
            "Refresh stalls: p99 during refresh windows / p99 outside, steady {:.0} calls/s for {:.0} s, token endpoint 500 ms, {:.0} refreshes",
            num(r, &["rate_per_s"])?,
            num(r, &["seconds"])?,
            num(r, &["refresh_windows"])?,
        ),
        &format!(
            "{:.0} µs vs {:.0} µs = **{refresh_ratio:.2}×** ({:.0} / {:.0} calls)",
            num(r, &["during_p99_us"])?,
            num(r, &["outside_p99_us"])?,
            num(r, &["calls_during_refresh"])?,
            num(r, &["calls_outside"])?,
        ),
        "≤ 1.2×",
        verdict(refresh_ratio <= 1.2),
    ]);
    row([
        "3b",
        "Refresh stalls: calls that waited on the token endpoint (latency > 400 ms)",
        &format!(
            "**{waited:.0}** (slowest call {:.1} ms)",
            num(r, &["max_latency_ms"])?
        ),
        "0",
        verdict(waited == 0.0),
    ]);

    let th = find(reports, "throughput")?;
    let best = &th["facade_vs_python"];
    let ratio = num(best, &["ratio"])?;
    let rows = th["rows"].as_array().cloned().unwrap_or_default();
    let mut sweep = Vec::new();
    for r in &rows {
        sweep.push(format!(
            "{}: {:.0} / {:.0} / {:.0}",
            r["concurrency"],
            num(r, &["facade", "req_per_cpu_s"])?,
            num(r, &["raw", "req_per_cpu_s"])?,
            num(r, &["python", "req_per_cpu_s"]).unwrap_or(f64::NAN),
        ));
    }
    row([
        "4",
        "Throughput per core (calls per CPU-second of the client process; server in another process): facade vs Python `httpx.AsyncClient` shaped like the upstream SDK, at the concurrency where Python does best",
        &format!(
            "{:.0} vs {:.0} req/CPU-s at {} in flight = **{ratio:.1}×**. By calls in flight, facade / reqwest / Python: {}",
            num(best, &["facade_req_per_cpu_s"])?,
            num(best, &["python_req_per_cpu_s"])?,
            best["concurrency"],
            sweep.join("; "),
        ),
        "≥ 10×",
        verdict(ratio >= 10.0),
    ]);

    let m = find(reports, "peak_rss")?;
    let peak = num(m, &["facade", "peak_mib"])?;
    let capped = num(m, &["capped", "peak_mib"])?;
    let raw_peak = num(m, &["raw", "peak_mib"])?;
    if peak > 64.0 {
        notes.push(format!(
            "- Peak RSS (5), default client without `max_in_flight`: hand-written reqwest alone needs {raw_peak:.0} MiB for the same load. Over HTTP/1.1 each call in flight holds its own connection (reqwest's pool has no per-host connection limit), so {:.0} calls in flight cannot fit in 64 MiB without bounding connections; the facade's own share is the difference, {:.0} MiB.",
            num(m, &["calls_in_flight"])?,
            peak - raw_peak
        ));
    }
    row([
        "5",
        &format!(
            "Peak RSS (VmHWM) of a client process with {:.0} calls in flight, server holding each answer {:.0} ms (default client: HTTP/1.1, unbounded pool, so one connection per call)",
            num(m, &["calls_in_flight"])?,
            num(m, &["server_delay_ms"])?,
        ),
        &format!(
            "with `.max_in_flight({:.0})`: **{capped:.0} MiB** (all calls done in {:.1} s); default, unbounded: {peak:.0} MiB ({:.1} KiB per call, done in {:.1} s); hand-written reqwest: {:.0} MiB ({:.1} KiB per call)",
            num(m, &["max_in_flight"])?,
            num(m, &["capped", "seconds"])?,
            num(m, &["facade", "per_call_kib"])?,
            num(m, &["facade", "seconds"])?,
            raw_peak,
            num(m, &["raw", "per_call_kib"])?,
        ),
        "≤ 64 MiB",
        verdict(capped <= 64.0),
    ]);

    let v = find(reports, "verify_overhead")?;
    let (pm, pp) = (
        num(v, &["layer", "without", "median_us"])?,
        num(v, &["layer", "without", "p99_us"])?,
    );
    let instructions = v["layer"]["instructions_per_request"].as_object();
    let plain_instructions = instructions
        .and_then(|i| i.get("plain"))
        .and_then(Value::as_f64);
    for (letter, mode, name) in [
        ("7a", "introspection", "introspection"),
        ("7b", "pem", "PEM (local RS256)"),
        (
            "7c",
            "pem_first_sight",
            "PEM with introspection at first sight",
        ),
        ("7d", "jwks", "JWKS"),
    ] {
        let m = &v["layer"]["modes"][mode];
        let (vm, vp) = (
            num(m, &["with", "median_us"])?,
            num(m, &["with", "p99_us"])?,
        );
        let counted = match (
            instructions
                .and_then(|i| i.get(mode))
                .and_then(Value::as_f64),
            plain_instructions,
        ) {
            (Some(with), Some(plain)) => format!(
                "; instructions per request in process (callgrind): {with:.0} vs {plain:.0} = {:.3}×",
                with / plain
            ),
            _ => "; instructions per request: valgrind not installed".to_owned(),
        };
        row([
            letter,
            &format!(
                "Verifier layer, {name}, cache hit: median latency of an axum handler with `VerifyLayer` vs the same handler without ({:.0} interleaved rounds over loopback, one request to each of the five servers per round)",
                num(v, &["layer", "pairs"])?
            ),
            &format!(
                "{vm:.1} µs vs {pm:.1} µs = **{:.3}×** (p99 {vp:.1} µs vs {pp:.1} µs = {:.3}×); in process, per request through the router: {:.2} µs vs {:.2} µs; one cache hit alone: {:.2} µs{counted}",
                vm / pm,
                vp / pp,
                num(m, &["router_ns"])? / 1000.0,
                num(v, &["layer", "router_without_ns"])? / 1000.0,
                num(m, &["cache_hit_ns"])? / 1000.0,
            ),
            "≤ 1.05×",
            verdict(vm / pm <= 1.05),
        ]);
    }
    let (ours, theirs) = (
        num(v, &["rs256", "ours_per_cpu_s"])?,
        num(v, &["rs256", "jsonwebtoken_per_cpu_s"])?,
    );
    row([
        "7e",
        &format!(
            "First sight of a token: CPU time per local verification, `Verifier::verify` (PEM mode, every token new: header and `crit` check, signature, claims, the verdict cached) vs `jsonwebtoken::decode` alone on the same {:.0} tokens",
            num(v, &["rs256", "tokens"])?
        ),
        &format!(
            "{:.1} µs vs {:.1} µs = **{:.3}×**{}",
            1e6 / ours,
            1e6 / theirs,
            theirs / ours,
            match (
                v["rs256"]["instructions_per_token"]["ours"].as_f64(),
                v["rs256"]["instructions_per_token"]["jsonwebtoken"].as_f64(),
            ) {
                (Some(o), Some(j)) => format!(
                    "; instructions per token (callgrind, {} tokens): {o:.0} vs {j:.0} = {:.3}×",
                    v["rs256"]["instructions_per_token"]["tokens"],
                    o / j
                ),
                _ => "; instructions per token: valgrind not installed".to_owned(),
            }
        ),
        "≤ 1.05×",
        verdict(theirs / ours <= 1.05),
    ]);
    let introspections: Vec<u64> = v["burst"]["introspections_per_trial"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    let one_each = !introspections.is_empty() && introspections.iter().all(|&n| n == 1);
    row([
        "7f",
        &format!(
            "Introspections per distinct token under a burst of {:.0} concurrent `verify` calls",
            num(v, &["burst", "burst"])?
        ),
        &format!(
            "**{}** in each of {} trials",
            if one_each {
                "1".to_owned()
            } else {
                format!("{introspections:?}")
            },
            introspections.len()
        ),
        "exactly 1",
        verdict(one_each),
    ]);

    let p = find(reports, "present_overhead")?;
    let (mm, plm) = (
        num(p, &["middleware", "median_us"])?,
        num(p, &["plain", "median_us"])?,
    );
    let (mp, plp) = (
        num(p, &["middleware", "p99_us"])?,
        num(p, &["plain", "p99_us"])?,
    );
    row([
        "8a",
        &format!(
            "Outgoing middleware, median latency of `GET /api/v1/agents/{{id}}`: `reqwest_middleware` with `OutgoingAuth` vs plain reqwest with a fixed header ({:.0} interleaved pairs, one shared `reqwest::Client`)",
            num(p, &["pairs"])?
        ),
        &format!(
            "{mm:.1} µs vs {plm:.1} µs = **{:.3}×**; an empty `reqwest_middleware` chain with the fixed header, in a second pass: {:.1} µs vs {:.1} µs = {:.3}×",
            mm / plm,
            num(p, &["empty_chain", "median_us"])?,
            num(p, &["plain_again", "median_us"])?,
            num(p, &["empty_chain", "median_us"])? / num(p, &["plain_again", "median_us"])?,
        ),
        "≤ 1.05×",
        verdict(mm / plm <= 1.05),
    ]);
    row([
        "8b",
        "Outgoing middleware, p99 latency (same run)",
        &format!("{mp:.1} µs vs {plp:.1} µs = **{:.3}×**", mp / plp),
        "≤ 1.05×",
        verdict(mp / plp <= 1.05),
    ]);
    match p.get("instructions_per_call").filter(|v| v.is_object()) {
        Some(counts) => {
            let (mi, ei, pi) = (
                num(counts, &["middleware"])?,
                num(counts, &["empty"])?,
                num(counts, &["plain"])?,
            );
            row([
                "8c",
                "Outgoing middleware, client instructions per call (callgrind): with `OutgoingAuth` vs plain reqwest",
                &format!(
                    "{mi:.0} vs {pi:.0} = **{:.3}×**; of the {:.0} more, {:.0} are reqwest-middleware's own (empty chain) and {:.0} ours",
                    mi / pi,
                    mi - pi,
                    ei - pi,
                    mi - ei
                ),
                "≤ 1.05×",
                verdict(mi / pi <= 1.05),
            ]);
        }
        None => notes
            .push("- Instruction counts (8c) need valgrind, which is not installed.".to_owned()),
    }

    let fl = find(reports, "fleet")?;
    let tokens = &fl["tokens"];
    let (file, none) = (
        num(tokens, &["file", "token_requests"])?,
        num(tokens, &["none", "token_requests"])?,
    );
    let file_fallbacks = num(tokens, &["file", "fallbacks"])?;
    let redis = match tokens.get("redis").filter(|v| v.is_object()) {
        Some(r) => Some((
            num(r, &["token_requests"])?,
            num(r, &["fallbacks"])?,
            num(r, &["wall_s"])?,
        )),
        None => {
            notes.push(
                "- The Redis part of the token requests row (9a) needs `redis-server`, which is not installed."
                    .to_owned(),
            );
            None
        }
    };
    let redis_text = redis.map_or(String::new(), |(t, f, w)| {
        format!("; Redis **{t:.0}** ({f:.0} fallbacks, all done in {w:.1} s)")
    });
    row([
        "9a",
        &format!(
            "Fleets: token requests of {:.0} processes started together, one call each, shared store vs none",
            num(tokens, &["processes"])?
        ),
        &format!(
            "file store **{file:.0}** ({file_fallbacks:.0} fallbacks, all done in {:.1} s){redis_text}; none {none:.0}",
            num(tokens, &["file", "wall_s"])?
        ),
        "1 vs N, 0 fallbacks",
        verdict(
            file == 1.0
                && file_fallbacks == 0.0
                && redis.is_none_or(|(t, f, _)| t == 1.0 && f == 0.0),
        ),
    ]);
    let warm_tokens = num(fl, &["first_call", "warm_token_requests"])?;
    row([
        "9b",
        &format!(
            "Fleets: first call of a new process (client built, token, `GET`), warm shared store vs cold, median of {:.0} runs each",
            num(fl, &["first_call", "runs"])?
        ),
        &format!(
            "{:.1} ms vs {:.1} ms; token requests of the warm runs: **{warm_tokens:.0}**",
            num(fl, &["first_call", "warm", "median_us"])? / 1000.0,
            num(fl, &["first_call", "cold", "median_us"])? / 1000.0,
        ),
        "no token round trip when warm",
        verdict(warm_tokens == 0.0),
    ]);
    let (sm, pm) = (
        num(fl, &["warm_overhead", "with_store", "median_us"])?,
        num(fl, &["warm_overhead", "without_store", "median_us"])?,
    );
    let instructions = match fl["warm_overhead"]
        .get("instructions_per_call")
        .filter(|v| v.is_object())
    {
        Some(counts) => {
            let (si, pi) = (num(counts, &["store"])?, num(counts, &["plain"])?);
            format!(
                "; client instructions per call {si:.0} vs {pi:.0} = {:.3}×",
                si / pi
            )
        }
        None => String::new(),
    };
    row([
        "9c",
        &format!(
            "Fleets: per-call cost of a store on a warm in-memory cache, median latency with a file store vs without ({:.0} interleaved pairs)",
            num(fl, &["warm_overhead", "pairs"])?
        ),
        &format!(
            "{sm:.1} µs vs {pm:.1} µs = **{:.3}×**{instructions}",
            sm / pm
        ),
        "≤ 1.02×",
        verdict(sm / pm <= 1.02),
    ]);
    match fl.get("limiter").filter(|v| v.is_object()) {
        Some(l) => {
            let with_429 = num(l, &["with_limiter", "server_429"])?;
            row([
                "9d",
                &format!(
                    "Fleets: 429s the server sent to {:.0} processes making 500 calls over 5 s (a shared Redis token) against a limit of 100 a minute, with the fleet rate limiter vs without",
                    num(l, &["processes"])?
                ),
                &format!(
                    "**{with_429:.0}** vs {:.0}. With it: {:.0} calls succeeded, {:.0} held back unsent (no slot before their 5 s deadline); without: {:.0} succeeded",
                    num(l, &["without_limiter", "server_429"])?,
                    num(l, &["with_limiter", "ok"])?,
                    num(l, &["with_limiter", "held_back"])?
                        + num(l, &["with_limiter", "timed_out"])?,
                    num(l, &["without_limiter", "ok"])?,
                ),
                "0 with it",
                verdict(with_429 == 0.0),
            ]);
            let (with, without) = (&l["start_with_limiter"], &l["start_without_limiter"]);
            let start_429 = num(with, &["server_429"])?;
            row([
                "9e",
                &format!(
                    "Fleets: a start of {:.0} processes, one call each (no retries), against a limit of 100 a minute, with the fleet rate limiter's defaults vs without: time until the last finished, and 429s",
                    num(l, &["processes"])?
                ),
                &format!(
                    "{:.1} s vs {:.1} s; 429s **{start_429:.0}** vs {:.0}; with it {:.0} succeeded, {:.0} held back",
                    num(with, &["wall_s"])?,
                    num(without, &["wall_s"])?,
                    num(without, &["server_429"])?,
                    num(with, &["ok"])?,
                    num(with, &["held_back"])?,
                ),
                "0 429s, none held back",
                verdict(start_429 == 0.0 && num(with, &["held_back"])? == 0.0),
            ]);
        }
        None => notes.push(
            "- The fleet rate limiter row (9d) needs `redis-server`, which is not installed."
                .to_owned(),
        ),
    }

    let c = find(reports, "cli")?;
    let list = &c["agents_list"];
    let (cm, nm) = (
        num(list, &["cli", "median_us"])?,
        num(list, &["node", "median_us"])?,
    );
    let speedup = nm / cm;
    row([
        "10a",
        &format!(
            "CLI: wall time of `agents list` against the fake, warm token cache, spawn to exit: `sentryagent` vs the upstream Node CLI's shape (`xtask/bench/node_cli.mjs`, a token request and the listing with `fetch`, Node {}), median of {:.0} interleaved runs",
            list["node_version"].as_str().unwrap_or("?"),
            num(list, &["runs"])?
        ),
        &format!(
            "{:.1} ms vs {:.1} ms = **{speedup:.1}× faster** (p99 {:.1} vs {:.1} ms); token requests {:.0} vs {:.0}. Same run: `sentryagent` without its cache (the same two requests) {:.1} ms; `node -e \"\"` alone {:.1} ms",
            cm / 1000.0,
            nm / 1000.0,
            num(list, &["cli", "p99_us"])? / 1000.0,
            num(list, &["node", "p99_us"])? / 1000.0,
            num(list, &["cli_token_requests"])?,
            num(list, &["node_token_requests"])?,
            num(list, &["cli_no_token_cache", "median_us"])? / 1000.0,
            num(list, &["node_startup", "median_us"])? / 1000.0,
        ),
        "≥ 5× faster",
        verdict(speedup >= 5.0),
    ]);
    let bytes = num(&c["binary"], &["bytes"])?;
    let stripped = c["binary"]["stripped_bytes"]
        .as_f64()
        .map_or_else(String::new, |s| {
            format!("; stripped {:.1} MiB", s / 1048576.0)
        });
    row([
        "10b",
        "CLI: size of the release `sentryagent` binary (`--features cli`, x86_64 Linux)",
        &format!("**{:.1} MiB**{stripped}", bytes / 1048576.0),
        "(reported)",
        "—",
    ]);

    match build {
        Some(b) => {
            for line in b.rows() {
                t.push_str(&line);
                t.push('\n');
            }
        }
        None => {
            // Keep the last measured build-cost rows (`--build-cost` is slow).
            let kept: Vec<&str> = previous
                .lines()
                .filter(|l| l.starts_with(build_cost::ROW_PREFIX))
                .collect();
            if kept.is_empty() {
                t.push_str("| 6 | Build cost | not measured: run `cargo xtask bench --build-cost` | (reported) | — |\n");
            } else {
                for line in kept {
                    t.push_str(line);
                    t.push('\n');
                }
            }
        }
    }
    Ok((t, notes))
}

/// The whole `BENCHMARKS.md`.
fn document(machine: &Machine, python: &str, table: &str, notes: &[String]) -> String {
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("\n### Notes on the targets\n\n{}\n", notes.join("\n"))
    };
    format!(
        "# Benchmarks

Written by `cargo xtask bench` (issue 7); do not edit by hand, except the last
section (measured by hand, kept as it is). Targets are goals.

## Machine

- CPU: {cpu} (`model name` in /proc/cpuinfo), {cores} cores (nproc)
- Memory: {memory}
- Linux {kernel}
- {rustc}
- {python} (the project's `.venv`, from `xtask/requirements.txt`)
- Measured on {date} (UTC). The machine is shared and noisy: latency figures
  move by a few per cent from run to run.

## Results

{table}{notes}
## How

Everything runs on loopback against a minimal hyper server written for the
benches (`benches/support/mod.rs`): `POST /api/v1/token` (counts requests,
optional delay) and `GET /api/v1/agents/{{id}}` (the spec's example `Agent`,
optional delay).

1. `benches/facade_overhead.rs`: `client.agents().get(id)` and a
   hand-written reqwest 0.13 call (fixed bearer token, the SDK's per-attempt
   timeout, `error_for_status`, JSON into the same `Agent` type) on one shared
   `reqwest::Client` built with the SDK's settings, called alternately (order
   flipped every pair) on a tokio current-thread runtime; the server has its
   own thread. Allocations are counted by a global allocator on the client
   thread only. Retries are off in the facade so that nothing is hidden.
2. `benches/single_flight.rs`: 1,000 tasks on a multi-threaded runtime
   call `get` on a new client (empty token cache and pool); the server counts
   token requests. Five bursts per setting; medians.
3. `benches/refresh_stall.rs`: tokens live 3 s, the client refreshes 2 s
   before expiry, the token endpoint takes 500 ms; an open-loop load
   (a call started every millisecond) runs for 12 s. The server records each
   token request's arrival and answer; a call that overlaps one is \"during
   refresh\".
4. `benches/throughput.rs` and `xtask/bench/python_client.py`: the server
   runs in a child process; each client runs on one thread (tokio
   current-thread, one asyncio loop) with 1, 4 and 16 calls in flight; CPU
   time is user + system time of the client process (`getrusage`,
   `time.process_time`).
5. `benches/peak_rss.rs`: each client in its own process (default settings,
   multi-threaded runtime), the server in another, answering after 1 s;
   `VmHWM` of `/proc/self/status` once all calls have returned.
6. `xtask/src/bench_build.rs`: two clean `cargo build -p sentryagent-idp
   --timings` in scratch target directories: the crate as shipped, and a
   scratch copy whose build.rs copies the checked-in `generated/` instead of
   running progenitor (and has no build-dependencies). The shipped crate is
   not changed.
7. `benches/verify_overhead.rs` (features `testing`, `axum`): the same
   axum handler without `VerifyLayer` and with it in each mode (the verdict
   cached), five servers on one server thread, called over loopback in
   interleaved rounds; with valgrind, in-process instructions per request of
   each router (callgrind, the difference of two runs); RS256 verifications
   per CPU-second of the PEM verifier (first sight) and of
   `jsonwebtoken::decode` on the same fresh tokens, in alternating rounds,
   and with valgrind the instructions per token of each (counted inside
   the verifying loop only, the tokens signed beforehand); 1,000 concurrent `verify` calls with one new token
   against the in-process fake, which counts its introspections.
8. `benches/present_overhead.rs` (feature `reqwest-middleware`): the bench
   server's `GET /api/v1/agents/{{id}}` through `reqwest_middleware` with
   `OutgoingAuth` and through plain reqwest with a fixed header, interleaved
   pairs on one `reqwest::Client`; a second pass with an empty
   `reqwest_middleware` chain; instruction counts of the three under
   callgrind, the server in a child process.
9. `benches/fleet.rs` (features `testing`, `redis`): every process is the
   bench binary run again, against the in-process fake AgentIdP: 200
   started together with a shared file store, with Redis and without; a new
   process's first call with a warm store and a cold one, alternating; the
   same `GET` through clients with and without a file store on a warm
   cache, interleaved pairs on the bench server; 50 processes pacing 10
   calls each over 5 s (5 s allowed per call, no retries) against the
   fake's limit of 100 a minute, sharing a token through a redis-server the
   bench starts, with `fleet_rate_limit` and without; 50 processes started
   together, one call each, against the same limit, with the limiter's
   defaults and without.
10. `benches/cli.rs` (feature `cli`): `sentryagent agents list` (the bench
   profile's binary) and `node xtask/bench/node_cli.mjs` run to their end
   in turn, stdout to /dev/null, against the in-process fake, both reading
   the same upstream `~/.sentryagent/config.json` in a scratch home; the
   CLI's token cache warmed by one run first; in the same rotation, the CLI
   with `--no-token-cache`, and Node doing nothing. Node is the machine's (or
   Debian's `nodejs`, installed by `cargo xtask bench` when missing). The
   binary's size as built, and of a copy passed through `strip`.

## Reproduce

```sh
cargo xtask bench                # 1-5, 7-10 (builds the benches, sets up .venv), rewrites this file
cargo xtask bench --build-cost   # also 6: two clean builds (about 2 minutes here)
cargo xtask bench --quick        # smaller runs, prints only
cargo bench --bench facade_overhead   # criterion (also single_flight, throughput)
# instruction counts, stable on a noisy machine (the executable is printed by cargo bench --no-run):
valgrind --tool=callgrind target/release/deps/facade_overhead-<hash> --callgrind facade --calls 3000
```
",
        cpu = machine.cpu,
        cores = machine.cores,
        memory = machine.memory,
        kernel = machine.kernel,
        rustc = machine.rustc,
        date = machine.date,
        notes = notes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
    }
}
