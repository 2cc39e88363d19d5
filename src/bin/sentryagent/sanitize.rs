//! Text from a server (or from anyone who could register an agent) made
//! safe for a terminal: an agent's `owner` of `ESC ]0;…BEL ESC[2J` must not
//! set the window title and clear the screen when a table prints it.
//!
//! Every control character (C0 including tab and line feed, DEL, C1) and
//! every Unicode bidirectional control (mark, embedding, override or
//! isolate: they can make a value read as another) is shown as its escape (`\u{1b}`, `\n`, `\u{202e}`), so
//! that it is visible and nothing is silently dropped. JSON output needs
//! none of this for C0 (serde escapes it); [`json_text`] adds DEL and C1.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        // Unicode's Bidi_Control set: the marks (U+061C, U+200E, U+200F),
        // the embeddings and overrides, the isolates.
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character and bidi override escaped; the text
/// itself when it has none (the usual case costs no copy).
pub(crate) fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            safe.extend(c.escape_default());
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

/// JSON text with DEL, C1 and bidi overrides escaped as `\uXXXX` (serde
/// escapes C0 only). Outside its strings JSON text holds nothing but ASCII
/// punctuation, letters, digits and whitespace, so every such character is
/// inside a string, where `\uXXXX` is the same character to a JSON reader.
pub(crate) fn json_text(text: String) -> String {
    if !text.chars().any(unsafe_char) {
        return text;
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        // serde escaped every C0 already; pretty printing's own line
        // endings and indentation are C0 too, and must stay.
        if (unsafe_char(c) && !c.is_ascii_control()) || c == '\u{7f}' {
            let _ = write!(safe, "\\u{:04x}", u32::from(c));
        } else {
            safe.push(c);
        }
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        let hostile = "ops\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\t\n\u{202e}x\u{61c}";
        let safe = terminal(hostile);
        assert_eq!(
            safe,
            "ops\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{7f}\\t\\n\\u{202e}x\\u{61c}"
        );
        assert!(!safe.chars().any(unsafe_char), "{safe}");
        assert!(matches!(terminal("plain ü text"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_raw_c1() {
        let value = serde_json::json!({ "owner": "a\u{1b}b\u{9b}c\u{7f}d\u{202e}" });
        let text = json_text(serde_json::to_string_pretty(&value).unwrap());
        assert!(!text.chars().any(|c| unsafe_char(c) && c != '\n'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
