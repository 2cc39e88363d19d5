//! Walking paginated listings lazily: [`Paginator`].

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::num::NonZeroU32;

use futures::Stream;
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::{Keyed, Page};
use crate::operation::Operation;

/// The page size `.send()` asks for unless told otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// The page size `.stream()` asks for unless told otherwise: fewer, larger
/// requests for a walk.
pub const DEFAULT_STREAM_PAGE_SIZE: u32 = 100;

/// A walk gives up after this many pages: no real listing is that long, and
/// a server that ignores `page` must not make a walk endless.
pub const MAX_PAGES: u32 = 100_000;

/// A walk remembers the ids of this many items it yielded last, to yield
/// none twice when the listing shifts under it: memory stays bounded (16
/// bytes an id, about 4 MB with the set's overhead), and only a listing that
/// grew by more than this many items during one walk can bring an item
/// back.
pub const WALK_MEMORY: usize = 100_000;

/// The requests of one walk: page `n` of the listing.
pub(crate) trait Pages: Send + 'static {
    type Item: Send + 'static;

    /// Fetches page `page` (1-based), of `size` items when the walk learned
    /// the server's page size (`None`: the size the request asked for).
    fn fetch(
        &mut self,
        page: u32,
        size: Option<u32>,
    ) -> BoxFuture<'static, Result<Page<Self::Item>>>;

    /// Called with the first page, before it is yielded: a listing that
    /// grows while it is walked pins its bounds here.
    fn first_page(&mut self, _page: &Page<Self::Item>) {}
}

/// Every item of a paginated listing, fetching a page only when the previous
/// one is used up. `Unpin`, so `while let Some(item) = pages.next().await`
/// needs no `pin!`.
///
/// Pages are counted in the page size the server uses: the `limit` it echoes
/// (a server may cap the size asked for), or, when it says only `total`, the
/// length of a first page shorter than asked though more items match; later
/// pages are asked in that size. It ends after a page that says there is no
/// more, or an empty page.
///
/// It yields no item twice: it remembers the ids it yielded (the last
/// [`WALK_MEMORY`] of them), so items pushed onto later pages by items added
/// meanwhile are dropped, however many were added. It ends with
/// [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) when a
/// page repeats the page before it whole while the server's `total` (if it
/// says one) is unchanged (a server that ignores `page`), or after
/// [`MAX_PAGES`] pages. After an error it yields nothing more.
#[must_use = "a paginator does nothing unless polled"]
pub struct Paginator<T> {
    pages: Box<dyn Pages<Item = T>>,
    next_page: Option<u32>,
    fetched: u32,
    pending: Option<BoxFuture<'static, Result<Page<T>>>>,
    ready: VecDeque<T>,
    key: fn(&T) -> Uuid,
    /// The page size learned from the first page, when it differs from the
    /// one asked for.
    size: Option<u32>,
    /// The previous page: its keys in order, and its `total`.
    previous: (Vec<Uuid>, Option<u64>),
    /// Keys yielded, the oldest first in `order`; at most [`WALK_MEMORY`].
    seen: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl<T> fmt::Debug for Paginator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paginator")
            .field("next_page", &self.next_page)
            .field("fetched", &self.fetched)
            .finish_non_exhaustive()
    }
}

// Nothing of `T` is pinned: items are moved out of a queue.
impl<T> Unpin for Paginator<T> {}

impl<T: Send + 'static> Paginator<T> {
    pub(crate) fn new(first: u32, pages: impl Pages<Item = T>) -> Self
    where
        T: Keyed,
    {
        Self {
            key: T::key,
            pages: Box::new(pages),
            next_page: Some(first.max(1)),
            fetched: 0,
            pending: None,
            ready: VecDeque::new(),
            size: None,
            previous: (Vec::new(), None),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether `key` is new to the walk; remembers it.
    fn remember(&mut self, key: Uuid) -> bool {
        if !self.seen.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > WALK_MEMORY
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    /// Takes in a fetched page: what it adds, and where the walk goes next.
    fn accept(&mut self, number: u32, page: Page<T>) -> Result<()> {
        let len = page.items.len();
        if self.fetched == 1 {
            self.pages.first_page(&page);
            // A server that caps the page size without echoing it: a short
            // first page while `total` says more match after it shows its size.
            let before = u64::from(number.saturating_sub(1)) * u64::from(page.limit);
            let capped = page
                .total
                .is_some_and(|total| before + (len as u64) < total)
                && len > 0
                && len < page.limit as usize;
            let size = if capped { len as u32 } else { page.limit };
            self.size = Some(size);
        }
        let size = self.size.unwrap_or(page.limit).max(1);
        let keys: Vec<Uuid> = page.items.iter().map(self.key).collect();
        // A server that ignores `page` answers the same page again. So does
        // a listing that grew by a page between two fetches, but then its
        // total changed.
        let (previous, previous_total) = &self.previous;
        if !keys.is_empty() && keys == *previous && page.total == *previous_total {
            self.next_page = None;
            return Err(Error::invalid_response(format!(
                "page {number} repeats the page before it; the server may not support paging"
            )));
        }
        let more = len > 0
            && match page.total {
                Some(total) => u64::from(number) * u64::from(size) < total,
                None => len >= size as usize,
            };
        self.previous = (keys, page.total);
        for item in page.items {
            if self.remember((self.key)(&item)) {
                self.ready.push_back(item);
            }
        }
        self.next_page = match number.checked_add(1) {
            Some(next) if more && self.fetched < MAX_PAGES => Some(next),
            Some(_) if more => {
                return Err(Error::invalid_response(format!(
                    "the listing goes on past {MAX_PAGES} pages; stopped"
                )));
            }
            _ => None,
        };
        Ok(())
    }
}

impl<T: Send + 'static> Stream for Paginator<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(item)));
            }
            if this.pending.is_none() {
                let Some(number) = this.next_page else {
                    return Poll::Ready(None);
                };
                this.fetched += 1;
                this.pending = Some(this.pages.fetch(number, this.size));
            }
            let Some(pending) = this.pending.as_mut() else {
                return Poll::Ready(None);
            };
            let page = match pending.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(page) => page,
            };
            this.pending = None;
            let number = this.next_page.unwrap_or(1);
            let accepted = page.and_then(|page| this.accept(number, page));
            if let Err(e) = accepted {
                this.next_page = None;
                this.ready.clear();
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

/// The `page` and `limit` of a listing request, as given.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Paging {
    pub(crate) page: Option<u32>,
    pub(crate) limit: Option<u32>,
}

/// What one page request asks for, as the spec's positive integers.
pub(crate) struct PageQuery {
    pub(crate) page: NonZeroU32,
    pub(crate) size: NonZeroU32,
}

impl Paging {
    /// The page to ask for (default 1, [`DEFAULT_PAGE_SIZE`] items).
    pub(crate) fn query(self, op: Operation) -> Result<PageQuery> {
        let nonzero = |name: &str, n: u32| {
            NonZeroU32::new(n).ok_or_else(|| {
                Error::invalid_input(format!("`{name}` must be at least 1")).with_operation(op)
            })
        };
        Ok(PageQuery {
            page: nonzero("page", self.page.unwrap_or(1))?,
            size: nonzero("limit", self.limit.unwrap_or(DEFAULT_PAGE_SIZE))?,
        })
    }

    /// Sets up a walk: pages of [`DEFAULT_STREAM_PAGE_SIZE`] unless a limit
    /// was given; returns the page it starts at.
    pub(crate) fn walk(&mut self) -> u32 {
        self.limit = Some(self.limit.unwrap_or(DEFAULT_STREAM_PAGE_SIZE));
        self.page.unwrap_or(1)
    }
}

impl PageQuery {
    /// Turns the wire's echo of a page into a [`Page`], trusting the request
    /// for what the server leaves out: `limit` is the page size the server
    /// says it used (it may cap the one asked for), else the one asked for.
    pub(crate) fn page<T>(&self, items: Vec<T>, total: Option<i64>, limit: Option<i32>) -> Page<T> {
        let echoed = limit.and_then(|l| u32::try_from(l).ok()).filter(|l| *l > 0);
        Page {
            items,
            total: total.and_then(|t| u64::try_from(t).ok()),
            page: self.page.get(),
            limit: echoed.unwrap_or(self.size.get()),
        }
    }
}

/// The `page` and `limit` setters of a listing request with a `paging` field.
macro_rules! paging_setters {
    ($request:ident) => {
        impl<F: Flavor> $request<F> {
            /// The 1-based page to fetch (default 1); for a walk, where to start.
            pub fn page(mut self, page: u32) -> Self {
                self.paging.page = Some(page);
                self
            }

            /// The page size (default 20 for one page, 100 for a walk).
            pub fn limit(mut self, limit: u32) -> Self {
                self.paging.limit = Some(limit);
                self
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[derive(Clone, Debug, PartialEq)]
    struct Item(Uuid);

    impl Keyed for Item {
        fn key(&self) -> Uuid {
            self.0
        }
    }

    /// Serves `pages` in order (the last repeats), and never says `total`.
    struct Script(Vec<Vec<Item>>, u32);

    impl Pages for Script {
        type Item = Item;

        fn fetch(&mut self, number: u32, _: Option<u32>) -> BoxFuture<'static, Result<Page<Item>>> {
            let index = (number as usize - 1).min(self.0.len() - 1);
            let query = Paging {
                page: Some(number),
                limit: Some(self.1),
            }
            .query(Operation::ListAgents)
            .expect("positive");
            let page = query.page(self.0[index].clone(), None, None);
            Box::pin(async move { Ok(page) })
        }
    }

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|_| Item(Uuid::new_v4())).collect()
    }

    #[tokio::test]
    async fn a_server_that_repeats_a_page_ends_the_walk_with_an_error() {
        let page = items(2);
        let mut walk = Paginator::new(1, Script(vec![page.clone()], 2));
        let got: Vec<_> = (&mut walk).take(10).collect().await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[2].is_err());
        assert!(walk.next().await.is_none());
    }

    #[tokio::test]
    async fn an_item_shifted_onto_the_next_page_is_yielded_once() {
        let all = items(5);
        let first = all[0..2].to_vec();
        // One item was added at the front: page 2 starts with page 1's last.
        let second = all[1..3].to_vec();
        let third = all[3..4].to_vec();
        let walk = Paginator::new(1, Script(vec![first, second, third], 2));
        let got: Vec<Item> = walk.map(|r| r.unwrap()).collect().await;
        assert_eq!(got, all[0..4].to_vec());
    }

    #[tokio::test]
    async fn a_short_or_empty_page_ends_the_walk() {
        let walk = Paginator::new(1, Script(vec![items(2), items(1)], 2));
        assert_eq!(walk.count().await, 3);
        let walk = Paginator::new(1, Script(vec![items(2), vec![]], 2));
        assert_eq!(walk.count().await, 2);
    }

    /// A listing of `.0` behind a server that serves pages of at most `.1`
    /// items and says `total`, but not the size it used.
    struct Capped(Vec<Item>, usize);

    impl Pages for Capped {
        type Item = Item;

        fn fetch(
            &mut self,
            number: u32,
            size: Option<u32>,
        ) -> BoxFuture<'static, Result<Page<Item>>> {
            let asked = size.unwrap_or(100);
            let served = (asked as usize).min(self.1);
            let start = (number as usize - 1) * served;
            let items = self.0.iter().skip(start).take(served).cloned().collect();
            let query = Paging {
                page: Some(number),
                limit: Some(asked),
            }
            .query(Operation::ListAgents)
            .expect("positive");
            let page = query.page(items, i64::try_from(self.0.len()).ok(), None);
            Box::pin(async move { Ok(page) })
        }
    }

    #[tokio::test]
    async fn a_capped_page_size_is_learned_from_a_short_first_page() {
        let all = items(450);
        let walk = Paginator::new(1, Capped(all.clone(), 40));
        let got: Vec<Item> = walk.map(|r| r.unwrap()).collect().await;
        assert_eq!(got, all);
        // Started at the last page (of 100), short because it is the last.
        let walk = Paginator::new(5, Capped(all.clone(), 1000));
        let got: Vec<Item> = walk.map(|r| r.unwrap()).collect().await;
        assert_eq!(got, all[400..].to_vec());
    }

    #[test]
    fn the_paginator_is_unpin_and_send() {
        fn check<T: Unpin + Send>() {}
        check::<Paginator<Item>>();
    }
}
