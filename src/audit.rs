//! The audit log: query and get events.

use chrono::{DateTime, Utc};
use futures::Stream;
use uuid::Uuid;

use crate::Client;
use crate::error::Result;
use crate::model::{AuditAction, AuditEvent, AuditOutcome, Page};
use crate::pagination::{self, DEFAULT_PAGE_SIZE};

/// Audit-log calls (`audit:read`); from [`Client::audit`].
#[derive(Clone, Debug)]
pub struct Audit {
    client: Client,
}

impl Audit {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }

    /// Queries events, newest first; chain filters, then `.send()` for one
    /// page or `.stream()` for all.
    pub fn query(&self) -> QueryAudit {
        QueryAudit {
            client: self.client.clone(),
            agent_id: None,
            action: None,
            outcome: None,
            from: None,
            to: None,
            page: 1,
            limit: DEFAULT_PAGE_SIZE,
        }
    }

    /// One event.
    pub async fn get(&self, event_id: Uuid) -> Result<AuditEvent> {
        self.client
            .call(
                self.client
                    .raw()
                    .get_audit_event()
                    .event_id(event_id)
                    .send(),
            )
            .await
    }
}

/// A `GET /audit` request; from [`Audit::query`].
#[derive(Clone, Debug)]
#[must_use = "a request does nothing until you `.send()` or `.stream()` it"]
pub struct QueryAudit {
    client: Client,
    agent_id: Option<Uuid>,
    action: Option<AuditAction>,
    outcome: Option<AuditOutcome>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    page: u32,
    limit: u32,
}

impl QueryAudit {
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
    pub fn from(mut self, from: DateTime<Utc>) -> Self {
        self.from = Some(from);
        self
    }

    /// Only events at or before `to`.
    pub fn to(mut self, to: DateTime<Utc>) -> Self {
        self.to = Some(to);
        self
    }

    /// The 1-based page to fetch (default 1); for `.stream()`, where to start.
    pub fn page(mut self, page: u32) -> Self {
        self.page = page;
        self
    }

    /// The page size (default 20).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Fetches one page.
    pub async fn send(self) -> Result<Page<AuditEvent>> {
        let mut request = self
            .client
            .raw()
            .query_audit_events()
            .page(self.page)
            .limit(self.limit);
        if let Some(agent_id) = self.agent_id {
            request = request.agent_id(agent_id);
        }
        if let Some(action) = self.action {
            request = request.action(action);
        }
        if let Some(outcome) = self.outcome {
            request = request.outcome(outcome);
        }
        if let Some(from) = self.from {
            request = request.from_date(from);
        }
        if let Some(to) = self.to {
            request = request.to_date(to);
        }
        let page = self.client.call(request.send()).await?;
        Ok(pagination::page(
            page.data, page.total, self.page, self.limit,
        ))
    }

    /// Every matching event, fetching pages lazily as the stream is read.
    pub fn stream(self) -> impl Stream<Item = Result<AuditEvent>> + Send + 'static {
        let first = self.page;
        pagination::items(first, move |page| self.clone().page(page).send())
    }
}
