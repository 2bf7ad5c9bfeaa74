//! Outbound connections to servers.

use glommio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Connects through io_uring (glommio links a LINK_TIMEOUT to the CONNECT
/// when a timeout is set) and disables Nagle: a proxy must not add latency to
/// small writes.
pub async fn connect(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
    let stream = match timeout {
        Some(t) if !t.is_zero() => TcpStream::connect_timeout(addr, t).await,
        _ => TcpStream::connect(addr).await,
    }
    .map_err(io::Error::from)?;
    stream.set_nodelay(true).map_err(io::Error::from)?;
    Ok(stream)
}
