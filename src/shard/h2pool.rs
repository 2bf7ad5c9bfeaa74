//! The per-core HTTP/2 connections to servers with `proto = "h2"`.
//!
//! A request to such a server becomes one stream on one of the core's
//! connections to it: the first that is open and has room for another
//! stream (fewer streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS,
//! or, before its SETTINGS came, than the server's other connections were
//! told: [`INITIAL_STREAMS`] until one was). When none has
//! room, the session connects a new one (`proxy::h2::server`) and lists
//! it here at once, while connecting: requests that arrive meanwhile take
//! streams on it and wait for its handshake instead of each connecting
//! one more. So a core holds as few connections per server as its
//! concurrency needs. Per core as everything else: no lock, and a connection's frames
//! are read and written by the core that owns its socket.
//!
//! A connection leaves the pool when it can take no new stream: the server
//! sent GOAWAY, the connection failed, or it stayed without a stream for
//! `pool::PURGE_DELAY` (its driver task closes it then, with GOAWAY).
//! Entries marked closing are dropped the next time the server's list is
//! looked at; their streams in flight finish on them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use h2::client::SendRequest;

/// Streams a connection is assumed to take before the server's SETTINGS
/// say how many (h2's `initial_max_send_streams`, set to this).
pub const INITIAL_STREAMS: usize = 100;

/// One HTTP/2 connection to a server, shared by the streams on it.
pub struct H2Conn {
    link: RefCell<Link>,
    /// Streams open on it (their adapters are alive).
    streams: Cell<usize>,
    /// No new stream goes here.
    closing: Cell<bool>,
    /// When its last stream ended.
    idle_since: Cell<Instant>,
}

enum Link {
    /// Being connected by the request that found no room elsewhere:
    /// requests that come meanwhile take a stream on it and wait.
    Connecting(Vec<Waker>),
    /// A handle to open streams; every stream takes a clone of its own
    /// (a handle waits for one pending stream at a time).
    Open(SendRequest<Bytes>),
    /// Failed, or closed for idleness: with no handle and no stream
    /// left, h2 sends GOAWAY and ends the connection.
    Closed,
}

impl H2Conn {
    /// A connection about to be made.
    pub fn connecting() -> Rc<Self> {
        Rc::new(H2Conn {
            link: RefCell::new(Link::Connecting(Vec::new())),
            streams: Cell::new(0),
            closing: Cell::new(false),
            idle_since: Cell::new(Instant::now()),
        })
    }

    /// The handshake is done: streams waiting for it go on.
    pub fn opened(&self, send: SendRequest<Bytes>) {
        let was = self.link.replace(Link::Open(send));
        if let Link::Connecting(waiting) = was {
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    /// Connecting failed, or the connection ended: its streams fail.
    pub fn failed(&self) {
        self.closing.set(true);
        let was = self.link.replace(Link::Closed);
        if let Link::Connecting(waiting) = was {
            waiting.into_iter().for_each(Waker::wake);
        }
    }

    /// Counts a new stream on the connection, unless it takes no more.
    pub fn open_stream(&self) -> bool {
        if self.closing.get() || matches!(*self.link.borrow(), Link::Closed) {
            return false;
        }
        self.streams.set(self.streams.get() + 1);
        true
    }

    /// A stream's own handle, once the connection is open; `None` if it
    /// failed.
    pub fn poll_handle(&self, cx: &mut Context<'_>) -> Poll<Option<SendRequest<Bytes>>> {
        match &mut *self.link.borrow_mut() {
            Link::Open(send) => Poll::Ready(Some(send.clone())),
            Link::Closed => Poll::Ready(None),
            Link::Connecting(waiting) => {
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    pub fn stream_ended(&self) {
        let left = self.streams.get().saturating_sub(1);
        self.streams.set(left);
        if left == 0 {
            self.idle_since.set(Instant::now());
        }
    }

    pub fn streams(&self) -> usize {
        self.streams.get()
    }

    /// Takes no new stream from now on (GOAWAY, failure).
    pub fn set_closing(&self) {
        self.closing.set(true);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Idle since `since` with no stream: stops taking streams and lets
    /// h2 close the connection (GOAWAY) by dropping the last handle.
    /// Returns whether it did.
    pub fn close_if_idle_since(&self, since: Instant) -> bool {
        let open = matches!(*self.link.borrow(), Link::Open(_));
        if !open || self.streams.get() > 0 || self.idle_since.get() > since {
            return false;
        }
        self.closing.set(true);
        self.link.replace(Link::Closed);
        true
    }

    /// How many streams the connection may carry now, if it takes new
    /// ones at all: the server's SETTINGS_MAX_CONCURRENT_STREAMS once h2
    /// knows it, else `learned` (what this server's other connections
    /// said, [`INITIAL_STREAMS`] until one did). The second value says
    /// whether the limit is the server's own. A handle that reports an
    /// error (GOAWAY received, connection failed) marks the connection
    /// closing.
    fn limit(&self, learned: usize) -> Option<(usize, bool)> {
        if self.closing.get() {
            return None;
        }
        match &mut *self.link.borrow_mut() {
            Link::Closed => None,
            Link::Connecting(_) => Some((learned, false)),
            Link::Open(send) => {
                // A fresh handle has no pending stream: `poll_ready` only
                // reports the connection's error, if any (no waker is
                // kept for it).
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(Err(_)) = send.poll_ready(&mut cx) {
                    self.closing.set(true);
                    return None;
                }
                // Until the server's SETTINGS come, h2 reports the
                // initial assumption: the learned limit is better.
                match send.current_max_send_streams() {
                    INITIAL_STREAMS => Some((learned, false)),
                    told => Some((told, true)),
                }
            }
        }
    }
}

/// A server's connections on this core, oldest first.
type Conns = Vec<Rc<H2Conn>>;

/// The core's HTTP/2 server connections by (backend index, server index).
#[derive(Default)]
pub struct H2Pool {
    conns: RefCell<HashMap<(usize, usize), Conns>>,
    /// The stream limit each server's SETTINGS gave, for its connections
    /// that have not had theirs yet: without it a connection being made
    /// took up to [`INITIAL_STREAMS`] streams, most of which then queued
    /// in h2 behind a smaller limit while more connections were opened.
    learned: RefCell<HashMap<(usize, usize), usize>>,
}

impl H2Pool {
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection to the server with room for one more stream; closing
    /// connections are forgotten on the way.
    pub fn pick(&self, backend: usize, server: usize) -> Option<Rc<H2Conn>> {
        let mut conns = self.conns.borrow_mut();
        let list = conns.get_mut(&(backend, server))?;
        list.retain(|c| !c.is_closing());
        let mut learned = self.learned.borrow_mut();
        let assumed = learned.entry((backend, server)).or_insert(INITIAL_STREAMS);
        list.iter()
            .find(|c| match c.limit(*assumed) {
                Some((limit, told)) => {
                    if told {
                        *assumed = limit;
                    }
                    c.streams() < limit
                }
                None => false,
            })
            .cloned()
    }

    pub fn add(&self, backend: usize, server: usize, conn: Rc<H2Conn>) {
        self.conns
            .borrow_mut()
            .entry((backend, server))
            .or_default()
            .push(conn);
    }

    /// Connections to the server that may take streams (for the runtime
    /// API and the tests).
    pub fn count(&self, backend: usize, server: usize) -> usize {
        self.conns
            .borrow()
            .get(&(backend, server))
            .map_or(0, |l| l.iter().filter(|c| !c.is_closing()).count())
    }

    /// No new stream to this server on its current connections (its
    /// address changed: they lead to the old one).
    pub fn drop_server(&self, backend: usize, server: usize) {
        if let Some(list) = self.conns.borrow_mut().remove(&(backend, server)) {
            for conn in list {
                conn.set_closing();
            }
        }
    }

    /// Moves every connection into `next` (the pool of the generation
    /// that replaces this one) under the key `key` gives it; `None`
    /// (server removed, or its address, TLS or protocol changed) lets
    /// them finish their streams and close.
    pub fn carry_into(&self, next: &H2Pool, key: impl Fn(usize, usize) -> Option<(usize, usize)>) {
        let mut from = self.conns.borrow_mut();
        let mut into = next.conns.borrow_mut();
        for ((backend, server), list) in from.drain() {
            match key(backend, server) {
                Some(at) => into.entry(at).or_default().extend(list),
                None => list.iter().for_each(|c| c.set_closing()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn an_idle_connection_closes_only_without_streams() {
        // A handle needs a connection; the counting is what is tested, on
        // a connection built from an in-memory pipe that is never driven.
        let (client, _server) = tokio::io::duplex(64);
        let handshake = h2::client::handshake(client);
        let mut handshake = std::pin::pin!(handshake);
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok((send, _conn))) = handshake.as_mut().poll(&mut cx) else {
            panic!("h2's client handshake completes without the server");
        };
        let conn = H2Conn::connecting();
        assert!(conn.open_stream());
        assert!(conn.poll_handle(&mut cx).is_pending());
        conn.opened(send);
        assert!(matches!(conn.poll_handle(&mut cx), Poll::Ready(Some(_))));
        assert_eq!(conn.streams(), 1);
        let later = Instant::now() + std::time::Duration::from_secs(10);
        assert!(!conn.close_if_idle_since(later));
        conn.stream_ended();
        assert!(conn.close_if_idle_since(later));
        assert!(conn.is_closing());
        assert!(!conn.open_stream());
        assert!(matches!(conn.poll_handle(&mut cx), Poll::Ready(None)));
    }
}
