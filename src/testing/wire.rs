//! The JSON the fake answers with, field for field as the spec's schemas
//! name them, and its timestamps (`2026-03-28T09:00:00.000Z`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::state::{AgentRecord, AuditRecord, CredentialRecord};

/// Now, cut to whole milliseconds so that what a client reads back compares
/// equal to what the fake stored.
pub(crate) fn now() -> DateTime<Utc> {
    truncate_millis(Utc::now())
}

/// `t` cut to whole milliseconds.
pub(crate) fn truncate_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// RFC 3339 in UTC with milliseconds and `Z`.
pub(crate) fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp from a client. A `+` offset sent unencoded in
/// a query string arrives as a space, which is mended first.
pub(crate) fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let parse = |v: &str| DateTime::parse_from_rfc3339(v).ok();
    parse(value)
        .or_else(|| parse(&value.replace(' ', "+")))
        .map(|t| t.with_timezone(&Utc))
}

fn optional_timestamp(t: Option<&DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(timestamp(t)))
}

/// An `Agent`.
pub(crate) fn agent(a: &AgentRecord) -> Value {
    json!({
        "agentId": a.id,
        "email": a.email,
        "agentType": a.agent_type,
        "version": a.version,
        "capabilities": a.capabilities,
        "owner": a.owner,
        "deploymentEnv": a.deployment_env,
        "status": a.status,
        "createdAt": timestamp(&a.created_at),
        "updatedAt": timestamp(&a.updated_at),
    })
}

/// A `Credential` (never with a secret).
pub(crate) fn credential(c: &CredentialRecord) -> Value {
    json!({
        "credentialId": c.id,
        "clientId": c.agent_id,
        "status": c.status(),
        "createdAt": timestamp(&c.created_at),
        "expiresAt": optional_timestamp(c.expires_at.as_ref()),
        "revokedAt": optional_timestamp(c.revoked_at.as_ref()),
    })
}

/// A `CredentialWithSecret`: the credential plus its new plain secret.
pub(crate) fn credential_with_secret(c: &CredentialRecord, secret: &str) -> Value {
    let mut value = credential(c);
    if let Some(map) = value.as_object_mut() {
        map.insert("clientSecret".to_owned(), Value::String(secret.to_owned()));
    }
    value
}

/// An `AuditEvent`.
pub(crate) fn audit_event(e: &AuditRecord) -> Value {
    json!({
        "eventId": e.id,
        "agentId": e.agent_id,
        "action": e.action,
        "outcome": e.outcome,
        "metadata": e.metadata,
        "ipAddress": e.ip_address,
        "userAgent": e.user_agent,
        "timestamp": timestamp(&e.timestamp),
    })
}

/// A page envelope `{data, total, page, limit}`.
pub(crate) fn page(data: Vec<Value>, total: usize, page: u32, limit: u32) -> Value {
    json!({ "data": data, "total": total, "page": page, "limit": limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millis_and_z() {
        let t = parse_timestamp("2026-03-28T10:00:00.123456+01:00").unwrap();
        assert_eq!(timestamp(&truncate_millis(t)), "2026-03-28T09:00:00.123Z");
        assert_eq!(
            parse_timestamp("2026-03-28T10:00:00 01:00"),
            parse_timestamp("2026-03-28T09:00:00Z")
        );
        assert!(parse_timestamp("yesterday").is_none());
    }
}
