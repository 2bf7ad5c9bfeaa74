//! Per-connection sessions: what happens between accept and close.
//!
//! A session borrows everything it needs from its core's
//! [`CoreContext`](crate::shard::CoreContext), the generation of
//! configuration it was accepted under: the validated config (read-only),
//! the core's backend states, its pipe pool and its counters. Nothing here
//! is shared with another core.

pub mod accesslog;
pub mod connect;
pub mod count;
pub mod h2;
pub mod http;
pub mod inspect;
pub mod proxy_header;
pub mod tcp;
pub mod tls;
