//! Files that decide where the client secret is sent (`config.toml`, the
//! upstream `config.json`) or hold it (a client secret file) are used only
//! when no other user can change them, as ssh treats its own files: the file
//! and every directory above it owned by the user or root, none writable by
//! group or others (a directory with the sticky bit, such as `/tmp`, may
//! be: others cannot replace what is in it). A file holding a secret must
//! also be unreadable by others. The refusal says which `chmod` to run.
//!
//! Symbolic links are resolved one component at a time, and every directory
//! the walk passes through is checked: the real file's, and those holding
//! each link on the way (whoever could write one of those could point the
//! link elsewhere). A settings file is then opened by its real path and
//! checked again on the open handle, so what is read is what was checked.

use std::path::{Path, PathBuf};

use crate::failure::CliError;

/// The largest settings file read (a config of many profiles is a few KiB).
const MAX_SETTINGS_BYTES: u64 = 1024 * 1024;

/// A settings file read after its checks.
pub(crate) struct Trusted {
    /// The text read.
    pub text: String,
    /// Its permission bits, for [`Trusted::private_or_refuse`].
    mode: u32,
}

impl Trusted {
    /// Refuses the file when it holds a client secret others can read.
    pub fn private_or_refuse(&self, shown: &Path) -> Result<(), CliError> {
        mode_or_refuse(shown, self.mode, Holds::Secret)
    }
}

/// What a file holds, which decides the permissions it may have.
#[derive(Clone, Copy)]
enum Holds {
    /// Settings: others must not write it.
    Settings,
    /// A secret: others must not read or write it.
    Secret,
}

/// Reads the settings file at `path` once it passes the checks, or `None`
/// when there is none.
pub(crate) fn read_settings(path: &Path) -> Result<Option<Trusted>, CliError> {
    use std::io::Read;
    let Some(real) = real_path(path)? else {
        return Ok(None);
    };
    let mode = checked(path, &real, Holds::Settings)?;
    let file = std::fs::File::open(&real).map_err(|e| CliError::File(path.to_owned(), e))?;
    // The handle is checked again: the path cannot have changed under us
    // (no one else can write its directories), but a check is cheap.
    let meta = file
        .metadata()
        .map_err(|e| CliError::File(path.to_owned(), e))?;
    file_or_refuse(path, &meta, Holds::Settings)?;
    let mut text = String::new();
    file.take(MAX_SETTINGS_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::File(path.to_owned(), e))?;
    if text.len() as u64 > MAX_SETTINGS_BYTES {
        return Err(CliError::Usage(format!(
            "{} is larger than {} KiB; it is not a config file",
            path.display(),
            MAX_SETTINGS_BYTES / 1024
        )));
    }
    Ok(Some(Trusted { text, mode }))
}

/// The path of a client secret file that passes the checks, to read the
/// secret from before each token request: as given, so that a link the
/// user points elsewhere later (`ln -sfn v2 current`, a Kubernetes secret
/// volume's swap) is followed there. No one else can change a link on the
/// way: the directories holding them were checked.
pub(crate) fn secret_file(path: &Path) -> Result<PathBuf, CliError> {
    let real = real_path(path)?.ok_or_else(|| {
        CliError::Usage(format!(
            "the client secret file {} does not exist",
            path.display()
        ))
    })?;
    checked(path, &real, Holds::Secret)?;
    Ok(path.to_owned())
}

/// Refuses a directory (and those above it) that others could write to or
/// that another user owns: a file published in it could be replaced.
pub(crate) fn directory_or_refuse(dir: &Path) -> Result<(), CliError> {
    let real = real_path(dir)?
        .ok_or_else(|| CliError::File(dir.to_owned(), std::io::ErrorKind::NotFound.into()))?;
    one_directory(&real)
}

/// Refuses what `meta` (of `shown`, a link's own) says neither the user
/// nor root owns.
#[cfg(unix)]
pub(crate) fn owner_of_or_refuse(shown: &Path, meta: &std::fs::Metadata) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    owner_or_refuse(shown, meta.uid(), "file")
}

#[cfg(not(unix))]
pub(crate) fn owner_of_or_refuse(_: &Path, _: &std::fs::Metadata) -> Result<(), CliError> {
    Ok(())
}

/// `path` with every link resolved, or `None` when it does not exist; on
/// Unix every directory passed through on the way is checked.
fn real_path(path: &Path) -> Result<Option<PathBuf>, CliError> {
    let resolved = resolve(path);
    match resolved {
        Ok(real) => Ok(Some(real)),
        Err(Resolve::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(Resolve::Io(e)) => Err(CliError::File(path.to_owned(), e)),
        Err(Resolve::Refused(e)) => Err(e),
    }
}

/// Why a walk stopped.
#[cfg_attr(not(unix), allow(dead_code))]
enum Resolve {
    Io(std::io::Error),
    Refused(CliError),
}

impl From<std::io::Error> for Resolve {
    fn from(e: std::io::Error) -> Self {
        Resolve::Io(e)
    }
}

/// The most links a walk follows (Linux's own limit).
#[cfg(unix)]
const MAX_LINKS: u32 = 40;

/// Resolves `path` as realpath(3) does, checking each directory that holds
/// a component of it (a link, or the next directory) before using it.
#[cfg(unix)]
fn resolve(path: &Path) -> Result<PathBuf, Resolve> {
    let mut links = 0;
    walk(&std::path::absolute(path)?, &mut links)
}

#[cfg(not(unix))]
fn resolve(path: &Path) -> Result<PathBuf, Resolve> {
    Ok(std::fs::canonicalize(path)?)
}

#[cfg(unix)]
fn walk(path: &Path, links: &mut u32) -> Result<PathBuf, Resolve> {
    use std::path::Component;
    let mut real = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => {
                let next = real.join(name);
                // Looked up first: a file that is not there is not read,
                // whoever could write its directory.
                let meta = std::fs::symlink_metadata(&next)?;
                one_directory(&real).map_err(Resolve::Refused)?;
                if meta.is_symlink() {
                    *links += 1;
                    if *links > MAX_LINKS {
                        return Err(Resolve::Io(std::io::Error::other(
                            "too many levels of symbolic links",
                        )));
                    }
                    // An absolute target replaces `real`; a relative one is from it.
                    real = walk(&real.join(std::fs::read_link(&next)?), links)?;
                } else {
                    real = next;
                }
            }
        }
    }
    Ok(real)
}

/// Checks the real file (its directories were checked on the way to it);
/// returns its permission bits.
fn checked(shown: &Path, real: &Path, holds: Holds) -> Result<u32, CliError> {
    // Not opened before this: opening a FIFO would block.
    let meta = std::fs::metadata(real).map_err(|e| CliError::File(shown.to_owned(), e))?;
    file_or_refuse(shown, &meta, holds)
}

#[cfg(unix)]
fn file_or_refuse(shown: &Path, meta: &std::fs::Metadata, holds: Holds) -> Result<u32, CliError> {
    use std::os::unix::fs::MetadataExt;
    if !meta.is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a regular file; it is not used",
            shown.display()
        )));
    }
    owner_or_refuse(shown, meta.uid(), "file")?;
    let mode = meta.mode() & 0o7777;
    mode_or_refuse(shown, mode, holds)?;
    Ok(mode)
}

#[cfg(not(unix))]
fn file_or_refuse(shown: &Path, meta: &std::fs::Metadata, _: Holds) -> Result<u32, CliError> {
    if !meta.is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a regular file; it is not used",
            shown.display()
        )));
    }
    Ok(0)
}

#[cfg(unix)]
fn mode_or_refuse(shown: &Path, mode: u32, holds: Holds) -> Result<(), CliError> {
    let (mask, what, fix) = match holds {
        Holds::Settings => (
            0o022,
            "users other than you can change it, and with it where the client secret is sent",
            "go-w",
        ),
        Holds::Secret => (
            0o077,
            "it holds a client secret that users other than you can read or change",
            "600",
        ),
    };
    if mode & mask == 0 {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "permissions {:04o} for {} are too open: {what}; it is not used. Run: chmod {fix} {}",
        mode & 0o7777,
        shown.display(),
        shown.display()
    )))
}

#[cfg(not(unix))]
fn mode_or_refuse(_: &Path, _: u32, _: Holds) -> Result<(), CliError> {
    Ok(())
}

/// Refuses a directory another user owns, or that group or others may
/// write to without the sticky bit.
#[cfg(unix)]
fn one_directory(dir: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| CliError::File(dir.to_owned(), e))?;
    owner_or_refuse(dir, meta.uid(), "directory")?;
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(CliError::Usage(format!(
            "permissions {mode:04o} for the directory {} are too open: users other than you can \
             replace the files in it, and with them where the client secret is sent; they are \
             not used. Run: chmod go-w {}",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn one_directory(_: &Path) -> Result<(), CliError> {
    Ok(())
}

/// Refuses what neither the user nor root owns.
#[cfg(unix)]
fn owner_or_refuse(shown: &Path, owner: u32, kind: &str) -> Result<(), CliError> {
    let me = rustix::process::geteuid().as_raw();
    if owner == me || owner == 0 {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "the {kind} {} belongs to another user (uid {owner}), who can change it; it is not used. \
         Run: chown {me} {} (as root), or use one of your own",
        shown.display(),
        shown.display()
    )))
}
