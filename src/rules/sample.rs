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
    /// What the connection tracks in stick tables (`track-sc*`).
    pub stick: crate::stick::Tracked,
    /// The connection's variables (`set-var`, `var()`).
    pub vars: Rc<super::vars::Vars>,
    /// This core's live state (`nbsrv`, `srv_is_up`).
    pub live: Live,
    /// The current request's unique id (`unique-id-format`; the
    /// `unique-id` fetch), empty without one.
    pub unique_id: std::cell::RefCell<Box<str>>,
    /// What `capture` rules and response header captures took from the
    /// current request (`%hr`, `%hs`).
    pub captures: super::capture::Captured,
    /// `set-log-level` of the current request (`None`: the default).
    pub log_level: std::cell::Cell<Option<super::action::LogLevel>>,
    /// `set-timeout` of the current request.
    pub timeouts: std::cell::Cell<super::action::TxnTimeouts>,
    /// The fields `early-hint` rules gave the current request
    /// (`name: value\r\n` each), for its 103 Early Hints.
    pub early_hints: std::cell::RefCell<Vec<u8>>,
}

/// What rules may read of the proxy's state on this core: the servers a
/// backend can use now (health checks, `set server` from the runtime
/// API), as this core's balancing sees them.
pub trait LiveState {
    /// Servers of the backend that can take traffic.
    fn usable_servers(&self, backend: usize) -> Option<i64>;
    /// Whether the server is up and not in maintenance.
    fn server_up(&self, backend: usize, server: usize) -> Option<bool>;
    /// Connections of the frontend now, over every core (`fe_conn`).
    fn frontend_conns(&self, frontend: usize) -> Option<i64>;
    /// Sessions of the backend now, over every core (`be_conn`).
    fn backend_conns(&self, backend: usize) -> Option<i64>;
}

/// A handle on [`LiveState`]; none in unit tests and benches (then
/// `nbsrv` and `srv_is_up` have no sample). Weak: a connection must not
/// keep its generation of the configuration alive (a strong one made
/// retired generations outlive reloads: tests/reload.rs saw RSS grow).
#[derive(Clone, Default)]
pub struct Live(pub Option<std::rc::Weak<dyn LiveState>>);

impl Live {
    pub fn of<T: LiveState + 'static>(state: &Rc<T>) -> Self {
        let weak: std::rc::Weak<T> = Rc::downgrade(state);
        Live(Some(weak as std::rc::Weak<dyn LiveState>))
    }

    fn get(&self) -> Option<Rc<dyn LiveState>> {
        self.0.as_ref().and_then(std::rc::Weak::upgrade)
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Live"
        } else {
            "Live(none)"
        })
    }
}

/// What the TLS layer learnt from the handshake.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    /// Server name the client sent (SNI), if any.
    pub sni: Option<Box<str>>,
    /// `TLSv1.2` or `TLSv1.3` (`ssl_fc_protocol`).
    pub protocol: Option<&'static str>,
    /// The cipher suite's OpenSSL name, as HAProxy reports it
    /// (`ssl_fc_cipher`).
    pub cipher: Option<&'static str>,
    /// The ALPN protocol agreed on (`ssl_fc_alpn`).
    pub alpn: Option<Box<[u8]>>,
    /// The client's certificate (`ssl_c_*`), read once per connection
    /// (`proxy::http::session` keeps it across idle pauses). Shared: the
    /// streams of an HTTP/2 connection clone the facts.
    pub client_cert: Option<Rc<crate::tls::peer_cert::PeerCert>>,
}

impl TlsFacts {
    /// From what rustls names: `TLSv1_3` is `TLSv1.3`, a cipher suite
    /// gets its OpenSSL name (IANA's when the table lacks it).
    pub fn new(
        sni: Option<&str>,
        (protocol, cipher): (Option<&'static str>, Option<&'static str>),
        alpn: Option<&[u8]>,
    ) -> Self {
        TlsFacts {
            sni: sni.map(Box::from),
            protocol: protocol.map(|p| match p {
                "TLSv1_2" => "TLSv1.2",
                "TLSv1_3" => "TLSv1.3",
                other => other,
            }),
            cipher: cipher.map(|c| {
                OPENSSL_CIPHER_NAMES
                    .iter()
                    .find(|(iana, _)| *iana == c)
                    .map_or(c, |(_, name)| name)
            }),
            alpn: alpn.map(Box::from),
            client_cert: None,
        }
    }

    /// With the certificate the client presented (DER). One that cannot
    /// be read (rustls verified it, so only an unusual encoding could)
    /// counts as none.
    pub fn with_client_cert(mut self, der: Option<&[u8]>) -> Self {
        self.client_cert = der
            .and_then(|d| crate::tls::peer_cert::PeerCert::parse(d).ok())
            .map(Rc::new);
        self
    }
}

/// rustls' cipher suite names -> OpenSSL's (what HAProxy's
/// `ssl_fc_cipher` gives), for every suite rustls offers.
const OPENSSL_CIPHER_NAMES: [(&str, &str); 9] = [
    ("TLS13_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),
    ("TLS13_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"),
    (
        "TLS13_CHACHA20_POLY1305_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ),
];

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
    /// A stick-table counter: `sc_*`, `sc0_*`..`sc2_*`, `src_*`
    /// (`crate::stick::track`).
    Stick(crate::stick::StickFetch),
    /// `var(<scope>.<name>)`: the variable's value, as it was stored.
    Var(super::vars::VarName),
    /// The first Host field followed by the path (`base`).
    Base,
    /// A 32-bit hash of `base` (HAProxy's SDBM loop then avalanche).
    Base32,
    /// The value of a cookie set by the response (`res.cook(<name>)`: the
    /// first `name=value` of each Set-Cookie field).
    ResCook(Box<str>),
    /// `ssl_fc_protocol`: `TLSv1.2`, `TLSv1.3`.
    SslFcProtocol,
    /// `ssl_fc_cipher`: the OpenSSL name of the cipher suite.
    SslFcCipher,
    /// `ssl_fc_alpn`: the ALPN protocol agreed on.
    SslFcAlpn,
    /// `date([<offset>])`: the UNIX time now, plus offset seconds.
    Date(i64),
    /// `rand([<range>])`: a random integer, below range if given (else
    /// 32 bits).
    Rand(Option<u64>),
    /// `env(<name>)`: read once at load (the environment of a running
    /// process does not change); no sample if it is not set.
    Env(Option<Box<[u8]>>),
    /// `hostname`, read at load.
    Hostname(Box<[u8]>),
    /// `unique-id`: the request's `unique-id-format` value; no sample
    /// without one.
    UniqueId,
    /// `nbsrv(<backend>)`: its usable servers, on this core.
    Nbsrv(usize),
    /// `fe_conn`: connections of the frontend now, over every core
    /// (this core's exact count plus the others' last published ones).
    FeConn(usize),
    /// `be_conn`: sessions of the backend now, over every core, as
    /// `FeConn`.
    BeConn(usize),
    /// `srv_is_up(<backend>/<server>)`.
    SrvIsUp {
        backend: usize,
        server: usize,
    },
    /// `req.body*`: the body `option http-buffer-request` waited for.
    Body(super::body_fetch::BodyFetch),
    /// `ssl_c_*`, `ssl_fc_has_crt`: the client's certificate.
    ClientCert(super::cert_fetch::CertFetch),
}

impl Fetch {
    /// Whether the fetch reads only the connection and the proxy's state,
    /// so it has a value when a log line is written.
    pub fn available_at_log(&self) -> bool {
        matches!(
            self,
            Fetch::Src
                | Fetch::SrcPort
                | Fetch::Dst
                | Fetch::DstPort
                | Fetch::FcPpAuthority
                | Fetch::FcPpUniqueId
                | Fetch::SslFc
                | Fetch::SslFcSni
                | Fetch::SslFcProtocol
                | Fetch::SslFcCipher
                | Fetch::SslFcAlpn
                | Fetch::ClientCert(_)
                | Fetch::Stick(_)
                | Fetch::Var(_)
                | Fetch::Date(_)
                | Fetch::Rand(_)
                | Fetch::Env(_)
                | Fetch::Hostname(_)
                | Fetch::Nbsrv(_)
                | Fetch::FeConn(_)
                | Fetch::BeConn(_)
                | Fetch::SrvIsUp { .. }
                | Fetch::UniqueId
        )
    }

    pub fn sample_type(&self) -> SampleType {
        match self {
            Fetch::HdrCnt { .. }
            | Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::Status
            | Fetch::ReqLen
            | Fetch::ReqSslHelloType
            | Fetch::ReqSslVer
            | Fetch::Base32
            | Fetch::Date(_)
            | Fetch::Rand(_)
            | Fetch::Nbsrv(_)
            | Fetch::FeConn(_)
            | Fetch::BeConn(_) => SampleType::Int,
            Fetch::Src | Fetch::Dst => SampleType::Ip,
            Fetch::SslFc | Fetch::HttpAuth(_) | Fetch::SrvIsUp { .. } => SampleType::Bool,
            Fetch::Stick(s) => s.sample_type(),
            Fetch::Body(b) => b.sample_type(),
            Fetch::ClientCert(c) => c.sample_type(),
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
            Fetch::Stick(s) => s.any(facts, &mut f),
            Fetch::Var(name) => facts.conn.vars.get(name, f).unwrap_or(false),
            Fetch::Base | Fetch::Base32 => {
                let Some(r) = req else { return false };
                let Some(host) = r.headers.find("host") else {
                    return false;
                };
                let mut base = Vec::with_capacity(host.len() + r.path.len());
                base.extend_from_slice(trim(host));
                base.extend_from_slice(r.path.as_bytes());
                if matches!(self, Fetch::Base) {
                    return f(Sample::Str(&base));
                }
                let hash = super::convert_ops::sdbm(&base);
                f(Sample::Int(i64::from(super::convert_ops::avalanche(hash))))
            }
            Fetch::ResCook(name) => {
                let Some(r) = facts.res else { return false };
                r.headers.iter().any(|(n, v)| {
                    n.eq_ignore_ascii_case(b"set-cookie")
                        && v.split(|&b| b == b';').next().is_some_and(|pair| {
                            cookie_value(pair, name.as_bytes()).is_some_and(|c| f(Sample::Str(c)))
                        })
                })
            }
            Fetch::SslFcProtocol => tls_str(facts, |t| t.protocol.map(str::as_bytes), f),
            Fetch::SslFcCipher => tls_str(facts, |t| t.cipher.map(str::as_bytes), f),
            Fetch::SslFcAlpn => tls_str(facts, |t| t.alpn.as_deref(), f),
            Fetch::Date(offset) => f(Sample::Int(
                super::convert_ops::unix_now().saturating_add(*offset),
            )),
            Fetch::Rand(range) => {
                let r = u64::from(random_u32());
                let v = match range {
                    Some(n) => (r * n) >> 32,
                    None => r,
                };
                f(Sample::Int(v as i64))
            }
            Fetch::Env(value) => value.as_deref().is_some_and(|v| f(Sample::Str(v))),
            Fetch::Hostname(name) => f(Sample::Str(name)),
            Fetch::UniqueId => {
                let id = facts.conn.unique_id.borrow();
                !id.is_empty() && f(Sample::Str(id.as_bytes()))
            }
            Fetch::Nbsrv(backend) => facts
                .conn
                .live
                .get()
                .and_then(|l| l.usable_servers(*backend))
                .is_some_and(|n| f(Sample::Int(n))),
            Fetch::FeConn(frontend) => facts
                .conn
                .live
                .get()
                .and_then(|l| l.frontend_conns(*frontend))
                .is_some_and(|n| f(Sample::Int(n))),
            Fetch::BeConn(backend) => facts
                .conn
                .live
                .get()
                .and_then(|l| l.backend_conns(*backend))
                .is_some_and(|n| f(Sample::Int(n))),
            Fetch::SrvIsUp { backend, server } => facts
                .conn
                .live
                .get()
                .and_then(|l| l.server_up(*backend, *server))
                .is_some_and(|up| f(Sample::Bool(up))),
            Fetch::Body(b) => b.any(facts, &mut f),
            Fetch::ClientCert(c) => c.any(facts, &mut f),
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

fn tls_str(
    facts: &Facts<'_>,
    pick: impl FnOnce(&TlsFacts) -> Option<&[u8]>,
    f: impl FnOnce(Sample<'_>) -> bool,
) -> bool {
    facts
        .conn
        .tls
        .as_ref()
        .and_then(pick)
        .is_some_and(|v| f(Sample::Str(v)))
}

/// A fast per-core random number (xorshift32) for `rand`: not for
/// secrets, as HAProxy's `rand` is not either.
fn random_u32() -> u32 {
    thread_local! {
        static STATE: Cell<u32> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9, |d| d.subsec_nanos() | 1)
                ^ (std::process::id() << 16),
        );
    }
    STATE.with(|s| {
        let mut x = s.get().max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s.set(x);
        x
    })
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
