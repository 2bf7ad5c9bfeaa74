//! HTTP/2 connections to servers with `proto = "h2"`: the h2 client
//! handshake on a connection `proxy::connect` opened (TCP, PROXY header,
//! TLS with ALPN `h2`), the task that drives the connection's frames, and
//! the stream a request takes on it (`upstream::ServerStream`).
//!
//! The connections live in the core's `shard::h2pool::H2Pool`: a request
//! takes a stream on one with room, or the session connects a new one
//! through the usual balancing, retry and redispatch loop, so a connect
//! failure, `timeout connect` and the server's `maxconn` (which counts
//! requests, as for HTTP/1.1) behave as they do for HTTP/1.1 servers.

use std::io;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use h2::Reason;

use super::io::{Activity, TokioIo};
use super::upstream::ServerStream;
use crate::config::Tune;
use crate::net::Stream;
use crate::shard::h2pool::{H2Conn, INITIAL_STREAMS};
use crate::shard::pool::PURGE_DELAY;
use crate::shard::CoreContext;

/// The h2 client settings: every limit set here rather than left to the
/// crate's defaults, so docs/security.md can say what they are.
fn builder(tune: &Tune) -> h2::client::Builder {
    let h2 = &tune.h2;
    let mut b = h2::client::Builder::new();
    // A server's response head is bounded as an HTTP/1.1 one is.
    let header_list = u32::try_from(tune.bufsize).unwrap_or(u32::MAX);
    b.initial_window_size(h2.initial_window_size)
        .initial_connection_window_size(h2.initial_window_size.max(1 << 20))
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(header_list)
        .header_table_size(h2.header_table_size)
        // Request bytes queued per stream before a write waits.
        .max_send_buffer_size(tune.bufsize)
        // Streams percore opens before the server's SETTINGS say how many
        // it takes (h2's default, written down).
        .initial_max_send_streams(INITIAL_STREAMS)
        // Servers push nothing to a proxy.
        .enable_push(false)
        .max_concurrent_reset_streams(h2.max_concurrent_streams as usize)
        .max_local_error_reset_streams(Some(100));
    b
}

/// A stream to `server` of `backend` on a connection the core already
/// has (or is connecting), if one has room.
pub(crate) fn pooled_stream(
    ctx: &CoreContext,
    backend: usize,
    server: usize,
) -> Option<Box<ServerStream>> {
    let conn = ctx.h2_pool.pick(backend, server)?;
    ServerStream::open(ctx, backend, server, conn).map(Box::new)
}

/// Lists a connection to the server that the caller is about to make, so
/// that requests arriving meanwhile wait for it rather than each making
/// one more. The caller hands it to [`connected`], or fails it.
pub(crate) fn announce(ctx: &CoreContext, backend: usize, server: usize) -> Rc<H2Conn> {
    let conn = H2Conn::connecting();
    ctx.h2_pool.add(backend, server, Rc::clone(&conn));
    conn
}

/// Makes `stream`, a new connection to the server, an HTTP/2 one: the
/// client preface and SETTINGS go out, the connection (`announced`, or a
/// new entry) opens in the core's pool, and its first stream is returned.
/// A connection that began with a PROXY header speaks for one client: it
/// is never listed, and carries that one request.
pub(crate) async fn connected(
    ctx: &CoreContext,
    (backend, server): (usize, usize),
    stream: Stream,
    announced: Option<Rc<H2Conn>>,
) -> io::Result<Box<ServerStream>> {
    let be = &ctx.config.backends[backend];
    let entry = match announced {
        Some(entry) => entry,
        None if be.servers[server].send_proxy.is_none() => announce(ctx, backend, server),
        None => H2Conn::connecting(),
    };
    let io = TokioIo::new(stream, Rc::new(Activity::default()));
    let handshake = builder(&ctx.config.global.tune)
        .handshake::<_, Bytes>(io)
        .await;
    let (send, conn) = match handshake {
        Ok(made) => made,
        Err(e) => {
            entry.failed();
            return Err(io::Error::other(e));
        }
    };
    entry.opened(send);
    let names = format!(
        "backend \"{}\" server \"{}\"",
        be.name, be.servers[server].name
    );
    glommio::spawn_local(drive(conn, Rc::clone(&entry), names)).detach();
    ServerStream::open(ctx, backend, server, entry)
        .map(Box::new)
        .ok_or_else(|| io::Error::from(io::ErrorKind::ConnectionReset))
}

/// Reads and writes the connection's frames until it ends; closes it once
/// it has had no stream for `PURGE_DELAY` (HAProxy's `pool-purge-delay`,
/// as for idle HTTP/1.1 connections).
async fn drive<C>(conn: C, entry: Rc<H2Conn>, names: String)
where
    C: std::future::Future<Output = Result<(), h2::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    let ended = loop {
        let tick = async {
            glommio::timer::sleep(PURGE_DELAY).await;
            None
        };
        let polled = async { Some(conn.as_mut().await) };
        match futures_lite::future::or(polled, tick).await {
            Some(ended) => break ended,
            None => {
                if let Some(since) = Instant::now().checked_sub(PURGE_DELAY) {
                    entry.close_if_idle_since(since);
                }
            }
        }
    };
    entry.failed();
    if let Err(e) = ended {
        // A server that went away or said goodbye is not news; anything
        // else is worth a line.
        if !e.is_io() && e.reason() != Some(Reason::NO_ERROR) {
            let side = if e.is_remote() { "server sent" } else { "sent" };
            match e.reason() {
                Some(reason) => {
                    eprintln!(
                        "[WARNING] {names}: HTTP/2 connection error (GOAWAY {reason:?} {side})"
                    )
                }
                None => eprintln!("[WARNING] {names}: HTTP/2 connection error ({e})"),
            }
        }
    }
}
