//! Where the settings come from: flags, then `AGENTIDP_*` variables, then
//! the profile in `config.toml`, then (for the `default` profile) the
//! upstream CLI's `~/.sentryagent/config.json`, read as it is. The first
//! place that has a setting wins, and a file is read only when a setting is
//! still missing after the places before it.
//!
//! A file is used only when no one else can change it, nor read it when it
//! holds a client secret (as ssh treats its files): see `permissions`.

use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::args::Global;
use crate::failure::CliError;
use crate::permissions;
use sentryagent_idp::auth::SecretSource;
use sentryagent_idp::store::FileStore;
use sentryagent_idp::{Client, ScopeSet};

/// The config file's name in its directory.
const FILE_NAME: &str = "config.toml";

/// The variable holding the client secret.
pub(crate) const SECRET_VARIABLE: &str = "AGENTIDP_CLIENT_SECRET";

/// Every variable this tool reads that holds the client secret or says where
/// it is (`--client-secret-file`'s): kept from the children it starts.
pub(crate) const SECRET_VARIABLES: [&str; 2] = [SECRET_VARIABLE, "AGENTIDP_CLIENT_SECRET_FILE"];

/// The longest secret line read from stdin.
const MAX_SECRET_LINE: usize = 64 * 1024;

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

/// Reads `config.toml`, or an empty one when there is none; refuses one
/// that others can change, or read when it holds a secret.
pub(crate) fn read_config(path: &Path) -> Result<ConfigFile, CliError> {
    let Some(read) = permissions::read_settings(path)? else {
        return Ok(ConfigFile::default());
    };
    let file: ConfigFile = toml::from_str(&read.text)
        .map_err(|e| CliError::Usage(format!("{}: {}", path.display(), e.message())))?;
    refuse_other_tables(&read.text, path)?;
    if file.profiles.values().any(|p| p.client_secret.is_some()) {
        read.private_or_refuse(path)?;
    }
    Ok(file)
}

/// Refuses what lies outside `[profiles.NAME]` tables, such as an
/// AWS-style `[default]`, which would otherwise be passed over in silence
/// (and the command run without its settings).
fn refuse_other_tables(text: &str, path: &Path) -> Result<(), CliError> {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    let Some((name, value)) = table.iter().find(|(name, _)| *name != "profiles") else {
        return Ok(());
    };
    // `configure` reads this file too, so it cannot be the way out: the
    // edit is what to say.
    let (what, remedy) = if value.is_table() {
        (
            format!("[{name}]"),
            format!("rename the table `[profiles.{name}]`"),
        )
    } else {
        (
            name.clone(),
            "move it under the table `[profiles.default]`".to_owned(),
        )
    };
    Err(CliError::Usage(format!(
        "{}: `{what}` is not read: settings go in a profile's table; {remedy}",
        path.display()
    )))
}

/// The settings, each from the first place that has it.
pub(crate) fn resolve(global: &Global) -> Result<Settings, CliError> {
    let secret_given = global.client_secret_stdin
        || global.client_secret_file.is_some()
        || std::env::var_os(SECRET_VARIABLE).is_some();
    // The profile may still give a setting (its scopes, at least) unless
    // flags and variables give every one.
    let profile = if global.base_url.is_none()
        || global.client_id.is_none()
        || !secret_given
        || global.scopes.is_empty()
    {
        let path = config_path(global)?;
        let profile = read_config(&path)?.profiles.remove(&global.profile);
        if profile.is_none() && global.profile != "default" {
            return Err(CliError::Usage(format!(
                "{} has no profile `{}`",
                path.display(),
                global.profile
            )));
        }
        profile.unwrap_or_default()
    } else {
        Profile::default()
    };
    // The upstream file only for what is still missing.
    let missing = (global.base_url.is_none() && profile.base_url.is_none())
        || (global.client_id.is_none() && profile.client_id.is_none())
        || (!secret_given
            && profile.client_secret.is_none()
            && profile.client_secret_file.is_none());
    let upstream = if missing && global.profile == "default" {
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
        SecretSource::fixed(stdin_secret_line()?)
    } else if let Some(file) = &global.client_secret_file {
        secret_file(file)?
    } else if std::env::var_os(SECRET_VARIABLE).is_some() {
        SecretSource::env(SECRET_VARIABLE)
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
    let Some(read) = permissions::read_settings(&path)? else {
        return Ok(None);
    };
    let upstream: Upstream = serde_json::from_str(&read.text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    if upstream.client_secret.is_some() {
        read.private_or_refuse(&path)?;
    }
    Ok(Some(upstream))
}

/// A secret file's source, read again before each token request, once its
/// permissions are checked (those of every directory on its way included).
pub(crate) fn secret_file(path: &Path) -> Result<SecretSource, CliError> {
    Ok(SecretSource::file(permissions::secret_file(path)?))
}

/// The client secret from the first line of standard input, read without
/// a buffer: what follows the line is left to a child (`token exec`).
pub(crate) fn stdin_secret_line() -> Result<SecretString, CliError> {
    read_secret_line(UnbufferedStdin)
}

/// The first line of `input`, without its line ending, read one byte at a
/// time so that nothing after it is consumed.
pub(crate) fn read_secret_line(mut input: impl Read) -> Result<SecretString, CliError> {
    let mut line = zeroize::Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= MAX_SECRET_LINE => {
                return Err(CliError::Usage(format!(
                    "the first line of standard input is longer than {} KiB; it is not a client secret",
                    MAX_SECRET_LINE / 1024
                )));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CliError::Io(e)),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let secret = std::str::from_utf8(&line)
        .map_err(|_| CliError::Usage("the client secret on standard input is not UTF-8".into()))?;
    if secret.is_empty() {
        return Err(CliError::Usage(
            "standard input held no client secret".into(),
        ));
    }
    Ok(SecretString::from(secret.to_owned()))
}

/// Standard input read with read(2) itself: `std::io::Stdin` reads ahead
/// into its buffer, taking bytes meant for whoever reads next.
struct UnbufferedStdin;

impl Read for UnbufferedStdin {
    #[cfg(unix)]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(rustix::io::read(std::io::stdin(), buf)?)
    }

    // Elsewhere std's reader, which may read ahead.
    #[cfg(not(unix))]
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::stdin().lock().read(buf)
    }
}

/// Writes `text` to `path` atomically, readable by its owner only, in a
/// directory only they may enter when it is created here.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let dir = parent_dir(path);
    if !dir.exists() {
        let mut create = std::fs::DirBuilder::new();
        create.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut create, 0o700);
        create
            .create(dir)
            .map_err(|e| CliError::File(path.to_owned(), e))?;
    }
    replace_private(path, text)
}

/// The directory a file is in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `text` to `path` atomically, readable by its owner only, in the
/// directory it names, which must exist.
pub(crate) fn replace_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let dir = parent_dir(path);
    let io = |e| CliError::File(path.to_owned(), e);
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
    fn an_aws_style_section_is_refused_naming_the_profile_table() {
        let path = Path::new("config.toml");
        let text = "[default]\nbase_url = \"http://x\"\n";
        let refused = refuse_other_tables(text, path).unwrap_err().to_string();
        assert!(
            refused.contains("`[default]`") && refused.contains("`[profiles.default]`"),
            "{refused}"
        );
        assert!(refuse_other_tables("[profiles.default]\nbase_url = \"x\"\n", path).is_ok());
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
        assert!(read_secret_line(&vec![b'x'; MAX_SECRET_LINE + 1][..]).is_err());
    }

    #[test]
    fn the_secret_line_reads_nothing_after_its_line_ending() {
        let mut input = &b"sk_live_abc\nfor the child\n"[..];
        read_secret_line(&mut input).unwrap();
        assert_eq!(input, b"for the child\n");
    }

    #[test]
    fn the_secret_variables_are_those_the_flags_read() {
        use clap::Args;
        let command = Global::augment_args(clap::Command::new("sentryagent"));
        let file = command
            .get_arguments()
            .find(|a| a.get_id() == "client_secret_file")
            .and_then(|a| a.get_env())
            .and_then(|v| v.to_str())
            .map(str::to_owned);
        assert_eq!(file.as_deref(), Some(SECRET_VARIABLES[1]));
        // No other flag's variable holds or points to a secret.
        let others: Vec<_> = command
            .get_arguments()
            .filter_map(|a| a.get_env()?.to_str())
            .filter(|v| v.contains("SECRET") && !SECRET_VARIABLES.contains(v))
            .collect();
        assert!(others.is_empty(), "{others:?}");
    }
}
