//! One introspection (RFC 7662) through the SDK, made into a cache entry.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;

use super::budget::MissBudget;
use super::cache::{Entry, Verdict, after};
use super::principal::{AgentPrincipal, unix_time};
use super::settings::Settings;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::model::{Audience, Introspection, Uuid};

/// How long a verdict kept by the grace is used before AgentIdP is tried
/// again: 1 s.
const GRACE_RETRY: Duration = Duration::from_secs(1);
/// `Retry-After` of a 503 when AgentIdP did not say (5 s).
pub(crate) const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest `Retry-After` the service's 503 passes on from AgentIdP (60 s):
/// a server's hint is bounded before it reaches the service's callers.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What one introspection is asked in the name of.
pub(crate) struct Ask<'a> {
    pub(crate) client: &'a Client,
    pub(crate) settings: &'a Settings,
    /// The miss budget, for a token nothing local vouched for (introspection
    /// mode); `None` for a token whose signature was checked (first sight).
    pub(crate) budget: Option<&'a MissBudget>,
    /// The token's own `exp`: an active verdict is kept no longer, even
    /// when the answer says none or a later one.
    pub(crate) token_exp: Option<SystemTime>,
    /// When the verification must answer by (the verifier's deadline).
    pub(crate) deadline: tokio::time::Instant,
}

/// The 503 of a token not known active while the miss budget is spent,
/// answered before the cache is touched (nothing is cached for it).
pub(crate) fn refuse_unknown(budget: Option<&MissBudget>, stale: Option<&Entry>) -> Option<Entry> {
    if stale.is_some_and(Entry::was_active) {
        return None;
    }
    let wait = budget?.spent()?;
    tracing::warn!("introspection-miss budget spent: a token not known active is refused with 503");
    Some(unavailable(super::cache::now(), wait, None))
}

/// Asks AgentIdP about `token`; `stale` is the entry it replaces, kept by
/// the grace when AgentIdP cannot answer.
pub(crate) async fn lookup(ask: Ask<'_>, token: &str, stale: Option<Entry>) -> Entry {
    let settings = ask.settings;
    // A token seen active is asked about again for free: a flood of junk
    // cannot make a known token answer 503.
    let charged = match ask.budget {
        Some(budget) if !stale.as_ref().is_some_and(Entry::was_active) => {
            if let Err(wait) = budget.take() {
                tracing::warn!(
                    "introspection-miss budget spent: a token not known active is refused with 503"
                );
                return unavailable(super::cache::now(), wait, None);
            }
            Some(budget)
        }
        _ => None,
    };
    let secret = SecretString::from(token);
    // The call itself ends by the deadline too: a 429 whose `Retry-After`
    // the client would wait out past it comes back as the 429 it is (not an
    // outage), rather than as "no answer in time", which the grace serves.
    let call = ask.client.tokens().introspect(&secret).by(ask.deadline);
    let answer = tokio::time::timeout_at(ask.deadline, call.send()).await;
    let now = super::cache::now();
    let error = match answer {
        Ok(Ok(answer)) => {
            return match principal(answer, settings, ask.budget.is_none()) {
                Some(principal) => {
                    if let Some(budget) = charged {
                        budget.refund();
                    }
                    active(principal, now, settings, ask.token_exp)
                }
                None => Entry {
                    verdict: Verdict::Inactive,
                    fresh_until: after(now, settings.negative_ttl),
                    grace_until: None,
                    kept_until: now,
                },
            };
        }
        Ok(Err(error)) => Some(error),
        Err(_) => None,
    };
    let outage = error.as_ref().is_none_or(is_outage);
    match &error {
        // The SDK's errors never quote the token.
        Some(error) => tracing::warn!(
            kind = ?error.kind(),
            status = ?error.status(),
            error = %error,
            outage,
            "token introspection failed; refusing with 503 unless the grace applies"
        ),
        None => tracing::warn!(
            "token introspection did not answer within the verifier's deadline; refusing with 503 unless the grace applies"
        ),
    }
    if outage && let Some(kept) = stale.clone().and_then(|entry| graced(entry, now)) {
        return kept;
    }
    let hint = error.as_ref().and_then(Error::retry_after);
    unavailable(
        now,
        hint.unwrap_or(DEFAULT_RETRY_AFTER).min(MAX_RETRY_AFTER),
        stale,
    )
}

/// Whether AgentIdP itself is failing (transport, timeout, 5xx): only then
/// may the grace serve a verdict past its max age. A 429 (which the
/// verifier's own misses can cause) or any other 4xx is not an outage.
fn is_outage(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Transport | ErrorKind::Server
    ) || error.status().is_some_and(|s| s.is_server_error())
}

/// A 503, asked again next time. When it replaces a verdict known active,
/// that knowledge is kept (with its lifetimes): one failed re-check must not
/// make a known token "unknown", charged to the miss budget a flood spends.
fn unavailable(now: Instant, retry_after: Duration, stale: Option<Entry>) -> Entry {
    match stale.filter(Entry::was_active) {
        Some(stale) => Entry {
            verdict: Verdict::Unavailable {
                retry_after,
                known: stale.known_active().cloned(),
            },
            fresh_until: now,
            ..stale
        },
        None => Entry {
            verdict: Verdict::Unavailable {
                retry_after,
                known: None,
            },
            fresh_until: now,
            grace_until: None,
            kept_until: now,
        },
    }
}

/// An active verdict: fresh for `max_age`, kept by the grace for
/// `max_age + grace`, both cut at the token's `exp`: the earlier of the
/// answer's and `token_exp`, the token's own.
pub(crate) fn active(
    principal: AgentPrincipal,
    now: Instant,
    settings: &Settings,
    token_exp: Option<SystemTime>,
) -> Entry {
    let exp = match (principal.expires_at, token_exp) {
        (Some(answer), Some(own)) => Some(answer.min(own)),
        (answer, own) => answer.or(own),
    };
    let left = exp.map_or(Duration::MAX, |exp| {
        exp.duration_since(SystemTime::now()).unwrap_or_default()
    });
    Entry {
        fresh_until: after(now, settings.max_age.min(left)),
        grace_until: settings
            .grace
            .map(|grace| after(now, settings.max_age.saturating_add(grace).min(left))),
        // Known active until `exp`: a token idle for a while (a client
        // calling every few minutes) is still re-checked free of the miss
        // budget. Without `exp`, two max ages.
        kept_until: after(
            now,
            match exp {
                Some(_) => left,
                None => settings.max_age.saturating_mul(2),
            },
        ),
        verdict: Verdict::Active(Arc::new(principal)),
    }
}

/// The stale entry, served a little longer, if it is active and its grace
/// (itself cut at the token's `exp`) has not run out.
fn graced(stale: Entry, now: Instant) -> Option<Entry> {
    let grace_until = stale.grace_until.filter(|g| now < *g)?;
    let principal = Arc::clone(stale.known_active()?);
    tracing::warn!("AgentIdP unreachable: serving a verdict known active, within the grace");
    Some(Entry {
        verdict: Verdict::Active(principal),
        fresh_until: after(now, GRACE_RETRY).min(grace_until),
        ..stale
    })
}

/// The principal of an active answer; `None` for an inactive one, an
/// expired one, one whose `sub` is not an agent id, or one failing the
/// `issuer`/`audience` settings. `signed`: the token's own claims were
/// checked locally (first sight), so an answer without `iss`/`aud` is
/// accepted; otherwise a set `issuer`/`audience` requires them.
fn principal(answer: Introspection, settings: &Settings, signed: bool) -> Option<AgentPrincipal> {
    if !answer.active {
        return None;
    }
    let Some(agent_id) = answer.sub.as_deref().and_then(|s| Uuid::parse_str(s).ok()) else {
        tracing::warn!("introspection answered active without an agent id in `sub`; refused");
        return None;
    };
    if let Some(issuer) = &settings.issuer {
        let ok = answer.iss.as_ref().map_or(signed, |iss| iss == issuer);
        if !ok {
            tracing::debug!("introspection answer refused: `iss` is missing or not the issuer");
            return None;
        }
    }
    if let Some(audience) = &settings.audience {
        let ok = answer.aud.as_ref().map_or(signed, |aud| match aud {
            Audience::String(one) => one == audience,
            Audience::Array(all) => all.contains(audience),
        });
        if !ok {
            tracing::debug!("introspection answer refused: `aud` is missing or not the audience");
            return None;
        }
    }
    let principal = AgentPrincipal {
        agent_id,
        client_id: answer.client_id.unwrap_or_else(|| agent_id.to_string()),
        scopes: answer.scope.unwrap_or_default(),
        jti: answer.jti,
        expires_at: answer.exp.and_then(unix_time),
        issued_at: answer.iat.and_then(unix_time),
    };
    (!principal.expired_at(SystemTime::now(), settings.leeway)).then_some(principal)
}
