//! `sentryagent audit …`: the audit trail, queried, read and followed.

use std::collections::HashSet;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;

use crate::args::{Paging, duration, past_time, spec_enum};
use crate::failure::CliError;
use crate::output::{Record, Style, status_style, to_json, when};
use crate::prompt;
use crate::sanitize;
use crate::session::Session;
use sentryagent_idp::model::{AuditAction, AuditEvent, AuditOutcome, Timestamp, Uuid};
use sentryagent_idp::{Client, QueryAudit};

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Lists events, newest first: one page or (`--all`) every page.
    #[command(visible_alias = "list")]
    Query(Query),
    /// Shows one event.
    Get {
        /// The event's id.
        event_id: Uuid,
    },
    /// Shows the latest events, oldest first; with `--follow`, new ones as they arrive.
    Tail(Tail),
}

/// The filters of a query.
#[derive(Debug, Args)]
pub(crate) struct Filters {
    /// Only events about this agent.
    #[arg(long = "agent", value_name = "AGENT_ID")]
    agent_id: Option<Uuid>,
    /// Only events of this action.
    #[arg(long, value_parser = spec_enum!(AuditAction))]
    action: Option<AuditAction>,
    /// Only events with this outcome.
    #[arg(long, value_parser = spec_enum!(AuditOutcome))]
    outcome: Option<AuditOutcome>,
}

#[derive(Debug, Args)]
pub(crate) struct Query {
    #[command(flatten)]
    filters: Filters,
    /// Only events at or after this time: RFC 3339, or an age such as 90s, 15m, 1h, 2d.
    #[arg(long, visible_alias = "since", value_name = "TIME", value_parser = past_time)]
    from: Option<Timestamp>,
    /// Only events at or before this time: RFC 3339, or an age such as 15m.
    #[arg(long, value_name = "TIME", value_parser = past_time)]
    to: Option<Timestamp>,
    #[command(flatten)]
    paging: Paging,
}

#[derive(Debug, Args)]
pub(crate) struct Tail {
    #[command(flatten)]
    filters: Filters,
    /// How many of the latest events to show first [default: 10; with --since, every one since].
    #[arg(long, short = 'n')]
    lines: Option<u32>,
    /// Only events at or after this time: RFC 3339, or an age such as 90s, 15m, 1h, 2d.
    #[arg(long, visible_alias = "from", value_name = "TIME", value_parser = past_time)]
    since: Option<Timestamp>,
    /// Keeps printing new events as they arrive, until interrupted.
    #[arg(long, short)]
    follow: bool,
    /// How often to ask for new events.
    #[arg(long, default_value = "2s", value_parser = duration)]
    interval: Duration,
}

impl Filters {
    fn query(&self, client: &Client) -> QueryAudit {
        let mut query = client.audit().query();
        if let Some(agent_id) = self.agent_id {
            query = query.agent_id(agent_id);
        }
        if let Some(action) = &self.action {
            query = query.action(action.clone());
        }
        if let Some(outcome) = &self.outcome {
            query = query.outcome(outcome.clone());
        }
        query
    }
}

impl AuditCommand {
    pub async fn run(self, s: &Session) -> Result<(), CliError> {
        s.out.check::<AuditEvent>().map_err(CliError::Usage)?;
        match self {
            AuditCommand::Query(q) => query(s, q).await,
            AuditCommand::Get { event_id } => {
                Ok(s.out.one(&s.client.audit().get(event_id).send().await?)?)
            }
            AuditCommand::Tail(t) => crate::interrupt::or_exit(tail(s, t)).await?,
        }
    }
}

async fn query(s: &Session, q: Query) -> Result<(), CliError> {
    let out = s
        .out
        .enveloped(q.paging.envelope)
        .map_err(CliError::Usage)?;
    let mut query = q.filters.query(&s.client);
    if let Some(from) = q.from {
        query = query.from(from);
    }
    if let Some(to) = q.to {
        query = query.to(to);
    }
    if let Some(limit) = q.paging.limit {
        query = query.limit(limit);
    }
    let listing = q
        .paging
        .fetch(query, QueryAudit::stream, |q, page| q.page(page).send())
        .await?;
    Ok(out.list(&listing)?)
}

/// The latest events (`-n`, or with `--since` every one since), then (with
/// `--follow`) every new one, from where the latest left off: none is
/// missed between the two, and none printed twice. On a terminal, a header
/// first.
async fn tail(s: &Session, t: Tail) -> Result<(), CliError> {
    let mut first = t.filters.query(&s.client);
    if let Some(since) = t.since {
        first = first.from(since);
    }
    let mut latest = match (t.lines, t.since) {
        (None, Some(_)) => {
            use futures::TryStreamExt;
            let mut seen = HashSet::new();
            let mut every: Vec<AuditEvent> = first.stream().try_collect().await?;
            // A page that shifted under the walk repeats events.
            every.retain(|e| seen.insert(e.event_id));
            every
        }
        (lines, _) => {
            let lines = lines.unwrap_or(DEFAULT_LINES);
            let mut page = first.limit(lines.max(1)).page(1).send().await?.items;
            page.truncate(lines as usize);
            page
        }
    };
    latest.reverse();
    s.out.stream_header::<AuditEvent>()?;
    for event in &latest {
        s.out.line(event)?;
    }
    if !t.follow {
        return Ok(());
    }
    let newest = latest.iter().filter_map(|e| e.timestamp).max();
    // Events at the newest printed time come again from a follow that starts there.
    let mut printed: HashSet<Uuid> = latest
        .iter()
        .filter(|e| e.timestamp == newest)
        .map(|e| e.event_id)
        .collect();
    let mut follow = t.filters.query(&s.client).poll_interval(t.interval);
    if let Some(from) = newest.or(t.since) {
        follow = follow.from(from);
    }
    let mut events = follow.follow();
    let mut outage = Outage::new();
    let mut last_error = None;
    // Ctrl-C is the caller's (`interrupt::or_exit`): it ends with 130.
    let closed = crate::output::stdout_closed();
    tokio::pin!(closed);
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            () = &mut closed => return Ok(()),
        };
        match next {
            Some(Ok(event)) => {
                outage.over();
                if !printed.is_empty() && printed.remove(&event.event_id) {
                    continue;
                }
                s.out.line(&event)?;
            }
            Some(Err(e)) => {
                outage.failed(&e);
                last_error = Some(e);
            }
            // A follow ends only after an error that will not pass.
            None => {
                outage.ended();
                return Err(last_error
                    .map_or_else(|| CliError::Usage("the follow ended".into()), CliError::Api));
            }
        }
    }
}

/// What a follow says while the server fails: on a terminal a spinner that
/// shows the latest error; otherwise (a log, a pipe, a terminal that draws
/// no spinner) plain lines on stderr,
/// one when an outage starts and one when events come again, never one per
/// failed poll. A follow sees no quiet poll, so "resumed" comes with the
/// first event after the outage.
struct Outage {
    spinner: Option<indicatif::ProgressBar>,
    lines: bool,
    failures: u32,
}

impl Outage {
    fn new() -> Self {
        Outage {
            spinner: None,
            // Not only a pipe: a terminal whose TERM is `dumb` or unset
            // draws no spinner either.
            lines: !prompt::spinner_shown(),
            failures: 0,
        }
    }

    fn failed(&mut self, e: &sentryagent_idp::Error) {
        self.failures = self.failures.saturating_add(1);
        let message = format!("{}; reconnecting…", sanitize::terminal(&e.to_string()));
        if self.lines {
            if self.failures == 1 {
                prompt::note(&format!("audit tail: {message}"));
            }
        } else {
            match &self.spinner {
                Some(spinner) => spinner.set_message(message),
                None => self.spinner = Some(prompt::spinner(message)),
            }
        }
    }

    /// An event came: the server answers again.
    fn over(&mut self) {
        if self.failures > 0 && self.lines {
            let polls = if self.failures == 1 { "poll" } else { "polls" };
            prompt::note(&format!(
                "audit tail: resumed after {} failed {polls}",
                self.failures
            ));
        }
        self.ended();
    }

    /// Clears the spinner and forgets the outage.
    fn ended(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
        self.failures = 0;
    }
}

/// How many events `audit tail` shows first.
const DEFAULT_LINES: u32 = 10;

impl Record for AuditEvent {
    const COLUMNS: &'static [&'static str] = &[
        "TIME",
        "ACTION",
        "OUTCOME",
        "AGENT ID",
        "EVENT ID",
        "IP",
        "USER AGENT",
        "METADATA",
    ];
    const FIELDS: &'static [&'static str] = &[
        "timestamp",
        "action",
        "outcome",
        "agentId",
        "eventId",
        "ipAddress",
        "userAgent",
        "metadata",
    ];
    const WIDE: &'static [&'static str] = &["USER AGENT", "METADATA"];
    const WHOLE: &'static [&'static str] = &["TIME", "AGENT ID", "EVENT ID", "IP"];
    const ID: usize = 4;
    const LINE_WIDTHS: &'static [usize] = &[20, 20, 7, 36, 36, 15];
    const NOUN: &'static str = "audit events";

    fn cells(&self) -> Vec<(String, Style)> {
        vec![
            (when(self.timestamp), Style::Plain),
            (self.action.to_string(), Style::Plain),
            (
                self.outcome.to_string(),
                status_style(self.outcome.as_str()),
            ),
            (
                self.agent_id
                    .map_or_else(|| "-".into(), |id| id.to_string()),
                Style::Plain,
            ),
            (self.event_id.to_string(), Style::Plain),
            (
                self.ip_address.clone().unwrap_or_else(|| "-".into()),
                Style::Plain,
            ),
            (
                self.user_agent.clone().unwrap_or_else(|| "-".into()),
                Style::Plain,
            ),
            (metadata(&to_json(&self.metadata)), Style::Plain),
        ]
    }

    fn json(&self) -> serde_json::Value {
        to_json(self)
    }
}

/// An event's metadata on one line: its JSON, or `-` when it holds nothing.
fn metadata(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::Object(map) if map.is_empty() => "-".into(),
        value => value.to_string(),
    }
}
