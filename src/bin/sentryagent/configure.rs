//! `sentryagent configure`: writes a profile to the config file, mode 0600,
//! once a token request with it has worked (`--no-verify` skips the check).
//! Prompts for what the flags do not give, offering the current values
//! (Enter keeps them, the secret included); the secret without echo.
//! `AGENTIDP_*` variables are never written into the profile.
//!
//! `sentryagent configure list`: the settings in effect and where each comes
//! from, secrets never shown.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::args::Global;
use crate::config::{self, Profile};
use crate::failure::CliError;
use crate::prompt;

/// The origin offered when there is none yet: the server's own default.
const DEFAULT_BASE_URL: &str = "http://localhost:3000";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Configure {
    /// Saves without first trying a token request with the settings.
    #[arg(long)]
    no_verify: bool,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Shows the settings in effect and where each comes from (flag,
    /// variable, profile, upstream file); secrets are never shown.
    List,
}

/// The client secret a profile is saved with.
enum Secret {
    /// Typed or read from stdin now.
    Given(SecretString),
    /// A file to read it from (`--client-secret-file`).
    File(PathBuf),
    /// The profile's current one, kept (Enter at the prompt).
    Kept,
}

impl Configure {
    pub async fn run(self, global: &Global) -> Result<(), CliError> {
        match self.action {
            Some(Action::List) => list(global),
            None => write(global, !self.no_verify).await,
        }
    }
}

/// The value of option `id` when it was given on the command line; a value
/// from an `AGENTIDP_*` variable is not saved, and a note says so.
fn flag_value<T: Clone>(global: &Global, id: &str, value: &Option<T>, variable: &str) -> Option<T> {
    match global.sources.of(id) {
        Some(ValueSource::CommandLine) => value.clone(),
        Some(ValueSource::EnvVariable) => {
            prompt::note(&format!(
                "note: {variable} is set; it is not saved to the profile (while set, it overrides it)"
            ));
            None
        }
        _ => None,
    }
}

async fn write(global: &Global, verify: bool) -> Result<(), CliError> {
    let path = config::config_path(global)?;
    let mut file = config::read_config(&path)?;
    let current = file.profiles.remove(&global.profile).unwrap_or_default();
    let base_url = match flag_value(global, "base_url", &global.base_url, "AGENTIDP_BASE_URL") {
        Some(given) => given,
        // The prompt offers the current URL without its user info (a password).
        None => match current.base_url.as_deref() {
            Some(now) if without_user_info(now) != now => {
                let shown = without_user_info(now).into_owned();
                let answer = ask("API URL", None, Some(&shown))?;
                if answer == shown {
                    now.to_owned()
                } else {
                    answer
                }
            }
            now => ask("API URL", None, now.or(Some(DEFAULT_BASE_URL)))?,
        },
    };
    let client_id = ask(
        "Client id",
        flag_value(global, "client_id", &global.client_id, "AGENTIDP_CLIENT_ID"),
        current.client_id.as_deref(),
    )?;
    let scopes = match global.sources.of("scopes") {
        Some(ValueSource::CommandLine) => Some(global.scopes.join(" ")),
        Some(ValueSource::EnvVariable) => {
            prompt::note(
                "note: AGENTIDP_SCOPES is set; it is not saved to the profile (while set, it overrides it)",
            );
            current.scopes.clone()
        }
        _ => current.scopes.clone(),
    };
    if std::env::var_os("AGENTIDP_CLIENT_SECRET").is_some() {
        prompt::note(
            "note: AGENTIDP_CLIENT_SECRET is set; it is not saved to the profile (while set, it overrides it)",
        );
    }
    let has_secret = current.client_secret.is_some() || current.client_secret_file.is_some();
    let secret_file = flag_value(
        global,
        "client_secret_file",
        &global.client_secret_file,
        "AGENTIDP_CLIENT_SECRET_FILE",
    );
    let secret = if global.client_secret_stdin {
        Secret::Given(config::read_secret_line(std::io::stdin().lock())?)
    } else if let Some(path) = secret_file {
        // Saved absolute: later commands run in other directories.
        let absolute = std::path::absolute(&path).map_err(|e| CliError::File(path.clone(), e))?;
        Secret::File(absolute)
    } else if prompt::interactive() {
        let question = if has_secret {
            "Client secret (not shown; Enter keeps the current one): "
        } else {
            "Client secret (not shown): "
        };
        match prompt::secret_or_empty(question)? {
            Some(secret) => Secret::Given(secret),
            None if has_secret => Secret::Kept,
            None => return Err(CliError::Usage("no client secret was entered".into())),
        }
    } else if has_secret {
        Secret::Kept
    } else {
        return Err(CliError::Usage(
            "no client secret: pass --client-secret-stdin or --client-secret-file, or run \
             `sentryagent configure` on a terminal"
                .into(),
        ));
    };
    let (client_secret, client_secret_file) = match secret {
        Secret::Given(secret) => (Some(secret.expose_secret().to_owned()), None),
        Secret::File(path) => (None, Some(path)),
        Secret::Kept => (current.client_secret, current.client_secret_file),
    };
    let profile = Profile {
        base_url: Some(base_url),
        client_id: Some(client_id),
        client_secret,
        client_secret_file,
        scopes,
    };
    if verify {
        try_token_request(global, &profile).await?;
    }
    file.profiles.insert(global.profile.clone(), profile);
    let mut text = toml::to_string(&file)
        .map_err(|e| CliError::Usage(format!("cannot write the config: {e}")))?;
    let written = config::write_private(&path, &text);
    zeroize::Zeroize::zeroize(&mut text);
    written?;
    prompt::note(&format!(
        "Profile `{}` saved to {} (mode 0600).",
        global.profile,
        path.display()
    ));
    Ok(())
}

/// A value: the flag's, or the answer to a prompt offering `offered` (Enter
/// keeps it), or `offered` when there is no terminal to ask on.
fn ask(name: &str, given: Option<String>, offered: Option<&str>) -> Result<String, CliError> {
    if let Some(value) = given {
        return Ok(value);
    }
    if !prompt::interactive() {
        return offered.map(str::to_owned).ok_or_else(|| {
            CliError::Usage(format!(
                "no {name}: pass it as a flag, or run `sentryagent configure` on a terminal"
            ))
        });
    }
    let answer = prompt::line(&match offered {
        Some(offered) => format!("{name} [{offered}]: "),
        None => format!("{name}: "),
    })?;
    match (answer.trim(), offered) {
        ("", Some(offered)) => Ok(offered.to_owned()),
        ("", None) => Err(CliError::Usage(format!("no {name} was entered"))),
        (answer, _) => Ok(answer.to_owned()),
    }
}

/// Asks for a token with `profile`'s settings: a wrong URL, id or secret is
/// refused here (with the exit code it would get later), not saved.
async fn try_token_request(global: &Global, profile: &Profile) -> Result<(), CliError> {
    let secret = match (&profile.client_secret, &profile.client_secret_file) {
        (Some(secret), _) => sentryagent_idp::auth::SecretSource::fixed(secret.clone()),
        (None, Some(path)) => config::secret_file(path)?,
        (None, None) => return Err(CliError::Usage("no client secret".into())),
    };
    let settings = config::Settings {
        base_url: profile.base_url.clone().unwrap_or_default(),
        client_id: profile.client_id.clone().unwrap_or_default(),
        secret,
        scopes: profile
            .scopes
            .as_deref()
            .map(config::scope_set)
            .transpose()?,
        allow_insecure_http: global.allow_insecure_http,
    };
    let client = settings.client(false)?;
    let spinner = prompt::spinner(format!("trying a token request to {}…", client.api_url()));
    let tried = client.access_token().await;
    spinner.finish_and_clear();
    match tried {
        Ok(_) => {
            prompt::note(&format!("A token request to {} worked.", client.api_url()));
            Ok(())
        }
        Err(e) => {
            prompt::note("The profile was not saved (`--no-verify` saves it untried).");
            Err(CliError::Api(e).at(client.api_url()))
        }
    }
}

/// `configure list`: each setting in effect, and where it comes from.
fn list(global: &Global) -> Result<(), CliError> {
    let path = config::config_path(global)?;
    let profile = config::read_config(&path)?.profiles.remove(&global.profile);
    let profile_name = format!("profile `{}` in {}", global.profile, path.display());
    let upstream = if global.profile == "default" {
        config::read_upstream()?
    } else {
        None
    };
    let upstream_name = || {
        config::upstream_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let origin = |id: &str, variable: &str| match global.sources.of(id) {
        Some(ValueSource::CommandLine) => Some(format!("flag --{}", id.replace('_', "-"))),
        Some(ValueSource::EnvVariable) => Some(format!("variable {variable}")),
        _ => None,
    };
    let mut rows: Vec<(&str, String, String)> = Vec::new();
    let mut plain = |name: &'static str,
                     id: &str,
                     variable: &str,
                     flag: Option<String>,
                     profiled: Option<String>,
                     upstreamed: Option<String>| {
        let row = if let (Some(value), Some(from)) = (flag, origin(id, variable)) {
            (value, from)
        } else if let Some(value) = profiled {
            (value, profile_name.clone())
        } else if let Some(value) = upstreamed {
            (value, upstream_name())
        } else {
            ("-".into(), "not set".into())
        };
        rows.push((name, row.0, row.1));
    };
    let p = profile.as_ref();
    let u = upstream.as_ref();
    let shown_url = |url: Option<String>| url.map(|u| without_user_info(&u).into_owned());
    plain(
        "base_url",
        "base_url",
        "AGENTIDP_BASE_URL",
        shown_url(global.base_url.clone()),
        shown_url(p.and_then(|p| p.base_url.clone())),
        shown_url(u.and_then(|u| u.api_url.clone())),
    );
    plain(
        "client_id",
        "client_id",
        "AGENTIDP_CLIENT_ID",
        global.client_id.clone(),
        p.and_then(|p| p.client_id.clone()),
        u.and_then(|u| u.client_id.clone()),
    );
    // The secret: where it comes from, never what it is (first found wins, as `config::resolve`).
    let hidden = || "(hidden)".to_owned();
    let secret = if global.client_secret_stdin {
        (hidden(), "flag --client-secret-stdin".to_owned())
    } else if let (Some(file), Some(from)) = (
        &global.client_secret_file,
        origin("client_secret_file", "AGENTIDP_CLIENT_SECRET_FILE"),
    ) {
        (format!("file {}", file.display()), from)
    } else if std::env::var_os("AGENTIDP_CLIENT_SECRET").is_some() {
        (hidden(), "variable AGENTIDP_CLIENT_SECRET".to_owned())
    } else if p.is_some_and(|p| p.client_secret.is_some()) {
        (hidden(), profile_name.clone())
    } else if let Some(file) = p.and_then(|p| p.client_secret_file.as_ref()) {
        (format!("file {}", file.display()), profile_name.clone())
    } else if u.is_some_and(|u| u.client_secret.is_some()) {
        (hidden(), upstream_name())
    } else {
        ("-".into(), "not set (asked on a terminal)".into())
    };
    rows.push(("client_secret", secret.0, secret.1));
    let scopes = (!global.scopes.is_empty()).then(|| global.scopes.join(" "));
    let scope_row = if let (Some(value), Some(from)) = (scopes, origin("scopes", "AGENTIDP_SCOPES"))
    {
        (value, from.replace("--scopes", "--scope"))
    } else if let Some(value) = p.and_then(|p| p.scopes.clone()) {
        (value, profile_name.clone())
    } else {
        (
            sentryagent_idp::ScopeSet::documented().to_string(),
            "default".into(),
        )
    };
    rows.push(("scopes", scope_row.0, scope_row.1));
    let profile_from = origin("profile", "AGENTIDP_PROFILE").unwrap_or_else(|| "default".into());
    let config_from = origin("config", "AGENTIDP_CONFIG").unwrap_or_else(|| "default".into());
    rows.insert(0, ("config", path.display().to_string(), config_from));
    rows.insert(0, ("profile", global.profile.clone(), profile_from));

    // Values from variables and files, shown on a terminal: no escape sequences.
    let rows: Vec<(&str, String, String)> = rows
        .into_iter()
        .map(|(name, value, source)| {
            let safe = |t: &str| crate::sanitize::terminal(t).into_owned();
            (name, safe(&value), safe(&source))
        })
        .collect();
    let width = |column: usize| {
        rows.iter()
            .map(|r| [r.0.len(), r.1.chars().count()][column])
            .max()
            .unwrap_or(0)
            .max(["NAME", "VALUE"][column].len())
    };
    let (name_width, value_width) = (width(0), width(1));
    let mut text = format!("{:<name_width$}  {:<value_width$}  SOURCE", "NAME", "VALUE");
    for (name, value, source) in &rows {
        text.push_str(&format!(
            "\n{name:<name_width$}  {value:<value_width$}  {source}"
        ));
    }
    Ok(global.printer().plain(&text)?)
}

/// `url` without the user info of its authority (`https://ops:pw@h/` is
/// shown `https://***@h/`): a password there must not be printed.
fn without_user_info(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &rest[at + 1..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_user_info;

    #[test]
    fn user_info_is_hidden_and_the_rest_kept() {
        assert_eq!(
            without_user_info("https://ops:hunter2@idp.example:8443/x?q=a@b"),
            "https://***@idp.example:8443/x?q=a@b"
        );
        assert_eq!(without_user_info("ops:pw@h.example/x"), "***@h.example/x");
        assert_eq!(
            without_user_info("http://h.example/a@b"),
            "http://h.example/a@b"
        );
    }
}
