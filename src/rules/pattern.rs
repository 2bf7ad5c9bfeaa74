//! ACL patterns and match methods (HAProxy `-m str|beg|end|sub|dir|dom|reg|
//! found|len|int|ip|bool`), compiled once at load. Case-insensitive string
//! patterns are stored lowercased and compared without copying the sample.

use regex::bytes::{Regex, RegexBuilder};

use super::sample::Sample;
use crate::http::Network;
use crate::maps::{dir_delim, dom_delim, trim_delims};

/// An integer pattern: `N`, `N:M`, `N:`, `:M`, or `eq|ge|gt|le|lt N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    pub min: i64,
    pub max: i64,
}

impl IntRange {
    pub fn contains(&self, v: i64) -> bool {
        self.min <= v && v <= self.max
    }
}

/// How samples are compared with the patterns.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The fetch produced any sample (`-m found`).
    Found,
    /// The sample is true or a non-zero integer (`-m bool`, the default for
    /// boolean fetches written without patterns).
    Bool,
    Str(StrPatterns),
    Beg(StrPatterns),
    End(StrPatterns),
    Sub(StrPatterns),
    /// A whole `/`-delimited segment sequence (`-m dir`).
    Dir(StrPatterns),
    /// A whole `.`- or `/`-delimited label sequence (`-m dom`).
    Dom(StrPatterns),
    Reg(Vec<Regex>),
    /// Length of a string sample.
    Len(Vec<IntRange>),
    Int(Vec<IntRange>),
    Ip(Vec<Network>),
    /// An ACL with `-f <file>`: each file read from this core's live
    /// copy (the runtime API's `add acl`/`del acl`/`clear acl` change
    /// it), beside the patterns written inline (fixed).
    Live(Box<LivePatterns>),
}

/// The patterns of an ACL that reads `-f` files.
#[derive(Debug, Clone)]
pub struct LivePatterns {
    pub files: Vec<std::sync::Arc<crate::maps::MapData>>,
    /// The patterns written on the ACL line itself, if any.
    pub fixed: Option<Matcher>,
}

/// String patterns; lowercased when `icase`.
#[derive(Debug, Clone, Default)]
pub struct StrPatterns {
    pub patterns: Vec<Box<[u8]>>,
    pub icase: bool,
}

impl StrPatterns {
    fn any(&self, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        self.patterns.iter().any(|p| f(p))
    }
}

fn eq(a: &[u8], b: &[u8], icase: bool) -> bool {
    if icase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn contains(hay: &[u8], needle: &[u8], icase: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len()).any(|w| eq(w, needle, icase))
}

/// `needle` occurs in `hay` with a delimiter (or an end) on both sides.
fn delimited(hay: &[u8], needle: &[u8], icase: bool, delim: impl Fn(u8) -> bool) -> bool {
    if needle.is_empty() || needle.len() > hay.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|at| {
        let before_ok = at == 0 || delim(hay[at - 1]);
        let end = at + needle.len();
        let after_ok = end == hay.len() || delim(hay[end]);
        before_ok && after_ok && eq(&hay[at..end], needle, icase)
    })
}

impl Matcher {
    /// Whether one sample matches.
    pub fn matches(&self, sample: Sample<'_>) -> bool {
        match (self, sample) {
            (Matcher::Found, _) => true,
            (Matcher::Live(live), sample) => {
                live.fixed.as_ref().is_some_and(|m| m.matches(sample))
                    || live.files.iter().any(|file| {
                        crate::maps::core::with_current(file, |m| m.matches_sample(sample))
                    })
            }
            (Matcher::Bool, Sample::Bool(b)) => b,
            (Matcher::Bool, Sample::Int(i)) => i != 0,
            (Matcher::Str(p), Sample::Str(s)) => p.any(|pat| eq(s, pat, p.icase)),
            (Matcher::Beg(p), Sample::Str(s)) => {
                p.any(|pat| s.len() >= pat.len() && eq(&s[..pat.len()], pat, p.icase))
            }
            (Matcher::End(p), Sample::Str(s)) => {
                p.any(|pat| s.len() >= pat.len() && eq(&s[s.len() - pat.len()..], pat, p.icase))
            }
            (Matcher::Sub(p), Sample::Str(s)) => p.any(|pat| contains(s, pat, p.icase)),
            (Matcher::Dir(p), Sample::Str(s)) => {
                p.any(|pat| delimited(s, trim_delims(pat, dir_delim), p.icase, dir_delim))
            }
            (Matcher::Dom(p), Sample::Str(s)) => {
                p.any(|pat| delimited(s, trim_delims(pat, dom_delim), p.icase, dom_delim))
            }
            (Matcher::Reg(res), Sample::Str(s)) => res.iter().any(|re| re.is_match(s)),
            (Matcher::Len(ranges), Sample::Str(s)) => {
                let len = s.len() as i64;
                ranges.iter().any(|r| r.contains(len))
            }
            (Matcher::Int(ranges), Sample::Int(v)) => ranges.iter().any(|r| r.contains(v)),
            (Matcher::Int(ranges), Sample::Bool(b)) => ranges.iter().any(|r| r.contains(b.into())),
            (Matcher::Ip(nets), Sample::Ip(ip)) => nets.iter().any(|n| n.contains(ip)),
            // A string (a variable's value) against integer or address
            // patterns: HAProxy casts the sample to the patterns' type.
            (Matcher::Int(ranges), Sample::Str(s)) => {
                super::convert_ops::str2int(s).is_some_and(|v| ranges.iter().any(|r| r.contains(v)))
            }
            (Matcher::Ip(nets), Sample::Str(s)) => std::str::from_utf8(s)
                .ok()
                .and_then(|t| t.trim().parse::<std::net::IpAddr>().ok())
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
            _ => false,
        }
    }
}

/// Every regular expression of the configuration (ACL patterns, rewrite
/// rules, `regsub`, `map_reg` keys, check `expect` patterns) is compiled
/// here, with one size limit.
pub fn build_regex(pattern: &str, icase: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(icase)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// [`build_regex`] for the rule language, whose messages give the regex
/// crate's last line only.
pub fn compile_regex(pattern: &str, icase: bool) -> Result<Regex, String> {
    build_regex(pattern, icase).map_err(|e| {
        let text = e.to_string();
        text.lines().last().unwrap_or("").trim().to_string()
    })
}

/// Compiled size of one regex: far above what a routing rule needs,
/// small enough that a hostile map line cannot take much memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(p: &[&str], icase: bool) -> StrPatterns {
        StrPatterns {
            patterns: p
                .iter()
                .map(|s| {
                    let s = if icase {
                        s.to_ascii_lowercase()
                    } else {
                        s.to_string()
                    };
                    s.into_bytes().into_boxed_slice()
                })
                .collect(),
            icase,
        }
    }

    #[test]
    fn string_methods() {
        let s = |v: &'static str| Sample::Str(v.as_bytes());
        assert!(Matcher::Str(strs(&["WebSocket"], true)).matches(s("websocket")));
        assert!(!Matcher::Str(strs(&["WebSocket"], false)).matches(s("websocket")));
        assert!(Matcher::Beg(strs(&["/static", "/images"], false)).matches(s("/images/a.png")));
        assert!(Matcher::End(strs(&[".JPG"], true)).matches(s("/a/b.jpg")));
        assert!(!Matcher::End(strs(&[".jpg"], false)).matches(s("/a/b.jpgx")));
        assert!(Matcher::Sub(strs(&["adm"], false)).matches(s("/x/admin")));
        assert!(Matcher::Dir(strs(&["api"], false)).matches(s("/v1/api/users")));
        assert!(!Matcher::Dir(strs(&["api"], false)).matches(s("/v1/apis/users")));
        assert!(Matcher::Dom(strs(&["example.com"], false)).matches(s("www.example.com")));
        assert!(!Matcher::Dom(strs(&["example.com"], false)).matches(s("myexample.com")));
        assert!(Matcher::Len(vec![IntRange { min: 3, max: 3 }]).matches(s("abc")));
    }

    #[test]
    fn ints_ips_bools() {
        let r = IntRange { min: 1, max: 1 };
        assert!(Matcher::Int(vec![r]).matches(Sample::Int(1)));
        assert!(!Matcher::Int(vec![r]).matches(Sample::Int(2)));
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(Matcher::Ip(vec![net]).matches(Sample::Ip("10.1.2.3".parse().unwrap())));
        assert!(!Matcher::Ip(vec![net]).matches(Sample::Ip("11.1.2.3".parse().unwrap())));
        assert!(Matcher::Bool.matches(Sample::Bool(true)));
        assert!(!Matcher::Bool.matches(Sample::Bool(false)));
    }
}
