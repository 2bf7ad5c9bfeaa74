//! `mode = "tcp"` sessions: pick a server, connect with retries and
//! redispatch, then tunnel bytes both ways until both sides are done.

use super::accesslog;
use super::connect::{session_server_connection, warn_if_no_server, Attempts, ClientEnds};
use super::count;
use super::proxy_header::Client;
use crate::backend::PickHint;
use crate::config::{BackendId, Timeouts};
use crate::log::LogRecord;
use crate::net::tunnel::{self, TunnelReport, TunnelSettings};
use crate::net::Blame;
use crate::rules::{ConnFacts, Facts, Payload};
use crate::shard::sessions::SessionId;
use crate::shard::CoreContext;
use crate::stick::persist;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Serves one client connection; `session`: its entry in the core's
/// session registry.
/// `routed`: the backend a `use_backend` rule chose, if any; `first`:
/// client bytes already read (after a PROXY header, during inspection),
/// sent to the server first.
pub async fn serve(
    ctx: Rc<CoreContext>,
    frontend: usize,
    (routed, first): (Option<BackendId>, Vec<u8>),
    (client, peer, proxied): Client,
    session: SessionId,
    (tracked, vars): (crate::stick::Tracked, Rc<crate::rules::vars::Vars>),
) {
    let accepted = Instant::now();
    let logging = accesslog::enabled(&ctx, frontend);
    let accept_date = logging.then(SystemTime::now);
    let fe = &ctx.config.frontends[frontend];
    // `%fi:%fp`: only looked up (a syscall on a wildcard bind) when logging.
    let frontend_addr = logging.then(|| {
        proxied
            .as_ref()
            .and_then(|p| p.dst)
            .unwrap_or_else(|| super::inspect::local_addr(fe, client.tcp()))
    });
    // No use_backend matched and no default_backend: closing is
    // HAProxy's answer.
    let Some(backend_id) = routed.or(fe.default_backend) else {
        return;
    };
    let be = &ctx.config.backends[backend_id];
    // As HAProxy's switching rules, before any server is picked.
    ctx.sessions.set_backend(session, backend_id);

    let mut attempts = Attempts::default();
    let mut hint = PickHint::default();
    // `stick match|on`: the server a key was sent to before (its entry
    // may live on another core); store rules write the server once known.
    let mut stick_keys = Vec::new();
    if !be.stick_rules.is_empty() {
        let conn = ConnFacts {
            src: peer,
            dst: proxied
                .as_ref()
                .and_then(|p| p.dst)
                .unwrap_or_else(|| super::inspect::local_addr(fe, client.tcp())),
            tls: None,
            pp: proxied.as_ref().map(|p| Rc::clone(&p.tlvs)),
            stick: tracked.clone(),
            vars: Rc::clone(&vars),
            live: crate::rules::sample::Live::of(&ctx),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
        };
        let payload_more = std::cell::Cell::new(false);
        let facts = Facts::content(
            &conn,
            Some(Payload {
                data: &first,
                last: true,
                more: &payload_more,
            }),
        );
        let acls = &be.rules.acls;
        hint.sticky =
            persist::matched(&be.stick_rules, acls, &facts, &ctx.stick, be.servers.len()).await;
        stick_keys = persist::request_keys(&be.stick_rules, acls, &facts);
    }
    let ends = ClientEnds {
        src: peer,
        dst: proxied.as_ref().and_then(|p| p.dst),
        fd: client.as_raw_fd(),
    };
    let connected =
        session_server_connection(&ctx, session, backend_id, ends, hint, &mut attempts, |_| {
            None::<crate::net::Stream>
        })
        .await;
    let (server, slot) = match connected {
        Ok((server, slot, _)) => (server, slot),
        Err(failure) => {
            // Nothing to say to a TCP client: closing is the answer (HAProxy
            // closes the client connection too).
            warn_if_no_server(&ctx, frontend, backend_id, peer);
            if let Some(date) = accept_date {
                let record = LogRecord {
                    client: peer,
                    frontend_addr,
                    tls: false,
                    server_addr: attempts.last_server.map(|s| be.servers[s].addr),
                    unique_id: None,
                    request_id: ctx.log.next_request_id(ctx.core_index, ctx.core_count),
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
                    end: Some(failure.blame()),
                    conns: accesslog::conn_counts(&ctx, frontend, Some(backend_id), None),
                    retries: attempts.retries,
                    redispatched: attempts.redispatched,
                    srv_queue: 0,
                    backend_queue: ctx.backends[backend_id].borrow().queue_current() as u64,
                    http: None,
                };
                let conn = log_facts(&ctx, frontend, peer, frontend_addr, &proxied, &tracked);
                accesslog::emit(&ctx, frontend, &record, conn.as_ref());
            }
            return;
        }
    };
    let server_index = slot.server();
    if !stick_keys.is_empty() {
        persist::store(&ctx.stick, std::mem::take(&mut stick_keys), server_index);
    }
    let connected_at = Instant::now();
    // Cleared below, after the tunnel that owns `server` has ended.
    ctx.sessions
        .set_server(session, backend_id, server_index, Some(server.as_raw_fd()));
    count::server_session_started(
        &mut ctx.stats.borrow_mut(),
        backend_id,
        server_index,
        attempts.last_connect,
    );

    let settings = TunnelSettings {
        idle_timeout: tunnel_idle_timeout(&fe.timeouts, &be.timeouts),
        splice: ctx.config.global.tune.splice,
        bufsize: ctx.config.global.tune.bufsize,
    };
    let report = tunnel::run_streams(client, server, &first, &[], &settings, &ctx.pipes).await;
    ctx.sessions.clear_server(session);
    let t_total = accepted.elapsed();
    let mut end = report.end.blame();
    if ctx.sessions.is_killed(session) {
        end = Some(Blame::killed(end));
    }
    let conns = accept_date
        .map(|_| accesslog::conn_counts(&ctx, frontend, Some(backend_id), Some(server_index)));
    count_session_end(&ctx, frontend, backend_id, server_index, &report);
    tracked.bytes(report.client_to_server, report.server_to_client);
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
            frontend_addr,
            tls: false,
            server_addr: Some(be.servers[server_index].addr),
            unique_id: None,
            request_id: ctx.log.next_request_id(ctx.core_index, ctx.core_count),
            accept_date: date,
            frontend: &fe.name,
            backend: &be.name,
            server: Some(&be.servers[server_index].name),
            t_queue: attempts.t_queue,
            t_connect: attempts.t_connect,
            t_total,
            bytes_read: report.server_to_client,
            bytes_uploaded: report.client_to_server,
            end,
            conns,
            retries: attempts.retries,
            redispatched: attempts.redispatched,
            srv_queue: 0,
            backend_queue: ctx.backends[backend_id].borrow().queue_current() as u64,
            http: None,
        };
        let conn = log_facts(&ctx, frontend, peer, frontend_addr, &proxied, &tracked);
        accesslog::emit(&ctx, frontend, &record, conn.as_ref());
    }
    drop(slot);
}

/// The connection's facts for the `%[...]` samples of a custom log format;
/// built only when the frontend's format has some.
fn log_facts(
    ctx: &Rc<CoreContext>,
    frontend: usize,
    peer: std::net::SocketAddr,
    dst: Option<std::net::SocketAddr>,
    proxied: &Option<super::proxy_header::Proxied>,
    tracked: &crate::stick::Tracked,
) -> Option<ConnFacts> {
    let crate::config::LogFormat::Custom(format) = &ctx.config.frontends[frontend].log.format
    else {
        return None;
    };
    if !format.has_samples() {
        return None;
    }
    Some(ConnFacts {
        src: peer,
        dst: dst.unwrap_or(peer),
        tls: None,
        pp: proxied.as_ref().map(|p| Rc::clone(&p.tlvs)),
        stick: tracked.clone(),
        vars: Default::default(),
        live: crate::rules::sample::Live::of(ctx),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    })
}

/// Bytes, current sessions and abort counters at the end of a tunnel.
fn count_session_end(
    ctx: &CoreContext,
    frontend: usize,
    backend: usize,
    server: usize,
    report: &TunnelReport,
) {
    let mut stats = ctx.stats.borrow_mut();
    let fc = &mut stats.frontends[frontend];
    fc.bytes_in += report.client_to_server;
    fc.bytes_out += report.server_to_client;
    count::tunnel_end(&mut stats, backend, server, report);
    count::server_session_ended(&mut stats, backend, server);
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
