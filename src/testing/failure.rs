//! Failures a test can inject with [`FakeAgentIdp::fail_next`].
//!
//! [`FakeAgentIdp::fail_next`]: super::FakeAgentIdp::fail_next

use std::time::Duration;

/// How the fake answers a request it was told to fail.
///
/// Queued per operation with [`FakeAgentIdp::fail_next`]; each request of
/// that operation takes the next queued failure, and requests beyond the queue
/// are served normally. Injected failures happen after the configured latency
/// and before rate limiting and authentication.
///
/// ```
/// use std::time::Duration;
/// use sentryagent_idp::Operation;
/// use sentryagent_idp::testing::{FakeAgentIdp, Failure};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let fake = FakeAgentIdp::start().await?;
/// fake.fail_next(Operation::GetAgent, Failure::Status(503), 2);
/// fake.fail_next(Operation::IssueToken, Failure::DropConnection, 1);
/// fake.fail_next(Operation::ListAgents, Failure::RateLimited { retry_after: Duration::ZERO }, 1);
/// # Ok(())
/// # }
/// ```
///
/// [`FakeAgentIdp::fail_next`]: super::FakeAgentIdp::fail_next
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// Answer with this status (200–599). From 400 on the body is the error
    /// the status stands for: the API envelope with a code after the status
    /// (`503` → `SERVICE_UNAVAILABLE`, `429` → `RATE_LIMIT_EXCEEDED` plus
    /// `Retry-After: 1`, …), or on `issue_token` the OAuth body for 400, 401
    /// and 403. Below 400 the body is empty.
    Status(u16),
    /// Answer `429 RATE_LIMIT_EXCEEDED` with this `Retry-After`, in whole
    /// seconds rounded up.
    RateLimited {
        /// The wait the `Retry-After` header announces.
        retry_after: Duration,
    },
    /// Wait this long, then serve the request normally (for timeouts).
    Delay(Duration),
    /// Read the request, then close the TCP connection without any response.
    DropConnection,
    /// Serve the request (a write is applied), then close the TCP
    /// connection instead of sending the answer: the client cannot know
    /// what happened, the case behind
    /// [`ErrorKind::OutcomeUnknown`](crate::ErrorKind::OutcomeUnknown).
    DropAnswer,
    /// Wait this long, then serve the request (a write is applied) on a task
    /// of its own, which the client hanging up does not cancel: the server
    /// finishes the work after the client gave up, as a Node server does.
    ///
    /// Pair it with a client timeout shorter than the wait to make "the
    /// attempt timed out, and the server applied it later" happen: the
    /// client's error comes first, the write lands `wait` after the request
    /// arrived. A client still waiting gets the answer as usual.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sentryagent_idp::Operation;
    /// use sentryagent_idp::testing::{FakeAgentIdp, Failure};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let fake = FakeAgentIdp::start().await?;
    /// // The next update is applied 2 s after it arrives, whoever still waits.
    /// fake.fail_next(Operation::UpdateAgent, Failure::FinishLate(Duration::from_secs(2)), 1);
    /// # Ok(())
    /// # }
    /// ```
    FinishLate(Duration),
}
