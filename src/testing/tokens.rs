//! RS256 access tokens shaped like the real AgentIdP's: header
//! `{"alg":"RS256","typ":"JWT"}`, claims `sub`, `client_id`, `scope`, `jti`,
//! `iat`, `exp` and nothing else.

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::key::{TEST_ONLY_PRIVATE_KEY_PEM, TEST_ONLY_PUBLIC_KEY_PEM};

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

/// Signs and verifies the fake's tokens with the embedded test key.
pub(crate) struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(test key)")
    }
}

impl TokenKeys {
    /// Loads the embedded test key pair.
    pub(crate) fn load() -> Result<TokenKeys, jsonwebtoken::errors::Error> {
        let encoding = EncodingKey::from_rsa_pem(TEST_ONLY_PRIVATE_KEY_PEM.as_bytes())?;
        let decoding = DecodingKey::from_rsa_pem(TEST_ONLY_PUBLIC_KEY_PEM.as_bytes())?;
        let mut validation = Validation::new(Algorithm::RS256);
        // Expiry, revocation and the agent's status are checked by the caller,
        // with no leeway; here only the signature and the claim shape count.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        Ok(TokenKeys {
            encoding,
            decoding,
            validation,
        })
    }

    /// Signs `claims` into a compact JWT.
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The claims of `token` if it carries this key's valid signature, whether
    /// or not it has expired.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}
