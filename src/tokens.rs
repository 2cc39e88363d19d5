//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Issuing tokens is the client's own job: see [`Client::access_token`].

use secrecy::{ExposeSecret, SecretString};

use crate::client::Client;
use crate::error::Result;
use crate::flavor::{Async, Flavor};
use crate::model::Introspection;
use crate::operation::Operation;
use crate::raw;
use crate::secret::WireSecret;

/// Token calls; from [`Client::tokens`].
#[derive(Clone, Debug)]
pub struct Tokens<F: Flavor = Async> {
    client: Client<F>,
}

impl<F: Flavor> Client<F> {
    /// Token introspection and revocation.
    pub fn tokens(&self) -> Tokens<F> {
        Tokens::new(self.clone())
    }
}

impl<F: Flavor> Tokens<F> {
    fn new(client: Client<F>) -> Self {
        Self { client }
    }

    /// Whether `token` is active and, if so, its claims (`tokens:read`). An
    /// expired, revoked or unknown token is `active: false`, not an error.
    pub fn introspect(&self, token: &impl ExposeSecret<str>) -> IntrospectToken<F> {
        IntrospectToken {
            client: self.client.clone(),
            token: SecretString::from(token.expose_secret()),
            by: None,
        }
    }

    /// Revokes `token`; it then introspects as inactive and is refused by the API.
    ///
    /// If it is this client's own token, the client forgets it once the
    /// server confirms: it leaves the token cache and (with a
    /// [token store](crate::store)) the store, and the next call fetches a
    /// new one. Clients narrowed with [`Client::with_scopes`] have tokens
    /// of their own: revoke theirs through them.
    pub fn revoke(&self, token: &impl ExposeSecret<str>) -> RevokeToken<F> {
        RevokeToken {
            client: self.client.clone(),
            token: SecretString::from(token.expose_secret()),
        }
    }
}

/// A `POST /token/introspect` request; from [`Tokens::introspect`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct IntrospectToken<F: Flavor = Async> {
    client: Client<F>,
    token: SecretString,
    /// Ends the call (retries included) by then, if sooner than the
    /// client's total timeout: the verifier's deadline.
    by: Option<tokio::time::Instant>,
}

impl<F: Flavor> IntrospectToken<F> {
    /// Ends the call by `deadline`: a retry that would wait past it is not
    /// made, and the answer that asked for it (a 429) is returned.
    #[cfg(feature = "verify")]
    pub(crate) fn by(mut self, deadline: tokio::time::Instant) -> Self {
        self.by = Some(deadline);
        self
    }

    async fn run(self) -> Result<Introspection> {
        let form = raw::types::TokenForm {
            token: WireSecret::new(&self.token),
        };
        self.client
            .seam()
            .call_by(
                Operation::IntrospectToken,
                form,
                |raw, form| async move { raw.introspect_token(&form).await },
                self.by,
            )
            .await
    }
}

send!(IntrospectToken => Introspection);

/// A `POST /token/revoke` request; from [`Tokens::revoke`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct RevokeToken<F: Flavor = Async> {
    client: Client<F>,
    token: SecretString,
}

impl<F: Flavor> RevokeToken<F> {
    async fn run(self) -> Result<()> {
        let form = raw::types::TokenForm {
            token: WireSecret::new(&self.token),
        };
        self.client
            .seam()
            .call(Operation::RevokeToken, form, |raw, form| async move {
                raw.revoke_token(&form).await
            })
            .await?;
        if let Some(tokens) = self.client.token_cache() {
            tokens.revoked(&self.token).await;
        }
        Ok(())
    }
}

send!(RevokeToken => ());
