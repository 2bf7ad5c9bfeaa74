//! A failed client handshake: why, in the log's words, and what is
//! counted.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::shard::CoreContext;
use crate::tls::handshake::HandshakeError;

/// Why a client's handshake failed, for the log line: rustls' or the
/// socket's own words ("received corrupt message of type
/// InvalidContentType" for plain HTTP, "peer is incompatible: ..." for no
/// common version or suite, "tls handshake eof" for a client that left).
pub fn failure_reason(e: &HandshakeError) -> String {
    match e {
        HandshakeError::TimedOut => "timeout".into(),
        HandshakeError::Failed(io) => io.to_string(),
    }
}

/// Counts a failed client handshake on its frontend and, when the
/// frontend logs, writes HAProxy's error line for it (see
/// [`connection_error`]): `... SSL handshake failure (<reason>)`.
pub fn handshake_failed(
    ctx: &CoreContext,
    (frontend, bind): (usize, usize),
    peer: SocketAddr,
    e: &HandshakeError,
) {
    ctx.stats.borrow_mut().frontends[frontend].ssl_failed_handshakes += 1;
    connection_error(
        ctx,
        (frontend, bind),
        peer,
        format_args!("SSL handshake failure ({})", failure_reason(e)),
    );
}

/// When the frontend logs, writes HAProxy's line for a connection that
/// failed before any request:
/// `<ip>:<port> [<date>] <frontend>/<bind>: <what>` (HAProxy names the
/// bind; percore's binds are named by their address). The date is when
/// it failed.
pub fn connection_error(
    ctx: &CoreContext,
    (frontend, bind): (usize, usize),
    peer: SocketAddr,
    what: std::fmt::Arguments<'_>,
) {
    if !super::accesslog::enabled(ctx, frontend) {
        return;
    }
    let fe = &ctx.config.frontends[frontend];
    let date = ctx.log.clock().date(SystemTime::now()).haproxy();
    ctx.log.emit(|out| {
        use std::fmt::Write as _;
        let _ = write!(out, "{}:{} [{date}] {}/", peer.ip(), peer.port(), fe.name);
        match fe.binds.get(bind) {
            Some(addr) => {
                let _ = write!(out, "{addr}");
            }
            None => {
                let _ = write!(out, "{}", bind + 1);
            }
        }
        let _ = write!(out, ": {what}");
    });
}
