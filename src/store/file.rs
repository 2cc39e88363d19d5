//! [`FileStore`]: a file per key in the user's cache directory.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs4::fs_std::FileExt;

use super::{MAX_ENTRY_LEN, StoreError, StoreKey, StoreLock, TokenStore};

/// Token entries in files, for CLIs, cron jobs and developer machines: one
/// machine, any number of processes.
///
/// - Each key is a file `<key>.token` in the directory (created `0700`),
///   written `0600` and atomically (a temporary file in the same directory,
///   then a rename), so a reader sees the old entry or the new, never half.
/// - The fetch lock is an exclusive lock on `<key>.lock` (`flock` on Unix,
///   `LockFileEx` on Windows): the system frees it when its process ends,
///   however it ends. Removing an entry (compare and delete) takes turns
///   with other removers on `<key>.remove`.
/// - The entries are sealed with the client secret; the files hold no
///   usable token for someone who lacks it.
/// - On Unix, the directory must be the user's and writable by nobody
///   else ([`in_dir`](Self::in_dir) refuses it otherwise), and every file
///   (entry, lock, temporary file) is opened with `O_NOFOLLOW`, so a
///   planted symlink is refused, never followed; an entry is read only if it
///   is a regular file, opened with `O_NONBLOCK` (a FIFO cannot hang the
///   read), and of at most [`MAX_ENTRY_LEN`] bytes.
/// - The file work runs on a thread of its own per operation, not on the
///   runtime's workers nor its blocking pool: a read that hangs (a dead NFS
///   mount) is abandoned after [`STORE_TIMEOUT`](super::STORE_TIMEOUT) and
///   cannot hold the runtime's shutdown. At most 64 such threads run at
///   once in a process: a hung file system holds no more.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in the user's cache directory, e.g.
    /// `~/.cache/sentryagent-idp/tokens` on Linux,
    /// `~/Library/Caches/ai.SentryAgent.sentryagent-idp/tokens` on macOS.
    /// Fails as [`in_dir`](Self::in_dir) does.
    pub fn new() -> Result<FileStore, StoreError> {
        let dirs = directories::ProjectDirs::from("ai", "SentryAgent", "sentryagent-idp")
            .ok_or_else(|| StoreError::new("this system has no cache directory for the user"))?;
        Self::in_dir(dirs.cache_dir().join("tokens"))
    }

    /// The store in `dir`, created (`0700` on Unix) if missing.
    ///
    /// On Unix, fails with [`StoreErrorKind::UnsafeDirectory`](super::StoreErrorKind::UnsafeDirectory)
    /// (its message names the `chmod` or `chown` to run) if `dir` is not a
    /// directory owned by this user, or if group or others may write to it:
    /// whoever can write there could replace entries and plant files.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        check_private_dir(&dir)?;
        Ok(FileStore { dir })
    }

    /// Where the entries are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &StoreKey, extension: &str) -> PathBuf {
        self.dir.join(format!("{key}.{extension}"))
    }
}

impl TokenStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key, "token");
        off_runtime(move || match read_entry(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn save(&self, key: &StoreKey, entry: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        // An expired entry is refused on load and overwritten by the next
        // save, so there is nothing to expire here.
        let (path, temp, entry) = (self.path(key, "token"), self.temp_path(key), entry.to_vec());
        off_runtime(move || {
            let written = (|| {
                let mut file = open(&temp, Access::CreateNew)?;
                file.write_all(&entry)?;
                std::fs::rename(&temp, &path)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            Ok(written?)
        })
        .await
    }

    async fn remove(&self, key: &StoreKey, entry: &[u8]) -> Result<(), StoreError> {
        let (path, taken, entry) = (self.path(key, "token"), self.temp_path(key), entry.to_vec());
        off_runtime(move || Ok(remove_if(&path, &taken, &entry)?)).await
    }

    async fn try_lock(
        &self,
        key: &StoreKey,
        _lease: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        // The lock lives with the open file: the system releases it when
        // this process ends, so it needs no lease.
        let path = self.path(key, "lock");
        off_runtime(move || {
            let file = open(&path, Access::Lock)?;
            regular(&file)?;
            match FileExt::try_lock_exclusive(&file) {
                // The owner id is made here, off the runtime: its random
                // source costs CPU on first use.
                Ok(true) => Ok(Some(StoreLock::holding(StoreLock::random_owner(), file))),
                Ok(false) => Ok(None),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn unlock(&self, _key: &StoreKey, lock: StoreLock) -> Result<(), StoreError> {
        // Closing the file releases the lock (off the runtime too: a close
        // may wait on the file system).
        off_runtime(move || {
            drop(lock);
            Ok(())
        })
        .await
    }
}

impl FileStore {
    /// A fresh name beside the entries for a temporary file; never a
    /// `.token` or `.lock`.
    fn temp_path(&self, key: &StoreKey) -> PathBuf {
        self.path(key, &format!("tmp{:016x}", fastrand::u64(..)))
    }
}

/// The most file store threads at once in this process: 64.
const MAX_STORE_THREADS: usize = 64;

/// Removes the entry at `path` if it holds `entry`, atomically against a
/// writer: the entry is first moved aside to `taken` (a rename, so a newer
/// entry saved meanwhile is either moved whole or left in place), compared
/// there, and put back (unless a newer one took its place) when it differs.
/// Removers take turns (an exclusive lock on `<key>.remove`): another
/// remover that found no entry while this one had it aside would return
/// before this one put it back.
fn remove_if(path: &Path, taken: &Path, entry: &[u8]) -> std::io::Result<()> {
    remove_if_pausing(path, taken, entry, || {})
}

/// [`remove_if`], calling `aside` while the entry is moved aside (a test
/// runs another remover there).
fn remove_if_pausing(
    path: &Path,
    taken: &Path,
    entry: &[u8],
    aside: impl FnOnce(),
) -> std::io::Result<()> {
    // Held until this function returns (the file closes); this thread's
    // own, so waiting here blocks no runtime worker.
    let turn = open(&path.with_extension("remove"), Access::Lock)?;
    regular(&turn)?;
    FileExt::lock_exclusive(&turn)?;
    match std::fs::rename(path, taken) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        other => other?,
    }
    aside();
    let same = read_entry(taken).is_ok_and(|bytes| bytes == entry);
    if !same {
        // `hard_link` fails if a newer entry is at `path` now: it stays.
        let _ = std::fs::hard_link(taken, path);
    }
    std::fs::remove_file(taken)
}

/// What a file is opened for.
#[derive(Clone, Copy)]
enum Access {
    /// Reading an entry.
    Read,
    /// The lock file: read-write, created if missing.
    Lock,
    /// A new temporary file, which must not exist.
    CreateNew,
}

/// Opens `path` without following a symlink at its last component, and
/// without blocking on a FIFO or a device; created files are `0600`.
#[cfg(unix)]
fn open(path: &Path, access: Access) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let base = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let flags = match access {
        Access::Read => OFlags::RDONLY,
        Access::Lock => OFlags::RDWR | OFlags::CREATE,
        Access::CreateNew => OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
    };
    let fd = rustix::fs::open(path, base | flags, Mode::from_raw_mode(0o600))?;
    Ok(File::from(fd))
}

#[cfg(not(unix))]
fn open(path: &Path, access: Access) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    match access {
        Access::Read => options.read(true),
        Access::Lock => options.read(true).write(true).create(true).truncate(false),
        Access::CreateNew => options.write(true).create_new(true),
    };
    options.open(path)
}

/// Fails unless `file` is a regular file (checked on the open file, so it
/// cannot be swapped between the check and the use).
fn regular(file: &File) -> std::io::Result<()> {
    if file.metadata()?.file_type().is_file() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            ErrorKind::InvalidData,
            "the token store holds something other than a regular file here",
        ))
    }
}

/// The entry at `path`: a regular file of at most [`MAX_ENTRY_LEN`] bytes.
fn read_entry(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = open(path, Access::Read)?;
    regular(&file)?;
    let mut bytes = Vec::new();
    file.take(MAX_ENTRY_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_ENTRY_LEN {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("a token store entry is larger than {MAX_ENTRY_LEN} bytes"),
        ));
    }
    Ok(bytes)
}

/// Runs blocking file work on a thread of its own, not the runtime's: the
/// caller's wait is bounded by the store timeout, and a thread stuck in the
/// kernel (a hung NFS mount) is left behind without holding the runtime's
/// shutdown, as a `spawn_blocking` task would. At most
/// [`MAX_STORE_THREADS`] run at once.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    // A thread stuck in the kernel keeps its permit: a hung file system
    // holds at most MAX_STORE_THREADS threads, and the operations beyond
    // wait here, within their timeout, rather than start one more each.
    static THREADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_STORE_THREADS);
    let permit = THREADS
        .acquire()
        .await
        .map_err(|_| StoreError::new("the file store's threads are closed"))?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sentryagent-file-store".into())
        .spawn(move || {
            let _permit = permit;
            let _ = done.send(work());
        })
        .map_err(|e| StoreError::new(format!("could not start the file store's thread: {e}")))?;
    result
        .await
        .unwrap_or_else(|_| Err(StoreError::new("the file store's thread failed")))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a store directory that is not this user's own, or that group
/// or others may write to.
#[cfg(unix)]
fn check_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    let shown = dir.display();
    if !meta.is_dir() {
        return Err(StoreError::unsafe_directory(format!(
            "{shown} is not a directory"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(StoreError::unsafe_directory(format!(
            "{shown} belongs to user id {}, not to you (user id {me}): run `chown {me} '{shown}'` and `chmod 700 '{shown}'`, or choose another directory",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StoreError::unsafe_directory(format!(
            "{shown} may be written by {} (mode {mode:04o}): run `chmod 700 '{shown}'`",
            if mode & 0o002 != 0 {
                "anyone"
            } else {
                "its group"
            }
        )));
    }
    Ok(())
}

/// Windows: the directory is the user's profile's, with its ACLs.
#[cfg(not(unix))]
fn check_private_dir(_dir: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn store_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|c| c.starts_with("sentryagent-fil"))
            })
            .count()
    }

    /// Review: a hung file system (every operation stuck in the kernel)
    /// must not cost a thread per operation without bound.
    #[cfg(target_os = "linux")]
    #[tokio::test(start_paused = true)]
    async fn a_hung_file_system_holds_a_bounded_number_of_threads() {
        // Open once the test ends: until then every operation hangs.
        let gate = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        for _ in 0..200 {
            let gate = std::sync::Arc::clone(&gate);
            let op = off_runtime(move || {
                let (open, opened) = &*gate;
                let _open = opened.wait_while(open.lock().unwrap(), |open| !*open);
                Ok(())
            });
            let timed = tokio::time::timeout(super::super::STORE_TIMEOUT, op).await;
            assert!(timed.is_err());
        }
        let threads = store_threads();
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(
            threads <= MAX_STORE_THREADS,
            "{threads} threads stuck in the file system"
        );
    }

    /// Review: two removers at once. B (removing an older entry) has moved
    /// the current entry X aside when A removes X: A must not return with
    /// X still to come back, as B puts it back.
    #[test]
    fn a_remove_during_another_remove_never_leaves_the_removed_entry_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.token");
        std::fs::write(&path, b"revoked X").unwrap();
        let (a_path, a_taken) = (path.clone(), dir.path().join("k.tmpa"));
        let mut a = None;
        remove_if_pausing(&path, &dir.path().join("k.tmpb"), b"older Y", || {
            let (done, finished) = std::sync::mpsc::channel();
            a = Some(std::thread::spawn(move || {
                let removed = remove_if(&a_path, &a_taken, b"revoked X");
                let _ = done.send(());
                removed
            }));
            // Seconds: A finishes at once unless it waits for B (the fix).
            let _ = finished.recv_timeout(Duration::from_secs(2));
        })
        .unwrap();
        a.unwrap().join().unwrap().unwrap();
        let left = std::fs::read(&path).ok();
        assert_ne!(
            left.as_deref(),
            Some(&b"revoked X"[..]),
            "A's remove returned Ok, then B put the removed entry back"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{names:?}"
        );
    }
}
