//! What one access-log line says, independent of its layout. Mode tcp fills
//! the session part; mode http adds [`HttpLog`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::net::Blame;

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
    /// How the session or request ended (`None`: normally); the log
    /// shows its termination state (`%ts`).
    pub end: Option<Blame>,
    pub conns: ConnCounts,
    /// Connection retries (`%rc`), shown with `+` if redispatched.
    pub retries: u32,
    pub redispatched: bool,
    pub srv_queue: u64,
    pub backend_queue: u64,
    pub http: Option<HttpLog<'a>>,
}
