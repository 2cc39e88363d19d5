//! Per-operation facts the facade needs, read from the spec: the `Operation`
//! enum and its table (method, path, scopes, replay rule, done codes).

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use serde_json::Value;

use super::each_operation;

/// Replay decisions an operation may declare in `x-sentryagent-replay`.
const REPLAY_VALUES: [(&str, &str); 3] = [
    ("always", "Always"),
    ("unsent-only", "UnsentOnly"),
    ("conflict-means-done", "ConflictMeansDone"),
];

/// What the facade needs to know of one operation.
pub struct Operation {
    id: String,
    summary: String,
    method: String,
    path: String,
    bearer: bool,
    scopes: Vec<String>,
    replay: &'static str,
    outcome_check: Option<String>,
    done_codes: Vec<String>,
}

/// Reads every operation, sorted by operation id.
pub fn collect(doc: &Value) -> Result<Vec<Operation>, String> {
    let mut out = Vec::new();
    for (path, method, op) in each_operation(doc)? {
        let where_ = format!("{} {path}", method.to_uppercase());
        let text = |key: &str| op.get(key).and_then(Value::as_str).map(str::to_owned);
        let id =
            text("operationId").ok_or_else(|| format!("operation {where_} has no operationId"))?;
        let at = format!("operation `{id}` ({where_})");
        let replay_raw = text("x-sentryagent-replay")
            .ok_or_else(|| format!("{at} has no x-sentryagent-replay"))?;
        let replay = REPLAY_VALUES
            .iter()
            .find(|(wire, _)| *wire == replay_raw)
            .map(|(_, variant)| *variant)
            .ok_or_else(|| format!("{at}: unknown x-sentryagent-replay `{replay_raw}`"))?;
        let security = op
            .get("security")
            .or_else(|| doc.get("security"))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at} declares no security"))?;
        // A bearer token is needed when every alternative names oauth2;
        // the scopes are those the oauth2 requirement lists.
        let bearer = !security.is_empty() && security.iter().all(|alt| alt.get("oauth2").is_some());
        let scopes = security
            .iter()
            .filter_map(|alt| alt.get("oauth2").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let outcome_check = text("x-sentryagent-outcome-check");
        if replay == "UnsentOnly" && outcome_check.is_none() {
            return Err(format!(
                "{at} is unsent-only but says in no x-sentryagent-outcome-check how a \
                 caller checks an unknown outcome"
            ));
        }
        let done_codes: Vec<String> = op
            .get("x-sentryagent-done-codes")
            .and_then(Value::as_array)
            .map(|codes| {
                codes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if (replay == "ConflictMeansDone") == done_codes.is_empty() {
            return Err(format!(
                "{at}: x-sentryagent-done-codes must list the 409 codes that mean done \
                 exactly when x-sentryagent-replay is conflict-means-done"
            ));
        }
        out.push(Operation {
            summary: text("summary").unwrap_or_else(|| id.clone()),
            id,
            method: method.to_uppercase(),
            path: path.to_owned(),
            bearer,
            scopes,
            replay,
            outcome_check,
            done_codes,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `snake_case` → `CamelCase`.
fn variant(id: &str) -> Ident {
    super::enums::variant_name(id)
}

/// The `Operation` enum and `OPERATIONS`, its table in the same order.
pub fn tokens(operations: &[Operation]) -> TokenStream {
    let variants: Vec<Ident> = operations.iter().map(|op| variant(&op.id)).collect();
    let docs = operations
        .iter()
        .map(|op| format!("`{} {}`: {}.", op.method, op.path, op.summary));
    let rows = operations.iter().zip(&variants).map(|(op, variant)| {
        let Operation {
            id,
            method,
            path,
            bearer,
            scopes,
            replay,
            outcome_check,
            done_codes,
            ..
        } = op;
        let replay = Ident::new(replay, Span::call_site());
        let outcome_check = match outcome_check {
            Some(text) => quote!(Some(#text)),
            None => quote!(None),
        };
        quote! {
            OperationSpec {
                operation: Operation::#variant,
                id: #id,
                method: #method,
                path: #path,
                bearer: #bearer,
                scopes: &[#(#scopes),*],
                replay: Replay::#replay,
                outcome_check: #outcome_check,
                done_codes: &[#(#done_codes),*],
            }
        }
    });
    let count = operations.len();
    quote! {
        /// An operation of the AgentIdP API, as the spec names it
        /// (`Operation::GetAgent` is operationId `get_agent`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Operation {
            #( #[doc = #docs] #variants, )*
        }

        impl Operation {
            /// Every operation of the spec, in operationId order.
            pub const ALL: [Operation; #count] = [#(Operation::#variants),*];
        }

        /// What the spec says of each operation, in the order of [`Operation`].
        pub(crate) static OPERATIONS: [OperationSpec; #count] = [#(#rows),*];
    }
}
