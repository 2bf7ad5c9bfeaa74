//! The plain counters each core keeps per frontend, backend and server.
//! Field names follow HAProxy's stats columns where one exists (noted as
//! `csv: name`); everything is a `u64` bumped by the core that owns it.

/// HTTP response classes, in the order of the `responses` arrays.
pub const RESPONSE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Index into a `responses` array for an HTTP status code.
pub fn response_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrontendCounters {
    /// csv: stot
    pub sessions_total: u64,
    /// csv: scur
    pub sessions_cur: u64,
    /// csv: smax (per core; the merged value is the sum of per-core peaks)
    pub sessions_max: u64,
    /// Bytes received from clients. csv: bin
    pub bytes_in: u64,
    /// Bytes sent to clients. csv: bout
    pub bytes_out: u64,
    /// HTTP requests (mode http). csv: req_tot
    pub requests_total: u64,
    /// HTTP responses by class ([`RESPONSE_CLASSES`]). csv: hrsp_*
    pub responses: [u64; 6],
    /// csv: dreq
    pub denied_requests: u64,
    /// csv: dresp
    pub denied_responses: u64,
    /// Invalid or aborted requests. csv: ereq
    pub request_errors: u64,
    /// TLS handshakes with clients that failed (plain text on a TLS port,
    /// no common version or suite, aborted, timed out). HAProxy's SSL
    /// stats module: ssl_failed_handshake.
    pub ssl_failed_handshakes: u64,
    /// Connections closed because their PROXY protocol header was
    /// missing, malformed, too long, truncated or too slow (percore's
    /// own column: HAProxy only logs these).
    pub proxy_errors: u64,
    /// Connections closed by `tcp-request connection reject`. csv: dcon
    pub denied_connections: u64,
    /// Sessions closed by `tcp-request content reject`. csv: dses
    pub denied_sessions: u64,
    /// HTTP/2 streams refused before any server saw them (rapid reset
    /// beyond its budget, CONNECT, `:authority` disagreeing with Host).
    pub streams_refused: u64,
    /// HTTP/2 connections ended for a protocol error or abuse (GOAWAY
    /// PROTOCOL_ERROR, ENHANCE_YOUR_CALM, ... sent or received).
    pub connection_protocol_errors: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackendCounters {
    /// Sessions that reached a server. csv: stot
    pub sessions_total: u64,
    pub sessions_cur: u64,
    pub sessions_max: u64,
    /// Bytes sent to servers. csv: bin
    pub bytes_in: u64,
    /// Bytes received from servers. csv: bout
    pub bytes_out: u64,
    pub requests_total: u64,
    pub responses: [u64; 6],
    pub denied_requests: u64,
    pub denied_responses: u64,
    /// Failed connection attempts. csv: econ
    pub conn_errors: u64,
    /// Of those, TLS handshakes with a server that failed or timed out
    /// (HAProxy's SSL stats module: ssl_failed_handshake).
    pub ssl_failed_handshakes: u64,
    /// Server resets or errors after connecting. csv: eresp
    pub response_errors: u64,
    /// csv: wretr
    pub retries: u64,
    /// csv: wredis
    pub redispatches: u64,
    /// Connections that gave up waiting in the queue.
    pub queue_timeouts: u64,
    /// Connections refused because no server was usable.
    pub no_server: u64,
    /// csv: cli_abrt
    pub client_aborts: u64,
    /// csv: srv_abrt
    pub server_aborts: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerCounters {
    pub sessions_total: u64,
    pub sessions_cur: u64,
    pub sessions_max: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub responses: [u64; 6],
    pub conn_errors: u64,
    pub ssl_failed_handshakes: u64,
    pub response_errors: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub client_aborts: u64,
    pub server_aborts: u64,
}

/// `cur += 1`, `max = max(max, cur)`, `total += 1`.
macro_rules! session_started {
    ($c:expr) => {{
        let c = $c;
        c.sessions_cur += 1;
        c.sessions_max = c.sessions_max.max(c.sessions_cur);
        c.sessions_total += 1;
    }};
}

impl FrontendCounters {
    pub fn session_started(&mut self) {
        session_started!(self)
    }
}

impl BackendCounters {
    pub fn session_started(&mut self) {
        session_started!(self)
    }
}

impl ServerCounters {
    pub fn session_started(&mut self) {
        session_started!(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_status() {
        assert_eq!(response_class(100), 0);
        assert_eq!(response_class(204), 1);
        assert_eq!(response_class(302), 2);
        assert_eq!(response_class(404), 3);
        assert_eq!(response_class(599), 4);
        assert_eq!(response_class(600), 5);
        assert_eq!(response_class(0), 5);
        assert_eq!(response_class(99), 5);
    }

    #[test]
    fn session_started_tracks_the_peak() {
        let mut c = FrontendCounters::default();
        c.session_started();
        c.session_started();
        c.sessions_cur -= 1;
        c.session_started();
        assert_eq!(
            (c.sessions_cur, c.sessions_max, c.sessions_total),
            (2, 2, 3)
        );
    }
}
