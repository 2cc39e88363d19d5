//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Issuing tokens is the client's own job: see [`Client::access_token`].

use secrecy::ExposeSecret;

use crate::Client;
use crate::error::Result;
use crate::model::Introspection;
use crate::raw;
use crate::secret::Secret;

/// Token calls; from [`Client::tokens`].
#[derive(Clone, Debug)]
pub struct Tokens {
    client: Client,
}

impl Tokens {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Whether `token` is active and, if so, its claims (`tokens:read`). An
    /// expired, revoked or unknown token is `active: false`, not an error.
    pub async fn introspect(&self, token: &impl ExposeSecret<str>) -> Result<Introspection> {
        let form = raw::types::TokenForm {
            token: Secret::new(token.expose_secret()),
        };
        self.client
            .call(self.client.raw().introspect_token().body(form).send())
            .await
    }

    /// Revokes `token`; it then introspects as inactive and is refused by the API.
    pub async fn revoke(&self, token: &impl ExposeSecret<str>) -> Result<()> {
        let form = raw::types::TokenForm {
            token: Secret::new(token.expose_secret()),
        };
        self.client
            .call_unit(self.client.raw().revoke_token().body(form).send())
            .await
    }
}
