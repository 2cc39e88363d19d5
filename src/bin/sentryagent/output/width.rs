//! Widths: how wide the terminal is, how wide a text shows, and a text cut
//! to a width with an ellipsis.

use unicode_width::UnicodeWidthChar;

/// The width tables fit: `COLUMNS` when set to a positive number (an
/// override, as in gh), else the terminal's, else none (no fitting).
pub(crate) fn available(is_terminal: bool) -> Option<usize> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0);
    columns.or_else(|| if is_terminal { terminal() } else { None })
}

/// The terminal's width from the kernel; a pty may report none (0).
#[cfg(unix)]
fn terminal() -> Option<usize> {
    rustix::termios::tcgetwinsize(std::io::stdout())
        .ok()
        .map(|size| usize::from(size.ws_col))
        .filter(|&c| c > 0)
}

#[cfg(not(unix))]
fn terminal() -> Option<usize> {
    None
}

/// How many columns `text` takes on a terminal.
pub(crate) fn of(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` cut to at most `width` columns, its end replaced by `…` when cut.
pub(crate) fn cut(text: &str, width: usize) -> String {
    if of(text) <= width {
        return text.to_owned();
    }
    let mut kept = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        // One column stays free for the ellipsis.
        if used + w + 1 > width {
            break;
        }
        kept.push(c);
        used += w;
    }
    if width > 0 {
        kept.push('…');
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_ends_in_an_ellipsis_and_fits() {
        assert_eq!(cut("bootstrap@fake.agentidp.test", 10), "bootstrap…");
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("abc", 0), "");
        // Wide characters count two columns each.
        let cut_wide = cut("日本語のオーナー", 7);
        assert!(of(&cut_wide) <= 7, "{cut_wide}");
        assert!(cut_wide.ends_with('…'));
    }
}
