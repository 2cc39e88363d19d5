//! Where the settings come from: flags, then `AGENTIDP_*` variables, then
//! the profile in `config.toml`, then (for the `default` profile) the
//! upstream CLI's `~/.sentryagent/config.json`, read as it is.
//!
//! A file holding a client secret is read only when no one else can read it
//! (as ssh treats a private key).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::args::Global;
use crate::failure::CliError;
use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::store::FileStore;
use sentryagent_idp::{Client, ScopeSet};

/// The config file's name in its directory.
const FILE_NAME: &str = "config.toml";

/// What the tool needs to talk to AgentIdP.
#[derive(Debug)]
pub(crate) struct Settings {
    pub base_url: String,
    pub client_id: String,
    pub secret: SecretSource,
    /// The scopes to ask for, when not the SDK's default.
    pub scopes: Option<ScopeSet>,
    /// `--allow-insecure-http`.
    pub allow_insecure_http: bool,
}

/// One profile of `config.toml`.
#[derive(Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// Space-separated scopes to ask for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<String>,
}

/// The upstream Node CLI's `~/.sentryagent/config.json`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Upstream {
    pub api_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// `config.toml`: `[profiles.NAME]` tables.
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Profile>,
}

/// The config file the flags name, or the default one.
pub(crate) fn config_path(global: &Global) -> Result<PathBuf, CliError> {
    if let Some(path) = &global.config {
        return Ok(path.clone());
    }
    directories::ProjectDirs::from("ai", "SentryAgent", "sentryagent")
        .map(|dirs| dirs.config_dir().join(FILE_NAME))
        .ok_or_else(|| {
            CliError::Usage("no home directory to keep the config file in; pass --config".into())
        })
}

/// The upstream CLI's config file, if there is a home directory.
pub(crate) fn upstream_path() -> Option<PathBuf> {
    directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().join(".sentryagent").join("config.json"))
}

/// Reads `config.toml`, or an empty one when there is none.
pub(crate) fn read_config(path: &Path) -> Result<ConfigFile, CliError> {
    let Some(text) = read_if_exists(path)? else {
        return Ok(ConfigFile::default());
    };
    let file: ConfigFile = toml::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {}", path.display(), e.message())))?;
    if file.profiles.values().any(|p| p.client_secret.is_some()) {
        private_or_refuse(path)?;
    }
    Ok(file)
}

/// The settings, each from the first place that has it.
pub(crate) fn resolve(global: &Global) -> Result<Settings, CliError> {
    let path = config_path(global)?;
    let mut file = read_config(&path)?;
    let profile = file.profiles.remove(&global.profile);
    if profile.is_none() && global.profile != "default" {
        return Err(CliError::Usage(format!(
            "{} has no profile `{}`",
            path.display(),
            global.profile
        )));
    }
    let profile = profile.unwrap_or_default();
    let upstream = if global.profile == "default" {
        read_upstream()?
    } else {
        None
    };
    let upstream = upstream.as_ref();

    let base_url = global
        .base_url
        .clone()
        .or(profile.base_url)
        .or_else(|| upstream.and_then(|u| u.api_url.clone()));
    let client_id = global
        .client_id
        .clone()
        .or(profile.client_id)
        .or_else(|| upstream.and_then(|u| u.client_id.clone()));
    let (Some(base_url), Some(client_id)) = (base_url, client_id) else {
        return Err(CliError::NotConfigured);
    };
    let secret = if global.client_secret_stdin {
        SecretSource::fixed(read_secret_line(std::io::stdin().lock())?)
    } else if let Some(file) = &global.client_secret_file {
        secret_file(file)?
    } else if std::env::var_os("AGENTIDP_CLIENT_SECRET").is_some() {
        SecretSource::env("AGENTIDP_CLIENT_SECRET")
    } else if let Some(secret) = profile.client_secret {
        SecretSource::fixed(secret)
    } else if let Some(file) = &profile.client_secret_file {
        secret_file(file)?
    } else if let Some(secret) = upstream.and_then(|u| u.client_secret.clone()) {
        SecretSource::fixed(secret)
    } else if crate::prompt::interactive() {
        SecretSource::fixed(crate::prompt::secret("Client secret: ")?)
    } else {
        return Err(CliError::Usage(
            "no client secret: set AGENTIDP_CLIENT_SECRET, pass --client-secret-file or \
             --client-secret-stdin, or run `sentryagent configure`"
                .into(),
        ));
    };
    let scopes = if global.scopes.is_empty() {
        profile.scopes.as_deref().map(scope_set).transpose()?
    } else {
        Some(scope_set(&global.scopes.join(" "))?)
    };
    Ok(Settings {
        base_url,
        client_id,
        secret,
        scopes,
        allow_insecure_http: global.allow_insecure_http,
    })
}

impl Settings {
    /// A client for these settings; with `cache`, its token is kept in the
    /// file token store so that consecutive commands share one.
    pub fn client(self, cache: bool) -> Result<Client, CliError> {
        let mut builder = Client::builder()
            .base_url(self.base_url)
            .client_id(self.client_id)
            .client_secret_source(self.secret)
            .allow_insecure_http(self.allow_insecure_http)
            .user_agent(concat!("sentryagent-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(scopes) = self.scopes {
            builder = builder.scopes(scopes);
        }
        if cache {
            match FileStore::new() {
                Ok(store) => builder = builder.token_store(store),
                Err(e) => tracing::warn!("no token cache between commands: {e}"),
            }
        }
        Ok(builder.build()?)
    }
}

/// Space-separated scopes, each `resource:action`: the SDK's strict parse,
/// whose message names the word that is not a scope.
pub(crate) fn scope_set(text: &str) -> Result<ScopeSet, CliError> {
    ScopeSet::parse_strict(text).map_err(|e| CliError::Usage(e.to_string()))
}

/// The upstream file, when there is one.
pub(crate) fn read_upstream() -> Result<Option<Upstream>, CliError> {
    let Some(path) = upstream_path() else {
        return Ok(None);
    };
    let Some(text) = read_if_exists(&path)? else {
        return Ok(None);
    };
    let upstream: Upstream = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    if upstream.client_secret.is_some() {
        private_or_refuse(&path)?;
    }
    Ok(Some(upstream))
}

/// A secret file's source, read again before each token request, once its
/// permissions are checked.
pub(crate) fn secret_file(path: &Path) -> Result<SecretSource, CliError> {
    private_or_refuse(path)?;
    Ok(SecretSource::file(path))
}

/// The first line of `input`, without its line ending.
pub(crate) fn read_secret_line(mut input: impl BufRead) -> Result<SecretString, CliError> {
    let mut line = String::new();
    input.read_line(&mut line).map_err(CliError::Io)?;
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(CliError::Usage(
            "standard input held no client secret".into(),
        ));
    }
    let secret = SecretString::from(secret.to_owned());
    zeroize::Zeroize::zeroize(&mut line);
    Ok(secret)
}

fn read_if_exists(path: &Path) -> Result<Option<String>, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::File(path.to_owned(), e)),
    }
}

/// Refuses a secret in a file that others may read.
#[cfg(unix)]
fn private_or_refuse(path: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| CliError::File(path.to_owned(), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(CliError::Usage(format!(
            "permissions {:04o} for {} are too open: it holds a client secret that others \
             can read, so it is not used. Run: chmod 600 {}",
            mode & 0o7777,
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_or_refuse(_: &Path) -> Result<(), CliError> {
    Ok(())
}

/// Writes `text` to `path` atomically, readable by its owner only, in a
/// directory only they may enter when it is created here.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |e| CliError::File(path.to_owned(), e);
    if !dir.exists() {
        let mut create = std::fs::DirBuilder::new();
        create.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
        create.create(dir).map_err(io)?;
    }
    // tempfile creates the file 0600 on Unix before anything is written to it.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_profile_debug_hides_its_secret() {
        let file: ConfigFile = toml::from_str(
            "[profiles.default]\nbase_url = \"http://x\"\nclient_secret = \"sk_live_hidden\"\n",
        )
        .unwrap();
        let printed = format!("{file:?}");
        assert!(
            printed.contains("http://x") && printed.contains("[REDACTED]"),
            "{printed}"
        );
        assert!(!printed.contains("sk_live_hidden"), "{printed}");
    }

    #[test]
    fn an_unknown_key_is_refused() {
        assert!(
            toml::from_str::<ConfigFile>("[profiles.default]\nclient_secrte = \"x\"\n").is_err()
        );
    }

    #[test]
    fn the_secret_line_drops_its_line_ending_and_refuses_nothing() {
        let secret = read_secret_line(&b"sk_live_abc\r\nsecond line\n"[..]).unwrap();
        assert_eq!(secret.expose_secret(), "sk_live_abc");
        assert!(read_secret_line(&b"\n"[..]).is_err());
    }
}
