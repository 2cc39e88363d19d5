//! Async or blocking: one client, one set of request builders, two ways to
//! wait for an answer.
//!
//! Every client, area handle and request builder is generic over its
//! [`Flavor`]: [`Async`] (the default) or, with the `blocking` feature,
//! [`Blocking`](crate::blocking::Blocking). A request is built the same way in
//! both; only `.send()` differs: `async` for [`Async`], blocking for
//! `Blocking`.

/// How a client's requests are waited for: [`Async`] or
/// [`Blocking`](crate::blocking::Blocking). Sealed.
pub trait Flavor: private::Sealed + Clone + std::fmt::Debug + Send + Sync + 'static {}

/// The async flavor: `.send()` returns a future (tokio).
#[derive(Clone, Copy, Debug)]
pub enum Async {}

impl Flavor for Async {}

pub(crate) mod private {
    /// What a flavor keeps in each client: nothing for async, the runtime
    /// thread for blocking.
    pub trait Sealed {
        type Runtime: Clone + Send + Sync + std::fmt::Debug + 'static;
    }
}

impl private::Sealed for Async {
    type Runtime = ();
}
