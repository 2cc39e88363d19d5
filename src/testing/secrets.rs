//! Client secrets: generation and the stored hash.
//!
//! The real AgentIdP stores a bcrypt hash. The fake stores a salted SHA-256
//! instead: enough to show that the plain secret is never kept, and cheap in
//! debug builds. A fake is not a place for a slow password hash.

use sha2::{Digest, Sha256};

/// The prefix of every client secret.
pub(crate) const SECRET_PREFIX: &str = "sk_live_";

/// A stored secret: a random salt and `SHA-256(salt || secret)`.
#[derive(Clone)]
pub(crate) struct SecretHash {
    salt: [u8; 16],
    digest: [u8; 32],
}

impl SecretHash {
    /// Hashes `secret` with a fresh random salt.
    pub(crate) fn new(secret: &str) -> Result<SecretHash, getrandom::Error> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)?;
        Ok(SecretHash {
            salt,
            digest: digest(&salt, secret),
        })
    }

    /// Whether `candidate` is the secret this hash was made from.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        // Not constant-time: this is a test double, not a server to attack.
        digest(&self.salt, candidate) == self.digest
    }
}

fn digest(salt: &[u8; 16], secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// A new secret: `sk_live_` followed by 64 hex digits (32 random bytes).
pub(crate) fn new_client_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let mut secret = String::with_capacity(SECRET_PREFIX.len() + 64);
    secret.push_str(SECRET_PREFIX);
    for byte in bytes {
        secret.push_str(&format!("{byte:02x}"));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape_and_hash_round_trips() {
        let secret = new_client_secret().unwrap();
        assert_eq!(secret.len(), 8 + 64);
        assert!(secret.starts_with(SECRET_PREFIX));
        assert!(secret[8..].chars().all(|c| c.is_ascii_hexdigit()));
        let hash = SecretHash::new(&secret).unwrap();
        assert!(hash.matches(&secret));
        assert!(!hash.matches("sk_live_00"));
    }
}
