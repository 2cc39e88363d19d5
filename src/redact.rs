//! Keeping secrets out of error messages: what of a server's body may be
//! quoted, and how.
//!
//! A 2xx body is never quoted (it may hold a new secret). An error body is
//! quoted only after the values of secret-bearing fields are replaced, and
//! free text loses anything shaped like a client secret or a JWT.

use std::borrow::Cow;

use serde_json::Value;

use crate::secret::REDACTED;

/// Field names whose values are never quoted, compared without case and
/// without `_` or `-` (`client_secret`, `clientSecret`, `access-token`…).
const SECRET_FIELDS: [&str; 9] = [
    "clientsecret",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "token",
    "password",
    "secret",
    "authorization",
    "apikey",
];

/// How much of a non-API body an error message quotes.
const SNIPPET_CHARS: usize = 120;

/// Whether a JSON field of this name may hold a secret.
pub(crate) fn is_secret_field(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_FIELDS.contains(&folded.as_str())
}

/// Whether free text names a secret-bearing field anywhere (`client_secret=…`,
/// a cut-off `{"token":"…`), so that none of it may be quoted.
fn names_a_secret_field(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        .any(is_secret_field)
}

/// Replaces the values of secret fields, at any depth.
pub(crate) fn json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_field(key) {
                    *v = Value::from(REDACTED);
                } else {
                    json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json),
        Value::String(s) => {
            if let Cow::Owned(clean) = text(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// Free text with every client secret (`sk_…`), JWT-shaped token and word
/// after `Bearer ` removed.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    let bearer = s.to_ascii_lowercase().contains("bearer ");
    if !s.contains("sk_") && !s.contains("eyJ") && !bearer {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = next_secret(rest) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(tail.len());
        out.push_str(REDACTED);
        rest = &tail[len..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Where the next secret-shaped word starts: `sk_` or `eyJ` at a word
/// start, or the word after `Bearer `.
fn next_secret(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (0..bytes.len()).find(|&i| {
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let after_bearer = i >= 7
            && bytes[i - 7..i].eq_ignore_ascii_case(b"bearer ")
            && bytes[i].is_ascii_graphic();
        after_bearer
            || (at_word_start && (bytes[i..].starts_with(b"sk_") || bytes[i..].starts_with(b"eyJ")))
    })
}

/// A short, redacted excerpt of an error body that is not one of the API's
/// error shapes (an HTML page from a proxy, say); `None` when empty.
pub(crate) fn snippet(body: &[u8]) -> Option<String> {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            json(&mut value);
            value.to_string()
        }
        Err(_) => {
            let raw = String::from_utf8_lossy(body);
            if names_a_secret_field(&raw) {
                return Some(String::from(
                    "(not quoted: it names a secret-bearing field)",
                ));
            }
            self::text(raw.trim()).into_owned()
        }
    };
    let snippet: String = text.chars().take(SNIPPET_CHARS).collect();
    (!snippet.is_empty()).then_some(snippet)
}

/// A serde error's text without the values it quotes (`invalid type: string
/// "…"`), which may be a secret of the body being decoded.
pub(crate) fn serde_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    quoted = false;
                    out.push_str("…\"");
                }
                _ => escaped = false,
            }
        } else {
            out.push(c);
            quoted = c == '"';
        }
    }
    if quoted {
        out.push_str("…\"");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_and_secret_shaped_words_are_replaced() {
        let mut body = serde_json::json!({
            "error": "x",
            "access_token": "eyJabc.def.ghi",
            "nested": [{"clientSecret": "sk_live_1"}],
            "note": "the secret sk_live_abc123 leaked, and eyJh.eyJ.sig"
        });
        json(&mut body);
        let text = body.to_string();
        assert!(
            !text.contains("sk_live_") && !text.contains("eyJ"),
            "{text}"
        );
        assert!(text.contains("\"error\":\"x\""));
    }

    #[test]
    fn text_leaves_ordinary_words_alone() {
        assert_eq!(text("task_sk_ok and risk_x"), "task_sk_ok and risk_x");
        assert_eq!(text("a sk_live_1 b"), "a [REDACTED] b");
        assert_eq!(
            text("sent Bearer abc.def here"),
            "sent Bearer [REDACTED] here"
        );
        assert!(is_secret_field("accessToken") && is_secret_field("client-secret"));
        assert!(!is_secret_field("tokens") && !is_secret_field("code"));
    }

    #[test]
    fn serde_messages_lose_their_quoted_values() {
        assert_eq!(
            serde_message(r#"invalid type: string "sk_live_x\"y", expected u64 at line 1"#),
            r#"invalid type: string "…", expected u64 at line 1"#
        );
    }

    #[test]
    fn snippets_of_html_are_kept_short() {
        let page = format!("<html>{}</html>", "x".repeat(500));
        assert_eq!(
            snippet(page.as_bytes()).unwrap().chars().count(),
            SNIPPET_CHARS
        );
        assert!(snippet(b"  ").is_none());
    }
}
