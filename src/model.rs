//! The API's data types.
//!
//! The records (`Agent`, `Credential`, …) are the types progenitor generates
//! from the spec, re-exported as they are; the enums are generated from the
//! spec too, as open enums that keep values this SDK does not know yet.

pub use crate::raw::types::{
    Agent, AgentUpdate, AuditEvent, Capability, Credential, CredentialWithSecret, Email,
    Introspection, NewAgent, NewCredential, Owner, SemVer,
};

/// Builders for the request types: `NewAgent::builder().email("a@b.c")…`.
pub mod builder {
    pub use crate::raw::types::builder::{AgentUpdate, NewAgent, NewCredential};
}

/// An enum of the spec that keeps unknown values: the documented variants,
/// `Unknown(String)`, the wire form through serde, `Display`, `FromStr`
/// (infallible) and `JsonSchema`. The invocations are generated from the
/// spec's string enums into `enums.rs`.
macro_rules! open_enum {
    ($(#[doc = $doc:expr])* $name:ident { $($variant:ident = $value:literal,)* }) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!(" Values this SDK does not know yet are kept in [`", stringify!($name), "::Unknown`] instead of failing.")]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $(#[doc = concat!("`", $value, "`")] $variant,)*
            /// A value this version of the SDK does not know.
            Unknown(String),
        }

        impl $name {
            /// Every value the spec documents.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)*
                    $name::Unknown(other) => other.as_str(),
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::from(value.as_ref()))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> String {
                stringify!($name).to_owned()
            }

            fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
                schemars::schema::SchemaObject {
                    instance_type: Some(schemars::schema::InstanceType::String.into()),
                    enum_values: Some(vec![$($value.into()),*]),
                    ..Default::default()
                }
                .into()
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/enums.rs"));

/// One page of a paginated listing.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The number of matching items across all pages, when the server says.
    pub total: Option<u64>,
    /// The 1-based page number.
    pub page: u32,
    /// The page size asked for.
    pub limit: u32,
}

impl<T> Page<T> {
    /// Whether a later page may hold more items: the server's `total` says so,
    /// or, without it, this page came back full.
    pub fn has_more(&self) -> bool {
        match self.total {
            Some(total) => u64::from(self.page) * u64::from(self.limit) < total,
            None => self.items.len() as u64 >= u64::from(self.limit),
        }
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl From<&str> for Email {
    fn from(email: &str) -> Self {
        Email(email.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values() {
        let status: AgentStatus = serde_json::from_str("\"hibernating\"").unwrap();
        assert_eq!(status, AgentStatus::Unknown("hibernating".into()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"hibernating\"");
        let known: AuditAction = serde_json::from_str("\"credential.rotated\"").unwrap();
        assert_eq!(known, AuditAction::CredentialRotated);
        assert_eq!(known.to_string(), "credential.rotated");
        assert_eq!(AgentType::KNOWN.len(), 8);
    }

    #[test]
    fn has_more_uses_total_or_a_full_page() {
        let page = |n: usize, total, page| Page {
            items: vec![(); n],
            total,
            page,
            limit: 2,
        };
        assert!(page(2, Some(5), 2).has_more());
        assert!(!page(1, Some(5), 3).has_more());
        assert!(page(2, None, 1).has_more());
        assert!(!page(1, None, 1).has_more());
    }
}
