//! `mode = "tcp"` sessions: pick a server, connect with retries and
//! redispatch, then tunnel bytes both ways until both sides are done.

use super::accesslog;
use super::connect::connect;
use super::CoreContext;
use crate::backend::{acquire, acquire_server, AcquireError, ServerSlot};
use crate::config::{Backend, Timeouts};
use crate::log::{LogRecord, Termination};
use crate::net::tunnel::{self, TunnelEnd, TunnelReport, TunnelSettings};
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// HAProxy waits min(timeout connect, 1s) before retrying the same server so
/// that a restarting server is not hammered; a redispatch goes at once.
const TURNAROUND_MAX: Duration = Duration::from_secs(1);

pub async fn serve(ctx: Rc<CoreContext>, frontend: usize, client: TcpStream, peer: SocketAddr) {
    let accepted = Instant::now();
    let logging = accesslog::enabled(&ctx, frontend);
    let accept_date = logging.then(SystemTime::now);
    let fe = &ctx.config.frontends[frontend];
    let backend_id = fe.default_backend;
    let be = &ctx.config.backends[backend_id];

    let mut attempts = Attempts::default();
    let connected = connect_with_retries(&ctx, backend_id, be, peer, &mut attempts).await;
    let (server, slot) = match connected {
        Ok(pair) => pair,
        Err(failure) => {
            // Nothing to say to a TCP client: closing is the answer (HAProxy
            // closes the client connection too).
            if let Some(date) = accept_date {
                let record = LogRecord {
                    client: peer,
                    accept_date: date,
                    frontend: &fe.name,
                    backend: &be.name,
                    // HAProxy names the server that refused; <NOSRV> when
                    // none was picked.
                    server: attempts.last_server.map(|s| be.servers[s].name.as_str()),
                    t_queue: attempts.t_queue,
                    t_connect: None,
                    t_total: accepted.elapsed(),
                    bytes_read: 0,
                    bytes_uploaded: 0,
                    termination: failure.termination(),
                    conns: accesslog::conn_counts(&ctx, frontend, backend_id, None),
                    retries: attempts.retries,
                    redispatched: attempts.redispatched,
                    srv_queue: 0,
                    backend_queue: ctx.backends[backend_id].borrow().queue_current() as u64,
                    http: None,
                };
                accesslog::emit(&ctx, frontend, &record);
            }
            return;
        }
    };
    let server_index = slot.server();
    let connected_at = Instant::now();
    {
        let mut stats = ctx.stats.borrow_mut();
        stats.backends[backend_id].session_started();
        stats.servers[backend_id][server_index].session_started();
        if let Some(t) = attempts.last_connect {
            stats.timings[backend_id].connect.record(t);
        }
    }

    let settings = TunnelSettings {
        idle_timeout: tunnel_idle_timeout(&fe.timeouts, &be.timeouts),
        splice: ctx.config.global.tune.splice,
        bufsize: ctx.config.global.tune.bufsize,
    };
    let report = tunnel::run(client, server, &[], &[], &settings, &ctx.pipes).await;
    let t_total = accepted.elapsed();
    let termination = termination_of(&report.end);
    let conns =
        accept_date.map(|_| accesslog::conn_counts(&ctx, frontend, backend_id, Some(server_index)));
    count_session_end(&ctx, frontend, backend_id, server_index, &report);
    {
        let mut stats = ctx.stats.borrow_mut();
        let timings = &mut stats.timings[backend_id];
        if let Some(first) = report.first_to_client {
            timings
                .response
                .record(first.saturating_duration_since(connected_at));
        }
        timings.total.record(t_total);
    }
    if let (Some(date), Some(conns)) = (accept_date, conns) {
        let record = LogRecord {
            client: peer,
            accept_date: date,
            frontend: &fe.name,
            backend: &be.name,
            server: Some(&be.servers[server_index].name),
            t_queue: attempts.t_queue,
            t_connect: attempts.t_connect,
            t_total,
            bytes_read: report.server_to_client,
            bytes_uploaded: report.client_to_server,
            termination,
            conns,
            retries: attempts.retries,
            redispatched: attempts.redispatched,
            srv_queue: 0,
            backend_queue: ctx.backends[backend_id].borrow().queue_current() as u64,
            http: None,
        };
        accesslog::emit(&ctx, frontend, &record);
    }
    drop(slot);
}

/// Bytes, current sessions and abort counters at the end of a tunnel.
fn count_session_end(
    ctx: &CoreContext,
    frontend: usize,
    backend: usize,
    server: usize,
    report: &TunnelReport,
) {
    let mut guard = ctx.stats.borrow_mut();
    let stats = &mut *guard;
    let fc = &mut stats.frontends[frontend];
    fc.bytes_in += report.client_to_server;
    fc.bytes_out += report.server_to_client;
    let bc = &mut stats.backends[backend];
    let sc = &mut stats.servers[backend][server];
    bc.bytes_in += report.client_to_server;
    bc.bytes_out += report.server_to_client;
    sc.bytes_in += report.client_to_server;
    sc.bytes_out += report.server_to_client;
    bc.sessions_cur = bc.sessions_cur.saturating_sub(1);
    sc.sessions_cur = sc.sessions_cur.saturating_sub(1);
    match report.end {
        TunnelEnd::ClientReset | TunnelEnd::ClientError(_) => {
            bc.client_aborts += 1;
            sc.client_aborts += 1;
        }
        TunnelEnd::ServerReset | TunnelEnd::ServerError(_) => {
            bc.server_aborts += 1;
            sc.server_aborts += 1;
            bc.response_errors += 1;
            sc.response_errors += 1;
        }
        TunnelEnd::Closed | TunnelEnd::LocalError(_) | TunnelEnd::IdleTimeout => {}
    }
}

/// HAProxy's termination state for how a tunnel ended.
pub fn termination_of(end: &TunnelEnd) -> Termination {
    match end {
        TunnelEnd::Closed => Termination::NORMAL,
        TunnelEnd::ClientReset | TunnelEnd::ClientError(_) => Termination::CLIENT_ABORT,
        TunnelEnd::ServerReset | TunnelEnd::ServerError(_) => Termination::SERVER_ABORT,
        TunnelEnd::LocalError(_) => Termination::PROXY_ERROR,
        TunnelEnd::IdleTimeout => Termination::CLIENT_TIMEOUT,
    }
}

/// Timings and retry facts of getting a session to a server.
#[derive(Debug, Default)]
struct Attempts {
    /// Time spent waiting for a slot (queue), all attempts.
    t_queue: Option<Duration>,
    /// Time from the first connect attempt to success, retries included.
    t_connect: Option<Duration>,
    /// Duration of the successful attempt alone.
    last_connect: Option<Duration>,
    retries: u32,
    redispatched: bool,
    /// The last server a connection was attempted to.
    last_server: Option<usize>,
}

/// Why a session got no server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectFailure {
    NoServer,
    QueueTimeout,
    Refused,
    TimedOut,
}

impl ConnectFailure {
    fn termination(self) -> Termination {
        match self {
            ConnectFailure::NoServer | ConnectFailure::Refused => Termination::SERVER_REFUSED,
            ConnectFailure::QueueTimeout => Termination::QUEUE_TIMEOUT,
            ConnectFailure::TimedOut => Termination::CONNECT_TIMEOUT,
        }
    }
}

/// In TCP mode HAProxy lets `timeout tunnel` supersede client and server
/// timeouts once both sides are connected; without it, the shorter of the
/// two idle timeouts ends the session.
pub fn tunnel_idle_timeout(fe: &Timeouts, be: &Timeouts) -> Option<Duration> {
    if let Some(t) = be.tunnel.or(fe.tunnel) {
        return Some(t);
    }
    match (fe.client, be.server) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (c, s) => c.or(s),
    }
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

async fn connect_with_retries(
    ctx: &CoreContext,
    backend_id: usize,
    be: &Backend,
    peer: SocketAddr,
    attempts: &mut Attempts,
) -> Result<(TcpStream, ServerSlot), ConnectFailure> {
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
            Some(server) => acquire_server(backend, server, peer, queue_timeout).await,
            None => acquire(backend, peer, &failed, queue_timeout).await,
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
        match connect(slot.addr(), be.timeouts.connect).await {
            Ok(stream) => {
                let took = connecting.elapsed();
                attempts.last_connect = Some(took);
                attempts.t_connect = Some(connect_spent + took);
                return Ok((stream, slot));
            }
            Err(e) => {
                connect_spent += connecting.elapsed();
                let server = slot.server();
                attempts.last_server = Some(server);
                drop(slot);
                {
                    let mut stats = ctx.stats.borrow_mut();
                    stats.backends[backend_id].conn_errors += 1;
                    stats.servers[backend_id][server].conn_errors += 1;
                }
                if retry >= be.retries {
                    return Err(if e.kind() == std::io::ErrorKind::TimedOut {
                        ConnectFailure::TimedOut
                    } else {
                        ConnectFailure::Refused
                    });
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

    #[test]
    fn tunnel_timeout_supersedes_client_and_server() {
        let s = |x| Some(Duration::from_secs(x));
        let fe = Timeouts {
            client: s(30),
            ..Default::default()
        };
        let mut be = Timeouts {
            server: s(10),
            ..Default::default()
        };
        assert_eq!(tunnel_idle_timeout(&fe, &be), s(10));
        be.tunnel = s(3600);
        assert_eq!(tunnel_idle_timeout(&fe, &be), s(3600));
        assert_eq!(
            tunnel_idle_timeout(&Timeouts::default(), &Timeouts::default()),
            None
        );
    }
}
