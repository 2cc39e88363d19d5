//! The `send!` macro: `.send()` for both flavors of a request builder.

/// `.send()` for both flavors of a request builder whose `run(self)` does
/// the work: `async` for `Async`, blocking on the client's runtime thread
/// for `Blocking`.
macro_rules! send {
    ($request:ident => $output:ty) => {
        impl $request<$crate::flavor::Async> {
            /// Sends the request.
            pub async fn send(self) -> $crate::error::Result<$output> {
                self.run().await
            }
        }

        #[cfg(feature = "blocking")]
        impl $request<$crate::blocking::Blocking> {
            /// Sends the request and blocks until it is answered.
            pub fn send(self) -> $crate::error::Result<$output> {
                let runtime = self.client.runtime().clone();
                runtime.block_on(self.run())
            }
        }
    };
}
