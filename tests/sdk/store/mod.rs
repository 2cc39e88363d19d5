//! The shared token store (`store`): files across processes, and Redis.

mod file;
#[cfg(feature = "redis")]
mod redis;
mod revoked;
