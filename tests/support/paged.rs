//! A listing server with state, on the scripted server: the audit log and
//! the agent list as a real server keeps them (microsecond times printed as
//! milliseconds, newest first, an optional page-size cap), for the walks and
//! the follow. Loopback only; every request is recorded.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use uuid::Uuid;

use super::agent_json;
use super::scripted::{Act, Scripted};

/// One entry: its id and its time in microseconds since the epoch.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub id: Uuid,
    pub at_us: i64,
}

/// How the server answers, besides the data.
#[derive(Clone, Debug)]
pub struct Knobs {
    /// The largest page it serves, whatever `limit` asks.
    pub cap: u32,
    /// Whether it echoes the page size it used as `limit`.
    pub echo_limit: bool,
    /// Whether it says `total`.
    pub total: bool,
    /// Answers every audit query with this instead (a 429, say).
    pub refuse: Option<Act>,
    /// Before answering a request for page `.0`, adds `.1` entries at the
    /// newest end (once).
    pub grow_before_page: Option<(u32, usize)>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            cap: 1000,
            echo_limit: true,
            total: true,
            refuse: None,
            grow_before_page: None,
        }
    }
}

/// The server's state.
#[derive(Default)]
pub struct State {
    pub entries: Vec<Entry>,
    pub knobs: Knobs,
}

/// A running listing server.
pub struct Log {
    pub server: Scripted,
    pub state: Arc<Mutex<State>>,
}

/// Microseconds since the epoch, now.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Log {
    pub async fn start(knobs: Knobs) -> Log {
        let state = Arc::new(Mutex::new(State {
            entries: Vec::new(),
            knobs,
        }));
        let handler = {
            let state = Arc::clone(&state);
            Arc::new(move |path: &str| answer(&mut state.lock().unwrap(), path))
        };
        let server = Scripted::start_with(handler).await;
        Log { server, state }
    }

    /// Adds `n` entries at `at_us` (all in the same microsecond); returns their ids.
    pub fn add_at(&self, n: usize, at_us: i64) -> Vec<Uuid> {
        let mut state = self.state.lock().unwrap();
        (0..n)
            .map(|_| {
                let id = Uuid::new_v4();
                state.entries.push(Entry { id, at_us });
                id
            })
            .collect()
    }

    /// Adds `n` entries one microsecond apart, the last at `last_us`.
    pub fn add_spread(&self, n: usize, last_us: i64) -> Vec<Uuid> {
        (0..n)
            .flat_map(|i| self.add_at(1, last_us - (n - 1 - i) as i64))
            .collect()
    }

    pub fn set_knobs(&self, knobs: Knobs) {
        self.state.lock().unwrap().knobs = knobs;
    }

    /// Requests to `/audit` or `/agents` (listing requests) so far.
    pub fn listings(&self) -> usize {
        self.server
            .seen()
            .iter()
            .filter(|(_, path)| {
                let path = path.split('?').next().unwrap_or("");
                path.ends_with("/audit") || path.ends_with("/agents")
            })
            .count()
    }

    /// The client of this server (static token, retries off).
    pub fn client(&self) -> sentryagent_idp::Client {
        super::scripted::scripted_static_builder(&self.server.base_url)
            .retry_policy(sentryagent_idp::RetryPolicy::disabled())
            .build()
            .unwrap()
    }
}

/// `2026-…T…:…:….123Z`: milliseconds, as node-postgres prints.
pub fn print_ms(at_us: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(at_us).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn parse_us(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_micros())
}

fn answer(state: &mut State, path: &str) -> Act {
    let url = reqwest::Url::parse(&format!("http://x{path}")).unwrap();
    let audit = url.path().ends_with("/audit");
    if audit && let Some(refusal) = &state.knobs.refuse {
        return refusal.clone();
    }
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let page: u32 = query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let asked: u32 = query("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    if let Some((at, n)) = state.knobs.grow_before_page
        && at == page
    {
        state.knobs.grow_before_page = None;
        let newest = state.entries.iter().map(|e| e.at_us).max().unwrap_or(0);
        for i in 0..n {
            state.entries.push(Entry {
                id: Uuid::new_v4(),
                at_us: newest + 1 + i as i64,
            });
        }
    }
    let from = query("fromDate").and_then(|v| parse_us(&v));
    let to = query("toDate").and_then(|v| parse_us(&v));
    let mut matching: Vec<(usize, Entry)> = state
        .entries
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, e)| from.is_none_or(|f| e.at_us >= f) && to.is_none_or(|t| e.at_us <= t))
        .collect();
    // Newest first; among equal times, the last written first.
    matching.sort_by_key(|(index, e)| std::cmp::Reverse((e.at_us, *index)));
    let size = asked.min(state.knobs.cap).max(1) as usize;
    let start = (page as usize - 1).saturating_mul(size);
    let data: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(size)
        .map(|(_, e)| {
            if audit {
                json!({
                    "eventId": e.id, "action": "agent.updated", "outcome": "success",
                    "metadata": {}, "timestamp": print_ms(e.at_us),
                })
            } else {
                let mut agent = agent_json();
                agent["agentId"] = json!(e.id);
                agent
            }
        })
        .collect();
    let mut body = json!({"data": data, "page": page});
    if state.knobs.echo_limit {
        body["limit"] = json!(size);
    }
    if state.knobs.total {
        body["total"] = json!(matching.len());
    }
    Act::json(200, body)
}
