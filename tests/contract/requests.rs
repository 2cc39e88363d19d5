//! One test per operation: the request the raw client sends is the one the
//! spec prescribes, and the documented success comes back typed.
//!
//! Every mock matches, beyond progenitor's typed helpers, what
//! [`fixture::expect_request`] derives from the spec (method, exact path,
//! content type, bearer or none), and must be hit exactly once.

use std::collections::BTreeSet;

use httpmock::{Mock, MockServer, Then, When};
use regex::Regex;
use serde_json::Value;

use sentryagent_idp::Client;
use sentryagent_idp::model::{AgentStatus, AgentType, AuditAction, AuditOutcome};

use super::fixture::{self, Outcome};
use super::mocks::operations::*;
use super::spec::{self, Operation};

/// The operations with a test below, named after them.
const COVERED: [&str; 14] = [
    "issue_token",
    "introspect_token",
    "revoke_token",
    "register_agent",
    "list_agents",
    "get_agent",
    "update_agent",
    "decommission_agent",
    "generate_credential",
    "list_credentials",
    "rotate_credential",
    "revoke_credential",
    "query_audit_events",
    "get_audit_event",
];

#[test]
fn every_operation_in_the_spec_has_a_contract_test() {
    let in_spec: BTreeSet<&str> = spec::operations().iter().map(|op| op.id.as_str()).collect();
    let covered = BTreeSet::from(COVERED);
    let untested: Vec<_> = in_spec.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&in_spec).collect();
    assert!(
        untested.is_empty(),
        "operations without a contract test: {untested:?}"
    );
    assert!(
        unknown.is_empty(),
        "contract tests of operations not in the spec: {unknown:?}"
    );
}

#[test]
fn path_parameters_are_uuids() {
    let params: Vec<_> = spec::operations()
        .iter()
        .flat_map(|op| op.path_params.iter().map(move |p| (op, p)))
        .collect();
    assert!(!params.is_empty(), "the spec has path parameters");
    for (op, param) in params {
        assert_eq!(
            param.format.as_deref(),
            Some("uuid"),
            "{} `{}`",
            op.id,
            param.name
        );
        assert!(
            op.path.contains(&format!("{{{}}}", param.name)),
            "{} declares `{}` but its path lacks it",
            op.id,
            param.name
        );
    }
}

/// A mock server, the raw client pointed at it and the operation under test.
struct Contract {
    op: &'static Operation,
    server: MockServer,
    client: Client,
}

impl Contract {
    async fn start(op: &str) -> Self {
        let server = MockServer::start_async().await;
        let client = fixture::client(&server);
        Self {
            op: spec::operation(op),
            server,
            client,
        }
    }

    /// A mock of the operation: what the spec prescribes for every request,
    /// then what `typed` adds with the generated helpers.
    async fn mock(&self, typed: impl FnOnce(When, Then)) -> Mock<'_> {
        self.server
            .mock_async(|when, then| typed(fixture::expect_request(when, self.op), then))
            .await
    }

    /// Sends the fixture call; asserts it matched `mock` exactly once and came
    /// back as the documented success, typed as the spec says. Returns the body.
    async fn expect_success(&self, mock: Mock<'_>) -> Value {
        let outcome = fixture::send(&self.client, &self.op.id).await;
        mock.assert_async().await;
        let success = self.op.success();
        match outcome {
            Outcome::Ok {
                status,
                type_name,
                body,
            } => {
                assert_eq!(status, success.status, "{}: status", self.op.id);
                assert_eq!(
                    type_name,
                    success.type_name(),
                    "{}: success type",
                    self.op.id
                );
                body
            }
            other => panic!(
                "{}: {}",
                self.op.id,
                other.unexpected("the documented success")
            ),
        }
    }
}

/// Matches a form body holding exactly the fields of the spec's request
/// example of `op`. (The generated `…When::body` matches a JSON body, which a
/// form request never has.)
fn form_fields(when: When, op: &Operation) -> When {
    let example = op
        .request_example()
        .as_object()
        .expect("a form example is an object");
    example.iter().fold(
        when.form_urlencoded_tuple_count(any(), any(), example.len()),
        |when, (key, value)| {
            when.form_urlencoded_tuple(
                key.as_str(),
                value.as_str().expect("form values are strings"),
            )
        },
    )
}

/// Matches exactly `count` query parameters.
fn query_param_count(when: When, count: usize) -> When {
    when.query_param_count(any(), any(), count)
}

/// A regex matching any key or value.
fn any() -> Regex {
    Regex::new(".*").expect("a valid regex")
}

#[tokio::test]
async fn issue_token() {
    let contract = Contract::start("issue_token").await;
    assert!(!contract.op.bearer, "the token endpoint takes no bearer");
    let mock = contract.mock(|when, then| {
        let when = form_fields(IssueTokenWhen::new(when).into_inner(), contract.op);
        when.form_urlencoded_tuple("grant_type", "client_credentials")
            .form_urlencoded_tuple("scope", "agents:read agents:write")
            .form_urlencoded_tuple_exists("client_id")
            .form_urlencoded_tuple_exists("client_secret");
        IssueTokenThen::new(then).ok(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "agents:read agents:write");
}

#[tokio::test]
async fn introspect_token() {
    let contract = Contract::start("introspect_token").await;
    let mock = contract.mock(|when, then| {
        form_fields(IntrospectTokenWhen::new(when).into_inner(), contract.op)
            .form_urlencoded_tuple_missing("token_type_hint");
        IntrospectTokenThen::new(then).ok(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn revoke_token() {
    let contract = Contract::start("revoke_token").await;
    let mock = contract.mock(|when, then| {
        form_fields(RevokeTokenWhen::new(when).into_inner(), contract.op);
        RevokeTokenThen::new(then).ok();
    });
    assert_eq!(contract.expect_success(mock.await).await, Value::Null);
}

#[tokio::test]
async fn register_agent() {
    let contract = Contract::start("register_agent").await;
    let mock = contract.mock(|when, then| {
        RegisterAgentWhen::new(when).body(&fixture::request_body("register_agent"));
        RegisterAgentThen::new(then).created(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    assert_eq!(body["status"], "active");
}

#[tokio::test]
async fn list_agents() {
    let contract = Contract::start("list_agents").await;
    let mock = contract.mock(|when, then| {
        let when = ListAgentsWhen::new(when)
            .status(&AgentStatus::Suspended)
            .agent_type(&AgentType::Screener)
            .owner(fixture::OWNER)
            .page(fixture::nonzero(fixture::PAGE))
            .limit(fixture::nonzero(fixture::LIMIT));
        query_param_count(when.into_inner(), 5)
            .query_param("status", "suspended")
            .query_param("agentType", "screener");
        ListAgentsThen::new(then).ok(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn get_agent() {
    let contract = Contract::start("get_agent").await;
    let mock = contract.mock(|when, then| {
        GetAgentWhen::new(when).agent_id(&fixture::agent_id());
        GetAgentThen::new(then).ok(&fixture::success_example(contract.op));
    });
    contract.expect_success(mock.await).await;
}

#[tokio::test]
async fn update_agent() {
    let contract = Contract::start("update_agent").await;
    let mock = contract.mock(|when, then| {
        UpdateAgentWhen::new(when)
            .agent_id(&fixture::agent_id())
            .body(&fixture::request_body("update_agent"));
        UpdateAgentThen::new(then).ok(&fixture::success_example(contract.op));
    });
    contract.expect_success(mock.await).await;
}

#[tokio::test]
async fn decommission_agent() {
    let contract = Contract::start("decommission_agent").await;
    let mock = contract.mock(|when, then| {
        DecommissionAgentWhen::new(when).agent_id(&fixture::agent_id());
        DecommissionAgentThen::new(then).no_content();
    });
    assert_eq!(contract.expect_success(mock.await).await, Value::Null);
}

#[tokio::test]
async fn generate_credential() {
    let contract = Contract::start("generate_credential").await;
    let mock = contract.mock(|when, then| {
        GenerateCredentialWhen::new(when)
            .agent_id(&fixture::agent_id())
            .body(&fixture::request_body("generate_credential"));
        GenerateCredentialThen::new(then).created(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    // Decoded, and redacted even when serialized back.
    assert_eq!(body["clientSecret"], "[REDACTED]", "{body}");
}

#[tokio::test]
async fn list_credentials() {
    let contract = Contract::start("list_credentials").await;
    let mock = contract.mock(|when, then| {
        ListCredentialsWhen::new(when).agent_id(&fixture::agent_id());
        ListCredentialsThen::new(then).ok(&fixture::success_example(contract.op));
    });
    contract.expect_success(mock.await).await;
}

#[tokio::test]
async fn rotate_credential() {
    let contract = Contract::start("rotate_credential").await;
    let mock = contract.mock(|when, then| {
        RotateCredentialWhen::new(when)
            .agent_id(&fixture::agent_id())
            .credential_id(&fixture::credential_id())
            .body(&fixture::request_body("rotate_credential"));
        RotateCredentialThen::new(then).ok(&fixture::success_example(contract.op));
    });
    contract.expect_success(mock.await).await;
}

#[tokio::test]
async fn revoke_credential() {
    let contract = Contract::start("revoke_credential").await;
    let mock = contract.mock(|when, then| {
        RevokeCredentialWhen::new(when)
            .agent_id(&fixture::agent_id())
            .credential_id(&fixture::credential_id());
        RevokeCredentialThen::new(then).no_content();
    });
    assert_eq!(contract.expect_success(mock.await).await, Value::Null);
}

#[tokio::test]
async fn query_audit_events() {
    let contract = Contract::start("query_audit_events").await;
    let mock = contract.mock(|when, then| {
        let when = QueryAuditEventsWhen::new(when)
            .agent_id(&fixture::agent_id())
            .action(&AuditAction::CredentialRotated)
            .outcome(&AuditOutcome::Failure)
            .page(fixture::nonzero(fixture::PAGE))
            .limit(fixture::nonzero(fixture::LIMIT));
        // The generated `from_date`/`to_date` match `DateTime`'s `Display`
        // (`2026-03-01 00:00:00 UTC`), not the RFC 3339 the client sends.
        query_param_count(when.into_inner(), 7)
            .query_param("fromDate", fixture::FROM_DATE)
            .query_param("toDate", fixture::TO_DATE)
            .query_param("action", "credential.rotated");
        QueryAuditEventsThen::new(then).ok(&fixture::success_example(contract.op));
    });
    let body = contract.expect_success(mock.await).await;
    assert_eq!(body["data"][0]["action"], "agent.created");
}

#[tokio::test]
async fn get_audit_event() {
    let contract = Contract::start("get_audit_event").await;
    let mock = contract.mock(|when, then| {
        GetAuditEventWhen::new(when).event_id(&fixture::event_id());
        GetAuditEventThen::new(then).ok(&fixture::success_example(contract.op));
    });
    contract.expect_success(mock.await).await;
}
