//! Access logs: HAProxy's tcplog and httplog lines and JSON, sent to
//! stdout, a file or syslog over UDP (RFC 3164 / 5424).
//!
//! Flow: a session builds a [`LogRecord`] when it ends; the core formats it
//! into its [`CoreLog`] buffer (no I/O, no lock); the buffer goes to the
//! [`LogWriter`] thread in batches over a bounded channel. When the buffer
//! or the channel is full, lines are dropped and counted (visible in the
//! stats as `log_dropped`), so logging never blocks an executor.

pub mod capture;
mod core;
pub mod custom;
pub mod date;
pub mod format;
pub mod record;
pub mod syslog;
mod writer;

pub use self::core::{CoreLog, FLUSH_EVERY};
pub use capture::capture_request_headers;
pub use date::Clock;
pub use format::format_record;
pub use record::{ConnCounts, HttpLog, LogRecord};
pub use writer::{Batch, LogStartError, LogWriter};
