//! The fake AgentIdP (`sentryagent_idp::testing`) over plain HTTP: token
//! issuance, the 401/403 rules, the agent and credential lifecycles, the audit
//! log, pagination, rate limiting, failure injection, and the responses'
//! agreement with the spec's schemas.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crate::support::fake::{
    BOOTSTRAP_SCOPES, Body, Harness, is_millis_timestamp, register_body, spec,
};
use crate::support::{bounded, jwt_part, register_request};
use chrono::{TimeZone, Utc};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use sentryagent_idp::testing::{AgentSeed, AuditEventSeed, Failure, FakeAgentIdp};
use sentryagent_idp::{Client, ErrorKind, Operation, RetryPolicy, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn token_is_an_rs256_jwt_with_the_documented_claims() {
    let h = Harness::start().await;
    let secret = h.fake.client_secret();
    let reply = h
        .token_for(&h.fake.client_id(), secret.expose_secret(), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.schema_checked);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    assert_eq!(reply.str("token_type"), "Bearer");
    assert_eq!(reply.json["expires_in"], 3600);
    assert_eq!(reply.str("scope"), BOOTSTRAP_SCOPES);

    let token = reply.str("access_token");
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(jwt_part(token, 0), json!({ "alg": "RS256", "typ": "JWT" }));
    let claims = jwt_part(token, 1);
    let keys: BTreeSet<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["client_id", "exp", "iat", "jti", "scope", "sub"])
    );
    let agent = h.fake.bootstrap_agent_id().to_string();
    assert_eq!(claims["sub"], agent.as_str());
    assert_eq!(claims["client_id"], agent.as_str());
    assert_eq!(claims["scope"], BOOTSTRAP_SCOPES);
    assert!(Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);
    assert!((iat - Utc::now().timestamp()).abs() < 60);

    // Two tokens never share a jti.
    let again = jwt_part(&h.token(None).await, 1);
    assert_ne!(again["jti"], claims["jti"]);
}

#[tokio::test]
async fn http_basic_authenticates_like_the_form_fields() {
    let h = Harness::start().await;
    let secret = h.fake.client_secret();
    let response = h
        .http
        .post(h.url("/token"))
        .basic_auth(h.fake.client_id(), Some(secret.expose_secret()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "agents:read"),
        ])
        .send()
        .await
        .unwrap();
    let reply = crate::support::fake::read(response, "POST", "/token").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.str("scope"), "agents:read");

    let response = h
        .http
        .post(h.url("/token"))
        .basic_auth(h.fake.client_id(), Some("sk_live_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let reply = crate::support::fake::read(response, "POST", "/token").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.str("error"), "invalid_client");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic"))
    );
}

#[tokio::test]
async fn requested_scopes_are_narrowed_and_unknown_ones_refused() {
    let h = Harness::start().await;
    let (id, secret) = (h.fake.client_id(), h.fake.client_secret());
    let secret = secret.expose_secret();

    let narrowed = h
        .token_for(&id, secret, Some("audit:read agents:read"))
        .await;
    assert_eq!(narrowed.status, StatusCode::OK);
    assert_eq!(narrowed.str("scope"), "agents:read audit:read");
    assert_eq!(
        jwt_part(narrowed.str("access_token"), 1)["scope"],
        "agents:read audit:read"
    );

    let refused = h
        .token_for(&id, secret, Some("agents:read webhooks:write"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.str("error"), "invalid_scope");
    assert!(refused.schema_checked);

    // An agent allowed fewer scopes gets only those without asking, and
    // `invalid_scope` when it asks for more.
    let reader = h
        .fake
        .seed_agent(AgentSeed::new().scopes(["agents:read", "tokens:read"]));
    let (_, reader_secret) = h.fake.seed_credential(reader);
    let reader_id = reader.to_string();
    let all = h
        .token_for(&reader_id, reader_secret.expose_secret(), None)
        .await;
    assert_eq!(all.str("scope"), "agents:read tokens:read");
    let beyond = h
        .token_for(
            &reader_id,
            reader_secret.expose_secret(),
            Some("agents:write"),
        )
        .await;
    assert_eq!(beyond.str("error"), "invalid_scope");
}

#[tokio::test]
async fn token_endpoint_answers_oauth_errors_and_audits_them() {
    let h = Harness::start().await;
    let id = h.fake.client_id();
    let secret = h.fake.client_secret();
    let secret = secret.expose_secret();
    // (form fields, expected status, expected OAuth2 error)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", secret),
            ],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![("client_id", &id), ("client_secret", secret)],
            400,
            "invalid_request",
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_id", &id)],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_secret", secret),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "sk_live_nope"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "not-a-uuid"),
                ("client_secret", secret),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "6f1c1a4e-8b55-4d7e-9a49-3f0e2f6f7c11"),
                ("client_secret", secret),
            ],
            401,
            "invalid_client",
        ),
    ];
    for (pairs, status, error) in &cases {
        let reply = h.token_request(pairs).await;
        assert_eq!(reply.status.as_u16(), *status, "{pairs:?}: {reply:?}");
        assert_eq!(reply.str("error"), *error, "{pairs:?}");
        assert!(!reply.str("error_description").is_empty());
        assert!(reply.schema_checked, "{reply:?}");
    }
    let json_body = h
        .send(
            Method::POST,
            "/token",
            None,
            Body::Json(json!({ "grant_type": "client_credentials", "client_id": id, "client_secret": secret })),
        )
        .await;
    assert_eq!(json_body.status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body.str("error"), "invalid_request");

    let token = h.token(None).await;
    let failed = h.get(&token, "/audit?action=auth.failed&limit=100").await;
    assert_eq!(failed.json["total"], cases.len() + 1);
    for event in failed.json["data"].as_array().unwrap() {
        assert_eq!(event["outcome"], "failure");
        assert_eq!(event["userAgent"], "fake-server-tests/1.0");
        assert_eq!(event["ipAddress"], "127.0.0.1");
    }
    let wrong_secret = failed.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["metadata"]["error"] == "invalid_client" && e["agentId"] == id.as_str());
    assert!(wrong_secret.is_some(), "{}", failed.text);
}

#[tokio::test]
async fn bearer_tokens_are_checked_for_validity_and_scope() {
    let h = Harness::start().await;
    let missing = h.send(Method::GET, "/agents", None, Body::None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "UNAUTHORIZED");
    assert!(!missing.str("message").is_empty());
    assert!(missing.schema_checked);

    let forged = h
        .get("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "/agents")
        .await;
    assert_eq!(forged.code(), "UNAUTHORIZED");

    let reader = h.token(Some("agents:read")).await;
    assert_eq!(h.get(&reader, "/agents").await.status, StatusCode::OK);
    let write = h
        .post_json(&reader, "/agents", register_body("x@example.com"))
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    assert_eq!(write.code(), "FORBIDDEN");
    assert!(write.schema_checked);
    let creds = format!("/agents/{}/credentials", h.fake.bootstrap_agent_id());
    assert_eq!(h.get(&reader, &creds).await.code(), "FORBIDDEN");
    assert_eq!(h.get(&reader, "/audit").await.code(), "FORBIDDEN");
    let introspect = h
        .post_form(&reader, "/token/introspect", &[("token", &reader)])
        .await;
    assert_eq!(introspect.code(), "FORBIDDEN");
    // Revocation needs no particular scope.
    let auditor = h.token(Some("audit:read")).await;
    let revoked = h
        .post_form(&auditor, "/token/revoke", &[("token", &reader)])
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(revoked.text.is_empty());
    let after = h.get(&reader, "/agents").await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert!(after.str("message").contains("revoked"), "{after:?}");

    h.fake.set_token_lifetime(Duration::ZERO);
    let expired = h.token(None).await;
    let reply = h.get(&expired, "/agents").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.str("message").contains("expired"), "{reply:?}");
}

#[tokio::test]
async fn introspection_reports_active_and_inactive_tokens() {
    let h = Harness::start().await;
    let caller = h.token(Some("tokens:read")).await;
    let subject = h.token(Some("agents:read")).await;
    let active = h
        .post_form(&caller, "/token/introspect", &[("token", &subject)])
        .await;
    assert_eq!(active.status, StatusCode::OK);
    assert!(active.schema_checked);
    let claims = jwt_part(&subject, 1);
    assert_eq!(
        active.json,
        json!({
            "active": true,
            "sub": claims["sub"],
            "client_id": claims["client_id"],
            "scope": "agents:read",
            "token_type": "Bearer",
            "jti": claims["jti"],
            "iat": claims["iat"],
            "exp": claims["exp"],
        })
    );
    for token in ["garbage", "a.b.c"] {
        let inactive = h
            .post_form(&caller, "/token/introspect", &[("token", token)])
            .await;
        assert_eq!(inactive.json, json!({ "active": false }));
    }
    h.post_form(&caller, "/token/revoke", &[("token", &subject)])
        .await;
    let revoked = h
        .post_form(&caller, "/token/introspect", &[("token", &subject)])
        .await;
    assert_eq!(revoked.json, json!({ "active": false }));
    let missing = h.post_form(&caller, "/token/introspect", &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.code(), "VALIDATION_ERROR");
    assert_eq!(missing.json["details"]["field"], "token");

    let auditor = h.token(Some("audit:read")).await;
    let events = h.get(&auditor, "/audit?action=token.introspected").await;
    assert_eq!(events.json["total"], 4);
    let revocations = h.get(&auditor, "/audit?action=token.revoked").await;
    assert_eq!(revocations.json["total"], 1);
    assert_eq!(
        revocations.json["data"][0]["metadata"]["jti"],
        claims["jti"]
    );
}

#[tokio::test]
async fn token_lifetime_is_configurable_up_front_and_at_run_time() {
    let h = Harness::with(FakeAgentIdp::builder().token_lifetime(Duration::from_secs(90))).await;
    let secret = h.fake.client_secret();
    let reply = h
        .token_for(&h.fake.client_id(), secret.expose_secret(), None)
        .await;
    assert_eq!(reply.json["expires_in"], 90);
    h.fake.set_token_lifetime(Duration::from_secs(5));
    let claims = jwt_part(&h.token(None).await, 1);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        5
    );
}

// ---------------------------------------------------------------- agents

#[tokio::test]
async fn agent_lifecycle_from_registration_to_decommission() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let agent = h.register(&token, "screener-001@myproject.ai").await;
    let id = agent["agentId"].as_str().unwrap().to_owned();
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["email"], "screener-001@myproject.ai");
    assert_eq!(agent["capabilities"], json!(["resume:read", "candidate:*"]));
    assert!(
        is_millis_timestamp(agent["createdAt"].as_str().unwrap()),
        "{agent}"
    );
    assert_eq!(agent["createdAt"], agent["updatedAt"]);

    let path = format!("/agents/{id}");
    let fetched = h.get(&token, &path).await;
    assert_eq!(fetched.json, agent);

    let updated = h
        .patch(
            &token,
            &path,
            json!({ "version": "1.1.0", "owner": "ml-team" }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        (updated.str("version"), updated.str("owner")),
        ("1.1.0", "ml-team")
    );
    assert_eq!(updated.json["email"], agent["email"]);
    let suspended = h
        .patch(&token, &path, json!({ "status": "suspended" }))
        .await;
    assert_eq!(suspended.str("status"), "suspended");
    let reactivated = h.patch(&token, &path, json!({ "status": "active" })).await;
    assert_eq!(reactivated.str("status"), "active");

    let gone = h.delete(&token, &path).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert!(gone.schema_checked);
    let again = h.delete(&token, &path).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "AGENT_ALREADY_DECOMMISSIONED");
    let late = h.patch(&token, &path, json!({ "status": "active" })).await;
    assert_eq!(late.code(), "AGENT_ALREADY_DECOMMISSIONED");
    let kept = h.get(&token, &path).await;
    assert_eq!(kept.str("status"), "decommissioned");

    let events = h.get(&token, &format!("/audit?agentId={id}")).await;
    let actions: Vec<&str> = events.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "agent.decommissioned",
            "agent.reactivated",
            "agent.suspended",
            "agent.updated",
            "agent.created"
        ]
    );
    assert_eq!(
        events.json["data"][4]["metadata"],
        json!({ "agentType": "screener" })
    );
}

#[tokio::test]
async fn patch_can_decommission_and_needs_a_field() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let id = h.fake.seed_agent(AgentSeed::new());
    let path = format!("/agents/{id}");
    for body in [
        json!({}),
        json!({ "agentId": "x" }),
        json!({ "version": null }),
    ] {
        let reply = h.patch(&token, &path, body.clone()).await;
        assert_eq!(reply.code(), "VALIDATION_ERROR", "{body}");
    }
    let email = h
        .patch(&token, &path, json!({ "email": "new@example.com" }))
        .await;
    assert_eq!(email.json["details"]["field"], "email");
    let raw = h
        .send(
            Method::PATCH,
            &path,
            Some(&token),
            Body::Raw("application/json", "{not json".into()),
        )
        .await;
    assert_eq!(raw.code(), "VALIDATION_ERROR");
    let done = h
        .patch(&token, &path, json!({ "status": "decommissioned" }))
        .await;
    assert_eq!(done.str("status"), "decommissioned");
    assert_eq!(
        h.delete(&token, &path).await.code(),
        "AGENT_ALREADY_DECOMMISSIONED"
    );
}

#[tokio::test]
async fn registration_validates_every_field() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let cases = [
        ("email", json!("not-an-email")),
        ("email", Value::Null),
        ("agentType", json!("wizard")),
        ("version", json!("1.0")),
        ("version", json!("v1.0.0")),
        ("capabilities", json!([])),
        ("capabilities", json!(["read"])),
        ("capabilities", json!(["resume:read", "a:b:c"])),
        ("owner", json!("")),
        ("owner", json!("x".repeat(129))),
        ("deploymentEnv", json!("qa")),
    ];
    for (field, value) in cases {
        let mut body = register_body("valid@example.com");
        body[field] = value.clone();
        let reply = h.post_json(&token, "/agents", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}={value}");
        assert_eq!(reply.code(), "VALIDATION_ERROR");
        assert_eq!(reply.json["details"]["field"], field, "{field}={value}");
        assert!(reply.schema_checked);
    }
    let mut missing = register_body("valid@example.com");
    missing.as_object_mut().unwrap().remove("deploymentEnv");
    let reply = h.post_json(&token, "/agents", missing).await;
    assert_eq!(reply.json["details"]["field"], "deploymentEnv");

    let mut ok = register_body("edge@example.com");
    ok["version"] = json!("2.3.1-beta+build.7");
    ok["owner"] = json!("x".repeat(128));
    ok["capabilities"] = json!(["data:*"]);
    assert_eq!(
        h.post_json(&token, "/agents", ok).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn emails_are_unique_across_all_agents() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let first = h.register(&token, "dup@example.com").await;
    let again = h
        .post_json(&token, "/agents", register_body("DUP@example.com"))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "AGENT_ALREADY_EXISTS");
    assert!(again.schema_checked);
    // Decommissioned agents keep their email.
    h.delete(
        &token,
        &format!("/agents/{}", first["agentId"].as_str().unwrap()),
    )
    .await;
    let after = h
        .post_json(&token, "/agents", register_body("dup@example.com"))
        .await;
    assert_eq!(after.code(), "AGENT_ALREADY_EXISTS");
}

#[tokio::test]
async fn unknown_and_malformed_ids_get_the_documented_errors() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let unknown = Uuid::new_v4();
    let bad = h.get(&token, "/agents/not-a-uuid").await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
    );
    assert_eq!(bad.json["details"]["field"], "agentId");
    let missing = h.get(&token, &format!("/agents/{unknown}")).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "AGENT_NOT_FOUND")
    );
    assert!(missing.schema_checked);
    assert_eq!(
        h.delete(&token, "/agents/not-a-uuid").await.code(),
        "AGENT_NOT_FOUND"
    );
    assert_eq!(
        h.patch(&token, &format!("/agents/{unknown}"), json!({"owner": "x"}))
            .await
            .code(),
        "AGENT_NOT_FOUND"
    );
    let creds = format!("/agents/{unknown}/credentials");
    assert_eq!(h.get(&token, &creds).await.code(), "AGENT_NOT_FOUND");
    assert_eq!(
        h.post_json(&token, &creds, json!({})).await.code(),
        "AGENT_NOT_FOUND"
    );
    let own = format!(
        "/agents/{}/credentials/{unknown}",
        h.fake.bootstrap_agent_id()
    );
    assert_eq!(h.delete(&token, &own).await.code(), "CREDENTIAL_NOT_FOUND");
    let rotate = h
        .post_json(&token, &format!("{own}/rotate"), json!({}))
        .await;
    assert_eq!(rotate.code(), "CREDENTIAL_NOT_FOUND");
    assert_eq!(
        h.get(&token, &format!("/audit/{unknown}")).await.code(),
        "AUDIT_EVENT_NOT_FOUND"
    );
    assert_eq!(
        h.get(&token, "/audit/nope").await.code(),
        "AUDIT_EVENT_NOT_FOUND"
    );
    let nowhere = h.get(&token, "/nowhere").await;
    assert_eq!(
        (nowhere.status, nowhere.code()),
        (StatusCode::NOT_FOUND, "NOT_FOUND")
    );
}

#[tokio::test]
async fn list_agents_paginates_hundreds_of_seeded_agents() {
    let h = Harness::start().await;
    let token = h.token(Some("agents:read")).await;
    let seeded = h.fake.seed_agents(250, |i| {
        AgentSeed::new()
            .owner("pager")
            .agent_type(if i % 5 == 0 { "router" } else { "monitor" })
            .status(if i % 10 == 0 { "suspended" } else { "active" })
    });
    let mut seen = Vec::new();
    for page in 1..=20 {
        let reply = h
            .get(&token, &format!("/agents?owner=pager&limit=40&page={page}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            (
                reply.json["total"].as_u64(),
                reply.json["page"].as_u64(),
                reply.json["limit"].as_u64()
            ),
            (Some(250), Some(page), Some(40))
        );
        let data = reply.json["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        seen.extend(
            data.iter()
                .map(|a| a["agentId"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
    }
    assert_eq!(seen, seeded, "every agent once, in creation order");

    let default = h.get(&token, "/agents").await;
    assert_eq!(
        (
            default.json["limit"].as_u64(),
            default.json["page"].as_u64()
        ),
        (Some(20), Some(1))
    );
    assert_eq!(default.json["data"].as_array().unwrap().len(), 20);
    assert_eq!(default.json["total"], 251, "the bootstrap agent counts too");

    let routers = h.get(&token, "/agents?agentType=router&limit=100").await;
    assert_eq!(routers.json["total"], 50);
    let suspended = h
        .get(&token, "/agents?status=suspended&agentType=router")
        .await;
    assert_eq!(suspended.json["total"], 25);
    let beyond = h.get(&token, "/agents?owner=pager&page=99").await;
    assert_eq!(beyond.json["data"], json!([]));
    assert_eq!(beyond.json["total"], 250);
    for query in [
        "page=0",
        "limit=0",
        "limit=abc",
        "page=-1",
        "status=sleeping",
        "agentType=wizard",
    ] {
        let reply = h.get(&token, &format!("/agents?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(reply.code(), "VALIDATION_ERROR");
        let field = query.split('=').next().unwrap();
        assert_eq!(reply.json["details"]["field"], field);
    }
}

// ---------------------------------------------------------------- credentials

#[tokio::test]
async fn credentials_generate_list_rotate_and_revoke() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let agent = h.register(&token, "creds@example.com").await;
    let agent_id = agent["agentId"].as_str().unwrap().to_owned();
    let base = format!("/agents/{agent_id}/credentials");

    let generated = h
        .post_json(
            &token,
            &base,
            json!({ "expiresAt": "2999-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(generated.status, StatusCode::CREATED);
    let secret = generated.str("clientSecret").to_owned();
    assert!(
        secret.starts_with("sk_live_") && secret.len() == 72,
        "{secret}"
    );
    assert!(secret[8..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(generated.str("clientId"), agent_id);
    assert_eq!(generated.str("expiresAt"), "2999-01-01T00:00:00.000Z");
    assert_eq!(generated.json["revokedAt"], Value::Null);
    let credential_id = generated.str("credentialId").to_owned();

    let listed = h.get(&token, &base).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.text.contains("clientSecret") && !listed.text.contains(&secret));
    assert_eq!(
        listed.json["data"][0]["credentialId"],
        credential_id.as_str()
    );

    assert_eq!(
        h.token_for(&agent_id, &secret, None).await.status,
        StatusCode::OK
    );

    let rotated = h
        .post_json(&token, &format!("{base}/{credential_id}/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_eq!(rotated.str("credentialId"), credential_id);
    let new_secret = rotated.str("clientSecret").to_owned();
    assert_ne!(new_secret, secret);
    let old = h.token_for(&agent_id, &secret, None).await;
    assert_eq!(
        (old.status, old.str("error")),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    assert_eq!(
        h.token_for(&agent_id, &new_secret, None).await.status,
        StatusCode::OK
    );
    // Rotation without a body works too.
    let bare = h
        .send(
            Method::POST,
            &format!("{base}/{credential_id}/rotate"),
            Some(&token),
            Body::None,
        )
        .await;
    assert_eq!(bare.status, StatusCode::OK);
    let newest = bare.str("clientSecret").to_owned();

    let revoked = h.delete(&token, &format!("{base}/{credential_id}")).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert!(revoked.text.is_empty());
    let twice = h.delete(&token, &format!("{base}/{credential_id}")).await;
    assert_eq!(twice.code(), "CREDENTIAL_ALREADY_REVOKED");
    let rotate_revoked = h
        .post_json(&token, &format!("{base}/{credential_id}/rotate"), json!({}))
        .await;
    assert_eq!(rotate_revoked.code(), "CREDENTIAL_ALREADY_REVOKED");
    let refused = h.token_for(&agent_id, &newest, None).await;
    assert_eq!(refused.str("error"), "invalid_client");
    let listed = h.get(&token, &base).await;
    assert_eq!(listed.json["data"][0]["status"], "revoked");
    assert!(is_millis_timestamp(
        listed.json["data"][0]["revokedAt"].as_str().unwrap()
    ));
    let still = h.get(&token, &format!("/agents/{agent_id}")).await;
    assert_eq!(
        still.str("status"),
        "active",
        "revoking a credential leaves the agent alone"
    );

    let actions = h
        .get(&token, &format!("/audit?agentId={agent_id}&limit=100"))
        .await;
    let actions: Vec<&str> = actions.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "credential.generated",
        "credential.rotated",
        "credential.revoked",
        "token.issued",
        "auth.failed",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }

    for body in [
        json!({ "expiresAt": "2001-01-01T00:00:00Z" }),
        json!({ "expiresAt": "soon" }),
        json!([1]),
    ] {
        let reply = h.post_json(&token, &base, body.clone()).await;
        assert_eq!(reply.code(), "VALIDATION_ERROR", "{body}");
    }
}

#[tokio::test]
async fn suspended_agents_get_neither_tokens_nor_credentials() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let id = h.fake.seed_agent(AgentSeed::new());
    let (credential_id, secret) = h.fake.seed_credential(id);
    let path = format!("/agents/{id}");
    h.patch(&token, &path, json!({ "status": "suspended" }))
        .await;

    let refused = h
        .token_for(&id.to_string(), secret.expose_secret(), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.str("error"), "unauthorized_client");
    assert!(refused.schema_checked);
    let generate = h
        .post_json(&token, &format!("{path}/credentials"), json!({}))
        .await;
    assert_eq!(
        (generate.status, generate.code()),
        (StatusCode::FORBIDDEN, "AGENT_NOT_ACTIVE")
    );
    let rotate = h
        .post_json(
            &token,
            &format!("{path}/credentials/{credential_id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(rotate.code(), "AGENT_NOT_ACTIVE");

    h.patch(&token, &path, json!({ "status": "active" })).await;
    assert_eq!(
        h.token_for(&id.to_string(), secret.expose_secret(), None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn decommission_blocks_the_agents_tokens_and_credentials() {
    let h = Harness::start().await;
    let admin = h.token(None).await;
    let id = h.fake.seed_agent(AgentSeed::new());
    let (_, secret) = h.fake.seed_credential(id);
    let own = h
        .token_for(&id.to_string(), secret.expose_secret(), None)
        .await;
    let own = own.str("access_token").to_owned();
    assert_eq!(h.get(&own, "/agents").await.status, StatusCode::OK);

    assert_eq!(
        h.delete(&admin, &format!("/agents/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let blocked = h.get(&own, "/agents").await;
    assert_eq!(
        (blocked.status, blocked.code()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    let inactive = h
        .post_form(&admin, "/token/introspect", &[("token", &own)])
        .await;
    assert_eq!(inactive.json, json!({ "active": false }));
    let refused = h
        .token_for(&id.to_string(), secret.expose_secret(), None)
        .await;
    assert_eq!(
        (refused.status, refused.str("error")),
        (StatusCode::FORBIDDEN, "unauthorized_client")
    );
    let generate = h
        .post_json(&admin, &format!("/agents/{id}/credentials"), json!({}))
        .await;
    assert_eq!(generate.code(), "AGENT_NOT_ACTIVE");
}

// ---------------------------------------------------------------- audit

#[tokio::test]
async fn audit_log_filters_by_agent_action_outcome_and_dates() {
    let h = Harness::start().await;
    let token = h.token(Some("audit:read")).await; // writes one token.issued now
    let agent = Uuid::new_v4();
    let at = |day: u32| Utc.with_ymd_and_hms(2020, 3, day, 9, 0, 0).unwrap();
    let mut ids = Vec::new();
    for day in 1..=10 {
        let action = if day % 2 == 0 {
            "credential.rotated"
        } else {
            "agent.updated"
        };
        let outcome = if day == 7 { "failure" } else { "success" };
        ids.push(
            h.fake.seed_audit_event(
                AuditEventSeed::new(agent, action)
                    .outcome(outcome)
                    .timestamp(at(day))
                    .metadata(json!({ "day": day })),
            ),
        );
    }
    let all = h.get(&token, &format!("/audit?agentId={agent}")).await;
    assert_eq!(all.json["total"], 10);
    let days: Vec<u64> = all.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["day"].as_u64().unwrap())
        .collect();
    assert_eq!(days, (1..=10).rev().collect::<Vec<_>>(), "newest first");
    assert_eq!(all.json["data"][0]["timestamp"], "2020-03-10T09:00:00.000Z");

    let rotated = h
        .get(
            &token,
            &format!("/audit?agentId={agent}&action=credential.rotated"),
        )
        .await;
    assert_eq!(rotated.json["total"], 5);
    let failures = h
        .get(&token, &format!("/audit?agentId={agent}&outcome=failure"))
        .await;
    assert_eq!(failures.json["data"][0]["metadata"]["day"], 7);
    let window = h
        .get(&token, &format!("/audit?agentId={agent}&fromDate=2020-03-03T09:00:00.000Z&toDate=2020-03-05T09:00:00Z"))
        .await;
    let days: Vec<u64> = window.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["day"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [5, 4, 3], "both bounds inclusive");
    let offset = h
        .get(
            &token,
            "/audit?fromDate=2020-03-10T10:00:00%2B01:00&toDate=2020-03-10T09:00:00Z",
        )
        .await;
    assert_eq!(offset.json["total"], 1, "offsets are honoured");
    let paged = h
        .get(&token, &format!("/audit?agentId={agent}&limit=3&page=4"))
        .await;
    assert_eq!(paged.json["data"].as_array().unwrap().len(), 1);

    let one = h.get(&token, &format!("/audit/{}", ids[6])).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(one.schema_checked);
    assert_eq!(one.json["outcome"], "failure");
    assert_eq!(one.json["eventId"], ids[6].to_string());

    // The live event written by the token request is the newest.
    let newest = h.get(&token, "/audit?limit=1").await;
    assert_eq!(newest.json["data"][0]["action"], "token.issued");
    assert_eq!(newest.json["data"][0]["agentId"], h.fake.client_id());
    assert!(is_millis_timestamp(
        newest.json["data"][0]["timestamp"].as_str().unwrap()
    ));

    for query in [
        "agentId=nope",
        "action=agent.exploded",
        "outcome=maybe",
        "fromDate=yesterday",
        "toDate=2026-13-01T00:00:00Z",
        "limit=0",
    ] {
        let reply = h.get(&token, &format!("/audit?{query}")).await;
        assert_eq!(reply.code(), "VALIDATION_ERROR", "{query}");
        assert_eq!(
            reply.json["details"]["field"],
            query.split('=').next().unwrap()
        );
    }
}

// ---------------------------------------------------------------- resilience knobs

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = Harness::with(FakeAgentIdp::builder().rate_limit(3, Duration::from_secs(30))).await;
    let token = h.token(None).await; // 1 of 3
    assert_eq!(h.get(&token, "/agents").await.status, StatusCode::OK);
    assert_eq!(h.get(&token, "/agents").await.status, StatusCode::OK);
    let limited = h.get(&token, "/agents").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "RATE_LIMIT_EXCEEDED");
    assert!(limited.schema_checked);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let secret = h.fake.client_secret();
    let token_limited = h
        .token_for(&h.fake.client_id(), secret.expose_secret(), None)
        .await;
    assert_eq!(token_limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        token_limited.schema_checked,
        "the TokenError oneOf accepts the API envelope"
    );
    assert_eq!(h.fake.requests_seen(Operation::ListAgents), 3);
    assert_eq!(h.fake.requests_seen(Operation::IssueToken), 2);
}

#[tokio::test]
async fn injected_failures_come_first_then_normal_service() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let path = format!("/agents/{}", h.fake.bootstrap_agent_id());
    h.fake
        .fail_next(Operation::GetAgent, Failure::Status(503), 2);
    for _ in 0..2 {
        let reply = h.get(&token, &path).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
        );
    }
    assert_eq!(h.get(&token, &path).await.status, StatusCode::OK);
    assert_eq!(h.fake.requests_seen(Operation::GetAgent), 3);

    h.fake
        .fail_next(Operation::IssueToken, Failure::Status(401), 1);
    h.fake
        .fail_next(Operation::IssueToken, Failure::Status(500), 1);
    let secret = h.fake.client_secret();
    let first = h
        .token_for(&h.fake.client_id(), secret.expose_secret(), None)
        .await;
    assert_eq!(
        (first.status, first.str("error")),
        (StatusCode::UNAUTHORIZED, "invalid_client")
    );
    let second = h
        .token_for(&h.fake.client_id(), secret.expose_secret(), None)
        .await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR")
    );
    assert_eq!(
        h.token_for(&h.fake.client_id(), secret.expose_secret(), None)
            .await
            .status,
        StatusCode::OK
    );

    h.fake.fail_next(
        Operation::ListAgents,
        Failure::RateLimited {
            retry_after: Duration::from_millis(2500),
        },
        1,
    );
    let limited = h.get(&token, "/agents").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("3"));
    h.fake
        .fail_next(Operation::ListAgents, Failure::Status(429), 1);
    assert_eq!(
        h.get(&token, "/agents").await.header("retry-after"),
        Some("1")
    );

    // Injected failures come before authentication.
    h.fake
        .fail_next(Operation::QueryAuditEvents, Failure::Status(502), 1);
    let unauthenticated = h.send(Method::GET, "/audit", None, Body::None).await;
    assert_eq!(unauthenticated.code(), "BAD_GATEWAY");
    h.fake
        .fail_next(Operation::RevokeToken, Failure::Status(204), 1);
    let odd = h
        .post_form(&token, "/token/revoke", &[("token", "x")])
        .await;
    assert_eq!(
        (odd.status, odd.text.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
}

#[tokio::test]
async fn dropped_connection_gets_no_response_at_all() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    h.fake
        .fail_next(Operation::ListAgents, Failure::DropConnection, 1);
    let error = h
        .http
        .get(h.url("/agents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    assert!(error.status().is_none());
    // The next request, on a fresh connection, is served.
    assert_eq!(h.get(&token, "/agents").await.status, StatusCode::OK);
    assert_eq!(h.fake.requests_seen(Operation::ListAgents), 2);

    // Also on a raw socket: the server closes without writing a byte.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    h.fake
        .fail_next(Operation::IssueToken, Failure::DropConnection, 1);
    let mut socket = tokio::net::TcpStream::connect(h.fake.local_addr())
        .await
        .unwrap();
    let body = "grant_type=client_credentials";
    let request = format!(
        "POST /api/v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
    assert!(
        buf.is_empty(),
        "no response bytes: {:?}",
        String::from_utf8_lossy(&buf)
    );
}

/// Issue 23, item 22: a request the client gave up on (it timed out and
/// hung up) is still applied by the server later, as a Node server does.
#[tokio::test(start_paused = true)]
async fn a_request_finishing_late_is_applied_after_the_client_gave_up() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    h.fake.fail_next(
        Operation::RegisterAgent,
        Failure::FinishLate(Duration::from_secs(2)),
        1,
    );
    let error = h
        .http
        .post(h.url("/agents"))
        .bearer_auth(&token)
        .json(&register_body("late@example.com"))
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    let emails = |reply: crate::support::fake::Reply| -> Vec<String> {
        reply.json["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["email"].as_str().map(str::to_owned))
            .collect()
    };
    // The client has given up; the work has not happened yet.
    let before = emails(h.get(&token, "/agents?limit=100").await);
    assert!(
        !before.contains(&"late@example.com".to_owned()),
        "{before:?}"
    );
    // Once the wait is over the server applies it, with nobody listening.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = emails(h.get(&token, "/agents?limit=100").await);
    assert!(
        after.contains(&"late@example.com".to_owned()),
        "the registration the client gave up on must be applied by the server \
         after the wait; agents: {after:?}"
    );
    assert_eq!(h.fake.requests_seen(Operation::RegisterAgent), 1);

    // A client that waits long enough gets the answer as usual.
    h.fake.fail_next(
        Operation::ListAgents,
        Failure::FinishLate(Duration::from_secs(1)),
        1,
    );
    assert_eq!(h.get(&token, "/agents").await.status, StatusCode::OK);
}

/// On a paused clock (the fake's latency and delays are tokio sleeps): the
/// times measured are the fake's, not the machine's.
#[tokio::test(start_paused = true)]
async fn latency_and_delays_slow_responses_down() {
    let h = Harness::with(FakeAgentIdp::builder().latency(Duration::from_millis(150))).await;
    let started = tokio::time::Instant::now();
    let token = h.token(None).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    h.fake.set_latency(Duration::ZERO);
    let started = tokio::time::Instant::now();
    h.get(&token, "/agents").await;
    assert!(started.elapsed() < Duration::from_millis(150));

    h.fake.fail_next(
        Operation::ListAgents,
        Failure::Delay(Duration::from_secs(2)),
        1,
    );
    let error = h
        .http
        .get(h.url("/agents"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(h.get(&token, "/agents").await.status, StatusCode::OK);
    assert_eq!(h.fake.requests_seen(Operation::ListAgents), 3);
}

// ---------------------------------------------------------------- the spec

/// Drives each of the 14 operations through its success and a few error
/// responses; every reply the spec documents is validated against its schema
/// (in `crate::support::fake::read`), and `requests_seen` must match exactly.
#[tokio::test]
async fn every_operation_answers_as_the_spec_says() {
    let h = Harness::start().await;
    let token = h.token(None).await;
    let narrow = h.token(Some("agents:read")).await;
    let agent = h.register(&token, "schema@example.com").await;
    let id = agent["agentId"].as_str().unwrap().to_owned();
    let (credential_id, _) = h.generate(&token, &id).await;
    let creds = format!("/agents/{id}/credentials");
    let event = h.get(&token, "/audit?limit=1").await.json["data"][0]["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = h.fake.client_secret();
    let replies = vec![
        h.token_for(
            &h.fake.client_id(),
            secret.expose_secret(),
            Some("agents:read"),
        )
        .await,
        h.token_request(&[("grant_type", "nope")]).await,
        h.post_form(&token, "/token/introspect", &[("token", &narrow)])
            .await,
        h.post_form(&token, "/token/introspect", &[("token", "x")])
            .await,
        h.post_form(&narrow, "/token/introspect", &[("token", "x")])
            .await,
        h.post_form(&token, "/token/revoke", &[]).await,
        h.post_json(&token, "/agents", register_body("schema-2@example.com"))
            .await,
        h.post_json(&token, "/agents", json!({})).await,
        h.get(&token, "/agents?status=active").await,
        h.get(&token, "/agents?page=0").await,
        h.get(&token, &format!("/agents/{id}")).await,
        h.get(&token, &format!("/agents/{}", Uuid::new_v4())).await,
        h.patch(
            &token,
            &format!("/agents/{id}"),
            json!({ "deploymentEnv": "staging" }),
        )
        .await,
        h.patch(
            &token,
            &format!("/agents/{id}"),
            json!({ "status": "paused" }),
        )
        .await,
        h.post_json(
            &token,
            &creds,
            json!({ "expiresAt": "2999-12-31T23:59:59.999Z" }),
        )
        .await,
        h.post_json(
            &token,
            &format!("/agents/{}/credentials", Uuid::new_v4()),
            json!({}),
        )
        .await,
        h.get(&token, &creds).await,
        h.get(&narrow, &creds).await,
        h.post_json(
            &token,
            &format!("{creds}/{credential_id}/rotate"),
            json!({}),
        )
        .await,
        h.post_json(
            &token,
            &format!("{creds}/{}/rotate", Uuid::new_v4()),
            json!({}),
        )
        .await,
        h.delete(&token, &format!("{creds}/{credential_id}")).await,
        h.delete(&token, &format!("{creds}/{credential_id}")).await,
        h.get(&token, "/audit?outcome=success").await,
        h.get(&token, "/audit?fromDate=x").await,
        h.get(&token, &format!("/audit/{event}")).await,
        h.get(&narrow, &format!("/audit/{event}")).await,
        h.delete(&token, &format!("/agents/{id}")).await,
        h.delete(&token, &format!("/agents/{id}")).await,
        h.post_form(&token, "/token/revoke", &[("token", &narrow)])
            .await,
        h.get(&narrow, "/agents").await,
    ];
    let mut checked: BTreeSet<(String, u16)> = BTreeSet::new();
    for reply in &replies {
        assert!(reply.schema_checked, "undocumented status: {reply:?}");
        checked.insert((reply.operation.clone().unwrap(), reply.status.as_u16()));
    }
    let ops: HashSet<&str> = spec()
        .operations()
        .iter()
        .map(|op| op.id.as_str())
        .collect();
    assert_eq!(ops.len(), 14);
    for op in &ops {
        let statuses: Vec<u16> = checked
            .iter()
            .filter(|(o, _)| o == op)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            statuses.iter().any(|s| (200..300).contains(s)),
            "{op}: no success checked ({statuses:?})"
        );
        assert!(
            statuses.iter().any(|s| *s >= 400),
            "{op}: no error checked ({statuses:?})"
        );
    }
    let mut per_op: Vec<(String, usize)> = Vec::new();
    for op in &ops {
        per_op.push((
            op.to_string(),
            replies
                .iter()
                .filter(|r| r.operation.as_deref() == Some(op))
                .count(),
        ));
    }
    for (op, count) in per_op {
        let extra = match op.as_str() {
            "issue_token" => 2,         // the two tokens above
            "register_agent" => 1,      // h.register
            "generate_credential" => 1, // h.generate
            "query_audit_events" => 1,  // the event lookup
            _ => 0,
        };
        assert_eq!(
            h.fake
                .requests_seen(op.parse::<Operation>().expect("an operationId")),
            count + extra,
            "{op}"
        );
    }
}

// ---------------------------------------------------------------- the handle

#[tokio::test]
async fn the_handle_hides_secrets_and_shuts_down() {
    let fake = FakeAgentIdp::start().await.unwrap();
    let secret = fake.client_secret();
    let debug = format!("{fake:?}");
    assert!(!debug.contains(secret.expose_secret()), "{debug}");
    assert!(debug.contains("REDACTED"));
    assert!(fake.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(fake.api_url(), format!("{}/api/v1", fake.base_url()));
    assert_eq!(fake.client_id(), fake.bootstrap_agent_id().to_string());

    let addr = fake.local_addr();
    fake.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let dropped = FakeAgentIdp::start().await.unwrap();
    let addr = dropped.local_addr();
    drop(dropped);
    let mut closed = false;
    // Bounded at 10 s: closing takes the runtime one poll of the aborted task.
    for _ in 0..500 {
        tokio::task::yield_now().await;
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the port closes after drop");
}

// ------------------------------------------------------- review fixes

#[tokio::test]
async fn an_agent_manages_only_its_own_credentials_unless_it_is_an_admin() {
    let h = Harness::start().await;
    let admin = h.token(None).await;
    let other = h.register(&admin, "other@example.com").await;
    let other_id = other["agentId"].as_str().unwrap().to_owned();
    let plain = h
        .fake
        .seed_agent(AgentSeed::new().email("plain@example.com"));
    let (_, secret) = h.fake.seed_credential(plain);
    let reply = h
        .token_for(&plain.to_string(), secret.expose_secret(), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let token = reply.str("access_token").to_owned();

    let theirs = format!("/agents/{other_id}/credentials");
    let listed = h.get(&token, &theirs).await;
    assert_eq!(
        (listed.status, listed.code()),
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    );
    let generated = h.post_json(&token, &theirs, json!({})).await;
    assert_eq!(generated.status, StatusCode::FORBIDDEN);
    // Its own, yes; and the bootstrap agent (an admin) may manage anyone's.
    let own = h.get(&token, &format!("/agents/{plain}/credentials")).await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert_eq!(h.get(&admin, &theirs).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_request_with_more_than_16_form_fields_is_refused() {
    let h = Harness::start().await;
    let secret = h.fake.client_secret();
    let id = h.fake.client_id();
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.expose_secret()),
    ];
    let names: Vec<String> = (0..14).map(|i| format!("extra{i}")).collect();
    let mut pairs: Vec<(&str, &str)> = base.to_vec();
    pairs.extend(names.iter().take(13).map(|n| (n.as_str(), "x")));
    assert_eq!(pairs.len(), 16);
    let at_limit = h.token_request(&pairs).await;
    assert_eq!(at_limit.status, StatusCode::OK, "{at_limit:?}");
    pairs.push((names[13].as_str(), "x"));
    let over = h.token_request(&pairs).await;
    assert_eq!(
        (over.status, over.str("error")),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let repeated = h
        .token_request(&[base[0], base[1], base[2], ("scope", "a"), ("scope", "b")])
        .await;
    assert_eq!(repeated.str("error"), "invalid_request");
}

#[tokio::test]
async fn the_audit_log_keeps_the_newest_100_000_events() {
    let h = Harness::start().await;
    let agent = h.fake.bootstrap_agent_id();
    let first = h
        .fake
        .seed_audit_event(AuditEventSeed::new(agent, "agent.updated"));
    let mut last = first;
    for _ in 0..100_000 {
        last = h
            .fake
            .seed_audit_event(AuditEventSeed::new(agent, "agent.updated"));
    }
    let token = h.token(None).await;
    let dropped = h.get(&token, &format!("/audit/{first}")).await;
    assert_eq!(dropped.status, StatusCode::NOT_FOUND);
    let kept = h.get(&token, &format!("/audit/{last}")).await;
    assert_eq!(kept.status, StatusCode::OK, "{kept:?}");
    let page = h.get(&token, "/audit?limit=1").await;
    assert!(page.json["total"].as_u64().is_some_and(|t| t <= 100_000));
}

/// 0.1 review, defect 12(a): the fake caps the number of form fields before parsing them all.
#[tokio::test]
async fn the_fake_refuses_a_token_form_with_too_many_fields() {
    use sentryagent_idp::testing::FakeAgentIdp;
    let fake = FakeAgentIdp::start().await.unwrap();
    let mut body =
        String::from("grant_type=client_credentials&client_id=nobody&client_secret=wrong");
    for i in 0..16_000 {
        body.push_str(&format!("&f{i}=x"));
    }
    let started = std::time::Instant::now();
    let response = bounded(
        120,
        "the 16,000-field token request",
        reqwest::Client::new()
            .post(format!("{}/token", fake.api_url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send(),
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let elapsed = started.elapsed();
    let description = answer["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        status == 400
            && answer["error"] == "invalid_request"
            && (description.contains("too many")
                || description.contains("fields")
                || description.contains("parameters")),
        "a token form with 16,000 fields must be refused with 400 invalid_request naming \
         too many fields; got {status} {answer} (answered after {elapsed:?}, for information)"
    );
}

/// 0.1 review, defect 12(b): huge unauthenticated client ids cannot make the audit log unreadable.
#[tokio::test]
async fn huge_client_ids_in_failed_token_requests_do_not_make_audit_page_1_unreadable() {
    use sentryagent_idp::testing::FakeAgentIdp;
    let fake = FakeAgentIdp::start().await.unwrap();
    let http = reqwest::Client::new();
    let huge_id = "a".repeat(512 * 1024);
    let body = format!("grant_type=client_credentials&client_id={huge_id}&client_secret=wrong");
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = bounded(
            20,
            "a failed token request",
            http.post(format!("{}/token", fake.api_url()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send(),
        )
        .await
        .unwrap();
        statuses.push(response.status().as_u16());
    }
    let client = fake.client_builder().build().unwrap();
    let page = bounded(30, "audit page 1", client.audit().query().send()).await;
    match page {
        Ok(page) => assert!(!page.items.is_empty()),
        Err(e) => panic!(
            "audit page 1 must stay readable by the default client after 20 failed token \
             requests with 512 KiB client ids (answered {statuses:?}); got {:?}: {e}",
            e.kind()
        ),
    }
}

/// Two registered agents (not the bootstrap), each with one credential.
async fn two_agents(
    fake: &sentryagent_idp::testing::FakeAgentIdp,
) -> [(
    sentryagent_idp::model::Uuid,
    sentryagent_idp::model::Uuid,
    SecretString,
); 2] {
    let bootstrap = fake.client_builder().build().unwrap();
    let mut made = Vec::new();
    for email in ["agent-a@regressions.test", "agent-b@regressions.test"] {
        let agent = register_request(&bootstrap, email).send().await.unwrap();
        let credential = bootstrap
            .credentials()
            .generate(agent.agent_id)
            .send()
            .await
            .unwrap();
        made.push((
            agent.agent_id,
            credential.credential_id,
            SecretString::from(credential.client_secret),
        ));
    }
    let b = made.pop().unwrap();
    let a = made.pop().unwrap();
    [a, b]
}

fn agent_credentials_client(
    fake: &sentryagent_idp::testing::FakeAgentIdp,
    id: sentryagent_idp::model::Uuid,
    secret: SecretString,
) -> Client {
    Client::builder()
        .base_url(fake.base_url())
        .client_id(id.to_string())
        .client_secret(secret)
        .retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap()
}

/// 0.1 review, defect 12(c): agent A may not rotate agent B's credential.
#[tokio::test]
async fn the_fake_forbids_rotating_another_agents_credential() {
    use sentryagent_idp::testing::FakeAgentIdp;
    let fake = FakeAgentIdp::start().await.unwrap();
    let [(a_id, _, a_secret), (b_id, b_credential, _)] = two_agents(&fake).await;
    let as_a = agent_credentials_client(&fake, a_id, a_secret);
    let result = bounded(
        10,
        "rotate",
        as_a.credentials().rotate(b_id, b_credential).send(),
    )
    .await;
    match result {
        Ok(_) => panic!(
            "agent {a_id} rotated agent {b_id}'s credential {b_credential}: must be 403 FORBIDDEN"
        ),
        Err(e) => assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Forbidden, Some("FORBIDDEN")),
            "{e:?}"
        ),
    }
}

/// 0.1 review, defect 12(c): agent A may not revoke agent B's credential.
#[tokio::test]
async fn the_fake_forbids_revoking_another_agents_credential() {
    use sentryagent_idp::testing::FakeAgentIdp;
    let fake = FakeAgentIdp::start().await.unwrap();
    let [(a_id, _, a_secret), (b_id, b_credential, _)] = two_agents(&fake).await;
    let as_a = agent_credentials_client(&fake, a_id, a_secret);
    let result = bounded(
        10,
        "revoke",
        as_a.credentials().revoke(b_id, b_credential).send(),
    )
    .await;
    match result {
        Ok(()) => panic!(
            "agent {a_id} revoked agent {b_id}'s credential {b_credential}: must be 403 FORBIDDEN"
        ),
        Err(e) => assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::Forbidden, Some("FORBIDDEN")),
            "{e:?}"
        ),
    }
}
