//! Sample fetches: what an ACL or a `%[...]` value reads from a request,
//! a response or the connection (HAProxy's "fetch methods").
//!
//! Fetches hand their samples to a callback instead of collecting them, so
//! evaluating a rule never allocates: a header value is a slice of the
//! receive buffer, a number or an address is a value.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;

use crate::net::proxy_protocol::Tlvs;

use super::auth::Userlist;
use super::tls_hello::{self, Hello};
use crate::http::{RequestHead, ResponseHead, Version};

/// Facts about the client connection. TLS is terminated by percore only
/// once TLS support lands; until then `tls` is `None`, so `ssl_fc` is false
/// and `ssl_fc_sni` has no sample.
#[derive(Debug, Clone)]
pub struct ConnFacts {
    pub src: SocketAddr,
    /// The local address the client connected to.
    pub dst: SocketAddr,
    pub tls: Option<TlsFacts>,
    /// The TLVs of the connection's PROXY v2 header, if it had any.
    pub pp: Option<Rc<Tlvs>>,
    /// The connection's variables (`set-var`, `var()`).
    pub vars: Rc<super::vars::Vars>,
}

/// What the TLS layer learnt from the handshake.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    /// Server name the client sent (SNI), if any.
    pub sni: Option<Box<str>>,
}

/// Everything a rule may read. Request rules see `req`; response rules see
/// `res` (and no request: its head is gone once it was forwarded);
/// `tcp-request content` rules see `payload`.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub conn: &'a ConnFacts,
    pub req: Option<&'a RequestHead<'a>>,
    pub res: Option<&'a ResponseHead<'a>>,
    pub payload: Option<Payload<'a>>,
}

/// The bytes a client sent so far, looked at (not consumed) by
/// `tcp-request content` rules: `req.len`, `req.payload`, `req.ssl_*`.
#[derive(Clone, Copy)]
pub struct Payload<'a> {
    pub data: &'a [u8],
    /// No more bytes will be waited for (the inspect delay ran out, the
    /// buffer is full, or the client closed): what a fetch sees is final.
    pub last: bool,
    /// Set by a fetch whose answer could change with more bytes (HAProxy's
    /// SMP_F_MAY_CHANGE): the rule is then evaluated again when more come.
    pub more: &'a Cell<bool>,
}

impl Payload<'_> {
    fn may_change(&self) {
        if !self.last {
            self.more.set(true);
        }
    }
}

impl<'a> Facts<'a> {
    pub fn request(conn: &'a ConnFacts, req: &'a RequestHead<'a>) -> Self {
        Facts {
            conn,
            req: Some(req),
            res: None,
            payload: None,
        }
    }

    pub fn response(conn: &'a ConnFacts, res: &'a ResponseHead<'a>) -> Self {
        Facts {
            conn,
            req: None,
            res: Some(res),
            payload: None,
        }
    }

    /// For `tcp-request` rules: the connection, and the client's first
    /// bytes in content rules.
    pub fn content(conn: &'a ConnFacts, payload: Option<Payload<'a>>) -> Self {
        Facts {
            conn,
            req: None,
            res: None,
            payload,
        }
    }
}

/// One value produced by a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample<'a> {
    Str(&'a [u8]),
    Int(i64),
    Ip(IpAddr),
    Bool(bool),
}

/// The type of a fetch's samples, which decides its default match method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    Str,
    Int,
    Ip,
    Bool,
}

/// Which message a header fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `hdr()`: the request in request rules, the response in response
    /// rules (as HAProxy's `hdr`).
    Current,
    /// `req.hdr()`
    Request,
    /// `res.hdr()`
    Response,
}

/// A compiled fetch.
#[derive(Debug, Clone)]
pub enum Fetch {
    /// Each comma-separated value of every field named so (HAProxy `hdr`),
    /// or only the `occ`-th of them (`hdr(name,occ)`: 1 is the first, -1
    /// the last).
    Hdr {
        name: Box<str>,
        side: Side,
        occ: Option<i32>,
    },
    /// How many comma-separated values the fields named so hold.
    HdrCnt {
        name: Box<str>,
        side: Side,
    },
    /// Path without the query.
    Path,
    /// The request target as received.
    Url,
    /// The value of a query-string parameter.
    UrlParam(Box<str>),
    /// The query string without `?`.
    Query,
    Method,
    /// `1.0` or `1.1`.
    ReqVer,
    Src,
    SrcPort,
    /// The address the client connected to (the PROXY header's when one
    /// carried it).
    Dst,
    DstPort,
    /// The authority TLV of the PROXY v2 header (HAProxy
    /// `fc_pp_authority`).
    FcPpAuthority,
    /// The unique-id TLV of the PROXY v2 header (`fc_pp_unique_id`).
    FcPpUniqueId,
    SslFc,
    SslFcSni,
    /// The value of a cookie in the Cookie header.
    ReqCook(Box<str>),
    /// True if the request's basic-auth credentials are valid in the list.
    HttpAuth(Arc<Userlist>),
    /// The response status (response rules).
    Status,
    /// Bytes the client sent so far (`req.len`; content rules).
    ReqLen,
    /// `req.payload(<offset>,<length>)`: those bytes once there; length
    /// 0 is everything from the offset.
    ReqPayload {
        offset: usize,
        len: usize,
    },
    /// The handshake type of a TLS record the client starts with
    /// (`req.ssl_hello_type`: 1 for a ClientHello).
    ReqSslHelloType,
    /// The SNI of the client's ClientHello (`req.ssl_sni`).
    ReqSslSni,
    /// The ClientHello's version, e.g. 0x0303 = 771 (`req.ssl_ver`).
    ReqSslVer,
    /// Each protocol of the ClientHello's ALPN list (`req.ssl_alpn`).
    ReqSslAlpn,
    /// `var(<scope>.<name>)`: the variable's value, as it was stored.
    Var(super::vars::VarName),
}

impl Fetch {
    pub fn sample_type(&self) -> SampleType {
        match self {
            Fetch::HdrCnt { .. }
            | Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::Status
            | Fetch::ReqLen
            | Fetch::ReqSslHelloType
            | Fetch::ReqSslVer => SampleType::Int,
            Fetch::Src | Fetch::Dst => SampleType::Ip,
            Fetch::SslFc | Fetch::HttpAuth(_) => SampleType::Bool,
            _ => SampleType::Str,
        }
    }

    /// Calls `f` with each sample until it returns true; returns whether it
    /// did.
    pub fn any<'a>(&self, facts: &Facts<'a>, mut f: impl FnMut(Sample<'_>) -> bool) -> bool {
        let req = facts.req;
        match self {
            Fetch::Hdr { name, side, occ } => {
                let Some(headers) = headers_of(facts, *side) else {
                    return false;
                };
                if let Some(occ) = *occ {
                    return nth_value(headers, name, occ).is_some_and(|v| f(Sample::Str(v)));
                }
                for (n, v) in headers.iter() {
                    if n.eq_ignore_ascii_case(name.as_bytes()) {
                        for value in comma_values(v) {
                            if f(Sample::Str(value)) {
                                return true;
                            }
                        }
                    }
                }
                false
            }
            Fetch::HdrCnt { name, side } => {
                let Some(headers) = headers_of(facts, *side) else {
                    return false;
                };
                let count = headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                    .map(|(_, v)| comma_values(v).count() as i64)
                    .sum();
                f(Sample::Int(count))
            }
            Fetch::Path => req.is_some_and(|r| f(Sample::Str(r.path.as_bytes()))),
            Fetch::Url => req.is_some_and(|r| f(Sample::Str(r.target.as_bytes()))),
            Fetch::Query => req
                .and_then(|r| r.query)
                .is_some_and(|q| f(Sample::Str(q.as_bytes()))),
            Fetch::UrlParam(name) => req
                .and_then(|r| r.query)
                .and_then(|q| url_param(q.as_bytes(), name.as_bytes()))
                .is_some_and(|v| f(Sample::Str(v))),
            Fetch::Method => req.is_some_and(|r| f(Sample::Str(r.method.as_bytes()))),
            Fetch::ReqVer => req.is_some_and(|r| {
                f(Sample::Str(match r.version {
                    Version::Http10 => b"1.0",
                    Version::Http11 => b"1.1",
                }))
            }),
            Fetch::Src => f(Sample::Ip(facts.conn.src.ip().to_canonical())),
            Fetch::SrcPort => f(Sample::Int(i64::from(facts.conn.src.port()))),
            Fetch::Dst => f(Sample::Ip(facts.conn.dst.ip().to_canonical())),
            Fetch::DstPort => f(Sample::Int(i64::from(facts.conn.dst.port()))),
            Fetch::FcPpAuthority => facts
                .conn
                .pp
                .as_ref()
                .and_then(|t| t.authority.as_deref())
                .is_some_and(|v| f(Sample::Str(v))),
            Fetch::FcPpUniqueId => facts
                .conn
                .pp
                .as_ref()
                .and_then(|t| t.unique_id.as_deref())
                .is_some_and(|v| f(Sample::Str(v))),
            Fetch::SslFc => f(Sample::Bool(facts.conn.tls.is_some())),
            Fetch::SslFcSni => facts
                .conn
                .tls
                .as_ref()
                .and_then(|t| t.sni.as_deref())
                .is_some_and(|sni| f(Sample::Str(sni.as_bytes()))),
            Fetch::ReqCook(name) => {
                let Some(r) = req else { return false };
                for (n, v) in r.headers.iter() {
                    if n.eq_ignore_ascii_case(b"cookie") {
                        if let Some(value) = cookie_value(v, name.as_bytes()) {
                            if f(Sample::Str(value)) {
                                return true;
                            }
                        }
                    }
                }
                false
            }
            Fetch::HttpAuth(list) => {
                let ok = req
                    .and_then(|r| r.headers.find("authorization"))
                    .is_some_and(|a| list.check_authorization(a));
                f(Sample::Bool(ok))
            }
            Fetch::Status => facts
                .res
                .is_some_and(|r| f(Sample::Int(i64::from(r.status)))),
            Fetch::ReqLen => facts.payload.is_some_and(|p| {
                let matched = f(Sample::Int(p.data.len() as i64));
                if !matched {
                    p.may_change();
                }
                matched
            }),
            Fetch::ReqPayload { offset, len } => facts.payload.is_some_and(|p| {
                let end = if *len == 0 {
                    p.data.len()
                } else {
                    offset + len
                };
                let Some(bytes) = p.data.get(*offset..end).filter(|b| !b.is_empty()) else {
                    p.may_change();
                    return false;
                };
                let matched = f(Sample::Str(bytes));
                if !matched && *len == 0 {
                    p.may_change();
                }
                matched
            }),
            Fetch::ReqSslHelloType | Fetch::ReqSslSni | Fetch::ReqSslVer | Fetch::ReqSslAlpn => {
                let Some(p) = facts.payload else { return false };
                let hello = match tls_hello::parse(p.data) {
                    Hello::Record(h) => h,
                    Hello::Incomplete => {
                        p.may_change();
                        return false;
                    }
                    Hello::NotTls => return false,
                };
                match self {
                    Fetch::ReqSslHelloType => f(Sample::Int(i64::from(hello.msg_type))),
                    Fetch::ReqSslVer => f(Sample::Int(i64::from(hello.version))),
                    Fetch::ReqSslSni => hello.sni.is_some_and(|s| f(Sample::Str(s))),
                    _ => hello
                        .alpn
                        .is_some_and(|list| tls_hello::alpn_names(list).any(|n| f(Sample::Str(n)))),
                }
            }
            Fetch::Var(name) => facts.conn.vars.get(name, f).unwrap_or(false),
        }
    }

    /// Whether this fetch reads the client's first bytes (valid only in
    /// `tcp-request content` rules and TCP `use_backend`).
    pub fn reads_payload(&self) -> bool {
        matches!(
            self,
            Fetch::ReqLen
                | Fetch::ReqPayload { .. }
                | Fetch::ReqSslHelloType
                | Fetch::ReqSslSni
                | Fetch::ReqSslVer
                | Fetch::ReqSslAlpn
        )
    }
}

fn headers_of<'a>(facts: &Facts<'a>, side: Side) -> Option<crate::http::Headers<'a>> {
    match side {
        Side::Request => facts.req.map(|r| r.headers),
        Side::Response => facts.res.map(|r| r.headers),
        Side::Current => facts
            .res
            .map(|r| r.headers)
            .or_else(|| facts.req.map(|r| r.headers)),
    }
}

/// The `occ`-th comma-separated value of the fields named `name`, counted
/// from the first (1, 2, ...) or from the last (-1, -2, ...), as HAProxy's
/// `hdr(name,occ)`.
fn nth_value<'a>(headers: crate::http::Headers<'a>, name: &str, occ: i32) -> Option<&'a [u8]> {
    let values = || {
        (0..headers.len())
            .filter_map(move |i| headers.get(i))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|(_, v)| comma_values(v))
    };
    if occ > 0 {
        values().nth(occ as usize - 1)
    } else {
        let back = occ.unsigned_abs() as usize;
        values()
            .count()
            .checked_sub(back)
            .and_then(|i| values().nth(i))
    }
}

/// The comma-separated values of a field, trimmed, empty ones skipped.
/// Quoted commas are not special-cased, as in HAProxy's `hdr`.
pub(crate) fn comma_values(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|v| !v.is_empty())
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The value of `name` in a query string (`a=1&b=2`); the first one wins.
pub fn url_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (k == name).then_some(v)
    })
}

/// The value of cookie `name` in one Cookie field (`a=1; b=2`).
pub fn cookie_value<'c>(field: &'c [u8], name: &[u8]) -> Option<&'c [u8]> {
    field.split(|&b| b == b';').find_map(|pair| {
        let pair = trim(pair);
        let eq = pair.iter().position(|&b| b == b'=')?;
        (trim(&pair[..eq]) == name).then(|| trim(&pair[eq + 1..]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_params_and_cookies() {
        assert_eq!(url_param(b"a=1&tableId=42&b", b"tableId"), Some(&b"42"[..]));
        assert_eq!(url_param(b"a=1&b", b"b"), Some(&b""[..]));
        assert_eq!(url_param(b"a=1", b"tableId"), None);
        assert_eq!(cookie_value(b"x=1; SRV=s2 ; y=3", b"SRV"), Some(&b"s2"[..]));
        assert_eq!(cookie_value(b"x=1", b"SRV"), None);
    }

    #[test]
    fn comma_values_are_trimmed() {
        let v: Vec<&[u8]> = comma_values(b" a, b ,,c").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c"]);
    }
}
