//! Responses the proxy generates itself: HAProxy's default error pages and
//! `errorfile` replacements.
//!
//! The defaults reproduce what HAProxy 2.x puts on the wire (status line,
//! body text, and its lowercase header names as emitted by its HTTP/1
//! layer): `content-length`, `cache-control: no-cache`, `content-type:
//! text/html`, then `connection: close` when the connection is closed
//! after it. Each page is rendered once, in both variants, so sending one
//! is a slice copy.
//!
//! An `errorfile` holds a complete HTTP response. It is parsed and checked
//! at load time (valid status line and fields, a final status, no
//! Transfer-Encoding, Content-Length equal to the body if present, fits in
//! the buffer) and re-rendered like the defaults: CRLF line endings,
//! Connection fields dropped and set per use, Content-Length added if
//! missing. HAProxy likewise converts errorfiles at load time and its
//! HTTP/1 layer manages Connection when it sends them.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::head::{BodyFraming, HeadError, HeadLimits, ParseStatus};
use super::request::Method;
use super::response::ResponseParser;

/// (status, reason, body) of HAProxy's built-in pages.
const DEFAULTS: &[(u16, &str, &str)] = &[
    (
        200,
        "OK",
        "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n",
    ),
    (
        400,
        "Bad request",
        "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
    ),
    (
        401,
        "Unauthorized",
        "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
    ),
    (
        403,
        "Forbidden",
        "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n",
    ),
    (
        404,
        "Not Found",
        "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n",
    ),
    (
        405,
        "Method Not Allowed",
        "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource\n</body></html>\n",
    ),
    (
        407,
        // HAProxy's reason phrase for 407 too.
        "Unauthorized",
        "<html><body><h1>407 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
    ),
    (
        408,
        "Request Time-out",
        "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n",
    ),
    (
        410,
        "Gone",
        "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n",
    ),
    (
        413,
        "Payload Too Large",
        "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n",
    ),
    (
        425,
        "Too Early",
        "<html><body><h1>425 Too Early</h1>\nYour browser sent early data.\n</body></html>\n",
    ),
    (
        429,
        "Too Many Requests",
        "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n",
    ),
    (
        500,
        "Internal Server Error",
        "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n",
    ),
    (
        501,
        "Not Implemented",
        "<html><body><h1>501 Not Implemented</h1>\n.The server does not support the functionality required to fulfill the request.\n</body></html>\n",
    ),
    (
        502,
        "Bad Gateway",
        "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
    ),
    (
        503,
        "Service Unavailable",
        "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
    ),
    (
        504,
        "Gateway Time-out",
        "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
    ),
];

/// A generated response, rendered for both connection outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    status: u16,
    keep_alive: Vec<u8>,
    close: Vec<u8>,
}

impl ErrorResponse {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The bytes to send; `close` adds `connection: close`.
    pub fn bytes(&self, close: bool) -> &[u8] {
        if close {
            &self.close
        } else {
            &self.keep_alive
        }
    }

    /// Renders a page from its parts; `fields` must not hold Connection or
    /// Content-Length (they are written here).
    fn render(status: u16, status_line: &[u8], fields: &[(&[u8], &[u8])], body: &[u8]) -> Self {
        let mut head = Vec::with_capacity(128 + body.len());
        head.extend_from_slice(status_line);
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        for (n, v) in fields {
            head.extend_from_slice(n);
            head.extend_from_slice(b": ");
            head.extend_from_slice(v);
            head.extend_from_slice(b"\r\n");
        }
        let mut close = head.clone();
        close.extend_from_slice(b"connection: close\r\n\r\n");
        close.extend_from_slice(body);
        head.extend_from_slice(b"\r\n");
        head.extend_from_slice(body);
        ErrorResponse {
            status,
            keep_alive: head,
            close,
        }
    }

    fn builtin(status: u16, reason: &str, body: &str) -> Self {
        Self::render(
            status,
            format!("HTTP/1.1 {status} {reason}").as_bytes(),
            &[
                (b"cache-control", b"no-cache"),
                (b"content-type", b"text/html"),
            ],
            body.as_bytes(),
        )
    }
}

/// The set of pages one proxy section uses: HAProxy's defaults, with
/// `errorfile` replacements.
#[derive(Debug, Clone)]
pub struct ErrorPages {
    pages: Vec<ErrorResponse>,
}

impl Default for ErrorPages {
    fn default() -> Self {
        Self::haproxy_defaults()
    }
}

impl ErrorPages {
    pub fn haproxy_defaults() -> Self {
        ErrorPages {
            pages: DEFAULTS
                .iter()
                .map(|&(s, r, b)| ErrorResponse::builtin(s, r, b))
                .collect(),
        }
    }

    /// Replaces (or adds) the page for the response's status.
    pub fn set(&mut self, page: ErrorResponse) {
        match self.pages.iter_mut().find(|p| p.status == page.status) {
            Some(p) => *p = page,
            None => self.pages.push(page),
        }
    }

    /// The page for `status`; unknown statuses get the 500 page, as
    /// HAProxy's http_get_status_idx does.
    pub fn get(&self, status: u16) -> &ErrorResponse {
        self.find(status)
            .or_else(|| self.find(500))
            .unwrap_or(&self.pages[0])
    }

    fn find(&self, status: u16) -> Option<&ErrorResponse> {
        self.pages.iter().find(|p| p.status == status)
    }
}

#[derive(Debug, Error)]
pub enum ErrorFileError {
    #[error("cannot read errorfile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("errorfile is empty")]
    Empty,
    #[error("errorfile is larger than the buffer ({size} bytes, at most {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("errorfile has no complete response head (missing empty line after the headers?)")]
    IncompleteHead,
    #[error("errorfile response head is invalid: {0}")]
    InvalidHead(HeadError),
    #[error("errorfile status {found} does not match the configured status {expected}")]
    StatusMismatch { expected: u16, found: u16 },
    #[error("errorfile status {0} is not a final status (must be 200-599)")]
    NotFinalStatus(u16),
    #[error("errorfile uses Transfer-Encoding; only a plain body is supported")]
    TransferEncoding,
    #[error("errorfile Content-Length is {declared} but the body has {actual} bytes")]
    ContentLengthMismatch { declared: u64, actual: usize },
}

/// Parses an errorfile's content. `expected` is the status it is configured
/// for (`errorfile <code> <file>`); `max_size` is the buffer room HAProxy
/// requires it to fit (`tune.bufsize - tune.maxrewrite`).
pub fn parse_errorfile(
    content: &[u8],
    expected: Option<u16>,
    max_size: usize,
) -> Result<ErrorResponse, ErrorFileError> {
    if content.is_empty() {
        return Err(ErrorFileError::Empty);
    }
    if content.len() > max_size {
        return Err(ErrorFileError::TooLarge {
            size: content.len(),
            limit: max_size,
        });
    }
    let mut parser = ResponseParser::new(HeadLimits {
        max_head_bytes: max_size,
        ..HeadLimits::default()
    });
    let head = match parser.parse(content, Method::Get) {
        ParseStatus::Complete(h) => h,
        ParseStatus::Partial => return Err(ErrorFileError::IncompleteHead),
        ParseStatus::Error(e) => return Err(ErrorFileError::InvalidHead(e)),
    };
    if !(200..600).contains(&head.status) {
        return Err(ErrorFileError::NotFinalStatus(head.status));
    }
    if let Some(expected) = expected {
        if expected != head.status {
            return Err(ErrorFileError::StatusMismatch {
                expected,
                found: head.status,
            });
        }
    }
    let body = &content[head.head_len..];
    match head.framing {
        BodyFraming::Chunked => return Err(ErrorFileError::TransferEncoding),
        BodyFraming::ContentLength(n) if n != body.len() as u64 => {
            return Err(ErrorFileError::ContentLengthMismatch {
                declared: n,
                actual: body.len(),
            })
        }
        _ if head.headers.contains("transfer-encoding") => {
            return Err(ErrorFileError::TransferEncoding)
        }
        _ => {}
    }
    let mut status_line = head.version.as_str().as_bytes().to_vec();
    status_line.extend_from_slice(format!(" {} ", head.status).as_bytes());
    status_line.extend_from_slice(head.reason);
    let fields: Vec<(&[u8], &[u8])> = head
        .headers
        .iter()
        .filter(|(n, _)| {
            !(n.eq_ignore_ascii_case(b"connection")
                || n.eq_ignore_ascii_case(b"content-length")
                || n.eq_ignore_ascii_case(b"keep-alive")
                || n.eq_ignore_ascii_case(b"proxy-connection"))
        })
        .collect();
    Ok(ErrorResponse::render(
        head.status,
        &status_line,
        &fields,
        body,
    ))
}

/// Reads and parses an errorfile (see `parse_errorfile`).
pub fn load_errorfile(
    path: &Path,
    expected: Option<u16>,
    max_size: usize,
) -> Result<ErrorResponse, ErrorFileError> {
    let content = std::fs::read(path).map_err(|source| ErrorFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_errorfile(&content, expected, max_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{DEFAULT_BUFSIZE, MAXREWRITE};

    const MAX: usize = DEFAULT_BUFSIZE - MAXREWRITE;

    #[test]
    fn default_503_matches_haproxy_bytes() {
        let pages = ErrorPages::haproxy_defaults();
        let page = pages.get(503);
        assert_eq!(
            page.bytes(true),
            &b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"[..]
        );
        assert_eq!(
            page.bytes(false),
            &b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"[..]
        );
    }

    #[test]
    fn default_pages_have_haproxy_lengths_and_parse_back() {
        // Content-Length values HAProxy's own table carries.
        let expected = [
            (200, 58),
            (400, 90),
            (401, 112),
            (403, 93),
            (404, 83),
            (405, 146),
            (407, 112),
            (408, 110),
            (410, 114),
            (413, 106),
            (425, 80),
            (429, 117),
            (500, 97),
            (501, 136),
            (502, 107),
            (503, 107),
            (504, 92),
        ];
        let pages = ErrorPages::haproxy_defaults();
        for (status, len) in expected {
            let page = pages.get(status);
            assert_eq!(page.status(), status);
            for close in [false, true] {
                let bytes = page.bytes(close);
                let mut p = ResponseParser::default();
                let head = p.parse(bytes, Method::Get).complete().expect("parses");
                assert_eq!(head.status, status);
                assert_eq!(head.framing, BodyFraming::ContentLength(len), "{status}");
                assert_eq!(bytes.len() - head.head_len, len as usize);
                assert_eq!(head.keep_alive, !close);
            }
        }
    }

    #[test]
    fn unknown_status_falls_back_to_500() {
        assert_eq!(ErrorPages::default().get(418).status(), 500);
    }

    #[test]
    fn errorfile_replaces_default() {
        let file = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nX-Why: maintenance\r\n\r\nback soon\n";
        let page = parse_errorfile(file, Some(503), MAX).unwrap();
        let mut pages = ErrorPages::default();
        pages.set(page);
        assert_eq!(
            pages.get(503).bytes(false),
            &b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 10\r\nContent-Type: text/plain\r\nX-Why: maintenance\r\n\r\nback soon\n"[..]
        );
        assert!(pages
            .get(503)
            .bytes(true)
            .ends_with(b"connection: close\r\n\r\nback soon\n"));
    }

    #[test]
    fn errorfile_with_lf_line_endings_and_matching_length() {
        let file = b"HTTP/1.0 403 Forbidden\nCache-Control: no-cache\nContent-Length: 3\n\nno\n";
        let page = parse_errorfile(file, Some(403), MAX).unwrap();
        assert_eq!(
            page.bytes(false),
            &b"HTTP/1.0 403 Forbidden\r\ncontent-length: 3\r\nCache-Control: no-cache\r\n\r\nno\n"
                [..]
        );
    }

    #[test]
    fn errorfile_empty() {
        assert!(matches!(
            parse_errorfile(b"", None, MAX),
            Err(ErrorFileError::Empty)
        ));
    }

    #[test]
    fn errorfile_without_blank_line() {
        assert!(matches!(
            parse_errorfile(
                b"HTTP/1.1 503 Oops\r\nContent-Type: text/html\r\n",
                None,
                MAX
            ),
            Err(ErrorFileError::IncompleteHead)
        ));
    }

    #[test]
    fn errorfile_not_http() {
        assert!(matches!(
            parse_errorfile(b"<html>down</html>\r\n\r\n", None, MAX),
            Err(ErrorFileError::InvalidHead(HeadError::BadStatusLine))
        ));
    }

    #[test]
    fn errorfile_bad_field() {
        assert!(matches!(
            parse_errorfile(b"HTTP/1.1 503 Oops\r\nBad Field: x\r\n\r\n", None, MAX),
            Err(ErrorFileError::InvalidHead(HeadError::InvalidHeaderName))
        ));
    }

    #[test]
    fn errorfile_status_mismatch() {
        let e = parse_errorfile(b"HTTP/1.1 502 Bad Gateway\r\n\r\n", Some(503), MAX).unwrap_err();
        assert!(matches!(
            e,
            ErrorFileError::StatusMismatch {
                expected: 503,
                found: 502
            }
        ));
        assert_eq!(
            e.to_string(),
            "errorfile status 502 does not match the configured status 503"
        );
    }

    #[test]
    fn errorfile_informational_status() {
        assert!(matches!(
            parse_errorfile(b"HTTP/1.1 100 Continue\r\n\r\n", None, MAX),
            Err(ErrorFileError::NotFinalStatus(100))
        ));
    }

    #[test]
    fn errorfile_content_length_mismatch() {
        assert!(matches!(
            parse_errorfile(
                b"HTTP/1.1 503 X\r\nContent-Length: 10\r\n\r\nshort",
                None,
                MAX
            ),
            Err(ErrorFileError::ContentLengthMismatch {
                declared: 10,
                actual: 5
            })
        ));
    }

    #[test]
    fn errorfile_transfer_encoding() {
        assert!(matches!(
            parse_errorfile(
                b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                None,
                MAX
            ),
            Err(ErrorFileError::TransferEncoding)
        ));
        assert!(matches!(
            parse_errorfile(
                b"HTTP/1.1 503 X\r\nTransfer-Encoding: gzip\r\n\r\nzz",
                None,
                MAX
            ),
            Err(ErrorFileError::TransferEncoding)
        ));
    }

    #[test]
    fn errorfile_too_large() {
        let mut file = b"HTTP/1.1 503 X\r\n\r\n".to_vec();
        file.resize(MAX + 1, b'x');
        assert!(matches!(
            parse_errorfile(&file, None, MAX),
            Err(ErrorFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn load_errorfile_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("503.http");
        std::fs::write(&path, b"HTTP/1.1 503 Down\r\n\r\nmaintenance").unwrap();
        let page = load_errorfile(&path, Some(503), MAX).unwrap();
        assert!(page
            .bytes(false)
            .ends_with(b"content-length: 11\r\n\r\nmaintenance"));
        let missing = load_errorfile(&dir.path().join("nope"), None, MAX).unwrap_err();
        assert!(matches!(missing, ErrorFileError::Read { .. }));
    }
}
