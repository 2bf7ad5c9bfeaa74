//! The HTTP/2 frontend adapter: an HTTP/2 request head (as the `h2` crate
//! hands it over) written as the HTTP/1.1 head the session parses.
//!
//! The harness builds the request with the `http` crate from the input
//! (method, path, authority, then `name: value` lines, LF separated) and
//! drops what `h2` itself refuses as malformed before the adapter sees
//! it (RFC 9113 §8.2.2 connection-specific fields, `te` other than
//! `trailers`, a non-numeric `content-length`). The frame layer is the
//! `h2` crate's (fuzzed upstream); what percore adds is this translation.
//!
//! Properties of a head the adapter writes:
//! - it is one complete head, taking exactly the bytes written (never
//!   `Partial`: the session would wait forever);
//! - it parses, or is refused with an error a client can cause on
//!   HTTP/1.1 too (the same 400);
//! - parsed, it is the same request: method, target, Host = `:authority`,
//!   every field once (cookie crumbs joined), and the body framing the
//!   adapter announced (its content-length, chunked, or none).

use http::header::{HeaderName, HeaderValue};

use crate::http::{BodyFraming, HeadError, ParseStatus, RequestParser};
use crate::proxy::h2::request::{write_head, BodyCoding};

const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub fn h2_request(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let end_of_stream = flags & 1 == 1;
    let mut lines = rest.split(|&b| b == b'\n');
    let (Some(method), Some(path), Some(authority)) = (lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    let uri = if authority.is_empty() {
        path.to_vec()
    } else {
        [b"http://".as_slice(), authority, path].concat()
    };
    let mut builder = http::Request::builder().method(method).uri(uri.as_slice());
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            return;
        };
        if CONNECTION_SPECIFIC.contains(&name.as_str())
            || (name == http::header::TE && value.as_bytes() != b"trailers")
            || (name == http::header::CONTENT_LENGTH
                && (value.is_empty() || !value.as_bytes().iter().all(u8::is_ascii_digit)))
        {
            return;
        }
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let mut out = Vec::new();
    let Ok(coding) = write_head(&mut out, &parts, end_of_stream) else {
        return;
    };
    let mut parser = RequestParser::default();
    let head = match parser.parse(&out) {
        ParseStatus::Complete(h) => h,
        ParseStatus::Error(
            HeadError::InvalidTarget
            | HeadError::InvalidHeaderValue
            | HeadError::InvalidContentLength
            | HeadError::ConflictingContentLength
            | HeadError::MissingHost
            | HeadError::HeadTooLarge
            | HeadError::TooManyHeaders,
        ) => return,
        other => panic!(
            "adapter head {:?} parses as {other:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(head.head_len, out.len());
    assert_eq!(head.method, parts.method.as_str());
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    assert_eq!(head.target, path);
    let authority = parts.uri.authority().map(|a| a.as_str().as_bytes());
    let host = authority.or(parts
        .headers
        .get(http::header::HOST)
        .map(HeaderValue::as_bytes));
    assert_eq!(
        head.host.map(<[u8]>::trim_ascii),
        host.map(<[u8]>::trim_ascii),
        "Host"
    );
    match (coding, head.framing) {
        (BodyCoding::Chunked, BodyFraming::Chunked) => assert!(!end_of_stream),
        (BodyCoding::Plain, BodyFraming::None) => {
            assert!(
                !parts.headers.contains_key(http::header::CONTENT_LENGTH)
                    || head.framing == BodyFraming::None
            )
        }
        (BodyCoding::Plain, BodyFraming::ContentLength(n)) => {
            let announced = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .map(HeaderValue::as_bytes);
            assert_eq!(
                announced.and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok()),
                Some(n)
            );
        }
        other => panic!("adapter announced {other:?}"),
    }
    let others = parts
        .headers
        .keys()
        .filter(|n| **n != http::header::HOST && **n != http::header::COOKIE)
        .map(|n| parts.headers.get_all(n).iter().count())
        .sum::<usize>();
    let expected = others
        + usize::from(host.is_some())
        + usize::from(parts.headers.contains_key(http::header::COOKIE))
        + usize::from(coding == BodyCoding::Chunked)
        + 1;
    assert_eq!(
        head.headers.len(),
        expected,
        "fields of {:?}",
        String::from_utf8_lossy(&out)
    );
}
