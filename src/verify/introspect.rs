//! One introspection (RFC 7662) through the SDK, made into a cache entry.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;

use super::cache::{Entry, Verdict, after};
use super::principal::{AgentPrincipal, unix_time};
use super::settings::Settings;
use crate::client::Client;
use crate::model::{Introspection, Uuid};

/// How long a verdict kept by the grace is used before AgentIdP is tried
/// again: 1 s.
const GRACE_RETRY: Duration = Duration::from_secs(1);
/// `Retry-After` of a 503 when AgentIdP did not say: 5 s.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest `Retry-After` the service's 503 passes on from AgentIdP (60 s):
/// a server's hint is bounded before it reaches the service's callers.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Asks AgentIdP about `token`; `stale` is the entry it replaces, kept by
/// the grace when AgentIdP cannot answer.
pub(crate) async fn lookup(
    client: &Client,
    token: &str,
    stale: Option<Entry>,
    settings: &Settings,
) -> Entry {
    let secret = SecretString::from(token);
    let answer = client.tokens().introspect(&secret).send().await;
    let now = super::cache::now();
    match answer {
        Ok(answer) => match principal(answer, settings.leeway) {
            Some(principal) => active(principal, now, settings),
            None => Entry {
                verdict: Verdict::Inactive,
                fresh_until: after(now, settings.negative_ttl),
                grace_until: None,
            },
        },
        Err(error) => {
            // The SDK's errors never quote the token.
            tracing::warn!(
                kind = ?error.kind(),
                status = ?error.status(),
                error = %error,
                "token introspection failed; refusing with 503 unless the grace applies"
            );
            if let Some(kept) = stale.and_then(|entry| graced(entry, now)) {
                return kept;
            }
            Entry {
                verdict: Verdict::Unavailable(
                    error
                        .retry_after()
                        .unwrap_or(DEFAULT_RETRY_AFTER)
                        .min(MAX_RETRY_AFTER),
                ),
                fresh_until: now,
                grace_until: None,
            }
        }
    }
}

/// An active verdict: fresh for `max_age`, kept by the grace for
/// `max_age + grace`, both cut at the token's `exp`.
pub(crate) fn active(principal: AgentPrincipal, now: Instant, settings: &Settings) -> Entry {
    let left = principal.expires_at.map_or(Duration::MAX, |exp| {
        exp.duration_since(SystemTime::now()).unwrap_or_default()
    });
    Entry {
        fresh_until: after(now, settings.max_age.min(left)),
        grace_until: settings
            .grace
            .map(|grace| after(now, settings.max_age.saturating_add(grace).min(left))),
        verdict: Verdict::Active(Arc::new(principal)),
    }
}

/// The stale entry, served a little longer, if it is active and its grace
/// (itself cut at the token's `exp`) has not run out.
fn graced(stale: Entry, now: Instant) -> Option<Entry> {
    let grace_until = stale.grace_until.filter(|g| now < *g)?;
    if !matches!(stale.verdict, Verdict::Active(_)) {
        return None;
    }
    tracing::warn!("AgentIdP unreachable: serving a verdict known active, within the grace");
    Some(Entry {
        fresh_until: after(now, GRACE_RETRY).min(grace_until),
        ..stale
    })
}

/// The principal of an active answer; `None` for an inactive one, an
/// expired one, or one whose `sub` is not an agent id.
fn principal(answer: Introspection, leeway: Duration) -> Option<AgentPrincipal> {
    if !answer.active {
        return None;
    }
    let Some(agent_id) = answer.sub.as_deref().and_then(|s| Uuid::parse_str(s).ok()) else {
        tracing::warn!("introspection answered active without an agent id in `sub`; refused");
        return None;
    };
    let principal = AgentPrincipal {
        agent_id,
        client_id: answer.client_id.unwrap_or_else(|| agent_id.to_string()),
        scopes: answer.scope.unwrap_or_default(),
        jti: answer.jti,
        expires_at: answer.exp.and_then(unix_time),
        issued_at: answer.iat.and_then(unix_time),
    };
    (!principal.expired_at(SystemTime::now(), leeway)).then_some(principal)
}
