//! Secrets in API bodies: client secrets and access tokens.
//!
//! [`Secret`] is what the server sends (a new `clientSecret`, an
//! `access_token`): `Debug` prints `[REDACTED]` and so does **serializing**
//! it, so `serde_json::to_string(&credential)` into a log leaks nothing. To
//! write the value on purpose, call [`ExposeSecret::expose_secret`] or
//! serialize with [`serialize_exposed`].
//!
//! `WireSecret` is what the SDK sends: the same redacting `Debug`, but its
//! plain value serializes, because the wire needs it. It is not public, and
//! only the request bodies the SDK builds hold one.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// What a redacted secret prints and serializes as.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// A secret string the server sent (a client secret or an access token).
///
/// ```
/// use sentryagent_idp::secret::Secret;
/// use sentryagent_idp::ExposeSecret;
///
/// let secret: Secret = serde_json::from_str("\"sk_live_abc\"")?;
/// assert_eq!(format!("{secret:?}"), "[REDACTED]");
/// assert_eq!(serde_json::to_string(&secret)?, "\"[REDACTED]\"");
/// assert_eq!(secret.expose_secret(), "sk_live_abc");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<Secret> for SecretString {
    fn from(secret: Secret) -> Self {
        secret.0
    }
}

impl From<SecretString> for Secret {
    fn from(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    /// Writes `"[REDACTED]"`; see [`serialize_exposed`] to write the value.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> String {
        "Secret".to_owned()
    }

    fn json_schema(g: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(g)
    }
}

/// Serializes a secret's plain value, for a field you mean to write out
/// (`#[serde(serialize_with = "sentryagent_idp::secret::serialize_exposed")]`).
///
/// ```
/// use sentryagent_idp::secret::{Secret, serialize_exposed};
///
/// #[derive(serde::Serialize)]
/// struct ForTheVault {
///     #[serde(serialize_with = "serialize_exposed")]
///     secret: Secret,
/// }
///
/// let out = serde_json::to_string(&ForTheVault { secret: Secret::new("sk_live_abc") })?;
/// assert_eq!(out, r#"{"secret":"sk_live_abc"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn serialize_exposed<S: serde::Serializer>(
    secret: &impl ExposeSecret<str>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

/// A secret the SDK sends in a request body: its plain value serializes.
#[derive(Clone)]
pub(crate) struct WireSecret(SecretString);

impl WireSecret {
    pub(crate) fn new(secret: &impl ExposeSecret<str>) -> Self {
        Self(SecretString::from(secret.expose_secret()))
    }
}

impl fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for WireSecret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

impl<'de> serde::Deserialize<'de> for WireSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Self(SecretString::from(s)))
    }
}

impl schemars::JsonSchema for WireSecret {
    fn schema_name() -> String {
        "Secret".to_owned()
    }

    fn json_schema(g: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_secret_never_serializes_its_value() {
        let s: Secret = serde_json::from_str("\"sk_live_abc\"").unwrap();
        assert_eq!(format!("{s:?}"), REDACTED);
        assert!(!serde_json::to_string(&s).unwrap().contains("sk_live_abc"));
        assert_eq!(s.expose_secret(), "sk_live_abc");
    }

    #[test]
    fn a_sent_secret_goes_on_the_wire_but_not_into_debug() {
        let w = WireSecret::new(&SecretString::from("sk_live_abc"));
        assert_eq!(serde_json::to_string(&w).unwrap(), "\"sk_live_abc\"");
        assert_eq!(format!("{w:?}"), REDACTED);
    }
}
