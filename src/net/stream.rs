//! A proxied connection that is either plain TCP or TLS over TCP, so that
//! sessions take one type whichever their bind or server uses. Plain
//! streams can splice; TLS streams take the copy path.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Conn;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsStream;

pub enum Stream {
    Plain(Conn),
    /// Boxed: rustls' connection state is a few KiB, and plain streams
    /// should not carry that size.
    Tls(Box<TlsStream<Conn>>),
}

impl Stream {
    /// The TCP connection underneath (for socket options and addresses).
    pub fn tcp(&self) -> &Conn {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// See `Conn::set_more`; TLS streams write through their own buffer
    /// and are left alone.
    pub fn set_more(&mut self, more: bool) {
        if let Stream::Plain(c) = self {
            c.set_more(more);
        }
    }

    /// See `Conn::uncork`.
    pub fn uncork(&mut self) {
        if let Stream::Plain(c) = self {
            c.uncork();
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The server name the client asked for in SNI (terminated TLS only).
    pub fn sni(&self) -> Option<&str> {
        match self {
            Stream::Tls(s) => match s.as_ref() {
                TlsStream::Server(s) => s.get_ref().1.server_name(),
                TlsStream::Client(_) => None,
            },
            Stream::Plain(_) => None,
        }
    }

    /// The TLS version and cipher suite agreed on, as rustls names them
    /// (`TLSv1_3`, `TLS13_AES_128_GCM_SHA256`); terminated TLS only.
    pub fn tls_params(&self) -> Option<(Option<&'static str>, Option<&'static str>)> {
        match self {
            Stream::Tls(s) => match s.as_ref() {
                TlsStream::Server(s) => {
                    let conn = s.get_ref().1;
                    Some((
                        conn.protocol_version().and_then(|v| v.as_str()),
                        conn.negotiated_cipher_suite()
                            .and_then(|c| c.suite().as_str()),
                    ))
                }
                TlsStream::Client(_) => None,
            },
            Stream::Plain(_) => None,
        }
    }

    /// The certificate the client presented (terminated TLS, a bind with
    /// `verify optional|required`), DER.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        match self {
            Stream::Tls(s) => match s.as_ref() {
                TlsStream::Server(s) => s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|c| c.as_ref()),
                TlsStream::Client(_) => None,
            },
            Stream::Plain(_) => None,
        }
    }

    /// The ALPN protocol agreed on, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Tls(s) => match s.as_ref() {
                TlsStream::Server(s) => s.get_ref().1.alpn_protocol(),
                TlsStream::Client(s) => s.get_ref().1.alpn_protocol(),
            },
            Stream::Plain(_) => None,
        }
    }
}

/// The TCP socket under the stream (a TLS stream's too): for socket
/// options such as a reset on close, never for bytes.
impl std::os::fd::AsRawFd for Stream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp().as_raw_fd()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// TLS: close_notify, then shutdown(SHUT_WR) underneath, so the peer
    /// sees end of stream while the other direction keeps flowing.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_close(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}
