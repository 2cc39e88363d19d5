//! Presenting the agent's token to other services (feature `present`).
//!
//! An agent calling another service proves who it is with its AgentIdP
//! token. [`OutgoingAuth`] attaches the current token from the SDK's token
//! cache (refreshed before it expires, shared with the client), to the
//! origins it allows only, as a `tower::Layer` for tower-based clients or,
//! with the `reqwest-middleware` feature, as a `reqwest_middleware`
//! middleware:
//!
//! ```
//! # #[cfg(feature = "reqwest-middleware")]
//! # async fn run(client: &sentryagent_idp::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use sentryagent_idp::Scope;
//! use sentryagent_idp::present::{OutgoingAuth, PresentError};
//!
//! let auth = OutgoingAuth::builder(client)
//!     .allow_origin("https://reports.internal.example")
//!     .with_scopes([Scope::AUDIT_READ])
//!     .build()?;
//! let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(auth)
//!     .build();
//! match http.get("https://reports.internal.example/daily").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(e) => match PresentError::find(&e) {
//!         Some(PresentError::InsufficientScope { required }) => println!("needs {required}"),
//!         _ => return Err(e.into()),
//!     },
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Versions of the HTTP stack
//!
//! The `reqwest-middleware` feature is built against reqwest 0.13 and
//! reqwest-middleware 0.5 (re-exported as [`crate::reqwest`] for the one,
//! and named in your `Cargo.toml` for the other); the `tower::Layer`
//! against tower 0.5 and http 1. Use the same major versions: with another
//! (reqwest-middleware 0.4, say) cargo builds two copies, the traits do not
//! match, and the compiler reports ``error[E0277]: the trait bound
//! `OutgoingAuth: reqwest_middleware::Middleware` is not satisfied``, with
//! no hint; `cargo tree -d` shows the duplicate.

mod auth;
mod challenge;
mod error;
mod layer;
#[cfg(feature = "reqwest-middleware")]
mod middleware;
mod origin;

pub use auth::{DEFAULT_REFRESH_COOLDOWN, OutgoingAuth, OutgoingAuthBuilder, Replayable};
pub use error::PresentError;
pub use layer::{BoxError, OutgoingAuthService};
pub use origin::Origin;
