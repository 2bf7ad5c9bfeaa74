//! `capture request|response header NAME len N`: the values a log line
//! shows.

use crate::config::HeaderCapture;
use crate::http::Headers;

/// The configured headers' values from a parsed request, each cut to its
/// `len` (on a character boundary); absent headers give "".
pub fn capture_request_headers(headers: &Headers<'_>, captures: &[HeaderCapture]) -> Vec<String> {
    captures
        .iter()
        .map(|c| match headers.find(&c.name) {
            Some(value) => cut(&String::from_utf8_lossy(value), c.len),
            None => String::new(),
        })
        .collect()
}

/// `s` cut to `len` bytes on a character boundary.
pub fn cut(s: &str, len: usize) -> String {
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::RequestParser;

    #[test]
    fn captures_configured_headers_cut_to_len() {
        let raw = b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0.1\r\n\r\n";
        let mut parser = RequestParser::default();
        let head = parser.parse(raw).complete().expect("valid request");
        let captures = [
            HeaderCapture {
                name: "host".into(),
                len: 64,
            },
            HeaderCapture {
                name: "User-Agent".into(),
                len: 4,
            },
            HeaderCapture {
                name: "X-Absent".into(),
                len: 8,
            },
        ];
        assert_eq!(
            capture_request_headers(&head.headers, &captures),
            vec!["example.com".to_string(), "curl".into(), String::new()]
        );
        assert_eq!(cut("héllo", 2), "h");
    }
}
