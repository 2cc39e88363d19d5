//! Local checks of an AgentIdP access token: RS256 only, `exp`/`nbf` with a
//! leeway, optional `iss`/`aud`; unknown claims are ignored.
//!
//! The token is taken apart once ([`Jws::parse`]); jsonwebtoken checks the
//! signature (`jsonwebtoken::crypto::verify`, aws-lc-rs), and the claims
//! are read once, after it. `jsonwebtoken::decode` would parse the header
//! a second time and the claims twice, and a first sight must cost no more
//! than it.

use std::borrow::Cow;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::error::VerifyError;
use super::principal::{AgentPrincipal, unix_time};
use super::settings::{MAX_LEEWAY, Settings};
use crate::model::{Audience, Uuid};
use crate::scope::ScopeSet;

/// The longest JOSE header decoded (real ones are under 100 bytes).
const MAX_HEADER: usize = 1024;

/// The claims AgentIdP puts in its tokens (`sub`, `client_id`, `scope`,
/// `jti`, `iat`, `exp`), and those checked against the settings (`nbf`,
/// `iss`, `aud`). `sub` and `exp` are required. `iss` and `aud` are read
/// in the spec's string-or-list shape, and any other value counts as
/// absent: they fail a token only when the settings check them.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    client_id: Option<String>,
    #[serde(default)]
    scope: ScopeSet,
    jti: Option<String>,
    iat: Option<i64>,
    exp: i64,
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "lenient")]
    iss: Option<Audience>,
    #[serde(default, deserialize_with = "lenient")]
    aud: Option<Audience>,
}

/// A string or a list of strings; `None` for any other JSON value. The
/// value is read whole first, its errors kept: an error swallowed in the
/// middle of the input (`[1,]`) would let the parse read on past JSON that
/// is not valid (RFC 7519 §7.2 step 10).
fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Audience>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).ok())
}

/// Whether `json` starts as a JSON object: serde reads a struct from an
/// array too, and a JOSE header and a claims set are objects (RFC 7515
/// §5.2 step 4, RFC 7519 §7.2 step 10).
fn is_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// The header as written: unknown members are ignored, a repeated member is
/// an error (serde refuses duplicate fields).
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
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

/// A compact JWS whose header passed: `alg` `RS256`, no `crit`.
pub(crate) struct Jws<'a> {
    /// The key id, if the header names one.
    pub(crate) kid: Option<String>,
    /// `header.payload`, what the signature signs.
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Jws<'a> {
    /// `token` taken apart, if it is a compact JWS (three base64url parts)
    /// whose header is a JSON object with `alg` `RS256` and no `crit`.
    ///
    /// RFC 7515 §4.1.11: a recipient MUST refuse a JWS whose `crit` names
    /// an extension it does not understand, and `crit` MUST NOT be empty or
    /// anything but an array of names. This verifier implements no
    /// extension, so a `crit` of any value (a list, `[]`, `null`, a string)
    /// is refused. Checked before the signature: a refusal costs no RSA
    /// work.
    pub(crate) fn parse(token: &'a str) -> Result<Jws<'a>, VerifyError> {
        let (signed, signature) = token.rsplit_once('.').ok_or(VerifyError::InvalidToken)?;
        let (header, payload) = signed.split_once('.').ok_or(VerifyError::InvalidToken)?;
        if payload.contains('.') || header.len() > MAX_HEADER {
            return Err(VerifyError::InvalidToken);
        }
        let mut json = [0u8; MAX_HEADER];
        let len = URL_SAFE_NO_PAD
            .decode_slice(header, &mut json)
            .map_err(|_| VerifyError::InvalidToken)?;
        let json = &json[..len];
        if !is_object(json) {
            return Err(VerifyError::InvalidToken);
        }
        let wire: Wire<'_> = serde_json::from_slice(json).map_err(|_| VerifyError::InvalidToken)?;
        if wire.alg != "RS256" {
            return Err(VerifyError::InvalidToken);
        }
        if wire.crit.0 {
            tracing::debug!("token refused: its header has `crit` (no extension is implemented)");
            return Err(VerifyError::InvalidToken);
        }
        Ok(Jws {
            kid: wire.kid.map(Cow::into_owned),
            signed,
            payload,
            signature,
        })
    }

    /// The payload's `iat`, unverified: only to tell a token that may be
    /// newer than the key set from one the key set should know.
    pub(crate) fn unverified_iat(&self) -> Option<i64> {
        #[derive(Deserialize)]
        struct Issued {
            iat: Option<i64>,
        }
        let json = URL_SAFE_NO_PAD.decode(self.payload).ok()?;
        serde_json::from_slice::<Issued>(&json).ok()?.iat
    }

    /// The principal if the signature is `key`'s, and the claims pass the
    /// settings' checks: `exp` not past and `nbf` not ahead (each with
    /// the leeway), `iss` and `aud` when set (RFC 7519 §4.1.3: the
    /// audience is one of the token's `aud`).
    pub(crate) fn verify(
        &self,
        key: &DecodingKey,
        settings: &Settings,
    ) -> Result<AgentPrincipal, VerifyError> {
        let signed = jsonwebtoken::crypto::verify(
            self.signature,
            self.signed.as_bytes(),
            key,
            Algorithm::RS256,
        );
        if !matches!(signed, Ok(true)) {
            tracing::debug!("token refused by the local check: bad signature");
            return Err(VerifyError::InvalidToken);
        }
        let json = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| VerifyError::InvalidToken)?;
        let claims = claims_of(&json).ok_or(VerifyError::InvalidToken)?;
        if let Err(reason) = check(&claims, settings) {
            tracing::debug!(reason, "token refused by the local check");
            return Err(VerifyError::InvalidToken);
        }
        let agent_id = Uuid::parse_str(&claims.sub).map_err(|_| VerifyError::InvalidToken)?;
        Ok(AgentPrincipal {
            agent_id,
            client_id: claims.client_id.unwrap_or(claims.sub),
            scopes: claims.scope,
            jti: claims.jti,
            expires_at: unix_time(claims.exp),
            issued_at: claims.iat.and_then(unix_time),
        })
    }
}

/// The claims set of a token whose signature passed.
fn claims_of(json: &[u8]) -> Option<Claims> {
    if !is_object(json) {
        tracing::debug!("token refused by the local check: its claims set is not a JSON object");
        return None;
    }
    serde_json::from_slice(json)
        .map_err(|e| tracing::debug!(reason = %e, "token refused by the local check: claims"))
        .ok()
}

/// The claims' times, issuer and audience against the settings.
fn check(claims: &Claims, settings: &Settings) -> Result<(), &'static str> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(settings.leeway.min(MAX_LEEWAY).as_secs()).unwrap_or(0);
    // RFC 7519 §4.1.4: valid while the current time is *before* `exp`
    // (plus the leeway). `now` is whole seconds, rounded down: at
    // `now == exp + leeway` the real time is already at or past it.
    if claims.exp <= now.saturating_sub(leeway) {
        return Err("expired");
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(leeway))
    {
        return Err("not yet valid (nbf)");
    }
    if let Some(issuer) = &settings.issuer
        && !matches!(&claims.iss, Some(Audience::String(iss)) if iss == issuer)
    {
        return Err("`iss` is missing or not the issuer");
    }
    if let Some(audience) = &settings.audience {
        let ok = claims.aud.as_ref().is_some_and(|aud| match aud {
            Audience::String(one) => one == audience,
            Audience::Array(all) => all.contains(audience),
        });
        if !ok {
            return Err("`aud` is missing or does not name the audience");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    fn unix_now() -> i64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970");
        i64::try_from(now.as_secs()).expect("in range")
    }

    /// `check` of a token with `exp` and `nbf` at `offset(now)`, retried
    /// (at most five times) until the wall clock's second did not change
    /// during the check, so the boundary is the one the test meant.
    fn check_at(
        leeway: u64,
        exp: impl Fn(i64) -> i64,
        nbf: impl Fn(i64) -> Option<i64>,
    ) -> Result<(), &'static str> {
        let settings = Settings {
            leeway: std::time::Duration::from_secs(leeway),
            ..Settings::default()
        };
        for _ in 0..5 {
            let before = unix_now();
            let claims: Claims = serde_json::from_value(serde_json::json!({
                "sub": "6f1c1f7e-4a0b-4c43-9a57-2f1bb1d0c0de",
                "exp": exp(before),
                "nbf": nbf(before),
            }))
            .expect("claims");
            let verdict = check(&claims, &settings);
            if unix_now() == before {
                return verdict;
            }
        }
        panic!("the wall clock's second changed during five checks in a row");
    }

    /// RFC 7519 §4.1.4: the current time MUST be before `exp` (plus the
    /// leeway); §4.1.5: after or equal to `nbf` (minus the leeway). `now`
    /// is read in whole seconds (rounded down), so a token whose
    /// `exp + leeway` is that second is already past it.
    #[test]
    fn exp_and_nbf_are_checked_at_their_rfc_7519_boundaries() {
        for leeway in [0, 5] {
            let l = i64::try_from(leeway).unwrap();
            assert_eq!(
                check_at(leeway, |now| now - l, |_| None),
                Err("expired"),
                "exp + leeway = now, leeway {leeway}"
            );
            assert_eq!(
                check_at(leeway, |now| now - l + 1, |_| None),
                Ok(()),
                "exp + leeway = now + 1 s, leeway {leeway}"
            );
            assert_eq!(
                check_at(leeway, |now| now + 60, |now| Some(now + l)),
                Ok(()),
                "nbf - leeway = now, leeway {leeway}"
            );
            assert_eq!(
                check_at(leeway, |now| now + 60, |now| Some(now + l + 1)),
                Err("not yet valid (nbf)"),
                "nbf - leeway = now + 1 s, leeway {leeway}"
            );
        }
        for (exp, nbf) in [(i64::MIN, None), (-1, None), (0, Some(i64::MIN))] {
            assert_eq!(check_at(5, |_| exp, |_| nbf), Err("expired"), "{exp}");
        }
        assert_eq!(
            check_at(5, |_| i64::MAX, |_| Some(i64::MAX)),
            Err("not yet valid (nbf)")
        );
        assert_eq!(check_at(5, |_| i64::MAX, |_| Some(i64::MIN)), Ok(()));
    }

    /// RFC 7515 §5.2 step 4 and RFC 7519 §7.2 step 10: the JOSE header and
    /// the claims set are each a completely valid JSON object. serde would
    /// read a struct from a JSON array too, and the lenient `iss`/`aud`
    /// must not swallow a syntax error and read on.
    #[test]
    fn a_header_that_is_not_a_json_object_is_refused() {
        for refused in [
            r#"["RS256",null]"#,
            r#"["RS256","k1",null]"#,
            r#" ["RS256",null]"#,
        ] {
            assert_eq!(
                Jws::parse(&with_header(refused)).map(|h| h.kid),
                Err(VerifyError::InvalidToken),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_claims_set_that_is_not_a_valid_json_object_is_refused() {
        let sub = "6f1c1f7e-4a0b-4c43-9a57-2f1bb1d0c0de";
        let exp = unix_now() + 600;
        let valid = format!(r#"{{"sub":"{sub}","exp":{exp},"aud":"x"}}"#);
        assert!(claims_of(valid.as_bytes()).is_some(), "{valid}");
        let accepted: Vec<String> = [
            format!(r#"["{sub}",null,"agents:read",null,null,{exp},null]"#),
            format!(r#"["{sub}",null,"agents:read",null,null,{exp},null,"i","a"]"#),
            format!(r#"{{"sub":"{sub}","exp":{exp},"aud":[1,]}}"#),
            format!(r#"{{"sub":"{sub}","exp":{exp},"iss":[1,]}}"#),
            format!(r#"{{"sub":"{sub}","exp":{exp},"aud":{{"a":1,}}}}"#),
            format!(r#"{{"aud":[1,],"sub":"{sub}","exp":{exp}}}"#),
        ]
        .into_iter()
        .filter(|refused| claims_of(refused.as_bytes()).is_some())
        .collect();
        assert!(accepted.is_empty(), "accepted: {accepted:#?}");
    }

    #[test]
    fn a_crit_header_of_any_value_is_refused() {
        let token = with_header(r#"{"alg":"RS256","kid":"k1","x":{"crit":1}}"#);
        assert_eq!(Jws::parse(&token).map(|h| h.kid), Ok(Some("k1".to_owned())));
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
                Jws::parse(&with_header(refused)).map(|h| h.kid),
                Err(VerifyError::InvalidToken),
                "{refused}"
            );
        }
        for junk in ["", "a.b", "a.b.c.d", "!!!.e30.c2ln"] {
            assert!(Jws::parse(junk).is_err(), "{junk}");
        }
    }
}
