//! `mode = "tcp"` sessions: pick a server, connect with retries and
//! redispatch, then tunnel bytes both ways until both sides are done.

use super::connect::connect;
use super::CoreContext;
use crate::backend::{acquire, acquire_server, AcquireError, ServerSlot};
use crate::config::{Backend, Timeouts};
use crate::net::tunnel::{self, TunnelSettings};
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// HAProxy waits min(timeout connect, 1s) before retrying the same server so
/// that a restarting server is not hammered; a redispatch goes at once.
const TURNAROUND_MAX: Duration = Duration::from_secs(1);

pub async fn serve(ctx: Rc<CoreContext>, frontend: usize, client: TcpStream, peer: SocketAddr) {
    let fe = &ctx.config.frontends[frontend];
    let backend_id = fe.default_backend;
    let be = &ctx.config.backends[backend_id];

    let Some((server, slot)) = connect_with_retries(&ctx, backend_id, be, peer).await else {
        // Nothing to say to a TCP client: closing is the answer (HAProxy
        // closes the client connection too).
        if !ctx.backends[backend_id].borrow().has_usable_server() {
            ctx.health.no_server(&fe.name, backend_id, &be.name, peer);
        }
        return;
    };
    {
        let mut stats = ctx.stats.borrow_mut();
        stats.backends[backend_id].sessions_total += 1;
        stats.servers[backend_id][slot.server()].sessions_total += 1;
    }

    let settings = TunnelSettings {
        idle_timeout: tunnel_idle_timeout(&fe.timeouts, &be.timeouts),
        splice: ctx.config.global.tune.splice,
        bufsize: ctx.config.global.tune.bufsize,
    };
    let report = tunnel::run(client, server, &[], &[], &settings, &ctx.pipes).await;
    let mut stats = ctx.stats.borrow_mut();
    let fc = &mut stats.frontends[frontend];
    fc.bytes_in += report.client_to_server;
    fc.bytes_out += report.server_to_client;
    drop(slot);
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
) -> Option<(TcpStream, ServerSlot)> {
    let backend = &ctx.backends[backend_id];
    let queue_timeout = backend.borrow().queue_timeout();
    let mut failed: Vec<usize> = Vec::new();
    let mut retry = 0u32;
    let mut pinned: Option<usize> = None;
    loop {
        let acquired = match pinned {
            Some(server) => acquire_server(backend, server, peer, queue_timeout).await,
            None => acquire(backend, peer, &failed, queue_timeout).await,
        };
        let slot = match acquired {
            Ok(slot) => slot,
            Err(err) => {
                let mut stats = ctx.stats.borrow_mut();
                match err {
                    AcquireError::NoServer => stats.backends[backend_id].no_server += 1,
                    AcquireError::QueueTimeout => stats.backends[backend_id].queue_timeouts += 1,
                }
                return None;
            }
        };
        match connect(slot.addr(), be.timeouts.connect).await {
            Ok(stream) => {
                ctx.health.connect_succeeded(backend_id, slot.server());
                return Some((stream, slot));
            }
            Err(_) => {
                let server = slot.server();
                drop(slot);
                ctx.health.connect_failed(backend_id, server);
                {
                    let mut stats = ctx.stats.borrow_mut();
                    stats.backends[backend_id].conn_errors += 1;
                    stats.servers[backend_id][server].conn_errors += 1;
                }
                if retry >= be.retries {
                    return None;
                }
                retry += 1;
                ctx.stats.borrow_mut().backends[backend_id].retries += 1;
                if !failed.contains(&server) {
                    failed.push(server);
                }
                if should_redispatch(be.redispatch, retry, be.retries) {
                    ctx.stats.borrow_mut().backends[backend_id].redispatches += 1;
                    pinned = None;
                } else {
                    pinned = Some(server);
                    let pause = be
                        .timeouts
                        .connect
                        .map_or(TURNAROUND_MAX, |c| c.min(TURNAROUND_MAX));
                    glommio::timer::sleep(pause).await;
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
