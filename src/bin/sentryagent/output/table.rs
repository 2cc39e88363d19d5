//! Aligned columns: which columns fit a terminal of a given width, how wide
//! each is, and the lines they render to.

use super::{Style, paint, width};

/// How narrow a column whose text may be cut gets before columns are
/// dropped instead: 8 columns (7 characters and `…`).
const NARROWEST: usize = 8;

/// The space between two columns.
const GAP: &str = "  ";

/// One column of a table to lay out.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub header: &'static str,
    /// Whether its text may be cut to fit: not ids and times, which are of
    /// no use cut.
    pub cut: bool,
    /// Whether it stays however narrow the terminal (the id).
    pub keep: bool,
    /// Its widest text, header included.
    pub natural: usize,
}

/// The width of each column, `None` for one left out: all at their natural
/// width without `available`; else the widest columns cut (with `…`) down
/// to [`NARROWEST`], then, if that is not enough, the rightmost columns
/// that may go left out, until the line fits.
pub(crate) fn fit(columns: &[Column], available: Option<usize>) -> Vec<Option<usize>> {
    let mut shown = vec![true; columns.len()];
    loop {
        let widths = shrink(columns, &shown, available);
        let total = line_width(&widths);
        match available {
            Some(limit) if total > limit => {}
            _ => return widths,
        }
        let droppable = (0..columns.len())
            .rev()
            .find(|&j| shown[j] && !columns[j].keep);
        match droppable {
            Some(j) if shown.iter().filter(|s| **s).count() > 1 => shown[j] = false,
            _ => return widths,
        }
    }
}

/// The widths of the `shown` columns with those that may be cut cut to one
/// level, the highest that fits `available`.
fn shrink(columns: &[Column], shown: &[bool], available: Option<usize>) -> Vec<Option<usize>> {
    let at = |level: usize| -> Vec<Option<usize>> {
        columns
            .iter()
            .zip(shown)
            .map(|(c, &shown)| {
                shown.then(|| {
                    if c.cut {
                        c.natural.min(level.max(NARROWEST))
                    } else {
                        c.natural
                    }
                })
            })
            .collect()
    };
    let widest = columns.iter().map(|c| c.natural).max().unwrap_or(0);
    let Some(limit) = available else {
        return at(widest);
    };
    if line_width(&at(widest)) <= limit {
        return at(widest);
    }
    // The highest level that fits (the total grows with the level).
    let (mut low, mut high) = (0, widest);
    while low < high {
        let mid = (low + high).div_ceil(2);
        if line_width(&at(mid)) <= limit {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let mut widths = at(low);
    // What is left over goes one column at a time to the cut ones, from the left.
    let mut spare = limit.saturating_sub(line_width(&widths));
    for (width, column) in widths.iter_mut().zip(columns) {
        if let Some(width) = width
            && column.cut
            && *width < column.natural
            && spare > 0
        {
            *width += 1;
            spare -= 1;
        }
    }
    widths
}

/// The width of a line of columns this wide.
fn line_width(widths: &[Option<usize>]) -> usize {
    let shown: Vec<usize> = widths.iter().flatten().copied().collect();
    shown.iter().sum::<usize>() + GAP.len() * shown.len().saturating_sub(1)
}

/// One line of cells laid out in `widths`: cut where allowed, padded, the
/// last shown cell unpadded.
pub(crate) fn line(
    columns: &[Column],
    widths: &[Option<usize>],
    cells: &[(String, Style)],
    color: bool,
) -> String {
    let last = widths.iter().rposition(Option::is_some);
    let mut out = String::new();
    let mut first = true;
    for (j, ((column, width), (text, style))) in columns.iter().zip(widths).zip(cells).enumerate() {
        let Some(width) = *width else { continue };
        if !first {
            out.push_str(GAP);
        }
        first = false;
        let text = if column.cut {
            width::cut(text, width)
        } else {
            text.clone()
        };
        let pad = width.saturating_sub(width::of(&text));
        out.push_str(&paint(&text, *style, color));
        if Some(j) != last {
            out.extend(std::iter::repeat_n(' ', pad));
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(header: &'static str, natural: usize, cut: bool) -> Column {
        Column {
            header,
            cut,
            keep: header == "ID",
            natural,
        }
    }

    #[test]
    fn the_widest_cut_columns_shrink_first_and_the_line_fits() {
        let columns = [
            column("ID", 36, false),
            column("EMAIL", 28, true),
            column("TYPE", 8, true),
            column("OWNER", 13, true),
        ];
        let widths = fit(&columns, Some(80));
        assert_eq!(line_width(&widths), 80, "{widths:?}");
        assert_eq!(widths[0], Some(36), "an id is never cut");
        assert_eq!(widths[2], Some(8), "a narrow column keeps its width");
        assert!(widths[1] >= widths[3], "{widths:?}");
        assert_eq!(fit(&columns, None)[1], Some(28));
    }

    #[test]
    fn columns_go_from_the_right_when_cutting_is_not_enough() {
        let columns = [
            column("ID", 36, false),
            column("STATUS", 7, true),
            column("CREATED", 20, false),
            column("EXPIRES", 20, false),
        ];
        let widths = fit(&columns, Some(70));
        assert_eq!(widths, [Some(36), Some(7), Some(20), None]);
        // The id stays even when nothing else fits.
        assert_eq!(fit(&columns, Some(10)), [Some(36), None, None, None]);
    }

    #[test]
    fn a_line_pads_all_but_its_last_cell_and_cuts_with_an_ellipsis() {
        let columns = [
            column("ID", 2, false),
            column("NAME", 10, true),
            column("X", 1, true),
        ];
        let cells = [
            ("a".to_owned(), Style::Plain),
            ("a-very-long-name".to_owned(), Style::Plain),
            ("x".to_owned(), Style::Plain),
        ];
        let text = line(&columns, &[Some(2), Some(10), Some(1)], &cells, false);
        assert_eq!(text, "a   a-very-lo…  x");
        let dropped = line(&columns, &[Some(2), None, Some(1)], &cells, false);
        assert_eq!(dropped, "a   x");
    }
}
