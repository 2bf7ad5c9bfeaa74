//! The request body fetches (`req.body`, `req.body_len`, `req.body_size`,
//! `req.body_param`): what `option http-buffer-request` waited for before
//! the rules ran. Without the option the request carries no body
//! ([`RequestHead::body`] is `None`) and these fetches give no sample, as
//! in HAProxy.
//!
//! [`RequestHead::body`]: crate::http::RequestHead::body

use super::sample::{Facts, Sample, SampleType};
use crate::http::BodyFraming;

/// One of the body fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFetch {
    /// `req.body`: the bytes waited for (de-chunked).
    Body,
    /// `req.body_len`: how many bytes that is (below the announced length
    /// when the body is larger than the buffer).
    Len,
    /// `req.body_size`: the Content-Length; for a chunked body, the
    /// bytes waited for.
    Size,
    /// `req.body_param([<name>[,i]])`: the value of the first parameter
    /// of a url-encoded body named so (any name when `None`), not
    /// decoded; `i`: the name matched case-insensitively.
    Param {
        name: Option<Box<str>>,
        ignore_case: bool,
    },
}

impl BodyFetch {
    pub fn sample_type(&self) -> SampleType {
        match self {
            BodyFetch::Len | BodyFetch::Size => SampleType::Int,
            BodyFetch::Body | BodyFetch::Param { .. } => SampleType::Str,
        }
    }

    pub fn any(&self, facts: &Facts<'_>, f: &mut impl FnMut(Sample<'_>) -> bool) -> bool {
        let Some(req) = facts.req else { return false };
        let Some(body) = req.body else { return false };
        match self {
            BodyFetch::Body => f(Sample::Str(body)),
            BodyFetch::Len => f(Sample::Int(body.len() as i64)),
            BodyFetch::Size => f(Sample::Int(match req.framing {
                BodyFraming::ContentLength(n) => i64::try_from(n).unwrap_or(i64::MAX),
                _ => body.len() as i64,
            })),
            BodyFetch::Param { name, ignore_case } => {
                body_param(body, name.as_deref().map(str::as_bytes), *ignore_case)
                    .is_some_and(|v| f(Sample::Str(v)))
            }
        }
    }
}

/// The value of the first `name=value` pair of a url-encoded body (pairs
/// split on `&`) whose name is `name`, or of the first pair when `name` is
/// `None`. A pair without `=` has an empty value.
pub fn body_param<'b>(body: &'b [u8], name: Option<&[u8]>, ignore_case: bool) -> Option<&'b [u8]> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let hit = match name {
                None => true,
                Some(n) if ignore_case => k.eq_ignore_ascii_case(n),
                Some(n) => k == n,
            };
            hit.then_some(v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_params_as_haproxy_reads_them() {
        let body = b"user=bob&Pass=s3cret&flag&x=1";
        assert_eq!(body_param(body, Some(b"user"), false), Some(&b"bob"[..]));
        assert_eq!(body_param(body, Some(b"pass"), false), None);
        assert_eq!(body_param(body, Some(b"pass"), true), Some(&b"s3cret"[..]));
        assert_eq!(body_param(body, Some(b"flag"), false), Some(&b""[..]));
        assert_eq!(body_param(body, None, false), Some(&b"bob"[..]));
        assert_eq!(body_param(b"", None, false), None);
        assert_eq!(body_param(b"&&a=%41", Some(b"a"), false), Some(&b"%41"[..]));
    }
}
