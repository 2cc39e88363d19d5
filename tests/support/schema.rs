//! The spec's response schemas as JSON Schema validators.
//!
//! `openapi/agentidp.yaml` is read once; its `components.schemas` are
//! translated from OpenAPI 3.0 to JSON Schema 2020-12 (`nullable: true` →
//! `type: [T, "null"]`) and, to check that the fake sends no field the spec
//! does not name, every object schema with `properties` and no
//! `additionalProperties` gets `additionalProperties: false`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{Map, Value, json};

/// One operation of the spec.
#[derive(Clone, Debug)]
pub struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
}

/// The loaded spec.
pub struct Spec {
    doc: &'static Value,
    components: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<(String, u16), Arc<Validator>>>,
}

/// What the spec says a response of `(operation, status)` holds.
pub enum Expected {
    /// The status is not documented for the operation.
    Undocumented,
    /// No body.
    Empty,
    /// A JSON body valid against this validator.
    Json(Arc<Validator>),
}

/// The spec, loaded once per test binary.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(Spec::load)
}

fn translate(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let nullable = map.remove("nullable") == Some(Value::Bool(true));
            match map.get("type").cloned() {
                Some(Value::String(t)) if nullable => {
                    map.insert("type".into(), json!([t, "null"]));
                }
                _ => {}
            }
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(translate);
        }
        Value::Array(items) => items.iter_mut().for_each(translate),
        _ => {}
    }
}

impl Spec {
    fn load() -> Spec {
        let doc = super::openapi::document();
        let mut components = doc["components"].clone();
        translate(&mut components);
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    operations.push(Operation {
                        id: id.to_owned(),
                        method: method.to_uppercase(),
                        path: path.clone(),
                    });
                }
            }
        }
        Spec {
            doc,
            components,
            operations,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// Every operation of the spec.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation `method path` (path relative to `/api/v1`, query
    /// ignored) stands for.
    pub fn operation_for(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        self.operations.iter().find(|op| {
            let template: Vec<&str> = op.path.split('/').collect();
            op.method == method
                && template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
    }

    fn operation_doc(&self, op: &Operation) -> &Value {
        &self.doc["paths"][&op.path][op.method.to_lowercase()]
    }

    /// What a response with `status` to `op` must hold.
    pub fn expected(&self, op: &Operation, status: u16) -> Expected {
        let mut response = &self.operation_doc(op)["responses"][status.to_string()];
        if response.is_null() {
            return Expected::Undocumented;
        }
        if let Some(reference) = response.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            response = &self.doc["components"]["responses"][name];
        }
        let Some(schema) = response.pointer("/content/application~1json/schema") else {
            return Expected::Empty;
        };
        let key = (op.id.clone(), status);
        let mut cache = self.validators.lock().expect("validator cache");
        let validator = cache.entry(key).or_insert_with(|| {
            let mut schema = schema.clone();
            translate(&mut schema);
            let mut root = Map::new();
            root.insert("allOf".into(), json!([schema]));
            root.insert("components".into(), self.components.clone());
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&Value::Object(root))
                .expect("the spec's schema compiles");
            Arc::new(validator)
        });
        Expected::Json(Arc::clone(validator))
    }
}
