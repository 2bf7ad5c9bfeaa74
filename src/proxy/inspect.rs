//! `tcp-request` rules at run time: connection rules at the accept, and
//! content inspection once the PROXY header and TLS are done: the client's
//! first bytes are peeked at (MSG_PEEK: they stay in the socket for the
//! session, so neither a tunnel nor the HTTP parser needs them handed
//! over), up to `inspect-delay` from the accept and `tune.bufsize`
//! bytes. In mode tcp, `use_backend` is then evaluated on the same bytes
//! (HAProxy's switching rules run after content rules): SNI routing of
//! TLS that percore does not terminate.

use std::net::SocketAddr;
use std::time::Instant;

use super::proxy_header::Proxied;
use crate::config::{BackendId, Frontend, Mode};
use crate::net::{Conn, Stream};
use crate::rules::tcp_request::{pick_backend, ConnectionVerdict, ContentStep};
use crate::rules::{ConnFacts, TlsFacts};
use crate::shard::CoreContext;

/// First peek buffer: a ClientHello fits (it grows up to `tune.bufsize`
/// when a rule wants more).
const FIRST_PEEK: usize = 2048;

/// The address the client connected to (`dst`, X-Forwarded-Port). A
/// frontend with a single bind to a specific address and port can only be
/// reached there, so that needs no getsockname per connection.
pub fn local_addr(fe: &Frontend, client: &Conn) -> SocketAddr {
    match fe.binds.as_slice() {
        [bind] if !bind.ip().is_unspecified() && bind.port() != 0 => *bind,
        _ => client
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
    }
}

/// Runs the frontend's `tcp-request connection` rules, if any; a reject
/// is counted (`dcon`). Nothing is logged, as in HAProxy.
pub fn connection(
    ctx: &CoreContext,
    frontend: usize,
    conn: &Conn,
    peer: SocketAddr,
) -> ConnectionVerdict {
    let fe = &ctx.config.frontends[frontend];
    let rules = &fe.tcp_rules;
    if rules.connection.is_empty() {
        return ConnectionVerdict {
            reject: false,
            expect_proxy: false,
        };
    }
    let facts = ConnFacts {
        src: peer,
        dst: local_addr(fe, conn),
        tls: None,
        pp: None,
    };
    let verdict = rules.connection(&fe.rules.acls, &facts);
    if verdict.reject {
        ctx.stats.borrow_mut().frontends[frontend].denied_connections += 1;
    }
    verdict
}

/// What content inspection decided.
pub enum Inspected {
    /// `tcp-request content reject` (counted: `dses`).
    Reject,
    /// Go on; in mode tcp, with the backend a `use_backend` chose.
    Accept { backend: Option<BackendId> },
}

/// Whether this frontend inspects content at all.
pub fn wanted(fe: &Frontend) -> bool {
    !fe.tcp_rules.content.is_empty() || (fe.mode == Mode::Tcp && !fe.rules.use_backend.is_empty())
}

/// Content rules and, in mode tcp, `use_backend`. On a TLS bind the
/// rules see the handshake's facts but no payload (it is encrypted
/// underneath and percore's TLS layer does not peek).
pub async fn content(
    ctx: &CoreContext,
    frontend: usize,
    client: &mut Stream,
    (peer, proxied): (SocketAddr, Option<&Proxied>),
    accepted: Instant,
) -> Inspected {
    let fe = &ctx.config.frontends[frontend];
    let rules = &fe.tcp_rules;
    let facts = ConnFacts {
        src: peer,
        dst: match proxied.and_then(|p| p.dst) {
            Some(dst) => dst,
            None => local_addr(fe, client.tcp()),
        },
        tls: client.is_tls().then(|| TlsFacts {
            sni: client.sni().map(Box::from),
        }),
        pp: proxied.map(|p| std::rc::Rc::clone(&p.tlvs)),
    };
    let bufsize = ctx.config.global.tune.bufsize;
    let deadline = rules.inspect_delay.map(|d| accepted + d);
    let mut buf: Vec<u8> = Vec::new();
    let mut have = 0;
    // No more bytes will be looked at: the delay ran out, the client
    // closed or failed, or the buffer is full.
    let mut done = deadline.is_none();
    let mut from = 0;
    if !rules.content.is_empty() {
        loop {
            let plain = match client {
                Stream::Plain(c) => Some(c),
                Stream::Tls(_) => None,
            };
            let last = done || plain.is_none() || have >= bufsize;
            match rules.content(from, &fe.rules.acls, &facts, &buf[..have], last) {
                ContentStep::Accept => break,
                ContentStep::Reject => {
                    ctx.stats.borrow_mut().frontends[frontend].denied_sessions += 1;
                    return Inspected::Reject;
                }
                ContentStep::NeedMore { at } => from = at,
            }
            let (Some(conn), Some(deadline)) = (plain, deadline) else {
                done = true;
                continue;
            };
            if have == buf.len() {
                let size = (buf.len() * 2).clamp(FIRST_PEEK.min(bufsize), bufsize);
                buf.resize(size, 0);
            }
            let peeked = futures_lite::future::or(
                async { Some(conn.peek_more(&mut buf, have).await) },
                async {
                    glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
                    None
                },
            )
            .await;
            match peeked {
                Some(Ok(n)) if n > have => have = n,
                _ => done = true,
            }
        }
    }
    let backend = (fe.mode == Mode::Tcp)
        .then(|| pick_backend(&fe.rules.use_backend, &fe.rules.acls, &facts, &buf[..have]))
        .flatten();
    Inspected::Accept { backend }
}
