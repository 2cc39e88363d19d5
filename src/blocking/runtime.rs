//! The thread a blocking client's calls run on. Not public API: the type is
//! `pub` only so the sealed flavor trait can name it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;

use crate::error::{Error, ErrorKind, Result};

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The thread a blocking client's calls run on: a current-thread tokio
/// runtime taking jobs from a channel. It stops when the last client using
/// it is dropped.
#[doc(hidden)]
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
    pub(crate) fn start() -> Result<Arc<Runtime>> {
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
