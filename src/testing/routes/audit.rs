//! `/audit` and `/audit/{eventId}`: the read-only audit log.

use std::cmp::Reverse;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::{Call, page_of, paging};
use crate::model::{AuditAction, AuditOutcome};
use crate::testing::app::App;
use crate::testing::errors::ApiError;
use crate::testing::state::AuditRecord;
use crate::testing::validate;
use crate::testing::wire;

/// `GET /audit`: filters `agentId`, `action`, `outcome`, `fromDate` and
/// `toDate` (both inclusive), paging; newest first.
pub(crate) async fn query(State(app): State<Arc<App>>, call: Call) -> Response {
    query_inner(&app, &call).unwrap_or_else(IntoResponse::into_response)
}

fn query_inner(app: &App, call: &Call) -> Result<Response, ApiError> {
    let pairs = call.query_pairs();
    let (page, limit) = paging(&pairs)?;
    let (mut agent_id, mut action, mut outcome, mut from, mut to) = (None, None, None, None, None);
    for (name, value) in &pairs {
        let as_json = Value::from(value.as_str());
        let date = |field: &str| {
            wire::parse_timestamp(value).ok_or_else(|| {
                ApiError::validation(field, format!("{field} must be an RFC 3339 date-time."))
            })
        };
        match name.as_str() {
            "agentId" => {
                agent_id = Some(
                    Uuid::parse_str(value)
                        .map_err(|_| ApiError::validation("agentId", "agentId must be a UUID."))?,
                );
            }
            "action" => action = Some(validate::one_of("action", &as_json, AuditAction::KNOWN)?),
            "outcome" => {
                outcome = Some(validate::one_of("outcome", &as_json, AuditOutcome::KNOWN)?)
            }
            "fromDate" => from = Some(date("fromDate")?),
            "toDate" => to = Some(date("toDate")?),
            _ => {}
        }
    }
    let store = app.store();
    let mut matching: Vec<&AuditRecord> = store
        .audit_events()
        .iter()
        .filter(|e| agent_id.is_none_or(|id| e.agent_id == id))
        .filter(|e| action.as_ref().is_none_or(|a| &e.action == a))
        .filter(|e| outcome.as_ref().is_none_or(|o| &e.outcome == o))
        .filter(|e| from.is_none_or(|from| e.timestamp >= from))
        .filter(|e| to.is_none_or(|to| e.timestamp <= to))
        .collect();
    matching.sort_by_key(|e| Reverse((e.timestamp, e.seq)));
    let total = matching.len();
    let data = page_of(matching, page, limit)
        .into_iter()
        .map(wire::audit_event)
        .collect();
    Ok(Json(wire::page(data, total, page, limit)).into_response())
}

/// `GET /audit/{eventId}`. A malformed id is answered 404, as the spec lists
/// no 400 here.
pub(crate) async fn get(State(app): State<Arc<App>>, call: Call) -> Response {
    let store = app.store();
    match call.id("eventId").and_then(|id| store.audit_event(id)) {
        Some(event) => Json(wire::audit_event(event)).into_response(),
        None => ApiError::audit_event_not_found().into_response(),
    }
}
