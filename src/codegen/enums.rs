//! The spec's string enums, as `open_enum!` invocations: the macro (in
//! `src/model/open_enum.rs`) holds the impls once; the generated file holds
//! only the spec's values.

use std::collections::BTreeMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use serde_json::Value;

use super::schemas;

/// A string enum of the spec's components.
pub struct Enum {
    description: Option<String>,
    values: Vec<String>,
}

/// The string enums, by schema name.
pub type StringEnums = BTreeMap<String, Enum>;

/// Every `type: string` schema with an `enum`.
pub fn collect(doc: &Value) -> StringEnums {
    let mut out = BTreeMap::new();
    for (name, schema) in schemas(doc).into_iter().flatten() {
        let is_string = schema.get("type").and_then(Value::as_str) == Some("string");
        let Some(values) = schema.get("enum").and_then(Value::as_array) else {
            continue;
        };
        if !is_string {
            continue;
        }
        out.insert(
            name.clone(),
            Enum {
                description: schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                values: values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            },
        );
    }
    out
}

/// A value as a `CamelCase` variant name: its alphanumeric runs, each capitalized.
pub(super) fn variant_name(value: &str) -> Ident {
    let name: String = value
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    Ident::new(&name, Span::call_site())
}

/// One `open_enum!` invocation per enum.
pub fn tokens(enums: &StringEnums) -> TokenStream {
    enums
        .iter()
        .map(|(name, e)| {
            let ty = Ident::new(name, Span::call_site());
            let doc = e
                .description
                .clone()
                .unwrap_or_else(|| format!("`{name}` of the AgentIdP API."));
            let variants: Vec<Ident> = e.values.iter().map(|v| variant_name(v)).collect();
            let values = &e.values;
            quote! {
                open_enum! {
                    #[doc = #doc]
                    #ty { #( #variants = #values, )* }
                }
            }
        })
        .collect()
}
