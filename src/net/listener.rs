//! Per-core SO_REUSEPORT listeners.

use glommio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};

/// Binds one listening socket for this core. Every core binds the same
/// address with SO_REUSEPORT so the kernel spreads new connections across
/// cores without any shared accept queue.
pub fn bind_reuseport(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let sock = bind_reuseport_socket(addr, backlog)?;
    // SAFETY: the fd comes from a socket we own and hand over whole.
    Ok(unsafe { TcpListener::from_raw_fd(sock.into_raw_fd()) })
}

/// `bind_reuseport` as a plain socket (for `net::Acceptor`).
pub fn bind_reuseport_socket(addr: SocketAddr, backlog: u32) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    if addr.is_ipv6() {
        // An explicit [::] bind must not also grab IPv4, or a separate
        // 0.0.0.0 bind of the same port would fail (HAProxy's v6only).
        sock.set_only_v6(true)?;
    }
    // Accepted sockets inherit TCP_NODELAY; proxied bytes must not wait for
    // Nagle on either side.
    sock.set_nodelay(true)?;
    sock.bind(&addr.into())?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    sock.listen(backlog)?;
    Ok(sock)
}

/// Turns off TCP_QUICKACK on an HTTP listener (inherited by accepted
/// sockets), as HAProxy's default `option tcp-smart-accept` does: the
/// client's request arrives right after the handshake, and its ACK can
/// ride on the response instead of costing a segment of its own.
pub fn delay_request_ack(sock: &Socket) -> io::Result<()> {
    let off: libc::c_int = 0;
    // SAFETY: plain setsockopt on a socket we own, with a c_int option.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&off as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every listening socket this process holds, with its address: what a
/// binary upgrade hands over to the next process (`_getsocks`). Cores add
/// a socket when they bind it and remove it before they close it. Touched
/// only at bind, close and hand-over, never per connection.
#[derive(Debug, Default)]
pub struct ListenerRegistry {
    sockets: std::sync::Mutex<Vec<(SocketAddr, std::os::fd::RawFd)>>,
}

impl ListenerRegistry {
    pub fn add(&self, addr: SocketAddr, fd: std::os::fd::RawFd) {
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.push((addr, fd));
        }
    }

    pub fn remove(&self, fd: std::os::fd::RawFd) {
        if let Ok(mut sockets) = self.sockets.lock() {
            sockets.retain(|&(_, f)| f != fd);
        }
    }

    /// The sockets listening now, in the order they were bound.
    pub fn list(&self) -> Vec<(SocketAddr, std::os::fd::RawFd)> {
        self.sockets.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A duplicate of every socket listening now, made under the lock: a
    /// core that closes a listener removes it here first ([`Listed`]), so
    /// no descriptor in the list can be closed, or reused for another file,
    /// while the copies are made. A hand-over sends these copies, however
    /// long it takes, instead of numbers another core may close meanwhile.
    pub fn snapshot(&self) -> io::Result<Vec<(SocketAddr, std::os::fd::OwnedFd)>> {
        let sockets = self
            .sockets
            .lock()
            .map_err(|_| io::Error::other("listener registry poisoned"))?;
        sockets
            .iter()
            .map(|&(addr, fd)| {
                // SAFETY: a listed descriptor is open until its `Listed`
                // guard removes it, which needs the lock held here.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                Ok((addr, fd.try_clone_to_owned()?))
            })
            .collect()
    }
}

/// A listening socket, listed in the registry for exactly as long as it
/// is open: `Drop` removes the entry before the fields (the socket) are
/// dropped, so a hand-over never sees a descriptor that is closed.
pub struct Listed<T: std::os::fd::AsRawFd> {
    inner: T,
    registry: std::sync::Arc<ListenerRegistry>,
}

impl<T: std::os::fd::AsRawFd> Listed<T> {
    pub fn new(inner: T, addr: SocketAddr, registry: &std::sync::Arc<ListenerRegistry>) -> Self {
        registry.add(addr, inner.as_raw_fd());
        Listed {
            inner,
            registry: std::sync::Arc::clone(registry),
        }
    }
}

impl<T: std::os::fd::AsRawFd> std::ops::Deref for Listed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: std::os::fd::AsRawFd> Drop for Listed<T> {
    fn drop(&mut self) {
        self.registry.remove(self.inner.as_raw_fd());
    }
}

/// The sockets a core listens on for `addr`: every one it inherited for
/// that address (each part of the old process's SO_REUSEPORT group, each
/// with connections of its own waiting), or else one bound now.
pub fn sockets_for(
    addr: SocketAddr,
    backlog: u32,
    inherited: &Inherited,
) -> Vec<io::Result<Socket>> {
    let mut sockets = Vec::new();
    while let Some(fd) = inherited.take(addr) {
        sockets.push(adopt(fd, backlog));
    }
    if sockets.is_empty() {
        sockets.push(bind_reuseport_socket(addr, backlog));
    }
    sockets
}

/// An inherited listening socket as `bind_reuseport_socket` would have
/// made it. listen(2) again: on a socket that already listens it only sets
/// the backlog, so the new configuration's `backlog` applies.
fn adopt(fd: std::os::fd::OwnedFd, backlog: u32) -> io::Result<Socket> {
    let sock = Socket::from(fd);
    sock.set_nodelay(true)?;
    sock.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(sock)
}

/// Listening sockets received from the previous process (`-x`): a core
/// takes one for an address before it would bind a new one, so the
/// kernel's accept queues pass from the old process to the new whole.
#[derive(Debug, Default)]
pub struct Inherited {
    sockets: std::sync::Mutex<Vec<(SocketAddr, std::os::fd::OwnedFd)>>,
}

impl Inherited {
    pub fn new(sockets: Vec<(SocketAddr, std::os::fd::OwnedFd)>) -> Self {
        Inherited {
            sockets: std::sync::Mutex::new(sockets),
        }
    }

    /// One inherited socket listening on `addr`, if any is left.
    pub fn take(&self, addr: SocketAddr) -> Option<std::os::fd::OwnedFd> {
        let mut sockets = self.sockets.lock().ok()?;
        let at = sockets.iter().position(|(a, _)| *a == addr)?;
        Some(sockets.swap_remove(at).1)
    }

    /// Whatever no core took (more old cores than new ones, or addresses
    /// the new config no longer has).
    pub fn rest(&self) -> Vec<(SocketAddr, std::os::fd::OwnedFd)> {
        self.sockets
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

/// A bind error in the words of a start-up or reload failure line.
pub fn describe_bind_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use (another process listens there)".into(),
        Some(libc::EACCES) => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".into()
        }
        Some(libc::EADDRNOTAVAIL) => "address not available on this machine".into(),
        _ => e.to_string(),
    }
}
