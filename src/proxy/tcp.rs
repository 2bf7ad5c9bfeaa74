//! `mode = "tcp"` sessions: pick a server, connect with retries and
//! redispatch, then tunnel bytes both ways until both sides are done.

use super::connect::server_connection;
use super::CoreContext;
use crate::config::Timeouts;
use crate::net::tunnel::{self, TunnelSettings};
use glommio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

pub async fn serve(ctx: Rc<CoreContext>, frontend: usize, client: TcpStream, peer: SocketAddr) {
    let fe = &ctx.config.frontends[frontend];
    let backend_id = fe.default_backend;
    let be = &ctx.config.backends[backend_id];

    let Ok((server, slot, _)) = server_connection(&ctx, backend_id, peer, |_| None).await else {
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

#[cfg(test)]
mod tests {
    use super::*;

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
