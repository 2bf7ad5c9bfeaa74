//! The PROXY protocol header (v1 and v2).
//!
//! Input: a selector byte (the v2 size limit), then the bytes a
//! connection starts with. Properties:
//! - `Complete { len }` takes at least one byte and at most the input;
//!   the header's own bytes alone parse to the same header, and every
//!   shorter prefix of them is `Incomplete` (a header read in pieces is
//!   never refused for where a read ended);
//! - `Incomplete { need }` asks for more than was given and no more than
//!   the limit (v2) or 107 bytes (v1);
//! - the writer's v1 and v2 headers for addresses taken from the input
//!   parse back to the same addresses (families made equal as the writer
//!   documents), taking exactly the written bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::net::proxy_protocol::{
    parse, write_header, Parsed, SendVersion, V1_MAX_LEN, V2_FIXED_LEN, V2_MAX_LEN,
};

/// An address from up to 19 input bytes: a family byte, the IP, a port.
fn addr(bytes: &[u8]) -> SocketAddr {
    let mut b = [0u8; 19];
    let n = bytes.len().min(19);
    b[..n].copy_from_slice(&bytes[..n]);
    let port = u16::from_be_bytes([b[17], b[18]]);
    let ip = if b[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(b[1], b[2], b[3], b[4]))
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[1..17]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    SocketAddr::new(ip, port)
}

/// What the writer promises to carry for `(s, d)`: IPv4-mapped addresses
/// as IPv4 when both are; mixed families both as IPv6.
fn expected(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (s, d) = (canon(s), canon(d));
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (v6(s), v6(d))
}

pub fn proxy_protocol(data: &[u8]) {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let limit = V2_FIXED_LEN + usize::from(selector) * 64;
    let bound = limit.clamp(V2_FIXED_LEN, V2_MAX_LEN).max(V1_MAX_LEN);
    match parse(buf, limit) {
        Ok(Parsed::Incomplete { need }) => {
            assert!(need > buf.len(), "asks for {need} having {}", buf.len());
            assert!(need <= bound, "asks for {need} over the {bound}-byte bound");
        }
        Ok(Parsed::Complete { header, len }) => {
            assert!(len >= 1 && len <= buf.len(), "takes {len} of {}", buf.len());
            assert_eq!(
                parse(&buf[..len], limit),
                Ok(Parsed::Complete {
                    header: header.clone(),
                    len
                }),
                "the header alone parses differently"
            );
            for cut in 0..len {
                match parse(&buf[..cut], limit) {
                    Ok(Parsed::Incomplete { need }) => {
                        assert!(need > cut, "prefix {cut}: asks for {need}")
                    }
                    other => panic!("prefix {cut} of a {len}-byte header: {other:?}"),
                }
            }
        }
        Err(_) => {}
    }

    let (s, d) = (addr(buf), addr(buf.get(19..).unwrap_or_default()));
    for version in [SendVersion::V1, SendVersion::V2] {
        let mut out = Vec::new();
        write_header(version, Some((s, d)), &mut out);
        match parse(&out, V2_MAX_LEN) {
            Ok(Parsed::Complete { header, len }) => {
                assert_eq!(len, out.len(), "{version:?} header length");
                assert_eq!(
                    header.addrs,
                    Some(expected(s, d)),
                    "{version:?} addresses of {out:?}"
                );
            }
            other => panic!("{version:?} header {out:?} for {s} -> {d} parses as {other:?}"),
        }
        out.clear();
        write_header(version, None, &mut out);
        match parse(&out, V2_MAX_LEN) {
            Ok(Parsed::Complete { header, len }) => {
                assert_eq!((len, header.addrs), (out.len(), None))
            }
            other => panic!("{version:?} LOCAL/UNKNOWN header parses as {other:?}"),
        }
    }
}
