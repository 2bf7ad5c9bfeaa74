//! One client connection in `mode = "http"`: read a request head, pick a
//! server connection, run the exchange, and loop while both sides keep the
//! connection alive. Pipelined requests wait in the receive buffer and are
//! served one after the other, so their responses go out in order.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::net::blame::{Blame, Cause, Stage};
use crate::net::Stream;
use crate::stick::Tracked;
use crate::tls::peer_cert::PeerCert;
use futures_lite::io::AsyncWriteExt;

use super::body::{self, BodyProgress};
use super::client::ClientIo;
use super::exchange::{self, Exchange, ExchangeTimeouts, Outcome, RequestInfo};
use super::io::{Clock, IoFail, Lane, RecvBuf, Shared};
use super::report::RequestTrace;
use super::route::{self, LocalAnswer, RouteState, Routed};
use super::server::ServerIo;
use crate::backend::ServerSlot;
use crate::config::{Frontend, HttpReuse, ServerProto};
use crate::http::{
    ClientSide, HeadLimits, ParseStatus, RequestParser, ResponseParser, DEFAULT_MAX_HEADERS,
};
use crate::net::tunnel::{self, TunnelSettings};
use crate::proxy::connect::{
    attempt_failed, session_server_connection, ClientEnds, ConnectFailure,
};
use crate::proxy::h2;
use crate::proxy::proxy_header::{Client, Proxied};
use crate::proxy::tcp::tunnel_idle_timeout;
use crate::shard::error_snapshot::ErrorSource;
use crate::shard::h2pool::H2Conn;
use crate::shard::sessions::{Registered, SessionId};
use crate::shard::CoreContext;
use h2::server::Pooled;

/// After an error page, how long and how much of the client's remaining
/// input is read and dropped before closing, so that the close does not
/// turn into a reset that destroys the page before the client reads it.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 << 10;
/// Sent to a client that asked for it (`Expect: 100-continue`) while its
/// body is waited for (`option http-buffer-request`).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Initial room for a request or response head being written (most fit).
const HEAD_CAPACITY: usize = 1024;
/// How long a keep-alive connection waits for its next request inside its
/// session before it lets the session go (its state machine, about 14 KB,
/// its buffers and its request record) and waits as a new connection does,
/// holding only its socket. Short enough that an idle client costs what a
/// new one does (an edge node holds mostly idle keep-alive clients); long
/// enough that a busy connection's next request, which follows within
/// milliseconds, never pays for rebuilding the session.
const IDLE_GRACE: Duration = Duration::from_millis(100);

/// A server connection kept by the client connection between requests.
struct Attached {
    stream: Stream,
    backend: usize,
    server: usize,
}

/// A request refused as invalid (its head, or the chunked framing of the
/// body bytes that came with it): `PR`, 400, as HAProxy.
const BAD_REQUEST: Blame = Blame::proxy(Stage::Request, Cause::Invalid);

/// What the balancing loop hands the session: a connection or a stream,
/// or, for a `proto = "h2"` server whose connections are all full while
/// one of them waits for the server's SETTINGS, that connection (the
/// request waits for it with its server slot, then looks again).
enum Reached {
    Io(ServerIo),
    H2Wait(Rc<H2Conn>),
}

impl From<Stream> for Reached {
    fn from(stream: Stream) -> Self {
        Reached::Io(ServerIo::Socket(stream))
    }
}

/// How the request head wait ended.
enum Head {
    Request(RequestInfo),
    /// The client closed, or stayed idle between requests: close quietly.
    Closed,
    /// Refused for the client's fault: answer with the blame's status
    /// (400, 408) and close.
    Reject(Blame),
    /// A rule answers the request (deny, redirect, return, auth...).
    Local(LocalAnswer),
    /// The next request arrived after a reload retired the generation.
    Regenerate,
    /// No next request within `IDLE_GRACE`: wait for it outside the
    /// session, until `deadline` (the keep-alive timeout).
    Idle {
        deadline: Option<Instant>,
    },
}

/// What the session does after an exchange.
enum Next {
    KeepAlive,
    Close,
    Tunnel(Stream, ServerSlot),
}

/// How a session's run under one generation ended.
enum RunEnd {
    Closed,
    Tunnel(Stream, ServerSlot),
    /// Between two requests, a reload retired the generation: the next
    /// request is served under the newest one.
    Regenerate,
    /// Between two requests, the client stayed idle past `IDLE_GRACE`.
    Idle {
        deadline: Option<Instant>,
    },
}

/// Why a run under one generation handed the connection back.
enum Pause {
    Regenerate(FirstBytes),
    /// Idle between requests: the next one is awaited outside the session
    /// until `deadline`.
    Idle(FirstBytes, Option<Instant>),
}

/// How the boxed part of a connection's life ended.
// Moved once, out of the box, per idle pause: boxing the large variant
// would add an allocation there and save nothing.
#[allow(clippy::large_enum_variant)]
enum Served {
    /// The connection is done, last under this generation and frontend.
    Ended(Rc<CoreContext>, usize),
    /// Idle between requests (see `Pause::Idle`).
    Idle(Rc<CoreContext>, usize, FirstBytes, Option<Instant>),
}

struct Session<'c> {
    ctx: &'c Rc<CoreContext>,
    /// This connection in the core's session registry.
    id: SessionId,
    be_id: usize,
    fe: &'c Frontend,
    peer: SocketAddr,
    /// Client address, port and `tls` (HAProxy `ssl_fc`).
    side: ClientSide,
    client: RefCell<ClientIo>,
    client_buf: RecvBuf,
    server_buf: RecvBuf,
    parser: RequestParser,
    response_parser: ResponseParser,
    /// The rewritten request head.
    head: Vec<u8>,
    /// A buffered chunked body without its framing, for `req.body`
    /// (`option http-buffer-request`); empty otherwise.
    body: Vec<u8>,
    out: Vec<u8>,
    attached: Option<Attached>,
    requests: u64,
    accepted: Instant,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    /// The current request's counters, timings and log facts.
    trace: RequestTrace,
    /// Rules, balancing hints and rewrites (`route`).
    route: RouteState<'c>,
    /// Deadlines of the session's waits (one timer for all of them).
    clock: Clock,
}

/// A client connection waiting for a request (its first, or the next one
/// on a kept-alive connection) with nothing to do until bytes arrive:
/// what identifies it and nothing more. No session, no buffer, no timer:
/// `runtime::parking` holds it without a task until its socket is readable
/// or `deadline` passes, then [`resume`] serves it.
pub(crate) struct Idle {
    pub(crate) ctx: Rc<CoreContext>,
    pub(crate) frontend: usize,
    client: Stream,
    peer: SocketAddr,
    /// Boxed here (and `attached`): most connections have neither, and
    /// every idle connection would otherwise carry their room (about 90
    /// bytes) while it waits.
    proxied: Option<Box<Proxied>>,
    /// Its entry in the core's session registry (`show sess` lists it).
    registered: Registered,
    accepted: Instant,
    /// The end of the wait: `timeout http-request` (or `client`) for the
    /// first request, the keep-alive timeout for a later one.
    pub(crate) deadline: Option<Instant>,
    /// Requests served so far; 0: waiting for the first.
    requests: u64,
    /// What the connection tracks in stick tables.
    tracked: Tracked,
    /// The connection's variables; dropped at a pause unless it has `sess`
    /// ones (see [`Idle::pause`]).
    vars: Option<Rc<crate::rules::vars::Vars>>,
    /// The client's certificate (mTLS), read at the first request: kept
    /// across pauses so that it is read once per connection.
    client_cert: Option<Rc<PeerCert>>,
    /// A private server connection (`http-reuse never`, or one that began
    /// with a PROXY header) stays with its client; a shareable one waits
    /// in the core's pool instead.
    attached: Option<Box<Attached>>,
}

impl Idle {
    /// Accepted less than `IDLE_GRACE` before `now` and still waiting for
    /// its first request: a client whose request may be on its way.
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        self.requests == 0 && now < self.accepted + IDLE_GRACE
    }

    /// Hands the connection back to wait without a task. It keeps its
    /// variables only if a `sess` one is set (the transaction's would be
    /// cleared by the next request anyway): an idle connection then holds
    /// no variable store (about 150 bytes); a new one is made when it is
    /// served again.
    fn pause(mut self) -> Ending {
        self.vars = self.vars.filter(|v| v.outlives_pause());
        Ending::Idle(self)
    }

    /// The client's TCP connection, for waiting on its socket.
    pub(crate) fn socket(&self) -> &crate::net::Conn {
        self.client.tcp()
    }

    /// Closes the connection quietly, as a session closes an idle one:
    /// nothing to answer or log. Returns the generation and frontend the
    /// connection is counted open under.
    pub(crate) fn close(mut self) -> (Rc<CoreContext>, usize) {
        if let Some(a) = self.attached.take() {
            park(&self.ctx, &self.ctx.config.frontends[self.frontend], *a);
        }
        (self.ctx, self.frontend)
    }
}

/// How serving a connection stopped.
// Moved once per idle pause, straight into the parking table: boxing the
// large variant would add an allocation there and save nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Ending {
    /// Closed; counted open (`scur`) until now under this generation and
    /// frontend.
    Closed(Rc<CoreContext>, usize),
    /// Waiting for a request, to be held without a task.
    Idle(Idle),
}

/// Serves one client connection from its accept: reads once, and hands it
/// back as [`Ending::Idle`] if it has sent nothing yet.
///
/// A plain connection gets no grace in this task for a request that is
/// about to come (as between two requests of a session): when clients
/// connect in a burst, each task's memory would be held by all of them at
/// once, freed only to stay resident beside the parked connections' own
/// allocations (10,000 connections opened in a second: 1,050–1,730 bytes
/// each with a 100 ms grace, 600 without; docs/benchmarks.md). A request
/// that follows the handshake by a moment costs a park and a wake instead
/// of a timer, which measured the same per connection (`loadtest
/// http-close`). A TLS connection keeps `IDLE_GRACE`: its task already
/// lived through the handshake, and its request follows the handshake's
/// last flight (there a park and a wake measured 5 µs more per full
/// handshake, `loadtest tls`).
pub(crate) async fn serve(
    ctx: Rc<CoreContext>,
    frontend: usize,
    (client, peer, proxied): Client,
    registered: Registered,
    (tracked, vars): (Tracked, Rc<crate::rules::vars::Vars>),
) -> Ending {
    let accepted = Instant::now();
    let t = &ctx.config.frontends[frontend].timeouts;
    // The wait for the first bytes is the head's (`timeout http-request`),
    // so the session sees an expired deadline and answers 408 as if it had
    // waited itself.
    let deadline = t.http_request.or(t.client).map(|d| accepted + d);
    let idle = Idle {
        ctx,
        frontend,
        client,
        peer,
        proxied: proxied.map(Box::new),
        registered,
        accepted,
        deadline,
        requests: 0,
        attached: None,
        tracked,
        vars: Some(vars),
        client_cert: None,
    };
    // See above: a TLS connection waits in its task until `IDLE_GRACE`
    // after its accept.
    let grace_end = idle.client.is_tls().then_some(accepted + IDLE_GRACE);
    serve_from(idle, grace_end).await
}

/// Serves a parked connection whose socket became readable or whose
/// deadline passed; hands it back as [`Ending::Idle`] if the wake-up found
/// nothing to read.
pub(crate) async fn resume(idle: Idle) -> Ending {
    serve_from(idle, None).await
}

/// At a soft stop, a connection that [`Idle::is_fresh`]: waits for its first
/// bytes until `IDLE_GRACE` after its accept (as its task did before it was
/// parked at once) and serves them, or hands it back to be closed quietly.
pub(crate) async fn finish_fresh(idle: Idle) -> Ending {
    let grace_end = idle.accepted + IDLE_GRACE;
    serve_from(idle, Some(grace_end)).await
}

/// Waits for the next request of `idle` in this task until `grace_end`
/// (`None`: only reads what is there already), handing the connection back
/// to wait without a task if nothing came, then serves requests until the
/// connection closes or idles.
async fn serve_from(mut idle: Idle, grace_end: Option<Instant>) -> Ending {
    let mut grace_end = grace_end;
    loop {
        let mut client_buf = RecvBuf::new(idle.ctx.config.global.tune.bufsize);
        let clock = Clock::new();
        let expired = idle.deadline.is_some_and(|d| d <= Instant::now());
        let got = if expired {
            Err(IoFail::Timeout)
        } else if let Some(grace_end) = grace_end {
            // Until the client's first bytes arrive, the connection holds
            // only this small future and its socket: no session, no buffer.
            let wait_until = idle.deadline.map_or(grace_end, |d| d.min(grace_end));
            let read = client_buf.read_from(&mut idle.client);
            match clock.until(Lane::Up, Some(wait_until), read).await {
                Err(IoFail::Timeout) if idle.deadline.is_none_or(|d| d > wait_until) => {
                    clock.disarm();
                    return idle.pause();
                }
                got => got,
            }
        } else {
            let read = client_buf.read_from(&mut idle.client);
            match futures_lite::future::poll_once(read).await {
                // Woken for nothing (an event for bytes an earlier read
                // took): wait again, outside a task.
                None => return idle.pause(),
                Some(got) => got.map_err(|_| IoFail::Io),
            }
        };
        let first_request = idle.requests == 0;
        match got {
            Ok(n) if n > 0 => {}
            // Before the first request, a timeout is answered (408) by the
            // session, which finds its head deadline passed.
            Err(IoFail::Timeout) if first_request => {}
            // Closed, failed or timed out while idle: quietly, as inside
            // the session. Closed before a byte (a port probe, a TCP health
            // check): nothing to answer or log either.
            _ => {
                clock.disarm();
                return Ending::Closed(idle.ctx, idle.frontend)
                    .with_attached_parked(idle.attached.map(|a| *a));
            }
        }
        let Idle {
            ctx,
            frontend,
            client,
            peer,
            proxied,
            registered,
            accepted,
            requests,
            attached,
            tracked,
            vars,
            client_cert,
            ..
        } = idle;
        let first = FirstBytes {
            client: ClientIo::Socket(client),
            client_buf,
            clock,
            accepted,
            session: registered.id(),
            requests,
            attached: attached.map(|a| *a),
            proxied: proxied.map(|p| *p),
            tracked,
            vars: vars.unwrap_or_default(),
            client_cert,
        };
        // The session's state machine is large (parsers, nested exchange
        // futures); boxed, it is built in place once instead of being
        // copied through every layer of the task spawn (measurable per
        // connection with `Connection: close`). Written into its allocation
        // rather than moved into it (`Box::pin` builds the ~14 KB state
        // machine first, then copies it).
        let session = Box::write(Box::new_uninit(), serve_boxed(ctx, frontend, first, peer));
        let (ctx, frontend, paused, deadline) = match Box::into_pin(session).await {
            Served::Ended(ctx, frontend) => return Ending::Closed(ctx, frontend),
            Served::Idle(ctx, frontend, paused, deadline) => (ctx, frontend, paused, deadline),
        };
        // The session is dropped: until the next request this connection
        // holds its socket and what identifies it.
        paused.clock.disarm();
        let FirstBytes {
            client,
            accepted,
            requests,
            attached,
            proxied,
            tracked,
            vars,
            client_cert,
            ..
        } = paused;
        let ClientIo::Socket(client) = client else {
            // A carried stream never idles (one request each).
            return Ending::Closed(ctx, frontend).with_attached_parked(attached);
        };
        // A shareable server connection goes back to the pool rather than
        // wait with an idle client (`http-reuse safe` lets the client's
        // next request take an idle one; HAProxy keeps it in the server's
        // idle list the same way).
        let attached = match attached {
            Some(a) if !private_to_client(&ctx, &ctx.config.frontends[frontend], &a) => {
                park(&ctx, &ctx.config.frontends[frontend], a);
                None
            }
            kept => kept,
        };
        idle = Idle {
            ctx,
            frontend,
            client,
            peer,
            proxied: proxied.map(Box::new),
            registered,
            accepted,
            deadline,
            requests,
            tracked,
            vars: Some(vars),
            client_cert,
            attached: attached.map(Box::new),
        };
        grace_end = None;
    }
}

impl Ending {
    /// Parks the server connection a closing client kept (the pool decides
    /// whether it stays open).
    fn with_attached_parked(self, attached: Option<Attached>) -> Ending {
        if let (Ending::Closed(ctx, frontend), Some(a)) = (&self, attached) {
            park(ctx, &ctx.config.frontends[*frontend], a);
        }
        self
    }
}

/// Serves one request of a multiplexed connection (an HTTP/2 stream,
/// `proxy::h2`) as if it came on an HTTP/1.1 connection of its own.
/// `requests`: the requests the carrying connection sent before this one
/// (`http-reuse safe` lets all but the first take idle connections);
/// `proxied`: what the carrying connection's PROXY header said.
pub(crate) async fn serve_carried(
    ctx: Rc<CoreContext>,
    frontend: usize,
    (client, peer, proxied): (Box<dyn super::client::Carried>, SocketAddr, Option<Proxied>),
    session: SessionId,
    requests: u64,
) -> (Rc<CoreContext>, usize) {
    let bufsize = ctx.config.global.tune.bufsize;
    let first = FirstBytes {
        client: ClientIo::Carried(client),
        client_buf: RecvBuf::new(bufsize),
        clock: Clock::new(),
        accepted: Instant::now(),
        session,
        requests,
        attached: None,
        proxied,
        // Each stream tracks as a connection of its own: `http-request`
        // tracks and `stick` rules work; the carrying connection's
        // `tcp-request` tracks are not seen by its streams' rules.
        tracked: Tracked::new(&ctx.stick),
        vars: Rc::default(),
        // A carried stream has the facts of its connection.
        client_cert: None,
    };
    let session = Box::write(Box::new_uninit(), serve_boxed(ctx, frontend, first, peer));
    match Box::into_pin(session).await {
        Served::Ended(ctx, frontend) => (ctx, frontend),
        // A carried stream serves one request (its head asks to close):
        // it never idles, but if it did, it would end here.
        Served::Idle(ctx, frontend, mut idle, _) => {
            idle.clock.disarm();
            if let Some(a) = idle.attached.take() {
                park(&ctx, &ctx.config.frontends[frontend], a);
            }
            (ctx, frontend)
        }
    }
}

/// A client connection whose first bytes (or end, or timeout) came.
struct FirstBytes {
    client: ClientIo,
    client_buf: RecvBuf,
    clock: Clock,
    accepted: Instant,
    session: SessionId,
    /// Requests served on the connection so far (under older generations).
    requests: u64,
    /// The server connection kept between requests, across an idle pause
    /// (a private one, `http-reuse never`, stays with its client).
    attached: Option<Attached>,
    /// What the connection's PROXY header said, if it had one.
    proxied: Option<Proxied>,
    /// What the connection tracks in stick tables.
    tracked: Tracked,
    /// The connection's variables: `sess` ones outlive a pause.
    vars: Rc<crate::rules::vars::Vars>,
    /// The client's certificate once read (see `Idle::client_cert`).
    client_cert: Option<Rc<PeerCert>>,
}

/// Serves the connection under its generation and, when a reload retires
/// that generation between two requests, goes on under the newest one:
/// new requests on a kept-alive connection follow the new configuration,
/// while the request in flight finished under the old. A connection whose
/// frontend the reload removed is closed at that point.
/// Returns the generation and frontend the connection ended under (where
/// it is counted open).
async fn serve_boxed(
    ctx: Rc<CoreContext>,
    frontend: usize,
    first: FirstBytes,
    peer: SocketAddr,
) -> Served {
    let (mut ctx, mut frontend, mut first) = (ctx, frontend, first);
    loop {
        let carried = match serve_generation(&ctx, frontend, first, peer).await {
            None => return Served::Ended(ctx, frontend),
            Some(Pause::Idle(idle, deadline)) => {
                return Served::Idle(ctx, frontend, idle, deadline)
            }
            Some(Pause::Regenerate(carried)) => carried,
        };
        // A carried stream is not a connection: its carrier counts.
        let counted = carried.client.tcp().is_some();
        let Some((newest, at)) = move_to_newest(&ctx, frontend, carried.session, counted) else {
            return Served::Ended(ctx, frontend);
        };
        (ctx, frontend, first) = (newest, at, carried);
    }
}

/// A connection of a retired generation goes on under the newest one
/// (its frontend found by name; `None` if the reload removed it). It now
/// counts (`scur`, when `counted`) there, and the old generation is let
/// go of: a long keep-alive connection must not keep every retired
/// generation alive.
pub(crate) fn move_to_newest(
    ctx: &Rc<CoreContext>,
    frontend: usize,
    session: SessionId,
    counted: bool,
) -> Option<(Rc<CoreContext>, usize)> {
    let newest = ctx.newest();
    let name = &ctx.config.frontends[frontend].name;
    let at = newest
        .config
        .frontends
        .iter()
        .position(|f| &f.name == name)?;
    if counted {
        ctx.stats.borrow_mut().frontends[frontend].sessions_cur -= 1;
        let mut stats = newest.stats.borrow_mut();
        let fc = &mut stats.frontends[at];
        fc.sessions_cur += 1;
        fc.sessions_max = fc.sessions_max.max(fc.sessions_cur);
    }
    newest.sessions.rebind(session, newest.generation, at);
    Some((newest, at))
}

async fn serve_generation(
    ctx: &Rc<CoreContext>,
    frontend: usize,
    first: FirstBytes,
    peer: SocketAddr,
) -> Option<Pause> {
    let FirstBytes {
        client,
        client_buf,
        clock,
        accepted,
        session,
        requests,
        attached,
        proxied,
        tracked,
        vars,
        client_cert,
    } = first;
    let fe = &ctx.config.frontends[frontend];
    let bufsize = ctx.config.global.tune.bufsize;
    let limits = HeadLimits::from_bufsize(bufsize, DEFAULT_MAX_HEADERS);
    // TCP_NODELAY is inherited from the listener (runtime/listener.rs).
    let local = match (proxied.as_ref().and_then(|p| p.dst), client.tcp()) {
        (Some(dst), _) => dst,
        (None, Some(conn)) => crate::proxy::inspect::local_addr(fe, conn),
        (None, None) => client
            .carrier()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.local),
    };
    let local_port = local.port();
    let tls = client.is_tls();
    let tls_facts = if tls {
        client.tls_facts(client_cert)
    } else {
        None
    };
    let mut s = Session {
        ctx,
        id: session,
        // Read only once a request was routed to a backend.
        be_id: fe.default_backend.unwrap_or_default(),
        fe,
        peer,
        side: ClientSide {
            addr: peer.ip(),
            local_port,
            tls,
        },
        client: RefCell::new(client),
        client_buf,
        server_buf: RecvBuf::new(bufsize),
        parser: RequestParser::new(limits),
        response_parser: ResponseParser::new(limits),
        head: Vec::new(),
        body: Vec::new(),
        out: Vec::new(),
        attached,
        requests,
        accepted,
        bytes_in: Cell::new(0),
        bytes_out: Cell::new(0),
        trace: RequestTrace::new(
            ctx,
            frontend,
            fe.default_backend,
            (peer, local, tls),
            accepted,
            session,
        ),
        route: RouteState::new(
            peer,
            local,
            tls_facts,
            proxied.as_ref().map(|p| Rc::clone(&p.tlvs)),
            tracked,
            crate::rules::sample::Live::of(ctx),
            vars,
        ),
        clock,
    };
    if let Some(carrier) = s.client.borrow().carrier() {
        s.trace.version_label(carrier.version);
    }
    let end = s.run().await;
    if !matches!(end, RunEnd::Regenerate | RunEnd::Idle { .. }) {
        s.clock.disarm();
    }
    // An idle pause keeps the server connection with its client; any other
    // end parks it (the pool decides whether it stays open).
    let attached = match end {
        RunEnd::Idle { .. } => s.attached.take(),
        _ => None,
    };
    s.park_attached();
    {
        let mut stats = ctx.stats.borrow_mut();
        let fc = &mut stats.frontends[frontend];
        fc.bytes_in += s.bytes_in.get();
        fc.bytes_out += s.bytes_out.get();
    }
    // What this part of the connection moved counts for its tracks.
    s.route
        .conn
        .stick
        .bytes(s.bytes_in.get(), s.bytes_out.get());
    if let RunEnd::Regenerate | RunEnd::Idle { .. } = end {
        let mut client_buf = s.client_buf;
        client_buf.release_if_empty();
        let carried = FirstBytes {
            client: s.client.into_inner(),
            client_buf,
            clock: s.clock,
            accepted: s.accepted,
            session,
            requests: s.requests,
            attached,
            proxied,
            tracked: s.route.conn.stick.clone(),
            vars: Rc::clone(&s.route.conn.vars),
            client_cert: s
                .route
                .conn
                .tls
                .as_ref()
                .and_then(|t| t.client_cert.clone()),
        };
        return Some(match end {
            RunEnd::Idle { deadline } => Pause::Idle(carried, deadline),
            _ => Pause::Regenerate(carried),
        });
    }
    if let RunEnd::Tunnel(server, slot) = end {
        let be = &ctx.config.backends[s.be_id];
        let settings = TunnelSettings {
            idle_timeout: s
                .route
                .conn
                .timeouts
                .get()
                .tunnel
                .or_else(|| tunnel_idle_timeout(&fe.timeouts, &be.timeouts)),
            splice: ctx.config.global.tune.splice,
            bufsize,
        };
        // A carried stream never asks for a protocol switch (HTTP/2 has
        // no Upgrade, and `proxy::h2` refuses CONNECT).
        let ClientIo::Socket(client) = s.client.into_inner() else {
            ctx.sessions.clear_server(session);
            return None;
        };
        let report = tunnel::run_streams(
            client,
            server,
            s.client_buf.filled(),
            s.server_buf.filled(),
            &settings,
            &ctx.pipes,
        )
        .await;
        ctx.sessions.clear_server(session);
        {
            let mut stats = ctx.stats.borrow_mut();
            let fc = &mut stats.frontends[frontend];
            fc.bytes_in += report.client_to_server;
            fc.bytes_out += report.server_to_client;
        }
        s.trace.finish(
            ctx,
            (s.bytes_in.get(), s.bytes_out.get()),
            Some(&report),
            &s.route.conn,
        );
        drop(slot);
    }
    None
}

impl Session<'_> {
    /// Serves requests until the connection is done; returns the server
    /// side of a tunnel if the last exchange switched protocols.
    async fn run(&mut self) -> RunEnd {
        loop {
            self.trace.begin(
                self.requests == 0,
                self.bytes_in.get(),
                self.bytes_out.get(),
            );
            let req = match self.read_head().await {
                Head::Request(req) => req,
                Head::Regenerate => return RunEnd::Regenerate,
                Head::Idle { deadline } => return RunEnd::Idle { deadline },
                Head::Closed => {
                    if !self.client_buf.is_empty() {
                        self.count_unparsed();
                        self.trace.aborted_head();
                        self.finish_request();
                    }
                    return RunEnd::Closed;
                }
                Head::Reject(end) => {
                    self.count_unparsed();
                    self.trace.refused(end);
                    if let Some(status) = end.error_status() {
                        self.send_error(status, false).await;
                    }
                    self.finish_request();
                    return RunEnd::Closed;
                }
                Head::Local(answer) => {
                    self.requests += 1;
                    if self.answer_locally(answer).await {
                        continue;
                    }
                    return RunEnd::Closed;
                }
            };
            self.requests += 1;
            let next = self.exchange(req).await;
            if let Next::Close = next {
                // The FIN goes right after the response, before the log
                // and before the server connection is parked (which may
                // close an evicted one): a client that waits for the close
                // to open its next connection need not wait for those.
                // Nothing may be awaited between the exchange's end and
                // this: a response that completed the exchange may be held
                // back (MSG_MORE) to leave with the FIN.
                let _ = Shared(&self.client).close().await;
            }
            if !matches!(next, Next::Tunnel(..)) {
                self.finish_request();
            }
            match next {
                Next::KeepAlive => {}
                Next::Close => return RunEnd::Closed,
                Next::Tunnel(server, slot) => return RunEnd::Tunnel(server, slot),
            }
        }
    }

    /// Bytes of a head that will never be parsed were received all the
    /// same (and make the request not null for `dontlognull`).
    fn count_unparsed(&mut self) {
        let len = self.client_buf.len() as u64;
        self.bytes_in.set(self.bytes_in.get() + len);
    }

    /// Counts and logs the request just served (a tunnel's is finished
    /// when the tunnel ends).
    fn finish_request(&mut self) {
        self.trace.finish(
            self.ctx,
            (self.bytes_in.get(), self.bytes_out.get()),
            None,
            &self.route.conn,
        );
    }

    /// Waits for a complete request head (HAProxy: `timeout http-request`
    /// for the head, `timeout http-keep-alive` for the wait before a
    /// following request; each falls back as HAProxy's do), validates it
    /// and writes the rewritten head into `self.head`.
    async fn read_head(&mut self) -> Head {
        let t = &self.fe.timeouts;
        let head_time = t.http_request.or(t.client);
        let idle_time = t.http_keep_alive.or(t.http_request).or(t.client);
        let first = self.requests == 0;
        let mut deadline = if first {
            head_time.map(|d| self.accepted + d)
        } else {
            None
        };
        // `100 Continue` was sent while the body is waited for.
        let mut continued = false;
        loop {
            if !self.client_buf.is_empty() {
                if !first && self.ctx.is_retired() {
                    // A reload came while the connection was idle: this
                    // request is for the new configuration.
                    return Head::Regenerate;
                }
                self.trace.data_arrived();
                if deadline.is_none() {
                    deadline = head_time.map(|d| Instant::now() + d);
                }
                let buffering = self.fe.http.buffer_request;
                let capacity = self.client_buf.capacity();
                match self.parser.parse(self.client_buf.filled()) {
                    // `option http-buffer-request`: the body is waited for
                    // (within the head's deadline) before the rules run.
                    ParseStatus::Complete(head)
                        if buffering
                            && body::awaits_body(
                                head.framing,
                                head.head_len,
                                self.client_buf.filled(),
                                capacity,
                            ) =>
                    {
                        // A carried (HTTP/2) stream's writes are its
                        // response: an interim one cannot go through it.
                        let own_socket = self.client.borrow().carrier().is_none();
                        if head.expect_continue && !continued && own_socket {
                            // The client waits for this before it sends
                            // the body (HAProxy answers it too).
                            continued = true;
                            let mut client = Shared(&self.client);
                            let sent = self
                                .clock
                                .send(Lane::Down, &mut client, CONTINUE, self.fe.timeouts.client)
                                .await;
                            if sent.is_err() {
                                return Head::Closed;
                            }
                        }
                    }
                    ParseStatus::Complete(mut head) => {
                        if buffering {
                            let wire = &self.client_buf.filled()[head.head_len..];
                            head.body =
                                Some(body::buffered_body(head.framing, wire, &mut self.body));
                        }
                        let unique_id = self.fe.log.unique_id.as_ref();
                        self.trace.head(&head, &self.fe.log.captures, unique_id);
                        if let Some(uid) = unique_id {
                            let id =
                                self.trace
                                    .make_unique_id(self.ctx, &uid.format, &self.route.conn);
                            self.route.conn.unique_id.replace(id.into());
                        }
                        let upgrade = head.upgrade.is_some();
                        // Allocated at the first request, not per connection.
                        self.head.reserve(HEAD_CAPACITY);
                        let routed = route::request(
                            &mut self.route,
                            &self.ctx.config,
                            self.fe,
                            &head,
                            &self.side,
                            &mut self.head,
                        )
                        .await;
                        let info = RequestInfo {
                            method: self.route.sent_method,
                            version: head.version,
                            framing: head.framing,
                            keep_alive: head.keep_alive,
                            upgrade,
                        };
                        let len = head.head_len;
                        self.client_buf.consume(len);
                        self.bytes_in.set(self.bytes_in.get() + len as u64);
                        return match routed {
                            Routed::Forward(backend) => {
                                self.be_id = backend;
                                if continued {
                                    // Answered here: the server must not
                                    // answer it again (HAProxy removes it
                                    // too).
                                    remove_header(&mut self.head, "expect");
                                }
                                if let Some(name) = unique_id.and_then(|u| u.header.as_deref()) {
                                    add_header(&mut self.head, name, self.trace.unique_id());
                                }
                                // `early-hint` rules: the 103 goes before
                                // the request (1xx are for HTTP/1.1).
                                let timeout = self.fe.timeouts.client;
                                if info.version == crate::http::Version::Http11
                                    && !route::send_early_hints(
                                        &mut self.route,
                                        &self.clock,
                                        &self.client,
                                        timeout,
                                    )
                                    .await
                                {
                                    return Head::Closed;
                                }
                                Head::Request(info)
                            }
                            Routed::Local(answer) => Head::Local(answer),
                        };
                    }
                    ParseStatus::Error(err) => {
                        let from = ErrorSource {
                            frontend: self.trace.frontend(),
                            backend: None,
                            server: None,
                            client: self.peer,
                        };
                        let refused = self.client_buf.filled();
                        self.ctx.error_snapshots.request(from, refused, err);
                        return Head::Reject(BAD_REQUEST);
                    }
                    ParseStatus::Partial => {}
                }
            }
            let waiting_idle = !first && self.client_buf.is_empty();
            if waiting_idle {
                // An idle keep-alive connection holds no response buffer.
                self.server_buf.release_if_empty();
            }
            let mut client = Shared(&self.client);
            let read = self.client_buf.read_from(&mut client);
            let got = if waiting_idle {
                let began = Instant::now();
                let grace = idle_time.map_or(IDLE_GRACE, |t| t.min(IDLE_GRACE));
                match self.clock.timed(Lane::Up, Some(grace), read).await {
                    Err(IoFail::Timeout) if idle_time.is_none_or(|t| t > grace) => {
                        return Head::Idle {
                            deadline: idle_time.map(|t| began + t),
                        };
                    }
                    got => got,
                }
            } else {
                self.clock.until(Lane::Up, deadline, read).await
            };
            match got {
                Ok(0) | Err(IoFail::Io) => return Head::Closed,
                Ok(_) => {}
                Err(IoFail::Timeout) if waiting_idle => return Head::Closed,
                Err(IoFail::Timeout) => {
                    return Head::Reject(Blame::client(Stage::Request, Cause::Timeout))
                }
            }
        }
    }

    /// Gets a server connection for the request, runs the exchange (again
    /// on a new connection if a reused one turned out to be closed), and
    /// decides what becomes of both connections.
    async fn exchange(&mut self, req: RequestInfo) -> Next {
        let next = self.exchange_with_server(req).await;
        // The request no longer holds its server connection (kept, pooled
        // or closed), unless it became a tunnel: that one is cleared when
        // the tunnel ends.
        if !matches!(next, Next::Tunnel(..)) {
            self.ctx.sessions.clear_server(self.id);
        }
        next
    }

    /// [`Session::exchange`]; the registry names the server connection in
    /// use while there is one (`set_server`), and forgets it before any
    /// await that follows its drop (a kill shuts its socket down).
    async fn exchange_with_server(&mut self, req: RequestInfo) -> Next {
        let ctx = self.ctx;
        // Body bytes that came with the head are checked before any server
        // is involved: a request with bad chunked framing never leaves.
        let mut progress = BodyProgress::new(req.framing);
        let Ok(mut claimed) = progress.claim(self.client_buf.filled()) else {
            self.trace.refused(BAD_REQUEST);
            self.send_error(400, false).await;
            return Next::Close;
        };
        let be_id = self.be_id;
        let fe = self.fe;
        let reuse = fe.http_for(be_id).reuse;
        let server_close = fe.http_for(be_id).server_close;
        // http-reuse safe: the first request of a client connection never
        // takes another client's connection (a failure could not be
        // retried transparently by the client); later ones may.
        let may_take_idle = !server_close
            && match reuse {
                HttpReuse::Never => false,
                HttpReuse::Safe => self.requests > 1,
                HttpReuse::Always => true,
            };
        let mut attached = self.attached.take();
        // An HTTP/2 connection listed in the core's pool before it is made.
        let mut announced: Option<Rc<H2Conn>> = None;
        let hint = self.route.hint;
        let ends = self.client_ends();
        let servers = &ctx.config.backends[be_id].servers;
        let got = session_server_connection(
            ctx,
            self.id,
            be_id,
            ends,
            hint,
            &mut self.trace.attempts,
            |slot| {
                if let Some(a) = attached.take() {
                    if a.backend == be_id && a.server == slot.server() {
                        return Some(Reached::Io(ServerIo::Socket(a.stream)));
                    }
                    park(ctx, fe, a);
                }
                let server = &servers[slot.server()];
                // A connection that began with a PROXY header speaks for
                // its client alone: never another client's (HAProxy makes
                // such connections private).
                let private = server.send_proxy.is_some();
                if server.proto == ServerProto::H2 {
                    // Called again: the connection announced before could
                    // not be made.
                    if let Some(earlier) = announced.take() {
                        earlier.failed();
                    }
                    if private {
                        return None;
                    }
                    // A stream on a connection another request opened: as
                    // HAProxy's `http-reuse` does for HTTP/2 servers, any
                    // request may share one (a refused stream is retried).
                    match h2::server::pooled(ctx, be_id, slot.server()) {
                        Pooled::Stream(stream) => return Some(Reached::Io(ServerIo::H2(stream))),
                        Pooled::Wait(conn) => return Some(Reached::H2Wait(conn)),
                        Pooled::Connect => {}
                    }
                    // None has room: the connection this request makes is
                    // listed at once, for the requests that come meanwhile.
                    announced = Some(h2::server::announce(ctx, be_id, slot.server()));
                    return None;
                }
                if may_take_idle && !private {
                    ctx.http_pool
                        .take(be_id, slot.server())
                        .map(|s| Reached::Io(ServerIo::Socket(s)))
                } else {
                    None
                }
            },
        )
        .await;
        if let Some(a) = attached.take() {
            park(ctx, fe, a);
        }
        let (reached, slot, mut reused) = match got {
            Ok(got) => got,
            Err(failure) => {
                if let Some(listed) = announced.take() {
                    listed.failed();
                }
                self.trace.connect_failed(ctx, be_id, failure);
                if let Some(status) = failure.blame().error_status() {
                    self.send_error(status, true).await;
                }
                return Next::Close;
            }
        };
        // A reused connection or stream needs no announced one.
        let announced = announced.filter(|listed| {
            if reused {
                listed.failed();
            }
            !reused
        });
        let stream = match reached {
            Reached::Io(stream) => stream,
            Reached::H2Wait(conn) => {
                let at = (be_id, slot.server());
                // Boxed, as every HTTP/2-only wait here: see `speak_to`.
                let Some((stream, pooled)) =
                    Box::pin(self.h2_stream(Some(conn), at, slot.addr())).await
                else {
                    return Next::Close;
                };
                reused = pooled;
                stream
            }
        };
        let Some(mut stream) = self
            .speak_to(stream, (be_id, slot.server()), announced)
            .await
        else {
            return Next::Close;
        };
        self.trace.connected(ctx, be_id, slot.server());
        ctx.sessions
            .set_server(self.id, be_id, slot.server(), stream.own_fd());
        let be = &ctx.config.backends[be_id];
        let timeouts = ExchangeTimeouts {
            client: self.fe.timeouts.client,
            // `http-request set-timeout server` wins for this request.
            server: self.route.conn.timeouts.get().server.or(be.timeouts.server),
        };
        self.out.reserve(HEAD_CAPACITY);
        loop {
            let server = RefCell::new(stream);
            let outcome = exchange::run(
                Exchange {
                    client: &self.client,
                    server: &server,
                    client_buf: &mut self.client_buf,
                    server_buf: &mut self.server_buf,
                    parser: &mut self.response_parser,
                    out: &mut self.out,
                    req,
                    progress,
                    claimed,
                    timeouts,
                    server_close,
                    bytes_up: &self.bytes_in,
                    bytes_down: &self.bytes_out,
                    seen: &self.trace.seen,
                    hook: self.route.response_hook(self.fe, be, slot.server()),
                    clock: &self.clock,
                },
                &self.head,
            )
            .await;
            let server = server.into_inner();
            match outcome {
                Outcome::Done {
                    client_keep,
                    server_keep,
                } => {
                    // (An HTTP/2 stream always says it closes.)
                    if let Some(stream) = server.into_socket().filter(|_| server_keep) {
                        self.attached = Some(Attached {
                            stream,
                            backend: be_id,
                            server: slot.server(),
                        });
                    }
                    return if client_keep {
                        Next::KeepAlive
                    } else {
                        Next::Close
                    };
                }
                // Never from an HTTP/2 stream: CONNECT is not sent on
                // one, and HTTP/2 has no 101.
                Outcome::Tunnel => match server.into_socket() {
                    Some(server) => return Next::Tunnel(server, slot),
                    None => return Next::Close,
                },
                Outcome::Failed {
                    retryable: true, ..
                } if reused && !ctx.sessions.is_killed(self.id) => {
                    // The server closed the idle connection as we reused
                    // it: send the request again on a new one, once.
                    ctx.sessions.clear_server(self.id);
                    drop(server);
                    self.server_buf.consume(self.server_buf.len());
                    // Replayable: no body, so nothing was consumed.
                    progress = BodyProgress::new(req.framing);
                    claimed = 0;
                    let addr = slot.addr();
                    let srv = &be.servers[slot.server()];
                    if srv.proto == ServerProto::H2 && srv.send_proxy.is_none() {
                        // Through the pool: each refused stream connecting
                        // its own connection is what it prevents.
                        let at = (be_id, slot.server());
                        let Some((s, _)) = Box::pin(self.h2_stream(None, at, addr)).await else {
                            return Next::Close;
                        };
                        ctx.sessions
                            .set_server(self.id, be_id, slot.server(), s.own_fd());
                        stream = s;
                        // Retried once, as on a new connection.
                        reused = false;
                        continue;
                    }
                    // Boxed: see `server_connection_hinted`.
                    let reconnect = Box::pin(crate::proxy::connect::connect_server(
                        ctx,
                        be_id,
                        slot.server(),
                        addr,
                        self.client_ends(),
                    ));
                    // Not a wait on the session's sockets: a kill must end
                    // it by itself.
                    let Some(reconnected) = ctx.sessions.unless_killed(self.id, reconnect).await
                    else {
                        self.trace
                            .failed(ConnectFailure::Killed { in_queue: false }.blame());
                        return Next::Close;
                    };
                    match reconnected {
                        Ok(s) => {
                            let at = (be_id, slot.server());
                            let Some(s) = self.speak_to(s.into(), at, None).await else {
                                return Next::Close;
                            };
                            ctx.sessions
                                .set_server(self.id, be_id, slot.server(), s.own_fd());
                            stream = s;
                            reused = false;
                        }
                        Err(e) => {
                            let end = attempt_failed(ctx, be_id, slot.server(), &e);
                            self.trace.failed(end);
                            if let Some(status) = end.error_status() {
                                self.send_error(status, true).await;
                            }
                            return Next::Close;
                        }
                    }
                }
                Outcome::Failed { status, end, .. } => {
                    self.trace.failed(end);
                    ctx.sessions.clear_server(self.id);
                    drop(server);
                    if let Some(err) = self.trace.seen.take_invalid() {
                        let from = ErrorSource {
                            frontend: self.trace.frontend(),
                            backend: Some(be_id),
                            server: Some(slot.server()),
                            client: self.peer,
                        };
                        let refused = self.server_buf.filled();
                        ctx.error_snapshots.response(from, refused, err);
                    }
                    self.server_buf.consume(self.server_buf.len());
                    if let Some(status) = status {
                        self.send_error(status, true).await;
                    }
                    return Next::Close;
                }
            }
        }
    }

    /// A stream to `server`, a `proto = "h2"` one, for a request that found
    /// its connections full while `waiting` had not had the server's
    /// SETTINGS yet, or (`None`) whose stream on a pooled connection failed
    /// in a way worth retrying: waits for those SETTINGS, then takes a
    /// stream on a connection with room, waits for the next connection
    /// being made, or connects it (`shard::h2pool`: one at a time per
    /// server and core; one connect attempt, no retry). The waits are
    /// bounded by `timeout queue` (else `timeout connect`) in all: past it
    /// the request gets a 503 `sQ`, counted as a queue timeout, as when no
    /// server slot came. Also returns whether the stream is on a
    /// connection it did not make. `None` if it failed (the client had its
    /// error page).
    async fn h2_stream(
        &mut self,
        mut waiting: Option<Rc<H2Conn>>,
        (backend, server): (usize, usize),
        addr: SocketAddr,
    ) -> Option<(ServerIo, bool)> {
        let ctx = self.ctx;
        let deadline = Instant::now() + h2::server::wait_limit(ctx, backend);
        loop {
            if let Some(conn) = waiting.take() {
                let settled = async {
                    conn.settled().await;
                    true
                };
                let expired = async {
                    glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                    false
                };
                let waited = futures_lite::future::or(settled, expired);
                let failure = match ctx.sessions.unless_killed(self.id, pin!(waited)).await {
                    Some(true) => None,
                    Some(false) => {
                        ctx.stats.borrow_mut().backends[backend].queue_timeouts += 1;
                        Some(ConnectFailure::QueueTimeout)
                    }
                    None => Some(ConnectFailure::Killed { in_queue: true }),
                };
                if let Some(failure) = failure {
                    self.trace.connect_failed(ctx, backend, failure);
                    if let Some(status) = failure.blame().error_status() {
                        self.send_error(status, true).await;
                    }
                    return None;
                }
            }
            match h2::server::pooled(ctx, backend, server) {
                Pooled::Stream(stream) => return Some((ServerIo::H2(stream), true)),
                Pooled::Wait(conn) => waiting = Some(conn),
                Pooled::Connect => {
                    let announced = h2::server::announce(ctx, backend, server);
                    let connect = crate::proxy::connect::connect_server(
                        ctx,
                        backend,
                        server,
                        addr,
                        self.client_ends(),
                    );
                    let connected = ctx.sessions.unless_killed(self.id, pin!(connect)).await;
                    let failure = match connected {
                        Some(Ok(s)) => {
                            ctx.health.connect_succeeded(backend, server);
                            let at = (backend, server);
                            let spoken = self.speak_to(s.into(), at, Some(announced)).await;
                            return spoken.map(|s| (s, false));
                        }
                        Some(Err(e)) => {
                            ConnectFailure::Attempt(attempt_failed(ctx, backend, server, &e))
                        }
                        None => ConnectFailure::Killed { in_queue: false },
                    };
                    announced.failed();
                    self.trace.connect_failed(ctx, backend, failure);
                    if let Some(status) = failure.blame().error_status() {
                        self.send_error(status, true).await;
                    }
                    return None;
                }
            }
        }
    }

    /// A server connection as the exchange uses it: a new connection to a
    /// `proto = "h2"` server becomes an HTTP/2 one (`announced`: its entry
    /// in the core's pool, listed while connecting) and the request a
    /// stream on it. `None` if that failed (the client got a 503).
    async fn speak_to(
        &mut self,
        got: ServerIo,
        (backend, server): (usize, usize),
        announced: Option<Rc<H2Conn>>,
    ) -> Option<ServerIo> {
        match got {
            ServerIo::Socket(stream)
                if self.ctx.config.backends[backend].servers[server].proto == ServerProto::H2 =>
            {
                // Boxed: an HTTP/2 handshake's future is large, and every
                // request awaits `speak_to` (an awaited future is moved
                // whole and stored twice in its caller's; see
                // `server_connection_hinted`).
                Box::pin(self.handshake_h2(stream, (backend, server), announced)).await
            }
            other => {
                if let Some(listed) = announced {
                    listed.failed();
                }
                Some(other)
            }
        }
    }

    /// [`Session::speak_to`] for a new connection to an HTTP/2 server.
    async fn handshake_h2(
        &mut self,
        stream: Stream,
        (backend, server): (usize, usize),
        announced: Option<Rc<H2Conn>>,
    ) -> Option<ServerIo> {
        let ctx = self.ctx;
        match h2::server::connected(ctx, (backend, server), stream, announced).await {
            Ok(stream) => Some(ServerIo::H2(stream)),
            Err(_) => {
                // The server did not speak h2 (its preface or SETTINGS).
                ctx.stats.borrow_mut().backends[backend].conn_errors += 1;
                let end = Blame::server(Stage::Connect, Cause::Invalid);
                self.trace.failed(end);
                if let Some(status) = end.error_status() {
                    self.send_error(status, true).await;
                }
                None
            }
        }
    }

    /// Sends an error page with `connection: close`, then closes after
    /// reading off what the client still sends (bounded). `backend`: the
    /// backend's errorfiles apply.
    async fn send_error(&mut self, status: u16, backend: bool) {
        let pages = if backend {
            &self.fe.http_for(self.be_id).backend_errors
        } else {
            &self.fe.http.errors
        };
        self.trace.error_page(status);
        let page = pages.get(status).bytes(true);
        let limit = self.fe.timeouts.client;
        let mut client = Shared(&self.client);
        if self
            .clock
            .send(Lane::Up, &mut client, page, limit)
            .await
            .is_err()
        {
            return;
        }
        self.bytes_out.set(self.bytes_out.get() + page.len() as u64);
        let _ = client.close().await;
        let deadline = Some(Instant::now() + LINGER_TIME);
        let mut drained = 0;
        self.client_buf.consume(self.client_buf.len());
        while drained < LINGER_BYTES {
            match self
                .clock
                .until(Lane::Up, deadline, self.client_buf.read_from(&mut client))
                .await
            {
                Ok(n) if n > 0 => {
                    drained += n;
                    self.client_buf.consume(n);
                }
                _ => break,
            }
        }
    }

    /// Answers a request that a rule decided (see `route`); true if the
    /// connection may carry another request.
    async fn answer_locally(&mut self, answer: LocalAnswer) -> bool {
        let keep = match answer {
            LocalAnswer::Reject => {
                self.trace.denied(None, false);
                false
            }
            LocalAnswer::Deny { status, backend } => {
                self.trace.denied(Some(status), false);
                self.answered_in(backend);
                self.send_error(status, backend.is_some()).await;
                false
            }
            LocalAnswer::BadRequest { backend } => {
                // As a request that fails to parse: PR, a request error.
                self.trace.refused(BAD_REQUEST);
                self.answered_in(backend);
                self.send_error(400, backend.is_some()).await;
                false
            }
            LocalAnswer::Tarpit {
                status,
                hold,
                backend,
            } => {
                self.trace.denied(Some(status), true);
                let held = glommio::timer::sleep(hold);
                self.ctx.sessions.unless_killed(self.id, pin!(held)).await;
                self.answered_in(backend);
                self.send_error(status, backend.is_some()).await;
                false
            }
            LocalAnswer::NoBackend => {
                self.trace.no_backend();
                self.send_error(503, false).await;
                false
            }
            LocalAnswer::Prepared { close } => {
                self.trace
                    .answered_locally(status_of_response(&self.route.answer));
                let limit = self.fe.timeouts.client;
                let sent =
                    route::answer(&self.clock, &self.client, &self.route.answer, limit).await;
                self.bytes_out
                    .set(self.bytes_out.get() + self.route.answer.len() as u64);
                sent && !close
            }
        };
        self.finish_request();
        keep
    }

    /// A local answer of a backend's rule (`Some`): its errorfiles apply
    /// and the log names it.
    fn answered_in(&mut self, backend: Option<usize>) {
        if let Some(b) = backend {
            self.be_id = b;
            self.trace.answered_in_backend(b);
        }
    }

    /// The client as a server connection may have to tell it.
    fn client_ends(&self) -> ClientEnds {
        ClientEnds {
            src: self.peer,
            dst: Some(self.route.conn.dst),
            fd: self.client.borrow().as_raw_fd(),
        }
    }

    /// At the end of the client connection, its server connection goes to
    /// the core's idle pool if it may be shared.
    fn park_attached(&mut self) {
        if let Some(a) = self.attached.take() {
            park(self.ctx, self.fe, a);
        }
    }
}

/// The status code of a response percore prepared itself
/// (`HTTP/1.1 301 ...`), for the counters and the log.
fn status_of_response(bytes: &[u8]) -> Option<u16> {
    let code = bytes.get(9..12)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// Whether a kept server connection belongs to its client connection
/// alone: never shared (`http-reuse never`), or opened with a PROXY header
/// that carried this client's addresses (closed with it, never pooled).
fn private_to_client(ctx: &CoreContext, fe: &Frontend, a: &Attached) -> bool {
    fe.http_for(a.backend).reuse == HttpReuse::Never
        || ctx.config.backends[a.backend].servers[a.server]
            .send_proxy
            .is_some()
}

/// The settings of the connection's backend decide (`http-reuse`,
/// `http-server-close` on the frontend or that backend).
fn park(ctx: &Rc<CoreContext>, fe: &Frontend, a: Attached) {
    let http = fe.http_for(a.backend);
    // A retired generation's pool was handed over already: a connection
    // parked there now would only wait to be purged.
    if !private_to_client(ctx, fe, &a) && !http.server_close && !ctx.is_retired() {
        let in_use = ctx.backends[a.backend]
            .borrow()
            .server_counters(a.server)
            .current_conns;
        ctx.http_pool.put(a.backend, a.server, a.stream, in_use);
    }
}

/// Appends `name: value` to a complete request head (before its blank
/// line), as HAProxy's `unique-id-header` adds its field last.
/// Removes the fields named `name` (any case) from a serialized head.
fn remove_header(head: &mut Vec<u8>, name: &str) {
    let crlf = |from: usize, head: &[u8]| {
        head.get(from..)
            .and_then(|rest| rest.windows(2).position(|w| w == b"\r\n"))
    };
    let Some(first) = crlf(0, head) else { return };
    let mut pos = first + 2;
    while let Some(len) = crlf(pos, head).filter(|len| *len > 0) {
        let line = &head[pos..pos + len];
        let named = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| line[..colon].eq_ignore_ascii_case(name.as_bytes()));
        if named {
            head.drain(pos..pos + len + 2);
        } else {
            pos += len + 2;
        }
    }
}

fn add_header(head: &mut Vec<u8>, name: &str, value: &str) {
    if !head.ends_with(b"\r\n\r\n") {
        return;
    }
    head.truncate(head.len() - 2);
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value.as_bytes());
    head.extend_from_slice(b"\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::remove_header;

    #[test]
    fn remove_header_drops_every_field_of_the_name() {
        let mut head =
            b"POST / HTTP/1.1\r\nHost: a\r\nEXPECT: 100-continue\r\nX: expect: no\r\nexpect: x\r\n\r\n"
                .to_vec();
        remove_header(&mut head, "expect");
        assert_eq!(head, b"POST / HTTP/1.1\r\nHost: a\r\nX: expect: no\r\n\r\n");
        let mut broken = b"no line end".to_vec();
        remove_header(&mut broken, "expect");
        assert_eq!(broken, b"no line end");
    }
}
