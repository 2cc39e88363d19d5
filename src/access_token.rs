//! [`AccessToken`]: a bearer token and what the cache needs to know of it.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};
use crate::operation::{Allowed, Operation};
use crate::scope::ScopeSet;

/// An access token with what the cache needs to know of it.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Instant>,
    scopes: Option<ScopeSet>,
    /// The operations `scopes` allow, computed once.
    allowed: Allowed,
    /// `Bearer <secret>`, built once (marked sensitive); `None` if the token
    /// holds characters a header cannot carry.
    bearer: Option<HeaderValue>,
}

impl AccessToken {
    /// A token that never expires and whose scopes are unknown.
    pub fn new(secret: impl Into<SecretString>) -> Self {
        let secret = secret.into();
        let bearer = HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Self {
            secret,
            expires_at: None,
            scopes: None,
            allowed: Allowed::default(),
            bearer,
        }
    }

    /// Sets the expiry to `lifetime` from now, measured on this machine's
    /// monotonic clock (so a skewed server clock cannot matter). A lifetime
    /// too long to represent means no expiry.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_at = Instant::now().checked_add(lifetime);
        self
    }

    /// Records the scopes the server granted, so calls needing another scope
    /// are refused before they are sent.
    pub fn with_scopes(mut self, scopes: ScopeSet) -> Self {
        self.allowed = Allowed::by(&scopes);
        self.scopes = Some(scopes);
        self
    }

    /// Whether the token may call `op`: its scopes allow it, or they are
    /// unknown (the server decides).
    pub(crate) fn allows(&self, op: Operation) -> bool {
        self.scopes.is_none() || self.allowed.contains(op)
    }

    /// The token itself.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the token expires, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The scopes granted, if known.
    pub fn scopes(&self) -> Option<&ScopeSet> {
        self.scopes.as_ref()
    }

    pub(crate) fn bearer_header(&self) -> Result<HeaderValue> {
        self.bearer.clone().ok_or_else(|| {
            Error::invalid_input("the access token holds characters a header cannot carry")
        })
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &crate::secret::REDACTED)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}
