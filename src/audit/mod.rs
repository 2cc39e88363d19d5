//! The audit log: query, walk, follow and get events.

mod follow;

pub use follow::{DEFAULT_POLL_INTERVAL, FOLLOW_LOOKBACK, Follow, MAX_FOLLOW_BACKOFF};

use futures::future::BoxFuture;
use uuid::Uuid;

use crate::client::Client;
use crate::error::Result;
use crate::flavor::{Async, Flavor};
use crate::model::{AuditAction, AuditEvent, AuditOutcome, Page, Timestamp};
use crate::operation::Operation;
use crate::pagination::{Pages, Paginator, Paging};

/// Audit-log calls (`audit:read`); from [`Client::audit`].
#[derive(Clone, Debug)]
pub struct Audit<F: Flavor = Async> {
    client: Client<F>,
}

impl<F: Flavor> Client<F> {
    /// Audit-log queries.
    pub fn audit(&self) -> Audit<F> {
        Audit::new(self.clone())
    }
}

impl<F: Flavor> Audit<F> {
    fn new(client: Client<F>) -> Self {
        Self { client }
    }

    /// Queries events, newest first; chain filters, then `.send()` for one
    /// page or `.stream()` for all.
    pub fn query(&self) -> QueryAudit<F> {
        QueryAudit {
            client: self.client.clone(),
            agent_id: None,
            action: None,
            outcome: None,
            from: None,
            to: None,
            paging: Paging::default(),
            poll_interval: None,
        }
    }

    /// One event.
    pub fn get(&self, event_id: Uuid) -> GetAuditEvent<F> {
        GetAuditEvent {
            client: self.client.clone(),
            event_id,
        }
    }
}

/// A `GET /audit/{eventId}` request; from [`Audit::get`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` it"]
pub struct GetAuditEvent<F: Flavor = Async> {
    client: Client<F>,
    event_id: Uuid,
}

impl<F: Flavor> GetAuditEvent<F> {
    async fn run(self) -> Result<AuditEvent> {
        let id = self.event_id;
        self.client
            .seam()
            .call(Operation::GetAuditEvent, id, |raw, id| async move {
                raw.get_audit_event(&id).await
            })
            .await
    }
}

send!(GetAuditEvent => AuditEvent);

/// A `GET /audit` request; from [`Audit::query`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.stream()` it"]
pub struct QueryAudit<F: Flavor = Async> {
    client: Client<F>,
    agent_id: Option<Uuid>,
    action: Option<AuditAction>,
    outcome: Option<AuditOutcome>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    paging: Paging,
    poll_interval: Option<std::time::Duration>,
}

impl<F: Flavor> QueryAudit<F> {
    /// Only events concerning this agent.
    pub fn agent_id(mut self, agent_id: Uuid) -> Self {
        self.agent_id = Some(agent_id);
        self
    }

    /// Only events of this action.
    pub fn action(mut self, action: AuditAction) -> Self {
        self.action = Some(action);
        self
    }

    /// Only events with this outcome.
    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only events at or after `from`.
    pub fn from(mut self, from: Timestamp) -> Self {
        self.from = Some(from);
        self
    }

    /// Only events at or before `to`.
    pub fn to(mut self, to: Timestamp) -> Self {
        self.to = Some(to);
        self
    }

    async fn run(self) -> Result<Page<AuditEvent>> {
        let op = Operation::QueryAuditEvents;
        let query = self.paging.query(op)?;
        let (page, size) = (query.page, query.size);
        let Self {
            client,
            agent_id,
            action,
            outcome,
            from,
            to,
            ..
        } = self;
        let data = client
            .seam()
            .call(
                op,
                (action, outcome),
                move |raw, (action, outcome)| async move {
                    raw.query_audit_events(
                        action.as_ref(),
                        agent_id.as_ref(),
                        from.as_ref(),
                        Some(size),
                        outcome.as_ref(),
                        Some(page),
                        to.as_ref(),
                    )
                    .await
                },
            )
            .await?;
        Ok(query.page(data.data, data.total, data.limit))
    }

    fn walk(mut self) -> Paginator<AuditEvent> {
        let first = self.paging.walk();
        Paginator::new(first, AuditPages(self))
    }
}

send!(QueryAudit => Page<AuditEvent>);
paging_setters!(QueryAudit);

/// The last instant of `t`'s millisecond.
fn end_of_millisecond(t: Timestamp) -> Timestamp {
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis())
        .and_then(|ms| ms.checked_add_signed(chrono::TimeDelta::nanoseconds(999_999)))
        .unwrap_or(t)
}

/// The pages of a [`QueryAudit`] walk.
struct AuditPages<F: Flavor>(QueryAudit<F>);

impl<F: Flavor> Pages for AuditPages<F> {
    type Item = AuditEvent;

    fn fetch(
        &mut self,
        page: u32,
        size: Option<u32>,
    ) -> BoxFuture<'static, Result<Page<AuditEvent>>> {
        let mut query = self.0.clone().page(page);
        if let Some(size) = size {
            query = query.limit(size);
        }
        Box::pin(query.run())
    }

    /// The log grows at its newest end, which is page 1: events written
    /// while the walk goes on would push older ones onto later pages again.
    /// So later pages are asked for events no newer than the newest one the
    /// first page showed (the server's clock, not ours), to the end of its
    /// millisecond: a server may keep finer times than it prints, and the
    /// rest of that millisecond belongs to the walk (a repeat is dropped by
    /// id, a loss could not be seen).
    fn first_page(&mut self, page: &Page<AuditEvent>) {
        let newest = page.items.iter().filter_map(|e| e.timestamp).max();
        if let Some(pin) = newest.map(end_of_millisecond) {
            self.0.to = Some(self.0.to.map_or(pin, |to| to.min(pin)));
        }
    }
}

impl QueryAudit<Async> {
    /// Every matching event, newest first, fetching pages (of 100 unless
    /// [`limit`](Self::limit) says otherwise) as the stream is read. Events
    /// written after the walk began are not part of it (unless
    /// [`to`](Self::to) says otherwise), and none is yielded twice.
    pub fn stream(self) -> Paginator<AuditEvent> {
        self.walk()
    }

    /// New events, oldest first, as they arrive, until dropped (or, with
    /// [`to`](Self::to), until that bound is past): see [`Follow`]. Without
    /// [`from`](Self::from) it starts with the events stamped from this call
    /// on, including those written before the stream is first polled.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use sentryagent_idp::model::AuditOutcome;
    ///
    /// # async fn run(client: sentryagent_idp::Client) {
    /// let mut failures = client.audit().query().outcome(AuditOutcome::Failure).follow();
    /// while let Some(event) = failures.next().await {
    ///     match event {
    ///         Ok(event) => println!("{} {}", event.action, event.event_id),
    ///         Err(e) if e.is_retryable() => eprintln!("retrying: {e}"),
    ///         Err(e) => eprintln!("stopped: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn follow(self) -> Follow {
        self.follow_stream()
    }
}

#[cfg(feature = "blocking")]
impl QueryAudit<crate::blocking::Blocking> {
    /// Every matching event, as [`QueryAudit::stream`] walks them, as an iterator.
    pub fn iter(self) -> crate::blocking::Iter<AuditEvent> {
        let runtime = self.client.runtime().clone();
        crate::blocking::Iter::new(runtime, self.walk())
    }

    /// New events as they arrive, as [`QueryAudit::follow`] yields them, as
    /// an iterator that blocks between events and ends by itself only after
    /// a [`to`](QueryAudit::to) bound is past.
    pub fn follow(self) -> crate::blocking::Iter<AuditEvent> {
        let runtime = self.client.runtime().clone();
        crate::blocking::Iter::new(runtime, self.follow_stream())
    }
}
