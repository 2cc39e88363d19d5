//! [`Verifier`]: the mode chosen, the cache, and `verify`.

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use jsonwebtoken::{DecodingKey, Validation};

use super::budget::MissBudget;
use super::cache::{TokenKey, Verdict, VerdictCache, after};
use super::error::VerifyError;
use super::header::{bearer_token, is_b64token};
use super::introspect::{self, Ask};
use super::jwks::Jwks;
use super::jwt;
use super::principal::AgentPrincipal;
use super::settings::Settings;
use super::shape;
use crate::client::Client;

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
    validation: Validation,
    /// Introspections of tokens not known active (introspection mode).
    misses: MissBudget,
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
            .finish()
    }
}

impl Verifier {
    pub(crate) fn from_parts(check: Check, settings: Settings) -> Verifier {
        let validation = jwt::validation(
            settings.leeway,
            settings.issuer.as_deref(),
            settings.audience.as_deref(),
        );
        Verifier {
            inner: Arc::new(Inner {
                check,
                cache: VerdictCache::new(settings.capacity),
                misses: MissBudget::new(settings.misses.0, settings.misses.1),
                settings,
                validation,
            }),
        }
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
        // bearer_token checked the b64token syntax already.
        self.decide(bearer_token(headers)?).await
    }

    /// The principal of `token`, or why it is refused:
    /// [`InvalidToken`](VerifyError::InvalidToken), or
    /// [`Unavailable`](VerifyError::Unavailable) when AgentIdP cannot tell.
    ///
    /// Scopes are not checked here: check them on every request, after
    /// this (with [`RequireScopes`](super::RequireScopes) or
    /// [`AgentPrincipal::has_all`]).
    pub async fn verify(&self, token: &str) -> Result<AgentPrincipal, VerifyError> {
        if !is_b64token(token.as_bytes()) {
            return Err(VerifyError::InvalidToken);
        }
        self.decide(token).await
    }

    /// [`verify`](Self::verify) of a token known to be a b64token, answered
    /// by the verifier's deadline (each remote call is bounded by it too, so
    /// that a timed-out introspection can still be served by the grace).
    async fn decide(&self, token: &str) -> Result<AgentPrincipal, VerifyError> {
        let start = tokio::time::Instant::now();
        let deadline = start
            .checked_add(self.inner.settings.deadline)
            .unwrap_or_else(|| after(start.into_std(), self.inner.settings.deadline).into());
        tokio::time::timeout_at(deadline, self.decide_by(token, deadline))
            .await
            .unwrap_or(Err(VerifyError::Unavailable {
                retry_after: introspect::DEFAULT_RETRY_AFTER,
            }))
    }

    async fn decide_by(
        &self,
        token: &str,
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
                if !shape::could_be_live_token(token, now, leeway) {
                    return Err(VerifyError::InvalidToken);
                }
                self.introspected(client, token, Some(&i.misses), deadline)
                    .await
            }
            Check::Local { keys, first_sight } => {
                let principal = match keys {
                    Keys::Pem(key) => jwt::verify(token, key, &i.validation)?,
                    Keys::Jwks(jwks) => {
                        let kid = jwt::key_id(token)?;
                        let set = jwks.keys_for(kid.as_deref(), deadline).await?;
                        let key = set.key_for(kid.as_deref(), jwt::unverified_iat(token))?;
                        jwt::verify(token, key, &i.validation)?
                    }
                };
                match first_sight {
                    None => Ok(principal),
                    // Signed by AgentIdP: not charged to the miss budget.
                    Some(client) => self.introspected(client, token, None, deadline).await,
                }
            }
        }
    }

    /// The cached verdict on `token`, introspecting when there is none fresh.
    async fn introspected(
        &self,
        client: &Client,
        token: &str,
        budget: Option<&MissBudget>,
        deadline: tokio::time::Instant,
    ) -> Result<AgentPrincipal, VerifyError> {
        let i = &*self.inner;
        let entry = i
            .cache
            .get_or_lookup(
                TokenKey::of(token),
                |stale| introspect::refuse_unknown(budget, stale),
                |stale| {
                    let ask = Ask {
                        client,
                        settings: &i.settings,
                        budget,
                        deadline,
                    };
                    introspect::lookup(ask, token, stale)
                },
            )
            .await;
        match entry.verdict {
            Verdict::Active(principal) => Ok(AgentPrincipal::clone(&principal)),
            Verdict::Inactive => Err(VerifyError::InvalidToken),
            Verdict::Unavailable { retry_after, .. } => {
                Err(VerifyError::Unavailable { retry_after })
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn cache(&self) -> &VerdictCache {
        &self.inner.cache
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
            assert!(snapshot.iter().any(|(key, _)| *key == TokenKey::of(token)));
        }
        for (key, _) in &snapshot {
            assert_eq!(std::mem::size_of_val(key), 32, "a SHA-256, nothing else");
        }
    }
}
