//! OAuth 2.0 scopes: an open set, with constants for the four documented ones.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// One OAuth 2.0 scope, such as [`Scope::AGENTS_READ`].
///
/// Any scope string is accepted, because newer servers add scopes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(Cow<'static, str>);

impl Scope {
    /// `agents:read`: read agent records.
    pub const AGENTS_READ: Scope = Scope(Cow::Borrowed("agents:read"));
    /// `agents:write`: create, update and decommission agents; all credential operations.
    pub const AGENTS_WRITE: Scope = Scope(Cow::Borrowed("agents:write"));
    /// `tokens:read`: token introspection.
    pub const TOKENS_READ: Scope = Scope(Cow::Borrowed("tokens:read"));
    /// `audit:read`: audit-log queries.
    pub const AUDIT_READ: Scope = Scope(Cow::Borrowed("audit:read"));

    /// The four scopes documented for Phase 1, the default a client requests.
    pub const DOCUMENTED: [Scope; 4] = [
        Scope::AGENTS_READ,
        Scope::AGENTS_WRITE,
        Scope::TOKENS_READ,
        Scope::AUDIT_READ,
    ];

    /// A scope from its wire name. Returns `None` unless `name` is an
    /// RFC 6749 §3.3 `scope-token`: one or more of `%x21 / %x23-5B /
    /// %x5D-7E`, so no space or other whitespace (`U+00A0` included), no
    /// control, no `"` or `\`, nothing outside ASCII.
    ///
    /// ```
    /// use sentryagent_idp::Scope;
    ///
    /// assert_eq!(Scope::new("agents:write"), Some(Scope::AGENTS_WRITE));
    /// assert_eq!(Scope::new("reports:view\u{a0}agents:write"), None);
    /// assert_eq!(Scope::new("agents:write\u{200b}"), None);
    /// ```
    pub fn new(name: impl Into<String>) -> Option<Scope> {
        let name = name.into();
        is_scope_token(&name).then_some(Scope(Cow::Owned(name)))
    }

    /// The wire name, e.g. `agents:read`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) const fn from_static(name: &'static str) -> Scope {
        Scope(Cow::Borrowed(name))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.0)
    }
}

impl std::str::FromStr for Scope {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::new(s).ok_or_else(|| crate::Error::invalid_input(format!("`{s}` is not a scope")))
    }
}

/// A set of scopes, written on the wire as one space-separated string.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The four documented scopes.
    pub fn documented() -> Self {
        Scope::DOCUMENTED.into_iter().collect()
    }

    /// Parses the space-separated wire form (RFC 6749 §3.3: words separated
    /// by spaces, 0x20, only; extra spaces are ignored). Every
    /// `scope-token` is kept, whatever its form: this reads what a server
    /// sent, and newer servers add scopes. A word that is not a
    /// `scope-token` ([`Scope::new`]: other whitespace such as `a<NBSP>b`,
    /// a control, a quote, non-ASCII) is dropped, never split and never
    /// matched: `reports:view<NBSP>agents:write` grants neither scope. For a
    /// list a person typed, see [`parse_strict`](Self::parse_strict).
    pub fn parse(wire: &str) -> Self {
        words(wire, false)
            .filter_map(|(word, _)| Scope::new(word))
            .collect()
    }

    /// Parses a space-separated list a person typed (a flag, a config file,
    /// `AGENTIDP_SCOPES`): every word must have the `resource:action` form of
    /// AgentIdP's scopes (`agents:read`, `webhooks:read`: one `:` between two
    /// non-empty parts, RFC 6749 scope characters only, no comma), and there
    /// must be at least one, so that a typo is reported instead of becoming a
    /// scope no server grants.
    ///
    /// # Errors
    ///
    /// [`ScopeParseError::NotAScope`] with the first word that is not a
    /// scope, or [`ScopeParseError::Empty`].
    ///
    /// ```
    /// use sentryagent_idp::{Scope, ScopeParseError, ScopeSet};
    ///
    /// let set = ScopeSet::parse_strict(" agents:read  audit:read ")?;
    /// assert!(set.contains(&Scope::AUDIT_READ));
    /// assert_eq!(
    ///     ScopeSet::parse_strict("agents:read audit"),
    ///     Err(ScopeParseError::NotAScope("audit".into()))
    /// );
    /// # Ok::<(), ScopeParseError>(())
    /// ```
    pub fn parse_strict(list: &str) -> Result<Self, ScopeParseError> {
        let mut set = ScopeSet::new();
        for (word, resource_action) in words(list, true) {
            match Scope::new(word).filter(|_| resource_action) {
                Some(scope) => set.insert(scope),
                None => return Err(ScopeParseError::NotAScope(word.to_owned())),
            }
        }
        if set.is_empty() {
            return Err(ScopeParseError::Empty);
        }
        Ok(set)
    }

    /// Whether the set holds `scope`.
    pub fn contains(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `other` is in this set.
    pub fn is_superset(&self, other: &ScopeSet) -> bool {
        self.0.is_superset(&other.0)
    }

    /// The scopes of `other` that this set lacks.
    pub fn missing_from(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(other.0.difference(&self.0).cloned().collect())
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    /// The scopes, in lexical order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The space-separated wire form.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for scope in &self.0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(scope.as_str());
        }
        out
    }
}

/// The one tokenizer of scope lists, behind [`ScopeSet::parse`] and
/// [`ScopeSet::parse_strict`]: the whitespace-separated words, each with
/// whether it has the `resource:action` form (a `:`).
fn words(list: &str, typed: bool) -> impl Iterator<Item = (&str, bool)> {
    // On the wire, RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`;
    // only a space (0x20) separates, so `a<NBSP>b` or `a<TAB>b` is one
    // (malformed) word. A list a person typed may use any ASCII whitespace.
    let separator = move |c: char| {
        if typed {
            c.is_ascii_whitespace()
        } else {
            c == ' '
        }
    };
    list.split(separator)
        .filter(|word| !word.is_empty())
        .map(|word| (word, is_resource_action(word)))
}

/// Whether `word` is a `scope-token` (RFC 6749 §3.3: `1*( %x21 / %x23-5B /
/// %x5D-7E )`, so no quote, backslash, control, space or non-ASCII): the
/// one check behind [`Scope::new`] and both parses.
fn is_scope_token(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// Whether `word` is a `scope-token` of the form `resource:action`, both
/// parts non-empty.
fn is_resource_action(word: &str) -> bool {
    let token = is_scope_token(word);
    let mut parts = word.split(':');
    let shaped = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(resource), Some(action), None) if !resource.is_empty() && !action.is_empty()
    );
    token && shaped && !word.contains(',')
}

/// Why [`ScopeSet::parse_strict`] refused a list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeParseError {
    /// The first word that is not `resource:action`, as it was written.
    #[error("`{0}` is not a scope (e.g. agents:read)")]
    NotAScope(String),
    /// The list holds no word at all.
    #[error("no scope was given")]
    Empty,
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(Scope::as_str))
            .finish()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Scope; N]> for ScopeSet {
    fn from(scopes: [Scope; N]) -> Self {
        scopes.into_iter().collect()
    }
}

impl IntoIterator for ScopeSet {
    type Item = Scope;
    type IntoIter = std::collections::btree_set::IntoIter<Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_wire())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = <Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Ok(ScopeSet::parse(&wire))
    }
}

impl schemars::JsonSchema for ScopeSet {
    fn schema_name() -> String {
        "ScopeString".to_owned()
    }

    fn json_schema(g: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_round_trips_and_keeps_unknown_scopes() {
        let set = ScopeSet::parse("  agents:read webhooks:read  agents:read ");
        assert_eq!(set.len(), 2);
        assert!(set.contains(&Scope::AGENTS_READ));
        assert!(set.contains(&Scope::new("webhooks:read").unwrap()));
        assert_eq!(set.to_wire(), "agents:read webhooks:read");
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<ScopeSet>(&json).unwrap(), set);
    }

    #[test]
    fn the_strict_parse_names_the_first_bad_word_and_the_lenient_one_keeps_it() {
        let typed = "  agents:read webhooks:read  agents:read ";
        assert_eq!(
            ScopeSet::parse_strict(typed).unwrap(),
            ScopeSet::parse(typed)
        );
        // A person may separate with a tab; on the wire only a space does.
        assert_eq!(
            ScopeSet::parse_strict("agents:read\twebhooks:read")
                .unwrap()
                .len(),
            2
        );
        assert!(ScopeSet::parse("agents:read\twebhooks:read").is_empty());
        assert_eq!(
            ScopeSet::parse_strict("agents:read agents audit"),
            Err(ScopeParseError::NotAScope("agents".into()))
        );
        assert_eq!(ScopeSet::parse_strict(" \n "), Err(ScopeParseError::Empty));
        assert_eq!(
            ScopeParseError::NotAScope("agents".into()).to_string(),
            "`agents` is not a scope (e.g. agents:read)"
        );
        // What a server sends is read as it is, whatever its form.
        assert_eq!(ScopeSet::parse("openid agents:read").len(), 2);
        assert!(ScopeSet::parse(" ").is_empty());
    }

    #[test]
    fn scopes_with_whitespace_are_refused() {
        assert!(Scope::new("a b").is_none());
        assert!(Scope::new("").is_none());
        assert!("agents read".parse::<Scope>().is_err());
    }

    /// Issue 24 defect 8: only RFC 6749 `scope-token`s are scopes; a word
    /// with anything else is dropped from a wire list, never split, so it
    /// matches nothing.
    #[test]
    fn only_rfc_6749_scope_tokens_are_scopes() {
        for bad in [
            "reports:view\u{a0}agents:write",
            "agents:write\u{200b}",
            "agents:write\u{7f}",
            "agents:\"write",
            "agents:\\write",
            "agents:write\u{1b}[31m",
            "agénts:write",
        ] {
            assert_eq!(Scope::new(bad), None, "{bad:?}");
            let set = ScopeSet::parse(&format!("agents:read {bad}"));
            assert_eq!(set, ScopeSet::from([Scope::AGENTS_READ]), "{bad:?}");
        }
        for good in ["!", "a#[]^~", "openid", "agents:write"] {
            assert!(Scope::new(good).is_some(), "{good:?}");
        }
    }

    #[test]
    fn missing_from_lists_what_is_lacking() {
        let have = ScopeSet::from([Scope::AGENTS_READ]);
        let want = ScopeSet::from([Scope::AGENTS_READ, Scope::AUDIT_READ]);
        assert_eq!(
            have.missing_from(&want),
            ScopeSet::from([Scope::AUDIT_READ])
        );
        assert!(!have.is_superset(&want));
    }
}
