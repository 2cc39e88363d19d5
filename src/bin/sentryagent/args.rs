//! The flags every command takes, the paging flags of listings, and the
//! parsers of flag values. What the flags resolve to is `config`'s business.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::parser::ValueSource;

use crate::failure::CliError;
use crate::output::{Format, Listing, Printer};
use sentryagent_idp::model::Timestamp;

/// Flags shared by every command. Each can also be set by its `AGENTIDP_*`
/// variable; the client secret has no flag (it would show in `ps` and in
/// the shell's history).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct Global {
    /// The profile of the config file to use.
    #[arg(
        long,
        global = true,
        env = "AGENTIDP_PROFILE",
        default_value = "default",
        hide_env_values = true
    )]
    pub profile: String,
    /// The config file (default: `sentryagent/config.toml` in the user's config directory).
    #[arg(
        long,
        global = true,
        env = "AGENTIDP_CONFIG",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,
    /// The AgentIdP server origin, e.g. `http://localhost:3000` (`/api/v1` is added).
    #[arg(
        long,
        global = true,
        env = "AGENTIDP_BASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub base_url: Option<String>,
    /// The client id (the agent id of the credential).
    #[arg(
        long,
        global = true,
        env = "AGENTIDP_CLIENT_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub client_id: Option<String>,
    /// Reads the client secret from this file (which only you may read).
    #[arg(
        long,
        global = true,
        env = "AGENTIDP_CLIENT_SECRET_FILE",
        value_name = "FILE",
        hide_env_values = true
    )]
    pub client_secret_file: Option<PathBuf>,
    /// A scope to ask the token for (repeat, or space-separated); default: the
    /// four documented scopes. An agent granted fewer must name them.
    #[arg(
        long = "scope",
        global = true,
        env = "AGENTIDP_SCOPES",
        value_name = "SCOPE",
        hide_env_values = true
    )]
    pub scopes: Vec<String>,
    /// Reads the client secret from the first line of standard input.
    #[arg(long, global = true)]
    pub client_secret_stdin: bool,
    /// Output format [default: table on a terminal, tsv otherwise].
    #[arg(
        long,
        short,
        global = true,
        env = "AGENTIDP_OUTPUT",
        value_enum,
        hide_env_values = true
    )]
    pub output: Option<Format>,
    /// The fields to show, by their JSON names, e.g. `agentId,email` (tables, tsv and JSON).
    #[arg(long, global = true, value_name = "FIELDS", value_delimiter = ',')]
    pub fields: Option<Vec<String>>,
    /// Prints ids only, one a line.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Answers yes to confirmations (needed for destructive commands without a terminal).
    #[arg(long, short, global = true)]
    pub yes: bool,
    /// Does not keep the access token between commands.
    #[arg(long, global = true)]
    pub no_token_cache: bool,
    /// Allows a plain `http://` URL to a host other than loopback: the client
    /// secret and tokens then cross the network in clear text.
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,
    /// Where each option's value came from, filled in after parsing.
    #[arg(skip)]
    pub sources: Sources,
}

/// Where the options' values came from: the command line or an `AGENTIDP_*`
/// variable (clap's [`ValueSource`]), by the option's id (`base_url`).
#[derive(Debug, Default)]
pub(crate) struct Sources(std::collections::BTreeMap<String, ValueSource>);

impl Sources {
    /// Where `id`'s value came from; `None` when it has none.
    pub fn of(&self, id: &str) -> Option<ValueSource> {
        self.0.get(id).copied()
    }
}

impl Global {
    /// Records where each option's value came from. A global option's value
    /// is seen by the deepest subcommand, wherever on the line it was given.
    pub fn note_sources(&mut self, matches: &clap::ArgMatches) {
        let mut deepest = matches;
        while let Some((_, sub)) = deepest.subcommand() {
            deepest = sub;
        }
        for id in [
            "profile",
            "config",
            "base_url",
            "client_id",
            "client_secret_file",
            "scopes",
            "output",
        ] {
            if let Some(source) = deepest
                .try_get_raw(id)
                .ok()
                .flatten()
                .and_then(|_| deepest.value_source(id))
            {
                self.sources.0.insert(id.to_owned(), source);
            }
        }
    }

    /// The printer the flags and the terminal ask for.
    pub fn printer(&self) -> Printer {
        Printer::new(self.output, self.fields.clone(), self.quiet)
    }
}

/// How much of a listing to fetch: one page, or every page.
#[derive(Debug, Args)]
pub(crate) struct Paging {
    /// Walks every page. Without it, one page is shown, and when more match,
    /// stderr says so: `showing 20 of 24 agents; --page 2 for the next, …`.
    #[arg(long, conflicts_with = "page")]
    pub all: bool,
    /// The page to show (1-based).
    #[arg(long)]
    pub page: Option<u32>,
    /// Items per page.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Prints the listing as the API's page, with the server's total, for
    /// scripts: `{"data": […], "total": 24, "page": 1, "limit": 20}` (with
    /// `--all`: `{"data": […], "total": N}`). JSON: implies `-o json`; with
    /// `-o jsonl`, on one line. Without it, `-o json` is a bare array.
    #[arg(long)]
    pub envelope: bool,
}

impl Paging {
    /// The items of the page asked for, or (`--all`) of every page, with a
    /// spinner counting them on stderr meanwhile; Ctrl-C clears it and ends
    /// the command with 130.
    pub async fn fetch<Q, T, Fut>(
        &self,
        query: Q,
        every: impl FnOnce(Q) -> sentryagent_idp::Paginator<T>,
        one: impl FnOnce(Q, u32) -> Fut,
    ) -> Result<Listing<T>, CliError>
    where
        T: crate::output::Record + Send + 'static,
        Fut: std::future::Future<Output = sentryagent_idp::Result<sentryagent_idp::model::Page<T>>>,
    {
        use futures::TryStreamExt;
        let what = T::NOUN;
        let spinner = crate::prompt::spinner(format!("fetching {what}…"));
        let fetching = async {
            if self.all {
                every(query)
                    .inspect_ok(|_| {
                        spinner.inc(1);
                        spinner.set_message(format!("fetching {what}… {}", spinner.position()));
                    })
                    .try_collect()
                    .await
                    .map(Listing::whole)
            } else {
                one(query, self.page.unwrap_or(1)).await.map(Listing::page)
            }
        };
        let listing = crate::interrupt::or_exit(fetching).await;
        spinner.finish_and_clear();
        Ok(listing??)
    }
}

/// Parses `90s`, `2m`, `500ms`, `1h` or a bare number of seconds.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Quoted in clap's message, which reaches a terminal as it is.
    let shown = crate::sanitize::terminal(text);
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{shown}` is not a duration (e.g. 90s, 2m, 500ms)"))?;
    let scale = match unit {
        "ms" => Duration::from_millis(1),
        "" | "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(format!("`{shown}`: the unit must be ms, s, m or h")),
    };
    scale
        .checked_mul(u32::try_from(number).map_err(|_| format!("`{shown}` is too long"))?)
        .ok_or_else(|| format!("`{shown}` is too long"))
}

/// Parses an RFC 3339 time, e.g. `2026-12-31T23:59:59Z`.
pub(crate) fn timestamp(text: &str) -> Result<Timestamp, String> {
    let shown = crate::sanitize::terminal(text);
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{shown}` is not an RFC 3339 time like 2026-12-31T23:59:59Z: {e}"))
}

/// Parses a time in the past: RFC 3339, or an age counted back from now
/// (when the command was run): `90s`, `15m`, `1h`, `2d`.
pub(crate) fn past_time(text: &str) -> Result<Timestamp, String> {
    past_time_at(text, chrono::Utc::now())
}

/// [`past_time`] with "now" given.
fn past_time_at(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let shown = crate::sanitize::terminal(text);
    let age = text.trim();
    let split = age.find(|c: char| !c.is_ascii_digit()).unwrap_or(age.len());
    let (number, unit) = age.split_at(split);
    let scale: i64 = match unit {
        _ if number.is_empty() => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    if scale == 0 {
        return timestamp(text).map_err(|_| {
            format!(
                "`{shown}` is neither an RFC 3339 time like 2026-12-31T23:59:59Z \
                 nor an age such as 90s, 15m, 1h or 2d"
            )
        });
    }
    let too_long = || format!("`{shown}` is too long ago");
    let seconds = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(too_long)?;
    let age = chrono::TimeDelta::try_seconds(seconds).ok_or_else(too_long)?;
    now.checked_sub_signed(age).ok_or_else(too_long)
}

/// A clap parser for one of the spec's enums: its documented values are
/// offered (and completed), and only they are accepted.
macro_rules! spec_enum {
    ($ty:ty) => {
        clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(<$ty>::KNOWN.iter().map(|v| v.as_str())),
            |v: String| <$ty>::from(v.as_str()),
        )
    };
}
pub(crate) use spec_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_refuse_garbage() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("2d").is_err());
        assert!(duration("s").is_err());
        assert!(duration("99999999999999h").is_err());
    }

    #[test]
    fn past_times_take_an_age_or_an_rfc_3339_time() {
        let now = timestamp("2026-12-07T12:00:00Z").unwrap();
        let at = |text| past_time_at(text, now);
        assert_eq!(at("1h"), timestamp("2026-12-07T11:00:00Z"));
        assert_eq!(at("90s"), timestamp("2026-12-07T11:58:30Z"));
        assert_eq!(at("15m"), timestamp("2026-12-07T11:45:00Z"));
        assert_eq!(at("2d"), timestamp("2026-12-05T12:00:00Z"));
        assert_eq!(
            at("2026-01-02T03:04:05Z"),
            timestamp("2026-01-02T03:04:05Z")
        );
        for refused in ["1w", "h", "90", "-1h", "yesterday", "99999999999999999d"] {
            assert!(at(refused).is_err(), "{refused}");
        }
    }
}
