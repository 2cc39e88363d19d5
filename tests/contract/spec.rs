//! The spec as test data: its operations, what their requests carry and the
//! responses they document, with every example.
//!
//! The YAML parser expands the spec's anchors and aliases; `$ref`s to
//! `#/components/…` are resolved here.

use std::sync::LazyLock;

use serde_json::Value;

use super::openapi::document;

/// Longer `$ref` chains are a spec error (and would otherwise never end).
const MAX_REF_DEPTH: usize = 8;
/// The keys of a path item that are operations.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

static OPERATIONS: LazyLock<Vec<Operation>> = LazyLock::new(|| {
    let paths = document()["paths"]
        .as_object()
        .expect("the spec has `paths`");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                operations.push(Operation::read(path, method, item, op));
            }
        }
    }
    operations
});

/// One operation of the spec.
#[derive(Debug)]
pub struct Operation {
    pub id: String,
    /// Upper case, as on the wire.
    pub method: String,
    /// The path template, relative to the server URL (`/agents/{agentId}`).
    pub path: String,
    /// Whether a security requirement names an OAuth 2.0 scheme, i.e. the
    /// request carries `Authorization: Bearer`.
    pub bearer: bool,
    /// The path parameters (of the path item and the operation).
    pub path_params: Vec<Parameter>,
    /// The request body, if the operation takes one.
    pub request: Option<Content>,
    pub responses: Vec<Response>,
}

/// A path parameter.
#[derive(Debug)]
pub struct Parameter {
    pub name: String,
    /// The schema's `format` (`uuid`, …), if any.
    pub format: Option<String>,
}

/// One documented response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// `None` for a response without a body.
    pub content: Option<Content>,
}

/// A body: its single media type, schema and examples.
#[derive(Debug)]
pub struct Content {
    pub media_type: String,
    /// The name of the `#/components/schemas/…` it refers to, if it refers to one.
    pub schema: Option<String>,
    pub examples: Vec<Example>,
}

/// A documented example: `example` is named "example", `examples` keep their names.
#[derive(Debug)]
pub struct Example {
    pub name: String,
    pub value: Value,
}

/// Every operation of the spec.
pub fn operations() -> &'static [Operation] {
    &OPERATIONS
}

/// The operation `id`; panics if the spec has none.
pub fn operation(id: &str) -> &'static Operation {
    operations()
        .iter()
        .find(|op| op.id == id)
        .unwrap_or_else(|| panic!("the spec has no operation `{id}`"))
}

/// Follows `$ref`s to `#/…` until a value that is not one.
fn resolve(mut value: &'static Value) -> &'static Value {
    for _ in 0..MAX_REF_DEPTH {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {reference}"));
        value = document()
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    panic!("$ref chain longer than {MAX_REF_DEPTH} at {value}");
}

impl Operation {
    fn read(path: &str, method: &str, item: &'static Value, op: &'static Value) -> Self {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        let parameters = [&item["parameters"], &op["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(resolve);
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{id} has no responses"));
        Self {
            id: id.to_owned(),
            method: method.to_uppercase(),
            path: path.to_owned(),
            bearer: names_oauth2(op.get("security").unwrap_or(&document()["security"])),
            path_params: parameters
                .filter(|p| p["in"] == "path")
                .map(|p| Parameter {
                    name: p["name"].as_str().expect("a parameter name").to_owned(),
                    format: resolve(&p["schema"])["format"].as_str().map(str::to_owned),
                })
                .collect(),
            request: op
                .get("requestBody")
                .and_then(|body| Content::read(resolve(body))),
            responses: responses
                .iter()
                .map(|(status, response)| Response {
                    status: status
                        .parse()
                        .unwrap_or_else(|_| panic!("{id}: status `{status}` is not a number")),
                    content: Content::read(resolve(response)),
                })
                .collect(),
        }
    }

    /// The one success response (the spec documents exactly one per operation).
    pub fn success(&self) -> &Response {
        let mut successes = self.responses.iter().filter(|r| r.is_success());
        let success = successes
            .next()
            .unwrap_or_else(|| panic!("{} documents no success", self.id));
        assert!(
            successes.next().is_none(),
            "{} documents more than one success",
            self.id
        );
        success
    }

    /// The documented error responses.
    pub fn errors(&self) -> impl Iterator<Item = &Response> {
        self.responses.iter().filter(|r| !r.is_success())
    }

    /// The first example of the request body.
    pub fn request_example(&self) -> &Value {
        let request = self
            .request
            .as_ref()
            .unwrap_or_else(|| panic!("{} takes no body", self.id));
        request.first_example(&self.id)
    }
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The schema name of the body (`()` for a response without one), as the
    /// short name of the generated type it decodes into.
    pub fn type_name(&self) -> &str {
        self.content
            .as_ref()
            .map_or("()", |c| c.schema.as_deref().unwrap_or("<inline schema>"))
    }
}

impl Content {
    /// The content of a request body or response, `None` if it has none.
    fn read(holder: &'static Value) -> Option<Self> {
        let content = holder.get("content")?.as_object()?;
        assert_eq!(
            content.len(),
            1,
            "one media type per body, got {:?}",
            content.keys()
        );
        let (media_type, media) = content.iter().next()?;
        let mut examples: Vec<Example> = media
            .get("example")
            .map(|value| Example {
                name: "example".to_owned(),
                value: value.clone(),
            })
            .into_iter()
            .collect();
        for (name, example) in media
            .get("examples")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let value = resolve(example)
                .get("value")
                .unwrap_or_else(|| panic!("example `{name}` has no value"));
            examples.push(Example {
                name: name.clone(),
                value: value.clone(),
            });
        }
        Some(Self {
            media_type: media_type.clone(),
            schema: media
                .pointer("/schema/$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .map(str::to_owned),
            examples,
        })
    }

    /// The first example; panics naming `op` if there is none.
    pub fn first_example(&self, op: &str) -> &Value {
        &self
            .examples
            .first()
            .unwrap_or_else(|| panic!("{op}: a body without an example"))
            .value
    }
}

/// Whether a `security` list has a requirement naming an OAuth 2.0 scheme.
fn names_oauth2(security: &Value) -> bool {
    let schemes = &document()["components"]["securitySchemes"];
    security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys())
        .any(|scheme| resolve(&schemes[scheme])["type"] == "oauth2")
}

/// The names of the object properties whose schema is a secret (a string of
/// `format: password`): what the bindings decode as redacted values.
pub fn secret_properties() -> &'static std::collections::BTreeSet<String> {
    static NAMES: LazyLock<std::collections::BTreeSet<String>> = LazyLock::new(|| {
        let schemas = document()["components"]["schemas"]
            .as_object()
            .expect("the spec has component schemas");
        schemas
            .values()
            .filter_map(|schema| schema.get("properties")?.as_object())
            .flatten()
            .filter(|(_, property)| resolve(property)["format"] == "password")
            .map(|(name, _)| name.clone())
            .collect()
    });
    &NAMES
}
