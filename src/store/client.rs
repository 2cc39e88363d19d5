//! How a token store and the fleet limiter plug into a client: builder
//! methods that add them as add-ons, and what the client reports of them.

use std::sync::Arc;

use super::TokenStore;
use super::shared::{SharedStore, pending};
use crate::client::{Client, ClientBuilder};
use crate::flavor::Flavor;

impl<F: Flavor> ClientBuilder<F> {
    /// Shares tokens through `store` (feature `store`), beneath the
    /// in-memory cache: processes, restarts and replicas of one identity
    /// share one token. See [`store`](crate::store).
    #[cfg_attr(docsrs, doc(cfg(feature = "store")))]
    pub fn token_store(self, store: impl TokenStore) -> Self {
        let store = pending(store);
        self.add_on(move |client| {
            client.shared = Some(Arc::new(SharedStore::new(
                store,
                client.api_url.to_owned(),
                client.refresh_buffer,
            )));
            Ok(())
        })
    }
}

impl<F: Flavor> Client<F> {
    /// How many token fetches the [token store](crate::store) could not
    /// serve (it failed, was slow, or another process held its lock too
    /// long), so this client asked AgentIdP by itself; `None` without a
    /// store. Shared by the clients narrowed from this one.
    #[cfg_attr(docsrs, doc(cfg(feature = "store")))]
    pub fn token_store_fallbacks(&self) -> Option<u64> {
        let credentials = self.token_cache()?.client_credentials()?;
        Some(credentials.shared()?.fallbacks())
    }
}
