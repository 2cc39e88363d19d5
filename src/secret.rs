//! Secrets on the wire: client secrets and access tokens.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret string (client secret or access token) as it travels in API bodies.
///
/// `Debug` prints `[REDACTED]`; the value is reachable only through
/// [`ExposeSecret::expose_secret`] or by converting into a [`SecretString`].
/// It serializes to its plain value because the wire needs it; nothing in this
/// crate serializes it anywhere else.
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

impl From<&SecretString> for Secret {
    fn from(secret: &SecretString) -> Self {
        Self(secret.clone())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_wire_value_is_kept() {
        let s = Secret::new("sk_live_abc");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"sk_live_abc\"");
        let back: Secret = serde_json::from_str("\"sk_live_abc\"").unwrap();
        assert_eq!(back.expose_secret(), "sk_live_abc");
    }
}
