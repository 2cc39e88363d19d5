//! `/agents` and `/agents/{agentId}`: register, list, get, update, decommission.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Call, page_of, paging};
use crate::model::{AgentStatus, AgentType, DeploymentEnv};
use crate::testing::app::{App, Origin, audit, metadata};
use crate::testing::errors::ApiError;
use crate::testing::state::{ALL_SCOPES, AgentRecord, Store, status};
use crate::testing::validate;
use crate::testing::wire;

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /agents`: 201 with the new agent.
pub(crate) async fn register(State(app): State<Arc<App>>, call: Call) -> Response {
    respond(register_inner(&app, &call))
}

fn register_inner(app: &App, call: &Call) -> Result<Response, ApiError> {
    let body = validate::json_object(call.body.as_deref(), false)?;
    let email = validate::email(validate::required(&body, "email")?)?;
    let agent_type = validate::one_of(
        "agentType",
        validate::required(&body, "agentType")?,
        AgentType::KNOWN,
    )?;
    let version = validate::version(validate::required(&body, "version")?)?;
    let capabilities = validate::capabilities(validate::required(&body, "capabilities")?)?;
    let owner = validate::owner(validate::required(&body, "owner")?)?;
    let deployment_env = validate::one_of(
        "deploymentEnv",
        validate::required(&body, "deploymentEnv")?,
        DeploymentEnv::KNOWN,
    )?;

    let now = wire::now();
    let agent = AgentRecord {
        id: Uuid::new_v4(),
        email,
        agent_type,
        version,
        capabilities,
        owner,
        deployment_env,
        status: status::ACTIVE.to_owned(),
        created_at: now,
        updated_at: now,
        allowed_scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        credentials: Vec::new(),
        admin: false,
    };
    let json = wire::agent(&agent);
    let (id, agent_type) = (agent.id, agent.agent_type.clone());
    let mut store = app.store();
    if !store.insert_agent(agent) {
        return Err(ApiError::agent_already_exists());
    }
    audit(
        &mut store,
        &call.origin,
        id,
        "agent.created",
        "success",
        metadata([("agentType", Value::from(agent_type))]),
    );
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// `GET /agents`: filters `status`, `agentType`, `owner` (exact), paging.
pub(crate) async fn list(State(app): State<Arc<App>>, call: Call) -> Response {
    respond(list_inner(&app, &call))
}

fn list_inner(app: &App, call: &Call) -> Result<Response, ApiError> {
    let pairs = call.query_pairs();
    let (page, limit) = paging(&pairs)?;
    let (mut status, mut agent_type, mut owner) = (None, None, None);
    for (name, value) in &pairs {
        let value_json = Value::from(value.as_str());
        match name.as_str() {
            "status" => status = Some(validate::one_of("status", &value_json, AgentStatus::KNOWN)?),
            "agentType" => {
                agent_type = Some(validate::one_of(
                    "agentType",
                    &value_json,
                    AgentType::KNOWN,
                )?);
            }
            "owner" => owner = Some(value.clone()),
            _ => {}
        }
    }
    let store = app.store();
    let matching: Vec<&AgentRecord> = store
        .agents()
        .iter()
        .filter(|a| status.as_ref().is_none_or(|s| &a.status == s))
        .filter(|a| agent_type.as_ref().is_none_or(|t| &a.agent_type == t))
        .filter(|a| owner.as_ref().is_none_or(|o| &a.owner == o))
        .collect();
    let total = matching.len();
    let data = page_of(matching, page, limit)
        .into_iter()
        .map(wire::agent)
        .collect();
    Ok(Json(wire::page(data, total, page, limit)).into_response())
}

/// `GET /agents/{agentId}`, decommissioned agents included.
pub(crate) async fn get(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let id = call.id_or_400("agentId")?;
        let store = app.store();
        let agent = store.agent(id).ok_or_else(ApiError::agent_not_found)?;
        Ok(Json(wire::agent(agent)).into_response())
    })())
}

/// The fields `PATCH` may change, validated; `email` is refused.
fn parse_update(body: &Map<String, Value>) -> Result<Vec<(&'static str, Value)>, ApiError> {
    if body.contains_key("email") {
        return Err(ApiError::validation("email", "email cannot be changed."));
    }
    let mut changes = Vec::new();
    if let Some(v) = validate::field(body, "agentType")? {
        changes.push((
            "agentType",
            validate::one_of("agentType", v, AgentType::KNOWN)?.into(),
        ));
    }
    if let Some(v) = validate::field(body, "version")? {
        changes.push(("version", validate::version(v)?.into()));
    }
    if let Some(v) = validate::field(body, "capabilities")? {
        changes.push(("capabilities", validate::capabilities(v)?.into()));
    }
    if let Some(v) = validate::field(body, "owner")? {
        changes.push(("owner", validate::owner(v)?.into()));
    }
    if let Some(v) = validate::field(body, "deploymentEnv")? {
        changes.push((
            "deploymentEnv",
            validate::one_of("deploymentEnv", v, DeploymentEnv::KNOWN)?.into(),
        ));
    }
    if let Some(v) = validate::field(body, "status")? {
        changes.push((
            "status",
            validate::one_of("status", v, AgentStatus::KNOWN)?.into(),
        ));
    }
    if changes.is_empty() {
        return Err(ApiError::validation(
            "body",
            "At least one updatable field is required.",
        ));
    }
    Ok(changes)
}

/// `PATCH /agents/{agentId}`: partial update. A status change writes
/// `agent.suspended`, `agent.reactivated` or `agent.decommissioned`; other
/// fields (or a status set to its current value) write `agent.updated`.
pub(crate) async fn update(State(app): State<Arc<App>>, call: Call) -> Response {
    respond(update_inner(&app, &call))
}

fn update_inner(app: &App, call: &Call) -> Result<Response, ApiError> {
    let id = call.id_or_400("agentId")?;
    let body = validate::json_object(call.body.as_deref(), false)?;
    let changes = parse_update(&body)?;
    let mut store = app.store();
    let agent = store.agent_mut(id).ok_or_else(ApiError::agent_not_found)?;
    if agent.is_decommissioned() {
        return Err(ApiError::agent_already_decommissioned());
    }
    let previous = agent.status.clone();
    let mut fields = Vec::new();
    for (name, value) in changes {
        let text = value.as_str().unwrap_or_default().to_owned();
        match name {
            "agentType" => agent.agent_type = text,
            "version" => agent.version = text,
            "owner" => agent.owner = text,
            "deploymentEnv" => agent.deployment_env = text,
            "status" => agent.status = text,
            "capabilities" => {
                agent.capabilities = value
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            _ => continue,
        }
        if name != "status" {
            fields.push(Value::from(name));
        }
    }
    agent.updated_at = wire::now();
    let json = wire::agent(agent);
    let current = agent.status.clone();
    let status_action = match (previous.as_str(), current.as_str()) {
        (before, after) if before == after => None,
        (_, status::SUSPENDED) => Some("agent.suspended"),
        (_, status::ACTIVE) => Some("agent.reactivated"),
        (_, status::DECOMMISSIONED) => Some("agent.decommissioned"),
        _ => None,
    };
    if !fields.is_empty() || status_action.is_none() {
        let details = metadata([("fields", Value::from(fields))]);
        audit(
            &mut store,
            &call.origin,
            id,
            "agent.updated",
            "success",
            details,
        );
    }
    if let Some(action) = status_action {
        let details = metadata([
            ("previousStatus", Value::from(previous)),
            ("status", Value::from(current)),
        ]);
        audit(&mut store, &call.origin, id, action, "success", details);
    }
    Ok(Json(json).into_response())
}

/// `DELETE /agents/{agentId}`: 204; a second time 409. A malformed id is
/// answered 404, as the spec lists no 400 here.
pub(crate) async fn decommission(State(app): State<Arc<App>>, call: Call) -> Response {
    respond((|| {
        let id = call.id("agentId").ok_or_else(ApiError::agent_not_found)?;
        let mut store = app.store();
        decommission_agent(&mut store, &call.origin, id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

fn decommission_agent(store: &mut Store, origin: &Origin, id: Uuid) -> Result<(), ApiError> {
    let agent = store.agent_mut(id).ok_or_else(ApiError::agent_not_found)?;
    if agent.is_decommissioned() {
        return Err(ApiError::agent_already_decommissioned());
    }
    let previous = std::mem::replace(&mut agent.status, status::DECOMMISSIONED.to_owned());
    agent.updated_at = wire::now();
    let details = metadata([
        ("previousStatus", Value::from(previous)),
        ("status", Value::from(status::DECOMMISSIONED)),
    ]);
    audit(
        store,
        origin,
        id,
        "agent.decommissioned",
        "success",
        details,
    );
    Ok(())
}
