//! Walking paginated listings lazily.

use std::future::Future;

use futures::{Stream, StreamExt, TryStreamExt, stream};

use crate::error::Result;
use crate::model::Page;

/// The page size the SDK asks for unless told otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// Every item of every page from `first` on, fetching a page only when the
/// previous one is used up. Stops after a page that says there is no more, or
/// an empty page (so a server that miscounts cannot make it spin).
pub(crate) fn items<T, F, Fut>(
    first: u32,
    fetch: F,
) -> impl Stream<Item = Result<T>> + Send + 'static
where
    T: Send + 'static,
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Page<T>>> + Send + 'static,
{
    stream::try_unfold((Some(first), fetch), |(next, fetch)| async move {
        let Some(number) = next else { return Ok(None) };
        let page = fetch(number).await?;
        let more = page.has_more() && !page.items.is_empty();
        let next = more.then(|| number.checked_add(1)).flatten();
        Ok(Some((page.items, (next, fetch))))
    })
    .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// Turns the wire's echo of a page into a [`Page`], trusting the request for
/// what the server leaves out.
pub(crate) fn page<T>(items: Vec<T>, total: Option<i64>, page: u32, limit: u32) -> Page<T> {
    Page {
        items,
        total: total.and_then(|t| u64::try_from(t).ok()),
        page,
        limit,
    }
}
