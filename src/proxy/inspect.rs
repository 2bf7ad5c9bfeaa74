//! `tcp-request` rules at run time: connection rules at the accept, and
//! content inspection once the PROXY header and TLS are done: the client's
//! first bytes are peeked at (MSG_PEEK: they stay in the socket for the
//! session, so neither a tunnel nor the HTTP parser needs them handed
//! over), up to `inspect-delay` from the accept and `tune.bufsize`
//! bytes. In mode tcp, `use_backend` is then evaluated on the same bytes
//! (HAProxy's switching rules run after content rules): SNI routing of
//! TLS that percore does not terminate.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::proxy_header::Proxied;
use crate::config::{BackendId, Frontend, Mode};
use crate::net::{Conn, Stream};
use crate::rules::tcp_request::{pick_backend, ConnectionStep, ConnectionVerdict, ContentStep};
use crate::rules::vars::Vars;
use crate::rules::{ConnFacts, Facts, Payload, TlsFacts};
use crate::shard::CoreContext;
use crate::stick::{Scope, Tracked};

/// First look: a ClientHello fits (the buffer grows up to `tune.bufsize`
/// when a rule wants more).
const FIRST_LOOK: usize = 2048;

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
/// is counted (`dcon`). Nothing is logged, as in HAProxy. Tracks go to
/// `stick`, the connection's tracking state.
pub async fn connection(
    ctx: &Rc<CoreContext>,
    frontend: usize,
    conn: &Conn,
    peer: SocketAddr,
    (stick, vars): (&Tracked, &Rc<Vars>),
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
        stick: stick.clone(),
        // The connection's: `sess` variables set here are seen by the
        // session's later rules (HTTP or TCP).
        vars: Rc::clone(vars),
        live: crate::rules::sample::Live::of(ctx),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    };
    let mut verdict = ConnectionVerdict {
        reject: false,
        expect_proxy: false,
    };
    let mut from = 0;
    let verdict = loop {
        match rules.connection_step(from, &fe.rules.acls, &facts, &mut verdict) {
            ConnectionStep::Done(v) => break v,
            ConnectionStep::Lookup { at } => {
                stick.resolve().await;
                from = at;
            }
            ConnectionStep::Stick { next, action } => {
                let key = action.key(&Facts::content(&facts, None));
                stick.perform(action, key, Scope::Connection).await;
                from = next;
            }
        }
    };
    stick.next_rule();
    if verdict.reject {
        ctx.stats.borrow_mut().frontends[frontend].denied_connections += 1;
    }
    verdict
}

/// What content inspection decided.
pub enum Inspected {
    /// `tcp-request content reject` (counted: `dses`).
    Reject,
    /// Go on; in mode tcp, with the backend a `use_backend` chose and
    /// the client bytes taken off the socket (to be sent first).
    Accept {
        backend: Option<BackendId>,
        taken: Vec<u8>,
    },
}

/// Whether this frontend inspects content at all.
pub fn wanted(fe: &Frontend) -> bool {
    !fe.tcp_rules.content.is_empty() || (fe.mode == Mode::Tcp && !fe.rules.use_backend.is_empty())
}

/// Content rules and, in mode tcp, `use_backend`. In mode tcp on a plain
/// connection the bytes are read (taken off the socket) and handed to the
/// session to send first, after `first` (bytes read with the PROXY
/// header); in mode http they are peeked at and stay in the socket for
/// the HTTP parser. On a TLS bind the rules see the handshake's facts but
/// no payload (it is encrypted underneath and percore's TLS layer does not
/// peek).
pub async fn content(
    ctx: &Rc<CoreContext>,
    frontend: usize,
    client: &mut Stream,
    (peer, proxied): (SocketAddr, Option<&Proxied>),
    accepted: Instant,
    first: Vec<u8>,
    (stick, vars): (&Tracked, &Rc<Vars>),
) -> Inspected {
    let fe = &ctx.config.frontends[frontend];
    let rules = &fe.tcp_rules;
    let facts = ConnFacts {
        src: peer,
        dst: match proxied.and_then(|p| p.dst) {
            Some(dst) => dst,
            None => local_addr(fe, client.tcp()),
        },
        tls: client.tls_params().map(|params| {
            TlsFacts::new(client.sni(), params, client.alpn())
                .with_client_cert(client.peer_certificate())
        }),
        pp: proxied.map(|p| std::rc::Rc::clone(&p.tlvs)),
        stick: stick.clone(),
        // The connection's: `sess` variables set here are seen by the
        // session's later rules (HTTP or TCP).
        vars: Rc::clone(vars),
        live: crate::rules::sample::Live::of(ctx),
        unique_id: Default::default(),
        captures: Default::default(),
        log_level: Default::default(),
        timeouts: Default::default(),
        early_hints: Default::default(),
    };
    let bufsize = ctx.config.global.tune.bufsize;
    let deadline = rules.inspect_delay.map(|d| accepted + d);
    let consume = fe.mode == Mode::Tcp;
    // Valid bytes are `buf[..have]`; the rest is room for the next look.
    let mut have = first.len();
    let mut buf = first;
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
                    stick.next_rule();
                    return Inspected::Reject;
                }
                ContentStep::NeedMore { at } => from = at,
                // Stick-table work, then the same bytes again.
                ContentStep::Lookup { at } => {
                    stick.resolve().await;
                    from = at;
                    continue;
                }
                ContentStep::Stick { next, action } => {
                    let more = std::cell::Cell::new(false);
                    let payload = Payload {
                        data: &buf[..have],
                        last: true,
                        more: &more,
                    };
                    let key = action.key(&Facts::content(&facts, Some(payload)));
                    stick.perform(action, key, Scope::Connection).await;
                    from = next;
                    continue;
                }
            }
            let (Some(conn), Some(deadline)) = (plain, deadline) else {
                done = true;
                continue;
            };
            if have == buf.len() {
                let size = (buf.len() * 2).clamp(FIRST_LOOK.min(bufsize), bufsize);
                buf.resize(size, 0);
            }
            let mut look = std::pin::pin!(look_more(conn, &mut buf, have, consume));
            // Bytes already there need no timer.
            let looked = match futures_lite::future::poll_once(&mut look).await {
                Some(got) => Some(got),
                None => {
                    let until = deadline.saturating_duration_since(Instant::now());
                    futures_lite::future::or(async { Some(look.await) }, async {
                        glommio::timer::sleep(until).await;
                        None
                    })
                    .await
                }
            };
            match looked {
                Some(Ok(n)) if n > have => have = n,
                _ => done = true,
            }
        }
    }
    stick.next_rule();
    let backend = (fe.mode == Mode::Tcp)
        .then(|| pick_backend(&fe.rules.use_backend, &fe.rules.acls, &facts, &buf[..have]))
        .flatten();
    buf.truncate(if consume { have } else { 0 });
    Inspected::Accept {
        backend,
        taken: buf,
    }
}

/// More bytes after the `have` already looked at: read into the buffer
/// (`consume`) or peeked at. Returns the bytes now valid, or `have` (or
/// less) at end of stream.
async fn look_more(
    conn: &mut Conn,
    buf: &mut [u8],
    have: usize,
    consume: bool,
) -> std::io::Result<usize> {
    if consume {
        use futures_lite::io::AsyncReadExt;
        let n = conn.read(&mut buf[have..]).await?;
        Ok(have + n)
    } else {
        conn.peek_more(buf, have).await
    }
}
