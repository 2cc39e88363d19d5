//! Following the audit log: [`Follow`], a stream of events as they arrive.

use std::collections::{HashMap, HashSet, VecDeque};
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
use crate::pagination::WALK_MEMORY;

/// How often [`Follow`] asks for new events unless told otherwise: every 2 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The longest [`Follow`] waits between polls while the server fails, and
/// the most of a server's `Retry-After` it honours: 60 s.
pub const MAX_FOLLOW_BACKOFF: Duration = Duration::from_secs(60);

/// How far back each poll of a [`Follow`] re-reads: 5 seconds before the
/// newest event it has seen (the server's clock). An event committed late,
/// stamped up to this much earlier than one already delivered (a transaction
/// stamped at its start, a replica with a slow clock), is still delivered;
/// one stamped earlier still is not. Repeats are dropped by `eventId`, and
/// only the ids inside the window are remembered.
pub const FOLLOW_LOOKBACK: Duration = Duration::from_secs(5);

/// New audit events, oldest first, as they arrive; from
/// [`QueryAudit::follow`]. `Unpin`; it ends by itself only after a
/// [`to`](QueryAudit::to) bound is past.
///
/// It polls `GET /audit` with the query's filters every poll interval,
/// asking for events at or after [`FOLLOW_LOOKBACK`] before the newest one
/// it has seen (the server's clock, not ours), and walks every page of the
/// answer, so that a burst of any size between two polls is delivered whole
/// and an event committed late within the lookback is not lost. Each event
/// is delivered once (repeats are dropped by `eventId`); within a poll the
/// oldest comes first, and a late event comes after the newer ones already
/// delivered.
///
/// Where it starts: at [`from`](QueryAudit::from) if given (the history
/// since then comes first), else at the call to `.follow()`: every event
/// stamped from that millisecond on (the client's clock; the server's stamps
/// are taken to agree with it) is delivered, even if written before the
/// stream is first polled, and the first poll costs one request unless that
/// many events arrived meanwhile. With [`to`](QueryAudit::to), no event
/// stamped after it is delivered, and the stream ends after the first poll
/// made once the client's clock is [`FOLLOW_LOOKBACK`] past it.
///
/// A failure that may pass (a network error, a timeout, a 5xx, a 429) is
/// yielded as an `Err` and the stream goes on after a backoff (doubling from
/// the poll interval up to [`MAX_FOLLOW_BACKOFF`], or the server's
/// `Retry-After`, which can lengthen the wait to at most
/// [`MAX_FOLLOW_BACKOFF`] but never shorten it below the poll interval),
/// resuming where it stopped: nothing is lost or repeated. Any other error
/// (refused credentials, a missing scope) is yielded and ends the stream.
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

/// `t` without its part of a millisecond.
fn floor_millis(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Where a follow stands: its bounds, the newest timestamp seen, and the ids
/// delivered inside the lookback window.
#[derive(Debug)]
struct Mark {
    /// No event stamped before this is delivered.
    lower: Timestamp,
    /// No event stamped after this is delivered.
    upper: Option<Timestamp>,
    newest: Option<Timestamp>,
    /// Ids delivered, with their timestamps: pruned as the window moves.
    seen: HashMap<Uuid, Timestamp>,
    /// Events without a timestamp cannot be ordered; their ids are kept
    /// (the last [`WALK_MEMORY`]) so that each is delivered once.
    undated: HashSet<Uuid>,
    undated_order: VecDeque<Uuid>,
}

impl Mark {
    fn new(lower: Timestamp, upper: Option<Timestamp>) -> Self {
        Mark {
            lower,
            upper,
            newest: None,
            seen: HashMap::new(),
            undated: HashSet::new(),
            undated_order: VecDeque::new(),
        }
    }

    /// The `fromDate` of the next poll: the lookback before the newest
    /// event seen, never before the follow's start.
    fn from(&self) -> Timestamp {
        let lookback = chrono::TimeDelta::from_std(FOLLOW_LOOKBACK).unwrap_or_default();
        self.newest
            .and_then(|n| n.checked_sub_signed(lookback))
            .map_or(self.lower, |t| t.max(self.lower))
    }

    /// Keeps the events not delivered yet and inside the bounds, oldest
    /// first, and moves the mark.
    fn fresh(&mut self, mut events: Vec<AuditEvent>) -> Vec<AuditEvent> {
        // Oldest first; a stable sort keeps the server's order among equals.
        events.reverse();
        events.sort_by_key(|e| e.timestamp);
        events.retain(|e| match e.timestamp {
            Some(t) => {
                t >= self.lower
                    && self.upper.is_none_or(|u| t <= u)
                    && self.seen.insert(e.event_id, t).is_none()
            }
            None => {
                if !self.undated.insert(e.event_id) {
                    return false;
                }
                self.undated_order.push_back(e.event_id);
                if self.undated_order.len() > WALK_MEMORY
                    && let Some(oldest) = self.undated_order.pop_front()
                {
                    self.undated.remove(&oldest);
                }
                true
            }
        });
        if let Some(t) = events.iter().filter_map(|e| e.timestamp).max() {
            self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
        }
        // What is before the next poll's window cannot come back.
        let from = self.from();
        self.seen.retain(|_, t| *t >= from);
        events
    }
}

/// A follow between two items: the query, where it stands, the wait before
/// the next poll, the events ready, and whether it is over.
struct State<F: Flavor> {
    query: QueryAudit<F>,
    mark: Mark,
    wait: Duration,
    ready: Vec<AuditEvent>,
    over: bool,
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
        let ceiling = MAX_FOLLOW_BACKOFF.max(interval);
        // "Now" is this call, to the millisecond the server prints: an event
        // written before the stream is first polled is still delivered.
        let lower = self
            .from
            .unwrap_or_else(|| floor_millis(chrono::Utc::now()));
        let upper = self.to;
        let state = State {
            query: self,
            mark: Mark::new(lower, upper),
            wait: Duration::ZERO,
            ready: Vec::new(),
            over: false,
        };
        let inner = futures::stream::unfold(Some(state), move |state| async move {
            let mut state = state?;
            loop {
                if let Some(event) = state.ready.pop() {
                    return Some((Ok(event), Some(state)));
                }
                // Nothing can come once the window starts after `to`.
                if state.over || upper.is_some_and(|u| state.mark.from() > u) {
                    return None;
                }
                if !state.wait.is_zero() {
                    tokio::time::sleep(state.wait).await;
                }
                // Read before the poll: events stamped up to `to` and
                // committed within the lookback are in this poll's answer.
                let past_upper = upper.is_some_and(|u| {
                    let lookback = chrono::TimeDelta::from_std(FOLLOW_LOOKBACK).unwrap_or_default();
                    u.checked_add_signed(lookback)
                        .is_none_or(|end| chrono::Utc::now() > end)
                });
                let mut poll = state.query.clone().page(1);
                poll.from = Some(state.mark.from());
                poll.to = upper;
                let walked: Result<Vec<AuditEvent>> =
                    poll.walk().collect::<Vec<_>>().await.into_iter().collect();
                match walked {
                    Ok(events) => {
                        state.ready = state.mark.fresh(events);
                        state.ready.reverse();
                        state.wait = interval;
                        state.over = past_upper;
                    }
                    Err(e) => {
                        let passing = e.is_retryable()
                            || matches!(e.kind(), ErrorKind::Server | ErrorKind::RateLimited);
                        // The server's hint only lengthens the wait, up to the ceiling.
                        let backoff = if state.wait < interval {
                            interval
                        } else {
                            state.wait.saturating_mul(2).min(ceiling)
                        };
                        state.wait = match e.retry_after() {
                            Some(asked) => asked.min(ceiling).max(interval),
                            None => backoff,
                        };
                        return Some((Err(e), passing.then_some(state)));
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
    fn the_mark_keeps_only_events_inside_its_bounds() {
        let at = |s| chrono::DateTime::from_timestamp(s, 0).unwrap();
        let mut mark = Mark::new(at(10), Some(at(20)));
        let got = mark.fresh(vec![
            event(3, Some(21)),
            event(2, Some(20)),
            event(1, Some(9)),
        ]);
        let ids: Vec<_> = got.iter().map(|e| e.event_id.as_u128()).collect();
        assert_eq!(ids, [2]);
    }

    #[test]
    fn the_mark_delivers_each_event_once_oldest_first() {
        let mut mark = Mark::new(chrono::DateTime::from_timestamp(0, 0).unwrap(), None);
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
        // A late 6, stamped inside the lookback before the newest (30), is
        // delivered; 1 (at 10) is outside it and forgotten.
        let lookback = FOLLOW_LOOKBACK.as_secs() as i64;
        assert_eq!(mark.from().timestamp(), 30 - lookback);
        assert_eq!(mark.fresh(vec![event(6, Some(29))]).len(), 1);
        assert!(!mark.seen.contains_key(&Uuid::from_u128(1)));
        assert_eq!(mark.fresh(vec![event(9, None)]).len(), 1);
        assert!(mark.fresh(vec![event(9, None)]).is_empty());
    }
}
