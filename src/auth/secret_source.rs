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
/// `credentials().rollover`).
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
            Kind::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    Error::config(format!(
                        "cannot read the client secret file {}: {}",
                        path.display(),
                        e.kind()
                    ))
                })?);
                SecretString::from(text.trim().to_owned())
            }
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
