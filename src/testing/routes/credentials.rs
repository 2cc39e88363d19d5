//! `/agents/{agentId}/credentials…`: generate, list, rotate, revoke.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Call;
use crate::testing::app::{App, audit, metadata, new_credential};
use crate::testing::errors::ApiError;
use crate::testing::secrets::{SecretHash, new_client_secret};
use crate::testing::validate;
use crate::testing::wire;

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The optional `expiresAt` of a `NewCredential` body: a future timestamp.
/// `body_required` follows the operation's `requestBody.required`: generation
/// needs a body (`{}` will do), rotation may go without one.
fn expires_at(call: &Call, body_required: bool) -> Result<Option<DateTime<Utc>>, ApiError> {
    let body = validate::json_object(call.body.as_deref(), !body_required)?;
    let Some(value) = validate::field(&body, "expiresAt")? else {
        return Ok(None);
    };
    let invalid = |message: &str| ApiError::validation("expiresAt", message);
    let at = value
        .as_str()
        .and_then(wire::parse_timestamp)
        .ok_or_else(|| invalid("expiresAt must be an RFC 3339 date-time."))?;
    if at <= Utc::now() {
        return Err(invalid("expiresAt must be in the future."));
    }
    Ok(Some(wire::truncate_millis(at)))
}

fn random_failed(_: getrandom::Error) -> ApiError {
    ApiError::internal("The fake could not draw random bytes.")
}

/// `POST /agents/{agentId}/credentials`: 201 with the secret, shown once.
pub(crate) async fn generate(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let agent_id = call.id_or_400("agentId")?;
        let expires_at = expires_at(&call, true)?;
        let mut store = app.store();
        call.may_manage(&store, agent_id)?;
        let agent = store
            .agent(agent_id)
            .ok_or_else(ApiError::agent_not_found)?;
        if !agent.is_active() {
            return Err(ApiError::agent_not_active(&agent.status));
        }
        let (credential, secret) = new_credential(agent_id, expires_at).map_err(random_failed)?;
        let json = wire::credential_with_secret(&credential, &secret);
        let details = metadata([("credentialId", Value::from(credential.id.to_string()))]);
        store.insert_credential(credential);
        audit(
            &mut store,
            &call.origin,
            agent_id,
            "credential.generated",
            "success",
            details,
        );
        Ok((StatusCode::CREATED, Json(json)).into_response())
    })())
}

/// `GET /agents/{agentId}/credentials`: `{data: [...]}`, never with secrets.
/// A malformed id is answered 404, as the spec lists no 400 here.
pub(crate) async fn list(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let agent_id = call.id("agentId").ok_or_else(ApiError::agent_not_found)?;
        let store = app.store();
        call.may_manage(&store, agent_id)?;
        store
            .agent(agent_id)
            .ok_or_else(ApiError::agent_not_found)?;
        let data: Vec<Value> = store
            .credentials_of(agent_id)
            .into_iter()
            .map(wire::credential)
            .collect();
        Ok(Json(serde_json::json!({ "data": data })).into_response())
    })())
}

/// `POST …/credentials/{credentialId}/rotate`: 200, same id, new secret; the
/// old secret stops working at once. `expiresAt`, when sent, replaces the
/// expiry; otherwise it is kept.
pub(crate) async fn rotate(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let agent_id = call.id_or_400("agentId")?;
        let credential_id = call.id_or_400("credentialId")?;
        let expires_at = expires_at(&call, false)?;
        let secret = new_client_secret().map_err(random_failed)?;
        let hash = SecretHash::new(&secret).map_err(random_failed)?;
        let mut store = app.store();
        call.may_manage(&store, agent_id)?;
        let agent = store
            .agent(agent_id)
            .ok_or_else(ApiError::agent_not_found)?;
        let agent_status = agent.status.clone();
        let agent_active = agent.is_active();
        let credential = store
            .credential_mut(agent_id, credential_id)
            .ok_or_else(ApiError::credential_not_found)?;
        if credential.revoked_at.is_some() {
            return Err(ApiError::credential_already_revoked());
        }
        if !agent_active {
            return Err(ApiError::agent_not_active(&agent_status));
        }
        credential.secret = hash;
        if expires_at.is_some() {
            credential.expires_at = expires_at;
        }
        let json = wire::credential_with_secret(credential, &secret);
        let details = metadata([("credentialId", Value::from(credential_id.to_string()))]);
        audit(
            &mut store,
            &call.origin,
            agent_id,
            "credential.rotated",
            "success",
            details,
        );
        Ok(Json(json).into_response())
    })())
}

/// `DELETE …/credentials/{credentialId}`: 204; a second time 409. Malformed
/// ids are answered 404, as the spec lists no 400 here.
pub(crate) async fn revoke(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let agent_id = call.id("agentId").ok_or_else(ApiError::agent_not_found)?;
        let mut store = app.store();
        call.may_manage(&store, agent_id)?;
        store
            .agent(agent_id)
            .ok_or_else(ApiError::agent_not_found)?;
        let credential_id = call
            .id("credentialId")
            .ok_or_else(ApiError::credential_not_found)?;
        let credential = store
            .credential_mut(agent_id, credential_id)
            .ok_or_else(ApiError::credential_not_found)?;
        if credential.revoked_at.is_some() {
            return Err(ApiError::credential_already_revoked());
        }
        credential.revoked_at = Some(wire::now());
        let details = metadata([("credentialId", Value::from(credential_id.to_string()))]);
        audit(
            &mut store,
            &call.origin,
            agent_id,
            "credential.revoked",
            "success",
            details,
        );
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}
