//! A listing and how it stands to the whole: the items shown, and for one
//! page of several, which page and the server's total, so that a cut-off
//! listing says so (on stderr) and scripts can read the total
//! (`--envelope`).

/// The items a listing shows.
#[derive(Debug)]
pub(crate) struct Listing<T> {
    pub items: Vec<T>,
    /// For one page of a paged listing: where it stands.
    pub page: Option<PageOf>,
}

/// One page's place in the whole listing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PageOf {
    /// The 1-based page number.
    pub number: u32,
    /// The page size the server used.
    pub limit: u32,
    /// The number of matching items across all pages, when the server says.
    pub total: Option<u64>,
    /// Whether a later page may hold more.
    pub more: bool,
}

impl<T> Listing<T> {
    /// Every item there is (every page, or a listing that is not paged).
    pub fn whole(items: Vec<T>) -> Self {
        Listing { items, page: None }
    }

    /// One page of a paged listing.
    pub fn page(page: sentryagent_idp::model::Page<T>) -> Self {
        let more = page.has_more();
        Listing {
            page: Some(PageOf {
                number: page.page,
                limit: page.limit,
                total: page.total,
                more,
            }),
            items: page.items,
        }
    }

    /// The sentence that says a listing shows less than there is, as gh and
    /// kubectl say it: `showing 20 of 24 agents; --page 2 for the next,
    /// --all for every page`; none when it shows everything.
    pub fn note(&self, noun: &str) -> Option<String> {
        let page = self.page?;
        let shown = self.items.len() as u64;
        let number = page.number;
        let pages = page
            .total
            .map(|total| total.div_ceil(u64::from(page.limit.max(1))));
        let of_pages = match pages {
            Some(pages) if number > 1 || pages > 1 => format!(" (page {number} of {pages})"),
            None if number > 1 => format!(" (page {number})"),
            _ => String::new(),
        };
        let next = if page.more {
            format!("--page {} for the next, ", u64::from(number) + 1)
        } else {
            String::new()
        };
        match page.total {
            Some(total) if shown < total => Some(format!(
                "showing {shown} of {total} {noun}{of_pages}; {next}--all for every page"
            )),
            Some(_) => None,
            None if page.more => Some(format!(
                "showing {shown} {noun}{of_pages}, there may be more; {next}--all for every page"
            )),
            None => None,
        }
    }

    /// The listing as the API's page envelope: `{"data": […], "total": N}`,
    /// with `page` and `limit` for one page (`total` is the server's,
    /// `null` when it gave none); for a whole listing, `total` is the
    /// number of items.
    pub fn envelope(&self, data: Vec<serde_json::Value>) -> serde_json::Value {
        match self.page {
            Some(page) => serde_json::json!({
                "data": data,
                "total": page.total,
                "page": page.number,
                "limit": page.limit,
            }),
            None => serde_json::json!({ "data": data, "total": self.items.len() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(shown: usize, number: u32, total: Option<u64>, more: bool) -> Listing<u8> {
        Listing {
            items: vec![0; shown],
            page: Some(PageOf {
                number,
                limit: 20,
                total,
                more,
            }),
        }
    }

    #[test]
    fn a_cut_off_listing_says_how_much_it_shows_and_how_to_see_the_rest() {
        assert_eq!(
            page(20, 1, Some(24), true).note("agents").as_deref(),
            Some(
                "showing 20 of 24 agents (page 1 of 2); --page 2 for the next, --all for every page"
            )
        );
        assert_eq!(
            page(4, 2, Some(24), false).note("agents").as_deref(),
            Some("showing 4 of 24 agents (page 2 of 2); --all for every page")
        );
        assert_eq!(
            page(20, 1, None, true).note("agents").as_deref(),
            Some(
                "showing 20 agents, there may be more; --page 2 for the next, --all for every page"
            )
        );
        assert_eq!(page(5, 1, Some(5), false).note("agents"), None);
        assert_eq!(page(5, 1, None, false).note("agents"), None);
        assert_eq!(Listing::whole(vec![0u8; 3]).note("agents"), None);
    }
}
