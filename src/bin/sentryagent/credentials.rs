//! `sentryagent credentials …`: an agent's client credentials. A new secret
//! is printed once, to stdout only.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;

use clap_complete::engine::ArgValueCandidates;

use crate::agents::AgentRef;
use crate::args::{duration, timestamp};
use crate::complete;
use crate::config::{parent_dir, replace_private};
use crate::failure::CliError;
use crate::output::{Listing, Record, Style, status_style, to_json, when};
use crate::prompt;
use crate::session::Session;
use sentryagent_idp::model::{Credential, CredentialWithSecret, Timestamp, Uuid};

#[derive(Debug, Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Generates a credential; its secret is shown this once.
    Generate {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
        /// When it expires (RFC 3339); never by default.
        #[arg(long, value_parser = timestamp)]
        expires_at: Option<Timestamp>,
    },
    /// Lists an agent's credentials.
    List {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
    },
    /// Replaces a credential's secret at once: the old secret stops working (asks first).
    Rotate {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
        /// The credential's id.
        #[arg(add = ArgValueCandidates::new(complete::credentials))]
        credential_id: Uuid,
        /// When the new secret expires (RFC 3339).
        #[arg(long, value_parser = timestamp)]
        expires_at: Option<Timestamp>,
    },
    /// Replaces a credential without downtime: a new one, proven, published,
    /// then the old one revoked after a grace period (asks first).
    Rollover(Rollover),
    /// Revokes a credential for good (asks first).
    Revoke {
        /// The agent's id or email.
        #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
        agent: AgentRef,
        /// The credential's id.
        #[arg(add = ArgValueCandidates::new(complete::credentials))]
        credential_id: Uuid,
    },
}

#[derive(Debug, Args)]
pub(crate) struct Rollover {
    /// The agent's id or email.
    #[arg(value_name = "AGENT", add = ArgValueCandidates::new(complete::agents))]
    agent: AgentRef,
    /// The credential to replace.
    #[arg(add = ArgValueCandidates::new(complete::credentials))]
    credential_id: Uuid,
    /// How long both work, for every replica to pick up the new secret.
    #[arg(long, default_value = "120s", value_parser = duration)]
    grace: Duration,
    /// Publishes the new secret by writing it to this file (0600,
    /// atomically), e.g. the one replicas read with `--client-secret-file`;
    /// without it, the new credential is printed. Its directory must exist
    /// (it is not created: a mistyped path would publish where no replica
    /// reads) and be safe from other users.
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// When the new credential expires (RFC 3339).
    #[arg(long, value_parser = timestamp)]
    expires_at: Option<Timestamp>,
}

impl CredentialsCommand {
    pub async fn run(self, s: &Session) -> Result<(), CliError> {
        // `--fields` is checked before anything is sent: refused after a
        // generate or rotate, the new secret would never be shown.
        if matches!(
            self,
            CredentialsCommand::Generate { .. } | CredentialsCommand::Rotate { .. }
        ) {
            s.out
                .check::<CredentialWithSecret>()
                .map_err(CliError::Usage)?;
            // `-q` would print the id and drop the secret: a credential nobody holds.
            if s.out.quiet() {
                return Err(CliError::Usage(
                    "-q prints ids only, and this command's output is a new secret:                      use --fields credentialId,clientSecret (or -o json) instead"
                        .into(),
                ));
            }
        }
        let credentials = s.client.credentials();
        let fresh = match self {
            CredentialsCommand::Generate { agent, expires_at } => {
                let mut generate = credentials.generate(agent.resolve(&s.client).await?);
                if let Some(at) = expires_at {
                    generate = generate.expires_at(at);
                }
                generate.send().await?
            }
            CredentialsCommand::List { agent } => {
                s.out.check::<Credential>().map_err(CliError::Usage)?;
                let agent_id = agent.resolve(&s.client).await?;
                let listed = credentials.list(agent_id).send().await?;
                return Ok(s.out.list(&Listing::whole(listed))?);
            }
            CredentialsCommand::Rotate {
                agent,
                credential_id,
                expires_at,
            } => {
                let agent_id = agent.resolve(&s.client).await?;
                prompt::confirm(
                    s.yes,
                    &format!("rotate credential {credential_id}"),
                    "Its current secret stops working at once.",
                )?;
                let mut rotate = credentials.rotate(agent_id, credential_id);
                if let Some(at) = expires_at {
                    rotate = rotate.expires_at(at);
                }
                rotate.send().await?
            }
            CredentialsCommand::Rollover(r) => return rollover(s, r).await,
            CredentialsCommand::Revoke {
                agent,
                credential_id,
            } => {
                let agent_id = agent.resolve(&s.client).await?;
                prompt::confirm(
                    s.yes,
                    &format!("revoke credential {credential_id}"),
                    "This cannot be undone.",
                )?;
                match credentials.revoke(agent_id, credential_id).send().await {
                    // As a second `agents decommission`: done already, so a note.
                    Err(e) if e.code() == Some("CREDENTIAL_ALREADY_REVOKED") => eprintln!(
                        "note: credential {credential_id} was already revoked; nothing changed"
                    ),
                    done => done?,
                }
                let text = format!("revoked credential {credential_id}");
                return Ok(s
                    .out
                    .status("revoked", credential_id.to_string().into(), &text)?);
            }
        };
        show_secret(s, &fresh)
    }
}

/// Prints a new credential with its secret, and says to keep it.
fn show_secret(s: &Session, credential: &CredentialWithSecret) -> Result<(), CliError> {
    s.out.one(credential)?;
    prompt::note("Store the client secret now: it is not shown again.");
    Ok(())
}

async fn rollover(s: &Session, r: Rollover) -> Result<(), CliError> {
    if let Some(path) = &r.secret_file {
        publishable_or_refuse(path)?;
    }
    prompt::confirm(
        s.yes,
        &format!("roll over credential {}", r.credential_id),
        &format!(
            "A new one now; this one is revoked after {}s.",
            r.grace.as_secs()
        ),
    )?;
    let mut rollover = s
        .client
        .credentials()
        .rollover(r.agent.resolve(&s.client).await?, r.credential_id)
        .grace(r.grace);
    if let Some(at) = r.expires_at {
        rollover = rollover.expires_at(at);
    }
    let secret_file = r.secret_file.as_deref();
    let grace = r.grace.as_secs();
    let waiting = prompt::spinner("generating and proving a new credential…");
    let progress = &waiting;
    let done = rollover
        .run(|new| async move {
            let published = match secret_file {
                Some(path) => replace_private(path, new.client_secret.expose_secret()),
                None => progress.suspend(|| show_secret(s, &new)),
            };
            published.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            progress.set_message(format!(
                "new credential {} published; revoking the old one in {grace}s…",
                new.credential_id
            ));
            Ok(())
        })
        .await;
    waiting.finish_and_clear();
    let done = done?;
    let text = format!(
        "credential {} is in use; {} is revoked",
        done.new_credential_id, done.revoked_credential_id
    );
    let summary = serde_json::json!({
        "newCredentialId": done.new_credential_id,
        "revokedCredentialId": done.revoked_credential_id,
    });
    if r.secret_file.is_some() {
        s.out.status("rollover", summary, &text)?;
    } else {
        prompt::note(&text);
    }
    Ok(())
}

/// Refuses, before anything is generated, a secret file that could not be
/// published or that replicas would refuse to read: its directory missing
/// (a typo), not a directory, open to other users, or closed to this one;
/// the path taken by another user's file, or by a
/// directory or another kind of file that a rename cannot replace.
fn publishable_or_refuse(path: &std::path::Path) -> Result<(), CliError> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        return Err(CliError::Usage(format!(
            "--secret-file {}: the directory {} does not exist; nothing was generated \
             (create it, or check the path)",
            path.display(),
            dir.display()
        )));
    }
    crate::permissions::directory_or_refuse(dir)?;
    // Publishing starts with a temporary file there: make one now (removed
    // when dropped), so that a directory this user cannot write to is
    // refused before a credential is generated, not after.
    tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        CliError::Usage(format!(
            "--secret-file {}: cannot write in the directory {} ({e}); nothing was generated",
            path.display(),
            dir.display()
        ))
    })?;
    match std::fs::symlink_metadata(path) {
        // A link is replaced by the file, as any file there is.
        Ok(meta) if !meta.is_file() && !meta.is_symlink() => Err(CliError::Usage(format!(
            "--secret-file {} is not a regular file; nothing was generated",
            path.display()
        ))),
        // Another user's file (or link): not replaceable in a sticky
        // directory, and not one replicas would read.
        Ok(meta) => crate::permissions::owner_of_or_refuse(path, &meta)
            .map_err(|e| CliError::Usage(format!("--secret-file: {e}; nothing was generated"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::File(path.to_owned(), e)),
    }
}

impl Record for Credential {
    const COLUMNS: &'static [&'static str] = &[
        "CREDENTIAL ID",
        "CLIENT ID",
        "STATUS",
        "EXPIRES",
        "CREATED",
        "REVOKED",
    ];
    const FIELDS: &'static [&'static str] = &[
        "credentialId",
        "clientId",
        "status",
        "expiresAt",
        "createdAt",
        "revokedAt",
    ];
    // The client id is the agent's, the same on every row of `credentials list AGENT`.
    const WIDE: &'static [&'static str] = &["CLIENT ID", "REVOKED"];
    const WHOLE: &'static [&'static str] = &[
        "CREDENTIAL ID",
        "CLIENT ID",
        "EXPIRES",
        "CREATED",
        "REVOKED",
    ];
    const NOUN: &'static str = "credentials";

    fn cells(&self) -> Vec<(String, Style)> {
        vec![
            (self.credential_id.to_string(), Style::Plain),
            (self.client_id.to_string(), Style::Plain),
            (self.status.to_string(), status_style(self.status.as_str())),
            (when(self.expires_at), Style::Plain),
            (when(Some(self.created_at)), Style::Plain),
            (when(self.revoked_at), Style::Plain),
        ]
    }

    fn json(&self) -> serde_json::Value {
        to_json(self)
    }
}

impl Record for CredentialWithSecret {
    const COLUMNS: &'static [&'static str] = &[
        "CREDENTIAL ID",
        "CLIENT ID",
        "CLIENT SECRET",
        "STATUS",
        "CREATED",
        "EXPIRES",
    ];
    const FIELDS: &'static [&'static str] = &[
        "credentialId",
        "clientId",
        "clientSecret",
        "status",
        "createdAt",
        "expiresAt",
    ];
    // A secret cut to fit could not be used: nothing of this is cut.
    const WHOLE: &'static [&'static str] = Self::COLUMNS;

    fn cells(&self) -> Vec<(String, Style)> {
        vec![
            (self.credential_id.to_string(), Style::Plain),
            (self.client_id.to_string(), Style::Plain),
            (self.client_secret.expose_secret().to_owned(), Style::Bold),
            (self.status.to_string(), status_style(self.status.as_str())),
            (when(Some(self.created_at)), Style::Plain),
            (when(self.expires_at), Style::Plain),
        ]
    }

    /// The one place the secret is written out: this is what the command is for.
    fn json(&self) -> serde_json::Value {
        let mut json = to_json(self);
        json["clientSecret"] = self.client_secret.expose_secret().into();
        json
    }
}
