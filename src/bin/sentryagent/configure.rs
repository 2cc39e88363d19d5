//! `sentryagent configure`: writes a profile to the config file, mode 0600.
//! Prompts for what the flags and the environment do not give; the secret
//! without echo.

use clap::Args;
use secrecy::ExposeSecret;

use crate::args::Global;
use crate::config::{self, Profile};
use crate::failure::CliError;
use crate::prompt;

/// The origin offered when there is none yet: the server's own default.
const DEFAULT_BASE_URL: &str = "http://localhost:3000";

#[derive(Debug, Args)]
pub(crate) struct Configure {}

impl Configure {
    pub async fn run(self, global: &Global) -> Result<(), CliError> {
        let path = config::config_path(global)?;
        let mut file = config::read_config(&path)?;
        let current = file.profiles.remove(&global.profile).unwrap_or_default();
        let ask = |name: &str,
                   given: &Option<String>,
                   current: &Option<String>,
                   default: Option<&str>| {
            if let Some(value) = given {
                return Ok(value.clone());
            }
            let offered = current.as_deref().or(default);
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
        };
        let base_url = ask(
            "API URL",
            &global.base_url,
            &current.base_url,
            Some(DEFAULT_BASE_URL),
        )?;
        let client_id = ask("Client id", &global.client_id, &current.client_id, None)?;
        let secret = if global.client_secret_stdin {
            config::read_secret_line(std::io::stdin().lock())?
        } else if prompt::interactive() {
            prompt::secret("Client secret (not shown): ")?
        } else {
            return Err(CliError::Usage(
                "no client secret: pass --client-secret-stdin, or run `sentryagent configure` on a terminal".into(),
            ));
        };
        file.profiles.insert(
            global.profile.clone(),
            Profile {
                base_url: Some(base_url),
                client_id: Some(client_id),
                client_secret: Some(secret.expose_secret().to_owned()),
                client_secret_file: None,
                scopes: current.scopes,
            },
        );
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
}
