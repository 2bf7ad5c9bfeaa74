//! `mode = "http"` sessions: HTTP/1.1 reverse proxying on top of the
//! I/O-free message layer in `crate::http`.
//!
//! - [`session`]: one task per client connection: heads, keep-alive,
//!   pipelining, error pages, the switch to a tunnel (WebSocket).
//! - `exchange`: one request/response with a server, body up and response
//!   down concurrently.
//! - `client` / `server`: the two ends of an exchange, each a socket of
//!   its own or an HTTP/2 stream (`proxy::h2`) presented as one.
//! - `body`: streamed bodies (Content-Length, chunked, close-delimited).
//! - [`pool`]: the per-core idle server connection pool (`http-reuse`).
//! - `io`: receive buffers, shared stream halves, timeouts.
//! - `report`: per-request counters, latency, passive health and the
//!   access-log line.
//!
//! Server slots (`maxconn`) are held while a request is being served and
//! given back when its response has been delivered: idle connections, kept
//! by a client connection or pooled, hold none (HAProxy counts requests
//! against `maxconn`, not idle connections).

mod body;
pub(crate) mod client;
mod exchange;
mod io;
mod report;
mod route;
pub(crate) mod server;
pub mod session;

pub(crate) use session::serve;
pub(crate) use session::{finish_fresh, move_to_newest, resume, serve_carried, Ending, Idle};
