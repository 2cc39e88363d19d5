//! `POST /token` (client-credentials grant), `/token/introspect` (RFC 7662)
//! and `/token/revoke` (RFC 7009).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Call;
use crate::testing::app::{App, MAX_RECORDED_CHARS, audit, bounded, metadata};
use crate::testing::errors::{ApiError, OAuthError};
use crate::testing::tokens::Claims;
use crate::testing::wire;

/// `POST /token`. Every refusal writes an `auth.failed` event.
pub(crate) async fn issue(State(app): State<Arc<App>>, call: Call) -> Response {
    let mut client_id = None;
    match grant(&app, &call, &mut client_id) {
        Ok(response) => response,
        Err(error) => {
            let agent_id = client_id
                .as_deref()
                .and_then(|id| Uuid::parse_str(id).ok())
                .unwrap_or(Uuid::nil());
            let details = metadata([
                ("error", Value::from(error.code())),
                (
                    "clientId",
                    client_id.map_or(Value::Null, |id| {
                        Value::from(bounded(&id, MAX_RECORDED_CHARS))
                    }),
                ),
            ]);
            let mut store = app.store();
            audit(
                &mut store,
                &call.origin,
                agent_id,
                "auth.failed",
                "failure",
                details,
            );
            error.into_response()
        }
    }
}

/// A token form has four fields; more are refused before any is looked at.
const MAX_FORM_FIELDS: usize = 16;

/// Form pairs, refusing repeated names as RFC 6749 §3.2 asks.
fn form(call: &Call) -> Result<Vec<(String, String)>, OAuthError> {
    let json = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if json {
        return Err(OAuthError::invalid_request(
            "Send application/x-www-form-urlencoded, not JSON.",
        ));
    }
    let body = call
        .body
        .as_ref()
        .ok_or_else(|| OAuthError::invalid_request("The request body could not be read."))?;
    let fields = body.split(|b| *b == b'&').filter(|f| !f.is_empty()).count();
    if fields > MAX_FORM_FIELDS {
        return Err(OAuthError::invalid_request(format!(
            "Too many form fields ({fields}; at most {MAX_FORM_FIELDS})."
        )));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(body) {
        if !names.insert(k.clone().into_owned()) {
            return Err(OAuthError::invalid_request(format!(
                "Parameter {} is repeated.",
                bounded(&k, MAX_RECORDED_CHARS)
            )));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `client_id:client_secret` from HTTP Basic: `None` without Basic, an error
/// when Basic is malformed. Taken verbatim: ids and secrets hold no character
/// that RFC 6749 §2.3.1 would have encoded.
fn basic(call: &Call) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = call.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return Err(OAuthError::invalid_client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "Only HTTP Basic client authentication is accepted here.",
        ));
    }
    STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
        })
        .map(Some)
        .ok_or_else(|| OAuthError::invalid_client(true))
}

fn grant(app: &App, call: &Call, client_id: &mut Option<String>) -> Result<Response, OAuthError> {
    let pairs = form(call)?;
    match lookup(&pairs, "grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required.")),
        Some("client_credentials") => {}
        Some(_) => return Err(OAuthError::unsupported_grant_type()),
    }
    let by_basic = basic(call)?;
    let used_basic = by_basic.is_some();
    let (form_id, form_secret) = (lookup(&pairs, "client_id"), lookup(&pairs, "client_secret"));
    let (id, secret) = match by_basic {
        Some((id, secret)) => {
            *client_id = Some(id.clone());
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "Use either HTTP Basic or client_secret in the body, not both.",
                ));
            }
            (id, secret)
        }
        None => {
            *client_id = form_id.map(str::to_owned);
            match (form_id, form_secret) {
                (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
                (None, _) => return Err(OAuthError::invalid_request("client_id is required.")),
                (_, None) => {
                    return Err(OAuthError::invalid_request("client_secret is required."));
                }
            }
        }
    };

    let mut store = app.store();
    let now = wire::now();
    let agent_id = Uuid::parse_str(&id).map_err(|_| OAuthError::invalid_client(used_basic))?;
    let Some(agent) = store.agent(agent_id) else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    let Some(credential_id) = store
        .credentials_of(agent_id)
        .into_iter()
        .find(|c| c.usable_at(now) && c.secret.matches(&secret))
        .map(|c| c.id)
    else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    if !agent.is_active() {
        return Err(OAuthError::unauthorized_client(&agent.status));
    }
    let granted: Vec<&str> = match lookup(&pairs, "scope").filter(|s| !s.trim().is_empty()) {
        None => agent.allowed_scopes.iter().map(String::as_str).collect(),
        Some(requested) => {
            let requested: Vec<&str> = requested.split_whitespace().collect();
            if let Some(bad) = requested
                .iter()
                .find(|s| !agent.allowed_scopes.iter().any(|a| a == *s))
            {
                return Err(OAuthError::invalid_scope(bad));
            }
            agent
                .allowed_scopes
                .iter()
                .map(String::as_str)
                .filter(|a| requested.contains(a))
                .collect()
        }
    };
    let scope = granted.join(" ");

    let lifetime = app.control.token_lifetime().as_secs();
    let iat = Utc::now().timestamp();
    let claims = Claims {
        sub: agent_id.to_string(),
        client_id: agent_id.to_string(),
        scope: scope.clone(),
        jti: Uuid::new_v4().to_string(),
        iat,
        exp: iat.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
    };
    let Ok(access_token) = app.keys.sign(&claims) else {
        return Ok(ApiError::internal("The fake could not sign a token.").into_response());
    };
    let details = metadata([
        ("clientId", Value::from(claims.client_id.clone())),
        ("credentialId", Value::from(credential_id.to_string())),
        ("jti", Value::from(claims.jti.clone())),
        ("scope", Value::from(scope.clone())),
    ]);
    audit(
        &mut store,
        &call.origin,
        agent_id,
        "token.issued",
        "success",
        details,
    );
    let body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The `token` form field of introspection and revocation.
fn form_token(call: &Call) -> Result<String, ApiError> {
    let body = call
        .body
        .as_ref()
        .ok_or_else(|| ApiError::validation("body", "The request body could not be read."))?;
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::validation("token", "token is required."))
}

/// `POST /token/introspect`: `{active: true, …claims}` or `{active: false}`.
pub(crate) async fn introspect(State(app): State<Arc<App>>, call: Call) -> Response {
    let token = match form_token(&call) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    let mut store = app.store();
    let (claims, verdict) = app.check_token(&store, &token);
    let active = verdict.is_ok();
    let body = match (&claims, active) {
        (Some(c), true) => json!({
            "active": true,
            "sub": c.sub,
            "client_id": c.client_id,
            "scope": c.scope,
            "token_type": "Bearer",
            "jti": c.jti,
            "iat": c.iat,
            "exp": c.exp,
        }),
        _ => json!({ "active": false }),
    };
    let subject = claims
        .as_ref()
        .and_then(|c| Uuid::parse_str(&c.sub).ok())
        .unwrap_or_else(|| call.caller_id());
    let details = metadata([
        ("active", Value::from(active)),
        (
            "jti",
            claims
                .as_ref()
                .map_or(Value::Null, |c| Value::from(c.jti.clone())),
        ),
        ("introspectedBy", Value::from(call.caller_id().to_string())),
    ]);
    audit(
        &mut store,
        &call.origin,
        subject,
        "token.introspected",
        "success",
        details,
    );
    Json(body).into_response()
}

/// `POST /token/revoke`: 200 with an empty body, also for tokens the fake
/// does not recognise (RFC 7009 §2.2). A token carrying the fake's signature
/// is revoked by its `jti`, which writes `token.revoked`.
pub(crate) async fn revoke(State(app): State<Arc<App>>, call: Call) -> Response {
    let token = match form_token(&call) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    if let Some(claims) = app.keys.verify(&token) {
        let mut store = app.store();
        store.revoke_jti(&claims.jti);
        let subject = Uuid::parse_str(&claims.sub).unwrap_or_else(|_| call.caller_id());
        let details = metadata([
            ("jti", Value::from(claims.jti.clone())),
            ("revokedBy", Value::from(call.caller_id().to_string())),
        ]);
        audit(
            &mut store,
            &call.origin,
            subject,
            "token.revoked",
            "success",
            details,
        );
    }
    StatusCode::OK.into_response()
}
