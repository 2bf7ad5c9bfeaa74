//! The per-core HTTP/2 connections to servers with `proto = "h2"`.
//!
//! A request to such a server becomes one stream on one of the core's
//! connections to it: the first that is open and has room for another
//! stream (fewer streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS).
//! Per core as everything else: no lock, and a connection's frames are
//! read and written by the core that owns its socket.
//!
//! **One connection at a time waits for the server's SETTINGS.** A new
//! connection does not know the server's limit until its SETTINGS come (a
//! round trip after connecting). Until then it takes as many streams as
//! the server's last SETTINGS on this core allowed, or one stream if the
//! core has not heard from the server yet ([`Pick::Room`]); a request
//! that finds every connection full while one of them is still waiting
//! for its SETTINGS waits for those SETTINGS too ([`Pick::Wait`]) and
//! then picks again, instead of connecting one more. Only a request that
//! finds every connection full and none waiting connects a new one
//! ([`Pick::Connect`]), which is listed here at once, while connecting.
//! So at most one connection per server and core is in that state, and a
//! core opens connections one at a time, only while requests are left
//! without room: as many as its concurrency divided by the server's
//! limit. (Before, streams sent ahead of the SETTINGS over the server's
//! limit were refused, and each refused request connected its own new
//! connection: 31 connections for 40 requests at 10 streams each.) A
//! request waits at most `timeout queue` (which defaults to `timeout
//! connect`), and a connection whose SETTINGS do not come within `timeout
//! connect` is closed (`proxy::h2::server::{wait_limit, settings_limit}`).
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

/// What h2 is told the server's stream limit is until its SETTINGS come
/// (`initial_max_send_streams`). Not a limit percore goes by (the pool
/// hands a connection without SETTINGS at most the server's last known
/// limit, see [`H2Pool::pick`]): a value no server sends, so that h2
/// reporting anything else says the SETTINGS came. A server's SETTINGS
/// without a stream limit make h2 report `usize::MAX`.
pub const UNSETTLED_STREAMS: usize = usize::MAX - 1;

/// Streams a connection takes before the server's first SETTINGS, when
/// the core has not learned the server's limit yet: one is within any
/// server's limit; the requests after it wait for the SETTINGS.
const FIRST_STREAMS: usize = 1;

/// One HTTP/2 connection to a server, shared by the streams on it.
pub struct H2Conn {
    link: RefCell<Link>,
    /// Streams open on it (their adapters are alive).
    streams: Cell<usize>,
    /// No new stream goes here.
    closing: Cell<bool>,
    /// The server's SETTINGS came (h2 applied them).
    settled: Cell<bool>,
    /// Tasks waiting for the connection to open, settle or fail (streams
    /// taken on it while connecting, requests waiting for its SETTINGS);
    /// woken, and the list emptied, at each of those.
    waiting: RefCell<Vec<Waker>>,
    /// When its last stream ended.
    idle_since: Cell<Instant>,
}

enum Link {
    /// Being connected by the request that found no room elsewhere.
    Connecting,
    /// A handle to open streams; every stream takes a clone of its own
    /// (a handle waits for one pending stream at a time).
    Open(SendRequest<Bytes>),
    /// Failed, or closed for idleness: with no handle and no stream
    /// left, h2 sends GOAWAY and ends the connection.
    Closed,
}

/// How many streams a connection may carry now.
enum Limit {
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS.
    Told(usize),
    /// Its SETTINGS have not come yet.
    Unsettled,
}

/// What [`H2Pool::pick`] found for a request.
pub enum Pick {
    /// A connection with room for the request's stream.
    Room(Rc<H2Conn>),
    /// None has room, and this one is waiting for the server's SETTINGS:
    /// wait for them ([`H2Conn::settled`]) and pick again.
    Wait(Rc<H2Conn>),
    /// None has room and none is waiting: connect one more.
    Connect,
}

impl H2Conn {
    /// A connection about to be made.
    pub fn connecting() -> Rc<Self> {
        Rc::new(H2Conn {
            link: RefCell::new(Link::Connecting),
            streams: Cell::new(0),
            closing: Cell::new(false),
            settled: Cell::new(false),
            waiting: RefCell::new(Vec::new()),
            idle_since: Cell::new(Instant::now()),
        })
    }

    /// Wakes every task waiting on the connection (they look again).
    fn wake_all(&self) {
        self.waiting.borrow_mut().drain(..).for_each(Waker::wake);
    }

    /// Waits for `cx`'s task to be woken at the next change.
    fn wait(&self, cx: &Context<'_>) {
        let mut waiting = self.waiting.borrow_mut();
        if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
            waiting.push(cx.waker().clone());
        }
    }

    /// The handshake is done: streams waiting for it go on.
    pub fn opened(&self, send: SendRequest<Bytes>) {
        self.link.replace(Link::Open(send));
        self.wake_all();
    }

    /// Connecting failed, or the connection ended: its streams fail.
    pub fn failed(&self) {
        self.closing.set(true);
        self.link.replace(Link::Closed);
        self.wake_all();
    }

    /// Called by the connection's driver after each turn: once h2 has
    /// applied the server's first SETTINGS, the requests waiting for them
    /// pick again. Returns whether the SETTINGS came.
    pub fn check_settled(&self) -> bool {
        if self.settled.get() {
            return true;
        }
        let told = match &*self.link.borrow() {
            Link::Open(send) => send.current_max_send_streams() != UNSETTLED_STREAMS,
            Link::Connecting | Link::Closed => false,
        };
        if told {
            self.settled.set(true);
            self.wake_all();
        }
        told
    }

    /// Ready once the server's SETTINGS came or the connection failed.
    pub fn settled(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.settled.get() || self.closing.get() {
                return Poll::Ready(());
            }
            self.wait(cx);
            Poll::Pending
        })
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
        match &*self.link.borrow() {
            Link::Open(send) => Poll::Ready(Some(send.clone())),
            Link::Closed => Poll::Ready(None),
            Link::Connecting => {
                self.wait(cx);
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
        // Requests waiting for its SETTINGS look elsewhere.
        self.wake_all();
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
    /// ones at all. A handle that reports an error (GOAWAY received,
    /// connection failed) marks the connection closing.
    fn limit(&self) -> Option<Limit> {
        if self.closing.get() {
            return None;
        }
        match &mut *self.link.borrow_mut() {
            Link::Closed => None,
            Link::Connecting => Some(Limit::Unsettled),
            Link::Open(send) => {
                // A fresh handle has no pending stream: `poll_ready` only
                // reports the connection's error, if any (no waker is
                // kept for it).
                let mut cx = Context::from_waker(Waker::noop());
                if let Poll::Ready(Err(_)) = send.poll_ready(&mut cx) {
                    self.closing.set(true);
                    return None;
                }
                match send.current_max_send_streams() {
                    UNSETTLED_STREAMS => Some(Limit::Unsettled),
                    told => Some(Limit::Told(told)),
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
    /// The stream limit each server's SETTINGS last gave on this core:
    /// what its connection waiting for SETTINGS takes meanwhile.
    learned: RefCell<HashMap<(usize, usize), usize>>,
}

impl H2Pool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where a request's stream to the server goes (see the module doc);
    /// closing connections are forgotten on the way.
    pub fn pick(&self, backend: usize, server: usize) -> Pick {
        let key = (backend, server);
        let mut conns = self.conns.borrow_mut();
        let Some(list) = conns.get_mut(&key) else {
            return Pick::Connect;
        };
        list.retain(|c| !c.is_closing());
        let mut learned = self.learned.borrow_mut();
        let mut unsettled = None;
        for conn in list.iter() {
            let limit = match conn.limit() {
                None => continue,
                Some(Limit::Told(told)) => {
                    learned.insert(key, told);
                    told
                }
                Some(Limit::Unsettled) => {
                    unsettled = Some(conn);
                    learned.get(&key).copied().unwrap_or(FIRST_STREAMS)
                }
            };
            if conn.streams() < limit {
                return Pick::Room(Rc::clone(conn));
            }
        }
        match unsettled {
            Some(conn) => Pick::Wait(Rc::clone(conn)),
            None => Pick::Connect,
        }
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

    fn is_ready(fut: impl Future<Output = ()>) -> bool {
        let fut = std::pin::pin!(fut);
        fut.poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    #[test]
    fn the_first_connection_carries_one_stream_until_the_servers_settings() {
        let pool = H2Pool::new();
        assert!(matches!(pool.pick(0, 0), Pick::Connect));
        // What `proxy::h2::server::announce` lists: the connecting
        // request's stream counted.
        let conn = H2Conn::connecting();
        assert!(conn.open_stream());
        pool.add(0, 0, Rc::clone(&conn));
        // The server's limit is not known: the next request waits for the
        // SETTINGS instead of connecting one more.
        let Pick::Wait(waited) = pool.pick(0, 0) else {
            panic!("a second request does not wait");
        };
        assert!(Rc::ptr_eq(&waited, &conn));
        assert!(!is_ready(conn.settled()));
        // Another server's connections are its own.
        assert!(matches!(pool.pick(0, 1), Pick::Connect));
        // The connection fails: the waiters look again, and connect.
        conn.failed();
        assert!(is_ready(conn.settled()));
        assert!(matches!(pool.pick(0, 0), Pick::Connect));
        assert_eq!(pool.count(0, 0), 0);
    }

    #[test]
    fn a_connection_without_settings_takes_the_limit_the_server_gave_before() {
        let pool = H2Pool::new();
        pool.learned.borrow_mut().insert((0, 0), 3);
        let conn = H2Conn::connecting();
        assert!(conn.open_stream());
        pool.add(0, 0, Rc::clone(&conn));
        for _ in 1..3 {
            let Pick::Room(room) = pool.pick(0, 0) else {
                panic!("room below the learned limit");
            };
            assert!(room.open_stream());
        }
        assert_eq!(conn.streams(), 3);
        assert!(matches!(pool.pick(0, 0), Pick::Wait(_)));
        // A stream ends: room again, on the same connection.
        conn.stream_ended();
        assert!(matches!(pool.pick(0, 0), Pick::Room(_)));
    }

    #[test]
    fn the_servers_settings_are_seen_and_give_the_limit() {
        // An h2 client and server over an in-memory pipe: the client told
        // the sentinel, as `proxy::h2::server` does, the server 7 streams.
        futures_lite::future::block_on(async {
            let (client_io, server_io) = tokio::io::duplex(1 << 16);
            let mut client = h2::client::Builder::new();
            client.initial_max_send_streams(UNSETTLED_STREAMS);
            let (send, driver) = client
                .handshake::<_, Bytes>(client_io)
                .await
                .expect("client preface written");
            let pool = H2Pool::new();
            let conn = H2Conn::connecting();
            assert!(conn.open_stream());
            conn.opened(send);
            pool.add(0, 0, Rc::clone(&conn));
            assert!(!conn.check_settled());
            assert!(matches!(pool.pick(0, 0), Pick::Wait(_)));
            let server = async {
                let mut server = h2::server::Builder::new();
                server.max_concurrent_streams(7);
                let mut accepted = server
                    .handshake::<_, Bytes>(server_io)
                    .await
                    .expect("server preface");
                std::future::poll_fn(|cx| {
                    let _ = accepted.poll_accept(cx);
                    Poll::Pending
                })
                .await
            };
            let mut driver = std::pin::pin!(driver);
            // What the connection's driver task does after each turn.
            let settled = std::future::poll_fn(|cx| {
                let _ = driver.as_mut().poll(cx);
                if conn.check_settled() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            futures_lite::future::or(settled, server).await;
            assert!(is_ready(conn.settled()));
            // Room up to the server's 7; the limit is learned for the
            // server's next connections.
            assert!(matches!(pool.pick(0, 0), Pick::Room(_)));
            assert_eq!(pool.learned.borrow().get(&(0, 0)), Some(&7));
        });
    }

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
