//! The `Authorization: Bearer <token>` header, parsed as RFC 6750 §2.1 says.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::error::VerifyError;

/// The longest token accepted; real AgentIdP tokens are under 1 KiB.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The bearer token of `headers`.
///
/// `credentials = "Bearer" 1*SP b64token`, the scheme case-insensitive:
/// no header (or another scheme) is [`VerifyError::MissingToken`]; several
/// headers, or a `Bearer` one that does not fit, are
/// [`VerifyError::InvalidRequest`].
#[cfg(test)]
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<&str, VerifyError> {
    b64token(bearer_sent(headers)?).ok_or(VerifyError::InvalidRequest)
}

/// What follows `Bearer ` in `headers`, its b64token syntax (and length)
/// not yet checked: a token already in the verdict
/// cache needs no check (only checked tokens get there), so the check is
/// made, with [`b64token`], on a cache miss only.
pub(crate) fn bearer_sent(headers: &HeaderMap) -> Result<&[u8], VerifyError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(VerifyError::MissingToken);
    };
    if values.next().is_some() {
        return Err(VerifyError::InvalidRequest);
    }
    let bytes = value.as_bytes();
    let scheme_len = bytes.iter().position(|b| *b == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_len].eq_ignore_ascii_case(b"bearer") {
        // Another scheme (RFC 6750 §3.1: no error code), unless it is no
        // token68-style word at all.
        return if is_scheme(&bytes[..scheme_len]) {
            Err(VerifyError::MissingToken)
        } else {
            Err(VerifyError::InvalidRequest)
        };
    }
    let rest = &bytes[scheme_len..];
    let token_start = rest.iter().position(|b| *b != b' ').unwrap_or(rest.len());
    let token = &rest[token_start..];
    if token_start == 0 || token.is_empty() {
        return Err(VerifyError::InvalidRequest);
    }
    Ok(token)
}

/// `token` as a `&str` if it is an RFC 6750 b64token.
pub(crate) fn b64token(token: &[u8]) -> Option<&str> {
    // b64token is ASCII, so from_utf8 cannot fail; stay total anyway.
    is_b64token(token)
        .then(|| std::str::from_utf8(token).ok())
        .flatten()
}

/// RFC 7230 `token` (an auth-scheme name).
fn is_scheme(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`,
/// at most [`MAX_TOKEN_LEN`] bytes.
fn is_b64token(token: &[u8]) -> bool {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return false;
    }
    let body_len = token.len() - token.iter().rev().take_while(|b| **b == b'=').count();
    body_len > 0 && all_b64token_body(&token[..body_len])
}

/// Whether every byte may be in a b64token's body: branch-free range tests
/// over 32-byte chunks, which the compiler vectorizes (this runs on every
/// request, over ~1 KiB).
fn all_b64token_body(bytes: &[u8]) -> bool {
    fn allowed(c: u8) -> bool {
        let lower = c | 0x20;
        lower.is_ascii_lowercase()
            | c.is_ascii_digit()
            | (c == b'-')
            | (c == b'.')
            | (c == b'_')
            | (c == b'~')
            | (c == b'+')
            | (c == b'/')
    }
    let mut chunks = bytes.chunks_exact(32);
    let whole = chunks
        .by_ref()
        .all(|chunk| chunk.iter().fold(true, |ok, c| ok & allowed(*c)));
    whole && chunks.remainder().iter().all(|c| allowed(*c))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    #[test]
    fn parses_the_rfc_form_and_refuses_the_rest() {
        assert_eq!(
            bearer_token(&headers(&[b"Bearer abc.DEF-_~+/=="])),
            Ok("abc.DEF-_~+/==")
        );
        assert_eq!(bearer_token(&headers(&[b"bEaReR  x"])), Ok("x"));
        assert_eq!(bearer_token(&headers(&[])), Err(VerifyError::MissingToken));
        for other in [&b"Basic dXNlcjpwYXNz"[..], b"Bearerx a", b"DPoP abc"] {
            assert_eq!(
                bearer_token(&headers(&[other])),
                Err(VerifyError::MissingToken)
            );
        }
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a=b",
            b"Bearer ===",
            b"Bearer a,b",
            b"Bearer\ta",
            b"Bearer a ",
            b"\"quoted\" a",
            b"Bearer \xff",
        ] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(VerifyError::InvalidRequest),
                "{bad:?}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&[b"Bearer a", b"Bearer a"])),
            Err(VerifyError::InvalidRequest)
        );
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(
            bearer_token(&headers(&[long.as_bytes()])),
            Err(VerifyError::InvalidRequest)
        );
    }
}
