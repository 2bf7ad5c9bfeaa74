//! What each HTTP request leaves behind: its frontend, backend and server
//! counters, the backend's latency histograms, the passive health report
//! (`observe layer7`) and its access-log line.
//!
//! The session notes facts in its [`RequestTrace`] as a request goes
//! (plain field writes, an `Instant` per phase) and calls
//! [`RequestTrace::finish`] once per request; strings for the log (request
//! line, captured headers) are only built when the frontend logs.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use crate::config::{HeaderCapture, UniqueId};
use crate::http::{HeadError, RequestHead};
use crate::log::custom::CustomFormat;
use std::borrow::Cow;

use crate::log::{capture_request_headers, HttpLog, LogRecord};
use crate::net::blame::{Blame, Cause, Side, Stage};
use crate::net::tunnel::TunnelReport;
use crate::proxy::accesslog;
use crate::proxy::connect::{warn_if_no_server, Attempts, ConnectFailure};
use crate::proxy::count;
use crate::rules::CaptureSide;
use crate::rules::{ConnFacts, Facts};
use crate::shard::sessions::SessionId;
use crate::shard::CoreContext;
use crate::stats::response_class;

/// The final response head as the exchange saw it (1xx interim heads
/// excluded, 101 included).
#[derive(Debug, Default)]
pub(super) struct ResponseSeen {
    status: Cell<Option<u16>>,
    at: Cell<Option<Instant>>,
    /// The response head was refused for this (set on that error only,
    /// taken by the session right after the failed exchange, so it needs
    /// no reset per request).
    invalid: Cell<Option<HeadError>>,
}

impl ResponseSeen {
    pub(super) fn final_head(&self, status: u16) {
        self.status.set(Some(status));
        self.at.set(Some(Instant::now()));
    }

    /// The response head the exchange read is invalid (`show errors`).
    pub(super) fn invalid_head(&self, err: HeadError) {
        self.invalid.set(Some(err));
    }

    pub(super) fn take_invalid(&self) -> Option<HeadError> {
        self.invalid.take()
    }

    fn clear(&self) {
        self.status.set(None);
        self.at.set(None);
    }
}

/// The client closed in the middle of a request head (a request error).
const ABORTED_HEAD: Blame = Blame::client(Stage::Request, Cause::Closed);

/// One request's facts, reused from request to request of a connection.
pub(super) struct RequestTrace {
    frontend: usize,
    /// The connection in the core's session registry (was it killed?).
    session: SessionId,
    /// The backend the request went to (the frontend's default until
    /// then; `None` for a frontend without default_backend).
    backend: Option<usize>,
    peer: SocketAddr,
    /// The address the client connected to (`%fi:%fp`).
    local: SocketAddr,
    tls: bool,
    /// The connection's accept date; `Some` only when the frontend logs.
    accept_date: Option<SystemTime>,
    accepted: Instant,
    /// End of the previous request (the accept for the first): HAProxy's
    /// `Tt` of a keep-alive request counts the idle time before it.
    previous_end: Instant,
    /// First byte of the request.
    started: Option<Instant>,
    /// Request head complete.
    head_done: Option<Instant>,
    request_line: String,
    /// The version the log shows when the client did not speak HTTP/1.x
    /// (the head it is parsed from says HTTP/1.1, see `proxy::h2`).
    version_label: Option<&'static str>,
    captured: Vec<String>,
    /// The request's `unique-id-format` value (empty without one).
    unique_id: String,
    /// `%rt`, taken when first needed.
    request_id: Option<u64>,
    pub(super) attempts: Attempts,
    /// The request was handed to the backend (HAProxy's backend `req_tot`).
    reached_backend: bool,
    /// A rule of the backend answered the request (`deny`, `tarpit`, a
    /// bad request): the log names that backend, as HAProxy's does.
    answered_in_backend: bool,
    /// The server connection the request went out on.
    server: Option<usize>,
    connected_at: Option<Instant>,
    pub(super) seen: ResponseSeen,
    /// An error page's status, when one was sent instead of a response.
    error_status: Option<u16>,
    /// How the request ended (`None`: normally).
    end: Option<Blame>,
    /// An `http-request deny|reject|tarpit` rule refused the request.
    denied: bool,
    /// Connection byte counts when the request started.
    bytes_in_at: u64,
    bytes_out_at: u64,
}

impl RequestTrace {
    pub(super) fn new(
        ctx: &CoreContext,
        frontend: usize,
        backend: Option<usize>,
        (peer, local, tls): (SocketAddr, SocketAddr, bool),
        accepted: Instant,
        session: SessionId,
    ) -> Self {
        RequestTrace {
            frontend,
            session,
            backend,
            peer,
            local,
            tls,
            accept_date: accesslog::enabled(ctx, frontend).then(SystemTime::now),
            accepted,
            previous_end: accepted,
            started: None,
            head_done: None,
            request_line: String::new(),
            version_label: None,
            captured: Vec::new(),
            unique_id: String::new(),
            request_id: None,
            attempts: Attempts::default(),
            reached_backend: false,
            answered_in_backend: false,
            server: None,
            connected_at: None,
            seen: ResponseSeen::default(),
            error_status: None,
            end: None,
            denied: false,
            bytes_in_at: 0,
            bytes_out_at: 0,
        }
    }

    /// Log requests with this protocol version (`HTTP/2.0`).
    pub(super) fn version_label(&mut self, version: &'static str) {
        self.version_label = Some(version);
    }

    pub(super) fn frontend(&self) -> usize {
        self.frontend
    }

    /// A new request may come: forget the previous one. `first`: the
    /// connection's first request, which starts at the accept.
    pub(super) fn begin(&mut self, first: bool, bytes_in: u64, bytes_out: u64) {
        self.started = first.then_some(self.accepted);
        self.head_done = None;
        self.request_id = None;
        self.attempts = Attempts::default();
        self.reached_backend = false;
        self.answered_in_backend = false;
        self.server = None;
        self.connected_at = None;
        self.seen.clear();
        self.error_status = None;
        self.end = None;
        self.denied = false;
        self.bytes_in_at = bytes_in;
        self.bytes_out_at = bytes_out;
    }

    /// Request bytes are in the buffer (the request starts with the first).
    pub(super) fn data_arrived(&mut self) {
        if self.started.is_none() {
            self.started = Some(Instant::now());
        }
    }

    /// The request head is complete and valid.
    pub(super) fn head(
        &mut self,
        head: &RequestHead<'_>,
        captures: &[HeaderCapture],
        unique_id: Option<&UniqueId>,
    ) {
        self.head_done = Some(Instant::now());
        self.unique_id.clear();
        if self.accept_date.is_some() || unique_id.is_some() {
            self.request_line.clear();
            self.request_line.push_str(head.method);
            self.request_line.push(' ');
            self.request_line.push_str(head.target);
            self.request_line.push(' ');
            let version = self.version_label.unwrap_or(head.version.as_str());
            self.request_line.push_str(version);
            self.captured = capture_request_headers(&head.headers, captures);
        }
    }

    /// The request's number (`%rt`), taken from the core on first use.
    fn request_id(&mut self, ctx: &CoreContext) -> u64 {
        *self
            .request_id
            .get_or_insert_with(|| ctx.log.next_request_id(ctx.core_index, ctx.core_count))
    }

    /// The request's unique id (empty without `unique-id-format`).
    pub(super) fn unique_id(&self) -> &str {
        &self.unique_id
    }

    /// Makes the request's unique id (HAProxy: once per request, from what
    /// is known when the request head is complete: no server, status or
    /// response timer yet).
    pub(super) fn make_unique_id(
        &mut self,
        ctx: &CoreContext,
        format: &CustomFormat,
        conn: &ConnFacts,
    ) -> &str {
        let now = Instant::now();
        let started = self.started.unwrap_or(now);
        let accept_date = self
            .accept_date
            .unwrap_or_else(|| SystemTime::now() - now.saturating_duration_since(self.accepted));
        let request_id = self.request_id(ctx);
        let fe = &ctx.config.frontends[self.frontend];
        let record = LogRecord {
            client: self.peer,
            frontend_addr: Some(self.local),
            tls: self.tls,
            server_addr: None,
            unique_id: None,
            request_id,
            accept_date,
            frontend: &fe.name,
            backend: &fe.name,
            server: None,
            t_queue: None,
            t_connect: None,
            t_total: now.saturating_duration_since(self.previous_end),
            bytes_read: 0,
            bytes_uploaded: 0,
            end: None,
            conns: accesslog::conn_counts(ctx, self.frontend, None, None),
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            http: Some(HttpLog {
                request_date: accept_date + started.saturating_duration_since(self.accepted),
                t_idle: started.saturating_duration_since(self.previous_end),
                t_request: self.head_done.map(|h| h.saturating_duration_since(started)),
                t_response: None,
                t_active: now.saturating_duration_since(started),
                status: None,
                request_line: &self.request_line,
                captured_request_headers: &self.captured,
                captured_response_headers: &[],
                captured_cookies: (None, None),
            }),
        };
        let mut id = std::mem::take(&mut self.unique_id);
        let facts = Facts {
            conn,
            req: None,
            res: None,
            payload: None,
        };
        format.render(&mut id, &record, ctx.log.clock(), Some(&facts));
        self.unique_id = id;
        &self.unique_id
    }

    /// The request is refused for the client's fault before any server is
    /// involved: 400 (invalid) or 408 (too slow).
    pub(super) fn refused(&mut self, end: Blame) {
        self.end = Some(end);
    }

    /// An `http-request` rule refused the request (`deny`/`tarpit` answer
    /// `status`, `reject` closes): counted as a denied request and logged
    /// PR (PT for a tarpit), as HAProxy does.
    pub(super) fn denied(&mut self, status: Option<u16>, tarpit: bool) {
        self.denied = true;
        self.error_status = status;
        let stage = if tarpit {
            Stage::Tarpit
        } else {
            Stage::Request
        };
        self.end = Some(Blame::proxy(stage, Cause::Denied));
    }

    /// A rule answered the request itself (`return`, `redirect`, `auth`):
    /// logged LR, as HAProxy does.
    pub(super) fn answered_locally(&mut self, status: Option<u16>) {
        self.error_status = status;
        self.end = Some(Blame::new(Side::Local, Stage::Request, Cause::Answered));
    }

    /// A rule of `backend` answered the request (after [`Self::denied`]
    /// or [`Self::refused`]): logged with that backend and `<NOSRV>`,
    /// not counted as one of its requests.
    pub(super) fn answered_in_backend(&mut self, backend: usize) {
        self.backend = Some(backend);
        self.answered_in_backend = true;
    }

    /// No rule chose a backend and the frontend has none by default: a
    /// 503 logged `<NOSRV>` with the frontend as backend, SC as HAProxy.
    pub(super) fn no_backend(&mut self) {
        self.end = Some(Blame::server(Stage::Connect, Cause::NoServer));
    }

    /// The client closed in the middle of a request head.
    pub(super) fn aborted_head(&mut self) {
        self.end = Some(ABORTED_HEAD);
    }

    /// An error page with `status` went (or was meant to go) to the client.
    pub(super) fn error_page(&mut self, status: u16) {
        self.error_status = Some(status);
    }

    /// No server connection could be had in `backend` (the client gets a
    /// 503).
    pub(super) fn connect_failed(
        &mut self,
        ctx: &CoreContext,
        backend: usize,
        failure: ConnectFailure,
    ) {
        self.backend = Some(backend);
        self.reached_backend = true;
        self.end = Some(failure.blame());
        warn_if_no_server(ctx, self.frontend, backend, self.peer);
    }

    /// The request goes out to `server` of `backend` (on a new connection
    /// if `attempts.last_connect` says so, else a reused one).
    pub(super) fn connected(&mut self, ctx: &CoreContext, backend: usize, server: usize) {
        self.backend = Some(backend);
        self.reached_backend = true;
        self.server = Some(server);
        self.connected_at = Some(Instant::now());
        count::server_session_started(
            &mut ctx.stats.borrow_mut(),
            backend,
            server,
            self.attempts.last_connect,
        );
    }

    /// The exchange ended early; `end` says who failed and where.
    pub(super) fn failed(&mut self, end: Blame) {
        self.end = Some(end);
    }

    /// The request is over (after its tunnel, if the protocol switched):
    /// counts it, reports the server's answer to the health observer and
    /// logs it. `bytes_in`/`bytes_out`: the connection's counts so far.
    /// `conn`: the connection's facts (a custom log format's samples).
    pub(super) fn finish(
        &mut self,
        ctx: &CoreContext,
        (bytes_in, bytes_out): (u64, u64),
        tunnel: Option<&TunnelReport>,
        conn: &ConnFacts,
    ) {
        let now = Instant::now();
        let mut up = bytes_in - self.bytes_in_at;
        let mut down = bytes_out - self.bytes_out_at;
        if let Some(t) = tunnel {
            up += t.client_to_server;
            down += t.server_to_client;
            self.end = t.end.blame();
        }
        // What the counters see: a killed tunnel still counts the abort
        // that ended it; a killed exchange counts nothing (its sockets
        // were shut down under it).
        let tunnel_end = self.end;
        if ctx.sessions.is_killed(self.session) {
            self.end = Some(Blame::killed(self.end));
        }
        let failure = if tunnel.is_some() {
            tunnel_end
        } else {
            self.end
        };
        let status = self.error_status.or(self.seen.status.get());
        let started = self.started.unwrap_or(self.previous_end);
        let (b, f) = (self.backend, self.frontend);
        {
            let mut guard = ctx.stats.borrow_mut();
            let stats = &mut *guard;
            let fc = &mut stats.frontends[f];
            fc.requests_total += 1;
            fc.denied_requests += u64::from(self.denied);
            if let Some(s) = status {
                fc.responses[response_class(s)] += 1;
            }
            if matches!(self.error_status, Some(400 | 408)) || self.end == Some(ABORTED_HEAD) {
                fc.request_errors += 1;
            }
            if let (true, Some(b)) = (self.reached_backend, b) {
                let bc = &mut stats.backends[b];
                bc.requests_total += 1;
                if let Some(s) = status {
                    bc.responses[response_class(s)] += 1;
                }
            }
            if let (Some(server), Some(b)) = (self.server, b) {
                if let Some(s) = self.seen.status.get() {
                    stats.servers[b][server].responses[response_class(s)] += 1;
                }
                count::transfer(stats, b, server, up, down);
                // A tunnel's end is the request's end (set above).
                if let Some(end) = failure {
                    count::failure(stats, b, server, end);
                }
                let timings = &mut stats.timings[b];
                if let (Some(at), Some(sent)) = (self.seen.at.get(), self.connected_at) {
                    timings.response.record(at.saturating_duration_since(sent));
                }
                timings.total.record(now.saturating_duration_since(started));
            }
        }
        if let (Some(server), Some(b)) = (self.server, b) {
            match self.seen.status.get() {
                Some(s) => ctx.health.http_status(b, server, s),
                None => {
                    if let Some(end) = self.end {
                        ctx.health.http_failed(b, server, end);
                    }
                }
            }
        }
        if let Some(date) = self.accept_date {
            self.request_id(ctx);
            self.log(ctx, conn, date, status, (started, now), (up, down));
        }
        if let (Some(server), Some(b)) = (self.server, b) {
            count::server_session_ended(&mut ctx.stats.borrow_mut(), b, server);
        }
        self.previous_end = now;
    }

    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        ctx: &CoreContext,
        conn: &ConnFacts,
        accept_date: SystemTime,
        status: Option<u16>,
        (started, now): (Instant, Instant),
        (up, down): (u64, u64),
    ) {
        let fe_log = &ctx.config.frontends[self.frontend].log;
        // HAProxy's dontlognull: nothing came from the client (in HTTP
        // mode only a connection that timed out empty).
        if fe_log.dontlognull && up == 0 {
            return;
        }
        let fe = &ctx.config.frontends[self.frontend];
        let be = self.backend.map(|b| &ctx.config.backends[b]);
        let server = self.server.or(self.attempts.last_server);
        let request_line = match self.head_done {
            Some(_) => self.request_line.as_str(),
            None => "<BADREQ>",
        };
        // The capture rules' slots over the header captures (built only
        // when the frontend has such slots or a rule wrote one: a
        // backend's `id` rule may write a header capture's slot).
        let request_lens = fe_log
            .captures
            .iter()
            .map(|c| c.len)
            .chain(fe_log.declared.request.iter().copied());
        let request_slots = fe_log.captures.len() + fe_log.declared.request.len();
        let written = conn.captures.any(CaptureSide::Request);
        let request_captures = match written || request_slots > self.captured.len() {
            true => Cow::Owned(conn.captures.slots(
                CaptureSide::Request,
                request_lens,
                &self.captured,
            )),
            false => Cow::Borrowed(&self.captured[..]),
        };
        let response_lens = fe_log
            .response_captures
            .iter()
            .map(|c| c.len)
            .chain(fe_log.declared.response.iter().copied());
        let response_captures = match response_lens.clone().next() {
            None => Vec::new(),
            Some(_) => conn
                .captures
                .slots(CaptureSide::Response, response_lens, &[]),
        };
        let cookies = conn.captures.cookie.borrow();
        let record = LogRecord {
            client: self.peer,
            frontend_addr: Some(self.local),
            tls: self.tls,
            server_addr: be.zip(server).map(|(be, s)| be.servers[s].addr),
            unique_id: (!self.unique_id.is_empty()).then_some(self.unique_id.as_str()),
            request_id: self.request_id.unwrap_or_default(),
            accept_date,
            frontend: &fe.name,
            // HAProxy names the frontend when no backend was reached.
            backend: match be {
                Some(be) if self.reached_backend || self.answered_in_backend => &be.name,
                _ => &fe.name,
            },
            server: be.zip(server).map(|(be, s)| be.servers[s].name.as_str()),
            t_queue: self.attempts.t_queue,
            t_connect: self.attempts.t_connect,
            t_total: now.saturating_duration_since(self.previous_end),
            bytes_read: down,
            bytes_uploaded: up,
            end: self.end,
            conns: accesslog::conn_counts(ctx, self.frontend, self.backend, self.server),
            retries: self.attempts.retries,
            redispatched: self.attempts.redispatched,
            srv_queue: 0,
            backend_queue: self
                .backend
                .map_or(0, |b| ctx.backends[b].borrow().queue_current() as u64),
            http: Some(HttpLog {
                request_date: accept_date + started.saturating_duration_since(self.accepted),
                t_idle: started.saturating_duration_since(self.previous_end),
                t_request: self.head_done.map(|h| h.saturating_duration_since(started)),
                t_response: match (self.seen.at.get(), self.connected_at) {
                    (Some(at), Some(sent)) => Some(at.saturating_duration_since(sent)),
                    _ => None,
                },
                t_active: now.saturating_duration_since(started),
                status,
                request_line,
                captured_request_headers: if self.head_done.is_some() {
                    &request_captures
                } else {
                    &[]
                },
                captured_response_headers: &response_captures,
                captured_cookies: (cookies.0.as_deref(), cookies.1.as_deref()),
            }),
        };
        accesslog::emit(ctx, self.frontend, &record, Some(conn));
    }
}
