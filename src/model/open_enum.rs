//! The `open_enum!` macro: the spec's string enums as Rust enums that keep
//! values this SDK does not know yet. The invocations are generated from the
//! spec into `enums.rs`; the impls live here once.

/// The text of an enum value this version of the SDK does not know.
///
/// It can be read ([`as_str`](Self::as_str)) but not built: an unknown value
/// only comes from the server, so it can never stand in for a known one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnknownValue(pub(crate) String);

impl UnknownValue {
    /// The value as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An enum of the spec that keeps unknown values: the documented variants,
/// `Unknown(UnknownValue)`, the wire form through serde, `Display`, `FromStr`
/// (infallible: an unknown value is kept, not refused) and `JsonSchema`.
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
            Unknown($crate::model::UnknownValue),
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
                    other => $name::Unknown($crate::model::UnknownValue(other.to_owned())),
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
