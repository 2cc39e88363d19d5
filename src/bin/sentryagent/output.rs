//! How results print: a table fitted to the terminal, `-o wide` for every
//! column, tab-separated rows in a pipe, JSON or JSON lines for scripts,
//! `--fields` to pick fields, `-q` for ids only; colours only on a terminal
//! and never with `NO_COLOR`. The layout is in `table`, widths in `width`,
//! `--fields` in `fields`, and what a listing says of its total in `listing`.

mod fields;
mod listing;
mod table;
mod width;

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::sanitize;

pub(crate) use listing::Listing;
use table::Column;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people, the widest cut with `…` to fit the terminal's width
    /// (`COLUMNS` overrides it); the default on a terminal.
    Table,
    /// Aligned columns, every one of them, never cut.
    Wide,
    /// Each row's fields (every one) separated by tabs: no header, padding or colour; the
    /// default in a pipe.
    Tsv,
    /// One JSON document: an object, or an array for listings.
    Json,
    /// One JSON object per line, printed as each arrives.
    Jsonl,
}

/// A colour or weight for a cell or a word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Style {
    #[default]
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
    /// The JSON field each column shows, in the order of `COLUMNS`: the
    /// names `--fields` takes.
    const FIELDS: &'static [&'static str] = &[];
    /// The columns a terminal's table leaves out; `-o wide`, a pipe's rows
    /// and one record's view show them.
    const WIDE: &'static [&'static str] = &[];
    /// The columns never cut to fit the terminal (ids and times, of no use cut).
    const WHOLE: &'static [&'static str] = &[];
    /// The index of the column `-q` prints, which a narrow terminal keeps.
    const ID: usize = 0;
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

/// The cells of a record as printed: every output takes them from here.
fn cells_of<R: Record>(item: &R) -> Vec<(String, Style)> {
    // Server text made safe for a terminal (no escape sequences).
    item.cells()
        .into_iter()
        .map(|(text, style)| (sanitize::terminal(&text).into_owned(), style))
        .collect()
}

/// Prints results on stdout in the chosen format.
#[derive(Clone, Debug)]
pub(crate) struct Printer {
    pub format: Format,
    /// The format `--output` named, if it did.
    pub asked: Option<Format>,
    color: bool,
    /// Whether stdout is a terminal.
    terminal: bool,
    /// The width tables fit, when known.
    width: Option<usize>,
    /// `--fields`.
    fields: Option<Vec<String>>,
    /// `-q`: ids only.
    quiet: bool,
    /// `--envelope`: a listing's JSON as the API's page envelope.
    envelope: bool,
}

impl Printer {
    /// The format asked for, or a table on a terminal and tab-separated
    /// rows otherwise; `fields` and `quiet` as `--fields` and `-q` say.
    pub fn new(format: Option<Format>, fields: Option<Vec<String>>, quiet: bool) -> Self {
        let terminal = std::io::stdout().is_terminal();
        Printer {
            format: format.unwrap_or(if terminal { Format::Table } else { Format::Tsv }),
            asked: format,
            color: color_for(terminal),
            terminal,
            width: width::available(terminal),
            fields,
            quiet,
            envelope: false,
        }
    }

    /// Whether `-q` (ids only) was given.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Refuses (before anything is sent) `--fields` that `R` has not.
    pub fn check<R: Record>(&self) -> Result<(), String> {
        self.chosen::<R>(false).map(drop)
    }

    /// This printer with `--envelope`: JSON unless another format was
    /// asked for, which is refused.
    pub fn enveloped(&self, envelope: bool) -> Result<Printer, String> {
        let mut printer = self.clone();
        if !envelope {
            return Ok(printer);
        }
        printer.envelope = true;
        match self.asked {
            None => printer.format = Format::Json,
            Some(Format::Json | Format::Jsonl) => {}
            Some(_) => return Err("--envelope prints JSON: use it with -o json or -o jsonl".into()),
        }
        Ok(printer)
    }

    /// The columns shown, by index: those `--fields` names, else (`narrow`)
    /// all but the wide ones, else all.
    fn chosen<R: Record>(&self, narrow: bool) -> Result<Vec<usize>, String> {
        match &self.fields {
            Some(asked) => fields::pick(asked, R::FIELDS),
            None => Ok((0..R::COLUMNS.len())
                .filter(|&j| !narrow || !R::WIDE.contains(&R::COLUMNS[j]))
                .collect()),
        }
    }

    /// The JSON of `item`, with only the `--fields` asked for.
    fn json_of<R: Record>(&self, item: &R) -> std::io::Result<serde_json::Value> {
        Ok(match &self.fields {
            Some(_) => {
                let picked = self.chosen::<R>(false).map_err(std::io::Error::other)?;
                let names: Vec<&str> = picked.iter().map(|&j| R::FIELDS[j]).collect();
                fields::keep(item.json(), &names)
            }
            None => item.json(),
        })
    }

    /// A listing, then on stderr what it leaves out (`showing 20 of 24
    /// agents; …`) when it is one page of more.
    pub fn list<R: Record>(&self, listing: &Listing<R>) -> std::io::Result<()> {
        let items = &listing.items;
        match self.format {
            _ if self.quiet => items.iter().try_for_each(|item| self.id(item))?,
            Format::Json => {
                let data = items
                    .iter()
                    .map(|item| self.json_of(item))
                    .collect::<std::io::Result<Vec<_>>>()?;
                if self.envelope {
                    self.json(&listing.envelope(data))?;
                } else {
                    self.json(&serde_json::Value::Array(data))?;
                }
            }
            Format::Jsonl if self.envelope => {
                let data = items
                    .iter()
                    .map(|item| self.json_of(item))
                    .collect::<std::io::Result<Vec<_>>>()?;
                self.plain(&sanitize::json_text(listing.envelope(data).to_string()))?;
            }
            Format::Jsonl | Format::Tsv => items.iter().try_for_each(|item| self.line(item))?,
            // A table of no rows would be a bare header; say so instead, on
            // stderr, so that stdout stays empty (as kubectl does).
            Format::Table | Format::Wide if items.is_empty() => {
                let mut stderr = std::io::stderr().lock();
                writeln!(stderr, "No {} found.", R::NOUN)?;
            }
            Format::Table | Format::Wide => {
                let narrow = self.format == Format::Table;
                let picked = self.chosen::<R>(narrow).map_err(std::io::Error::other)?;
                let header: Vec<(String, Style)> = picked
                    .iter()
                    .map(|&j| (R::COLUMNS[j].to_owned(), Style::Bold))
                    .collect();
                let rows: Vec<Vec<(String, Style)>> = items
                    .iter()
                    .map(|item| pick(cells_of(item), &picked))
                    .collect();
                let columns: Vec<Column> = picked
                    .iter()
                    .enumerate()
                    .map(|(k, &j)| Column {
                        header: R::COLUMNS[j],
                        cut: narrow && !R::WHOLE.contains(&R::COLUMNS[j]),
                        keep: j == R::ID,
                        natural: std::iter::once(&header)
                            .chain(&rows)
                            .map(|row| width::of(&row[k].0))
                            .max()
                            .unwrap_or(0),
                    })
                    .collect();
                let widths = table::fit(&columns, self.width.filter(|_| narrow));
                let mut text = String::new();
                for row in std::iter::once(&header).chain(&rows) {
                    text.push_str(&table::line(&columns, &widths, row, self.color));
                    text.push('\n');
                }
                self.plain(text.trim_end_matches('\n'))?;
            }
        }
        if let Some(note) = listing.note(R::NOUN) {
            let mut stderr = std::io::stderr().lock();
            writeln!(stderr, "{note}")?;
        }
        Ok(())
    }

    /// One record: a field per line in a table (every field, never cut).
    pub fn one<R: Record>(&self, item: &R) -> std::io::Result<()> {
        match self.format {
            _ if self.quiet => self.id(item),
            Format::Json => self.json(&self.json_of(item)?),
            Format::Jsonl | Format::Tsv => self.line(item),
            Format::Table | Format::Wide => {
                let picked = self.chosen::<R>(false).map_err(std::io::Error::other)?;
                let cells = cells_of(item);
                let rows: Vec<[(String, Style); 2]> = picked
                    .iter()
                    .map(|&j| [(R::COLUMNS[j].to_owned(), Style::Bold), cells[j].clone()])
                    .collect();
                let column = |natural| Column {
                    header: "",
                    cut: false,
                    keep: true,
                    natural,
                };
                let names = rows.iter().map(|r| width::of(&r[0].0)).max().unwrap_or(0);
                let columns = [column(names), column(0)];
                let widths = [Some(names), Some(0)];
                let text: Vec<String> = rows
                    .iter()
                    .map(|row| table::line(&columns, &widths, row, self.color))
                    .collect();
                self.plain(&text.join("\n"))
            }
        }
    }

    /// The header of a stream of lines (`audit tail`), on a terminal only.
    pub fn stream_header<R: Record>(&self) -> std::io::Result<()> {
        if !self.terminal || self.quiet || !matches!(self.format, Format::Table | Format::Wide) {
            return Ok(());
        }
        let (columns, widths) = self.stream_layout::<R>()?;
        let header: Vec<(String, Style)> = columns
            .iter()
            .map(|c| (c.header.to_owned(), Style::Bold))
            .collect();
        self.plain(&table::line(&columns, &widths, &header, self.color))
    }

    /// The columns of a stream and their widths: each its `LINE_WIDTHS`
    /// (or its header's), fitted to the terminal for a table.
    fn stream_layout<R: Record>(&self) -> std::io::Result<(Vec<Column>, Vec<Option<usize>>)> {
        let narrow = self.format == Format::Table;
        let picked = self.chosen::<R>(narrow).map_err(std::io::Error::other)?;
        let fitted = self.width.filter(|_| narrow);
        let columns: Vec<Column> = picked
            .iter()
            .map(|&j| Column {
                header: R::COLUMNS[j],
                cut: fitted.is_some() && !R::WHOLE.contains(&R::COLUMNS[j]),
                keep: j == R::ID,
                natural: R::LINE_WIDTHS
                    .get(j)
                    .copied()
                    .unwrap_or(0)
                    .max(width::of(R::COLUMNS[j])),
            })
            .collect();
        let widths = table::fit(&columns, fitted);
        Ok((columns, widths))
    }

    /// One record of a stream, printed as it arrives: a JSON line, a
    /// tab-separated row, or a row for people lined up by `LINE_WIDTHS` (a
    /// table cannot be aligned before it ends).
    pub fn line<R: Record>(&self, item: &R) -> std::io::Result<()> {
        match self.format {
            _ if self.quiet => self.id(item),
            Format::Json | Format::Jsonl => {
                let text =
                    serde_json::to_string(&self.json_of(item)?).map_err(std::io::Error::other)?;
                self.plain(&sanitize::json_text(text))
            }
            Format::Tsv => {
                let picked = self.chosen::<R>(false).map_err(std::io::Error::other)?;
                let cells = pick(cells_of(item), &picked);
                let row: Vec<String> = cells.into_iter().map(|(text, _)| tsv_cell(&text)).collect();
                self.plain(&row.join("\t"))
            }
            Format::Table | Format::Wide => {
                let (columns, widths) = self.stream_layout::<R>()?;
                let narrow = self.format == Format::Table;
                let picked = self.chosen::<R>(narrow).map_err(std::io::Error::other)?;
                let cells = pick(cells_of(item), &picked);
                self.plain(&table::line(&columns, &widths, &cells, self.color))
            }
        }
    }

    /// `-q`: the record's id alone.
    fn id<R: Record>(&self, item: &R) -> std::io::Result<()> {
        let id = cells_of(item)
            .into_iter()
            .nth(R::ID)
            .map(|(text, _)| text)
            .unwrap_or_default();
        self.plain(&tsv_cell(&id))
    }

    /// A short plain result (`revoked`), as text, as `{"key": value}`, or
    /// (`-q`) the value when it is an id.
    pub fn status(&self, key: &str, value: serde_json::Value, text: &str) -> std::io::Result<()> {
        match self.format {
            _ if self.quiet => match value.as_str() {
                Some(id) => self.plain(id),
                None => Ok(()),
            },
            Format::Json | Format::Jsonl => {
                let object = serde_json::json!({ key: value });
                self.plain(&sanitize::json_text(object.to_string()))
            }
            Format::Table | Format::Wide | Format::Tsv => self.plain(&sanitize::terminal(text)),
        }
    }

    fn json(&self, value: &serde_json::Value) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        self.plain(&sanitize::json_text(text))
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

/// The cells at `picked`, in that order (a field named twice shows twice).
fn pick(cells: Vec<(String, Style)>, picked: &[usize]) -> Vec<(String, Style)> {
    picked
        .iter()
        .map(|&j| cells.get(j).cloned().unwrap_or_default())
        .collect()
}

/// A cell of a tab-separated row: a tab or line break in it would split the
/// row, so each becomes a space.
fn tsv_cell(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
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
