//! Following the audit log: [`Follow`], a stream of events as they arrive.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use uuid::Uuid;

use super::QueryAudit;
use crate::error::{ErrorKind, Result};
use crate::flavor::Flavor;
use crate::model::{AuditEvent, Timestamp};

/// How often [`Follow`] asks for new events unless told otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The longest [`Follow`] waits between polls while the server fails.
pub const MAX_FOLLOW_BACKOFF: Duration = Duration::from_secs(60);

/// New audit events, oldest first, as they arrive; from
/// [`QueryAudit::follow`]. `Unpin`; it never ends by itself.
///
/// It polls `GET /audit` with the query's filters every poll interval,
/// asking only for events at or after the newest one it has seen (the
/// server's clock, not ours), and walks every page of the answer, so that a
/// burst of any size between two polls is delivered whole. An event is
/// delivered once: events sharing the newest timestamp are remembered by id.
///
/// A failure that may pass (a network error, a timeout, a 5xx, a 429) is
/// yielded as an `Err` and the stream goes on after a backoff (doubling from
/// the poll interval up to [`MAX_FOLLOW_BACKOFF`], or the server's
/// `Retry-After`), resuming where it stopped: nothing is lost or repeated.
/// Any other error (refused credentials, a missing scope) is yielded and
/// ends the stream.
pub struct Follow {
    inner: BoxStream<'static, Result<AuditEvent>>,
}

impl fmt::Debug for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Follow").finish_non_exhaustive()
    }
}

impl Stream for Follow {
    type Item = Result<AuditEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Where a follow stands: the newest timestamp delivered and the ids
/// delivered at it.
#[derive(Debug, Default)]
struct Mark {
    newest: Option<Timestamp>,
    at_newest: HashSet<Uuid>,
    /// Events without a timestamp cannot be ordered; their ids are kept so
    /// that each is delivered once.
    undated: HashSet<Uuid>,
}

impl Mark {
    /// Keeps the events not delivered yet, oldest first, and moves the mark.
    fn fresh(&mut self, mut events: Vec<AuditEvent>) -> Vec<AuditEvent> {
        events.retain(|e| match e.timestamp {
            Some(t) => match self.newest {
                Some(newest) if t < newest => false,
                Some(newest) if t == newest => !self.at_newest.contains(&e.event_id),
                _ => true,
            },
            None => !self.undated.contains(&e.event_id),
        });
        // Oldest first; a stable sort keeps the server's order among equals.
        events.reverse();
        events.sort_by_key(|e| e.timestamp);
        for e in &events {
            match e.timestamp {
                Some(t) if self.newest.is_none_or(|n| t > n) => {
                    self.newest = Some(t);
                    self.at_newest.clear();
                    self.at_newest.insert(e.event_id);
                }
                Some(t) if Some(t) == self.newest => {
                    self.at_newest.insert(e.event_id);
                }
                Some(_) => {}
                None => {
                    self.undated.insert(e.event_id);
                }
            }
        }
        events
    }
}

impl<F: Flavor> QueryAudit<F> {
    /// How often [`follow`](Self::follow) polls (default 2 s). The server
    /// allows 100 requests a minute per client; each poll is at least one.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    pub(crate) fn follow_stream(self) -> Follow {
        let interval = self
            .poll_interval
            .unwrap_or(DEFAULT_POLL_INTERVAL)
            .max(Duration::from_millis(10));
        // Without a lower bound of its own, a follow starts from now: the
        // first poll only sets the mark.
        let baseline = self.from.is_none();
        let state = (
            self,
            Mark::default(),
            baseline,
            Duration::ZERO,
            Vec::<AuditEvent>::new(),
        );
        let inner = futures::stream::unfold(Some(state), move |state| async move {
            let (query, mut mark, mut baseline, mut wait, mut ready) = state?;
            loop {
                if let Some(event) = ready.pop() {
                    return Some((Ok(event), Some((query, mark, baseline, wait, ready))));
                }
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                let mut poll = query.clone().page(1);
                poll.to = None;
                if let Some(newest) = mark.newest {
                    poll.from = Some(newest);
                }
                let walked: Result<Vec<AuditEvent>> =
                    poll.walk().collect::<Vec<_>>().await.into_iter().collect();
                match walked {
                    Ok(events) => {
                        let fresh = mark.fresh(events);
                        wait = interval;
                        if baseline {
                            // The events already there only set the mark.
                            baseline = false;
                            continue;
                        }
                        ready = fresh;
                        ready.reverse();
                    }
                    Err(e) => {
                        let passing = e.is_retryable()
                            || matches!(e.kind(), ErrorKind::Server | ErrorKind::RateLimited);
                        wait = match e.retry_after() {
                            Some(asked) => asked.min(MAX_FOLLOW_BACKOFF),
                            None if wait.is_zero() || wait < interval => interval,
                            None => (wait * 2).min(MAX_FOLLOW_BACKOFF),
                        };
                        let next = passing.then_some((query, mark, baseline, wait, ready));
                        return Some((Err(e), next));
                    }
                }
            }
        })
        .boxed();
        Follow { inner }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128, at: Option<i64>) -> AuditEvent {
        serde_json::from_value(serde_json::json!({
            "eventId": Uuid::from_u128(id),
            "action": "agent.updated",
            "outcome": "success",
            "metadata": {},
            "timestamp": at.map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap()),
        }))
        .unwrap()
    }

    #[test]
    fn the_mark_delivers_each_event_once_oldest_first() {
        let mut mark = Mark::default();
        // Newest first, as the server sends them.
        let first = mark.fresh(vec![
            event(3, Some(20)),
            event(2, Some(20)),
            event(1, Some(10)),
        ]);
        let ids: Vec<_> = first.iter().map(|e| e.event_id.as_u128()).collect();
        assert_eq!(ids, [1, 2, 3]);
        // The next poll asks from t=20: it sees 2 and 3 again, and a late 4 at 20.
        let second = mark.fresh(vec![
            event(5, Some(30)),
            event(4, Some(20)),
            event(3, Some(20)),
            event(2, Some(20)),
        ]);
        let ids: Vec<_> = second.iter().map(|e| e.event_id.as_u128()).collect();
        assert_eq!(ids, [4, 5]);
        assert!(mark.fresh(vec![event(5, Some(30))]).is_empty());
        assert_eq!(mark.fresh(vec![event(9, None)]).len(), 1);
        assert!(mark.fresh(vec![event(9, None)]).is_empty());
    }
}
