//! Local checks of an AgentIdP access token: RS256 only, `exp`/`nbf` with a
//! leeway, optional `iss`/`aud`; unknown claims are ignored.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// What the verifier reads of a token's JOSE header before any signature
/// work.
pub(crate) struct JoseHeader {
    /// The key id, if the header names one.
    pub(crate) kid: Option<String>,
}

/// The header as written: unknown members are ignored, a repeated member is
/// an error (serde refuses duplicate fields).
#[derive(Deserialize)]
struct Wire {
    alg: String,
    kid: Option<String>,
    #[serde(default)]
    crit: Present,
}

/// Whether a member was there at all, whatever its value (`null` too).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

/// The header of `token`, if `token` is a compact JWS (three base64url
/// parts) whose header is a JSON object with `alg` `RS256` and no `crit`.
///
/// RFC 7515 §4.1.11: a recipient MUST refuse a JWS whose `crit` names an
/// extension it does not understand, and `crit` MUST NOT be empty or
/// anything but an array of names. This verifier implements no extension,
/// so a `crit` of any value (a list, `[]`, `null`, a string) is refused.
/// Checked before the signature: a refusal costs no RSA work.
pub(crate) fn header(token: &str) -> Result<JoseHeader, VerifyError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::InvalidToken);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::InvalidToken)?;
    let wire: Wire = serde_json::from_slice(&json).map_err(|_| VerifyError::InvalidToken)?;
    if wire.alg != "RS256" {
        return Err(VerifyError::InvalidToken);
    }
    if wire.crit.0 {
        tracing::debug!("token refused: its header has `crit` (no extension is implemented)");
        return Err(VerifyError::InvalidToken);
    }
    Ok(JoseHeader { kid: wire.kid })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn a_crit_header_of_any_value_is_refused() {
        let fine = header(&with_header(r#"{"alg":"RS256","kid":"k1","x":{"crit":1}}"#));
        assert_eq!(fine.map(|h| h.kid), Ok(Some("k1".to_owned())));
        for refused in [
            r#"{"alg":"RS256","crit":["exp"]}"#,
            r#"{"alg":"RS256","crit":[]}"#,
            r#"{"alg":"RS256","crit":null}"#,
            r#"{"alg":"RS256","crit":"b64"}"#,
            r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
            r#"{"alg":"HS256"}"#,
            r#"{"kid":"k1"}"#,
            r#"["alg","RS256"]"#,
        ] {
            assert_eq!(
                header(&with_header(refused)).map(|h| h.kid),
                Err(VerifyError::InvalidToken),
                "{refused}"
            );
        }
        for junk in ["", "a.b", "a.b.c.d", "!!!.e30.c2ln"] {
            assert!(header(junk).is_err(), "{junk}");
        }
    }
}
