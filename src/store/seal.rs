//! The store key and the sealed entry: what a [`TokenStore`](super::TokenStore)
//! holds, and why it is useless without the client secret.
//!
//! - The key is HMAC-SHA256, keyed with the client secret, of the API URL,
//!   the client id and the scopes, as hex.
//! - The entry is `SAT1 ‖ nonce (12 bytes) ‖ AES-256-GCM(plaintext)`, with
//!   the AEAD key expanded by HKDF-SHA256 from the secret (info: the store
//!   key) and the store key as associated data, so an entry moved to another
//!   key does not open.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::scope::ScopeSet;

const MAGIC: &[u8; 4] = b"SAT1";
const HKDF_SALT: &[u8] = b"sentryagent-idp token store v1";

/// The key of an entry in a [`TokenStore`](super::TokenStore): 64 hex
/// characters, the same for every process of one identity, API and scope
/// set, different for another secret. Safe to use as a file name or a
/// Redis key; it reveals nothing of what it was made from.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    /// The key of the entry for these credentials: the API root (e.g.
    /// `https://idp.example.com/api/v1`), the client id, the requested
    /// scopes and the secret. To find or evict an entry by hand.
    pub fn derive(
        api_url: &str,
        client_id: &str,
        scopes: &ScopeSet,
        secret: &SecretString,
    ) -> StoreKey {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
        let mut context = hmac::Context::with_key(&key);
        for part in [api_url, client_id, &scopes.to_wire()] {
            context.update(part.as_bytes());
            context.update(&[0]);
        }
        StoreKey(hex(context.sign().as_ref()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.0)
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What a sealed entry holds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The access token.
    #[serde(rename = "t")]
    pub token: String,
    /// The granted scopes, space-separated.
    #[serde(rename = "s")]
    pub scopes: String,
    /// Issued, Unix milliseconds (wall clock of the process that fetched it).
    #[serde(rename = "i")]
    pub issued_ms: u64,
    /// Expires, Unix milliseconds.
    #[serde(rename = "e")]
    pub expires_ms: u64,
}

impl Entry {
    /// The token's remaining life at `now`, and its whole lifetime.
    pub(crate) fn remaining(&self, now: SystemTime) -> (Duration, Duration) {
        let now_ms = unix_ms(now);
        (
            Duration::from_millis(self.expires_ms.saturating_sub(now_ms)),
            Duration::from_millis(self.expires_ms.saturating_sub(self.issued_ms)),
        )
    }
}

/// `t` as Unix milliseconds (0 before the epoch).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seals and opens the entries of one store key.
pub(crate) struct Sealer {
    key: LessSafeKey,
    aad: StoreKey,
}

impl Sealer {
    pub(crate) fn new(secret: &SecretString, key: &StoreKey) -> Option<Sealer> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT)
            .extract(secret.expose_secret().as_bytes());
        let info = [key.as_str().as_bytes()];
        let okm = prk.expand(&info, &AES_256_GCM).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            aad: key.clone(),
        })
    }

    /// `entry`, sealed; `None` if the system's random source failed.
    pub(crate) fn seal(&self, entry: &Entry) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).ok()?;
        let mut sealed = Zeroizing::new(serde_json::to_vec(entry).ok()?);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad.as_str().as_bytes()),
                &mut *sealed,
            )
            .ok()?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// The entry in `bytes`, or `None` if they are not one sealed for this
    /// key with this secret (tampered, truncated, another format).
    pub(crate) fn open(&self, bytes: &[u8]) -> Option<Entry> {
        let rest = bytes.strip_prefix(MAGIC)?;
        if rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.aad.as_str().as_bytes()), &mut buffer)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> (SecretString, StoreKey) {
        let secret = SecretString::from(secret);
        let key = StoreKey::derive(
            "https://idp.example.com/api/v1",
            "agent-1",
            &ScopeSet::documented(),
            &secret,
        );
        (secret, key)
    }

    fn entry() -> Entry {
        Entry {
            token: "eyJ.the-token.sig".into(),
            scopes: "agents:read".into(),
            issued_ms: 1_000,
            expires_ms: 3_601_000,
        }
    }

    #[test]
    fn an_entry_opens_with_its_secret_and_key_only() {
        let (secret, store_key) = key("sk_live_one");
        let sealer = Sealer::new(&secret, &store_key).unwrap();
        let sealed = sealer.seal(&entry()).unwrap();
        assert_eq!(sealer.open(&sealed).unwrap().token, "eyJ.the-token.sig");
        // The token is not readable in the sealed bytes.
        assert!(!sealed.windows(9).any(|w| w == b"the-token"));
        // Another secret, another key: it does not open.
        let (other, other_key) = key("sk_live_two");
        assert_ne!(store_key, other_key);
        assert!(
            Sealer::new(&other, &store_key)
                .unwrap()
                .open(&sealed)
                .is_none()
        );
        // The same secret under another key (an entry moved) does not open.
        assert!(
            Sealer::new(&secret, &other_key)
                .unwrap()
                .open(&sealed)
                .is_none()
        );
    }

    #[test]
    fn a_changed_byte_anywhere_makes_the_entry_unreadable() {
        let (secret, store_key) = key("sk_live_one");
        let sealer = Sealer::new(&secret, &store_key).unwrap();
        let sealed = sealer.seal(&entry()).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(sealer.open(&bad).is_none(), "byte {i}");
        }
        assert!(sealer.open(&sealed[..sealed.len() - 1]).is_none());
        assert!(sealer.open(b"").is_none());
    }

    #[test]
    fn the_key_depends_on_every_part() {
        let secret = SecretString::from("s");
        let scopes = ScopeSet::documented();
        let base = StoreKey::derive("u", "c", &scopes, &secret);
        assert_eq!(base, StoreKey::derive("u", "c", &scopes, &secret));
        assert_ne!(base, StoreKey::derive("u2", "c", &scopes, &secret));
        assert_ne!(base, StoreKey::derive("u", "c2", &scopes, &secret));
        let fewer = ScopeSet::parse("agents:read");
        assert_ne!(base, StoreKey::derive("u", "c", &fewer, &secret));
        assert_eq!(base.as_str().len(), 64);
        assert!(base.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
