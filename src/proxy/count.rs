//! What a session adds to its core's counters once it has a server: the
//! same steps for a TCP session, an HTTP request and an HTTP tunnel, so
//! both modes count alike. Plain field updates on the core's own stats.

use crate::net::blame::{Blame, Counted};
use crate::net::tunnel::TunnelReport;
use crate::stats::CoreStats;
use std::time::Duration;

/// A session (TCP) or request (HTTP) got its server: current/max/total on
/// backend and server, and the connect time when a connection was made
/// for it (`None` for a reused one).
pub fn server_session_started(
    stats: &mut CoreStats,
    backend: usize,
    server: usize,
    connect: Option<Duration>,
) {
    stats.backends[backend].session_started();
    stats.servers[backend][server].session_started();
    if let Some(t) = connect {
        stats.timings[backend].connect.record(t);
    }
}

/// The session or request is over: it no longer counts as current.
pub fn server_session_ended(stats: &mut CoreStats, backend: usize, server: usize) {
    let bc = &mut stats.backends[backend];
    bc.sessions_cur = bc.sessions_cur.saturating_sub(1);
    let sc = &mut stats.servers[backend][server];
    sc.sessions_cur = sc.sessions_cur.saturating_sub(1);
}

/// Bytes moved for a session: `up` from the client towards the server,
/// `down` back to the client (HAProxy's `bin`/`bout` of backend and
/// server).
pub fn transfer(stats: &mut CoreStats, backend: usize, server: usize, up: u64, down: u64) {
    let bc = &mut stats.backends[backend];
    bc.bytes_in += up;
    bc.bytes_out += down;
    let sc = &mut stats.servers[backend][server];
    sc.bytes_in += up;
    sc.bytes_out += down;
}

/// What a failed exchange or tunnel adds: `cli_abrt`, `srv_abrt` (a
/// server abort is a response error too) or `eresp`, as
/// [`Blame::counted`] says.
pub fn failure(stats: &mut CoreStats, backend: usize, server: usize, end: Blame) {
    let Some(counted) = end.counted() else {
        return;
    };
    let bc = &mut stats.backends[backend];
    let sc = &mut stats.servers[backend][server];
    match counted {
        Counted::ClientAbort => {
            bc.client_aborts += 1;
            sc.client_aborts += 1;
        }
        Counted::ServerAbort => {
            bc.server_aborts += 1;
            sc.server_aborts += 1;
            bc.response_errors += 1;
            sc.response_errors += 1;
        }
        Counted::ResponseError => {
            bc.response_errors += 1;
            sc.response_errors += 1;
        }
    }
}

/// Bytes and aborts of a finished tunnel (mode tcp, or HTTP after a
/// protocol switch).
pub fn tunnel_end(stats: &mut CoreStats, backend: usize, server: usize, report: &TunnelReport) {
    transfer(
        stats,
        backend,
        server,
        report.client_to_server,
        report.server_to_client,
    );
    if let Some(end) = report.end.blame() {
        failure(stats, backend, server, end);
    }
}
