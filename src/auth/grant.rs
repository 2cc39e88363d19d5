//! The client-credentials grant at `POST /token`, through the token
//! endpoint's seam; narrowing it to fewer scopes, and proving a new
//! credential with it.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::SecretSource;
use super::shared::{Grant, SharedTokens};
use super::source::BoxFetch;
use crate::access_token::AccessToken;
use crate::error::{Error, Result};
use crate::operation::Operation;
use crate::raw;
use crate::scope::ScopeSet;
use crate::seam::Seam;
use crate::secret::WireSecret;

/// The lifetime a token response without `expires_in` is given: the
/// documented default, 3600 s.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The lifetime a token answered with an `expires_in` of 0 or less is given
/// (10 s): taken at its word, it would cost a token request per call. If the
/// server meant it, the token is refused with a 401, which refreshes it and
/// replays the call once.
const NON_POSITIVE_LIFETIME: Duration = Duration::from_secs(10);

/// The client-credentials grant at `POST /token`, through the token
/// endpoint's seam.
pub(crate) struct ClientCredentials {
    seam: Arc<Seam>,
    client_id: String,
    /// Shared with the clients narrowed from this one, so a new secret
    /// reaches them all.
    client_secret: Arc<RwLock<Secret>>,
    /// Where the secret is read again when it may have changed.
    secret_source: Option<SecretSource>,
    scopes: ScopeSet,
    /// The shared second level beneath the in-memory cache.
    shared: Option<Arc<dyn SharedTokens>>,
}

/// The secret in use, and whether an explicit one overrides the source.
struct Secret {
    current: SecretString,
    /// Set by [`ClientCredentials::set_explicit_secret`]: what the source
    /// held then. While the source holds the same, the explicit secret wins
    /// (the source is stale: a `rotate` killed what it holds); once it holds
    /// something else, the source wins again.
    source_then: Option<SecretString>,
}

/// How long reading the secret source again may take before the last
/// secret is used (5 s): the read runs off the runtime's workers, and a
/// hung file (a FIFO, a dead NFS mount) must not hold a token fetch.
const SOURCE_READ_TIMEOUT: Duration = Duration::from_secs(5);

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &crate::secret::REDACTED)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl ClientCredentials {
    pub(crate) fn new(
        seam: Arc<Seam>,
        client_id: String,
        secret: SecretString,
        scopes: ScopeSet,
    ) -> Self {
        Self {
            seam,
            client_id,
            client_secret: Arc::new(RwLock::new(Secret {
                current: secret,
                source_then: None,
            })),
            secret_source: None,
            scopes,
            shared: None,
        }
    }

    /// Reads the secret again from `source` when it may have changed.
    pub(crate) fn with_secret_source(mut self, source: SecretSource) -> Self {
        self.secret_source = Some(source);
        self
    }

    /// Shares tokens through `shared` (the token store).
    pub(crate) fn with_shared(mut self, shared: Option<Arc<dyn SharedTokens>>) -> Self {
        self.shared = shared;
        self
    }

    /// The shared level beneath the cache, if any.
    #[allow(
        dead_code,
        reason = "read by the add-ons that plug in here (feature store)"
    )]
    pub(crate) fn shared(&self) -> Option<&dyn SharedTokens> {
        self.shared.as_deref()
    }

    /// The same credentials, asking for `scopes` only: a subset of those
    /// these credentials hold (what they request, less what the server
    /// did not grant, when that is known).
    pub(crate) fn narrowed(&self, granted: Option<&ScopeSet>, scopes: ScopeSet) -> Result<Self> {
        let held: ScopeSet = match granted {
            Some(granted) => self
                .scopes
                .iter()
                .filter(|s| granted.contains(s))
                .cloned()
                .collect(),
            None => self.scopes.clone(),
        };
        let extra = held.missing_from(&scopes);
        if !extra.is_empty() {
            return Err(Error::invalid_input(format!(
                "cannot narrow to scopes this client does not hold: {extra}"
            )));
        }
        if scopes.is_empty() {
            return Err(Error::invalid_input("cannot narrow to no scopes"));
        }
        Ok(Self {
            seam: Arc::clone(&self.seam),
            client_id: self.client_id.clone(),
            client_secret: Arc::clone(&self.client_secret),
            secret_source: self.secret_source.clone(),
            scopes,
            shared: self.shared.clone(),
        })
    }

    /// Uses `secret` from now on (`Client::set_client_secret`): it wins over
    /// the secret source until the source's content changes.
    pub(crate) fn set_explicit_secret(&self, secret: SecretString) {
        let source_then = self.secret_source.as_ref().and_then(|s| s.read().ok());
        *self.lock_secret() = Secret {
            current: secret,
            source_then,
        };
    }

    /// Takes what the source holds now, unless an explicit secret set while
    /// it held the same overrides it; returns the secret in use.
    fn take_from_source(&self, read: SecretString) -> SecretString {
        let mut state = self.lock_secret();
        let stale = state
            .source_then
            .as_ref()
            .is_some_and(|then| then.expose_secret() == read.expose_secret());
        if !stale {
            state.current = read;
            state.source_then = None;
        }
        state.current.clone()
    }

    fn lock_secret(&self) -> std::sync::RwLockWriteGuard<'_, Secret> {
        self.client_secret
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn secret(&self) -> SecretString {
        self.client_secret
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .current
            .clone()
    }

    /// Reads the secret source off the runtime's workers (a file read may
    /// block), bounded by [`SOURCE_READ_TIMEOUT`].
    async fn read_source(source: &SecretSource) -> Result<SecretString> {
        let source = source.clone();
        match tokio::time::timeout(
            SOURCE_READ_TIMEOUT,
            tokio::task::spawn_blocking(move || source.read()),
        )
        .await
        {
            Ok(Ok(read)) => read,
            Ok(Err(_)) => Err(Error::config(
                "reading the client secret failed (it panicked)",
            )),
            Err(_) => Err(Error::config(format!(
                "reading the client secret took longer than {SOURCE_READ_TIMEOUT:?}"
            ))),
        }
    }

    /// A token: from the store when there is one, else the grant; after an
    /// `invalid_client`, once more if the secret source now gives another
    /// secret (a rotation the replicas pick up by themselves).
    async fn fetch(&self) -> Result<AccessToken> {
        if let Some(source) = self
            .secret_source
            .as_ref()
            .filter(|s| s.read_before_each_fetch())
        {
            match Self::read_source(source).await {
                Ok(read) => {
                    self.take_from_source(read);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the client secret again; using the last one")
                }
            }
        }
        let secret = self.secret();
        match self.fetch_with(&secret).await {
            Err(e) if e.code() == Some("invalid_client") => match self.reread(&secret).await {
                Some(new) => self.fetch_with(&new).await,
                None => Err(e),
            },
            other => other,
        }
    }

    /// The secret from the source, if it gives one other than `old` (and
    /// not the stale one an explicit secret overrides).
    async fn reread(&self, old: &SecretString) -> Option<SecretString> {
        let read = Self::read_source(self.secret_source.as_ref()?).await.ok()?;
        let new = self.take_from_source(read);
        (new.expose_secret() != old.expose_secret()).then_some(new)
    }

    async fn fetch_with(&self, secret: &SecretString) -> Result<AccessToken> {
        let Some(shared) = &self.shared else {
            return self.grant(secret).await;
        };
        let grant = Grant {
            client_id: &self.client_id,
            scopes: &self.scopes,
            secret,
        };
        shared.fetch(grant, Box::pin(self.grant(secret))).await
    }

    /// The client-credentials grant itself.
    async fn grant(&self, secret: &SecretString) -> Result<AccessToken> {
        let form = raw::types::TokenRequest {
            grant_type: raw::types::TokenRequestGrantType::ClientCredentials,
            client_id: Some(self.client_id.clone()),
            client_secret: Some(WireSecret::new(secret)),
            // No scopes asked (a credential's proof): all the agent is allowed.
            scope: (!self.scopes.is_empty()).then(|| self.scopes.clone()),
        };
        let response = self
            .seam
            .call(Operation::IssueToken, form, |raw, form| async move {
                raw.issue_token(&form).await
            })
            .await?;
        let lifetime = response.expires_in.map_or(DEFAULT_TOKEN_LIFETIME, |s| {
            u64::try_from(s)
                .ok()
                .filter(|&s| s > 0)
                .map_or(NON_POSITIVE_LIFETIME, Duration::from_secs)
        });
        // RFC 6749 §5.1: no `scope` means the requested scope was granted.
        let granted = response.scope.unwrap_or_else(|| self.scopes.clone());
        Ok(AccessToken::new(SecretString::from(response.access_token))
            .expires_in(lifetime)
            .with_scopes(granted))
    }
}

impl ClientCredentials {
    /// A token (boxed, for the cache).
    pub(crate) fn fetch_boxed(&self) -> BoxFetch<'_> {
        Box::pin(self.fetch())
    }

    /// The server refused `token`: the shared level must not hand it out again.
    pub(crate) fn refused(&self, token: &AccessToken) {
        if let Some(shared) = &self.shared {
            shared.refused(token);
        }
    }
}

/// A token request with other credentials through `endpoint` (no scope
/// asked: all the agent is allowed): the proof that a new credential works.
/// Its token is dropped.
pub(crate) async fn prove(endpoint: Seam, client_id: String, secret: SecretString) -> Result<()> {
    let credentials =
        ClientCredentials::new(Arc::new(endpoint), client_id, secret, ScopeSet::new());
    credentials.grant(&credentials.secret()).await.map(drop)
}
