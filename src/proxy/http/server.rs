//! The server side of an HTTP session: a connection of its own (HTTP/1.1,
//! plain or TLS), or one stream on a core's HTTP/2 connection to a
//! `proto = "h2"` server, which `proxy::h2::server` presents as an
//! HTTP/1.1 connection carrying a single request. The exchange cannot
//! tell the two apart; the session keeps, pools or tunnels only the
//! first kind.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::net::shared::{SendMore, Shared};
use crate::net::Stream;
use crate::proxy::h2::ServerStream;

pub(crate) enum ServerIo {
    Socket(Stream),
    /// Boxed: the stream's state (parser, h2 handles) is larger than a
    /// socket's.
    H2(Box<ServerStream>),
}

impl From<Stream> for ServerIo {
    fn from(stream: Stream) -> Self {
        ServerIo::Socket(stream)
    }
}

impl ServerIo {
    /// The socket this request alone uses, which a runtime API kill may
    /// shut down; none for a stream (its connection carries others).
    pub(super) fn own_fd(&self) -> Option<RawFd> {
        match self {
            ServerIo::Socket(s) => Some(s.as_raw_fd()),
            ServerIo::H2(_) => None,
        }
    }

    /// The connection, when it is one of its own (it can be kept, pooled
    /// or become a tunnel).
    pub(super) fn into_socket(self) -> Option<Stream> {
        match self {
            ServerIo::Socket(s) => Some(s),
            ServerIo::H2(_) => None,
        }
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Socket(s) => Pin::new(s).poll_read(cx, buf),
            ServerIo::H2(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerIo::Socket(s) => Pin::new(s).poll_write(cx, buf),
            ServerIo::H2(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Socket(s) => Pin::new(s).poll_flush(cx),
            ServerIo::H2(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerIo::Socket(s) => Pin::new(s).poll_close(cx),
            ServerIo::H2(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// MSG_MORE concerns sockets only; a stream frames what it is given.
impl SendMore for Shared<'_, ServerIo> {
    fn set_more(&mut self, more: bool) {
        if let ServerIo::Socket(s) = &mut *self.0.borrow_mut() {
            s.set_more(more);
        }
    }

    fn uncork(&mut self) {
        if let ServerIo::Socket(s) = &mut *self.0.borrow_mut() {
            s.uncork();
        }
    }
}
