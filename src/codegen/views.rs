//! The spec as progenitor sees it: the documented API, rewritten so that the
//! bindings are strict in what the SDK sends and lenient in what it accepts.
//!
//! - **Any 2xx succeeds.** Each operation gets a `2XX` response with its
//!   documented success body, so a server answering 201 where 200 is
//!   documented is decoded, not turned into an error quoting a fresh secret.
//! - **Received views drop constraints.** Schemas reached from responses lose
//!   `pattern`, lengths, bounds and checking-only formats (`email`); shared
//!   constrained scalars (`Capability`, `SemVer`, …) are inlined there as plain
//!   strings, while the request schemas keep the validating newtypes. Required
//!   fields and types stay as the spec says.
//! - **Secrets have two types.** A `format: password` schema is
//!   `crate::secret::Secret` where the server sends it (redacted even when
//!   serialized) and `crate::secret::WireSecret` where the SDK sends it (its
//!   plain value goes on the wire, the type is not public).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{SPEC_PATH, each_operation, schema_ref, schemas};

/// Keywords that only restrict values; the received views drop them.
const CONSTRAINTS: [&str; 13] = [
    "pattern",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minProperties",
    "maxProperties",
];

/// Formats that choose a Rust type (kept); any other format only checks.
const TYPING_FORMATS: [&str; 5] = ["uuid", "date-time", "int32", "int64", "password"];

/// The suffix of the sent view of a secret schema.
const SENT_SUFFIX: &str = "Sent";

/// The derived spec and what the generator settings need to know of it.
pub struct Views {
    /// The spec progenitor generates from.
    pub doc: Value,
    /// Schema name → Rust type, for the secret schemas of both views.
    pub replacements: Vec<(String, String)>,
    /// The object schemas responses use, which may grow fields.
    pub received_objects: Vec<String>,
}

/// Derives the views from the documented spec.
pub fn derive(spec: &Value) -> Result<Views, String> {
    let mut doc = spec.clone();
    any_2xx_succeeds(&mut doc)?;
    let sent = reachable(&doc, &roots(&doc, Side::Sent)?);
    let received = reachable(&doc, &roots(&doc, Side::Received)?);
    let all = schemas(&doc).cloned().unwrap_or_default();
    if let Some(both) = sent
        .intersection(&received)
        .find(|name| all.get(*name).is_some_and(is_object))
    {
        return Err(format!(
            "schema `{both}` in {SPEC_PATH} is used in requests and in responses; \
             the generator gives each side its own view, so split it into two schemas"
        ));
    }
    let secrets: BTreeSet<String> = all
        .iter()
        .filter(|(_, schema)| is_secret(schema))
        .map(|(name, _)| name.clone())
        .collect();

    let components = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("{SPEC_PATH} has no components.schemas"))?;
    // A scalar both sides use keeps its constraints in place for requests;
    // the received objects inline a relaxed copy of it instead.
    for name in received.difference(&sent) {
        if let Some(schema) = components.get_mut(name) {
            relax(schema, &all, &secrets);
        }
    }
    let mut replacements = Vec::new();
    for secret in &secrets {
        replacements.push((secret.clone(), "crate::secret::Secret".to_owned()));
        let sent_name = format!("{secret}{SENT_SUFFIX}");
        if let Some(schema) = all.get(secret) {
            components.insert(sent_name.clone(), schema.clone());
        }
        replacements.push((sent_name, "crate::secret::WireSecret".to_owned()));
    }
    for name in &sent {
        if let Some(schema) = components.get_mut(name) {
            rename_refs(schema, &secrets);
        }
    }
    let received_objects = received
        .iter()
        .filter(|name| all.get(*name).is_some_and(is_object))
        .cloned()
        .collect();
    Ok(Views {
        doc,
        replacements,
        received_objects,
    })
}

/// Adds a `2XX` response with the documented success body to every operation.
fn any_2xx_succeeds(doc: &mut Value) -> Result<(), String> {
    let locations: Vec<(String, String)> = each_operation(doc)?
        .into_iter()
        .map(|(path, method, _)| (path.to_owned(), method.to_owned()))
        .collect();
    for (path, method) in locations {
        let pointer = format!("/paths/{}/{method}/responses", path.replace('/', "~1"));
        let responses = doc
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| format!("{} {path} has no responses", method.to_uppercase()))?;
        if responses.contains_key("2XX") {
            continue;
        }
        let documented = responses
            .iter()
            .filter(|(status, _)| status.parse::<u16>().is_ok_and(|s| (200..300).contains(&s)))
            .min_by_key(|(status, _)| status.as_str())
            .map(|(_, response)| response.clone())
            .ok_or_else(|| {
                format!(
                    "{} {path} documents no success response",
                    method.to_uppercase()
                )
            })?;
        let mut any = documented;
        if let Some(map) = any.as_object_mut() {
            map.insert(
                "description".to_owned(),
                Value::from("Any other 2xx: decoded as the documented success."),
            );
            // Headers are documentation of the documented status only.
            map.remove("headers");
        }
        responses.insert("2XX".to_owned(), any);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Sent,
    Received,
}

/// The schemas an operation's requests (bodies, parameters) or responses
/// start from.
fn roots(doc: &Value, side: Side) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    for item in paths.into_iter().flat_map(|p| p.values()) {
        if side == Side::Sent {
            // Path-level parameters.
            if let Some(params) = item.get("parameters") {
                out.push(params.clone());
            }
        }
    }
    for (_, _, op) in each_operation(doc)? {
        match side {
            Side::Sent => {
                out.extend(op.get("requestBody").cloned());
                out.extend(op.get("parameters").cloned());
            }
            Side::Received => out.extend(op.get("responses").cloned()),
        }
    }
    // `$ref`s to shared parameters and responses lead into `#/components`.
    let resolved = out
        .iter()
        .flat_map(|root| component_refs(root, &["parameters", "responses"]))
        .filter_map(|pointer| doc.pointer(&pointer).cloned())
        .collect::<Vec<_>>();
    out.extend(resolved);
    Ok(out)
}

/// Every `#/components/{kind}/...` pointer under `value`, for the given kinds.
fn component_refs(value: &Value, kinds: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    walk(value, &mut |node| {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            let kind_matches = kinds
                .iter()
                .any(|kind| r.starts_with(&format!("#/components/{kind}/")));
            if kind_matches {
                out.push(r.trim_start_matches('#').to_owned());
            }
        }
    });
    out
}

/// The component schemas reachable from `roots` through `$ref`s.
fn reachable(doc: &Value, roots: &[Value]) -> BTreeSet<String> {
    let all = schemas(doc).cloned().unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut pending: Vec<Value> = roots.to_vec();
    while let Some(value) = pending.pop() {
        walk(&value, &mut |node| {
            if let Some(name) = schema_ref(node)
                && seen.insert(name.to_owned())
                && let Some(schema) = all.get(name)
            {
                pending.push(schema.clone());
            }
        });
    }
    seen
}

/// Calls `f` on `value` and on every value nested in it.
fn walk(value: &Value, f: &mut dyn FnMut(&Value)) {
    f(value);
    match value {
        Value::Object(map) => map.values().for_each(|v| walk(v, f)),
        Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
        _ => {}
    }
}

fn is_object(schema: &Value) -> bool {
    schema.get("properties").is_some()
}

fn is_secret(schema: &Value) -> bool {
    schema.get("format").and_then(Value::as_str) == Some("password")
}

/// Whether a scalar schema restricts values beyond its type.
fn constrains(schema: &Value) -> bool {
    let Some(map) = schema.as_object() else {
        return false;
    };
    CONSTRAINTS.iter().any(|k| map.contains_key(*k))
        || map
            .get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| !TYPING_FORMATS.contains(&f))
}

/// Drops the constraints of a received schema, inlining the constrained
/// scalar components it refers to (secrets keep their reference).
fn relax(schema: &mut Value, all: &Map<String, Value>, secrets: &BTreeSet<String>) {
    if let Some(name) = schema_ref(schema) {
        if secrets.contains(name) {
            return;
        }
        match all.get(name) {
            Some(target)
                if !is_object(target) && target.get("enum").is_none() && constrains(target) =>
            {
                *schema = target.clone();
            }
            _ => return,
        }
    }
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    for key in CONSTRAINTS {
        map.remove(key);
    }
    if map
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| !TYPING_FORMATS.contains(&f))
    {
        map.remove("format");
    }
    if let Some(Value::Object(properties)) = map.get_mut("properties") {
        for property in properties.values_mut() {
            relax(property, all, secrets);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(nested) = map.get_mut(key).filter(|v| v.is_object()) {
            relax(nested, all, secrets);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(alternatives)) = map.get_mut(key) {
            for alternative in alternatives {
                relax(alternative, all, secrets);
            }
        }
    }
}

/// Points a sent schema's references to secrets at their sent view.
fn rename_refs(schema: &mut Value, secrets: &BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            let target = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .filter(|name| secrets.contains(*name))
                .map(str::to_owned);
            if let Some(name) = target {
                map.insert(
                    "$ref".to_owned(),
                    Value::from(format!("#/components/schemas/{name}{SENT_SUFFIX}")),
                );
            }
            map.values_mut().for_each(|v| rename_refs(v, secrets));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "openapi": "3.0.3",
            "paths": {
                "/things": {
                    "post": {
                        "operationId": "make",
                        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}}}},
                        "responses": {"201": {"description": "made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}}
                    }
                }
            },
            "components": {"schemas": {
                "Name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8},
                "Key": {"type": "string", "format": "password", "minLength": 1},
                "NewThing": {"type": "object", "properties": {"name": {"$ref": "#/components/schemas/Name"}, "key": {"$ref": "#/components/schemas/Key"}}},
                "Thing": {"type": "object", "required": ["name"], "properties": {
                    "name": {"$ref": "#/components/schemas/Name"},
                    "key": {"$ref": "#/components/schemas/Key"},
                    "email": {"type": "string", "format": "email"},
                    "tags": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Name"}}
                }}
            }}
        })
    }

    #[test]
    fn received_views_drop_constraints_and_sent_views_keep_them() {
        let views = derive(&spec()).unwrap();
        let thing = &views.doc["components"]["schemas"]["Thing"];
        assert_eq!(thing["properties"]["name"], json!({"type": "string"}));
        assert_eq!(thing["properties"]["email"], json!({"type": "string"}));
        assert_eq!(
            thing["properties"]["tags"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert_eq!(thing["required"], json!(["name"]));
        let new_thing = &views.doc["components"]["schemas"]["NewThing"];
        assert_eq!(
            new_thing["properties"]["name"]["$ref"],
            "#/components/schemas/Name"
        );
        assert_eq!(views.received_objects, vec!["Thing".to_owned()]);
    }

    #[test]
    fn secrets_get_a_redacting_type_received_and_a_wire_type_sent() {
        let views = derive(&spec()).unwrap();
        let schemas = &views.doc["components"]["schemas"];
        assert_eq!(
            schemas["Thing"]["properties"]["key"]["$ref"],
            "#/components/schemas/Key"
        );
        assert_eq!(
            schemas["NewThing"]["properties"]["key"]["$ref"],
            "#/components/schemas/KeySent"
        );
        assert!(
            views
                .replacements
                .contains(&("Key".into(), "crate::secret::Secret".into()))
        );
        assert!(
            views
                .replacements
                .contains(&("KeySent".into(), "crate::secret::WireSecret".into()))
        );
    }

    #[test]
    fn every_operation_also_succeeds_on_any_2xx() {
        let views = derive(&spec()).unwrap();
        let responses = &views.doc["paths"]["/things"]["post"]["responses"];
        assert_eq!(responses["2XX"]["content"], responses["201"]["content"]);
    }

    #[test]
    fn an_object_used_both_ways_is_refused() {
        let mut doc = spec();
        doc["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"] =
            json!("#/components/schemas/Thing");
        let err = derive(&doc).err().unwrap();
        assert!(err.contains("`Thing`"), "{err}");
    }
}
