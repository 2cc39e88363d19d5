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
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;

use futures::StreamExt;
use secrecy::SecretString;

use crate::error::{Error, ErrorKind, Result};
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
        let seam = self.build_seam()?;
        Ok(crate::Client::from_parts(seam, Runtime::start()?))
    }
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The thread a blocking client's calls run on: a current-thread tokio
/// runtime taking jobs from a channel. It stops when the last client using
/// it is dropped.
pub struct Runtime {
    jobs: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("blocking::Runtime")
    }
}

impl Runtime {
    fn start() -> Result<Arc<Runtime>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::config("cannot start the blocking client's runtime").with_source(e)
            })?;
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let thread = thread::Builder::new()
            .name("sentryagent-idp".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
                // Tasks still pending (a background token refresh) are
                // cancelled when the runtime drops, here on its own thread.
            })
            .map_err(|e| {
                Error::config("cannot start the blocking client's thread").with_source(e)
            })?;
        Ok(Arc::new(Runtime {
            jobs: Some(jobs),
            thread: Some(thread),
        }))
    }

    /// Runs `future` on the runtime thread and blocks until it is done.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            let _ = answer.send(future.await);
        });
        let stopped = || {
            Error::new(
                ErrorKind::Config,
                "the blocking client's runtime has stopped",
            )
        };
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answered.recv().map_err(|_| stopped())?
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // The last handle may go away on the runtime thread itself (in a
            // job); that thread then ends on its own.
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
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
