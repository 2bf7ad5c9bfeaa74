//! Outbound connections to servers: one connect, and the balancing, retry
//! and redispatch loop that both modes use.

use crate::backend::{acquire_hinted, acquire_server, AcquireError, PickHint, ServerSlot};
use crate::config::SendProxy;
use crate::net::proxy_protocol::{write_header, SendVersion};
use crate::net::{Blame, Cause, Side, Stage};
use crate::net::{Conn, Stream};
use crate::shard::sessions::SessionId;
use crate::shard::CoreContext;
use crate::tls::HandshakeError;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::pin::pin;
use std::time::{Duration, Instant};

/// HAProxy waits min(timeout connect, 1s) before retrying the same server so
/// that a restarting server is not hammered; a redispatch goes at once.
const TURNAROUND_MAX: Duration = Duration::from_secs(1);

/// Connects with `timeout connect` (see `Conn::connect`: non-blocking
/// connect awaited through the core's epoll, Nagle off).
pub async fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<Conn> {
    match timeout {
        Some(t) if !t.is_zero() => {
            futures_lite::future::or(Conn::connect(addr), async {
                glommio::timer::sleep(t).await;
                Err(io::Error::from(io::ErrorKind::TimedOut))
            })
            .await
        }
        _ => Conn::connect(addr).await,
    }
}

/// The client side of a session, as a server connection may have to
/// tell it (`send-proxy`) and balancing may hash it (`balance source`).
#[derive(Debug, Clone, Copy)]
pub struct ClientEnds {
    /// The client's address (the PROXY header's when one carried it).
    pub src: SocketAddr,
    /// Where the client connected to, when known already; else read
    /// from `fd` if a server needs it.
    pub dst: Option<SocketAddr>,
    /// The client socket, open for as long as the session that made this.
    pub fd: RawFd,
}

impl ClientEnds {
    fn dst(&self) -> SocketAddr {
        self.dst.unwrap_or_else(|| {
            // SAFETY: `fd` is the session's client socket, open while the
            // session runs (see the field).
            let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
            socket2::SockRef::from(&fd)
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
        })
    }
}

/// Why one connection attempt to a server failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connect failed (refused, unreachable...).
    #[error("connect: {0}")]
    Tcp(#[source] io::Error),
    /// `timeout connect` expired before the TCP connect finished.
    #[error("connect timed out")]
    TimedOut,
    /// The PROXY header could not be sent.
    #[error("sending the PROXY header: {0}")]
    ProxyHeader(#[source] io::Error),
    /// The TLS handshake (server with `ssl`) failed or timed out.
    #[error(transparent)]
    Tls(#[from] HandshakeError),
}

impl ConnectError {
    pub fn blame(&self) -> Blame {
        match self {
            ConnectError::Tcp(_) | ConnectError::ProxyHeader(_) => {
                Blame::server(Stage::Connect, Cause::Refused)
            }
            ConnectError::TimedOut => Blame::server(Stage::Connect, Cause::Timeout),
            ConnectError::Tls(HandshakeError::TimedOut) => {
                Blame::server(Stage::Tls, Cause::Timeout)
            }
            ConnectError::Tls(HandshakeError::Failed(_)) => {
                Blame::server(Stage::Tls, Cause::Handshake)
            }
        }
    }
}

/// Why no server connection could be had. HTTP answers 503 for each (as
/// HAProxy does, a connect timeout included); TCP closes the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    #[error("no server available")]
    NoServer,
    #[error("timed out in the backend queue")]
    QueueTimeout,
    /// The last attempt failed so (refused, timed out, TLS), after all
    /// retries.
    #[error("the last connect attempt failed ({0})")]
    Attempt(Blame),
    /// The runtime API shut the session down (`in_queue`: while it waited
    /// for a server slot, else while connecting).
    #[error("the session was shut down")]
    Killed { in_queue: bool },
}

impl ConnectFailure {
    pub fn blame(self) -> Blame {
        match self {
            ConnectFailure::NoServer => Blame::server(Stage::Connect, Cause::NoServer),
            ConnectFailure::QueueTimeout => Blame::server(Stage::Queue, Cause::Timeout),
            ConnectFailure::Attempt(blame) => blame,
            ConnectFailure::Killed { in_queue } => {
                let stage = if in_queue {
                    Stage::Queue
                } else {
                    Stage::Connect
                };
                Blame::new(Side::Admin, stage, Cause::Killed)
            }
        }
    }
}

/// One failed connection attempt to `server`: its connect error (and TLS
/// handshake failure, `ssl_failed_handshake`) counters and the passive
/// check's report. Returns what the attempt is blamed for.
pub fn attempt_failed(ctx: &CoreContext, backend: usize, server: usize, e: &ConnectError) -> Blame {
    let blame = e.blame();
    ctx.health.connect_failed(backend, server, blame);
    let mut stats = ctx.stats.borrow_mut();
    let tls = u64::from(blame.is_server_tls());
    let bc = &mut stats.backends[backend];
    bc.conn_errors += 1;
    bc.ssl_failed_handshakes += tls;
    let sc = &mut stats.servers[backend][server];
    sc.conn_errors += 1;
    sc.ssl_failed_handshakes += tls;
    blame
}

/// After a failed [`server_connection`]: says so on stderr (rate-limited
/// by the health observer) when the backend has no usable server left.
pub fn warn_if_no_server(ctx: &CoreContext, frontend: usize, backend: usize, peer: SocketAddr) {
    if !ctx.backends[backend].borrow().has_usable_server() {
        let fe = &ctx.config.frontends[frontend].name;
        let be = &ctx.config.backends[backend].name;
        ctx.health.no_server(fe, backend, be, peer);
    }
}

/// Timings and retry facts of getting a session to a server (for the
/// access log and the connect-time histogram).
#[derive(Debug, Default)]
pub struct Attempts {
    /// Time spent waiting for a slot (queue), all attempts.
    pub t_queue: Option<Duration>,
    /// Time from the first connect attempt to success, retries included.
    pub t_connect: Option<Duration>,
    /// Duration of the successful attempt alone.
    pub last_connect: Option<Duration>,
    pub retries: u32,
    pub redispatched: bool,
    /// The last server a connection was attempted to.
    pub last_server: Option<usize>,
}

/// Picks a server (waiting in the queue if they are all full), then gets a
/// connection to it: `reuse` may hand over an existing idle one for the
/// slot's server, else a new one is connected with `timeout connect`. A
/// failed connect is retried up to `retries` times, on the same server or,
/// per `option redispatch`, on another. Returns the stream, the slot (hold
/// it while the connection is in use) and whether the stream was reused;
/// `attempts` records what it took.
pub async fn server_connection(
    ctx: &CoreContext,
    backend_id: usize,
    client: ClientEnds,
    attempts: &mut Attempts,
    reuse: impl FnMut(&ServerSlot) -> Option<Stream>,
) -> Result<(Stream, ServerSlot, bool), ConnectFailure> {
    server_connection_hinted(
        ctx,
        backend_id,
        client,
        PickHint::default(),
        attempts,
        reuse,
    )
    .await
}

/// [`server_connection_hinted`] for a registered session: gives up
/// (`ConnectFailure::Killed`) when the runtime API kills the session while
/// it waits in the queue, connects or pauses between retries (its sockets
/// are shut down, but none of these waits is on them). A connection that
/// is there at once (a kept or pooled one) costs no more than before.
pub async fn session_server_connection<T: From<Stream>>(
    ctx: &CoreContext,
    session: SessionId,
    backend_id: usize,
    client: ClientEnds,
    hint: PickHint,
    attempts: &mut Attempts,
    reuse: impl FnMut(&ServerSlot) -> Option<T>,
) -> Result<(T, ServerSlot, bool), ConnectFailure> {
    let connecting = server_connection_hinted(ctx, backend_id, client, hint, attempts, reuse);
    let got = ctx.sessions.unless_killed(session, pin!(connecting)).await;
    match got {
        Some(got) => got,
        // Dropping the attempt gave back its slot or connection; the queue
        // time is only recorded once a slot came.
        None => Err(ConnectFailure::Killed {
            in_queue: attempts.t_queue.is_none(),
        }),
    }
}

/// [`server_connection`] for a request that brings a balancing hash or a
/// persistence server (HTTP). What `reuse` hands over (an idle
/// connection, a stream on a multiplexed one) is a `T`; a new connection
/// becomes one.
pub async fn server_connection_hinted<T: From<Stream>>(
    ctx: &CoreContext,
    backend_id: usize,
    client: ClientEnds,
    hint: PickHint,
    attempts: &mut Attempts,
    mut reuse: impl FnMut(&ServerSlot) -> Option<T>,
) -> Result<(T, ServerSlot, bool), ConnectFailure> {
    let be = &ctx.config.backends[backend_id];
    let backend = &ctx.backends[backend_id];
    let queue_timeout = backend.borrow().queue_timeout();
    let mut failed: Vec<usize> = Vec::new();
    let mut retry = 0u32;
    let mut pinned: Option<usize> = None;
    // Connect attempts and the pauses between them (HAProxy's Tc covers
    // retries); queue waits go to t_queue.
    let mut connect_spent = Duration::ZERO;
    loop {
        let waiting = Instant::now();
        let acquired = match pinned {
            Some(server) => acquire_server(backend, server, client.src, queue_timeout).await,
            None => acquire_hinted(backend, client.src, hint, &failed, queue_timeout).await,
        };
        let connecting = Instant::now();
        attempts.t_queue = Some(attempts.t_queue.unwrap_or_default() + (connecting - waiting));
        let slot = match acquired {
            Ok(slot) => slot,
            Err(err) => {
                let mut stats = ctx.stats.borrow_mut();
                return Err(match err {
                    AcquireError::NoServer => {
                        stats.backends[backend_id].no_server += 1;
                        ConnectFailure::NoServer
                    }
                    AcquireError::QueueTimeout => {
                        stats.backends[backend_id].queue_timeouts += 1;
                        ConnectFailure::QueueTimeout
                    }
                });
            }
        };
        if let Some(stream) = reuse(&slot) {
            attempts.t_connect = Some(Duration::ZERO);
            return Ok((stream, slot, true));
        }
        // Boxed: a connect's future (TCP, PROXY header, a TLS handshake)
        // is a few KiB, and inline it would make this future that big for
        // every request, whose kept or pooled connection never connects —
        // each `.await` of an async fn moves its whole future, and rustc
        // stores an awaited future twice in its caller's (rust-lang/rust
        // #62958), so the size doubles at every level up to the session.
        let connected = Box::pin(connect_server(
            ctx,
            backend_id,
            slot.server(),
            slot.addr(),
            client,
        ))
        .await;
        match connected {
            Ok(stream) => {
                ctx.health.connect_succeeded(backend_id, slot.server());
                let took = connecting.elapsed();
                attempts.last_connect = Some(took);
                attempts.t_connect = Some(connect_spent + took);
                return Ok((T::from(stream), slot, false));
            }
            Err(e) => {
                connect_spent += connecting.elapsed();
                let server = slot.server();
                attempts.last_server = Some(server);
                drop(slot);
                let blame = attempt_failed(ctx, backend_id, server, &e);
                if retry >= be.retries {
                    return Err(ConnectFailure::Attempt(blame));
                }
                retry += 1;
                attempts.retries = retry;
                {
                    let mut stats = ctx.stats.borrow_mut();
                    stats.backends[backend_id].retries += 1;
                    stats.servers[backend_id][server].retries += 1;
                }
                if !failed.contains(&server) {
                    failed.push(server);
                }
                if should_redispatch(be.redispatch, retry, be.retries) {
                    {
                        let mut stats = ctx.stats.borrow_mut();
                        stats.backends[backend_id].redispatches += 1;
                        stats.servers[backend_id][server].redispatches += 1;
                    }
                    attempts.redispatched = true;
                    pinned = None;
                } else {
                    pinned = Some(server);
                    let pause = be
                        .timeouts
                        .connect
                        .map_or(TURNAROUND_MAX, |c| c.min(TURNAROUND_MAX));
                    glommio::timer::sleep(pause).await;
                    connect_spent += pause;
                }
            }
        }
    }
}

/// TCP connect, the PROXY header if the server has `send-proxy(-v2)`,
/// then TLS if it has `ssl`, each bounded by `timeout connect`. A failed
/// TLS handshake is a failed attempt (retried and redispatched like a
/// refused connect, but blamed on TLS), with its reason on stderr.
pub async fn connect_server(
    ctx: &CoreContext,
    backend: usize,
    server: usize,
    addr: SocketAddr,
    client: ClientEnds,
) -> Result<Stream, ConnectError> {
    let be = &ctx.config.backends[backend];
    let mut tcp = connect(addr, be.timeouts.connect)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => ConnectError::TimedOut,
            _ => ConnectError::Tcp(e),
        })?;
    if let Some(version) = be.servers[server].send_proxy {
        send_proxy_header(&mut tcp, version, Some((client.src, client.dst())))
            .await
            .map_err(ConnectError::ProxyHeader)?;
    }
    ctx.tls
        .connect(&ctx.config, backend, server, tcp, be.timeouts.connect)
        .await
        .map_err(|e| {
            eprintln!(
                "[WARNING] backend \"{}\" server \"{}\": {e}",
                be.name, be.servers[server].name
            );
            ConnectError::Tls(e)
        })
}

/// Writes the PROXY header a connection starts with; `addrs` `None` for
/// a health check (`PROXY UNKNOWN`, v2 `LOCAL`). A new connection's send
/// buffer is empty: the header goes out in one send, no wait.
pub async fn send_proxy_header<W: futures_lite::AsyncWrite + Unpin>(
    conn: &mut W,
    version: SendProxy,
    addrs: Option<(SocketAddr, SocketAddr)>,
) -> io::Result<()> {
    use futures_lite::AsyncWriteExt;
    let version = match version {
        SendProxy::V1 => SendVersion::V1,
        SendProxy::V2 => SendVersion::V2,
    };
    let mut header = Vec::with_capacity(64);
    write_header(version, addrs, &mut header);
    conn.write_all(&header).await
}

/// Whether retry number `retry` (1-based) of `retries` goes to another
/// server, following HAProxy's `option redispatch <interval>`: a positive
/// interval P redispatches every Pth retry, a negative one -N the Nth retry
/// before the last (the default -1 is the last retry).
pub fn should_redispatch(interval: Option<i32>, retry: u32, retries: u32) -> bool {
    match interval {
        None | Some(0) => false,
        Some(p) if p > 0 => retry.is_multiple_of(p.unsigned_abs()),
        Some(n) => {
            let period = i64::from(retries) + 1 - i64::from(n.unsigned_abs());
            period > 0 && i64::from(retry).rem_euclid(period) == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_redispatch_is_the_last_retry() {
        assert!(!should_redispatch(Some(-1), 1, 3));
        assert!(!should_redispatch(Some(-1), 2, 3));
        assert!(should_redispatch(Some(-1), 3, 3));
        assert!(should_redispatch(Some(-1), 1, 1));
    }

    #[test]
    fn positive_interval_redispatches_every_pth_retry() {
        assert!(should_redispatch(Some(1), 1, 3));
        assert!(should_redispatch(Some(1), 2, 3));
        assert!(!should_redispatch(Some(2), 1, 3));
        assert!(should_redispatch(Some(2), 2, 3));
    }

    #[test]
    fn no_redispatch_when_off() {
        assert!(!should_redispatch(None, 3, 3));
    }
}
