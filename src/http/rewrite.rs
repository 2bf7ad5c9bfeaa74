//! Builds outgoing heads from parsed ones into a caller-owned, reused
//! `Vec<u8>` (appended to; the caller clears it).
//!
//! Lines are rebuilt, not copied: single spaces in the start line, `name:
//! value` with one space, CRLF endings. Field order and name case are kept.
//!
//! Removed on the way (RFC 9110 §7.6.1): Connection, Keep-Alive,
//! Proxy-Connection, TE, Upgrade (kept when the exchange is an upgrade), and
//! every field named in Connection — except Host, Content-Length and
//! Transfer-Encoding, which are never dropped: the body is forwarded as
//! framed, and dropping its framing field because a client listed it in
//! Connection would desynchronise the server.
//!
//! Kept, as HAProxy keeps them: Trailer (trailers are forwarded as they
//! are), Transfer-Encoding (chunked bodies are forwarded as they are),
//! Proxy-Authorization / Proxy-Authenticate (HAProxy 2.6 does not strip
//! them either).
//!
//! Added: `X-Forwarded-For` (HAProxy `option forwardfor [except <net>]
//! [header <name>] [if-none]`: appended as a new field, existing ones
//! kept), `X-Forwarded-Proto` / `X-Forwarded-Port` (set: incoming ones are
//! removed so a client cannot forge them), then the Connection field the
//! chosen `ConnectionMode` needs for the peer's HTTP version.

use std::io::Write;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

use super::head::{Headers, Version};
use super::request::RequestHead;
use super::response::ResponseHead;
use super::syntax::list_elements;

/// What happens to the connection after this message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    KeepAlive,
    Close,
    /// Forward the upgrade (Upgrade field kept, `Connection: upgrade`).
    Upgrade,
}

/// An address range for `option forwardfor except`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetworkParseError {
    #[error("invalid address '{0}'")]
    Address(String),
    #[error("invalid prefix length '{0}'")]
    Prefix(String),
}

impl Network {
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, NetworkParseError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(NetworkParseError::Prefix(prefix.to_string()));
        }
        Ok(Network { addr, prefix })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = NetworkParseError;

    /// `addr`, `addr/len` or (IPv4, as HAProxy) `addr/dotted.mask`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| NetworkParseError::Address(a.to_string()))?;
        let prefix = match p {
            None => {
                if addr.is_ipv4() {
                    32
                } else {
                    128
                }
            }
            Some(p) if addr.is_ipv4() && p.contains('.') => {
                let mask: std::net::Ipv4Addr = p
                    .parse()
                    .map_err(|_| NetworkParseError::Prefix(p.to_string()))?;
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(NetworkParseError::Prefix(p.to_string()));
                }
                bits.leading_ones() as u8
            }
            Some(p) => p
                .parse()
                .map_err(|_| NetworkParseError::Prefix(p.to_string()))?,
        };
        Network::new(addr, prefix)
    }
}

/// HAProxy `option forwardfor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// Field name (`header <name>`), `X-Forwarded-For` by default.
    pub header: String,
    /// Clients in these networks get no field (`except <network>`).
    pub except: Vec<Network>,
    /// Add the field only if the request has none (`if-none`).
    pub if_none: bool,
}

impl Default for ForwardFor {
    fn default() -> Self {
        ForwardFor {
            header: "X-Forwarded-For".to_string(),
            except: Vec::new(),
            if_none: false,
        }
    }
}

/// Per-frontend rewrite settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestRewrite {
    pub forward_for: Option<ForwardFor>,
    /// Set `X-Forwarded-Proto: http|https`.
    pub forwarded_proto: bool,
    /// Set `X-Forwarded-Port: <port the client connected to>`.
    pub forwarded_port: bool,
}

/// Facts about the client connection the rewrite needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSide {
    pub addr: IpAddr,
    /// Local port the client connected to.
    pub local_port: u16,
    pub tls: bool,
}

/// Appends the request head to send to the server.
pub fn write_request_head(
    out: &mut Vec<u8>,
    head: &RequestHead<'_>,
    rewrite: &RequestRewrite,
    client: &ClientSide,
    conn: ConnectionMode,
) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");

    let upgrade = conn == ConnectionMode::Upgrade;
    let nominated = has_nominated_fields(&head.headers);
    for (name, value) in head.headers.iter() {
        if is_hop_by_hop(name, upgrade) || (nominated && is_nominated(&head.headers, name, upgrade))
        {
            continue;
        }
        if (rewrite.forwarded_proto && name.eq_ignore_ascii_case(b"x-forwarded-proto"))
            || (rewrite.forwarded_port && name.eq_ignore_ascii_case(b"x-forwarded-port"))
        {
            continue;
        }
        write_field(out, name, value);
    }

    if let Some(ff) = &rewrite.forward_for {
        let excluded = ff.except.iter().any(|n| n.contains(client.addr));
        let present = ff.if_none && head.headers.contains(&ff.header);
        if !excluded && !present {
            out.extend_from_slice(ff.header.as_bytes());
            // Writing to a Vec cannot fail.
            let _ = write!(out, ": {}\r\n", client.addr.to_canonical());
        }
    }
    if rewrite.forwarded_proto {
        let proto: &[u8] = if client.tls { b"https" } else { b"http" };
        write_field(out, b"X-Forwarded-Proto", proto);
    }
    if rewrite.forwarded_port {
        let _ = write!(out, "X-Forwarded-Port: {}\r\n", client.local_port);
    }
    write_connection(out, conn, head.version);
    out.extend_from_slice(b"\r\n");
}

/// Appends the response head to send to the client; `client_version` is
/// the version of the client's request (it decides which Connection field
/// is needed).
pub fn write_response_head(
    out: &mut Vec<u8>,
    head: &ResponseHead<'_>,
    client_version: Version,
    conn: ConnectionMode,
) {
    // Always HTTP/1.1, as HAProxy: the proxy speaks 1.1 to the client
    // whatever the server's version (a 1.0 status line would make a 1.1
    // client drop a keep-alive connection the proxy can keep).
    let _ = head.version;
    out.extend_from_slice(b"HTTP/1.1");
    let _ = write!(out, " {:03} ", head.status);
    out.extend_from_slice(head.reason);
    out.extend_from_slice(b"\r\n");

    let upgrade = conn == ConnectionMode::Upgrade;
    let nominated = has_nominated_fields(&head.headers);
    for (name, value) in head.headers.iter() {
        if is_hop_by_hop(name, upgrade) || (nominated && is_nominated(&head.headers, name, upgrade))
        {
            continue;
        }
        write_field(out, name, value);
    }
    write_connection(out, conn, client_version);
    out.extend_from_slice(b"\r\n");
}

fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Only what differs from the version's default persistence is written.
fn write_connection(out: &mut Vec<u8>, conn: ConnectionMode, version: Version) {
    match (conn, version) {
        (ConnectionMode::Upgrade, _) => out.extend_from_slice(b"Connection: upgrade\r\n"),
        (ConnectionMode::Close, Version::Http11) => out.extend_from_slice(b"Connection: close\r\n"),
        (ConnectionMode::KeepAlive, Version::Http10) => {
            out.extend_from_slice(b"Connection: keep-alive\r\n")
        }
        _ => {}
    }
}

fn is_hop_by_hop(name: &[u8], keep_upgrade: bool) -> bool {
    match name.len() {
        2 => name.eq_ignore_ascii_case(b"te"),
        7 => !keep_upgrade && name.eq_ignore_ascii_case(b"upgrade"),
        10 => name.eq_ignore_ascii_case(b"connection") || name.eq_ignore_ascii_case(b"keep-alive"),
        16 => name.eq_ignore_ascii_case(b"proxy-connection"),
        _ => false,
    }
}

/// Fields that must reach the peer whatever Connection says.
fn is_protected(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"host")
        || name.eq_ignore_ascii_case(b"content-length")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// True if a Connection field names anything beyond the usual tokens
/// (which are hop-by-hop anyway); lets the common case skip the per-field
/// lookup.
fn has_nominated_fields(headers: &Headers<'_>) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| list_elements(v))
        .any(|t| {
            !(t.eq_ignore_ascii_case(b"close")
                || t.eq_ignore_ascii_case(b"keep-alive")
                || t.eq_ignore_ascii_case(b"upgrade"))
        })
}

/// `name` is listed in a Connection field, so hop-by-hop. The Upgrade
/// field of an upgrade being forwarded is listed there too (that is how
/// the upgrade is asked for) and stays: found by fuzzing, an upgrade whose
/// Connection field also named another token (`keep-alive, Upgrade, x`)
/// reached the server as `Connection: upgrade` without its Upgrade field.
fn is_nominated(headers: &Headers<'_>, name: &[u8], keep_upgrade: bool) -> bool {
    let kept = is_protected(name) || (keep_upgrade && name.eq_ignore_ascii_case(b"upgrade"));
    !kept
        && headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .flat_map(|(_, v)| list_elements(v))
            .any(|t| t.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{Method, RequestParser};
    use crate::http::response::ResponseParser;

    fn client(addr: &str) -> ClientSide {
        ClientSide {
            addr: addr.parse().unwrap(),
            local_port: 8443,
            tls: false,
        }
    }

    fn rewrite_req(
        raw: &[u8],
        rw: &RequestRewrite,
        c: &ClientSide,
        conn: ConnectionMode,
    ) -> String {
        let mut p = RequestParser::default();
        let head = p.parse(raw).complete().expect("valid request");
        let mut out = Vec::new();
        write_request_head(&mut out, &head, rw, c, conn);
        String::from_utf8(out).unwrap()
    }

    fn xff() -> RequestRewrite {
        RequestRewrite {
            forward_for: Some(ForwardFor::default()),
            ..Default::default()
        }
    }

    #[test]
    fn copies_line_and_fields_in_order_and_case() {
        let out = rewrite_req(
            b"GET /a?b=c HTTP/1.1\r\nHost: h\r\nx-Lower: 1\r\nACCEPT:*/*\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            "GET /a?b=c HTTP/1.1\r\nHost: h\r\nx-Lower: 1\r\nACCEPT: */*\r\n\r\n"
        );
    }

    #[test]
    fn drops_hop_by_hop_fields() {
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic eA==\r\nX-Keep: 1\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic eA==\r\nX-Keep: 1\r\n\r\n"
        );
    }

    #[test]
    fn drops_fields_named_in_connection_but_never_framing() {
        let out = rewrite_req(
            b"POST / HTTP/1.1\r\nHost: h\r\nConnection: X-Secret, content-length, Host\r\nX-Secret: s\r\nContent-Length: 2\r\nX-Other: o\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nX-Other: o\r\n\r\n"
        );
    }

    #[test]
    fn close_mode_on_http11_adds_connection_close() {
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::Close,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn keep_alive_on_http10_adds_connection_keep_alive() {
        let out = rewrite_req(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::KeepAlive,
        );
        assert_eq!(out, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    }

    #[test]
    fn upgrade_keeps_upgrade_field() {
        let out = rewrite_req(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::Upgrade,
        );
        assert_eq!(
            out,
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn forwardfor_appends_client_address() {
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
            &xff(),
            &client("192.0.2.7"),
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"
        );
    }

    #[test]
    fn forwardfor_ipv6_and_mapped_ipv4() {
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            &xff(),
            &client("2001:db8::1"),
            ConnectionMode::KeepAlive,
        );
        assert!(out.contains("X-Forwarded-For: 2001:db8::1\r\n"), "{out}");
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            &xff(),
            &client("::ffff:192.0.2.9"),
            ConnectionMode::KeepAlive,
        );
        assert!(out.contains("X-Forwarded-For: 192.0.2.9\r\n"), "{out}");
    }

    #[test]
    fn forwardfor_if_none() {
        let mut rw = xff();
        if let Some(ff) = rw.forward_for.as_mut() {
            ff.if_none = true;
        }
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 1.2.3.4\r\n\r\n",
            &rw,
            &client("192.0.2.7"),
            ConnectionMode::KeepAlive,
        );
        assert!(!out.contains("192.0.2.7"), "{out}");
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            &rw,
            &client("192.0.2.7"),
            ConnectionMode::KeepAlive,
        );
        assert!(out.contains("X-Forwarded-For: 192.0.2.7\r\n"), "{out}");
    }

    #[test]
    fn forwardfor_except_and_custom_header() {
        let rw = RequestRewrite {
            forward_for: Some(ForwardFor {
                header: "X-Client-IP".into(),
                except: vec![
                    "127.0.0.0/8".parse().unwrap(),
                    "10.0.0.0/255.0.0.0".parse().unwrap(),
                ],
                if_none: false,
            }),
            ..Default::default()
        };
        let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(
            !rewrite_req(req, &rw, &client("127.0.0.1"), ConnectionMode::KeepAlive)
                .contains("X-Client-IP")
        );
        assert!(
            !rewrite_req(req, &rw, &client("10.9.8.7"), ConnectionMode::KeepAlive)
                .contains("X-Client-IP")
        );
        assert!(
            rewrite_req(req, &rw, &client("11.0.0.1"), ConnectionMode::KeepAlive)
                .contains("X-Client-IP: 11.0.0.1\r\n")
        );
    }

    #[test]
    fn forwarded_proto_and_port_replace_incoming_ones() {
        let rw = RequestRewrite {
            forward_for: None,
            forwarded_proto: true,
            forwarded_port: true,
        };
        let mut c = client("192.0.2.1");
        c.tls = true;
        let out = rewrite_req(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 1\r\n\r\n",
            &rw,
            &c,
            ConnectionMode::Close,
        );
        assert_eq!(
            out,
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 8443\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn output_buffer_is_appended_and_reusable() {
        let mut p = RequestParser::default();
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let head = p.parse(raw).complete().unwrap();
        let mut out = Vec::with_capacity(256);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            out.clear();
            write_request_head(
                &mut out,
                &head,
                &RequestRewrite::default(),
                &client("10.0.0.1"),
                ConnectionMode::KeepAlive,
            );
        }
        assert_eq!(out, raw);
        assert_eq!(out.as_ptr(), ptr, "no reallocation for a small head");
    }

    fn rewrite_resp(raw: &[u8], client_version: Version, conn: ConnectionMode) -> String {
        let mut p = ResponseParser::default();
        let head = p
            .parse(raw, Method::Get)
            .complete()
            .expect("valid response");
        let mut out = Vec::new();
        write_response_head(&mut out, &head, client_version, conn);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn response_drops_hop_by_hop_and_sets_connection() {
        let out = rewrite_resp(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\nX-Internal: 1\r\nServer: s\r\n\r\n",
            Version::Http11,
            ConnectionMode::Close,
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn response_to_http10_keep_alive_client() {
        let out = rewrite_resp(
            b"HTTP/1.1 204 No Content\r\n\r\n",
            Version::Http10,
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    /// Found by fuzzing (fuzz/corpus/request_head): another token in the
    /// Connection field made the Upgrade field a nominated hop-by-hop
    /// field, dropped even though the upgrade was forwarded.
    #[test]
    fn upgrade_keeps_upgrade_field_when_connection_names_more() {
        let out = rewrite_req(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep.alive, Upgrade\r\nUpgrade: websocket\r\nkeep.alive: 1\r\n\r\n",
            &RequestRewrite::default(),
            &client("10.0.0.1"),
            ConnectionMode::Upgrade,
        );
        assert_eq!(
            out,
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
        let out = rewrite_resp(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, x-trace\r\nx-trace: 1\r\n\r\n",
            Version::Http11,
            ConnectionMode::Upgrade,
        );
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn response_101_keeps_upgrade() {
        let out = rewrite_resp(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
            Version::Http11,
            ConnectionMode::Upgrade,
        );
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn response_reason_kept_byte_for_byte() {
        let out = rewrite_resp(
            b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n",
            Version::Http11,
            ConnectionMode::KeepAlive,
        );
        assert_eq!(
            out,
            String::from_utf8_lossy(b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn network_parsing_and_matching() {
        let n: Network = "192.168.0.0/16".parse().unwrap();
        assert!(n.contains("192.168.44.1".parse().unwrap()));
        assert!(!n.contains("192.169.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        let host: Network = "10.1.2.3".parse().unwrap();
        assert!(host.contains("10.1.2.3".parse().unwrap()));
        assert!(!host.contains("10.1.2.4".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("10.0.0.0/255.0.255.0".parse::<Network>().is_err());
        assert!("nonsense/8".parse::<Network>().is_err());
    }
}
