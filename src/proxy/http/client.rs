//! The client side of an HTTP session: its own socket (plain or TLS), or
//! one HTTP/2 stream that `proxy::h2` presents as an HTTP/1.1 connection
//! carrying a single request. The session, the exchange and the rules
//! cannot tell the two apart except through [`ClientIo::carrier`].

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use futures_lite::io::{AsyncRead, AsyncWrite};

use crate::net::{Conn, Stream};
use crate::tls::peer_cert::PeerCert;

/// A stream multiplexed on another connection: reads give the request as
/// HTTP/1.1 bytes, writes take the response as HTTP/1.1 bytes.
pub(crate) trait Carried: AsyncRead + AsyncWrite + Unpin {
    /// What the session would have read from its own socket.
    fn carrier(&self) -> &Carrier;
}

/// The facts of the connection a carried stream travels on.
#[derive(Debug, Clone)]
pub(crate) struct Carrier {
    /// The address the client connected to (`dst`, X-Forwarded-Port).
    pub local: SocketAddr,
    pub tls: bool,
    /// What rules read of the carrying connection's TLS (`ssl_fc_*`).
    pub tls_facts: Option<crate::rules::TlsFacts>,
    /// The protocol version the access log shows (`HTTP/2.0`).
    pub version: &'static str,
    /// The carrying connection's socket, open for as long as any of its
    /// streams is served.
    pub fd: RawFd,
}

pub(crate) enum ClientIo {
    Socket(Stream),
    Carried(Box<dyn Carried>),
}

impl ClientIo {
    /// The TCP connection, for a client with a socket of its own.
    pub(super) fn tcp(&self) -> Option<&Conn> {
        match self {
            ClientIo::Socket(s) => Some(s.tcp()),
            ClientIo::Carried(_) => None,
        }
    }

    pub(super) fn carrier(&self) -> Option<&Carrier> {
        match self {
            ClientIo::Socket(_) => None,
            ClientIo::Carried(c) => Some(c.carrier()),
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        match self {
            ClientIo::Socket(s) => s.is_tls(),
            ClientIo::Carried(c) => c.carrier().tls,
        }
    }

    /// What rules read of the client's TLS (`ssl_fc`, `ssl_fc_*`,
    /// `ssl_c_*`); `client_cert`: the certificate if it was read already
    /// (it is read once per connection).
    pub(super) fn tls_facts(
        &self,
        client_cert: Option<Rc<PeerCert>>,
    ) -> Option<crate::rules::TlsFacts> {
        match self {
            ClientIo::Socket(s) => s.tls_params().map(|params| {
                let facts = crate::rules::TlsFacts::new(s.sni(), params, s.alpn());
                match client_cert {
                    Some(cert) => crate::rules::TlsFacts {
                        client_cert: Some(cert),
                        ..facts
                    },
                    None => facts.with_client_cert(s.peer_certificate()),
                }
            }),
            ClientIo::Carried(c) => c.carrier().tls_facts.clone(),
        }
    }
}

/// The socket under the client: a carried stream's is its connection's.
impl AsRawFd for ClientIo {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            ClientIo::Socket(s) => s.as_raw_fd(),
            ClientIo::Carried(c) => c.carrier().fd,
        }
    }
}

crate::net::shared::socket_or_boxed_io!(ClientIo, Socket, Carried);
