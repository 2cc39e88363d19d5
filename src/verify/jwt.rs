//! Local checks of an AgentIdP access token: RS256 only, `exp`/`nbf` with a
//! leeway, optional `iss`/`aud`; unknown claims are ignored.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::VerifyError;
use super::principal::{AgentPrincipal, unix_time};
use super::settings::MAX_LEEWAY;
use crate::model::Uuid;
use crate::scope::ScopeSet;

/// The claims AgentIdP puts in its tokens (`sub`, `client_id`, `scope`,
/// `jti`, `iat`, `exp`); `exp`, `nbf`, `iss` and `aud` are checked by
/// jsonwebtoken before these are read.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    client_id: Option<String>,
    #[serde(default)]
    scope: ScopeSet,
    jti: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// The validation every local check uses: the algorithm is pinned to RS256,
/// so `none`, HS256 keyed with the public key and every other algorithm fail.
pub(crate) fn validation(
    leeway: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    // Saturated: jsonwebtoken computes `now - leeway` and `nbf > now + leeway`
    // in u64, which a huge leeway overflows (a panic in debug builds).
    v.leeway = leeway.min(MAX_LEEWAY).as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    if let Some(issuer) = issuer {
        v.set_issuer(&[issuer]);
        required.push("iss");
    }
    match audience {
        Some(audience) => {
            v.set_audience(&[audience]);
            required.push("aud");
        }
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// The `kid` of the token's header, if it has one; `Err` if the header is
/// not a JWT header at all.
pub(crate) fn key_id(token: &str) -> Result<Option<String>, VerifyError> {
    jsonwebtoken::decode_header(token)
        .map(|header| header.kid)
        .map_err(|_| VerifyError::InvalidToken)
}

/// The `iat` of the token's payload, unverified: only to tell a token that
/// may be newer than the key set from one the key set should know.
pub(crate) fn unverified_iat(token: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Issued {
        iat: Option<i64>,
    }
    let payload = token.split('.').nth(1)?;
    let json =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).ok()?;
    serde_json::from_slice::<Issued>(&json).ok()?.iat
}

/// The principal of `token` if its signature, times and claims check out.
pub(crate) fn verify(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<AgentPrincipal, VerifyError> {
    let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
        .map_err(|e| {
            tracing::debug!(reason = ?e.kind(), "token refused by the local check");
            VerifyError::InvalidToken
        })?
        .claims;
    let agent_id = Uuid::parse_str(&claims.sub).map_err(|_| VerifyError::InvalidToken)?;
    Ok(AgentPrincipal {
        agent_id,
        client_id: claims.client_id.unwrap_or(claims.sub),
        scopes: claims.scope,
        jti: claims.jti,
        expires_at: claims.exp.and_then(unix_time),
        issued_at: claims.iat.and_then(unix_time),
    })
}
