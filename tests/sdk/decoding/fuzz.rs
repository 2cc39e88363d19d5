//! Property tests: whatever a server answers (status, headers, body), every
//! operation yields a value or a typed error, never a panic.

use std::time::Duration;

use crate::support::scripted::{Act, Scripted};
use crate::support::spec::{documented_responses, operation_ids};
use crate::support::*;
use proptest::prelude::*;
use sentryagent_idp::auth::StaticToken;
use sentryagent_idp::{Client, ErrorKind, RetryPolicy};
use serde_json::Value;

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "[0-9a-f-]{36}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An example of the spec with one field replaced, or removed.
fn mutated(examples: Vec<Value>) -> impl Strategy<Value = String> {
    (
        0..examples.len().max(1),
        json(),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(i, value, field, remove)| {
            let mut example = examples.get(i).cloned().unwrap_or(Value::Null);
            if let Some(object) = example.as_object_mut().filter(|o| !o.is_empty()) {
                let key = object
                    .keys()
                    .nth(field.index(object.len()))
                    .cloned()
                    .unwrap_or_default();
                if remove {
                    object.remove(&key);
                } else {
                    object.insert(key, value);
                }
            }
            example.to_string()
        })
}

fn body(examples: Vec<Value>) -> impl Strategy<Value = String> {
    prop_oneof![
        json().prop_map(|v| v.to_string()),
        mutated(examples),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        Just(String::new()),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![
            200u16, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503
        ]),
        200u16..600,
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        "[0-9]{1,12}",
        Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned())
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_response_decodes_to_a_value_or_a_typed_error(
        (operation, body) in operation_and_body(),
        status in status(),
        retry_after in header_value(),
        content_type in prop::sample::select(vec!["application/json", "text/html", "text/plain", ""]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = Scripted::start(vec![]).await;
            let mut headers = vec![("retry-after", retry_after.clone()), ("x-request-id", retry_after)];
            if !content_type.is_empty() {
                headers.push(("content-type", content_type.to_owned()));
            }
            server.answer_all(Act::Respond(status, headers, body.clone()));
            let client = Client::builder()
                .base_url(&server.base_url)
                .token_source(StaticToken::new(ACCESS_TOKEN))
                .retry_policy(RetryPolicy::disabled())
                .total_timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let outcome = if operation == "issue_token" {
                credential_client(&server.base_url).access_token().await.map(drop)
            } else {
                invoke(&client, &operation).await
            };
            if let Err(err) = outcome {
                // The error renders, and an error status is kept.
                let _ = (err.to_string(), format!("{err:?}"));
                prop_assert!(err.kind() != ErrorKind::Config, "{err:?}");
                if status >= 400 && err.kind() != ErrorKind::Transport {
                    prop_assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{:?}", err);
                }
            } else {
                prop_assert!(status < 300, "a {} was taken for success", status);
            }
            Ok(())
        })?;
    }
}

/// An operation and a body made from its documented examples or from nothing.
fn operation_and_body() -> impl Strategy<Value = (String, String)> {
    let responses = documented_responses();
    prop::sample::select(operation_ids()).prop_flat_map(move |operation| {
        let examples: Vec<Value> = responses
            .iter()
            .filter(|d| d.operation == operation)
            .flat_map(|d| d.examples.clone())
            .collect();
        (Just(operation), body(examples))
    })
}

fn credential_client(base_url: &str) -> Client {
    Client::builder()
        .base_url(base_url)
        .client_id(CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap()
}
