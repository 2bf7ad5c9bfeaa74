//! HTTP/2 (RFC 9113) with the `h2` crate, on both sides of percore.
//!
//! **From clients.** A TLS bind whose client chose `h2` by ALPN, or any
//! bind with `proto = "h2"` (prior knowledge), is served here instead of by
//! `proxy::http`'s HTTP/1.1 session. Each stream becomes one request
//! through that same session: the stream is presented to it as an
//! HTTP/1.1 connection carrying a single request (`stream::H2Stream`, a
//! `proxy::http::client::Carried`), so the rules, routing, balancing,
//! persistence, error pages, timeouts, logs, counters and the server side
//! are the HTTP/1.1 ones, not a copy. HAProxy 1.8's first HTTP/2 frontend
//! worked the same way, by converting to HTTP/1.1 text for its HTTP engine.
//!
//! **To servers** with `proto = "h2"`: the session's server side is a
//! stream on one of the core's HTTP/2 connections to the server
//! (`upstream::ServerStream`, presented as an HTTP/1.1 connection carrying
//! one request; the connections are in `shard::h2pool`).
//!
//! - `conn`: a client connection: h2's limits, a task per stream, `timeout
//!   client`, rapid-reset accounting, counters and log lines.
//! - `stream`: one client stream as the session's client.
//! - `request`: an HTTP/2 request head written as HTTP/1.1.
//! - `server`: connections to servers: handshake, the task that drives
//!   one, picking a connection with room.
//! - `upstream`: one request to a server as a stream.
//! - `body`: bodies between DATA/trailers and HTTP/1.1 bytes, both ways,
//!   for both sides.
//! - `io`: the socket under tokio's I/O traits, which h2 needs (tokio
//!   without a runtime).

mod body;
mod conn;
mod io;
pub(crate) mod request;
pub(crate) mod server;
mod stream;
mod upstream;

pub use conn::serve;
pub(crate) use upstream::ServerStream;

use crate::net::Stream;
use crate::shard::CoreContext;

/// Whether a new client connection on `bind` of `frontend` speaks HTTP/2:
/// its bind says `proto = "h2"`, or TLS negotiated `h2` by ALPN.
pub fn negotiated(ctx: &CoreContext, (frontend, bind): (usize, usize), client: &Stream) -> bool {
    let forced = ctx.config.frontends[frontend]
        .bind_h2
        .get(bind)
        .copied()
        .unwrap_or(false);
    forced || client.alpn() == Some(b"h2")
}
