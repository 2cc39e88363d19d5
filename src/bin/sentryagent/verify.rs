//! `sentryagent verify TOKEN`: checks a token as a service would, with the
//! SDK's verifier: by introspection (the default), or locally against the
//! public key or the server's JWKS.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::{ArgGroup, Args};
use secrecy::ExposeSecret;

use crate::args::Global;
use crate::failure::CliError;
use crate::output::{Record, Style, status_style};
use crate::session::Session;
use sentryagent_idp::verify::{AgentPrincipal, Verifier, VerifyError};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("mode").args(["public_key", "jwks"])))]
pub(crate) struct VerifyArgs {
    /// The token; read from stdin when absent or `-`.
    token: Option<String>,
    /// Verifies locally against this PEM public key, with no request.
    #[arg(long, value_name = "PEM_FILE")]
    public_key: Option<PathBuf>,
    /// Verifies locally against the JWKS of the server at this origin (OIDC discovery).
    #[arg(long, value_name = "URL")]
    jwks: Option<String>,
}

/// What `verify` prints about a valid token.
struct Verified(AgentPrincipal);

impl VerifyArgs {
    pub async fn run(self, global: &Global) -> Result<(), CliError> {
        let out = global.printer();
        out.check::<Verified>().map_err(CliError::Usage)?;
        let token = crate::token::given_or_stdin(self.token)?;
        let verifier = match (&self.public_key, &self.jwks) {
            (Some(path), _) => {
                let pem = std::fs::read(path).map_err(|e| CliError::File(path.clone(), e))?;
                Verifier::public_key_pem(pem)?.build()?
            }
            (None, Some(url)) => Verifier::jwks(url)?.build()?,
            (None, None) => Verifier::introspection(Session::open(global)?.client).build()?,
        };
        match verifier.verify(token.expose_secret()).await {
            Ok(principal) => Ok(out.one(&Verified(principal))?),
            Err(VerifyError::Unavailable { retry_after }) => Err(CliError::Unavailable(format!(
                "AgentIdP could not tell whether the token is valid; try again in {}s",
                retry_after.as_secs().max(1)
            ))),
            Err(_) => {
                out.status("active", false.into(), "active: false")?;
                Err(CliError::Refused(
                    "the token is not valid: expired, revoked, for a decommissioned agent, or not AgentIdP's".into(),
                ))
            }
        }
    }
}

fn unix(at: Option<SystemTime>) -> Option<i64> {
    at.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

impl Record for Verified {
    const COLUMNS: &'static [&'static str] = &[
        "ACTIVE",
        "AGENT ID",
        "CLIENT ID",
        "SCOPE",
        "EXPIRES",
        "ISSUED",
        "TOKEN ID",
    ];
    const FIELDS: &'static [&'static str] =
        &["active", "sub", "client_id", "scope", "exp", "iat", "jti"];
    const ID: usize = 1;

    fn cells(&self) -> Vec<(String, Style)> {
        let p = &self.0;
        vec![
            ("true".into(), status_style("true")),
            (p.agent_id.to_string(), Style::Plain),
            (p.client_id.clone(), Style::Plain),
            (p.scopes.to_string(), Style::Plain),
            (crate::token::unix_time(unix(p.expires_at)), Style::Plain),
            (crate::token::unix_time(unix(p.issued_at)), Style::Plain),
            (p.jti.clone().unwrap_or_else(|| "-".into()), Style::Plain),
        ]
    }

    /// The shape of an introspection answer (RFC 7662).
    fn json(&self) -> serde_json::Value {
        let p = &self.0;
        serde_json::json!({
            "active": true,
            "sub": p.agent_id,
            "client_id": p.client_id,
            "scope": p.scopes.to_string(),
            "exp": unix(p.expires_at),
            "iat": unix(p.issued_at),
            "jti": p.jti,
        })
    }
}
