//! One HTTP/2 client connection: the h2 server connection with percore's
//! limits, a task per stream, `timeout client`, rapid-reset accounting,
//! and the counters and log lines of what was refused.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use glommio::timer::Timer;
use h2::Reason;

use super::io::{Activity, TokioIo};
use super::request::{self, Refused};
use super::stream::{H2Stream, Incoming};
use crate::config::Tune;
use crate::http::Method;
use crate::proxy::http::client::Carrier;
use crate::proxy::http::{move_to_newest, serve_carried};
use crate::proxy::inspect::local_addr;
use crate::proxy::proxy_header::Client;
use crate::shard::sessions::SessionId;
use crate::shard::CoreContext;

/// Streams the client cancelled (RST_STREAM before their response was
/// complete) that a connection is allowed before percore suspects a rapid
/// reset attack (CVE-2023-44487). Beyond it, a connection whose cancelled
/// streams outnumber its completed ones is closed with GOAWAY
/// ENHANCE_YOUR_CALM. Browsers cancel a few streams per page at most.
const CANCEL_BUDGET: u64 = 100;

/// What the connection and its stream tasks share.
#[derive(Default)]
pub(super) struct ConnState {
    /// Streams the client cancelled before their response was complete.
    pub cancelled: Cell<u64>,
    /// Stream tasks running.
    active: Cell<usize>,
    /// The connection task, waiting for a stream task to end.
    waiting: Cell<Option<Waker>>,
}

impl ConnState {
    fn stream_started(&self) {
        self.active.set(self.active.get() + 1);
    }

    fn stream_ended(&self) {
        self.active.set(self.active.get() - 1);
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
    }
}

/// The h2 server settings: every limit set here rather than left to the
/// crate's defaults, so docs/security.md can say what they are.
fn builder(tune: &Tune) -> h2::server::Builder {
    let h2 = &tune.h2;
    let mut b = h2::server::Builder::new();
    // The header list a client may send: the same bound as an HTTP/1.1
    // head (`tune.bufsize`). h2 stops decoding a header block beyond it
    // (HPACK bombs, CONTINUATION floods end there).
    let header_list = u32::try_from(tune.bufsize).unwrap_or(u32::MAX);
    b.max_concurrent_streams(h2.max_concurrent_streams)
        .initial_window_size(h2.initial_window_size)
        // All streams together buffer at most this much request body.
        .initial_connection_window_size(h2.initial_window_size.max(1 << 20))
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(header_list)
        .header_table_size(h2.header_table_size)
        // Response bytes queued per stream before a write waits.
        .max_send_buffer_size(tune.bufsize)
        // Streams reset before they were accepted (HEADERS then
        // RST_STREAM in one read): GOAWAY ENHANCE_YOUR_CALM beyond this.
        .max_pending_accept_reset_streams(20)
        // Streams percore had to reset for the client's protocol errors.
        .max_local_error_reset_streams(Some(100))
        // Reset streams remembered (frames for them are ignored).
        .max_concurrent_reset_streams(h2.max_concurrent_streams as usize)
        .reset_stream_duration(Duration::from_secs(5));
    b
}

/// Serves an HTTP/2 client connection until it closes; returns the
/// generation and frontend it ended under (where it is counted open).
pub async fn serve(
    ctx: Rc<CoreContext>,
    (frontend, bind): (usize, usize),
    (client, peer, proxied): Client,
    session: SessionId,
) -> (Rc<CoreContext>, usize) {
    let (mut ctx, mut frontend) = (ctx, frontend);
    let fe = &ctx.config.frontends[frontend];
    let carrier = Carrier {
        local: local_addr(fe, client.tcp()),
        tls: client.is_tls(),
        tls_facts: client.tls_params().map(|params| {
            crate::rules::TlsFacts::new(client.sni(), params, client.alpn())
                .with_client_cert(client.peer_certificate())
        }),
        version: "HTTP/2.0",
        fd: client.as_raw_fd(),
    };
    let fd = carrier.fd;
    let activity = Rc::new(Activity::default());
    let io = TokioIo::new(client, Rc::clone(&activity));
    // The preface and SETTINGS exchange, bounded like a request head.
    let limit = fe.timeouts.http_request.or(fe.timeouts.client);
    let handshake = builder(&ctx.config.global.tune).handshake::<_, Bytes>(io);
    let mut conn = match within(limit, handshake).await {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => {
            connection_error(&ctx, (frontend, bind), peer, &e);
            return (ctx, frontend);
        }
        None => return (ctx, frontend),
    };

    let state = Rc::new(ConnState::default());
    let gate = glommio::sync::Gate::new();
    let mut streams: u64 = 0;
    // `timeout client`: checked once per period; a connection that moved
    // no byte for a whole period while it had nothing to do, or while its
    // writes waited for the client, is closed (so after one to two
    // periods).
    let period = ctx.config.frontends[frontend].timeouts.client;
    let mut tick = period.map(Timer::new);
    let mut moved_at_tick = activity.moved.get();
    let mut idle_ticks = 0;
    // Stream tasks at once: a stream the client reset is closed for h2
    // (and no longer counts against SETTINGS_MAX_CONCURRENT_STREAMS) while
    // its request may still wait for its server. No new stream is taken
    // beyond this; h2 keeps the connection going (and refuses or counts
    // what the client opens meanwhile).
    let max_tasks = ctx.config.global.tune.h2.max_concurrent_streams as usize;
    loop {
        let event = poll_fn(|cx| {
            if state.active.get() < max_tasks {
                if let Poll::Ready(r) = conn.poll_accept(cx) {
                    return Poll::Ready(Some(r));
                }
            } else {
                state.waiting.set(Some(cx.waker().clone()));
                match conn.poll_closed(cx) {
                    Poll::Ready(Ok(())) => return Poll::Ready(Some(None)),
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(Some(Err(e)))),
                    Poll::Pending => {}
                }
            }
            if let Some(t) = &mut tick {
                if Pin::new(t).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            Poll::Pending
        })
        .await;
        let (req, mut respond) = match event {
            // The timer.
            None => {
                let moved = activity.moved.get();
                let stalled = moved == moved_at_tick
                    && (state.active.get() == 0 || activity.write_blocked.get());
                moved_at_tick = moved;
                idle_ticks = if stalled { idle_ticks + 1 } else { 0 };
                match idle_ticks {
                    0 => {}
                    // Idle: say goodbye (GOAWAY), let the streams finish.
                    1 => conn.graceful_shutdown(),
                    // Still nothing: the client does not even read.
                    _ => break,
                }
                tick = period.map(Timer::new);
                continue;
            }
            Some(None) => break,
            Some(Some(Err(e))) => {
                connection_error(&ctx, (frontend, bind), peer, &e);
                break;
            }
            Some(Some(Ok(accepted))) => accepted,
        };
        streams += 1;
        let cancelled = state.cancelled.get();
        if cancelled >= CANCEL_BUDGET && cancelled * 2 > streams {
            refuse_connection(&ctx, (frontend, bind), peer, "rapid reset");
            conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
            // Let the GOAWAY out; the connection then ends.
            let _ = within(period, poll_fn(|cx| conn.poll_closed(cx))).await;
            break;
        }
        // Cancelled already (HEADERS and RST_STREAM in one read): no
        // server hears of it.
        let reset = poll_fn(|cx| Poll::Ready(respond.poll_reset(cx))).await;
        if let Poll::Ready(Ok(_)) = reset {
            state.cancelled.set(state.cancelled.get() + 1);
            continue;
        }
        if ctx.is_retired() {
            match move_to_newest(&ctx, frontend, session, true) {
                Some((newest, at)) => (ctx, frontend) = (newest, at),
                None => {
                    // The reload removed the frontend: no new requests.
                    respond.send_reset(Reason::REFUSED_STREAM);
                    conn.graceful_shutdown();
                    continue;
                }
            }
        }
        let (parts, body) = req.into_parts();
        let mut head = Vec::with_capacity(512);
        let coding = match request::write_head(&mut head, &parts, body.is_end_stream()) {
            Ok(coding) => coding,
            Err(refused) => {
                respond.send_reset(refused_reason(refused));
                refuse_stream(&ctx, (frontend, bind), peer, refused);
                continue;
            }
        };
        let method = Method::from_token(parts.method.as_str());
        let bufsize = ctx.config.global.tune.bufsize;
        let request = Incoming {
            head,
            coding,
            method,
            body,
        };
        let stream = H2Stream::new(
            carrier.clone(),
            request,
            respond,
            bufsize,
            Rc::clone(&state),
        );
        let (sctx, sfe, st) = (Rc::clone(&ctx), frontend, Rc::clone(&state));
        let pp = proxied.clone();
        let earlier = streams - 1;
        st.stream_started();
        let spawned = gate.spawn(async move {
            let sessions = Rc::clone(&sctx.sessions);
            let registered = sessions.register(sctx.generation, sfe, peer, fd);
            let id = registered.id();
            let client = (Box::new(stream) as Box<_>, peer, pp);
            serve_carried(sctx, sfe, client, id, earlier).await;
            drop(registered);
            st.stream_ended();
        });
        match spawned {
            Ok(task) => {
                task.detach();
            }
            // Only once the gate is closed, after this loop.
            Err(_) => state.stream_ended(),
        }
    }
    // The stream tasks end once the connection is gone (their h2 handles
    // fail) or their server answers.
    drop(conn);
    let _ = gate.close().await;
    (ctx, frontend)
}

/// `fut`, for at most `limit` (`None`: no limit); `None` if it expired.
async fn within<T>(limit: Option<Duration>, fut: impl Future<Output = T>) -> Option<T> {
    match limit {
        None => Some(fut.await),
        Some(limit) => glommio::timer::timeout(limit, async { Ok(fut.await) })
            .await
            .ok(),
    }
}

fn refused_reason(refused: Refused) -> Reason {
    match refused {
        // Well formed, just not served here.
        Refused::Connect => Reason::REFUSED_STREAM,
        Refused::Userinfo | Refused::HostMismatch => Reason::PROTOCOL_ERROR,
    }
}

/// A connection error: counted unless the client just went away, and
/// logged.
fn connection_error(ctx: &CoreContext, at: (usize, usize), peer: SocketAddr, e: &h2::Error) {
    if e.is_io() || e.reason() == Some(Reason::NO_ERROR) {
        return;
    }
    let side = if e.is_remote() { "client sent" } else { "sent" };
    let what = match e.reason() {
        Some(reason) => format!("GOAWAY {reason:?} {side}"),
        None => e.to_string(),
    };
    refuse_connection(ctx, at, peer, &what);
}

fn refuse_connection(ctx: &CoreContext, at: (usize, usize), peer: SocketAddr, why: &str) {
    ctx.stats.borrow_mut().frontends[at.0].connection_protocol_errors += 1;
    crate::proxy::tls::connection_error(
        ctx,
        at,
        peer,
        format_args!("HTTP/2 connection error ({why})"),
    );
}

fn refuse_stream(ctx: &CoreContext, at: (usize, usize), peer: SocketAddr, why: Refused) {
    ctx.stats.borrow_mut().frontends[at.0].streams_refused += 1;
    crate::proxy::tls::connection_error(
        ctx,
        at,
        peer,
        format_args!("HTTP/2 stream refused ({why})"),
    );
}
