//! What the HTTP balance algorithms hash (`balance uri|url_param|hdr`) and
//! cookie persistence (`cookie NAME insert|rewrite|prefix`), computed from
//! the request head by the HTTP session and handed to backend selection.

use super::sample::{comma_values, cookie_value, url_param};
use crate::http::RequestHead;

/// `hash-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashType {
    /// The hash indexes the weight map: fast, but any change to the server
    /// set moves most keys.
    #[default]
    MapBased,
    /// A ring of points per server (as many as its weight asks): a change
    /// moves only the keys of the server that changed.
    Consistent,
}

/// What an HTTP hash algorithm reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// `balance uri [whole] [len N] [depth N]`
    Uri {
        whole: bool,
        len: Option<usize>,
        depth: Option<usize>,
    },
    /// `balance url_param NAME`
    UrlParam(String),
    /// `balance hdr(NAME)`
    Hdr(String),
}

impl HashKey {
    /// The hash for this request; `None` when the request lacks what is
    /// hashed (then HAProxy balances round robin).
    pub fn hash(&self, req: &RequestHead<'_>) -> Option<u64> {
        match self {
            HashKey::Uri { whole, len, depth } => {
                let mut uri: &[u8] = if *whole {
                    req.target.as_bytes()
                } else {
                    req.target
                        .split_once('?')
                        .map_or(req.target, |(p, _)| p)
                        .as_bytes()
                };
                if let Some(depth) = depth {
                    // Stop at the slash that would open directory depth+1.
                    let mut seen = 0;
                    if let Some(cut) = uri.iter().position(|&b| {
                        if b == b'/' {
                            seen += 1;
                        }
                        seen > *depth
                    }) {
                        uri = &uri[..cut];
                    }
                }
                if let Some(len) = len {
                    uri = &uri[..uri.len().min(*len)];
                }
                Some(hash_bytes(uri))
            }
            HashKey::UrlParam(name) => req
                .query
                .and_then(|q| url_param(q.as_bytes(), name.as_bytes()))
                .filter(|v| !v.is_empty())
                .map(hash_bytes),
            HashKey::Hdr(name) => req
                .headers
                .find(name)
                .and_then(|v| comma_values(v).next())
                .map(hash_bytes),
        }
    }
}

/// FNV-1a then a full-avalanche finalizer: the same bytes give the same
/// server on every core and every run.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `cookie NAME insert|rewrite|prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    Insert,
    Rewrite,
    Prefix,
}

/// Cookie persistence of a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePersistence {
    pub name: String,
    pub mode: CookieMode,
    /// The cookie is removed from requests (insert) and only set on
    /// responses to clients that did not send a valid one.
    pub indirect: bool,
    /// Responses carrying the cookie get `Cache-Control: private`.
    pub nocache: bool,
}

impl CookiePersistence {
    /// The server value the request's cookie names, if any (for `prefix`,
    /// the part before `~`).
    pub fn requested<'r>(&self, req: &RequestHead<'r>) -> Option<&'r [u8]> {
        req.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, v)| cookie_value(v, self.name.as_bytes()))
            .map(|v| match self.mode {
                CookieMode::Prefix => v.split(|&b| b == b'~').next().unwrap_or(v),
                _ => v,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, ParseStatus, RequestParser};

    fn with_head<T>(raw: &str, f: impl FnOnce(&RequestHead<'_>) -> T) -> T {
        let mut parser = RequestParser::new(HeadLimits::from_bufsize(16384, 100));
        match parser.parse(raw.as_bytes()) {
            ParseStatus::Complete(h) => f(&h),
            _ => panic!("bad head"),
        }
    }

    #[test]
    fn uri_options() {
        let raw = "GET /a/b/c?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let plain = HashKey::Uri {
            whole: false,
            len: None,
            depth: None,
        };
        let whole = HashKey::Uri {
            whole: true,
            len: None,
            depth: None,
        };
        let depth = HashKey::Uri {
            whole: false,
            len: None,
            depth: Some(2),
        };
        let len = HashKey::Uri {
            whole: false,
            len: Some(2),
            depth: None,
        };
        with_head(raw, |h| {
            assert_eq!(plain.hash(h), Some(hash_bytes(b"/a/b/c")));
            assert_eq!(whole.hash(h), Some(hash_bytes(b"/a/b/c?x=1")));
            assert_eq!(depth.hash(h), Some(hash_bytes(b"/a/b")));
            assert_eq!(len.hash(h), Some(hash_bytes(b"/a")));
        });
    }

    #[test]
    fn params_headers_cookies() {
        let raw = "GET /t?tableId=7 HTTP/1.1\r\nHost: h\r\nCookie: SRV=s2~x\r\n\r\n";
        with_head(raw, |h| {
            assert_eq!(
                HashKey::UrlParam("tableId".into()).hash(h),
                Some(hash_bytes(b"7"))
            );
            assert_eq!(HashKey::UrlParam("other".into()).hash(h), None);
            assert_eq!(HashKey::Hdr("host".into()).hash(h), Some(hash_bytes(b"h")));
            let c = CookiePersistence {
                name: "SRV".into(),
                mode: CookieMode::Prefix,
                indirect: false,
                nocache: false,
            };
            assert_eq!(c.requested(h), Some(&b"s2"[..]));
        });
    }
}
