//! A listening socket whose accepts are plain accept4(2) calls, with waits
//! served by the core's epoll (`readiness`).
//!
//! glommio 0.9's accept costs three fcntl calls (it toggles O_NONBLOCK on
//! the listener around each accept), an io_uring ACCEPT when the queue is
//! empty, a getpeername, and a POLL_ADD armed for every new stream. Here
//! the listener is non-blocking once and for all, accept4 returns the peer
//! address and a non-blocking socket, and the socket joins the epoll set as
//! a `Conn` directly.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::task::Poll;

use super::conn::Conn;
use super::readiness::{Readiness, Token};

pub struct Acceptor {
    socket: socket2::Socket,
    token: Token,
    readiness: Rc<Readiness>,
}

impl Acceptor {
    /// Takes a bound, listening socket. Must run inside a glommio executor.
    pub fn new(socket: socket2::Socket) -> io::Result<Acceptor> {
        socket.set_nonblocking(true)?;
        let readiness = Readiness::current()?;
        let token = readiness.register(socket.as_raw_fd(), false)?;
        Ok(Acceptor {
            socket,
            token,
            readiness,
        })
    }

    /// The next connection and its peer address. Errors are accept(2)'s
    /// (EMFILE, ...): the caller decides whether to pause.
    pub async fn accept(&self) -> io::Result<(Conn, SocketAddr)> {
        loop {
            let (socket, addr) = self.next_socket().await?;
            // Not an IP peer: not what an IP listener can accept.
            let Some(peer) = addr.as_socket() else {
                continue;
            };
            return Ok((Conn::from_socket(socket)?, peer));
        }
    }

    /// The next connection of a local (unix) listener, which has no peer
    /// address worth keeping.
    pub async fn accept_local(&self) -> io::Result<Conn> {
        let (socket, _) = self.next_socket().await?;
        Conn::from_socket(socket)
    }

    async fn next_socket(&self) -> io::Result<(socket2::Socket, socket2::SockAddr)> {
        loop {
            let seen = self.readiness.read_events(self.token);
            match self.try_accept()? {
                Some(got) => return Ok(got),
                None => self.next_event(seen).await?,
            }
        }
    }

    fn try_accept(&self) -> io::Result<Option<(socket2::Socket, socket2::SockAddr)>> {
        loop {
            let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `storage` and `len` describe a writable buffer of the
            // right size; the listener fd is ours.
            let fd = unsafe {
                libc::accept4(
                    self.socket.as_raw_fd(),
                    storage.as_mut_ptr().cast(),
                    &mut len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(None),
                    // The client gave up before we got to it.
                    Some(libc::EINTR | libc::ECONNABORTED) => continue,
                    _ => return Err(err),
                }
            }
            // SAFETY: `fd` is a new descriptor that nobody else owns.
            let socket = unsafe { socket2::Socket::from_raw_fd(fd) };
            // SAFETY: accept4 wrote a socket address of `len` bytes.
            let addr = unsafe { socket2::SockAddr::new(storage.assume_init(), len) };
            return Ok(Some((socket, addr)));
        }
    }

    /// Waits for a read event on the listener after count `seen`.
    async fn next_event(&self, seen: u32) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            if self.readiness.read_events(self.token) != seen {
                return Poll::Ready(Ok(()));
            }
            // The listener joined the epoll set in `new`: this cannot fail.
            self.readiness.wait_read(self.token, cx.waker())?;
            Poll::Pending
        })
        .await
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))
    }
}

impl AsRawFd for Acceptor {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        // `forget`, not `release`: the socket may be shared with the next
        // process and outlive this descriptor.
        self.readiness.forget(self.token);
    }
}
