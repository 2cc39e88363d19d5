//! What can be an AgentIdP access token at all, checked before anything
//! costs a remote call: a compact JWS (RFC 7515 §7.1) of three base64url
//! parts whose header is a JSON object saying `"alg": "RS256"`. Nothing here
//! is trusted: it only refuses, early and cheaply, what no key could verify.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The longest header decoded (real ones are under 100 bytes).
const MAX_HEADER: usize = 1024;

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
}

/// The claims every AgentIdP token carries (the local modes require them
/// too), read unverified: only to refuse.
#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    exp: f64,
}

/// The longest payload decoded (a token is at most 8 KiB).
const MAX_PAYLOAD: usize = 8 * 1024;

/// The `exp` (Unix seconds, unverified) of `token` if it could be a live
/// AgentIdP token: an RS256 compact JWS whose payload is a JSON object
/// with a `sub` and an `exp` not past by more than `leeway` at `now` (Unix
/// seconds); else `None`. A token expired by its own claims is refused
/// whoever signed it: if genuine, it is expired; if not, it is junk. The
/// `exp` also bounds how long a verdict on the token is kept.
pub(crate) fn live_token_exp(token: &str, now: u64, leeway: u64) -> Option<f64> {
    if !could_be_rs256_jws(token) {
        return None;
    }
    let payload = token.split('.').nth(1).filter(|p| p.len() <= MAX_PAYLOAD)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    if json.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let claims = serde_json::from_slice::<Claims<'_>>(&json).ok()?;
    (!claims.sub.is_empty() && claims.exp.is_finite() && claims.exp + leeway as f64 >= now as f64)
        .then_some(claims.exp)
}

/// Whether `token` has the shape of an RS256 compact JWS.
pub(crate) fn could_be_rs256_jws(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if [header, payload, signature]
        .iter()
        .any(|part| part.is_empty() || !part.bytes().all(is_base64url))
        || header.len() > MAX_HEADER
    {
        return false;
    }
    let Ok(json) = URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    // An object (serde would also read the struct from an array).
    json.trim_ascii_start().first() == Some(&b'{')
        && serde_json::from_slice::<Header<'_>>(&json)
            .is_ok_and(|h| h.alg.as_deref() == Some("RS256"))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn only_an_rs256_compact_jws_passes() {
        let rs = b64(r#"{"alg":"RS256","typ":"JWT","kid":"k"}"#);
        assert!(could_be_rs256_jws(&format!("{rs}.e30.c2ln")));
        for bad in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c".into(),
            format!("{rs}.e30.c2ln.x"),
            format!("{rs}..c2ln"),
            format!("{rs}.e30."),
            format!("{rs}.e3+.c2ln"),
            format!("{rs}.e30.c2ln=="),
            format!("{}.e30.c2ln", b64(r#"{"alg":"HS256"}"#)),
            format!("{}.e30.c2ln", b64(r#"{"alg":"none"}"#)),
            format!("{}.e30.c2ln", b64(r#"{"typ":"JWT"}"#)),
            format!("{}.e30.c2ln", b64(r#"["RS256"]"#)),
            format!("{}.e30.c2ln", b64("RS256")),
            format!(
                "{}.e30.c2ln",
                b64(&format!(
                    r#"{{"alg":"RS256","x":"{}"}}"#,
                    "a".repeat(MAX_HEADER)
                ))
            ),
        ] {
            assert!(!could_be_rs256_jws(&bad), "{bad}");
        }
    }
}
