//! An HTTP/2 request head written as the HTTP/1.1 head the session parses
//! (RFC 9113 §8.3.1 → RFC 9112 §3): `:method :path HTTP/1.1`, `:authority`
//! as Host, the fields as received (cookie crumbs joined, §8.2.3), the body
//! framed by its `content-length` or else chunked. The session's parser
//! then checks it like any HTTP/1.1 head, so the rules, the logs and every
//! later step see one request representation.
//!
//! The h2 crate already refused what RFC 9113 calls malformed (§8.1.1,
//! §8.2: uppercase or connection-specific fields, bad or missing
//! pseudo-headers, `content-length` disagreeing with DATA) with a stream
//! error; what is left to refuse here is what an HTTP/1.1 head cannot
//! carry faithfully.

use std::io::Write as _;

use http::request::Parts;
use http::{header, Method};
use thiserror::Error;

/// Why a stream is refused before it becomes a request (RST_STREAM
/// PROTOCOL_ERROR, counted in `h2_streams_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub(crate) enum Refused {
    /// CONNECT (tunnels, RFC 8441 WebSocket) is not served over HTTP/2.
    #[error("CONNECT over HTTP/2 is not supported")]
    Connect,
    /// RFC 9113 §8.3.1: `:authority` must not carry userinfo.
    #[error(":authority with userinfo")]
    Userinfo,
    /// RFC 9113 §8.3.1: a Host field naming another entity than
    /// `:authority` makes the request malformed.
    #[error("Host disagrees with :authority")]
    HostMismatch,
}

/// How the request body reaches the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyCoding {
    /// No body, or one delimited by the `content-length` in the head:
    /// DATA payloads go through as they are.
    Plain,
    /// No `content-length`: DATA payloads become chunks.
    Chunked,
}

/// Writes the HTTP/1.1 head for `parts` into `out` (cleared first).
/// `end_of_stream`: the HEADERS frame ended the stream (no body).
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    parts: &Parts,
    end_of_stream: bool,
) -> Result<BodyCoding, Refused> {
    out.clear();
    if parts.method == Method::CONNECT {
        return Err(Refused::Connect);
    }
    let authority = parts.uri.authority().map(|a| a.as_str());
    if authority.is_some_and(|a| a.contains('@')) {
        return Err(Refused::Userinfo);
    }
    let host = parts.headers.get(header::HOST).map(|h| h.as_bytes());
    if let (Some(a), Some(h)) = (authority, host) {
        if !a.as_bytes().eq_ignore_ascii_case(h) {
            return Err(Refused::HostMismatch);
        }
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{} {path} HTTP/1.1\r\n", parts.method);
    if let Some(host) = authority.map(str::as_bytes).or(host) {
        field(out, b"host", host);
    }
    let mut cookies = 0;
    for (name, value) in &parts.headers {
        if name == header::HOST {
            continue;
        }
        if name == header::COOKIE {
            cookies += 1;
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if cookies > 0 {
        out.extend_from_slice(b"cookie: ");
        for (i, crumb) in parts.headers.get_all(header::COOKIE).iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(crumb.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    let coding = if end_of_stream || parts.headers.contains_key(header::CONTENT_LENGTH) {
        BodyCoding::Plain
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        BodyCoding::Chunked
    };
    // One request per stream: the session ends after its response. The
    // field is not forwarded (the session writes the server's own).
    out.extend_from_slice(b"connection: close\r\n\r\n");
    Ok(coding)
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> Parts {
        req.body(()).unwrap().into_parts().0
    }

    fn head(req: http::request::Builder, eos: bool) -> (String, Result<BodyCoding, Refused>) {
        let mut out = Vec::new();
        let r = write_head(&mut out, &parts(req), eos);
        (String::from_utf8(out).unwrap(), r)
    }

    #[test]
    fn authority_becomes_host_and_cookies_are_joined() {
        let (h, r) = head(
            http::Request::get("https://example.com/a?b=1")
                .header("cookie", "a=1")
                .header("x-y", "z")
                .header("cookie", "b=2"),
            true,
        );
        assert_eq!(r, Ok(BodyCoding::Plain));
        assert_eq!(
            h,
            "GET /a?b=1 HTTP/1.1\r\nhost: example.com\r\nx-y: z\r\ncookie: a=1; b=2\r\n\
             connection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_body_without_length_is_chunked() {
        let (h, r) = head(http::Request::post("http://e/up"), false);
        assert_eq!(r, Ok(BodyCoding::Chunked));
        assert!(h.contains("transfer-encoding: chunked\r\n"), "{h}");
        let (h, r) = head(
            http::Request::post("http://e/up").header("content-length", "3"),
            false,
        );
        assert_eq!(r, Ok(BodyCoding::Plain));
        assert!(h.contains("content-length: 3\r\n"), "{h}");
    }

    #[test]
    fn refusals() {
        let connect = http::Request::builder()
            .method(Method::CONNECT)
            .uri("e:443");
        assert_eq!(head(connect, true).1, Err(Refused::Connect));
        let mismatch = http::Request::get("https://a.example/").header("host", "b.example");
        assert_eq!(head(mismatch, true).1, Err(Refused::HostMismatch));
        let same = http::Request::get("https://a.example/").header("host", "A.example");
        assert!(head(same, true).1.is_ok());
        let userinfo = http::Request::get("https://u@a.example/");
        assert_eq!(head(userinfo, true).1, Err(Refused::Userinfo));
    }
}
