//! A socket as the `h2` crate wants it (a client's, or a server's for
//! `proto = "h2"`): tokio's `AsyncRead` / `AsyncWrite` traits over
//! percore's futures-io stream.
//!
//! Only the traits are used: tokio is built without any feature that
//! brings a runtime, reactor or timer (`tokio = { default-features =
//! false }`; h2 enables `io-util` and tokio-util `codec`, both runtime
//! free). h2 is poll-driven: its futures make progress when the glommio
//! task polling them is woken by the socket, like every other future
//! here. Verified with `cargo tree -e features -i tokio` (features `bytes`,
//! `io-util`, `sync` only).
//!
//! The adapter also notes whether the connection moved, so the connection
//! task can apply `timeout client` to a client that stopped reading or
//! writing (h2 itself has no timers).

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};
use tokio::io::ReadBuf;

/// What the connection task watches: bytes moved, and whether a write is
/// waiting for the client to read.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Incremented on every read or write that moved bytes.
    pub moved: Cell<u64>,
    /// The last write found the socket full.
    pub write_blocked: Cell<bool>,
}

pub(super) struct TokioIo<S> {
    inner: S,
    activity: Rc<Activity>,
}

impl<S> TokioIo<S> {
    pub(super) fn new(inner: S, activity: Rc<Activity>) -> Self {
        TokioIo { inner, activity }
    }

    fn moved(&self) {
        self.activity.moved.set(self.activity.moved.get() + 1);
    }
}

impl<S: AsyncRead + Unpin> tokio::io::AsyncRead for TokioIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // futures-io reads into initialized memory and h2's buffer is not:
        // the bytes land in a per-core scratch buffer and only what came is
        // copied. Zeroing h2's buffer instead (`initialize_unfilled`) would
        // cost a memset of all its free room on every read (tokio-util
        // hands it over uninitialized each time).
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let room = buf.remaining().min(scratch.len());
            match Pin::new(&mut this.inner).poll_read(cx, &mut scratch[..room]) {
                Poll::Ready(Ok(n)) => {
                    buf.put_slice(&scratch[..n]);
                    this.moved();
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }
}

/// The largest read handed to h2 at once: a TLS record, or a 16 KiB
/// frame with its header.
const SCRATCH_SIZE: usize = 16 << 10;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

impl<S: AsyncWrite + Unpin> tokio::io::AsyncWrite for TokioIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.activity.write_blocked.set(polled.is_pending());
        if matches!(polled, Poll::Ready(Ok(_))) {
            this.moved();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
