//! RS256 access tokens shaped like the real AgentIdP's: header
//! `{"alg":"RS256","typ":"JWT"}` (plus the key's `kid` when the fake serves
//! OIDC discovery), claims `sub`, `client_id`, `scope`, `jti`,
//! `iat`, `exp` and nothing else.

use std::collections::HashSet;
use std::fmt;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::signing::{KeyError, KeyRing, SigningKey};

/// The claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The agent's id.
    pub sub: String,
    /// Same as `sub`.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// Unique token id, the revocation key.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

impl Claims {
    /// The granted scopes.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    /// Whether the token is past its expiry at `now` (Unix seconds).
    pub(crate) fn expired_at(&self, now: i64) -> bool {
        now >= self.exp
    }
}

/// Signs and verifies the fake's tokens with its key ring.
pub(crate) struct TokenKeys {
    ring: Mutex<KeyRing>,
    validation: Validation,
    /// Whether headers name their key (`kid`), as an OIDC server's do.
    with_kid: bool,
    /// Keys made so far, for the next `kid`.
    made: AtomicU32,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(test keys)")
    }
}

impl TokenKeys {
    /// Starts with the embedded test key, `kid` `fake-key-1`; `with_kid`
    /// puts that `kid` in every header.
    pub(crate) fn new(with_kid: bool) -> Result<TokenKeys, KeyError> {
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry, revocation and the agent's status are checked by the caller,
        // with no leeway; here only the signature and the claim shape count.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Ok(TokenKeys {
            ring: Mutex::new(KeyRing::new(SigningKey::embedded(kid(1))?)),
            validation,
            with_kid,
            made: AtomicU32::new(1),
        })
    }

    fn ring(&self) -> MutexGuard<'_, KeyRing> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Signs `claims` into a compact JWT with the current key.
    pub(crate) fn sign<T: Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let key = self.ring().current();
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        if self.with_kid {
            header.kid = Some(key.kid.clone());
        }
        jsonwebtoken::encode(&header, claims, &key.encoding)
    }

    /// The claims of `token` if it carries the valid signature of a live key,
    /// whether or not it has expired.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        // Verified outside the lock: RSA is slow next to a lookup.
        let live = self.ring().live();
        live.iter().find_map(|key| {
            jsonwebtoken::decode::<Claims>(token.trim(), &key.decoding, &self.validation)
                .ok()
                .map(|data| data.claims)
        })
    }

    /// A new key signs from now on; the old one verifies for `grace` more.
    pub(crate) fn rotate(&self, grace: Duration) -> Result<(), KeyError> {
        // Generated outside the lock (tens of milliseconds); the serial keeps
        // concurrent rotations' kids distinct.
        let serial = self.made.fetch_add(1, Ordering::Relaxed) + 1;
        let key = SigningKey::generate(kid(serial))?;
        self.ring().rotate(key, grace);
        Ok(())
    }

    /// The SPKI PEM of the current key.
    pub(crate) fn public_pem(&self) -> String {
        self.ring().current().public_pem.clone()
    }

    /// The live keys as JWKs, the current one first.
    pub(crate) fn jwks(&self) -> Vec<Jwk> {
        self.ring()
            .live()
            .iter()
            .map(|key| key.jwk.clone())
            .collect()
    }
}

fn kid(serial: u32) -> String {
    format!("fake-key-{serial}")
}
