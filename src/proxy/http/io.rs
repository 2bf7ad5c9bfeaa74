//! Socket plumbing for HTTP sessions: a receive buffer that keeps unread
//! bytes (pipelined requests, body bytes behind a head), a stream handle
//! that two concurrent halves of one exchange can share, and timeouts as
//! deadlines served by one lazily re-armed timer per session (glommio's
//! socket timeouts misbehave once a read is dropped, see
//! docs/architecture.md).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use glommio::timer::Timer;

pub(super) use crate::net::shared::Shared;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// An I/O wait that did not complete.
#[derive(Debug)]
pub(super) enum IoFail {
    /// The timeout for this wait expired.
    Timeout,
    /// The socket failed (reset, broken pipe...).
    Io,
}

/// Which of a session's two concurrent flows a wait belongs to: the
/// request side (head, request body, error pages) and the response side.
/// Each flow has at most one wait at a time.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lane {
    Up = 0,
    Down = 1,
}

/// The deadlines of a session's waits, served by at most one glommio timer.
///
/// A glommio timer per wait costs a reactor insert and remove each (about
/// 3% of CPU on keep-alive HTTP). Here a wait only stores its deadline; the
/// timer is armed for the earliest deadline when none is armed at or
/// before it, and left alone when a wait ends. Waits almost always end
/// before their timeout, and the next one's deadline is later, so the
/// armed timer stays valid: it is re-armed once per timeout period at
/// most, when it fires early and a wait still has time left.
pub(super) struct Clock {
    lanes: [Cell<Option<Instant>>; 2],
    armed: RefCell<Option<Armed>>,
}

struct Armed {
    /// Registered with the reactor while held.
    _timer: Timer,
    at: Instant,
    waker: Waker,
}

/// When a wait's deadline is counted from.
#[derive(Clone, Copy)]
enum Start {
    /// From the moment the wait turns out not to complete at once.
    After(Duration),
    At(Instant),
}

impl Clock {
    pub(super) fn new() -> Self {
        Clock {
            lanes: [Cell::new(None), Cell::new(None)],
            armed: RefCell::new(None),
        }
    }

    /// Runs `op` for at most `limit` (`None`: no limit), counted from its
    /// first poll that does not complete.
    pub(super) async fn timed<T>(
        &self,
        lane: Lane,
        limit: Option<Duration>,
        op: impl Future<Output = io::Result<T>>,
    ) -> Result<T, IoFail> {
        match limit {
            None => op.await.map_err(|_| IoFail::Io),
            Some(limit) => self.wait(lane, Start::After(limit), op).await,
        }
    }

    /// `timed` against an absolute deadline.
    pub(super) async fn until<T>(
        &self,
        lane: Lane,
        deadline: Option<Instant>,
        op: impl Future<Output = io::Result<T>>,
    ) -> Result<T, IoFail> {
        match deadline {
            None => op.await.map_err(|_| IoFail::Io),
            Some(d) if d <= Instant::now() => Err(IoFail::Timeout),
            Some(d) => self.wait(lane, Start::At(d), op).await,
        }
    }

    /// Writes all of `bytes` within `limit` of inactivity.
    pub(super) async fn send<W: AsyncWrite + Unpin>(
        &self,
        lane: Lane,
        dst: &mut W,
        bytes: &[u8],
        limit: Option<Duration>,
    ) -> Result<(), IoFail> {
        self.timed(lane, limit, dst.write_all(bytes)).await
    }

    /// Drops the timer (before the connection becomes a tunnel, which
    /// keeps its own).
    pub(super) fn disarm(&self) {
        self.armed.borrow_mut().take();
    }

    async fn wait<T>(
        &self,
        lane: Lane,
        start: Start,
        op: impl Future<Output = io::Result<T>>,
    ) -> Result<T, IoFail> {
        let slot = &self.lanes[lane as usize];
        // The lane's deadline is cleared however the wait ends (completion,
        // timeout, or the wait being dropped by a race).
        struct Clear<'a>(&'a Cell<Option<Instant>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        let _clear = Clear(slot);
        let mut op = pin!(op);
        let mut deadline = None;
        poll_fn(|cx| {
            if let Poll::Ready(r) = op.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(|_| IoFail::Io));
            }
            let now = Instant::now();
            let d = *deadline.get_or_insert_with(|| match start {
                Start::After(limit) => now + limit,
                Start::At(d) => d,
            });
            if now >= d {
                return Poll::Ready(Err(IoFail::Timeout));
            }
            slot.set(Some(d));
            self.arm(now, cx);
            Poll::Pending
        })
        .await
    }

    /// Makes sure a timer wakes this task no later than the earliest
    /// deadline of the pending waits.
    fn arm(&self, now: Instant, cx: &mut Context<'_>) {
        let Some(earliest) = self.lanes.iter().filter_map(Cell::get).min() else {
            return;
        };
        let mut armed = self.armed.borrow_mut();
        if let Some(a) = &*armed {
            if now < a.at && a.at <= earliest && a.waker.will_wake(cx.waker()) {
                return;
            }
        }
        let mut timer = Timer::new(earliest - now);
        // Registers the timer with the reactor; it cannot be due yet.
        if Pin::new(&mut timer).poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        *armed = Some(Armed {
            _timer: timer,
            at: earliest,
            waker: cx.waker().clone(),
        });
    }
}

/// Buffers kept per thread (= per core) so sessions do not zero a fresh
/// allocation each.
const SPARE_BUFFERS: usize = 256;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Received bytes not yet consumed: `data[head..tail]`.
///
/// The buffer is held only while it has unread bytes or a read is running:
/// a read that finds nothing to read with an empty buffer hands the buffer
/// back to the core's spare list before the task waits (the socket's
/// readiness is edge-triggered, so the wait needs no buffer), and takes one
/// again when woken. An idle connection, or one whose client has not sent
/// its first byte yet, costs no buffer.
pub(super) struct RecvBuf {
    /// Empty while no buffer is held.
    data: Box<[u8]>,
    size: usize,
    head: usize,
    tail: usize,
}

impl RecvBuf {
    pub(super) fn new(size: usize) -> Self {
        RecvBuf {
            data: Box::default(),
            size: size.max(1),
            head: 0,
            tail: 0,
        }
    }

    pub(super) fn filled(&self) -> &[u8] {
        &self.data[self.head..self.tail]
    }

    pub(super) fn len(&self) -> usize {
        self.tail - self.head
    }

    /// The most it holds (`tune.bufsize`).
    pub(super) fn capacity(&self) -> usize {
        self.size
    }

    pub(super) fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// The last read filled the buffer: the sender likely has more bytes
    /// ready at once.
    pub(super) fn is_full(&self) -> bool {
        !self.data.is_empty() && self.tail == self.data.len()
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Reads once from `src` after what is already there (moving it to the
    /// front first if the free tail is gone). Returns 0 at end of stream.
    pub(super) async fn read_from<R: AsyncRead + Unpin>(
        &mut self,
        src: &mut R,
    ) -> io::Result<usize> {
        if self.tail == self.data.len() && self.head > 0 {
            self.data.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        if self.tail > 0 && self.tail == self.data.len() {
            return Err(io::Error::other("receive buffer full"));
        }
        poll_fn(|cx| {
            if self.data.is_empty() {
                self.data = take_spare(self.size);
            }
            let polled = Pin::new(&mut *src).poll_read(cx, &mut self.data[self.tail..]);
            match polled {
                Poll::Ready(Ok(n)) => self.tail += n,
                Poll::Pending if self.tail == 0 => give_spare(std::mem::take(&mut self.data)),
                _ => {}
            }
            polled
        })
        .await
    }

    /// Hands the buffer back if it holds nothing (e.g. the response side's
    /// once a response is complete and the client connection idles).
    pub(super) fn release_if_empty(&mut self) {
        if self.is_empty() && !self.data.is_empty() {
            give_spare(std::mem::take(&mut self.data));
        }
    }
}

fn take_spare(size: usize) -> Box<[u8]> {
    match SPARE.with(|s| s.borrow_mut().pop()) {
        Some(b) if b.len() == size => b,
        _ => vec![0u8; size].into_boxed_slice(),
    }
}

fn give_spare(data: Box<[u8]>) {
    if data.is_empty() {
        return;
    }
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(data);
        }
    });
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        give_spare(std::mem::take(&mut self.data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Stream;
    use futures_lite::future::poll_once;
    use std::io::Write;

    /// Runs `fut` on a fresh glommio executor; the 30 s limit only catches
    /// a hung test.
    fn run<T>(fut: impl Future<Output = T>) -> T {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(async {
            futures_lite::future::or(fut, async {
                glommio::timer::sleep(Duration::from_secs(30)).await;
                panic!("test hung");
            })
            .await
        })
    }

    /// A connected pair over 127.0.0.1: our `Stream` and the peer's socket.
    fn pair() -> (Stream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let conn = crate::net::Conn::from_socket(socket2::Socket::from(ours)).unwrap();
        (Stream::Plain(conn), peer)
    }

    #[test]
    fn a_waiting_read_holds_no_buffer() {
        run(async {
            let (mut ours, mut peer) = pair();
            let mut buf = RecvBuf::new(4096);
            assert!(buf.data.is_empty(), "no buffer before the first read");
            {
                let mut read = pin!(buf.read_from(&mut ours));
                assert!(poll_once(&mut read).await.is_none(), "nothing sent yet");
            }
            assert!(buf.data.is_empty(), "buffer handed back while waiting");

            peer.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            let n = buf.read_from(&mut ours).await.unwrap();
            assert_eq!(buf.filled(), b"GET / HTTP/1.1\r\n");
            assert_eq!(n, 16);
            assert_eq!(buf.data.len(), 4096);

            // Bytes still unread keep the buffer through a waiting read.
            {
                let mut read = pin!(buf.read_from(&mut ours));
                assert!(poll_once(&mut read).await.is_none());
            }
            assert_eq!(buf.filled(), b"GET / HTTP/1.1\r\n");
            peer.write_all(b"Host: x\r\n\r\n").unwrap();
            buf.read_from(&mut ours).await.unwrap();
            assert_eq!(buf.filled(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");

            buf.consume(buf.len());
            buf.release_if_empty();
            assert!(buf.data.is_empty(), "an empty buffer is released");

            drop(peer);
            assert_eq!(buf.read_from(&mut ours).await.unwrap(), 0, "end of stream");
        });
    }
}
