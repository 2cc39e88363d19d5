//! Every response the spec documents, served back from the mock: success
//! examples decode into `Ok(ResponseValue<T>)`, error examples into
//! `Err(Error::ErrorResponse(rv))` with the documented status and typed body.
//! Then the special cases the spec spells out.

use httpmock::{Mock, MockServer};
use serde_json::{Value, json};

use sentryagent_idp::__raw::{
    self,
    types::{self, CredentialList, TokenError},
};

use super::fixture::{self, ErrorBody, Outcome};
use super::spec::{self, Operation, Response};

/// One served body: an example, or nothing for a response without content.
struct Case<'a> {
    op: &'a Operation,
    response: &'a Response,
    name: &'a str,
    body: Option<&'a Value>,
}

impl Case<'_> {
    fn label(&self) -> String {
        format!("{} {} `{}`", self.op.id, self.response.status, self.name)
    }
}

/// Every (operation, documented status, example) the filter keeps.
fn cases(keep: fn(&Response) -> bool) -> Vec<Case<'static>> {
    let mut cases = Vec::new();
    for op in spec::operations() {
        for response in op.responses.iter().filter(|r| keep(r)) {
            match &response.content {
                Some(content) => cases.extend(content.examples.iter().map(|e| Case {
                    op,
                    response,
                    name: &e.name,
                    body: Some(&e.value),
                })),
                None => cases.push(Case {
                    op,
                    response,
                    name: "no content",
                    body: None,
                }),
            }
        }
    }
    cases
}

/// Serves each case from one mock server, calls its operation and checks the
/// outcome with `check`; fails listing every case that did not pass.
async fn serve_each(cases: &[Case<'_>], check: fn(&Case<'_>, &Outcome) -> Result<(), String>) {
    assert!(!cases.is_empty(), "the spec documents no such response");
    let server = MockServer::start_async().await;
    let client = fixture::client(&server);
    let mut failures = Vec::new();
    for case in cases {
        server.reset_async().await;
        let mock = answer(&server, case.op, case.response.status, case.body).await;
        let outcome = fixture::send(&client, &case.op.id).await;
        let hits = mock.calls_async().await;
        let verdict = if hits == 1 {
            check(case, &outcome)
        } else {
            Err(format!("mock hit {hits} times"))
        };
        if let Err(why) = verdict {
            failures.push(format!("{}: {why}", case.label()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn check_success(case: &Case<'_>, outcome: &Outcome) -> Result<(), String> {
    let Outcome::Ok {
        status,
        type_name,
        body,
    } = outcome
    else {
        return Err(outcome.unexpected("Ok(ResponseValue)"));
    };
    ensure(*status == case.response.status, || {
        format!("status {status}")
    })?;
    ensure(*type_name == case.response.type_name(), || {
        format!("decoded into {type_name}")
    })?;
    let documented = case.body.cloned().unwrap_or(Value::Null);
    ensure(
        fixture::canonical(body.clone()) == fixture::canonical(fixture::as_received(documented)),
        || format!("the typed value loses or changes fields: {body}"),
    )
}

fn check_error(case: &Case<'_>, outcome: &Outcome) -> Result<(), String> {
    let Outcome::Err { status, body } = outcome else {
        return Err(outcome.unexpected("Err(Error::ErrorResponse)"));
    };
    ensure(*status == case.response.status, || {
        format!("status {status}")
    })?;
    let example = case.body.ok_or("an error response without a body")?;
    match (case.response.type_name(), body) {
        ("ApiError", ErrorBody::Api(error))
        | ("TokenError", ErrorBody::Token(TokenError::ApiError(error))) => {
            check_api_error(error, example)
        }
        ("TokenError", ErrorBody::Token(TokenError::OAuthError(error))) => ensure(
            json!(error.error) == example["error"]
                && error.error_description.as_deref() == example["error_description"].as_str(),
            || format!("decoded into {error:?}, documented {example}"),
        ),
        (schema, body) => Err(format!("the spec says {schema}, decoded into {body:?}")),
    }
}

fn check_api_error(error: &types::ApiError, example: &Value) -> Result<(), String> {
    let details = example.get("details").cloned().unwrap_or_else(|| json!({}));
    ensure(
        json!(error.code) == example["code"]
            && json!(error.message) == example["message"]
            && Value::Object(error.details.clone()) == details,
        || format!("decoded into {error:?}, documented {example}"),
    )
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(why()) }
}

#[test]
fn every_documented_body_has_an_example_and_responses_are_json_with_one_error_schema() {
    for op in spec::operations() {
        let bodies = op
            .responses
            .iter()
            .filter_map(|r| r.content.as_ref())
            .chain(&op.request);
        for content in bodies {
            assert!(
                !content.examples.is_empty(),
                "{}: a {} body without an example",
                op.id,
                content.media_type
            );
        }
        for response in op.responses.iter().filter_map(|r| r.content.as_ref()) {
            assert_eq!(response.media_type, "application/json", "{}", op.id);
        }
        let expected = if op.id == "issue_token" {
            "TokenError"
        } else {
            "ApiError"
        };
        for error in op.errors() {
            assert_eq!(error.type_name(), expected, "{} {}", op.id, error.status);
        }
    }
}

#[tokio::test]
async fn success_examples_decode_into_ok_response_values() {
    serve_each(&cases(Response::is_success), check_success).await;
}

#[tokio::test]
async fn error_examples_decode_into_typed_error_responses() {
    serve_each(&cases(|r| !r.is_success()), check_error).await;
}

/// Mocks the fixture request of `op` on `server`, answering `status` with
/// the JSON `body`, if any.
async fn answer<'a>(
    server: &'a MockServer,
    op: &Operation,
    status: u16,
    body: Option<&Value>,
) -> Mock<'a> {
    server
        .mock_async(|when, then| {
            fixture::expect_request(when, op);
            let then = then.status(status);
            if let Some(body) = body {
                then.header("content-type", "application/json")
                    .json_body(body.clone());
            }
        })
        .await
}

/// Serves `body` as the 200 of `list_credentials` and returns what it decodes into.
async fn list_credentials_serving(body: &Value) -> CredentialList {
    let server = MockServer::start_async().await;
    let mock = answer(
        &server,
        spec::operation("list_credentials"),
        200,
        Some(body),
    )
    .await;
    let agent = fixture::agent_id();
    let (listed, refused) = __raw::call(
        &fixture::client(&server),
        sentryagent_idp::Operation::ListCredentials,
        |raw| async move { raw.list_credentials(&agent).await },
    )
    .await;
    mock.assert_async().await;
    assert!(refused.is_none(), "{refused:?}");
    listed.expect("a documented credential list").into_inner()
}

#[tokio::test]
async fn list_credentials_accepts_the_envelope_and_a_bare_array() {
    let op = spec::operation("list_credentials");
    let envelope = op
        .success()
        .content
        .as_ref()
        .expect("list_credentials documents its 200")
        .first_example(&op.id);
    let credentials: Vec<types::Credential> = fixture::decode(&envelope["data"]);
    assert_eq!(credentials.len(), 1);

    let CredentialList::CredentialListEnvelope(wrapped) = list_credentials_serving(envelope).await
    else {
        panic!("`{{\"data\": [...]}}` must decode as the envelope");
    };
    let CredentialList::Array(bare) = list_credentials_serving(&envelope["data"]).await else {
        panic!("a bare array must decode as the array");
    };
    for listed in [&wrapped.data, &bare] {
        assert_eq!(fixture::to_json(listed), fixture::to_json(&credentials));
    }
}

#[tokio::test]
async fn introspecting_an_inactive_token_is_active_false_and_nothing_else() {
    let inactive = json!({"active": false});
    let op = spec::operation("introspect_token");
    let mut documented = op.success().content.iter().flat_map(|c| &c.examples);
    assert!(
        documented.any(|e| e.value == inactive),
        "the spec documents the inactive answer"
    );

    let server = MockServer::start_async().await;
    let mock = answer(&server, op, 200, Some(&inactive)).await;
    let token = fixture::request_body::<types::TokenForm>(&op.id);
    let (answered, refused) = __raw::call(
        &fixture::client(&server),
        sentryagent_idp::Operation::IntrospectToken,
        |raw| async move { raw.introspect_token(&token).await },
    )
    .await;
    mock.assert_async().await;
    assert!(refused.is_none(), "{refused:?}");
    let answered = answered
        .expect("an inactive token is a success")
        .into_inner();
    assert!(!answered.active);
    assert_eq!(fixture::to_json(&answered), inactive, "no claims");
}

#[tokio::test]
async fn revoke_token_ignores_a_body_on_its_200() {
    let server = MockServer::start_async().await;
    let op = spec::operation("revoke_token");
    let mock = answer(&server, op, 200, Some(&json!({"revoked": true}))).await;
    let outcome = fixture::send(&fixture::client(&server), &op.id).await;
    mock.assert_async().await;
    let ignored = matches!(
        outcome,
        Outcome::Ok {
            status: 200,
            type_name: "()",
            body: Value::Null
        }
    );
    assert!(
        ignored,
        "{}",
        outcome.unexpected("Ok(ResponseValue<()>) with status 200")
    );
}

/// Serves the documented success of every operation with a 2xx status the
/// spec does not list for it.
async fn serve_undocumented_2xx(status: u16) {
    let server = MockServer::start_async().await;
    for op in spec::operations() {
        let success = op.success();
        assert_ne!(success.status, status, "{}: pick another status", op.id);
        server.reset_async().await;
        let body = success.content.as_ref().map(|c| c.first_example(&op.id));
        let mock = answer(&server, op, status, body).await;
        let outcome = fixture::send(&fixture::client(&server), &op.id).await;
        mock.assert_async().await;
        let decoded = matches!(
            &outcome,
            Outcome::Ok { status: s, type_name, .. }
                if *s == status && *type_name == success.type_name()
        );
        assert!(
            decoded,
            "{} {status}: {}",
            op.id,
            outcome.unexpected("the success type, decoded")
        );
    }
}

#[tokio::test]
async fn an_undocumented_2xx_decodes_with_the_success_schema() {
    // 203 is listed by no operation; the bindings carry a `2XX` success
    // range for each, added at generation time.
    serve_undocumented_2xx(203).await;
}
