//! The fake's signing keys: the current one, and those retired by
//! [`rotate_signing_key`](super::FakeAgentIdp::rotate_signing_key) that still
//! verify until their grace period ends.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

// Tokio's clock, not `std`'s: a test on a paused clock steps through a
// rotation's grace with `tokio::time::advance` (the same instant otherwise).
use tokio::time::Instant;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::key::{TEST_ONLY_PRIVATE_KEY_PEM, TEST_ONLY_PUBLIC_KEY_PEM};

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// aws-lc could not generate or encode the RSA key.
    #[error("RSA key generation failed")]
    Generate,
    /// jsonwebtoken refused the key.
    #[error("the key was refused: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// One RS256 key pair and how the JWKS publishes it.
pub(crate) struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub public_pem: String,
    pub jwk: Jwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The embedded test key (see `key.rs`), the fake's first key.
    pub(crate) fn embedded(kid: String) -> Result<SigningKey, KeyError> {
        SigningKey::from_pem(kid, TEST_ONLY_PRIVATE_KEY_PEM, TEST_ONLY_PUBLIC_KEY_PEM)
    }

    /// A fresh 2048-bit key. aws-lc generates it in C, so it takes tens of
    /// milliseconds even in a debug build (pure-Rust generation takes
    /// seconds there), and every rotation gets a key of its own.
    pub(crate) fn generate(kid: String) -> Result<SigningKey, KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let private: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| KeyError::Generate)?;
        let public: PublicKeyX509Der<'static> =
            pair.public_key().as_der().map_err(|_| KeyError::Generate)?;
        SigningKey::from_pem(
            kid,
            &pem("PRIVATE KEY", private.as_ref()),
            &pem("PUBLIC KEY", public.as_ref()),
        )
    }

    fn from_pem(kid: String, private: &str, public: &str) -> Result<SigningKey, KeyError> {
        let encoding = EncodingKey::from_rsa_pem(private.as_bytes())?;
        let decoding = DecodingKey::from_rsa_pem(public.as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::RS256)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            kid,
            encoding,
            decoding,
            public_pem: public.to_owned(),
            jwk,
        })
    }
}

/// `der` as PEM: base64 in lines of 64 characters between the labels.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The current key and the retired ones still in their grace period.
#[derive(Debug)]
pub(crate) struct KeyRing {
    current: Arc<SigningKey>,
    /// Retired keys and when each stops verifying (`None`: a grace too long
    /// for `Instant`, i.e. never within the fake's lifetime).
    retired: Vec<(Arc<SigningKey>, Option<Instant>)>,
}

impl KeyRing {
    /// A ring holding only `key`.
    pub(crate) fn new(key: SigningKey) -> KeyRing {
        KeyRing {
            current: Arc::new(key),
            retired: Vec::new(),
        }
    }

    /// The key that signs now.
    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// Makes `key` current; the old one verifies for `grace` more.
    pub(crate) fn rotate(&mut self, key: SigningKey, grace: Duration) {
        let old = std::mem::replace(&mut self.current, Arc::new(key));
        self.retired.push((old, Instant::now().checked_add(grace)));
    }

    /// The keys that verify now, the current one first. Drops retired keys
    /// whose grace has ended.
    pub(crate) fn live(&mut self) -> Vec<Arc<SigningKey>> {
        let now = Instant::now();
        self.retired
            .retain(|(_, until)| until.is_none_or(|until| now < until));
        std::iter::once(Arc::clone(&self.current))
            .chain(self.retired.iter().map(|(key, _)| Arc::clone(key)))
            .collect()
    }
}
