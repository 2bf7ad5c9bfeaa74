//! Request head parsing and validation.
//!
//! httparse finds the structure; everything that matters for smuggling is
//! then checked here again, whatever httparse accepted (see the
//! `httparse_alone` test for which cases httparse already refuses).

use super::head::{
    diagnose, persistent, scan_fields, upgrade_request, with_header_storage, BodyFraming,
    HeadError, HeadLimits, HeaderSpan, Headers, ParseStatus, Version, H2_PREFACE_LINE,
};
use super::syntax::{is_token, is_valid_target, trim_ows};

/// Status answered for every refused request head. HAProxy 2.6 answers 400
/// for all of its request parsing errors, an oversized head included (it
/// has no 431 there).
pub const REJECT_STATUS: u16 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    /// Any other valid token; the text is in `RequestHead::method`.
    Other,
}

impl Method {
    pub fn from_token(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// The four request-target forms of RFC 9112 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm<'a> {
    /// `/path?query`
    Origin,
    /// `scheme://authority/path?query`
    Absolute { scheme: &'a str, authority: &'a str },
    /// `host:port`, CONNECT only.
    Authority,
    /// `*`, OPTIONS only (not enforced, as HAProxy).
    Asterisk,
}

#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The method token exactly as received.
    pub method: &'a str,
    pub method_kind: Method,
    /// The request-target exactly as received.
    pub target: &'a str,
    pub form: TargetForm<'a>,
    /// Path part of the target (empty for authority-form; may be empty for
    /// `http://host` absolute-form).
    pub path: &'a str,
    /// Query without the `?`.
    pub query: Option<&'a str>,
    pub version: Version,
    pub headers: Headers<'a>,
    pub framing: BodyFraming,
    /// The client may send another request on this connection afterwards.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// The Upgrade value when Connection holds `upgrade` (HTTP/1.1 only).
    pub upgrade: Option<&'a [u8]>,
    /// Host header value (OWS trimmed), else the absolute-form authority.
    pub host: Option<&'a [u8]>,
    /// Bytes of the head, final blank line included; the body starts here.
    pub head_len: usize,
    /// The start of the body, waited for before the rules ran (`option
    /// http-buffer-request`; at most what fits in the buffer), de-chunked:
    /// what `req.body` reads. `None` without the option (never set by the
    /// parser).
    pub body: Option<&'a [u8]>,
}

impl RequestHead<'_> {
    /// The upgrade asks for websocket (`Connection: upgrade` +
    /// `Upgrade: websocket`).
    pub fn is_websocket_upgrade(&self) -> bool {
        self.upgrade.is_some_and(super::head::is_websocket)
    }
}

/// Parses request heads; keeps its header storage across calls so steady
/// state parsing does not allocate. One per core (or per connection).
#[derive(Debug)]
pub struct RequestParser {
    limits: HeadLimits,
    spans: Vec<HeaderSpan>,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new(HeadLimits::default())
    }
}

/// What httparse gave us, before our own semantic checks.
struct Parsed<'a> {
    method: &'a str,
    target: &'a str,
    minor: u8,
    head_len: usize,
    facts: super::head::FieldFacts<'a>,
}

impl RequestParser {
    pub fn new(limits: HeadLimits) -> Self {
        RequestParser {
            limits,
            spans: Vec::with_capacity(limits.max_headers.min(128)),
        }
    }

    pub fn limits(&self) -> HeadLimits {
        self.limits
    }

    /// Parses the head at the start of `buf` (everything received so far).
    /// Bytes after the head (body, pipelined requests) are left alone.
    pub fn parse<'a>(&'a mut self, buf: &'a [u8]) -> ParseStatus<RequestHead<'a>> {
        let limit = self.limits.max_head_bytes;
        let window = &buf[..buf.len().min(limit)];
        if window.starts_with(H2_PREFACE_LINE) {
            return ParseStatus::Error(HeadError::Http2Preface);
        }
        let spans = &mut self.spans;
        let parsed = with_header_storage(self.limits.max_headers, |storage| {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(window, storage) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let (Some(method), Some(target), Some(minor)) =
                        (req.method, req.path, req.version)
                    else {
                        return Err(HeadError::BadRequestLine);
                    };
                    let facts = scan_fields(window, req.headers, spans)?;
                    Ok(Some(Parsed {
                        method,
                        target,
                        minor,
                        head_len,
                        facts,
                    }))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(e) => Err(diagnose(window, e, true)),
            }
        });
        let parsed = match parsed {
            Ok(Some(p)) => p,
            Ok(None) if buf.len() >= limit => return ParseStatus::Error(HeadError::HeadTooLarge),
            Ok(None) => return ParseStatus::Partial,
            Err(e) => return ParseStatus::Error(e),
        };
        match validate(parsed, Headers::new(window, &self.spans)) {
            Ok(head) => ParseStatus::Complete(head),
            Err(e) => ParseStatus::Error(e),
        }
    }
}

fn validate<'a>(p: Parsed<'a>, headers: Headers<'a>) -> Result<RequestHead<'a>, HeadError> {
    if !is_token(p.method.as_bytes()) {
        return Err(HeadError::InvalidMethod);
    }
    if !is_valid_target(p.target.as_bytes()) {
        return Err(HeadError::InvalidTarget);
    }
    let version = Version::from_minor(p.minor).ok_or(HeadError::UnsupportedVersion)?;
    let method_kind = Method::from_token(p.method);
    let (form, path, query) = split_target(method_kind, p.target)?;
    let facts = p.facts;

    if facts.host_count > 1 {
        return Err(HeadError::MultipleHost);
    }
    let host_field = facts.host.map(trim_ows);
    if version == Version::Http11 && host_field.is_none() {
        return Err(HeadError::MissingHost);
    }
    let mut host = host_field;
    if let TargetForm::Absolute { authority, .. } = form {
        let authority = strip_userinfo(authority).as_bytes();
        match host_field {
            Some(h) if !h.eq_ignore_ascii_case(authority) => return Err(HeadError::HostMismatch),
            Some(_) => {}
            None => host = Some(authority),
        }
    }

    let framing = if facts.transfer_encoding {
        if version == Version::Http10 {
            return Err(HeadError::TransferEncodingInHttp10);
        }
        if facts.content_length.is_some() {
            return Err(HeadError::ContentLengthWithTransferEncoding);
        }
        if facts.chunked_count > 1 {
            return Err(HeadError::ChunkedTwice);
        }
        if !facts.chunked_final {
            return Err(HeadError::TransferEncodingNotChunked);
        }
        BodyFraming::Chunked
    } else if let Some(n) = facts.content_length {
        BodyFraming::ContentLength(n)
    } else {
        BodyFraming::None
    };

    Ok(RequestHead {
        method: p.method,
        method_kind,
        target: p.target,
        form,
        path,
        query,
        version,
        headers,
        framing,
        keep_alive: persistent(&facts, version),
        expect_continue: facts.expect_continue && version == Version::Http11,
        upgrade: upgrade_request(&facts, version),
        host,
        head_len: p.head_len,
        body: None,
    })
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

pub(crate) fn split_target(
    method: Method,
    target: &str,
) -> Result<(TargetForm<'_>, &str, Option<&str>), HeadError> {
    if method == Method::Connect {
        // authority-form: host:port, nothing else.
        if target.starts_with('/') || target.contains(['/', '?', '#']) || !target.contains(':') {
            return Err(HeadError::InvalidTarget);
        }
        return Ok((TargetForm::Authority, "", None));
    }
    if target == "*" {
        return Ok((TargetForm::Asterisk, "*", None));
    }
    if target.starts_with('/') {
        let (path, query) = split_query(target);
        return Ok((TargetForm::Origin, path, query));
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(HeadError::InvalidTarget);
    };
    let scheme_ok = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err(HeadError::InvalidTarget);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(end);
    if strip_userinfo(authority).is_empty() {
        return Err(HeadError::InvalidTarget);
    }
    let (path, query) = split_query(path_query);
    Ok((TargetForm::Absolute { scheme, authority }, path, query))
}

/// HAProxy compares Host with the authority without its userinfo.
pub(crate) fn strip_userinfo(authority: &str) -> &str {
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> ParseStatus<RequestHead<'_>> {
        // Leak a parser per test input: keeps the helper signature simple.
        let p: &'static mut RequestParser = Box::leak(Box::default());
        p.parse(buf)
    }

    fn ok(buf: &[u8]) -> RequestHead<'_> {
        match parse(buf) {
            ParseStatus::Complete(h) => h,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    fn rejected(buf: &[u8]) -> HeadError {
        match parse(buf) {
            ParseStatus::Error(e) => e,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// Asserts the request is refused with 400 for `want`.
    fn assert_400(buf: &[u8], want: HeadError) {
        assert_eq!(REJECT_STATUS, 400);
        assert_eq!(
            rejected(buf),
            want,
            "for {:?}",
            String::from_utf8_lossy(buf)
        );
    }

    const BROWSER: &[u8] = b"GET /search?q=percore&lang=en HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Connection: keep-alive\r\n\
Cookie: session=abc123; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
\r\n";

    #[test]
    fn parses_browser_request() {
        let h = ok(BROWSER);
        assert_eq!(h.method, "GET");
        assert_eq!(h.method_kind, Method::Get);
        assert_eq!(h.target, "/search?q=percore&lang=en");
        assert_eq!(h.path, "/search");
        assert_eq!(h.query, Some("q=percore&lang=en"));
        assert_eq!(h.form, TargetForm::Origin);
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.len(), 8);
        assert_eq!(
            h.headers.get(0),
            Some((&b"Host"[..], &b"www.example.com"[..]))
        );
        assert_eq!(
            h.headers.get(7),
            Some((&b"Upgrade-Insecure-Requests"[..], &b"1"[..]))
        );
        assert_eq!(
            h.headers.find("cookie"),
            Some(&b"session=abc123; theme=dark"[..])
        );
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
        assert_eq!(h.upgrade, None);
        assert_eq!(h.host, Some(&b"www.example.com"[..]));
        assert_eq!(h.head_len, BROWSER.len());
    }

    #[test]
    fn every_prefix_is_partial() {
        for n in 0..BROWSER.len() {
            assert!(parse(&BROWSER[..n]).is_partial(), "prefix {n}");
        }
    }

    #[test]
    fn pipelined_bytes_are_not_consumed() {
        let mut buf = BROWSER.to_vec();
        buf.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        assert_eq!(ok(&buf).head_len, BROWSER.len());
    }

    #[test]
    fn leading_empty_lines_are_skipped() {
        let h = ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.path, "/");
    }

    #[test]
    fn bare_lf_line_endings_are_accepted_like_haproxy() {
        let h = ok(b"GET / HTTP/1.1\nHost: a\n\n");
        assert_eq!(h.host, Some(&b"a"[..]));
    }

    #[test]
    fn header_order_case_and_duplicates_are_kept() {
        let h = ok(b"GET / HTTP/1.1\r\nhOsT: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
        let all: Vec<_> = h.headers.iter().collect();
        assert_eq!(
            all,
            vec![
                (&b"hOsT"[..], &b"a"[..]),
                (&b"X-A"[..], &b"1"[..]),
                (&b"x-a"[..], &b"2"[..])
            ]
        );
    }

    // ---- limits ----

    #[test]
    fn oversized_head_is_400() {
        let limits = HeadLimits {
            max_head_bytes: 64,
            max_headers: 101,
        };
        let mut p = RequestParser::new(limits);
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        buf.resize(64, b'a');
        assert_eq!(p.parse(&buf).error(), Some(HeadError::HeadTooLarge));
        // Just under the limit but incomplete: still waiting.
        assert!(p.parse(&buf[..63]).is_partial());
        // A complete head of exactly the limit is accepted.
        let mut exact = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        exact.resize(60, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), 64);
        assert!(p.parse(&exact).complete().is_some());
    }

    #[test]
    fn oversized_head_with_default_bufsize_is_400() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\nCookie: ".to_vec();
        buf.resize(16 * 1024, b'c');
        buf.extend_from_slice(b"\r\n\r\n");
        assert_400(&buf, HeadError::HeadTooLarge);
    }

    #[test]
    fn too_many_headers_is_400() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..101 {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_400(&buf, HeadError::TooManyHeaders);
        // 101 fields in total is fine.
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..100 {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(ok(&buf).headers.len(), 101);
    }

    #[test]
    fn large_max_headers_uses_heap_storage() {
        let mut p = RequestParser::new(HeadLimits {
            max_head_bytes: 1 << 20,
            max_headers: 1000,
        });
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..500 {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(p.parse(&buf).complete().map(|h| h.headers.len()), Some(501));
    }

    // ---- smuggling and syntax cases, one test each ----

    #[test]
    fn content_length_and_transfer_encoding() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::ContentLengthWithTransferEncoding,
        );
    }

    #[test]
    fn transfer_encoding_then_content_length() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            HeadError::ContentLengthWithTransferEncoding,
        );
    }

    #[test]
    fn differing_content_length_fields() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            HeadError::ConflictingContentLength,
        );
    }

    #[test]
    fn differing_content_length_list() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
            HeadError::ConflictingContentLength,
        );
    }

    #[test]
    fn identical_content_lengths_are_merged() {
        let h =
            ok(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::ContentLength(5));
    }

    #[test]
    fn non_numeric_content_length() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n",
            HeadError::InvalidContentLength,
        );
    }

    #[test]
    fn signed_content_length() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            HeadError::InvalidContentLength,
        );
    }

    #[test]
    fn empty_content_length() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
            HeadError::InvalidContentLength,
        );
    }

    #[test]
    fn overflowing_content_length() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
            HeadError::InvalidContentLength,
        );
    }

    #[test]
    fn transfer_encoding_final_coding_not_chunked() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            HeadError::TransferEncodingNotChunked,
        );
    }

    #[test]
    fn transfer_encoding_unknown_only() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            HeadError::TransferEncodingNotChunked,
        );
    }

    #[test]
    fn transfer_encoding_empty() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
            HeadError::TransferEncodingNotChunked,
        );
    }

    #[test]
    fn transfer_encoding_split_over_fields_ending_not_chunked() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            HeadError::TransferEncodingNotChunked,
        );
    }

    #[test]
    fn chunked_applied_twice() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            HeadError::ChunkedTwice,
        );
    }

    #[test]
    fn chunked_applied_twice_over_two_fields() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::ChunkedTwice,
        );
    }

    #[test]
    fn transfer_encoding_in_http10() {
        assert_400(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            HeadError::TransferEncodingInHttp10,
        );
    }

    #[test]
    fn chunked_is_case_insensitive_and_may_follow_other_codings() {
        let h = ok(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, ChUnKeD\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
    }

    #[test]
    fn obs_fold() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: part1\r\n part2\r\n\r\n",
            HeadError::ObsFold,
        );
    }

    #[test]
    fn obs_fold_with_tab() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: part1\r\n\tpart2\r\n\r\n",
            HeadError::ObsFold,
        );
    }

    #[test]
    fn nul_in_header_value() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            HeadError::InvalidHeaderValue,
        );
    }

    #[test]
    fn bare_cr_in_header_value() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            HeadError::InvalidLineEnding,
        );
    }

    #[test]
    fn control_char_in_header_value() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
            HeadError::InvalidHeaderValue,
        );
    }

    #[test]
    fn invalid_header_name_char() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
            HeadError::InvalidHeaderName,
        );
    }

    #[test]
    fn header_line_without_colon() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nJustAName\r\n\r\n",
            HeadError::InvalidHeaderName,
        );
    }

    #[test]
    fn empty_header_name() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n",
            HeadError::InvalidHeaderName,
        );
    }

    #[test]
    fn whitespace_before_colon() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n",
            HeadError::WhitespaceBeforeColon,
        );
    }

    #[test]
    fn tab_before_colon() {
        assert_400(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n",
            HeadError::WhitespaceBeforeColon,
        );
    }

    #[test]
    fn invalid_method_token() {
        assert_400(
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            HeadError::InvalidMethod,
        );
    }

    #[test]
    fn non_ascii_in_target() {
        assert_400(
            "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(),
            HeadError::InvalidTarget,
        );
    }

    #[test]
    fn relative_target_without_slash() {
        assert_400(
            b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
            HeadError::InvalidTarget,
        );
    }

    #[test]
    fn double_space_in_request_line() {
        assert_400(
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            HeadError::BadRequestLine,
        );
    }

    #[test]
    fn http_2_version() {
        assert_400(
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            HeadError::UnsupportedVersion,
        );
    }

    #[test]
    fn http_1_2_version() {
        assert_400(
            b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
            HeadError::UnsupportedVersion,
        );
    }

    #[test]
    fn http_09_request() {
        assert_400(b"GET /\r\n\r\n", HeadError::UnsupportedVersion);
    }

    #[test]
    fn lowercase_version() {
        assert_400(
            b"GET / http/1.1\r\nHost: a\r\n\r\n",
            HeadError::UnsupportedVersion,
        );
    }

    #[test]
    fn http2_preface() {
        assert_400(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HeadError::Http2Preface);
    }

    #[test]
    fn absolute_form_host_mismatch() {
        assert_400(
            b"GET http://good.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
            HeadError::HostMismatch,
        );
    }

    #[test]
    fn absolute_form_host_match() {
        let h = ok(
            b"GET http://user@Good.Example:8080/p?x=1 HTTP/1.1\r\nHost: good.example:8080\r\n\r\n",
        );
        assert_eq!(
            h.form,
            TargetForm::Absolute {
                scheme: "http",
                authority: "user@Good.Example:8080"
            }
        );
        assert_eq!(h.path, "/p");
        assert_eq!(h.query, Some("x=1"));
    }

    #[test]
    fn absolute_form_http10_without_host_takes_authority() {
        let h = ok(b"GET http://a.example/ HTTP/1.0\r\n\r\n");
        assert_eq!(h.host, Some(&b"a.example"[..]));
    }

    #[test]
    fn absolute_form_with_empty_authority() {
        assert_400(
            b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",
            HeadError::InvalidTarget,
        );
    }

    #[test]
    fn missing_host_in_http11() {
        assert_400(
            b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
            HeadError::MissingHost,
        );
    }

    #[test]
    fn missing_host_in_http10_is_fine() {
        let h = ok(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(h.host, None);
        assert!(!h.keep_alive);
    }

    #[test]
    fn two_host_headers() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            HeadError::MultipleHost,
        );
    }

    #[test]
    fn two_identical_host_headers() {
        assert_400(
            b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
            HeadError::MultipleHost,
        );
    }

    // ---- semantics ----

    #[test]
    fn keep_alive_rules() {
        assert!(ok(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(
            !ok(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n").keep_alive
        );
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            !ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")
                .keep_alive
        );
    }

    #[test]
    fn expect_continue() {
        let h =
            ok(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
        assert!(h.expect_continue);
        assert_eq!(h.framing, BodyFraming::ContentLength(3));
        let h = ok(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert!(!h.expect_continue, "HTTP/1.0 must ignore Expect");
    }

    #[test]
    fn websocket_upgrade() {
        let h = ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n");
        assert_eq!(h.upgrade, Some(&b"websocket"[..]));
        assert!(h.is_websocket_upgrade());
    }

    #[test]
    fn upgrade_without_connection_token_is_no_upgrade() {
        let h = ok(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
        assert_eq!(h.upgrade, None);
    }

    #[test]
    fn connect_authority_form() {
        let h = ok(b"CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n");
        assert_eq!(h.method_kind, Method::Connect);
        assert_eq!(h.form, TargetForm::Authority);
        assert_400(
            b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
            HeadError::InvalidTarget,
        );
    }

    #[test]
    fn asterisk_form() {
        let h = ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.form, TargetForm::Asterisk);
    }

    #[test]
    fn unknown_method_is_other() {
        let h = ok(b"PROPFIND /d HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.method_kind, Method::Other);
        assert_eq!(h.method, "PROPFIND");
    }

    #[test]
    fn parser_is_reusable_across_messages() {
        let mut p = RequestParser::default();
        let a = b"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n".to_vec();
        let b = b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n".to_vec();
        assert_eq!(p.parse(&a).complete().map(|h| h.headers.len()), Some(3));
        let h = p.parse(&b).complete().expect("complete");
        assert_eq!(h.headers.len(), 1);
        assert_eq!(h.host, Some(&b"b"[..]));
    }

    /// Records which of the refused cases httparse already refuses on its
    /// own and which only our checks catch. If an httparse upgrade changes
    /// a verdict this fails, and the table (and our reliance) is reviewed.
    #[test]
    fn httparse_alone() {
        fn httparse_accepts(buf: &[u8]) -> bool {
            let mut h = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Request::new(&mut h);
            matches!(r.parse(buf), Ok(httparse::Status::Complete(_)))
        }
        let cases: &[(&[u8], bool)] = &[
            // (request, httparse accepts it)
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5a\r\n\r\n", true),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", false),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", false),
            ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(), true),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", false),
            (b"GET /\r\n\r\n", false),
            (b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", true),
        ];
        for (buf, accepts) in cases {
            assert_eq!(
                httparse_accepts(buf),
                *accepts,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
            assert!(
                parse(buf).error().is_some(),
                "we must refuse {:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
