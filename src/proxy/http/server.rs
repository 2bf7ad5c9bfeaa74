//! The server side of an HTTP session: a connection of its own (HTTP/1.1,
//! plain or TLS), or one stream on a core's HTTP/2 connection to a
//! `proto = "h2"` server, which `proxy::h2::server` presents as an
//! HTTP/1.1 connection carrying a single request. The exchange cannot
//! tell the two apart; the session keeps, pools or tunnels only the
//! first kind.

use std::os::fd::{AsRawFd, RawFd};

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

crate::net::shared::socket_or_boxed_io!(ServerIo, Socket, H2);
