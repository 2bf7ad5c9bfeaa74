//! Request and response heads.
//!
//! Properties, for any bytes:
//! - a complete head is complete at the same length, with the same
//!   meaning, whatever follows it; every shorter prefix is `Partial` (a
//!   head read in pieces is never refused for where a read ended);
//! - written back in canonical form (CRLF, `name: value`) it parses to
//!   the same head;
//! - what the proxy writes to the other side (`write_request_head` with
//!   every rewrite on, `write_response_head`) parses, keeps the method,
//!   target, status, framing and Host, and carries no hop-by-hop field.

use std::net::{IpAddr, Ipv4Addr};

use crate::http::{
    write_request_head, write_response_head, BodyFraming, ClientSide, ConnectionMode, ForwardFor,
    HeadLimits, Method, ParseStatus, RequestHead, RequestParser, RequestRewrite, ResponseHead,
    ResponseParser, Version,
};

/// What a request head means, owned, for comparing two parses.
#[derive(Debug, PartialEq, Eq)]
struct RequestMeaning {
    method: String,
    target: String,
    form: String,
    path: String,
    query: Option<String>,
    version: Version,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    framing: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
}

impl RequestMeaning {
    fn of(h: &RequestHead<'_>) -> Self {
        RequestMeaning {
            method: h.method.to_string(),
            target: h.target.to_string(),
            form: format!("{:?}", h.form),
            path: h.path.to_string(),
            query: h.query.map(str::to_string),
            version: h.version,
            headers: owned_fields(h.headers.iter()),
            framing: h.framing,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
            upgrade: h.upgrade.map(<[u8]>::to_vec),
            host: h.host.map(<[u8]>::to_vec),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct ResponseMeaning {
    version: Version,
    status: u16,
    reason: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    framing: BodyFraming,
    keep_alive: bool,
    upgrade: Option<Vec<u8>>,
}

impl ResponseMeaning {
    fn of(h: &ResponseHead<'_>) -> Self {
        ResponseMeaning {
            version: h.version,
            status: h.status,
            reason: h.reason.to_vec(),
            headers: owned_fields(h.headers.iter()),
            framing: h.framing,
            keep_alive: h.keep_alive,
            upgrade: h.upgrade.map(<[u8]>::to_vec),
        }
    }
}

fn owned_fields<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields.map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

fn write_fields(out: &mut Vec<u8>, fields: &[(Vec<u8>, Vec<u8>)]) {
    for (n, v) in fields {
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Fields the proxy never forwards as they are.
const HOP_BY_HOP: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
];

fn hop_by_hop_left(fields: &[(Vec<u8>, Vec<u8>)], upgrade_kept: bool) -> Option<String> {
    fields.iter().find_map(|(n, v)| {
        let hop = HOP_BY_HOP
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h.as_bytes()));
        let allowed = (upgrade_kept && n.eq_ignore_ascii_case(b"upgrade"))
            || (n.eq_ignore_ascii_case(b"connection")
                && matches!(
                    v.to_ascii_lowercase().as_slice(),
                    b"close" | b"keep-alive" | b"upgrade"
                ));
        (hop && !allowed).then(|| String::from_utf8_lossy(n).into_owned())
    })
}

/// Limits for reading back what was rewritten: the canonical form may be
/// longer than what was received (`: ` and CRLF for `:` and LF), and the
/// proxy adds up to four fields (Connection, X-Forwarded-For, -Proto,
/// -Port). The peer's limits are its own; a head received at percore's
/// limit and sent slightly over it is not a fault (found as a false
/// positive by response_head).
fn rewritten_limits() -> HeadLimits {
    let d = HeadLimits::default();
    HeadLimits {
        max_head_bytes: d.max_head_bytes * 2,
        max_headers: d.max_headers + 8,
    }
}

/// Split points checked for the "prefix is Partial" property: all of
/// them for small heads, a sample for large ones (quadratic otherwise).
fn cut_points(len: usize) -> impl Iterator<Item = usize> {
    let step = if len <= 1024 { 1 } else { len / 256 };
    (0..len).step_by(step.max(1))
}

pub fn request_head(data: &[u8]) {
    let mut parser = RequestParser::default();
    let mut again = RequestParser::new(rewritten_limits());
    let head = match parser.parse(data) {
        ParseStatus::Complete(h) => h,
        ParseStatus::Partial | ParseStatus::Error(_) => return,
    };
    let meaning = RequestMeaning::of(&head);

    // The bytes after the head do not change it.
    let exact = &data[..head.head_len];
    match again.parse(exact) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, head.head_len);
            assert_eq!(
                RequestMeaning::of(&h),
                meaning,
                "trailing bytes changed the head"
            );
        }
        other => panic!("the head alone parses as {other:?}"),
    }
    for cut in cut_points(head.head_len) {
        let status = again.parse(&data[..cut]);
        assert!(
            status.is_partial(),
            "prefix of {cut} of a {}-byte head: {status:?}",
            head.head_len
        );
    }

    // Canonical form parses to the same head.
    let mut canonical = Vec::new();
    canonical.extend_from_slice(
        format!(
            "{} {} {}\r\n",
            head.method,
            head.target,
            head.version.as_str()
        )
        .as_bytes(),
    );
    write_fields(&mut canonical, &meaning.headers);
    match again.parse(&canonical) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, canonical.len());
            assert_eq!(RequestMeaning::of(&h), meaning, "canonical form differs");
        }
        other => panic!(
            "canonical form {:?} parses as {other:?}",
            String::from_utf8_lossy(&canonical)
        ),
    }

    // What the proxy sends to the server.
    let mode = if head.upgrade.is_some() {
        ConnectionMode::Upgrade
    } else if head.keep_alive {
        ConnectionMode::KeepAlive
    } else {
        ConnectionMode::Close
    };
    let rewrite = RequestRewrite {
        forward_for: Some(ForwardFor::default()),
        forwarded_proto: true,
        forwarded_port: true,
    };
    let client = ClientSide {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        local_port: 8080,
        tls: false,
    };
    let mut out = Vec::new();
    write_request_head(&mut out, &head, &rewrite, &client, mode);
    match again.parse(&out) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, out.len());
            let sent = RequestMeaning::of(&h);
            assert_eq!(
                (
                    &sent.method,
                    &sent.target,
                    sent.version,
                    sent.framing,
                    &sent.host
                ),
                (
                    &meaning.method,
                    &meaning.target,
                    meaning.version,
                    meaning.framing,
                    &meaning.host
                ),
                "the head sent to the server means another request"
            );
            if let Some(name) = hop_by_hop_left(&sent.headers, mode == ConnectionMode::Upgrade) {
                panic!("hop-by-hop field {name} forwarded");
            }
            match mode {
                ConnectionMode::KeepAlive => assert!(sent.keep_alive),
                ConnectionMode::Close => assert!(!sent.keep_alive),
                ConnectionMode::Upgrade => assert_eq!(sent.upgrade, meaning.upgrade),
            }
        }
        other => panic!(
            "the head sent to the server {:?} parses as {other:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}

pub fn response_head(data: &[u8]) {
    // The first byte picks the request method the response answers
    // (HEAD and CONNECT change the framing).
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let method =
        [Method::Get, Method::Head, Method::Connect, Method::Post][usize::from(selector % 4)];
    let mut parser = ResponseParser::default();
    let mut again = ResponseParser::new(rewritten_limits());
    let head = match parser.parse(data, method) {
        ParseStatus::Complete(h) => h,
        ParseStatus::Partial | ParseStatus::Error(_) => return,
    };
    let meaning = ResponseMeaning::of(&head);

    match again.parse(&data[..head.head_len], method) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, head.head_len);
            assert_eq!(
                ResponseMeaning::of(&h),
                meaning,
                "trailing bytes changed the head"
            );
        }
        other => panic!("the head alone parses as {other:?}"),
    }
    for cut in cut_points(head.head_len) {
        let status = again.parse(&data[..cut], method);
        assert!(
            status.is_partial(),
            "prefix of {cut} of a {}-byte head: {status:?}",
            head.head_len
        );
    }

    let mut canonical = Vec::new();
    canonical
        .extend_from_slice(format!("{} {:03} ", head.version.as_str(), head.status).as_bytes());
    canonical.extend_from_slice(head.reason);
    canonical.extend_from_slice(b"\r\n");
    write_fields(&mut canonical, &meaning.headers);
    match again.parse(&canonical, method) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, canonical.len());
            assert_eq!(ResponseMeaning::of(&h), meaning, "canonical form differs");
        }
        other => panic!(
            "canonical form {:?} parses as {other:?}",
            String::from_utf8_lossy(&canonical)
        ),
    }

    // What the proxy sends to the client (always as HTTP/1.1).
    let mode = if head.is_switching_protocols() {
        ConnectionMode::Upgrade
    } else if head.keep_alive {
        ConnectionMode::KeepAlive
    } else {
        ConnectionMode::Close
    };
    let mut out = Vec::new();
    write_response_head(&mut out, &head, Version::Http11, mode);
    match again.parse(&out, method) {
        ParseStatus::Complete(h) => {
            assert_eq!(h.head_len, out.len());
            let sent = ResponseMeaning::of(&h);
            // A 1.0 response without length runs until close; sent as
            // 1.1 it still does (no Content-Length, no chunked).
            assert_eq!(
                (sent.status, &sent.reason, sent.framing),
                (meaning.status, &meaning.reason, meaning.framing),
                "the head sent to the client means another response"
            );
            if let Some(name) = hop_by_hop_left(&sent.headers, mode == ConnectionMode::Upgrade) {
                panic!("hop-by-hop field {name} forwarded");
            }
        }
        other => panic!(
            "the head sent to the client {:?} parses as {other:?}",
            String::from_utf8_lossy(&out)
        ),
    }
}
