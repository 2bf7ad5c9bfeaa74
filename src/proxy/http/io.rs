//! Socket plumbing for HTTP sessions: a receive buffer that keeps unread
//! bytes (pipelined requests, body bytes behind a head), a stream handle
//! that two concurrent halves of one exchange can share, and timeouts as
//! explicit timers (glommio's socket timeouts misbehave once a read is
//! dropped, see docs/architecture.md).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::net::Stream;
use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// An I/O wait that did not complete.
#[derive(Debug)]
pub(super) enum IoFail {
    /// The timeout for this wait expired.
    Timeout,
    /// The socket failed (reset, broken pipe...).
    Io,
}

/// Runs `op` for at most `limit` (`None`: no limit). The timer is only
/// registered if `op` does not complete on its first poll.
pub(super) async fn timed<T>(
    limit: Option<Duration>,
    op: impl Future<Output = io::Result<T>>,
) -> Result<T, IoFail> {
    match limit {
        None => op.await.map_err(|_| IoFail::Io),
        Some(limit) => {
            futures_lite::future::or(async { op.await.map_err(|_| IoFail::Io) }, async {
                glommio::timer::sleep(limit).await;
                Err(IoFail::Timeout)
            })
            .await
        }
    }
}

/// `timed` against an absolute deadline.
pub(super) async fn until<T>(
    deadline: Option<Instant>,
    op: impl Future<Output = io::Result<T>>,
) -> Result<T, IoFail> {
    let limit = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if limit.is_some_and(|l| l.is_zero()) {
        return Err(IoFail::Timeout);
    }
    timed(limit, op).await
}

/// Buffers kept per thread (= per core) so sessions do not zero a fresh
/// allocation each.
const SPARE_BUFFERS: usize = 256;

thread_local! {
    static SPARE: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// Received bytes not yet consumed: `data[head..tail]`.
pub(super) struct RecvBuf {
    data: Box<[u8]>,
    head: usize,
    tail: usize,
}

impl RecvBuf {
    pub(super) fn new(size: usize) -> Self {
        let spare = SPARE.with(|s| s.borrow_mut().pop());
        let data = match spare {
            Some(b) if b.len() == size => b,
            _ => vec![0u8; size.max(1)].into_boxed_slice(),
        };
        RecvBuf {
            data,
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

    pub(super) fn is_empty(&self) -> bool {
        self.head == self.tail
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
        if self.tail == self.data.len() {
            return Err(io::Error::other("receive buffer full"));
        }
        let spare = &mut self.data[self.tail..];
        let n = poll_fn(|cx| Pin::new(&mut *src).poll_read(cx, spare)).await?;
        self.tail += n;
        Ok(n)
    }
}

impl Drop for RecvBuf {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        SPARE.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.len() < SPARE_BUFFERS {
                spare.push(data);
            }
        });
    }
}

/// A stream shared by the two halves of an exchange (one reads while the
/// other writes); each poll borrows it for the duration of the call only.
pub(super) struct Shared<'a>(pub &'a RefCell<Stream>);

impl AsyncRead for Shared<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Shared<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// Writes all of `bytes` within `limit` of inactivity.
pub(super) async fn send<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bytes: &[u8],
    limit: Option<Duration>,
) -> Result<(), IoFail> {
    timed(limit, dst.write_all(bytes)).await
}
