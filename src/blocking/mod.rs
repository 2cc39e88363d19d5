//! The blocking client: the async client with the [`Blocking`] flavor, whose
//! `.send()` blocks. Like `reqwest::blocking`, its calls run on a small
//! runtime on a thread of its own, so it works in plain threads, inside
//! `tokio::task::spawn_blocking`, and may be dropped anywhere.
//!
//! A blocking client is built like the async one, with
//! [`ClientBuilder::blocking`](crate::ClientBuilder::blocking) before
//! `.build()`:
//!
//! ```no_run
//! use sentryagent_idp::ClientBuilder;
//!
//! # fn main() -> sentryagent_idp::Result<()> {
//! let client = ClientBuilder::from_env()?.blocking().build()?;
//! for agent in client.agents().list().limit(50).iter() {
//!     println!("{}", agent?.email);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Calling it from async code blocks that task's thread; use
//! [`crate::Client`] there.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures::StreamExt;
use secrecy::SecretString;

use crate::error::Result;
use crate::flavor::{Flavor, private};
use crate::scope::ScopeSet;

/// The blocking flavor: `.send()` blocks until the answer is in.
#[derive(Clone, Copy, Debug)]
pub enum Blocking {}

impl Flavor for Blocking {}

impl private::Sealed for Blocking {
    type Runtime = Arc<Runtime>;
}

/// The blocking AgentIdP client; see [`crate::Client`] for its methods.
pub type Client = crate::Client<Blocking>;

/// The builder of the blocking client.
pub type ClientBuilder = crate::ClientBuilder<Blocking>;

mod runtime;

use runtime::Runtime;

impl crate::Client<Blocking> {
    /// The current access token, fetching one if needed.
    pub fn access_token(&self) -> Result<SecretString> {
        let token = self.token();
        self.runtime()
            .block_on(async move { Ok(token.await?.secret().clone()) })
    }

    /// The scopes granted to the current token, if the source says.
    pub fn granted_scopes(&self) -> Result<Option<ScopeSet>> {
        let token = self.token();
        self.runtime()
            .block_on(async move { Ok(token.await?.scopes().cloned()) })
    }
}

impl crate::ClientBuilder<Blocking> {
    /// Validates the settings and builds the blocking client, starting its
    /// runtime thread.
    pub fn build(self) -> Result<Client> {
        let parts = self.build_parts()?;
        Ok(crate::Client::from_parts(parts, Runtime::start()?))
    }
}

/// An iterator over every item of a paginated listing, or the events of a
/// follow; from `.iter()` or `.follow()` on a blocking request.
pub struct Iter<T> {
    runtime: Arc<Runtime>,
    /// `None` once the listing ended.
    pages: Option<Pin<Box<dyn futures::Stream<Item = Result<T>> + Send>>>,
}

impl<T> fmt::Debug for Iter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<T> Iter<T> {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        pages: impl futures::Stream<Item = Result<T>> + Send + 'static,
    ) -> Self {
        Self {
            runtime,
            pages: Some(Box::pin(pages)),
        }
    }
}

impl<T: Send + 'static> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut pages = self.pages.take()?;
        let next = self.runtime.block_on(async move {
            let item = pages.next().await;
            Ok((item, pages))
        });
        match next {
            Ok((Some(item), pages)) => {
                // A paginator yields nothing after an error; a follow goes on
                // after one that may pass.
                self.pages = Some(pages);
                Some(item)
            }
            Ok((None, _)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
