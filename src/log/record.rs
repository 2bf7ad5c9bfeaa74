//! What one access-log line says, independent of its layout. Mode tcp fills
//! the session part; mode http adds [`HttpLog`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// HAProxy's two-character session termination state: the first says what
/// ended the session (`C` client, `S` server, `P` proxy, `K` killed, `-`
/// normal; lower case for a timeout), the second in which phase (`R`
/// request, `Q` queue, `C` connect, `H` headers, `D` data, `-` normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termination(pub [u8; 2]);

impl Termination {
    pub const NORMAL: Termination = Termination(*b"--");
    /// The client aborted (reset) while data flowed.
    pub const CLIENT_ABORT: Termination = Termination(*b"CD");
    /// An idle timeout expired while data flowed.
    pub const CLIENT_TIMEOUT: Termination = Termination(*b"cD");
    /// The server aborted while data flowed.
    pub const SERVER_ABORT: Termination = Termination(*b"SD");
    /// The server refused the connection, or no server was usable.
    pub const SERVER_REFUSED: Termination = Termination(*b"SC");
    /// Connecting to the server timed out.
    pub const CONNECT_TIMEOUT: Termination = Termination(*b"sC");
    /// Waiting in the queue timed out.
    pub const QUEUE_TIMEOUT: Termination = Termination(*b"sQ");
    /// The proxy itself failed (e.g. out of pipes) while data flowed.
    pub const PROXY_ERROR: Termination = Termination(*b"PD");
    /// HTTP: the proxy refused an invalid request (400).
    pub const BAD_REQUEST: Termination = Termination(*b"PR");
    /// HTTP: the request head did not arrive within `timeout http-request`
    /// (408).
    pub const REQUEST_TIMEOUT: Termination = Termination(*b"cR");
    /// HTTP: the client closed in the middle of a request head.
    pub const REQUEST_ABORT: Termination = Termination(*b"CR");
    /// HTTP: the server closed or failed before a response head (502).
    pub const SERVER_HEADERS_ABORT: Termination = Termination(*b"SH");
    /// HTTP: the server's response head was invalid (502).
    pub const BAD_RESPONSE: Termination = Termination(*b"PH");
    /// HTTP: no response head within `timeout server` (504).
    /// Refused by an `http-request deny|reject` rule.
    pub const DENIED_REQUEST: Termination = Termination(*b"PR");
    /// Held by `http-request tarpit`, then refused.
    pub const TARPIT: Termination = Termination(*b"PT");
    /// Answered by percore itself (`return`, `redirect`, `auth`).
    pub const LOCAL_ANSWER: Termination = Termination(*b"LR");
    pub const RESPONSE_TIMEOUT: Termination = Termination(*b"sH");
    /// Shut down by the runtime API while waiting for a server slot.
    pub const KILLED_IN_QUEUE: Termination = Termination(*b"KQ");
    /// Shut down by the runtime API while connecting to the server.
    pub const KILLED_CONNECTING: Termination = Termination(*b"KC");

    /// The same end, caused by the runtime API shutting the session down
    /// (`shutdown session`, `shutdown sessions server`): HAProxy's `K`,
    /// with the phase the session was in (a killed tunnel logs `K-`, a
    /// request killed while waiting for its response `KH`, as HAProxy 2.6).
    pub fn killed(self) -> Termination {
        Termination([b'K', self.0[1]])
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// Connection counts at log time (HAProxy `%ac/%fc/%bc/%sc`). percore
/// reports the logging core's own counts: cores share nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounts {
    pub actconn: u64,
    pub feconn: u64,
    pub beconn: u64,
    pub srv_conn: u64,
}

/// The HTTP part of a record (filled by mode http).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLog<'a> {
    /// When the first byte of the request arrived (`%tr`).
    pub request_date: SystemTime,
    /// Idle time before the first byte of the request (`%Ti`).
    pub t_idle: Duration,
    /// Time to receive the full request head (`%TR`).
    pub t_request: Option<Duration>,
    /// Time from the request sent to the response head (`%Tr`).
    pub t_response: Option<Duration>,
    /// Active time of the request, received to response end (`%Ta`).
    pub t_active: Duration,
    /// Status sent to the client (`%ST`); `None` logs -1.
    pub status: Option<u16>,
    /// The request line as received (`%r`), e.g. `GET / HTTP/1.1`.
    pub request_line: &'a str,
    /// Values of the `capture-request-header` entries, in config order;
    /// empty strings for absent headers.
    pub captured_request_headers: &'a [String],
    /// Values of the response capture slots (`capture-response-header`,
    /// `declare-capture` response slots), in slot order.
    pub captured_response_headers: &'a [String],
    /// `capture-cookie`: the request's and the response's cookie (`%CC`,
    /// `%CS`; `None` logs `-`).
    pub captured_cookies: (Option<&'a str>, Option<&'a str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord<'a> {
    pub client: SocketAddr,
    /// The address the client connected to (`%fi:%fp`).
    pub frontend_addr: Option<SocketAddr>,
    /// The client connection is TLS (`%ft` ends with `~`).
    pub tls: bool,
    /// The server's configured address (`%si:%sp`); `None` without one.
    pub server_addr: Option<SocketAddr>,
    /// The request's (HTTP) or session's (TCP) number (`%rt`).
    pub request_id: u64,
    /// The request's unique id (`unique-id-format`, `%ID`).
    pub unique_id: Option<&'a str>,
    pub accept_date: SystemTime,
    pub frontend: &'a str,
    pub backend: &'a str,
    /// `None` logs `<NOSRV>`.
    pub server: Option<&'a str>,
    /// Time spent waiting in the queue (`%Tw`); `None` logs -1.
    pub t_queue: Option<Duration>,
    /// Time to connect to the server, retries included (`%Tc`).
    pub t_connect: Option<Duration>,
    /// Session total, accept to close (`%Tt`).
    pub t_total: Duration,
    /// Bytes sent to the client (`%B`).
    pub bytes_read: u64,
    /// Bytes received from the client (`%U`).
    pub bytes_uploaded: u64,
    pub termination: Termination,
    pub conns: ConnCounts,
    /// Connection retries (`%rc`), shown with `+` if redispatched.
    pub retries: u32,
    pub redispatched: bool,
    pub srv_queue: u64,
    pub backend_queue: u64,
    pub http: Option<HttpLog<'a>>,
}
