//! Lenient in what we accept: a success body decodes whenever the fields the
//! SDK needs are there, whatever the server adds, leaves out or formats
//! differently from the spec's constraints; and when a needed field is
//! unusable, the error names its JSON path and never quotes its value.
//!
//! Every documented success example of the spec is served, changed in one
//! way at a time, to the facade call of its operation.

use std::time::Duration;

use crate::support::scripted::{Act, Scripted};
use crate::support::spec::{document, documented_responses, resolve};
use crate::support::*;
use httpmock::prelude::*;
use sentryagent_idp::auth::StaticToken;
use sentryagent_idp::{Client, ErrorKind, Operation, RetryPolicy};
use serde_json::{Map, Value, json};

/// A string no server would send, to see whether errors quote values.
const MARKER: &str = "MARKER-value-that-must-not-be-quoted";

/// One documented JSON object success of one operation, with its schema.
struct Success {
    operation: Operation,
    status: u16,
    example: Value,
    schema: Value,
}

fn successes() -> Vec<Success> {
    let doc = document();
    documented_responses()
        .into_iter()
        .filter(|d| (200..300).contains(&d.status))
        .flat_map(|d| {
            let response =
                &doc["paths"][&d.path][d.method.to_lowercase()]["responses"][d.status.to_string()];
            let schema = resolve(
                doc,
                &resolve(doc, response)["content"]["application/json"]["schema"],
            )
            .clone();
            let operation: Operation = d.operation.parse().expect("an operationId");
            d.examples
                .into_iter()
                .filter(Value::is_object)
                .map(move |example| Success {
                    operation,
                    status: d.status,
                    example,
                    schema: schema.clone(),
                })
        })
        .collect()
}

/// The properties of an object schema, each resolved (none for other schemas).
fn properties(schema: &Value) -> Vec<(String, Value)> {
    let doc = document();
    schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| (name.clone(), resolve(doc, property).clone()))
        .collect()
}

/// The alternative of a `oneOf`/`anyOf` schema that has `value`'s shape
/// (the schema itself when it has none).
fn variant(schema: &Value, value: &Value) -> Value {
    let doc = document();
    let alternatives = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array);
    let Some(alternatives) = alternatives else {
        return schema.clone();
    };
    let shape = if value.is_array() { "array" } else { "object" };
    alternatives
        .iter()
        .map(|a| resolve(doc, a).clone())
        .find(|a| a["type"] == shape || (shape == "object" && a["properties"].is_object()))
        .unwrap_or_else(|| schema.clone())
}

fn required(schema: &Value) -> Vec<&str> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Applies `change` to every object of `value` that `schema` describes,
/// descending into its properties and array items.
fn each_object(
    value: &mut Value,
    schema: &Value,
    change: &dyn Fn(&mut Map<String, Value>, &Value),
) {
    let doc = document();
    let schema = &variant(schema, value);
    match value {
        Value::Object(object) => {
            for (name, property) in properties(schema) {
                if let Some(field) = object.get_mut(&name) {
                    each_object(field, &property, change);
                }
            }
            change(object, schema);
        }
        Value::Array(items) => {
            let item_schema = resolve(doc, &schema["items"]).clone();
            for item in items {
                each_object(item, &item_schema, change);
            }
        }
        _ => {}
    }
}

/// The client for `operation`: with client credentials for the token
/// endpoint itself, else with a fixed bearer token (nothing else is asked).
fn client_for(operation: Operation, base_url: &str) -> Client {
    let builder = Client::builder()
        .base_url(base_url)
        .retry_policy(RetryPolicy::disabled())
        .total_timeout(Duration::from_secs(10));
    let builder = if operation == Operation::IssueToken {
        builder.client_id(CLIENT_ID).client_secret(CLIENT_SECRET)
    } else {
        builder.token_source(StaticToken::new(ACCESS_TOKEN))
    };
    builder.build().unwrap()
}

/// Serves `body` with `status` to the facade call of `operation`.
async fn serve(operation: Operation, status: u16, body: &Value) -> sentryagent_idp::Result<()> {
    let server = Scripted::start(vec![]).await;
    server.answer_all(Act::json(status, body.clone()));
    invoke(&client_for(operation, &server.base_url), operation).await
}

/// Serves every success example changed by `change`; all must decode.
async fn every_success_decodes_when(change: &dyn Fn(&mut Map<String, Value>, &Value)) {
    let cases = successes();
    assert!(cases.len() >= 10, "the spec documents its successes");
    let mut failures = Vec::new();
    for case in &cases {
        let mut body = case.example.clone();
        each_object(&mut body, &case.schema, change);
        if let Err(err) = serve(case.operation, case.status, &body).await {
            failures.push(format!(
                "{} {}: {err}\n  {body}",
                case.operation, case.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn fields_the_spec_does_not_know_are_ignored() {
    every_success_decodes_when(&|object, _| {
        object.insert("addedByALaterServer".into(), json!({"nested": [1, "two"]}));
    })
    .await;
}

#[tokio::test]
async fn optional_fields_may_be_missing() {
    every_success_decodes_when(&|object, schema| {
        let required = required(schema);
        object.retain(|name, _| required.contains(&name.as_str()));
    })
    .await;
}

#[tokio::test]
async fn optional_fields_may_be_null() {
    every_success_decodes_when(&|object, schema| {
        let required = required(schema);
        for (name, value) in object.iter_mut() {
            if !required.contains(&name.as_str()) {
                *value = Value::Null;
            }
        }
    })
    .await;
}

/// Whether a string property's value is one the SDK parses (ids, instants,
/// secrets): those must fit; the rest is taken as it comes.
fn parsed(property: &Value) -> bool {
    matches!(
        property["format"].as_str(),
        Some("uuid" | "date-time" | "password")
    )
}

#[tokio::test]
async fn strings_breaking_the_specs_patterns_lengths_and_formats_decode() {
    every_success_decodes_when(&|object, schema| {
        for (name, property) in properties(schema) {
            let Some(value) = object.get_mut(&name) else {
                continue;
            };
            if parsed(&property) {
                continue;
            }
            let constrained = ["pattern", "maxLength", "minLength", "format"]
                .iter()
                .any(|k| property.get(k).is_some());
            if value.is_string() && constrained {
                let long = property["maxLength"].as_u64().unwrap_or(64) as usize + 1;
                *value = Value::from(format!("not matching {}", "x".repeat(long)));
            } else if property["type"] == "array" && property["items"]["pattern"].is_string() {
                *value = json!(["NOT a resource:action"]);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn values_outside_the_documented_enums_decode() {
    let doc = document();
    every_success_decodes_when(&|object, schema| {
        for (name, property) in properties(schema) {
            let known = resolve(doc, &property)["enum"].is_array();
            if let (true, Some(value)) = (known, object.get_mut(&name))
                && value.is_string()
            {
                *value = Value::from("introduced_later");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn an_unusable_required_field_is_a_decode_error_naming_it_without_its_value() {
    let mut checked = 0;
    for case in successes() {
        for (name, property) in properties(&case.schema) {
            let parsed_string = property["format"] == "uuid" || property["format"] == "date-time";
            if !(parsed_string && required(&case.schema).contains(&name.as_str())) {
                continue;
            }
            let mut body = case.example.clone();
            body[&name] = Value::from(MARKER);
            let err = serve(case.operation, case.status, &body)
                .await
                .expect_err("an unparsable required field is an error");
            let shown = format!("{err} {err:?}");
            assert_eq!(
                err.kind(),
                ErrorKind::Decode,
                "{} `{name}`: {shown}",
                case.operation
            );
            assert!(
                err.message().contains(&name),
                "{} `{name}`: the path is named: {shown}",
                case.operation
            );
            assert!(
                !shown.contains(MARKER),
                "{} `{name}`: the value is quoted: {shown}",
                case.operation
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} required ids and instants");
}

/// 0.1 review, item 15(c): a capability outside `resource:action` still decodes.
#[tokio::test]
async fn an_agent_with_a_capability_outside_the_pattern_still_decodes() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let mut agent = agent_json();
    agent["capabilities"] = json!(["text-classification"]);
    server
        .mock_async(move |when, then| {
            when.method(GET).path(request_path("/agents/{agentId}"));
            then.status(200).json_body(agent);
        })
        .await;
    let result = bounded(
        10,
        "get_agent",
        mock_client(&server.base_url())
            .agents()
            .get(agent_id())
            .send(),
    )
    .await;
    if let Err(e) = result {
        panic!("an agent with capability `text-classification` must decode; got {e:?}");
    }
}

/// 0.1 review, item 15(c): an `auth.failed` event without `agentId` decodes.
#[tokio::test]
async fn an_auth_failed_event_without_agent_id_decodes() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let page = json!({
        "data": [{
            "eventId": EVENT_ID, "action": "auth.failed", "outcome": "failure",
            "metadata": {"error": "invalid_client"}, "ipAddress": "127.0.0.1",
            "userAgent": "curl/8", "timestamp": "2026-03-28T09:00:00.000Z"
        }],
        "total": 1, "page": 1, "limit": 20
    });
    server
        .mock_async(move |when, then| {
            when.method(GET).path("/api/v1/audit");
            then.status(200).json_body(page);
        })
        .await;
    let result = bounded(
        10,
        "query_audit",
        mock_client(&server.base_url()).audit().query().send(),
    )
    .await;
    match result {
        Ok(page) => assert_eq!(page.items.len(), 1),
        Err(e) => panic!("an auth.failed event without agentId must decode; got {e:?}"),
    }
}

/// 0.1 review, item 15(d): a decode error names the JSON path of the failing field.
#[tokio::test]
async fn a_decode_error_names_the_json_path_of_the_bad_field() {
    let server = MockServer::start_async().await;
    token_mock(&server, ACCESS_TOKEN, ALL_SCOPES, 3600).await;
    let mut bad = agent_json();
    bad["createdAt"] = json!("yesterday at noon");
    let page = json!({"data": [agent_json(), bad], "total": 2, "page": 1, "limit": 20});
    server
        .mock_async(move |when, then| {
            when.method(GET).path("/api/v1/agents");
            then.status(200).json_body(page);
        })
        .await;
    let err = bounded(
        10,
        "list_agents",
        mock_client(&server.base_url()).agents().list().send(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
    assert!(
        err.to_string().contains("data[1].createdAt"),
        "the decode error must name the field `data[1].createdAt`; got: {err}"
    );
}
