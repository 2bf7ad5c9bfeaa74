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
