//! How results print: a table on a terminal, JSON or JSON lines for
//! scripts; colours only on a terminal and never with `NO_COLOR`.

use std::io::{IsTerminal, Write};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

use crate::sanitize;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people.
    Table,
    /// One JSON document: an object, or an array for listings.
    Json,
    /// One JSON object per line, printed as each arrives.
    Jsonl,
}

/// A colour or weight for a cell or a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Bold,
    Green,
    Yellow,
    Red,
}

/// Something that prints as a row of a table and as JSON.
pub(crate) trait Record {
    /// The table's column names.
    const COLUMNS: &'static [&'static str];
    /// The widths a streamed line pads its first cells to, so that lines
    /// printed one by one still line up.
    const LINE_WIDTHS: &'static [usize] = &[];
    /// What a listing of these is called, as in "No agents found."
    const NOUN: &'static str = "results";
    /// This record's cells, one per column, with their styles.
    fn cells(&self) -> Vec<(String, Style)>;
    /// This record as JSON: the API's own shape.
    fn json(&self) -> serde_json::Value;
}

/// The JSON of a serializable record (secrets print as `[REDACTED]`).
pub(crate) fn to_json(value: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Whether colours suit this stream: a terminal, `NO_COLOR` unset or
/// empty, and not `TERM=dumb`.
fn color_for(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Whether stderr gets colours.
pub(crate) fn stderr_color() -> bool {
    color_for(std::io::stderr().is_terminal())
}

/// `text` in `style`, or as is without colour.
pub(crate) fn paint(text: &str, style: Style, color: bool) -> String {
    let code = match style {
        _ if !color => return text.to_owned(),
        Style::Plain => return text.to_owned(),
        Style::Bold => "1",
        Style::Green => "32",
        Style::Yellow => "33",
        Style::Red => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Prints results on stdout in the chosen format.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Printer {
    pub format: Format,
    /// The format `--output` named, if it did.
    pub asked: Option<Format>,
    color: bool,
}

impl Printer {
    /// The format asked for, or table on a terminal and JSON otherwise.
    pub fn new(format: Option<Format>) -> Self {
        let format_asked = format;
        let terminal = std::io::stdout().is_terminal();
        let format = format.unwrap_or(if terminal {
            Format::Table
        } else {
            Format::Json
        });
        Printer {
            format,
            asked: format_asked,
            color: color_for(terminal),
        }
    }

    /// A listing.
    pub fn list<R: Record>(&self, items: &[R]) -> std::io::Result<()> {
        match self.format {
            Format::Json => self.json(&serde_json::Value::Array(
                items.iter().map(R::json).collect(),
            )),
            Format::Jsonl => items.iter().try_for_each(|item| self.line(item)),
            // A table of no rows would be a bare header; say so instead, on
            // stderr, so that stdout stays empty (as kubectl does).
            Format::Table if items.is_empty() => {
                let mut stderr = std::io::stderr().lock();
                writeln!(stderr, "No {} found.", R::NOUN)
            }
            Format::Table => {
                let mut table = self.table();
                table.set_header(
                    R::COLUMNS
                        .iter()
                        .map(|c| Cell::new(c).add_attribute(Attribute::Bold)),
                );
                for item in items {
                    table.add_row(
                        item.cells()
                            .into_iter()
                            .map(|(text, style)| self.cell(text, style)),
                    );
                }
                self.plain(&table.trim_fmt())
            }
        }
    }

    /// One record: a field per line in a table.
    pub fn one<R: Record>(&self, item: &R) -> std::io::Result<()> {
        match self.format {
            Format::Json => self.json(&item.json()),
            Format::Jsonl => self.line(item),
            Format::Table => {
                let mut table = self.table();
                for (name, (text, style)) in R::COLUMNS.iter().zip(item.cells()) {
                    table.add_row([
                        Cell::new(name).add_attribute(Attribute::Bold),
                        self.cell(text, style),
                    ]);
                }
                self.plain(&table.trim_fmt())
            }
        }
    }

    /// One record of a stream, printed as it arrives: a JSON line, or an
    /// unaligned row for people (a table cannot be aligned before it ends).
    pub fn line<R: Record>(&self, item: &R) -> std::io::Result<()> {
        match self.format {
            Format::Json | Format::Jsonl => {
                let text = serde_json::to_string(&item.json()).map_err(std::io::Error::other)?;
                self.plain(&sanitize::json_text(text))
            }
            Format::Table => {
                let widths = R::LINE_WIDTHS.iter().copied().chain(std::iter::repeat(0));
                let cells: Vec<String> = item
                    .cells()
                    .into_iter()
                    .zip(widths)
                    .map(|((text, style), width)| {
                        let text = sanitize::terminal(&text);
                        paint(&format!("{text:<width$}"), style, self.color)
                    })
                    .collect();
                self.plain(&cells.join("  "))
            }
        }
    }

    /// A short plain result (`revoked`), as text or as `{"key": value}`.
    pub fn status(&self, key: &str, value: serde_json::Value, text: &str) -> std::io::Result<()> {
        match self.format {
            Format::Json | Format::Jsonl => {
                let object = serde_json::json!({ key: value });
                self.plain(&sanitize::json_text(object.to_string()))
            }
            Format::Table => self.plain(&sanitize::terminal(text)),
        }
    }

    fn json(&self, value: &serde_json::Value) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        self.plain(&sanitize::json_text(text))
    }

    fn table(&self) -> Table {
        let mut table = Table::new();
        // Rows never wrap: a wrapped id cannot be copied, and a pty may report no width at all.
        table
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled);
        if self.color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table
    }

    /// A table cell; its text from a server made safe for a terminal.
    fn cell(&self, text: String, style: Style) -> Cell {
        let cell = Cell::new(sanitize::terminal(&text));
        match style {
            Style::Plain => cell,
            Style::Bold => cell.add_attribute(Attribute::Bold),
            Style::Green => cell.fg(Color::Green),
            Style::Yellow => cell.fg(Color::Yellow),
            Style::Red => cell.fg(Color::Red),
        }
    }

    /// Writes `text` and a line ending to stdout: a result as formatted
    /// above, or text already in its final form (an `export` line, a bare
    /// token, a completion script). A closed pipe (`| head`) is an error
    /// here, so that a command stops (a follow would otherwise poll
    /// forever); it ends the process quietly (see `failure::report`).
    pub fn plain(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.write_all(b"\n")?;
        stdout.flush()
    }
}

/// Resolves once stdout is a pipe whose reader went away (`| head`), seen
/// without writing to it, so that a command that waits (a follow) can end;
/// never for a terminal or a file, or where this cannot be watched.
pub(crate) async fn stdout_closed() {
    #[cfg(unix)]
    {
        let (closed, watched) = tokio::sync::oneshot::channel();
        // poll(2) blocks, so on a thread of its own, which ends by itself
        // once no one waits for the answer.
        let watcher = std::thread::Builder::new()
            .name("stdout-watch".into())
            .spawn(move || watch_stdout(closed));
        if watcher.is_ok() && watched.await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// Sends once poll(2) flags stdout: a pipe's write end gets `POLLERR` when
/// no reader is left, `POLLNVAL` when stdout is not open at all.
#[cfg(unix)]
fn watch_stdout(closed: tokio::sync::oneshot::Sender<()>) {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let stdout = std::io::stdout();
    let gone = PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL;
    let recheck = Timespec {
        tv_sec: 0,
        tv_nsec: 250_000_000,
    };
    while !closed.is_closed() {
        let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
        match poll(&mut fds, Some(&recheck)) {
            Ok(_) if fds[0].revents().intersects(gone) => {
                let _ = closed.send(());
                return;
            }
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// A time as a table shows it, or `-`.
pub(crate) fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The style of a status word.
pub(crate) fn status_style(status: &str) -> Style {
    match status {
        "active" | "success" | "true" => Style::Green,
        "suspended" => Style::Yellow,
        "decommissioned" | "revoked" | "failure" | "false" => Style::Red,
        _ => Style::Plain,
    }
}
