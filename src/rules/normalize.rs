//! `http-request normalize-uri <kind>`: HAProxy's URI normalizers, each a
//! rewrite of the request target (the path of an absolute-form target;
//! scheme and authority are kept).

/// One normalizer, as named in HAProxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizeUri {
    /// `path-strip-dot`: `/a/./b` → `/a/b`.
    PathStripDot,
    /// `path-strip-dotdot [full]`: `/a/../b` → `/b`; a `..` above the root
    /// is kept unless `full`.
    PathStripDotdot { full: bool },
    /// `path-merge-slashes`: `//` → `/`.
    PathMergeSlashes,
    /// `percent-decode-unreserved [strict]`: `%41` → `A` for letters,
    /// digits and `-._~`, in path and query. `strict`: a request with an
    /// invalid `%`-sequence is refused (400) instead of kept as written.
    PercentDecodeUnreserved { strict: bool },
    /// `percent-to-uppercase [strict]`: `%2f` → `%2F` (`strict` as above).
    PercentToUppercase { strict: bool },
    /// `query-sort-by-name`: the query's parameters sorted by name (stable).
    QuerySortByName,
    /// `fragment-strip`: the `#fragment` goes.
    FragmentStrip,
    /// `fragment-encode`: `#` → `%23`.
    FragmentEncode,
}

/// The names `normalize-uri` takes, with what they build (`full` is read
/// after `path-strip-dotdot`, `strict` after the two percent kinds).
pub const KINDS: &[(&str, NormalizeUri)] = &[
    ("path-strip-dot", NormalizeUri::PathStripDot),
    (
        "path-strip-dotdot",
        NormalizeUri::PathStripDotdot { full: false },
    ),
    ("path-merge-slashes", NormalizeUri::PathMergeSlashes),
    (
        "percent-decode-unreserved",
        NormalizeUri::PercentDecodeUnreserved { strict: false },
    ),
    (
        "percent-to-uppercase",
        NormalizeUri::PercentToUppercase { strict: false },
    ),
    ("query-sort-by-name", NormalizeUri::QuerySortByName),
    ("fragment-strip", NormalizeUri::FragmentStrip),
    ("fragment-encode", NormalizeUri::FragmentEncode),
];

impl NormalizeUri {
    /// Whether this normalizer refuses `target`: a `strict` percent kind
    /// and an invalid `%`-sequence (a `%` not followed by two hex digits)
    /// anywhere after the authority, query and fragment included, as
    /// HAProxy 2.6 does (checked against it). The request is then answered
    /// 400 and goes nowhere.
    pub fn refuses(self, target: &[u8]) -> bool {
        match self {
            NormalizeUri::PercentDecodeUnreserved { strict: true }
            | NormalizeUri::PercentToUppercase { strict: true } => {
                has_invalid_percent(&target[path_start(target)..])
            }
            _ => false,
        }
    }
}

/// Where the path of a request target starts: 0, or after the scheme and
/// authority of an absolute-form target (its length if it has no path).
fn path_start(target: &[u8]) -> usize {
    match target.windows(3).position(|w| w == b"://") {
        Some(p) => target[p + 3..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(target.len(), |q| p + 3 + q),
        None => 0,
    }
}

/// A `%` not followed by two hex digits.
fn has_invalid_percent(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !(text.get(i + 1).copied().and_then(hex).is_some()
                && text.get(i + 2).copied().and_then(hex).is_some())
    })
}

/// Writes `target` normalized by `kind` to `out` (a target `kind`
/// [refuses](NormalizeUri::refuses) is never forwarded: the rule answers
/// 400 before this runs).
pub fn normalize(kind: NormalizeUri, target: &[u8], out: &mut Vec<u8>) {
    // Absolute form keeps its scheme and authority.
    let path_start = path_start(target);
    out.extend_from_slice(&target[..path_start]);
    let rest = &target[path_start..];
    let fragment_at = rest.iter().position(|&b| b == b'#').unwrap_or(rest.len());
    let (before_fragment, fragment) = rest.split_at(fragment_at);
    let query_at = before_fragment
        .iter()
        .position(|&b| b == b'?')
        .unwrap_or(before_fragment.len());
    let (path, query) = before_fragment.split_at(query_at);
    match kind {
        NormalizeUri::PathStripDot => {
            strip_dots(path, false, None, out);
            out.extend_from_slice(query);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::PathStripDotdot { full } => {
            strip_dots(path, true, Some(full), out);
            out.extend_from_slice(query);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::PathMergeSlashes => {
            for (i, &b) in path.iter().enumerate() {
                if !(b == b'/' && i > 0 && path[i - 1] == b'/') {
                    out.push(b);
                }
            }
            out.extend_from_slice(query);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::PercentDecodeUnreserved { .. } => {
            percent(before_fragment, out, true);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::PercentToUppercase { .. } => {
            percent(before_fragment, out, false);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::QuerySortByName => {
            out.extend_from_slice(path);
            sort_query(query, out);
            out.extend_from_slice(fragment);
        }
        NormalizeUri::FragmentStrip => out.extend_from_slice(before_fragment),
        NormalizeUri::FragmentEncode => {
            out.extend_from_slice(before_fragment);
            if let Some((_, frag)) = fragment.split_first() {
                out.extend_from_slice(b"%23");
                out.extend_from_slice(frag);
            }
        }
    }
}

/// Removes `.` segments, and with `dotdot` resolves `..` ones (`full`: a
/// `..` above the root is dropped, else kept as written).
fn strip_dots(path: &[u8], dotdot: bool, full: Option<bool>, out: &mut Vec<u8>) {
    let start = out.len();
    if path.first() != Some(&b'/') {
        out.extend_from_slice(path);
        return;
    }
    // Segments after the leading `/`.
    let segments: Vec<&[u8]> = path[1..].split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    // Lengths of `out` before each kept segment, to pop on `..`.
    let mut kept: Vec<usize> = Vec::new();
    // Leading `..` kept (not `full`): they cannot be popped.
    let mut floor = 0;
    for (i, seg) in segments.iter().enumerate() {
        let trailing = i == last;
        if !dotdot && *seg == b"." {
            if trailing {
                out.push(b'/');
            }
            continue;
        }
        if dotdot && *seg == b".." {
            if kept.len() > floor {
                if let Some(len) = kept.pop() {
                    out.truncate(len);
                }
                if trailing {
                    out.push(b'/');
                }
                continue;
            }
            if full == Some(true) {
                if trailing {
                    out.push(b'/');
                }
                continue;
            }
            out.extend_from_slice(b"/..");
            floor += 1;
            kept.push(out.len());
            continue;
        }
        kept.push(out.len());
        out.push(b'/');
        out.extend_from_slice(seg);
    }
    // A trailing segment popped into an empty path leaves "/".
    if out.len() == start {
        out.push(b'/');
    }
    // Pushed twice (`/a/./.` → `/a//`): one slash is enough at the end.
    if out.len() >= start + 2 && out.ends_with(b"//") {
        out.pop();
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` sequences: decoded when they stand for an unreserved character
/// (`decode`), else written with uppercase digits (`!decode`, or an
/// encoded reserved character when decoding). Invalid sequences are kept.
fn percent(text: &[u8], out: &mut Vec<u8>, decode: bool) {
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        let pair = text
            .get(i + 1)
            .zip(text.get(i + 2))
            .and_then(|(&h, &l)| Some((hex(h)?, hex(l)?)));
        match (b, pair) {
            (b'%', Some((h, l))) => {
                let c = h * 16 + l;
                let unreserved = c.is_ascii_alphanumeric() || b"-._~".contains(&c);
                if decode && unreserved {
                    out.push(c);
                } else if decode {
                    out.extend_from_slice(&text[i..i + 3]);
                } else {
                    out.push(b'%');
                    out.push(text[i + 1].to_ascii_uppercase());
                    out.push(text[i + 2].to_ascii_uppercase());
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// `?b=2&a=1&a=0` → `?a=1&a=0&b=2` (`query` with its `?`, or empty).
fn sort_query(query: &[u8], out: &mut Vec<u8>) {
    let Some((_, params)) = query.split_first() else {
        return;
    };
    let mut parts: Vec<&[u8]> = params.split(|&b| b == b'&').collect();
    let name = |p: &[u8]| -> Vec<u8> { p.split(|&b| b == b'=').next().unwrap_or(p).to_vec() };
    parts.sort_by_key(|p| name(p));
    out.push(b'?');
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: NormalizeUri, target: &str) -> String {
        let mut out = Vec::new();
        normalize(kind, target.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_kind() {
        use NormalizeUri::*;
        assert_eq!(run(PathStripDot, "/a/./b/./c?x=./"), "/a/b/c?x=./");
        assert_eq!(run(PathStripDot, "/a/."), "/a/");
        assert_eq!(run(PathStripDot, "/./"), "/");
        assert_eq!(run(PathStripDot, "/a/.b"), "/a/.b");
        let dd = PathStripDotdot { full: false };
        assert_eq!(run(dd, "/a/b/../c"), "/a/c");
        assert_eq!(run(dd, "/a/.."), "/");
        assert_eq!(run(dd, "/a/b/.."), "/a/");
        assert_eq!(run(dd, "/../a"), "/../a");
        assert_eq!(run(dd, "/a/../../b"), "/../b");
        let full = PathStripDotdot { full: true };
        assert_eq!(run(full, "/../a"), "/a");
        assert_eq!(run(full, "/a/../../b?q"), "/b?q");
        assert_eq!(run(PathMergeSlashes, "//a///b/?x=//"), "/a/b/?x=//");
        let decode = PercentDecodeUnreserved { strict: false };
        assert_eq!(run(decode, "/%41%2f%7e?q=%2D%25"), "/A%2f~?q=-%25");
        let upper = PercentToUppercase { strict: false };
        assert_eq!(run(upper, "/%2f%zz?%ab"), "/%2F%zz?%AB");
        assert_eq!(run(QuerySortByName, "/p?b=2&a=1&c&a=0"), "/p?a=1&a=0&b=2&c");
        assert_eq!(run(QuerySortByName, "/p"), "/p");
        assert_eq!(run(FragmentStrip, "/p?q#frag"), "/p?q");
        assert_eq!(run(FragmentEncode, "/p#frag"), "/p%23frag");
        assert_eq!(run(PathMergeSlashes, "http://h:8//a//b"), "http://h:8/a/b");
    }

    /// The targets HAProxy 2.6 answers 400 with `strict` (and forwards
    /// without it).
    #[test]
    fn strict_refuses_invalid_percent_sequences() {
        use NormalizeUri::*;
        for strict in [
            PercentDecodeUnreserved { strict: true },
            PercentToUppercase { strict: true },
        ] {
            for bad in [
                "/%zz",
                "/%2",
                "/a%",
                "/p?q=%g1",
                "/p?x=%",
                "/p#%zz",
                "http://h/%4",
            ] {
                assert!(strict.refuses(bad.as_bytes()), "{strict:?} {bad}");
            }
            for good in ["/%2f%7E", "/p?x=%2a", "/", "http://h%zz/a", "*"] {
                assert!(!strict.refuses(good.as_bytes()), "{strict:?} {good}");
            }
        }
        for lax in [
            PercentDecodeUnreserved { strict: false },
            PercentToUppercase { strict: false },
            PathStripDot,
        ] {
            assert!(!lax.refuses(b"/%zz"), "{lax:?}");
        }
    }
}
