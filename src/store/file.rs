//! [`FileStore`]: a file per key in the user's cache directory.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs4::fs_std::FileExt;

use super::{StoreError, StoreKey, StoreLock, TokenStore};

/// Token entries in files, for CLIs, cron jobs and developer machines: one
/// machine, any number of processes.
///
/// - Each key is a file `<key>.token` in the directory (created `0700`),
///   written `0600` and atomically (a temporary file in the same directory,
///   then a rename), so a reader sees the old entry or the new, never half.
/// - The fetch lock is an exclusive lock on `<key>.lock` (`flock` on Unix,
///   `LockFileEx` on Windows): the system frees it when its process ends,
///   however it ends.
/// - The entries are sealed with the client secret; the files hold no
///   usable token for someone who lacks it.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// The store in the user's cache directory, e.g.
    /// `~/.cache/sentryagent-idp/tokens` on Linux,
    /// `~/Library/Caches/ai.SentryAgent.sentryagent-idp/tokens` on macOS.
    pub fn new() -> Result<FileStore, StoreError> {
        let dirs = directories::ProjectDirs::from("ai", "SentryAgent", "sentryagent-idp")
            .ok_or_else(|| StoreError::new("this system has no cache directory for the user"))?;
        Self::in_dir(dirs.cache_dir().join("tokens"))
    }

    /// The store in `dir`, created (`0700` on Unix) if missing.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        create_private_dir(&dir)?;
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
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn save(&self, key: &StoreKey, entry: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        // An expired entry is refused on load and overwritten by the next
        // save, so there is nothing to expire here.
        let (dir, path, entry) = (self.dir.clone(), self.path(key, "token"), entry.to_vec());
        blocking(move || {
            // tempfile creates the file 0600 on Unix.
            let mut file = tempfile::NamedTempFile::new_in(&dir)?;
            file.write_all(&entry)?;
            file.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
    }

    async fn try_lock(
        &self,
        key: &StoreKey,
        _lease: Duration,
    ) -> Result<Option<StoreLock>, StoreError> {
        // The lock lives with the open file: the system releases it when
        // this process ends, so it needs no lease.
        let path = self.path(key, "lock");
        blocking(move || {
            let file = open_private(&path)?;
            match FileExt::try_lock_exclusive(&file) {
                Ok(true) => Ok(Some(StoreLock::holding(StoreLock::random_owner(), file))),
                Ok(false) => Ok(None),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn unlock(&self, _key: &StoreKey, lock: StoreLock) -> Result<(), StoreError> {
        // Closing the file releases the lock.
        drop(lock);
        Ok(())
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(StoreError::new(format!("the file store task failed: {e}"))))
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}
