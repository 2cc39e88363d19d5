//! Reads the RFC 6750 `WWW-Authenticate: Bearer` challenge of a refusal.

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

use crate::scope::ScopeSet;

/// What a refusal's Bearer challenge says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// Whether a Bearer challenge was there at all.
    pub(crate) bearer: bool,
    /// The `error` parameter, e.g. `invalid_token`.
    pub(crate) error: Option<String>,
    /// The `scope` parameter: the scopes the resource requires.
    pub(crate) scope: Option<String>,
}

impl Challenge {
    /// The first Bearer challenge among the `WWW-Authenticate` headers, or
    /// an empty one when there is none (or none that can be read).
    pub(crate) fn of(headers: &HeaderMap) -> Challenge {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(bearer_params)
            .unwrap_or_default()
    }

    /// A 401 that refuses the token itself: a Bearer challenge with
    /// `invalid_token`, or with no error code at all (many servers answer a
    /// bad token with a bare `Bearer realm=…`). Not `invalid_request`: the
    /// request is at fault, and a new token would not help. Not a 401 with
    /// no Bearer challenge (none at all, or only `Basic`): the server asks
    /// for something else than our token, and dropping a good token would
    /// only spend a token request.
    pub(crate) fn refuses_token(&self) -> bool {
        self.bearer && matches!(self.error.as_deref(), None | Some("invalid_token"))
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
            return Some(Challenge {
                bearer: true,
                ..params
            });
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

    fn of(values: &[&str]) -> Challenge {
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
        ]);
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(
            c.insufficient_scope().unwrap().to_string(),
            "agents:read audit:read"
        );
        let c = of(&[r#"Basic realm="x", Bearer error=invalid_token"#]);
        assert!(c.refuses_token());
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        let c = of(&["Basic realm=\"x\"", "bearer error=\"invalid_request\""]);
        assert!(!c.refuses_token());
        assert_eq!(
            of(&[r#"Bearer error="a\"b""#]).error.as_deref(),
            Some("a\"b")
        );
    }

    #[test]
    fn no_or_unreadable_challenge_is_an_empty_one() {
        assert_eq!(of(&[]), Challenge::default());
        assert_eq!(of(&["Basic realm=\"x\""]), Challenge::default());
        assert_eq!(
            of(&["=,=\"", "Bearer error=\"unterminated"])
                .error
                .as_deref(),
            Some("unterminated")
        );
        assert!(!of(&[]).refuses_token());
        assert!(!of(&["Basic realm=\"x\""]).refuses_token());
        assert!(of(&["Bearer realm=\"x\""]).refuses_token());
        assert!(of(&[]).insufficient_scope().is_none());
    }
}
