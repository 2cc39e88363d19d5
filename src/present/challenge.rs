//! Reads the RFC 6750 `WWW-Authenticate: Bearer` challenge of a refusal.

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

use crate::scope::ScopeSet;

/// What a refusal's Bearer challenge says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The `error` parameter, e.g. `invalid_token`.
    pub(crate) error: Option<String>,
    /// The `scope` parameter: the scopes the resource requires.
    pub(crate) scope: Option<String>,
}

impl Challenge {
    /// The first Bearer challenge among the `WWW-Authenticate` headers;
    /// `None` when there is none (no header, only `Basic`, or none that can
    /// be read): such an answer says nothing about a bearer token.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Challenge> {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(bearer_params)
    }

    /// A Bearer challenge that refuses the token itself: `invalid_token`, or
    /// no error code at all (many servers answer a bad token with a bare
    /// `Bearer realm=…`). Not `invalid_request`: the request is at fault,
    /// and a new token would not help.
    pub(crate) fn refuses_token(&self) -> bool {
        matches!(self.error.as_deref(), None | Some("invalid_token"))
    }

    /// The scopes a 403 `insufficient_scope` names, if that is what it is.
    pub(crate) fn insufficient_scope(&self) -> Option<ScopeSet> {
        (self.error.as_deref() == Some("insufficient_scope"))
            .then(|| ScopeSet::parse(self.scope.as_deref().unwrap_or_default()))
    }
}

/// The parameters of the Bearer challenge in one header value, which may
/// list several challenges (`Basic realm="a", Bearer error="invalid_token"`).
fn bearer_params(value: &str) -> Option<Challenge> {
    let mut rest = value.trim_start();
    loop {
        let (scheme, after) = split_token(rest);
        if scheme.is_empty() {
            return None;
        }
        let (params, after) = parse_params(after);
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(params);
        }
        rest = after.trim_start_matches([',', ' ', '\t']);
    }
}

/// Parses `key=value` / `key="quoted"` pairs up to the next challenge.
fn parse_params(mut rest: &str) -> (Challenge, &str) {
    let mut challenge = Challenge::default();
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let (key, after) = split_token(rest);
        let Some(after) = after.trim_start().strip_prefix('=') else {
            // Not a parameter: the next challenge's scheme, or the end.
            return (challenge, rest);
        };
        let (value, after) = parse_value(after.trim_start());
        match key.to_ascii_lowercase().as_str() {
            "error" => challenge.error = Some(value),
            "scope" => challenge.scope = Some(value),
            _ => {}
        }
        rest = after;
    }
}

fn parse_value(rest: &str) -> (String, &str) {
    let Some(quoted) = rest.strip_prefix('"') else {
        let (token, after) = split_token(rest);
        return (token.to_owned(), after);
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &quoted[i + 1..]),
            '\\' => value.extend(chars.next().map(|(_, c)| c)),
            c => value.push(c),
        }
    }
    (value, "")
}

/// Splits off a token (RFC 9110 `tchar`s).
fn split_token(rest: &str) -> (&str, &str) {
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)))
        .unwrap_or(rest.len());
    rest.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[&str]) -> Option<Challenge> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(WWW_AUTHENTICATE, v.parse().unwrap());
        }
        Challenge::of(&headers)
    }

    #[test]
    fn reads_error_and_scope_of_the_bearer_challenge() {
        let c = of(&[
            r#"Bearer realm="api", error="insufficient_scope", scope="agents:read audit:read""#,
        ])
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(
            c.insufficient_scope().unwrap().to_string(),
            "agents:read audit:read"
        );
        let c = of(&[r#"Basic realm="x", Bearer error=invalid_token"#]).unwrap();
        assert!(c.refuses_token());
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        let c = of(&["Basic realm=\"x\"", "bearer error=\"invalid_request\""]).unwrap();
        assert!(!c.refuses_token());
        assert_eq!(
            of(&[r#"Bearer error="a\"b""#]).unwrap().error.as_deref(),
            Some("a\"b")
        );
    }

    /// Issue 24 defect 12: no challenge, or `Basic` alone, is no Bearer
    /// challenge, so it refuses no bearer token.
    #[test]
    fn no_bearer_challenge_is_none() {
        assert_eq!(of(&[]), None);
        assert_eq!(of(&["Basic realm=\"x\""]), None);
        assert_eq!(
            of(&["=,=\"", "Bearer error=\"unterminated"])
                .unwrap()
                .error
                .as_deref(),
            Some("unterminated")
        );
        assert!(of(&["Bearer realm=\"api\""]).unwrap().refuses_token());
    }
}
