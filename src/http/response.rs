//! Response head parsing and framing (RFC 9112 §6.3).
//!
//! Any error here means the server sent something we cannot forward
//! safely; the proxy answers the client 502 (`REJECT_STATUS`), as HAProxy
//! does for an invalid or oversized response.

use super::head::{
    diagnose, persistent, scan_fields, with_header_storage, BodyFraming, HeadError, HeadLimits,
    HeaderSpan, Headers, ParseStatus, Version,
};
use super::request::Method;
use super::syntax::trim_ows;

/// Status the proxy answers when a response head is refused.
pub const REJECT_STATUS: u16 = 502;

#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    pub version: Version,
    pub status: u16,
    /// Reason phrase as received (may be empty).
    pub reason: &'a [u8],
    pub headers: Headers<'a>,
    pub framing: BodyFraming,
    /// The server keeps the connection open after this response.
    pub keep_alive: bool,
    /// Upgrade value of a 101 response.
    pub upgrade: Option<&'a [u8]>,
    /// Bytes of the head, final blank line included.
    pub head_len: usize,
}

impl ResponseHead<'_> {
    /// 1xx: another response follows on the same exchange (101 aside).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    pub fn is_switching_protocols(&self) -> bool {
        self.status == 101
    }

    /// The connection becomes a tunnel after this head: 101, or a 2xx
    /// answer to CONNECT.
    pub fn starts_tunnel(&self, request_method: Method) -> bool {
        self.status == 101
            || (request_method == Method::Connect && (200..300).contains(&self.status))
    }
}

#[derive(Debug)]
pub struct ResponseParser {
    limits: HeadLimits,
    spans: Vec<HeaderSpan>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new(HeadLimits::default())
    }
}

struct Parsed<'a> {
    minor: u8,
    status: u16,
    head_len: usize,
    facts: super::head::FieldFacts<'a>,
}

impl ResponseParser {
    pub fn new(limits: HeadLimits) -> Self {
        ResponseParser {
            limits,
            spans: Vec::with_capacity(limits.max_headers.min(128)),
        }
    }

    /// Parses the response head at the start of `buf`; `request_method` is
    /// the method of the request it answers (HEAD and CONNECT change the
    /// framing).
    pub fn parse<'a>(
        &'a mut self,
        buf: &'a [u8],
        request_method: Method,
    ) -> ParseStatus<ResponseHead<'a>> {
        let limit = self.limits.max_head_bytes;
        let window = &buf[..buf.len().min(limit)];
        let spans = &mut self.spans;
        let parsed = with_header_storage(self.limits.max_headers, |storage| {
            let mut resp = httparse::Response::new(&mut []);
            // Default config: strict (no obs-fold, no space before colon).
            let config = httparse::ParserConfig::default();
            match config.parse_response_with_uninit_headers(&mut resp, window, storage) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let (Some(minor), Some(status)) = (resp.version, resp.code) else {
                        return Err(HeadError::BadStatusLine);
                    };
                    let facts = scan_fields(window, resp.headers, spans)?;
                    Ok(Some(Parsed {
                        minor,
                        status,
                        head_len,
                        facts,
                    }))
                }
                Ok(httparse::Status::Partial) => Ok(None),
                Err(e) => Err(diagnose(window, e, false)),
            }
        });
        let p = match parsed {
            Ok(Some(p)) => p,
            Ok(None) if buf.len() >= limit => return ParseStatus::Error(HeadError::HeadTooLarge),
            Ok(None) => return ParseStatus::Partial,
            Err(e) => return ParseStatus::Error(e),
        };
        match validate(p, window, Headers::new(window, &self.spans), request_method) {
            Ok(h) => ParseStatus::Complete(h),
            Err(e) => ParseStatus::Error(e),
        }
    }
}

fn validate<'a>(
    p: Parsed<'a>,
    buf: &'a [u8],
    headers: Headers<'a>,
    method: Method,
) -> Result<ResponseHead<'a>, HeadError> {
    let version = Version::from_minor(p.minor).ok_or(HeadError::UnsupportedVersion)?;
    if p.status < 100 {
        return Err(HeadError::BadStatusLine);
    }
    let facts = p.facts;
    if facts.transfer_encoding && facts.content_length.is_some() {
        return Err(HeadError::ContentLengthWithTransferEncoding);
    }
    if facts.chunked_count > 1 {
        return Err(HeadError::ChunkedTwice);
    }
    let status = p.status;
    let bodiless = method == Method::Head
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (method == Method::Connect && (200..300).contains(&status));
    let framing = if bodiless {
        BodyFraming::None
    } else if facts.transfer_encoding {
        if facts.chunked_final {
            BodyFraming::Chunked
        } else {
            // RFC 9112 §6.3 item 4: a response whose final coding is not
            // chunked runs until the connection closes.
            BodyFraming::UntilClose
        }
    } else if let Some(n) = facts.content_length {
        BodyFraming::ContentLength(n)
    } else {
        BodyFraming::UntilClose
    };
    // RFC 9112 §6.1: Transfer-Encoding in a 1.0 message means faulty
    // framing; it may be processed but the connection must close after.
    let keep_alive = persistent(&facts, version)
        && framing != BodyFraming::UntilClose
        && !(facts.transfer_encoding && version == Version::Http10);
    let upgrade = if status == 101 {
        facts.upgrade.map(trim_ows)
    } else {
        None
    };
    Ok(ResponseHead {
        version,
        status,
        reason: reason_phrase(buf),
        headers,
        framing,
        keep_alive,
        upgrade,
        head_len: p.head_len,
    })
}

/// The reason phrase straight from the status line: httparse blanks it when
/// it holds obs-text, but it must be forwarded unchanged.
fn reason_phrase(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = &buf[start..];
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // "HTTP/1.1 200 " is 13 bytes.
    line.get(13..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_for(buf: &[u8], method: Method) -> ParseStatus<ResponseHead<'_>> {
        let p: &'static mut ResponseParser = Box::leak(Box::default());
        p.parse(buf, method)
    }

    fn ok(buf: &[u8]) -> ResponseHead<'_> {
        ok_for(buf, Method::Get)
    }

    fn ok_for(buf: &[u8], method: Method) -> ResponseHead<'_> {
        match parse_for(buf, method) {
            ParseStatus::Complete(h) => h,
            other => panic!("expected complete, got {other:?}"),
        }
    }

    fn bad(buf: &[u8]) -> HeadError {
        match parse_for(buf, Method::Get) {
            ParseStatus::Error(e) => e,
            other => panic!("expected error, got {other:?}"),
        }
    }

    #[test]
    fn plain_200_with_length() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world!";
        let h = ok(raw);
        assert_eq!(h.status, 200);
        assert_eq!(h.reason, b"OK");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, BodyFraming::ContentLength(12));
        assert!(h.keep_alive);
        assert_eq!(h.head_len, raw.len() - 12);
        assert_eq!(h.headers.len(), 2);
    }

    #[test]
    fn chunked_response() {
        let h = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(h.keep_alive);
    }

    #[test]
    fn no_length_is_close_delimited() {
        let h = ok(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
    }

    #[test]
    fn final_coding_not_chunked_is_close_delimited() {
        let h = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
    }

    #[test]
    fn head_request_has_no_body() {
        let h = ok_for(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
            Method::Head,
        );
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.keep_alive);
    }

    #[test]
    fn status_204_304_and_1xx_have_no_body() {
        for status in [
            "100 Continue",
            "103 Early Hints",
            "204 No Content",
            "304 Not Modified",
        ] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            assert_eq!(ok(raw.as_bytes()).framing, BodyFraming::None, "{status}");
        }
        assert!(ok(b"HTTP/1.1 100 Continue\r\n\r\n").is_informational());
    }

    #[test]
    fn connect_2xx_has_no_body_and_starts_tunnel() {
        let h = ok_for(
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            Method::Connect,
        );
        assert_eq!(h.framing, BodyFraming::None);
        assert!(h.starts_tunnel(Method::Connect));
        assert!(!ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").starts_tunnel(Method::Get));
    }

    #[test]
    fn switching_protocols() {
        let h = ok(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        assert!(h.is_switching_protocols());
        assert!(h.starts_tunnel(Method::Get));
        assert_eq!(h.upgrade, Some(&b"websocket"[..]));
        assert_eq!(h.framing, BodyFraming::None);
    }

    #[test]
    fn http10_keep_alive_rules() {
        let h = ok(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n");
        assert!(h.keep_alive);
        let h = ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
    }

    #[test]
    fn http10_chunked_forces_close() {
        let h =
            ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(!h.keep_alive);
    }

    #[test]
    fn reason_with_obs_text_is_kept() {
        let h = ok(b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.reason, b"Tr\xe8s bien");
    }

    #[test]
    fn empty_reason() {
        assert_eq!(ok(b"HTTP/1.1 204\r\n\r\n").reason, b"");
        assert_eq!(ok(b"HTTP/1.1 204 \r\n\r\n").reason, b"");
    }

    #[test]
    fn partial_until_blank_line() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for n in 0..raw.len() {
            assert!(parse_for(&raw[..n], Method::Get).is_partial(), "{n}");
        }
    }

    #[test]
    fn cl_and_te_is_an_error() {
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HeadError::ContentLengthWithTransferEncoding
        );
    }

    #[test]
    fn differing_content_length_is_an_error() {
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            HeadError::ConflictingContentLength
        );
    }

    #[test]
    fn invalid_content_length_is_an_error_even_without_body() {
        assert_eq!(
            bad(b"HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n"),
            HeadError::InvalidContentLength
        );
    }

    #[test]
    fn chunked_twice_is_an_error() {
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            HeadError::ChunkedTwice
        );
    }

    #[test]
    fn bad_status_lines() {
        assert_eq!(bad(b"HTTP/1.1 2000 OK\r\n\r\n"), HeadError::BadStatusLine);
        assert_eq!(bad(b"HTTP/1.1 20 OK\r\n\r\n"), HeadError::BadStatusLine);
        assert_eq!(bad(b"HTTP/1.1 099 Low\r\n\r\n"), HeadError::BadStatusLine);
        assert_eq!(bad(b"HTTX/1.1 200 OK\r\n\r\n"), HeadError::BadStatusLine);
        assert_eq!(bad(b"HTTP/2 200 OK\r\n\r\n"), HeadError::UnsupportedVersion);
        assert_eq!(bad(b"<html>\r\n\r\n"), HeadError::BadStatusLine);
    }

    #[test]
    fn invalid_header_fields() {
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n"),
            HeadError::WhitespaceBeforeColon
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n"),
            HeadError::ObsFold
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"),
            HeadError::InvalidHeaderValue
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nX@: y\r\n\r\n"),
            HeadError::InvalidHeaderName
        );
    }

    #[test]
    fn oversized_response_head() {
        let mut p = ResponseParser::new(HeadLimits {
            max_head_bytes: 32,
            max_headers: 10,
        });
        let raw = b"HTTP/1.1 200 OK\r\nServer: a-very-long-server-name\r\n\r\n";
        assert_eq!(
            p.parse(raw, Method::Get).error(),
            Some(HeadError::HeadTooLarge)
        );
    }

    #[test]
    fn too_many_response_headers() {
        let mut p = ResponseParser::new(HeadLimits {
            max_head_bytes: 4096,
            max_headers: 2,
        });
        let raw = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(
            p.parse(raw, Method::Get).error(),
            Some(HeadError::TooManyHeaders)
        );
        assert_eq!(REJECT_STATUS, 502);
    }
}
