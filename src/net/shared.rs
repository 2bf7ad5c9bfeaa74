//! One stream borrowed by two halves of a relay.

use super::stream::Stream;
use futures_lite::{AsyncRead, AsyncWrite};
use std::cell::RefCell;
use std::io;
use std::os::unix::io::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A `RefCell`-shared stream used as one half: the borrow lasts one poll
/// call, so the read half of a stream and its write half (held by the other
/// direction) can both be pending at once. HTTP exchanges and the TLS copy
/// tunnel share it; `Stream` is the common case.
pub struct Shared<'a, S = Stream>(pub &'a RefCell<S>);

impl<S: AsyncRead + Unpin> AsyncRead for Shared<'_, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shared<'_, S> {
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

impl<S: AsRawFd> AsRawFd for Shared<'_, S> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.borrow().as_raw_fd()
    }
}

/// A destination that can be told more bytes follow at once (MSG_MORE),
/// for forwarders that know a body continues.
pub trait SendMore {
    fn set_more(&mut self, more: bool);
    /// Pushes bytes held back by an earlier `set_more(true)` send.
    fn uncork(&mut self);
}

impl SendMore for Shared<'_, Stream> {
    fn set_more(&mut self, more: bool) {
        self.0.borrow_mut().set_more(more);
    }

    fn uncork(&mut self) {
        self.0.borrow_mut().uncork();
    }
}

/// `AsyncRead` and `AsyncWrite` for `$ty`, and `SendMore` for its
/// [`Shared`] half: a session side that is either a socket of its own
/// (`$ty::$socket(Stream)`) or a boxed stream multiplexed on another
/// connection (`$ty::$boxed(Box<_>)`). Reads and writes go to whichever it
/// is; MSG_MORE concerns the socket only (a multiplexed stream frames what
/// it is given). The client and the server side of an HTTP session are
/// both such a pair.
macro_rules! socket_or_boxed_io {
    ($ty:ident, $socket:ident, $boxed:ident) => {
        impl futures_lite::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $ty::$socket(s) => {
                        futures_lite::io::AsyncRead::poll_read(std::pin::Pin::new(s), cx, buf)
                    }
                    $ty::$boxed(b) => futures_lite::io::AsyncRead::poll_read(
                        std::pin::Pin::new(b.as_mut()),
                        cx,
                        buf,
                    ),
                }
            }
        }

        impl futures_lite::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                match self.get_mut() {
                    $ty::$socket(s) => {
                        futures_lite::io::AsyncWrite::poll_write(std::pin::Pin::new(s), cx, buf)
                    }
                    $ty::$boxed(b) => futures_lite::io::AsyncWrite::poll_write(
                        std::pin::Pin::new(b.as_mut()),
                        cx,
                        buf,
                    ),
                }
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $ty::$socket(s) => {
                        futures_lite::io::AsyncWrite::poll_flush(std::pin::Pin::new(s), cx)
                    }
                    $ty::$boxed(b) => {
                        futures_lite::io::AsyncWrite::poll_flush(std::pin::Pin::new(b.as_mut()), cx)
                    }
                }
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self.get_mut() {
                    $ty::$socket(s) => {
                        futures_lite::io::AsyncWrite::poll_close(std::pin::Pin::new(s), cx)
                    }
                    $ty::$boxed(b) => {
                        futures_lite::io::AsyncWrite::poll_close(std::pin::Pin::new(b.as_mut()), cx)
                    }
                }
            }
        }

        impl $crate::net::shared::SendMore for $crate::net::shared::Shared<'_, $ty> {
            fn set_more(&mut self, more: bool) {
                if let $ty::$socket(s) = &mut *self.0.borrow_mut() {
                    s.set_more(more);
                }
            }

            fn uncork(&mut self) {
                if let $ty::$socket(s) = &mut *self.0.borrow_mut() {
                    s.uncork();
                }
            }
        }
    };
}
pub(crate) use socket_or_boxed_io;
