//! The PROXY protocol (versions 1 and 2, as HAProxy's
//! `doc/proxy-protocol.txt` defines them): parsing a header a client
//! connection starts with, and writing one in front of a server
//! connection. I/O free: the reader in `proxy::proxy_header` peeks at the
//! socket, hands what it saw to [`parse`], and takes exactly the header's
//! bytes off the socket once [`parse`] says it is complete.
//!
//! Hand-written rather than a crate: the reader needs to know, from a
//! prefix, how many bytes the header will take (so it never takes a byte
//! of the payload and never buffers more than the limit), and every
//! rejection needs its own reason for the log and its own test. The
//! format is small; each check below names the rule of the spec it
//! enforces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family, length.
pub const V2_FIXED_LEN: usize = 16;
/// A v1 line is at most 107 bytes, CRLF included (spec 2.1).
pub const V1_MAX_LEN: usize = 107;
/// The most a v2 header may take whatever `tune.bufsize` says.
pub const V2_MAX_LEN: usize = 64 * 1024;
/// Spec 2.2.6: a unique id is at most 128 bytes.
pub const UNIQUE_ID_MAX: usize = 128;
/// HAProxy keeps at most 255 bytes of the authority (a host name).
pub const AUTHORITY_MAX: usize = 255;

const V1_PREFIX: &[u8] = b"PROXY ";
const TLV_AUTHORITY: u8 = 0x02;
const TLV_UNIQUE_ID: u8 = 0x05;

/// What a v2 header's TLVs said that percore keeps (`fc_pp_authority`,
/// `fc_pp_unique_id`); other types are skipped, as the spec allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tlvs {
    pub authority: Option<Box<[u8]>>,
    pub unique_id: Option<Box<[u8]>>,
}

/// A received header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    /// Source and destination the header carries; `None` when it carries
    /// none that apply (v1 `UNKNOWN`, v2 `LOCAL`, `UNSPEC` or a unix
    /// socket): the connection's own addresses stay.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    pub tlvs: Tlvs,
}

/// What [`parse`] made of the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not enough bytes yet: look again once at least `need` are there
    /// (always more than were given, never more than the limit).
    Incomplete { need: usize },
    /// The header takes the first `len` bytes.
    Complete { header: Header, len: usize },
}

/// Why a header was refused; the words go to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("received something which does not look like a PROXY protocol header")]
    Missing,
    #[error("PROXY v1 header longer than 107 bytes")]
    V1TooLong,
    #[error("invalid PROXY v1 header: {0}")]
    V1Invalid(&'static str),
    #[error("unsupported PROXY v2 version {0:#x}")]
    V2Version(u8),
    #[error("unknown PROXY v2 command {0:#x}")]
    V2Command(u8),
    #[error("unknown or unsupported PROXY v2 address family {0:#04x}")]
    V2Family(u8),
    #[error("PROXY v2 header of {len} bytes is over the {limit}-byte limit")]
    V2TooLarge { len: usize, limit: usize },
    #[error("PROXY v2 address block shorter than its family needs")]
    V2ShortAddress,
    #[error("PROXY v2 TLV overflows the header")]
    TlvOverflow,
    #[error("PROXY v2 TLV {kind:#04x} of {len} bytes is over its {max}-byte limit")]
    TlvTooLong { kind: u8, len: usize, max: usize },
    #[error("truncated PROXY protocol header (connection closed)")]
    Truncated,
    #[error("timeout while waiting for the PROXY protocol header")]
    Timeout,
    #[error("error while reading the PROXY protocol header: {0}")]
    Io(String),
}

/// Looks at the bytes a connection started with. `limit` bounds a v2
/// header (it is capped at [`V2_MAX_LEN`]); a v1 line is bounded by the
/// spec.
pub fn parse(buf: &[u8], limit: usize) -> Result<Parsed, ProxyError> {
    let limit = limit.clamp(V2_FIXED_LEN, V2_MAX_LEN);
    if buf.first() == Some(&b'P') {
        return parse_v1(buf);
    }
    if buf.first() == Some(&b'\r') {
        return parse_v2(buf, limit);
    }
    if buf.is_empty() {
        return Ok(Parsed::Incomplete { need: V2_FIXED_LEN });
    }
    Err(ProxyError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let seen = buf.len().min(V1_PREFIX.len());
    if buf[..seen] != V1_PREFIX[..seen] {
        return Err(ProxyError::Missing);
    }
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.windows(2).position(|w| w == b"\r\n") else {
        // A lone CR or LF inside the line is not allowed either; finding
        // none, wait for more unless the line is already at its bound.
        if window.len() >= V1_MAX_LEN {
            return Err(ProxyError::V1TooLong);
        }
        if window[..window.len().saturating_sub(1)].contains(&b'\r') || window.contains(&b'\n') {
            return Err(ProxyError::V1Invalid("stray CR or LF"));
        }
        return Ok(Parsed::Incomplete { need: V1_MAX_LEN });
    };
    let line = &window[V1_PREFIX.len()..cr];
    // Checked on the whole line too, not only while it is incomplete:
    // otherwise `PROXY UNKNOWN x\r\r\n` was refused or taken depending
    // on where a read ended (found by fuzzing proxy_protocol).
    if line.contains(&b'\r') || line.contains(&b'\n') {
        return Err(ProxyError::V1Invalid("stray CR or LF"));
    }
    let text = std::str::from_utf8(line).map_err(|_| ProxyError::V1Invalid("not ASCII"))?;
    let mut fields = text.split(' ');
    let proto = fields.next().unwrap_or("");
    let addrs = match proto {
        // The sender knows nothing useful: the rest of the line is
        // ignored (spec 2.1).
        "UNKNOWN" => None,
        "TCP4" | "TCP6" => {
            let mut next = |what| fields.next().ok_or(ProxyError::V1Invalid(what));
            let (src, dst) = (next("no source address")?, next("no destination address")?);
            let (sport, dport) = (next("no source port")?, next("no destination port")?);
            if fields.next().is_some() {
                return Err(ProxyError::V1Invalid("extra fields"));
            }
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| ProxyError::V1Invalid("bad address"))?;
                match (proto, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(ProxyError::V1Invalid("address does not match the protocol")),
                }
            };
            let (src, dst) = (ip(src)?, ip(dst)?);
            let (sport, dport) = (v1_port(sport)?, v1_port(dport)?);
            Some((SocketAddr::new(src, sport), SocketAddr::new(dst, dport)))
        }
        _ => return Err(ProxyError::V1Invalid("unknown protocol")),
    };
    Ok(Parsed::Complete {
        header: Header {
            version: 1,
            addrs,
            tlvs: Tlvs::default(),
        },
        len: cr + 2,
    })
}

/// Decimal, 0..=65535, no sign, no leading zero (spec 2.1).
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    let bad = ProxyError::V1Invalid("bad port");
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

fn parse_v2(buf: &[u8], limit: usize) -> Result<Parsed, ProxyError> {
    let seen = buf.len().min(V2_SIGNATURE.len());
    if buf[..seen] != V2_SIGNATURE[..seen] {
        return Err(ProxyError::Missing);
    }
    if buf.len() < V2_FIXED_LEN {
        return Ok(Parsed::Incomplete { need: V2_FIXED_LEN });
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let local = match ver_cmd & 0x0f {
        0x0 => true,
        0x1 => false,
        other => return Err(ProxyError::V2Command(other)),
    };
    let family = buf[13];
    let body_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = V2_FIXED_LEN + body_len;
    if len > limit {
        return Err(ProxyError::V2TooLarge { len, limit });
    }
    // Known families only, whatever the command: a header with an
    // undefined family is not one this peer meant to send.
    let addr_len = match family {
        0x00 => 0,
        0x11 | 0x12 => 12,
        0x21 | 0x22 => 36,
        0x31 | 0x32 => 216,
        other => return Err(ProxyError::V2Family(other)),
    };
    if buf.len() < len {
        return Ok(Parsed::Incomplete { need: len });
    }
    let body = &buf[V2_FIXED_LEN..len];
    if local || family == 0x00 {
        // LOCAL (the balancer's own health check) and UNSPEC: the block
        // is discarded and the real addresses are used (spec 2.2).
        return Ok(Parsed::Complete {
            header: Header {
                version: 2,
                addrs: None,
                tlvs: Tlvs::default(),
            },
            len,
        });
    }
    // A stream proxy carries no datagrams: a header that says it does is
    // not one percore can honour.
    if family & 0x0f == 0x02 {
        return Err(ProxyError::V2Family(family));
    }
    if body.len() < addr_len {
        return Err(ProxyError::V2ShortAddress);
    }
    let a = &body[..addr_len];
    let addrs = match family {
        0x11 => {
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        0x21 => {
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        // Unix sockets: no address percore can use; the real ones stay.
        _ => None,
    };
    let tlvs = parse_tlvs(&body[addr_len..])?;
    Ok(Parsed::Complete {
        header: Header {
            version: 2,
            addrs,
            tlvs,
        },
        len,
    })
}

/// Type-length-value fields after the addresses: each must fit in what
/// is left of the header (spec 2.2.7).
fn parse_tlvs(mut rest: &[u8]) -> Result<Tlvs, ProxyError> {
    let mut tlvs = Tlvs::default();
    while !rest.is_empty() {
        let [kind, hi, lo, tail @ ..] = rest else {
            return Err(ProxyError::TlvOverflow);
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len > tail.len() {
            return Err(ProxyError::TlvOverflow);
        }
        let (value, next) = tail.split_at(len);
        let bounded = |max: usize| -> Result<Box<[u8]>, ProxyError> {
            if len > max {
                return Err(ProxyError::TlvTooLong {
                    kind: *kind,
                    len,
                    max,
                });
            }
            Ok(value.into())
        };
        match *kind {
            TLV_AUTHORITY => tlvs.authority = Some(bounded(AUTHORITY_MAX)?),
            TLV_UNIQUE_ID => tlvs.unique_id = Some(bounded(UNIQUE_ID_MAX)?),
            _ => {}
        }
        rest = next;
    }
    Ok(tlvs)
}

/// Which header a server connection starts with (`send-proxy`,
/// `send-proxy-v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendVersion {
    V1,
    V2,
}

/// Appends the header for a connection from `src` to `dst` to `out`;
/// `None` (a health check: no client) writes `PROXY UNKNOWN` (v1) or a
/// `LOCAL` command (v2), as HAProxy does for checks. Mixed families
/// (an IPv4 client on an IPv6 socket) are written as IPv6.
pub fn write_header(
    version: SendVersion,
    addrs: Option<(SocketAddr, SocketAddr)>,
    out: &mut Vec<u8>,
) {
    let addrs = addrs.map(|(s, d)| same_family(s, d));
    match version {
        SendVersion::V1 => {
            use std::io::Write as _;
            match addrs {
                Some((s, d)) => {
                    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                    let _ = write!(
                        out,
                        "PROXY {proto} {} {} {} {}\r\n",
                        s.ip(),
                        d.ip(),
                        s.port(),
                        d.port()
                    );
                }
                None => out.extend_from_slice(b"PROXY UNKNOWN\r\n"),
            }
        }
        SendVersion::V2 => {
            out.extend_from_slice(&V2_SIGNATURE);
            match addrs {
                None => out.extend_from_slice(&[0x20, 0x00, 0, 0]),
                Some((s, d)) => match (s.ip(), d.ip()) {
                    (IpAddr::V4(si), IpAddr::V4(di)) => {
                        out.extend_from_slice(&[0x21, 0x11, 0, 12]);
                        out.extend_from_slice(&si.octets());
                        out.extend_from_slice(&di.octets());
                        out.extend_from_slice(&s.port().to_be_bytes());
                        out.extend_from_slice(&d.port().to_be_bytes());
                    }
                    (si, di) => {
                        out.extend_from_slice(&[0x21, 0x21, 0, 36]);
                        out.extend_from_slice(&v6(si).octets());
                        out.extend_from_slice(&v6(di).octets());
                        out.extend_from_slice(&s.port().to_be_bytes());
                        out.extend_from_slice(&d.port().to_be_bytes());
                    }
                },
            }
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Both addresses in one family: IPv4-mapped IPv6 addresses become IPv4
/// when both are; otherwise both are written as IPv6.
fn same_family(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canon(s), canon(d));
    if s.is_ipv4() == d.is_ipv4() {
        (s, d)
    } else {
        (
            SocketAddr::new(IpAddr::V6(v6(s.ip())), s.port()),
            SocketAddr::new(IpAddr::V6(v6(d.ip())), d.port()),
        )
    }
}

#[cfg(test)]
mod tests;
