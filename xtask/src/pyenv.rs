//! The project-local Python virtualenv that holds the Python tools xtask runs.
//!
//! [`ensure`] creates `<repo>/.venv` (git-ignored) when it is missing, and
//! recreates it when `xtask/requirements.txt` no longer matches the copy
//! stored in the venv when it was last installed. Every tool is pinned in
//! that file, so a fresh clone on a new machine gets the same versions.
//!
//! The only things needed from the machine are a `python3` (or the
//! interpreter named by `XTASK_PYTHON`) with the standard `venv` module, and
//! access to PyPI the first time.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The venv's directory, relative to the repository root.
pub const VENV_DIR: &str = ".venv";

/// The pinned requirements, relative to the repository root.
pub const REQUIREMENTS: &str = "xtask/requirements.txt";

/// The environment variable that names the interpreter the venv is made from.
pub const PYTHON_ENV: &str = "XTASK_PYTHON";

/// The copy of the requirements the venv was installed from, inside the venv.
const STAMP: &str = "xtask-requirements.stamp";

/// The lock directory, inside the venv, that serialises concurrent setups.
const LOCK: &str = ".xtask-lock";

/// How long to wait for another process that is setting up the same venv.
const LOCK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A lock directory without a holder's pid, older than this, is stale.
const LOCK_STALE_AFTER: Duration = Duration::from_secs(60);

/// A virtualenv whose pinned requirements are installed.
#[derive(Debug, Clone)]
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// The venv's root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of the venv's executables (`bin/`, or `Scripts\` on Windows).
    pub fn bin_dir(&self) -> PathBuf {
        if cfg!(windows) {
            self.dir.join("Scripts")
        } else {
            self.dir.join("bin")
        }
    }

    /// The path of the executable `name` installed in the venv, such as
    /// `openapi-spec-validator` or `schemathesis`.
    pub fn bin(&self, name: &str) -> PathBuf {
        let file = if cfg!(windows) {
            format!("{name}.exe")
        } else {
            name.to_owned()
        };
        self.bin_dir().join(file)
    }

    /// The venv's Python interpreter.
    pub fn python(&self) -> PathBuf {
        self.bin("python")
    }

    /// A command that runs the venv's executable `name`, with `PYTHONHOME` and
    /// `PYTHONPATH` removed so that an outer Python setup cannot leak in.
    pub fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin(name));
        command.env_remove("PYTHONHOME").env_remove("PYTHONPATH");
        command
    }
}

/// Makes sure `<root>/.venv` exists with exactly the requirements of
/// `<root>/xtask/requirements.txt` installed, and returns it.
pub fn ensure(root: &Path) -> Result<Venv, String> {
    ensure_at(&root.join(VENV_DIR), &root.join(REQUIREMENTS))
}

/// Makes sure the venv at `dir` exists with exactly the requirements of the
/// file `requirements` installed, and returns it.
///
/// The venv is (re)created when it has no stamp, when its stamp differs from
/// `requirements`, or when its interpreter no longer runs (for instance after
/// the base Python was removed). Concurrent calls for the same `dir` wait for
/// one another.
pub fn ensure_at(dir: &Path, requirements: &Path) -> Result<Venv, String> {
    let wanted = fs::read_to_string(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _lock = DirLock::acquire(&dir.join(LOCK))?;
    let venv = Venv {
        dir: dir.to_path_buf(),
    };
    if is_current(&venv, &wanted) {
        return Ok(venv);
    }
    let started = Instant::now();
    println!(
        "setting up the Python tools in {} from {}",
        dir.display(),
        requirements.display()
    );
    clear(dir)?;
    create(dir)?;
    install(&venv, requirements)?;
    let stamp = dir.join(STAMP);
    fs::write(&stamp, &wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    println!(
        "Python tools installed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(venv)
}

/// Whether the venv was installed from `wanted` and its interpreter runs.
fn is_current(venv: &Venv, wanted: &str) -> bool {
    let stamp = fs::read_to_string(venv.dir().join(STAMP)).ok();
    stamp.as_deref() == Some(wanted)
        && venv
            .command("python")
            .args(["-c", "import sys"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// Removes everything in `dir` but the lock, so that a changed requirement
/// leaves no stale package behind.
fn clear(dir: &Path) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if entry.file_name() == LOCK {
            continue;
        }
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?
            .is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `<base python> -m venv <dir>`.
fn create(dir: &Path) -> Result<(), String> {
    let base = std::env::var(PYTHON_ENV).unwrap_or_else(|_| {
        if cfg!(windows) {
            "python".to_owned()
        } else {
            "python3".to_owned()
        }
    });
    let status = Command::new(&base)
        .args(["-m", "venv"])
        .arg(dir)
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| {
            format!("cannot run `{base}` to create {}: {e}; install Python 3 or set {PYTHON_ENV} to an interpreter", dir.display())
        })?;
    if !status.success() {
        return Err(format!(
            "`{base} -m venv {}` failed ({status}); on Debian-like systems the `venv` module comes with the python3-venv package",
            dir.display()
        ));
    }
    Ok(())
}

/// Installs the pinned requirements into the venv with its own pip.
fn install(venv: &Venv, requirements: &Path) -> Result<(), String> {
    let status = venv
        .command("python")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--progress-bar",
            "off",
            "--requirement",
        ])
        .arg(requirements)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", venv.python().display()))?;
    if !status.success() {
        return Err(format!(
            "pip could not install {} into {} ({status}); see pip's message above",
            requirements.display(),
            venv.dir().display()
        ));
    }
    Ok(())
}

/// A lock held by creating a directory, which is atomic on every platform.
///
/// The holder's pid is written inside it; a lock whose holder no longer runs
/// (checked through `/proc` where there is one) is taken over.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(path: &Path) -> Result<Self, String> {
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut announced = false;
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    // Best effort: without the pid, the lock is only taken
                    // over once it is older than LOCK_STALE_AFTER.
                    let _ = fs::write(path.join("pid"), std::process::id().to_string());
                    return Ok(Self {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if is_stale(path) {
                        match fs::remove_dir_all(path) {
                            Ok(()) => continue,
                            Err(e) if e.kind() == ErrorKind::NotFound => continue,
                            Err(e) => {
                                return Err(format!(
                                    "cannot remove the stale lock {}: {e}",
                                    path.display()
                                ));
                            }
                        }
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "gave up waiting for the lock {}; remove it if no other xtask is running",
                            path.display()
                        ));
                    }
                    if !announced {
                        println!(
                            "waiting for another process that is setting up the venv (lock {})",
                            path.display()
                        );
                        announced = true;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(format!("cannot create the lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Nothing useful can be done about a failure here; a leftover lock is
        // detected as stale by the next run.
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Whether the lock at `path` was left behind by a process that is gone.
///
/// With a pid and `/proc`, the holder is looked up. Otherwise the lock's age
/// decides: a lock without a pid is stale after [`LOCK_STALE_AFTER`] (its
/// holder writes the pid right after creating it), one with a pid after
/// [`LOCK_TIMEOUT`].
fn is_stale(path: &Path) -> bool {
    let pid = fs::read_to_string(path.join("pid"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    if let Some(pid) = pid
        && Path::new("/proc/self").exists()
    {
        return !Path::new("/proc").join(pid.to_string()).exists();
    }
    let limit = if pid.is_some() {
        LOCK_TIMEOUT
    } else {
        LOCK_STALE_AFTER
    };
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(LOCK);
        let lock = DirLock::acquire(&path).unwrap();
        assert!(!is_stale(&path), "our own lock is live");
        assert!(fs::create_dir(&path).is_err(), "the lock is held");
        drop(lock);
        assert!(!path.exists(), "the lock is released");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = std::env::temp_dir().join(format!("xtask-stale-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join(LOCK);
        fs::create_dir_all(&path).unwrap();
        // Pids are below 2^22 on Linux, so this one cannot be running.
        fs::write(path.join("pid"), "4294967290").unwrap();
        assert!(is_stale(&path));
        let lock = DirLock::acquire(&path).unwrap();
        drop(lock);
        fs::remove_dir_all(&dir).unwrap();
    }
}
