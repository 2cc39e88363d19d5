//! [`SecretSource`]: where the client secret comes from, read again when it
//! may have changed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Where a client reads its secret: fixed, an environment variable, a file,
/// or your own function.
///
/// The secret is read when the client is built. It is read again when
/// AgentIdP answers a token request with `invalid_client`, and if it
/// changed, the request is retried once with the new one; a file is also
/// read again before every token request (once per token lifetime, so the
/// cost is nil). So a
/// replica picks up a rotated secret by itself, without a restart: publish
/// the new secret where the replicas read it, then revoke the old one (see
/// `credentials().rollover`). A secret set in the process with
/// [`Client::set_client_secret`](crate::Client::set_client_secret) wins over
/// the source until the source's content changes. During token fetches the
/// source is read off the runtime's worker threads, and a read that takes
/// more than 5 s is given up (the last secret is used).
///
/// ```no_run
/// use sentryagent_idp::Client;
/// use sentryagent_idp::auth::SecretSource;
///
/// let client = Client::builder()
///     .base_url("https://idp.example.com")
///     .client_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
///     // A Kubernetes secret mounted as a file, updated in place on rotation.
///     .client_secret_source(SecretSource::file("/var/run/secrets/agentidp/client-secret"))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), sentryagent_idp::Error>(())
/// ```
#[derive(Clone)]
pub struct SecretSource {
    kind: Arc<Kind>,
}

enum Kind {
    Fixed(SecretString),
    Env(String),
    File(PathBuf),
    Fn(Box<dyn Fn() -> Result<SecretString> + Send + Sync>),
}

impl SecretSource {
    /// Always `secret` (what [`client_secret`](crate::ClientBuilder::client_secret) sets).
    pub fn fixed(secret: impl Into<SecretString>) -> Self {
        Self::of(Kind::Fixed(secret.into()))
    }

    /// The environment variable `name`, read again on `invalid_client`.
    pub fn env(name: impl Into<String>) -> Self {
        Self::of(Kind::Env(name.into()))
    }

    /// The contents of the file at `path` (surrounding whitespace, such as
    /// a final newline, removed), read again before every token request.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::of(Kind::File(path.into()))
    }

    /// What `read` returns, called again on `invalid_client` (e.g. a lookup
    /// in a secret manager's local cache). It should not block for long.
    pub fn from_fn(read: impl Fn() -> Result<SecretString> + Send + Sync + 'static) -> Self {
        Self::of(Kind::Fn(Box::new(read)))
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind: Arc::new(kind),
        }
    }

    /// Reads the secret now. An empty secret is an error.
    pub fn read(&self) -> Result<SecretString> {
        let secret = match &*self.kind {
            Kind::Fixed(secret) => secret.clone(),
            Kind::Env(name) => std::env::var(name).map(SecretString::from).map_err(|_| {
                Error::config(format!("the environment variable {name} is not set"))
            })?,
            Kind::File(path) => read_secret_file(path)?,
            Kind::Fn(read) => read()?,
        };
        if secret.expose_secret().is_empty() {
            return Err(Error::config("client_secret is empty"));
        }
        Ok(secret)
    }

    /// Whether the secret is read again before every token request (a
    /// file); the others are read again only on `invalid_client`.
    pub(crate) fn read_before_each_fetch(&self) -> bool {
        matches!(&*self.kind, Kind::File(_))
    }
}

/// The most a secret file may hold (64 KiB): a secret is a line, and a
/// path pointing at something endless (`/dev/zero`) must not fill memory.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a secret file: a regular file only (a FIFO would block the reader
/// until someone writes to it), at most [`MAX_SECRET_FILE`] bytes, trimmed.
fn read_secret_file(path: &std::path::Path) -> Result<SecretString> {
    use std::io::Read;
    let fail = |what: &dyn fmt::Display| {
        Error::config(format!(
            "cannot read the client secret file {}: {what}",
            path.display()
        ))
    };
    let metadata = std::fs::metadata(path).map_err(|e| fail(&e.kind()))?;
    if !metadata.is_file() {
        return Err(fail(&"it is not a regular file"));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(&e.kind()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e.kind()))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(fail(&format!("it is larger than {MAX_SECRET_FILE} bytes")));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(&"it is not UTF-8"))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            Kind::Fixed(_) => f.write_str("SecretSource::Fixed([REDACTED])"),
            Kind::Env(name) => write!(f, "SecretSource::Env({name})"),
            Kind::File(path) => write!(f, "SecretSource::File({})", path.display()),
            Kind::Fn(_) => f.write_str("SecretSource::Fn"),
        }
    }
}
