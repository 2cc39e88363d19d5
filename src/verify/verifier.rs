//! [`Verifier`]: the mode chosen, the cache, and `verify`.

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use jsonwebtoken::DecodingKey;

use super::budget::MissBudget;
use super::cache::{TokenKey, Verdict, VerdictCache, after};
use super::error::VerifyError;
use super::header::{MAX_TOKEN_LEN, b64token, bearer_sent};
use super::introspect::{self, Ask};
use super::jwks::Jwks;
use super::jwt::Jws;
use super::principal::AgentPrincipal;
use super::settings::Settings;
use super::shape;
use super::status::StatusCheck;
use crate::client::Client;
use crate::error::Error;

/// Decides whether a bearer token is good and whom it speaks for.
///
/// Cheap to clone (one `Arc`), `Send + Sync`: build one per service and
/// share it. Built by mode: [`introspection`](Self::introspection),
/// [`public_key_pem`](Self::public_key_pem) or [`jwks`](Self::jwks), then
/// the [`VerifierBuilder`](super::VerifierBuilder) options. `Debug` shows
/// the mode and settings, never a token.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    check: Check,
    cache: VerdictCache,
    settings: Settings,
    /// Introspections of tokens not known active (introspection mode).
    misses: MissBudget,
    /// The opt-in agent-status check, after every other.
    status: Option<StatusCheck>,
}

pub(crate) enum Check {
    /// Every token is introspected (through the cache).
    Introspect(Client),
    /// Checked locally, then introspected once per cache lifetime if `first_sight`.
    Local {
        keys: Keys,
        first_sight: Option<Client>,
    },
}

pub(crate) enum Keys {
    Pem(Box<DecodingKey>),
    Jwks(Box<Jwks>),
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        let mode = match &i.check {
            Check::Introspect(_) => "introspection",
            Check::Local {
                keys: Keys::Pem(_),
                first_sight: None,
            } => "public key",
            Check::Local {
                keys: Keys::Pem(_),
                first_sight: Some(_),
            } => "public key + introspection at first sight",
            Check::Local {
                keys: Keys::Jwks(_),
                first_sight: None,
            } => "jwks",
            Check::Local {
                keys: Keys::Jwks(_),
                first_sight: Some(_),
            } => "jwks + introspection at first sight",
        };
        f.debug_struct("Verifier")
            .field("mode", &mode)
            .field("settings", &i.settings)
            .field("cache", &i.cache)
            .field("agent_status", &i.status)
            .finish()
    }
}

impl Verifier {
    pub(crate) fn from_parts(
        check: Check,
        settings: Settings,
        status: Option<StatusCheck>,
    ) -> crate::error::Result<Verifier> {
        // Only the introspecting modes keep verdicts in the moka cache.
        let introspects = !matches!(
            check,
            Check::Local {
                first_sight: None,
                ..
            }
        );
        let cache = VerdictCache::new(settings.capacity, introspects)
            .map_err(|e| Error::config(format!("no random key for the verdict cache: {e}")))?;
        Ok(Verifier {
            inner: Arc::new(Inner {
                check,
                cache,
                misses: MissBudget::new(settings.misses.0, settings.misses.1),
                settings,
                status,
            }),
        })
    }

    /// The principal of the request's `Authorization: Bearer` token.
    ///
    /// The header must be one, `Bearer <b64token>` (RFC 6750 §2.1, the
    /// scheme in any case); no header, or another scheme, is
    /// [`VerifyError::MissingToken`]; several, or a malformed one,
    /// [`VerifyError::InvalidRequest`]. Tokens in the query or the body
    /// are not read.
    pub async fn verify_request_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<AgentPrincipal, VerifyError> {
        let sent = bearer_sent(headers)?;
        self.decide_checked(sent, VerifyError::InvalidRequest).await
    }

    /// The principal of `token`, or why it is refused:
    /// [`InvalidToken`](VerifyError::InvalidToken), or
    /// [`Unavailable`](VerifyError::Unavailable) when AgentIdP cannot tell.
    ///
    /// Scopes are not checked here: check them on every request, after
    /// this (with [`RequireScopes`](super::RequireScopes) or
    /// [`AgentPrincipal::has_all`]).
    pub async fn verify(&self, token: &str) -> Result<AgentPrincipal, VerifyError> {
        self.decide_checked(token.as_bytes(), VerifyError::InvalidToken)
            .await
    }

    /// The cached verdict on the token `sent`, else (it is a b64token, or
    /// `not_b64token` is the answer) [`decide`](Self::decide); then the
    /// agent-status check if asked for.
    ///
    /// A token seen before is a cache hit in every mode: one keyed hash and
    /// one lookup, no syntax check (only tokens that passed it are cached),
    /// no header parse, no RSA, no timer. Only signed tokens and
    /// introspection verdicts are kept, so junk cannot push good verdicts
    /// out. The rest is boxed: the cache hit's future stays small, which is
    /// what each request moves around.
    async fn decide_checked(
        &self,
        sent: &[u8],
        not_b64token: VerifyError,
    ) -> Result<AgentPrincipal, VerifyError> {
        let i = &*self.inner;
        if sent.len() > MAX_TOKEN_LEN {
            return Err(not_b64token);
        }
        let key = i.cache.key_of(sent);
        let (principal, deadline) = match i.cache.fresh(&key).await {
            Some(verdict) => (answer(verdict)?, None),
            None => {
                let token = b64token(sent).ok_or(not_b64token)?;
                let deadline = self.deadline();
                (
                    Box::pin(self.decide(token, key, deadline)).await?,
                    Some(deadline),
                )
            }
        };
        if let Some(status) = &i.status {
            // The status check counts against the same deadline.
            let deadline = deadline.unwrap_or_else(|| self.deadline());
            Box::pin(status.check(principal.agent_id, deadline)).await?;
        }
        Ok(principal)
    }

    /// The verifier's deadline for a verification starting now (saturated).
    fn deadline(&self) -> tokio::time::Instant {
        let start = tokio::time::Instant::now();
        start
            .checked_add(self.inner.settings.deadline)
            .unwrap_or_else(|| after(start.into_std(), self.inner.settings.deadline).into())
    }

    /// The verdict on a token known to be a b64token and not freshly
    /// cached (its key `key`), answered by the verifier's deadline (each
    /// remote call is bounded by it too, so that a timed-out introspection
    /// can still be served by the grace).
    async fn decide(
        &self,
        token: &str,
        key: TokenKey,
        deadline: tokio::time::Instant,
    ) -> Result<AgentPrincipal, VerifyError> {
        if let Check::Local {
            keys: Keys::Pem(_),
            first_sight: None,
        } = &self.inner.check
        {
            // CPU work only: nothing to wait for, so no timer to arm.
            return self.decide_by(token, key, deadline).await;
        }
        tokio::time::timeout_at(deadline, self.decide_by(token, key, deadline))
            .await
            .unwrap_or(Err(VerifyError::Unavailable {
                retry_after: introspect::DEFAULT_RETRY_AFTER,
            }))
    }

    async fn decide_by(
        &self,
        token: &str,
        key: TokenKey,
        deadline: tokio::time::Instant,
    ) -> Result<AgentPrincipal, VerifyError> {
        let i = &*self.inner;
        match &i.check {
            Check::Introspect(client) => {
                // What cannot be a token costs no introspection (401 at once).
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let leeway = i.settings.leeway.as_secs();
                let Some(exp) = shape::live_token_exp(token, now, leeway) else {
                    return Err(VerifyError::InvalidToken);
                };
                // Unverified, so it can only shorten a verdict's life: the
                // answer may not say `exp` (RFC 7662 makes it optional), and
                // a hit is served without reading the token again.
                let token_exp = std::time::Duration::try_from_secs_f64(exp)
                    .ok()
                    .and_then(|since| std::time::UNIX_EPOCH.checked_add(since));
                self.introspected(client, token, key, Some(&i.misses), token_exp, deadline)
                    .await
            }
            Check::Local { keys, first_sight } => {
                let jws = Jws::parse(token)?;
                let principal = match keys {
                    Keys::Pem(pem) => jws.verify(pem, &i.settings)?,
                    Keys::Jwks(jwks) => {
                        let kid = jws.kid.as_deref();
                        let set = jwks.keys_for(kid, deadline).await?;
                        let key = set.key_for(kid, jws.unverified_iat())?;
                        jws.verify(key, &i.settings)?
                    }
                };
                match first_sight {
                    None => {
                        i.cache.keep_verified(key, &principal, i.settings.max_age);
                        Ok(principal)
                    }
                    // The introspection's verdict is what the cache keeps;
                    // signed by AgentIdP, it is not charged to the miss budget.
                    Some(client) => {
                        let exp = principal.expires_at;
                        self.introspected(client, token, key, None, exp, deadline)
                            .await
                    }
                }
            }
        }
    }

    /// The cached verdict on `token` (whose hash is `key`), introspecting
    /// when there is none fresh; an active one is kept no longer than
    /// `token_exp`, the token's own `exp`, whatever the answer says.
    async fn introspected(
        &self,
        client: &Client,
        token: &str,
        key: TokenKey,
        budget: Option<&MissBudget>,
        token_exp: Option<std::time::SystemTime>,
        deadline: tokio::time::Instant,
    ) -> Result<AgentPrincipal, VerifyError> {
        let i = &*self.inner;
        let entry = i
            .cache
            .get_or_lookup(
                key,
                |stale| introspect::refuse_unknown(budget, stale),
                |stale| {
                    let ask = Ask {
                        client,
                        settings: &i.settings,
                        budget,
                        token_exp,
                        deadline,
                    };
                    introspect::lookup(ask, token, stale)
                },
            )
            .await;
        answer(entry.verdict)
    }

    #[cfg(all(test, feature = "testing"))]
    pub(crate) fn cache(&self) -> &VerdictCache {
        &self.inner.cache
    }
}

/// What a verdict answers.
fn answer(verdict: Verdict) -> Result<AgentPrincipal, VerifyError> {
    match verdict {
        Verdict::Active(principal) => Ok(AgentPrincipal::clone(&principal)),
        Verdict::Inactive => Err(VerifyError::InvalidToken),
        Verdict::Unavailable { retry_after, .. } => Err(VerifyError::Unavailable { retry_after }),
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::FakeAgentIdp;
    use secrecy::ExposeSecret;

    /// The cache holds hashes and principals only: neither its keys, its
    /// entries nor any `Debug` contains a token, valid or not.
    #[tokio::test]
    async fn the_cache_holds_no_raw_token() {
        let fake = FakeAgentIdp::start().await.unwrap();
        let verifier =
            super::super::Verifier::introspection(fake.client_builder().build().unwrap())
                .build()
                .unwrap();
        let good = fake
            .client_builder()
            .build()
            .unwrap()
            .access_token()
            .await
            .unwrap();
        let good = good.expose_secret().to_owned();
        let bad = format!("{good}x");
        assert!(verifier.verify(&good).await.is_ok());
        assert!(verifier.verify(&bad).await.is_err());
        let snapshot = verifier.cache().snapshot();
        assert_eq!(snapshot.len(), 2);
        let dump = format!("{snapshot:?} {verifier:?}");
        for token in [&good, &bad] {
            for part in token.split('.') {
                assert!(!dump.contains(part), "a token part is in the cache: {dump}");
            }
            assert!(
                snapshot
                    .iter()
                    .any(|(key, _)| *key == verifier.cache().key_of(token.as_bytes()))
            );
        }
        for (key, _) in &snapshot {
            assert_eq!(
                std::mem::size_of_val(key),
                16,
                "a 128-bit hash, nothing else"
            );
        }
    }

    /// Issue 24, performance: a token verified locally is kept as an
    /// introspection verdict is: keyed by its keyed hash, fresh at most
    /// `max_age` and never past its `exp`; a refused token is not kept, so
    /// junk cannot push good verdicts out.
    #[tokio::test]
    async fn a_locally_verified_token_is_kept_until_its_exp_and_never_a_refused_one() {
        use crate::testing::{AgentSeed, token_claims};
        use std::time::Duration;
        let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
        let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
        let short = fake.sign_claims(token_claims(agent, "agents:read", Duration::from_secs(20)));
        let long = fake.sign_claims(token_claims(
            agent,
            "agents:read",
            Duration::from_secs(3600),
        ));
        let pem = super::super::Verifier::public_key_pem(fake.public_key_pem()).unwrap();
        let jwks = super::super::Verifier::jwks(&fake.base_url()).unwrap();
        for builder in [pem, jwks] {
            let verifier = builder.max_age(Duration::from_secs(60)).build().unwrap();
            let started = super::super::cache::now();
            for token in [&short, &long] {
                assert!(verifier.verify(token).await.is_ok());
                let last = if token.ends_with('A') { "B" } else { "A" };
                let bad = format!("{}{last}", &token[..token.len() - 1]);
                assert!(verifier.verify(&bad).await.is_err());
            }
            let snapshot = verifier.cache().snapshot();
            assert_eq!(snapshot.len(), 2, "{verifier:?}: only the good tokens");
            for (token, bound) in [(&short, 20), (&long, 60)] {
                let (_, entry) = snapshot
                    .iter()
                    .find(|(key, _)| *key == verifier.cache().key_of(token.as_bytes()))
                    .expect("kept under its hash");
                // From before the verification: allow the time it took.
                let fresh = entry.fresh_until.saturating_duration_since(started);
                let limit = Duration::from_secs(bound) + Duration::from_secs(2);
                assert!(
                    fresh > Duration::from_secs(bound - 5) && fresh <= limit,
                    "fresh for {fresh:?}, bound {bound} s"
                );
                assert!(matches!(entry.verdict, Verdict::Active(_)));
            }
            let dump = format!("{snapshot:?}");
            assert!(!dump.contains(short.split('.').nth(2).unwrap()));
        }
    }

    /// Review 2: `max_age(Duration::ZERO)` "keeps no verdict": the local
    /// modes kept each verified token's verdict (stale at once) anyway,
    /// each taking a slot.
    #[tokio::test]
    async fn a_max_age_of_zero_keeps_no_local_verdict() {
        use crate::testing::{AgentSeed, token_claims};
        use std::time::Duration;
        let fake = FakeAgentIdp::builder().oidc(true).start().await.unwrap();
        let agent = fake.seed_agent(AgentSeed::new().scopes(["agents:read"]));
        let pem = super::super::Verifier::public_key_pem(fake.public_key_pem()).unwrap();
        let jwks = super::super::Verifier::jwks(&fake.base_url()).unwrap();
        for builder in [pem, jwks] {
            let verifier = builder.max_age(Duration::ZERO).build().unwrap();
            for _ in 0..3 {
                let token =
                    fake.sign_claims(token_claims(agent, "agents:read", Duration::from_secs(600)));
                assert!(verifier.verify(&token).await.is_ok());
                assert!(verifier.verify(&token).await.is_ok());
            }
            let held = verifier.cache().snapshot().len();
            assert_eq!(held, 0, "{verifier:?}: {held} verdicts kept");
        }
    }
}
