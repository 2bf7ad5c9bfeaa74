//! HTTP/2 connections to servers with `proto = "h2"`: the h2 client
//! handshake on a connection `proxy::connect` opened (TCP, PROXY header,
//! TLS with ALPN `h2`), the task that drives the connection's frames, and
//! the stream a request takes on it (`upstream::ServerStream`).
//!
//! The connections live in the core's `shard::h2pool::H2Pool`: a request
//! takes a stream on one with room, waits for the server's SETTINGS on the
//! one connection that has not had them yet, or the session connects a
//! new one through the usual balancing, retry and redispatch loop, so a
//! connect failure, `timeout connect` and the server's `maxconn` (which
//! counts requests, as for HTTP/1.1) behave as they do for HTTP/1.1
//! servers.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::Reason;

use super::io::{Activity, TokioIo};
use super::upstream::ServerStream;
use crate::config::Tune;
use crate::net::Stream;
use crate::shard::h2pool::{H2Conn, Pick, UNSETTLED_STREAMS};
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
        // Not a limit: the pool decides how many streams a connection
        // takes before the server's SETTINGS; this value tells when they
        // came (`H2Conn::check_settled`).
        .initial_max_send_streams(UNSETTLED_STREAMS)
        // Servers push nothing to a proxy.
        .enable_push(false)
        .max_concurrent_reset_streams(h2.max_concurrent_streams as usize)
        .max_local_error_reset_streams(Some(100));
    b
}

/// What the core's pool offers a request to `server` of `backend`.
pub(crate) enum Pooled {
    /// A stream on a connection the core already has (or is connecting).
    Stream(Box<ServerStream>),
    /// Every connection is full and this one has not had the server's
    /// SETTINGS yet: wait for them (bounded by [`wait_limit`]), then
    /// ask again.
    Wait(Rc<H2Conn>),
    /// Connect one more (and [`announce`] it).
    Connect,
}

pub(crate) fn pooled(ctx: &CoreContext, backend: usize, server: usize) -> Pooled {
    match ctx.h2_pool.pick(backend, server) {
        Pick::Room(conn) => match ServerStream::open(ctx, backend, server, conn) {
            Some(stream) => Pooled::Stream(Box::new(stream)),
            None => Pooled::Connect,
        },
        Pick::Wait(conn) => Pooled::Wait(conn),
        Pick::Connect => Pooled::Connect,
    }
}

/// How long a connection's SETTINGS, or a request waiting for a stream,
/// wait when the backend has neither `timeout connect` nor `timeout queue`.
const WAIT_DEFAULT: Duration = Duration::from_secs(5);

/// How long a new connection waits for the server's SETTINGS before it is
/// closed: they are part of connecting, so `timeout connect`.
pub(crate) fn settings_limit(ctx: &CoreContext, backend: usize) -> Duration {
    ctx.config.backends[backend]
        .timeouts
        .connect
        .unwrap_or(WAIT_DEFAULT)
}

/// How long a request waits for a stream on the server's connections
/// (their SETTINGS, then the next connection): a queue of sorts, so
/// `timeout queue`, which defaults to `timeout connect` as HAProxy's does.
/// A request never waits forever for a server that says nothing.
pub(crate) fn wait_limit(ctx: &CoreContext, backend: usize) -> Duration {
    ctx.backends[backend]
        .borrow()
        .queue_timeout()
        .unwrap_or(WAIT_DEFAULT)
}

/// Lists a connection to the server that the caller is about to make, so
/// that requests arriving meanwhile wait for it rather than each making
/// one more. The caller's own stream on it is counted now: the requests
/// that join it while it connects see it (else one stream more than the
/// server's limit went out ahead of its SETTINGS, and was refused). The
/// caller hands it to [`connected`], or fails it.
pub(crate) fn announce(ctx: &CoreContext, backend: usize, server: usize) -> Rc<H2Conn> {
    let conn = unlisted();
    ctx.h2_pool.add(backend, server, Rc::clone(&conn));
    conn
}

/// A connection about to be made, with the caller's stream counted.
fn unlisted() -> Rc<H2Conn> {
    let conn = H2Conn::connecting();
    // A new entry takes a stream.
    conn.open_stream();
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
        None => unlisted(),
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
    let settle = settings_limit(ctx, backend);
    glommio::spawn_local(drive(conn, Rc::clone(&entry), names, settle)).detach();
    Ok(Box::new(ServerStream::counted(ctx, backend, server, entry)))
}

/// Reads and writes the connection's frames until it ends; tells the pool
/// when the server's SETTINGS came, and closes the connection if they did
/// not within `settle` (requests wait for them); closes it once it has had
/// no stream for `PURGE_DELAY` (HAProxy's `pool-purge-delay`, as for idle
/// HTTP/1.1 connections).
async fn drive<C>(conn: C, entry: Rc<H2Conn>, names: String, settle: Duration)
where
    C: Future<Output = Result<(), h2::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    let settle_by = Instant::now() + settle;
    let ended = loop {
        let settled = entry.check_settled();
        let pause = if settled {
            PURGE_DELAY
        } else {
            settle_by.saturating_duration_since(Instant::now())
        };
        let tick = async {
            glommio::timer::sleep(pause).await;
            None
        };
        // Each turn of h2's connection may apply the SETTINGS.
        let polled = std::future::poll_fn(|cx| {
            let turn = conn.as_mut().poll(cx);
            entry.check_settled();
            turn.map(Some)
        });
        match futures_lite::future::or(polled, tick).await {
            Some(ended) => break ended,
            None if !entry.check_settled() => {
                eprintln!(
                    "[WARNING] {names}: no HTTP/2 SETTINGS from the server within {settle:?}; connection closed"
                );
                break Ok(());
            }
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
