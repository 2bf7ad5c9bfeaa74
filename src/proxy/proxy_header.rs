//! The PROXY header of a client connection on an `accept-proxy` bind
//! (HAProxy's `accept-proxy`): read before anything else (before TLS),
//! bounded in time by `timeout client` from the accept and in size by
//! the header's own limits, and taken off the socket exactly (the bytes
//! after it are the client's, for TLS or HTTP). A connection whose
//! header is refused is closed before any server is involved, counted
//! (`proxy_errors`) and logged with the reason.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::io::AsyncReadExt;

use crate::net::proxy_protocol::{self, Header, Parsed, ProxyError, Tlvs, V2_FIXED_LEN};
use crate::net::Conn;
use crate::shard::CoreContext;

/// First peek at a PROXY header.
const FIRST_PEEK: usize = 256;

/// What a PROXY header told the session beyond the client's address
/// (which replaces the socket's peer).
#[derive(Debug, Clone, Default)]
pub struct Proxied {
    /// Where the client connected to; `None`: the socket's own local
    /// address (the header carried none).
    pub dst: Option<SocketAddr>,
    /// `fc_pp_authority`, `fc_pp_unique_id`.
    pub tlvs: Rc<Tlvs>,
}

/// A client connection ready for its session: the stream (TLS done), the
/// client's address (the PROXY header's when it carried one) and what
/// else the header said.
pub type Client = (crate::net::Stream, SocketAddr, Option<Proxied>);

/// How the read ended without a header.
#[derive(Debug)]
pub enum NoHeader {
    /// The client closed before sending a byte (a port probe): nothing to
    /// count or log, as on any other bind.
    Closed,
    Refused(ProxyError),
}

/// Reads the header; the limit for a v2 header is `tune.bufsize`
/// (HAProxy's too: the header must fit a buffer), at most 64 KiB. With
/// `keep`, the bytes seen after the header in the same look are taken
/// too and returned (at most a few hundred: the reader's first look),
/// for a caller that hands them on (a mode tcp session); without it,
/// exactly the header is taken off the socket.
pub async fn receive(
    conn: &mut Conn,
    limit: usize,
    timeout: Option<Duration>,
    keep: bool,
) -> Result<(Header, Vec<u8>), NoHeader> {
    let mut read = std::pin::pin!(read_header(conn, limit, keep));
    // Usually the header is there at the accept: no timer then (a timer
    // per connection is measurable at tens of thousands per second).
    if let Some(done) = futures_lite::future::poll_once(&mut read).await {
        return done;
    }
    match timeout {
        Some(t) => {
            futures_lite::future::or(read, async {
                glommio::timer::sleep(t).await;
                Err(NoHeader::Refused(ProxyError::Timeout))
            })
            .await
        }
        None => read.await,
    }
}

async fn read_header(
    conn: &mut Conn,
    limit: usize,
    keep: bool,
) -> Result<(Header, Vec<u8>), NoHeader> {
    let io = |e: std::io::Error| NoHeader::Refused(ProxyError::Io(e.to_string()));
    // Large enough for a v1 line and a v2 header with addresses and a
    // few TLVs in one peek; grows to what the header needs, as `parse`
    // learns it, within the limit.
    let mut buf = vec![0u8; FIRST_PEEK.min(limit.max(V2_FIXED_LEN))];
    let mut have = 0;
    loop {
        let n = conn.peek_more(&mut buf, have).await.map_err(io)?;
        if n == 0 {
            return Err(if have == 0 {
                NoHeader::Closed
            } else {
                NoHeader::Refused(ProxyError::Truncated)
            });
        }
        have = n;
        match proxy_protocol::parse(&buf[..have], limit).map_err(NoHeader::Refused)? {
            Parsed::Incomplete { need } => {
                if need > buf.len() {
                    buf.resize(need, 0);
                }
            }
            Parsed::Complete { header, len } => {
                // Peeked already: these bytes are in the socket.
                let take = if keep { have } else { len };
                conn.read_exact(&mut buf[..take]).await.map_err(io)?;
                buf.truncate(take);
                buf.drain(..len);
                return Ok((header, buf));
            }
        }
    }
}

/// Counts a refused header on its frontend and logs HAProxy's kind of
/// connection error line for it.
pub fn refused(ctx: &CoreContext, at: (usize, usize), peer: SocketAddr, e: &ProxyError) {
    ctx.stats.borrow_mut().frontends[at.0].proxy_errors += 1;
    super::tls::connection_error(ctx, at, peer, format_args!("PROXY protocol error ({e})"));
}

/// The session's view of a received header: the client address to use
/// instead of the socket's peer, and the rest.
pub fn apply(header: Header, peer: SocketAddr) -> (SocketAddr, Option<Proxied>) {
    let Header { addrs, tlvs, .. } = header;
    match addrs {
        Some((src, dst)) => (
            src,
            Some(Proxied {
                dst: Some(dst),
                tlvs: Rc::new(tlvs),
            }),
        ),
        None if tlvs != Tlvs::default() => (
            peer,
            Some(Proxied {
                dst: None,
                tlvs: Rc::new(tlvs),
            }),
        ),
        None => (peer, None),
    }
}
