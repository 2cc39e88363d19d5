//! The one reader of the spec for every test: the document, `$ref`s,
//! operations, their documented responses and examples. Included by the
//! test crates that have no `common` module as `#[path] mod openapi`.
#![allow(dead_code)]

use std::sync::LazyLock;

use serde_json::Value;

/// One documented response of one operation.
#[derive(Clone, Debug)]
pub struct Documented {
    pub operation: String,
    pub method: String,
    /// The path template, relative to the server (`/agents/{agentId}`).
    pub path: String,
    pub status: u16,
    /// The example bodies (none for an empty response).
    pub examples: Vec<Value>,
}

/// The spec as JSON (anchors and aliases expanded by the YAML parser), read once.
pub fn document() -> &'static Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/openapi/agentidp.yaml"
        ))
        .expect("the spec is readable");
        yaml_serde::from_str(&text).expect("the spec is YAML")
    });
    &DOCUMENT
}

/// Follows a local `$ref` (`#/components/...`), if `value` is one.
pub fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .expect("a $ref that resolves"),
        None => value,
    }
}

/// Every (operation, documented status) of the spec, with its examples.
pub fn documented_responses() -> Vec<Documented> {
    let doc = document();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            for (status, response) in op["responses"].as_object().expect("responses") {
                let response = resolve(doc, response);
                let media = response.pointer("/content/application~1json");
                let mut examples: Vec<Value> = media
                    .and_then(|m| m.get("example"))
                    .cloned()
                    .into_iter()
                    .collect();
                if let Some(named) = media
                    .and_then(|m| m.get("examples"))
                    .and_then(Value::as_object)
                {
                    examples.extend(named.values().map(|e| resolve(doc, e)["value"].clone()));
                }
                out.push(Documented {
                    operation: id.to_owned(),
                    method: method.to_uppercase(),
                    path: path.clone(),
                    status: status.parse().expect("numeric status"),
                    examples,
                });
            }
        }
    }
    out
}

/// Every operation id in the spec.
pub fn operation_ids() -> Vec<String> {
    let mut ids: Vec<String> = documented_responses()
        .into_iter()
        .map(|d| d.operation)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
