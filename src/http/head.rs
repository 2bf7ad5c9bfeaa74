//! Pieces shared by request and response heads: limits, errors, the header
//! list (stored as offsets so the parser can reuse its storage across
//! messages without tying it to one buffer's lifetime), and the single pass
//! that validates header fields and extracts the framing-relevant facts.

use std::mem::MaybeUninit;

use thiserror::Error;

use super::syntax::{is_token, is_valid_value, list_elements, trim_ows};

/// HAProxy's `tune.maxrewrite` default: the part of `tune.bufsize` kept free
/// for header rewrites, hence not available to an incoming head.
pub const MAXREWRITE: usize = 1024;
/// HAProxy's `tune.bufsize` default.
pub const DEFAULT_BUFSIZE: usize = 16384;
/// HAProxy's `tune.http.maxhdr` default.
pub const DEFAULT_MAX_HEADERS: usize = 101;
/// Header arrays up to this size live on the stack during a parse; larger
/// `max_headers` settings cost one allocation per parse.
const STACK_HEADERS: usize = 128;

/// Size limits applied to one message head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest accepted head (start line + fields + final blank line).
    pub max_head_bytes: usize,
    /// Largest accepted number of header fields.
    pub max_headers: usize,
}

impl HeadLimits {
    /// The limits HAProxy derives from `tune.bufsize`: a head must fit in
    /// the buffer minus the `tune.maxrewrite` reserve.
    pub fn from_bufsize(bufsize: usize, max_headers: usize) -> Self {
        HeadLimits {
            max_head_bytes: bufsize.saturating_sub(MAXREWRITE).max(1),
            max_headers: max_headers.max(1),
        }
    }
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self::from_bufsize(DEFAULT_BUFSIZE, DEFAULT_MAX_HEADERS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }

    pub(crate) fn from_minor(minor: u8) -> Option<Self> {
        match minor {
            0 => Some(Version::Http10),
            1 => Some(Version::Http11),
            _ => None,
        }
    }
}

/// How the body that follows a head is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    ContentLength(u64),
    /// Chunked transfer coding; see `chunked::ChunkedScanner`.
    Chunked,
    /// Response only: the body runs until the server closes.
    UntilClose,
}

/// Why a head was refused. A request refused for any of these is answered
/// with 400 (see `request::REJECT_STATUS`); a response with 502.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum HeadError {
    #[error("message head larger than the buffer (tune.bufsize - tune.maxrewrite)")]
    HeadTooLarge,
    #[error("too many header fields (tune.http.maxhdr)")]
    TooManyHeaders,
    #[error("HTTP/2 connection preface on an HTTP/1 listener")]
    Http2Preface,
    #[error("malformed request line")]
    BadRequestLine,
    #[error("invalid method token")]
    InvalidMethod,
    #[error("invalid request target")]
    InvalidTarget,
    #[error("unsupported HTTP version (only HTTP/1.0 and HTTP/1.1)")]
    UnsupportedVersion,
    #[error("malformed status line")]
    BadStatusLine,
    #[error("invalid header field name")]
    InvalidHeaderName,
    #[error("whitespace between header field name and colon")]
    WhitespaceBeforeColon,
    #[error("obsolete line folding in header field")]
    ObsFold,
    #[error("invalid character (NUL, CR, LF or control) in header field value")]
    InvalidHeaderValue,
    #[error("bare CR or malformed line ending")]
    InvalidLineEnding,
    #[error("both Content-Length and Transfer-Encoding present")]
    ContentLengthWithTransferEncoding,
    #[error("invalid Content-Length value")]
    InvalidContentLength,
    #[error("several differing Content-Length values")]
    ConflictingContentLength,
    #[error("Transfer-Encoding whose final coding is not chunked")]
    TransferEncodingNotChunked,
    #[error("chunked transfer coding applied more than once")]
    ChunkedTwice,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    #[error("missing Host header in HTTP/1.1 request")]
    MissingHost,
    #[error("more than one Host header")]
    MultipleHost,
    #[error("absolute-form authority differs from Host header")]
    HostMismatch,
}

impl HeadError {
    /// A short fixed label for logs (HAProxy logs only a termination state;
    /// these say which rule fired).
    pub fn reason(&self) -> &'static str {
        match self {
            HeadError::HeadTooLarge => "head too large",
            HeadError::TooManyHeaders => "too many headers",
            HeadError::Http2Preface => "http/2 preface",
            HeadError::BadRequestLine => "bad request line",
            HeadError::InvalidMethod => "invalid method",
            HeadError::InvalidTarget => "invalid target",
            HeadError::UnsupportedVersion => "unsupported version",
            HeadError::BadStatusLine => "bad status line",
            HeadError::InvalidHeaderName => "invalid header name",
            HeadError::WhitespaceBeforeColon => "space before colon",
            HeadError::ObsFold => "obs-fold",
            HeadError::InvalidHeaderValue => "invalid header value",
            HeadError::InvalidLineEnding => "invalid line ending",
            HeadError::ContentLengthWithTransferEncoding => "content-length with transfer-encoding",
            HeadError::InvalidContentLength => "invalid content-length",
            HeadError::ConflictingContentLength => "conflicting content-length",
            HeadError::TransferEncodingNotChunked => "transfer-encoding not chunked",
            HeadError::ChunkedTwice => "chunked twice",
            HeadError::TransferEncodingInHttp10 => "transfer-encoding in http/1.0",
            HeadError::MissingHost => "missing host",
            HeadError::MultipleHost => "multiple host",
            HeadError::HostMismatch => "host mismatch",
        }
    }
}

/// Outcome of one parse attempt over the bytes received so far.
#[derive(Debug)]
pub enum ParseStatus<T> {
    /// The head is not complete yet and still within limits: read more.
    Partial,
    /// A valid head; its length in bytes is in the head itself.
    Complete(T),
    Error(HeadError),
}

impl<T> ParseStatus<T> {
    pub fn is_partial(&self) -> bool {
        matches!(self, ParseStatus::Partial)
    }

    pub fn complete(self) -> Option<T> {
        match self {
            ParseStatus::Complete(t) => Some(t),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<HeadError> {
        match self {
            ParseStatus::Error(e) => Some(*e),
            _ => None,
        }
    }
}

/// Where one header field sits in the parsed buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderSpan {
    name_start: u32,
    name_len: u32,
    value_start: u32,
    value_len: u32,
}

impl HeaderSpan {
    /// A field at these byte ranges of its head (for heads percore
    /// rewrote itself: `rules::view`).
    pub(crate) fn new(name: std::ops::Range<usize>, value: std::ops::Range<usize>) -> Self {
        HeaderSpan {
            name_start: name.start as u32,
            name_len: name.len() as u32,
            value_start: value.start as u32,
            value_len: value.len() as u32,
        }
    }
}

/// Header fields of a parsed head, in received order and original case.
#[derive(Clone, Copy)]
pub struct Headers<'a> {
    buf: &'a [u8],
    spans: &'a [HeaderSpan],
}

impl<'a> Headers<'a> {
    pub(crate) fn new(buf: &'a [u8], spans: &'a [HeaderSpan]) -> Self {
        Headers { buf, spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `i`-th field as (name, value), value without surrounding OWS.
    pub fn get(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        self.spans.get(i).map(|s| self.field(s))
    }

    fn field(&self, s: &HeaderSpan) -> (&'a [u8], &'a [u8]) {
        let buf: &'a [u8] = self.buf;
        let n = s.name_start as usize;
        let v = s.value_start as usize;
        (
            &buf[n..n + s.name_len as usize],
            &buf[v..v + s.value_len as usize],
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.spans.iter().map(move |s| self.field(s))
    }

    /// Value of the first field named `name` (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// True if any field is named `name` (case-insensitive).
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

/// What the field pass learnt about framing and connection handling.
#[derive(Debug, Default)]
pub(crate) struct FieldFacts<'a> {
    pub content_length: Option<u64>,
    pub transfer_encoding: bool,
    pub chunked_final: bool,
    pub chunked_count: u32,
    pub conn_close: bool,
    pub conn_keep_alive: bool,
    pub conn_upgrade: bool,
    pub upgrade: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
    pub host_count: u32,
    pub expect_continue: bool,
}

/// Content-Length per RFC 9110 §8.6, as HAProxy's h1_parse_cont_len_header:
/// digits only, a comma list is allowed only if every element is the same
/// value, and repeated fields must agree with earlier ones (they are then
/// merged into one).
fn merge_content_length(prev: Option<u64>, value: &[u8]) -> Result<u64, HeadError> {
    let mut current = prev;
    let mut seen_any = false;
    for raw in value.split(|&b| b == b',') {
        let elem = trim_ows(raw);
        if elem.is_empty() {
            return Err(HeadError::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for &b in elem {
            if !b.is_ascii_digit() {
                return Err(HeadError::InvalidContentLength);
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(HeadError::InvalidContentLength)?;
        }
        match current {
            Some(c) if c != n => return Err(HeadError::ConflictingContentLength),
            _ => current = Some(n),
        }
        seen_any = true;
    }
    match current {
        Some(n) if seen_any => Ok(n),
        _ => Err(HeadError::InvalidContentLength),
    }
}

/// Lends httparse an uninitialised header array of `max_headers` entries:
/// on the stack for usual settings, so a parse allocates nothing.
pub(crate) fn with_header_storage<'b, R>(
    max_headers: usize,
    f: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if max_headers <= STACK_HEADERS {
        let mut stack = [MaybeUninit::<httparse::Header<'b>>::uninit(); STACK_HEADERS];
        f(&mut stack[..max_headers])
    } else {
        let mut heap = vec![MaybeUninit::<httparse::Header<'b>>::uninit(); max_headers];
        f(&mut heap)
    }
}

/// Validates the fields httparse returned (again: our rules must hold
/// whatever httparse lets through), records their spans and gathers the
/// framing facts.
pub(crate) fn scan_fields<'a>(
    buf: &'a [u8],
    fields: &[httparse::Header<'a>],
    spans: &mut Vec<HeaderSpan>,
) -> Result<FieldFacts<'a>, HeadError> {
    let base = buf.as_ptr() as usize;
    spans.clear();
    let mut facts = FieldFacts::default();
    for h in fields {
        let name = h.name.as_bytes();
        if !is_token(name) {
            return Err(HeadError::InvalidHeaderName);
        }
        let value = h.value;
        if !is_valid_value(value) {
            return Err(HeadError::InvalidHeaderValue);
        }
        spans.push(HeaderSpan {
            name_start: (name.as_ptr() as usize - base) as u32,
            name_len: name.len() as u32,
            value_start: (value.as_ptr() as usize - base) as u32,
            value_len: value.len() as u32,
        });
        // Dispatch on length first: most fields are none of these.
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                facts.host_count += 1;
                if facts.host.is_none() {
                    facts.host = Some(value);
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect")
                && trim_ows(value).eq_ignore_ascii_case(b"100-continue") =>
            {
                facts.expect_continue = true;
            }
            7 if name.eq_ignore_ascii_case(b"upgrade") && facts.upgrade.is_none() => {
                facts.upgrade = Some(value);
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in list_elements(value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        facts.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        facts.conn_keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        facts.conn_upgrade = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                facts.content_length = Some(merge_content_length(facts.content_length, value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                facts.transfer_encoding = true;
                // Codings of several fields form one list, in order; an empty
                // field leaves the last coding unchanged but still counts as
                // a Transfer-Encoding (so an empty one alone is "not chunked").
                for coding in list_elements(value) {
                    let chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if chunked {
                        facts.chunked_count += 1;
                    }
                    facts.chunked_final = chunked;
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Finds the precise rule a head broke once httparse has refused it, so
/// that the log says "obs-fold" rather than "bad header name". Only runs on
/// the error path.
pub(crate) fn diagnose(buf: &[u8], err: httparse::Error, is_request: bool) -> HeadError {
    let mut lines = Lines::new(skip_leading_blank_lines(buf));
    if let Some(first) = lines.next() {
        let first = match first {
            Ok(l) => l,
            Err(e) => return e,
        };
        let start_line_err = if is_request {
            check_request_line(first)
        } else {
            check_status_line(first)
        };
        if let Some(e) = start_line_err {
            return e;
        }
    }
    for line in lines {
        let line = match line {
            Ok(l) => l,
            Err(e) => return e,
        };
        if line.is_empty() {
            break;
        }
        if let Some(e) = check_field_line(line) {
            return e;
        }
    }
    match err {
        httparse::Error::HeaderName => HeadError::InvalidHeaderName,
        httparse::Error::HeaderValue => HeadError::InvalidHeaderValue,
        httparse::Error::NewLine => HeadError::InvalidLineEnding,
        httparse::Error::Status => HeadError::BadStatusLine,
        httparse::Error::Token if is_request => HeadError::BadRequestLine,
        httparse::Error::Token => HeadError::BadStatusLine,
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => HeadError::UnsupportedVersion,
    }
}

pub(crate) const H2_PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0";

fn skip_leading_blank_lines(mut buf: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = buf {
        buf = rest;
    }
    buf
}

/// Lines without their terminator; a CR anywhere but before LF is an error.
/// The last, unterminated line is yielded too (errors may sit in it).
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Lines { rest: buf }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<&'a [u8], HeadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.contains(&b'\r') {
            return Some(Err(HeadError::InvalidLineEnding));
        }
        Some(Ok(line))
    }
}

fn check_request_line(line: &[u8]) -> Option<HeadError> {
    if line.starts_with(H2_PREFACE_LINE) {
        return Some(HeadError::Http2Preface);
    }
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !is_token(method) {
        return Some(HeadError::InvalidMethod);
    }
    let Some(target) = parts.next() else {
        return Some(HeadError::BadRequestLine);
    };
    if target.is_empty() {
        return Some(HeadError::BadRequestLine);
    }
    if !super::syntax::is_valid_target(target) {
        return Some(HeadError::InvalidTarget);
    }
    let Some(version) = parts.next() else {
        // "GET /" alone: an HTTP/0.9 request.
        return Some(HeadError::UnsupportedVersion);
    };
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Some(HeadError::UnsupportedVersion);
    }
    if parts.next().is_some() {
        return Some(HeadError::BadRequestLine);
    }
    None
}

fn check_status_line(line: &[u8]) -> Option<HeadError> {
    let ok_version = line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 ");
    if !ok_version {
        return Some(if line.starts_with(b"HTTP/") {
            HeadError::UnsupportedVersion
        } else {
            HeadError::BadStatusLine
        });
    }
    let code = &line[9..];
    if code.len() < 3 || !code[..3].iter().all(u8::is_ascii_digit) {
        return Some(HeadError::BadStatusLine);
    }
    if code.len() > 3 && code[3] != b' ' {
        return Some(HeadError::BadStatusLine);
    }
    None
}

fn check_field_line(line: &[u8]) -> Option<HeadError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Some(HeadError::ObsFold);
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Some(HeadError::InvalidHeaderName);
    };
    let name = &line[..colon];
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Some(HeadError::WhitespaceBeforeColon);
    }
    if !is_token(name) {
        return Some(HeadError::InvalidHeaderName);
    }
    if !is_valid_value(&line[colon + 1..]) {
        return Some(HeadError::InvalidHeaderValue);
    }
    None
}

/// Whether Connection/Upgrade ask for a protocol switch; returns the
/// Upgrade value if so.
pub(crate) fn upgrade_request<'a>(facts: &FieldFacts<'a>, version: Version) -> Option<&'a [u8]> {
    match (version, facts.conn_upgrade, facts.upgrade) {
        (Version::Http11, true, Some(u)) if !trim_ows(u).is_empty() => Some(trim_ows(u)),
        _ => None,
    }
}

/// Persistence per RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only
/// with "keep-alive" (and no "close").
pub(crate) fn persistent(facts: &FieldFacts<'_>, version: Version) -> bool {
    match version {
        Version::Http11 => !facts.conn_close,
        Version::Http10 => facts.conn_keep_alive && !facts.conn_close,
    }
}

/// True if `value` (an Upgrade field) names the websocket protocol.
pub fn is_websocket(upgrade: &[u8]) -> bool {
    list_elements(upgrade).any(|p| {
        let name = p.split(|&b| b == b'/').next().unwrap_or_default();
        name.eq_ignore_ascii_case(b"websocket")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_merging() {
        assert_eq!(merge_content_length(None, b"42"), Ok(42));
        assert_eq!(merge_content_length(None, b"42, 42 ,42"), Ok(42));
        assert_eq!(merge_content_length(Some(42), b"42"), Ok(42));
        assert_eq!(
            merge_content_length(Some(42), b"43"),
            Err(HeadError::ConflictingContentLength)
        );
        assert_eq!(
            merge_content_length(None, b"42, 43"),
            Err(HeadError::ConflictingContentLength)
        );
        assert_eq!(
            merge_content_length(None, b"42,"),
            Err(HeadError::InvalidContentLength)
        );
        assert_eq!(
            merge_content_length(None, b""),
            Err(HeadError::InvalidContentLength)
        );
        assert_eq!(
            merge_content_length(None, b"+5"),
            Err(HeadError::InvalidContentLength)
        );
        assert_eq!(
            merge_content_length(None, b"18446744073709551616"),
            Err(HeadError::InvalidContentLength)
        );
        assert_eq!(
            merge_content_length(None, b"18446744073709551615"),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn default_limits_follow_haproxy_defaults() {
        let l = HeadLimits::default();
        assert_eq!(l.max_head_bytes, 16384 - 1024);
        assert_eq!(l.max_headers, 101);
    }

    #[test]
    fn websocket_detection() {
        assert!(is_websocket(b"websocket"));
        assert!(is_websocket(b"WebSocket"));
        assert!(is_websocket(b"foo, websocket/13"));
        assert!(!is_websocket(b"h2c"));
    }
}
