//! A proxied TCP connection whose reads and writes are plain non-blocking
//! syscalls, with waits served by the core's epoll (`readiness`), not by a
//! glommio poll per wait.
//!
//! It owns its socket: accepted here (`net::accept`) or connected itself
//! (`Conn::connect`). Cost per read: one recv when data is there; when the last read drained the socket and no event came since,
//! not even that (the task goes straight to waiting). Per write: one send.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_lite::io::{AsyncRead, AsyncWrite};

use super::readiness::{Readiness, Token};

pub struct Conn {
    /// Owns the descriptor (closed with it).
    _socket: socket2::Socket,
    fd: RawFd,
    token: Token,
    readiness: Rc<Readiness>,
    /// Read-event count at which the socket was last seen drained.
    drained_at: Option<u32>,
    /// Sends carry MSG_MORE: the writer knows more bytes follow at once.
    more: bool,
    /// The last send carried MSG_MORE: the kernel may hold a partial
    /// segment until the next send or `uncork`.
    corked: bool,
}

impl Conn {
    /// Takes a socket this core owns (accepted here). It joins the core's
    /// epoll on its first wait, not before (`Readiness::reserve`).
    pub fn from_socket(socket: socket2::Socket) -> io::Result<Conn> {
        let fd = socket.as_raw_fd();
        Conn::lazy(socket, fd)
    }

    fn lazy(socket: socket2::Socket, fd: RawFd) -> io::Result<Conn> {
        let readiness = Readiness::current()?;
        let token = readiness.reserve(fd);
        Ok(Conn::with_token(socket, fd, token, readiness))
    }

    fn register(socket: socket2::Socket, fd: RawFd, write_interest: bool) -> io::Result<Conn> {
        let readiness = Readiness::current()?;
        let token = readiness.register(fd, write_interest)?;
        Ok(Conn::with_token(socket, fd, token, readiness))
    }

    fn with_token(
        socket: socket2::Socket,
        fd: RawFd,
        token: Token,
        readiness: Rc<Readiness>,
    ) -> Conn {
        Conn {
            _socket: socket,
            fd,
            token,
            readiness,
            drained_at: None,
            more: false,
            corked: false,
        }
    }

    /// Connects to `addr` with a non-blocking connect(2) whose completion
    /// is awaited through the core's epoll; Nagle is disabled (a proxy must
    /// not delay small writes). No io_uring operation is involved (glommio's
    /// connect costs a CONNECT, a LINK_TIMEOUT and a POLL_ADD per stream).
    /// Timeouts are the caller's.
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.nonblocking().cloexec(),
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_nodelay(true)?;
        let fd = socket.as_raw_fd();
        let pending = match socket.connect(&addr.into()) {
            Ok(()) => false,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
            Err(e) => return Err(e),
        };
        // Watched for writing from the start: that event ends the connect.
        let conn = Conn::register(socket, fd, true)?;
        if pending {
            conn.writable().await;
            // A connect that failed is reported with EPOLLERR/EPOLLHUP (which
            // mark the read side closed); EPOLLOUT alone means connected, so
            // only then is SO_ERROR worth a syscall (HAProxy skips it too).
            if conn.readiness.read_closed(conn.token) {
                let sock = socket2::SockRef::from(&conn);
                if let Some(err) = sock.take_error()? {
                    return Err(err);
                }
            }
        }
        Ok(conn)
    }

    /// Completes on the first write-side event after the call (a wake of
    /// the task for another reason does not count).
    async fn writable(&self) {
        let start = self.readiness.write_events(self.token);
        std::future::poll_fn(|cx| {
            if self.readiness.write_events(self.token) != start {
                return Poll::Ready(());
            }
            self.readiness.wait_write(self.token, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Makes the coming close abortive (SO_LINGER 0: an RST instead of a
    /// FIN handshake, no TIME_WAIT on this side), as HAProxy closes server
    /// connections it no longer wants. Only for connections with nothing in
    /// flight (idle ones), where the peer loses nothing.
    pub fn linger_zero(&self) {
        // Best effort: if it fails, the close is a plain one.
        let _ = socket2::SockRef::from(self).set_linger(Some(std::time::Duration::ZERO));
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket2::SockRef::from(self)
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }

    fn poll_recv(&mut self, cx: &Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let seen = self.readiness.read_events(self.token);
            if self.drained_at == Some(seen) {
                if let Err(err) = self.readiness.wait_read(self.token, cx.waker()) {
                    return Poll::Ready(Err(err));
                }
                return Poll::Pending;
            }
            // SAFETY: `buf` is valid for writes of its length; fd is ours.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                let n = n as usize;
                // A short read emptied the socket (as of `seen`); anything
                // that arrives later raises an edge, so the next read may
                // wait without trying — unless the peer's FIN or an error
                // was already reported: it is still to be read, and no
                // further edge will come for it.
                let short = n > 0 && n < buf.len();
                self.drained_at =
                    (short && !self.readiness.read_closed(self.token)).then_some(seen);
                return Poll::Ready(Ok(n));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => self.drained_at = Some(seen),
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(err)),
            }
        }
    }

    /// For a connection held without a task (`runtime::parking`) after a
    /// read found it drained: `true` if an event came since, so a read may
    /// find something now; otherwise `waker` is woken on the next
    /// read-side event (bytes, end of stream, error), and `false`.
    pub fn wake_on_read(&self, waker: &Waker) -> io::Result<bool> {
        let seen = self.readiness.read_events(self.token);
        if self.drained_at != Some(seen) {
            return Ok(true);
        }
        self.readiness.wait_read(self.token, waker)?;
        Ok(false)
    }

    /// Looks at what the socket holds without taking it (MSG_PEEK): waits
    /// until more than `have` bytes are there and returns how many are
    /// (at most `buf.len()`), or 0 at end of stream (also when the peer
    /// closed with only those `have` bytes sent). For the PROXY header,
    /// whose bytes must be taken off the socket exactly, no more. `have`
    /// must be less than `buf.len()`.
    pub async fn peek_more(&mut self, buf: &mut [u8], have: usize) -> io::Result<usize> {
        if have >= buf.len() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        loop {
            let seen = self.readiness.read_events(self.token);
            // SAFETY: `buf` is valid for writes of its length; fd is ours.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_PEEK,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => {}
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            } else if n == 0 || n as usize > have {
                return Ok(n as usize);
            } else if self.readiness.read_closed(self.token) {
                // The peer closed after the bytes already seen: nothing
                // more will come, and no further edge either.
                return Ok(0);
            }
            // Nothing new since `seen`: bytes arriving later raise an edge.
            std::future::poll_fn(|cx| {
                if self.readiness.read_events(self.token) != seen {
                    return Poll::Ready(Ok::<(), io::Error>(()));
                }
                self.readiness.wait_read(self.token, cx.waker())?;
                Poll::Pending
            })
            .await?;
        }
    }

    /// Whether the following sends carry MSG_MORE (HAProxy does the same
    /// while a body is known to continue): the kernel then fills whole
    /// segments instead of sending one per write, so the peer wakes once
    /// per segment rather than once per buffer.
    pub fn set_more(&mut self, more: bool) {
        self.more = more;
    }

    /// Sends what a MSG_MORE send left held back, if any (before waiting
    /// on something else, so that held bytes never wait with us).
    pub fn uncork(&mut self) {
        if self.corked {
            self.corked = false;
            // Setting TCP_NODELAY (already on) pushes pending frames.
            let _ = socket2::SockRef::from(&*self).set_nodelay(true);
        }
    }

    fn poll_send(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let more = if self.more { libc::MSG_MORE } else { 0 };
        loop {
            // SAFETY: `buf` is valid for reads of its length; fd is ours.
            let n = unsafe {
                libc::send(
                    self.fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | more,
                )
            };
            if n >= 0 {
                self.corked = self.more;
                return Poll::Ready(Ok(n as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => {
                    // EAGAIN set SOCK_NOSPACE: the socket raises an EPOLLOUT
                    // edge when room frees up, even one that frees up before
                    // the driver next runs.
                    self.readiness.wait_write(self.token, cx.waker());
                    return Poll::Pending;
                }
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.readiness.release(self.token);
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor stays open as long as `self` (its owner).
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_recv(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_send(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// shutdown(SHUT_WR), as glommio's close: the peer sees end of stream
    /// while the other direction keeps flowing.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: plain syscall on our fd.
        if unsafe { libc::shutdown(self.fd, libc::SHUT_WR) } < 0 {
            let err = io::Error::last_os_error();
            // Already shut down or the peer is gone: nothing left to do.
            if err.raw_os_error() != Some(libc::ENOTCONN) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(()))
    }
}
