//! Parsing HAProxy rule lines written in TOML strings: ACL expressions
//! (`hdr(Upgrade) -i websocket`), conditions (`if is_ws !{ ssl_fc }`),
//! `use_backend`, `http-request` and `http-response` rules, and values
//! with `%[...]`. Pure functions over one line; every error carries the
//! byte offset in the line where it was found, which the loader turns into
//! a file position.

use std::path::Path;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder};

use super::error::did_you_mean;
use super::health_lines::tokenize_spanned;
use super::values::Invalid;
use crate::http::Network;
use crate::rules::{
    AclRef, AclTest, Condition, Converter, Fetch, Format, HeaderEdit, IntRange, Matcher, Part,
    Redirect, RedirectTarget, Reply, RequestAction, ResponseAction, Rule, SampleType, Side,
    StrPatterns, TcpAction, Term, Userlist,
};

/// An error and the byte offset in the line where it is.
pub(crate) type Located = (usize, Invalid);
type Parsed<T> = Result<T, Located>;

fn err<T>(at: usize, message: impl Into<String>, hint: impl Into<String>) -> Parsed<T> {
    Err((
        at,
        Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        },
    ))
}

/// The statuses `deny_status` may take (HAProxy's error pages).
pub(crate) const DENY_STATUSES: [u16; 17] = [
    200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504,
];
const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];
/// Fields a rule may not add, change or remove: the proxy frames the body
/// and manages the connection by them.
const PROTECTED_FIELDS: [&str; 3] = ["content-length", "transfer-encoding", "connection"];

/// What names in a line refer to.
pub(crate) struct Env<'e> {
    /// ACL names of the section, by index.
    pub acls: &'e [String],
    pub userlists: &'e [Arc<Userlist>],
    /// Base of relative `-f` and `return file` paths.
    pub base_dir: &'e Path,
    /// Backend names, by id (for `use_backend`).
    pub backends: &'e [String],
    /// Parsing an `http-response` rule (response fetches are allowed).
    pub response: bool,
    /// The client's first bytes can be looked at here (`tcp-request
    /// content`, `use_backend` in mode tcp, named ACLs): `req.len`,
    /// `req.payload`, `req.ssl_*` are allowed.
    pub payload: bool,
}

/// Offsets inside a word count bytes of the word as unescaped; where the
/// word is written with quotes or escapes they are not offsets in the
/// line, so an error there points at the word's start instead. Found by
/// fuzzing (rule_lines): `set-header X "\x1e...%..."` gave an offset in the
/// middle of a character, and past where the `%` is.
fn in_raw_word<T>(line: &str, parsed: Parsed<T>) -> Parsed<T> {
    parsed.map_err(|(at, invalid)| {
        let words = tokenize_spanned(line).unwrap_or_default();
        let word = words.iter().rev().find(|(start, _)| *start <= at);
        let at = match word {
            Some((start, text)) if !line.as_bytes()[*start..].starts_with(text) => *start,
            _ => at,
        };
        (at.min(line.len()), invalid)
    })
}

/// The words of one line with their offsets.
struct Words {
    words: Vec<(usize, String)>,
    pos: usize,
    end: usize,
}

impl Words {
    fn new(line: &str) -> Parsed<Self> {
        let words = tokenize_spanned(line)?
            .into_iter()
            .map(|(at, w)| (at, String::from_utf8_lossy(&w).into_owned()))
            .collect();
        Ok(Words {
            words,
            pos: 0,
            end: line.len(),
        })
    }

    fn next(&mut self) -> Option<(usize, String)> {
        let w = self.words.get(self.pos).cloned();
        if w.is_some() {
            self.pos += 1;
        }
        w
    }

    fn peek(&self) -> Option<&str> {
        self.words.get(self.pos).map(|(_, w)| w.as_str())
    }

    /// Offset of the next word, or the end of the line.
    fn here(&self) -> usize {
        self.words.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn expect(&mut self, what: &str, hint: &str) -> Parsed<(usize, String)> {
        match self.next() {
            Some(w) => Ok(w),
            None => err(self.end, format!("missing {what}"), hint),
        }
    }

    /// The next word if it is not `if`/`unless`.
    fn argument(&mut self) -> Option<(usize, String)> {
        match self.peek() {
            Some("if" | "unless") | None => None,
            Some(_) => self.next(),
        }
    }
}

// ---------------------------------------------------------------- fetches

/// Match suffixes of fetch names (`hdr_beg` = `hdr -m beg`).
const SUFFIXES: [&str; 7] = ["beg", "end", "sub", "dir", "dom", "reg", "len"];

const FETCH_NAMES: &[&str] = &[
    "hdr",
    "req.hdr",
    "res.hdr",
    "hdr_cnt",
    "req.hdr_cnt",
    "res.hdr_cnt",
    "path",
    "url",
    "url_param",
    "urlp",
    "query",
    "method",
    "req.ver",
    "req_ver",
    "src",
    "src_port",
    "dst",
    "dst_port",
    "fc_pp_authority",
    "fc_pp_unique_id",
    "ssl_fc",
    "ssl_fc_sni",
    "req.cook",
    "cook",
    "http_auth",
    "status",
    "req.len",
    "req.payload",
    "req.ssl_hello_type",
    "req.ssl_sni",
    "req.ssl_ver",
    "req.ssl_alpn",
];

const FETCH_HINT: &str = "fetches: hdr(<name>) hdr_beg/end/sub/dom/reg/dir/len(<name>) \
     hdr_cnt(<name>) path path_beg/end/sub/dir/reg url url_param(<name>) query method \
     req.ver src src_port dst dst_port fc_pp_authority fc_pp_unique_id ssl_fc ssl_fc_sni req.cook(<name>) http_auth(<userlist>) \
     status (http-response); req.len req.payload(<offset>,<length>) req.ssl_hello_type \
     req.ssl_sni req.ssl_ver req.ssl_alpn (tcp-request content, use_backend in mode tcp)";

/// A fetch written as `name` or `name(arg,...)`, with the match method its
/// suffix implies (`path_beg` → beg).
fn parse_fetch(at: usize, text: &str, env: &Env<'_>) -> Parsed<(Fetch, Option<&'static str>)> {
    let (name, args) = match text.find('(') {
        Some(open) => {
            if !text.ends_with(')') {
                return err(
                    at + text.len(),
                    format!("`{text}`: missing `)`"),
                    "write fetch arguments in parentheses, e.g. hdr(host)",
                );
            }
            let inner = &text[open + 1..text.len() - 1];
            let args: Vec<&str> = if inner.is_empty() {
                Vec::new()
            } else {
                inner.split(',').collect()
            };
            (&text[..open], args)
        }
        None => (text, Vec::new()),
    };
    let (base, suffix) = match name.rsplit_once('_') {
        Some((b, s)) if SUFFIXES.contains(&s) && FETCH_NAMES.contains(&b) => {
            (b, SUFFIXES.iter().copied().find(|x| *x == s))
        }
        _ => (name, None),
    };
    let one_arg = |what: &str| -> Parsed<Box<str>> {
        match args.as_slice() {
            [a] if !a.trim().is_empty() => Ok(a.trim().into()),
            _ => err(
                at,
                format!("`{base}` needs one argument, the {what}"),
                format!("write {base}(<{what}>)"),
            ),
        }
    };
    let no_arg = || -> Parsed<()> {
        if args.is_empty() {
            Ok(())
        } else {
            err(
                at,
                format!("`{base}` takes no argument"),
                format!("write {base} alone"),
            )
        }
    };
    let side = |prefix: &str| match prefix {
        "req" => Side::Request,
        "res" => Side::Response,
        _ => Side::Current,
    };
    let fetch = match base {
        "hdr" | "req.hdr" | "res.hdr" => {
            let side = side(base.split('.').next().unwrap_or(""));
            match args.as_slice() {
                [name, occ] if !name.trim().is_empty() => {
                    // The occurrence's position in `text`, for the error.
                    let occ_at = at + text.len() - 1 - occ.len();
                    match occ.trim().parse::<i32>() {
                        Ok(n) if n != 0 => Fetch::Hdr {
                            name: name.trim().into(),
                            side,
                            occ: Some(n),
                        },
                        _ => {
                            return err(
                                occ_at,
                                format!("`{base}`: occurrence `{occ}` is not a non-zero integer"),
                                format!(
                                    "write {base}(<name>,<occ>): 1 is the first value, 2 the second, -1 the last"
                                ),
                            )
                        }
                    }
                }
                _ => Fetch::Hdr {
                    name: one_arg("header name")?,
                    side,
                    occ: None,
                },
            }
        }
        "hdr_cnt" | "req.hdr_cnt" | "res.hdr_cnt" => Fetch::HdrCnt {
            name: one_arg("header name")?,
            side: side(base.split('.').next().unwrap_or("")),
        },
        "path" => no_arg().map(|_| Fetch::Path)?,
        "url" => no_arg().map(|_| Fetch::Url)?,
        "url_param" | "urlp" => Fetch::UrlParam(one_arg("parameter name")?),
        "query" => no_arg().map(|_| Fetch::Query)?,
        "method" => no_arg().map(|_| Fetch::Method)?,
        "req.ver" | "req_ver" => no_arg().map(|_| Fetch::ReqVer)?,
        "src" => no_arg().map(|_| Fetch::Src)?,
        "src_port" => no_arg().map(|_| Fetch::SrcPort)?,
        "dst" => no_arg().map(|_| Fetch::Dst)?,
        "dst_port" => no_arg().map(|_| Fetch::DstPort)?,
        "fc_pp_authority" => no_arg().map(|_| Fetch::FcPpAuthority)?,
        "fc_pp_unique_id" => no_arg().map(|_| Fetch::FcPpUniqueId)?,
        "ssl_fc" => no_arg().map(|_| Fetch::SslFc)?,
        "ssl_fc_sni" => no_arg().map(|_| Fetch::SslFcSni)?,
        "req.cook" | "cook" => Fetch::ReqCook(one_arg("cookie name")?),
        "http_auth" => {
            let list = one_arg("userlist name")?;
            match env.userlists.iter().find(|u| *u.name == *list) {
                Some(u) => Fetch::HttpAuth(Arc::clone(u)),
                None => {
                    let names: Vec<&str> = env.userlists.iter().map(|u| u.name.as_str()).collect();
                    return err(
                        at,
                        format!("userlist \"{list}\" is not defined"),
                        format!(
                            "define it with [[userlist]] name = \"{list}\"; defined userlists: {}",
                            super::sections::names_or_none(&names)
                        ),
                    );
                }
            }
        }
        "status" => {
            no_arg()?;
            if !env.response {
                return err(
                    at,
                    "`status` is a response fetch",
                    "use it in http-response rules",
                );
            }
            Fetch::Status
        }
        "req.len" => no_arg().map(|_| Fetch::ReqLen)?,
        "req.payload" => {
            let number = |a: &str| a.trim().parse::<usize>().ok().filter(|n| *n <= 1 << 20);
            match args.as_slice() {
                [o, l] if number(o).is_some() && number(l).is_some() => Fetch::ReqPayload {
                    offset: number(o).unwrap_or_default(),
                    len: number(l).unwrap_or_default(),
                },
                _ => {
                    return err(
                        at,
                        format!("`{text}`: req.payload takes an offset and a length"),
                        "write req.payload(<offset>,<length>) in bytes, each at most 1048576; length 0 is up to the end",
                    )
                }
            }
        }
        "req.ssl_hello_type" => no_arg().map(|_| Fetch::ReqSslHelloType)?,
        "req.ssl_sni" => no_arg().map(|_| Fetch::ReqSslSni)?,
        "req.ssl_ver" => no_arg().map(|_| Fetch::ReqSslVer)?,
        "req.ssl_alpn" => no_arg().map(|_| Fetch::ReqSslAlpn)?,
        other => {
            // `pth_beg`: suggest on the base, keep the suffix.
            let (stem, tail) = match other.rsplit_once('_') {
                Some((b, s)) if SUFFIXES.contains(&s) => (b, format!("_{s}")),
                _ => (other, String::new()),
            };
            let hint = match did_you_mean(stem, FETCH_NAMES) {
                Some(near) => format!("did you mean `{near}{tail}`? {FETCH_HINT}"),
                None => FETCH_HINT.to_string(),
            };
            return err(at, format!("unknown fetch `{other}`"), hint);
        }
    };
    if fetch.reads_payload() && !env.payload {
        return err(
            at,
            format!("`{base}` reads the client's first bytes, which are not there in this rule"),
            "use it in tcp-request content rules (with inspect-delay) or use_backend of a mode tcp frontend",
        );
    }
    if suffix.is_some() && fetch.sample_type() != SampleType::Str {
        return err(
            at,
            format!("`{name}`: `{base}` is not a string fetch"),
            "match suffixes (_beg, _end, ...) apply to string fetches",
        );
    }
    Ok((fetch, suffix))
}

// -------------------------------------------------------------------- ACLs

const MATCH_METHODS: [&str; 12] = [
    "str", "beg", "end", "sub", "dir", "dom", "reg", "found", "len", "int", "ip", "bool",
];

/// An ACL expression: `fetch [-i] [-m method] [-f file] [--] pattern...`.
fn parse_acl_words(words: &mut Words, stop_at_brace: bool, env: &Env<'_>) -> Parsed<AclTest> {
    let (at, fetch_text) = words.expect(
        "fetch",
        "an ACL starts with a fetch, e.g. \"path_beg /static\"",
    )?;
    let (fetch, suffix) = parse_fetch(at, &fetch_text, env)?;
    let mut icase = false;
    let mut method: Option<(usize, String)> = suffix.map(|s| (at, s.to_string()));
    let mut patterns: Vec<(usize, String)> = Vec::new();
    let mut flags_done = false;
    while let Some(word) = words.peek() {
        if stop_at_brace && word == "}" {
            break;
        }
        let (wat, word) = words.next().unwrap_or_default();
        if !flags_done && word.starts_with('-') && word.len() > 1 {
            match word.as_str() {
                "-i" => icase = true,
                "-m" => {
                    let (mat, m) = words.expect(
                        "match method after -m",
                        "write -m str|beg|end|sub|dir|dom|reg|found|len|int|ip|bool",
                    )?;
                    if !MATCH_METHODS.contains(&m.as_str()) {
                        return err(
                            mat,
                            format!("unknown match method `{m}`"),
                            "match methods: str beg end sub dir dom reg found len int ip bool",
                        );
                    }
                    method = Some((mat, m));
                }
                "-f" => {
                    let (fat, file) = words.expect(
                        "file name after -f",
                        "write -f <file> (one pattern per line)",
                    )?;
                    patterns.extend(read_pattern_file(fat, &file, env.base_dir)?);
                }
                "--" => flags_done = true,
                // Forbids DNS resolution of address patterns: percore
                // never resolves them (they must be addresses already).
                "-n" => {}
                // The ACL's id for HAProxy's runtime API, which percore
                // does not have: nothing else depends on it.
                "-u" => {
                    let (uat, id) = words.expect(
                        "unique id after -u",
                        "write -u <number> (HAProxy's id for the runtime API)",
                    )?;
                    if id.parse::<u32>().is_err() {
                        return err(
                            uat,
                            format!("`-u {id}`: the unique id is a number"),
                            "write -u <number>, e.g. -u 1",
                        );
                    }
                }
                "-M" => {
                    return err(
                        wat,
                        "ACL flag `-M` (patterns from a map file) is not supported by percore",
                        "write the keys in a pattern file and use -f <file>",
                    )
                }
                _ if fetch.sample_type() == SampleType::Int && word[1..].parse::<i64>().is_ok() => {
                    flags_done = true;
                    patterns.push((wat, word));
                }
                _ => {
                    return err(
                        wat,
                        format!("unknown ACL flag `{word}`"),
                        "supported flags: -i -m -f -n -u --; put -- before a pattern that starts with -",
                    )
                }
            }
            continue;
        }
        flags_done = true;
        patterns.push((wat, word));
    }
    let method = match &method {
        Some((mat, m)) => (*mat, m.as_str()),
        None => (
            at,
            match fetch.sample_type() {
                SampleType::Str => "str",
                SampleType::Int => "int",
                SampleType::Ip => "ip",
                SampleType::Bool => "bool",
            },
        ),
    };
    let matcher = build_matcher(at, &fetch, method, icase, &patterns)?;
    Ok(AclTest { fetch, matcher })
}

fn read_pattern_file(at: usize, file: &str, base: &Path) -> Parsed<Vec<(usize, String)>> {
    let path = base.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| (at, l.to_string()))
            .collect()),
        Err(e) => err(
            at,
            format!("cannot read pattern file {}: {e}", path.display()),
            "-f paths are relative to the configuration file; one pattern per line, # comments",
        ),
    }
}

fn build_matcher(
    at: usize,
    fetch: &Fetch,
    (mat, method): (usize, &str),
    icase: bool,
    patterns: &[(usize, String)],
) -> Parsed<Matcher> {
    let ty = fetch.sample_type();
    let needs = |want: &[SampleType], what: &str| -> Parsed<()> {
        if want.contains(&ty) {
            Ok(())
        } else {
            err(
                mat,
                format!("-m {method} needs {what} samples, this fetch gives {ty:?} ones"),
                "drop -m to use the fetch's own match method",
            )
        }
    };
    let none_allowed = |kind: &str| -> Parsed<()> {
        match patterns.first() {
            Some((pat, p)) => err(
                *pat,
                format!("unexpected pattern `{p}`: -m {kind} takes none"),
                "a boolean fetch such as ssl_fc is written alone: { ssl_fc }",
            ),
            None => Ok(()),
        }
    };
    let some_needed = || -> Parsed<()> {
        if patterns.is_empty() {
            err(
                at,
                "this ACL has no pattern: it would never match",
                "add patterns after the fetch, or use -m found to test for presence",
            )
        } else {
            Ok(())
        }
    };
    let strs = || StrPatterns {
        patterns: patterns
            .iter()
            .map(|(_, p)| {
                let p = if icase {
                    p.to_ascii_lowercase()
                } else {
                    p.clone()
                };
                p.into_bytes().into_boxed_slice()
            })
            .collect(),
        icase,
    };
    Ok(match method {
        "found" => {
            none_allowed("found")?;
            Matcher::Found
        }
        "bool" => {
            needs(&[SampleType::Bool, SampleType::Int], "boolean or integer")?;
            none_allowed("bool")?;
            Matcher::Bool
        }
        "str" | "beg" | "end" | "sub" | "dir" | "dom" | "reg" => {
            needs(&[SampleType::Str], "string")?;
            some_needed()?;
            match method {
                "str" => Matcher::Str(strs()),
                "beg" => Matcher::Beg(strs()),
                "end" => Matcher::End(strs()),
                "sub" => Matcher::Sub(strs()),
                "dir" => Matcher::Dir(strs()),
                "dom" => Matcher::Dom(strs()),
                _ => Matcher::Reg(
                    patterns
                        .iter()
                        .map(|(pat, p)| compile_regex(*pat, p, icase))
                        .collect::<Parsed<Vec<Regex>>>()?,
                ),
            }
        }
        "len" => {
            needs(&[SampleType::Str], "string")?;
            some_needed()?;
            Matcher::Len(int_patterns(patterns)?)
        }
        "int" => {
            needs(&[SampleType::Int, SampleType::Bool], "integer")?;
            some_needed()?;
            Matcher::Int(int_patterns(patterns)?)
        }
        _ => {
            needs(&[SampleType::Ip], "address")?;
            some_needed()?;
            Matcher::Ip(
                patterns
                    .iter()
                    .map(|(pat, p)| {
                        p.parse::<Network>().map_err(|e| {
                            (
                                *pat,
                                Invalid {
                                    message: format!("invalid address pattern `{p}`: {e}"),
                                    hint: Some(
                                        "write an IPv4 or IPv6 address or network, e.g. 10.0.0.0/8 or 2001:db8::/32"
                                            .into(),
                                    ),
                                },
                            )
                        })
                    })
                    .collect::<Parsed<Vec<Network>>>()?,
            )
        }
    })
}

fn compile_regex(at: usize, pattern: &str, icase: bool) -> Parsed<Regex> {
    RegexBuilder::new(pattern)
        .case_insensitive(icase)
        .size_limit(1 << 20)
        .build()
        .or_else(|e| {
            let first = e.to_string();
            let first = first.lines().last().unwrap_or("").trim().to_string();
            err(
                at,
                format!("invalid regular expression `{pattern}`: {first}"),
                "regexes use the Rust regex syntax (like PCRE without look-around or backreferences)",
            )
        })
}

const INT_HINT: &str = "integer patterns: N, N:M, N:, :M, or eq|ge|gt|le|lt N";

fn int_patterns(patterns: &[(usize, String)]) -> Parsed<Vec<IntRange>> {
    let int = |at: usize, s: &str| -> Parsed<i64> {
        s.parse::<i64>()
            .or_else(|_| err(at, format!("invalid integer pattern `{s}`"), INT_HINT))
    };
    if let Some((at, op)) = patterns.first() {
        if matches!(op.as_str(), "eq" | "ge" | "gt" | "le" | "lt") {
            let [_, (vat, v)] = patterns else {
                return err(*at, format!("`{op}` needs exactly one number"), INT_HINT);
            };
            let v = int(*vat, v)?;
            let range = match op.as_str() {
                "eq" => IntRange { min: v, max: v },
                "ge" => IntRange {
                    min: v,
                    max: i64::MAX,
                },
                "gt" => IntRange {
                    min: v.saturating_add(1),
                    max: i64::MAX,
                },
                "le" => IntRange {
                    min: i64::MIN,
                    max: v,
                },
                _ => IntRange {
                    min: i64::MIN,
                    max: v.saturating_sub(1),
                },
            };
            return Ok(vec![range]);
        }
    }
    patterns
        .iter()
        .map(|(at, p)| match p.split_once(':') {
            Some((lo, hi)) => Ok(IntRange {
                min: if lo.is_empty() {
                    i64::MIN
                } else {
                    int(*at, lo)?
                },
                max: if hi.is_empty() {
                    i64::MAX
                } else {
                    int(*at, hi)?
                },
            }),
            None => {
                let v = int(*at, p)?;
                Ok(IntRange { min: v, max: v })
            }
        })
        .collect()
}

/// One ACL line of an `acl = { name = "..." }` entry.
pub(crate) fn parse_acl(line: &str, env: &Env<'_>) -> Parsed<AclTest> {
    in_raw_word(line, parse_acl_line(line, env))
}

fn parse_acl_line(line: &str, env: &Env<'_>) -> Parsed<AclTest> {
    let mut words = Words::new(line)?;
    let test = parse_acl_words(&mut words, false, env)?;
    Ok(test)
}

// -------------------------------------------------------------- conditions

/// HAProxy's predefined ACLs that make sense without TLS or bodies.
fn predefined(name: &str) -> Option<AclTest> {
    let strs = |p: &[&str]| StrPatterns {
        patterns: p.iter().map(|s| s.as_bytes().into()).collect(),
        icase: false,
    };
    Some(match name {
        "TRUE" => AclTest {
            fetch: Fetch::Src,
            matcher: Matcher::Found,
        },
        "FALSE" => AclTest {
            fetch: Fetch::Src,
            matcher: Matcher::Int(Vec::new()),
        },
        "LOCALHOST" => AclTest {
            fetch: Fetch::Src,
            matcher: Matcher::Ip(vec!["127.0.0.0/8".parse().ok()?, "::1".parse().ok()?]),
        },
        "METH_GET" => AclTest {
            fetch: Fetch::Method,
            matcher: Matcher::Str(strs(&["GET", "HEAD"])),
        },
        "METH_POST" | "METH_PUT" | "METH_DELETE" | "METH_OPTIONS" | "METH_CONNECT"
        | "METH_HEAD" | "METH_TRACE" => AclTest {
            fetch: Fetch::Method,
            matcher: Matcher::Str(strs(&[&name[5..]])),
        },
        "HTTP_1.0" | "HTTP_1.1" => AclTest {
            fetch: Fetch::ReqVer,
            matcher: Matcher::Str(strs(&[&name[5..]])),
        },
        "HTTP_URL_ABS" => AclTest {
            fetch: Fetch::Url,
            matcher: Matcher::Reg(vec![Regex::new("^[^/:]*://").ok()?]),
        },
        "HTTP_URL_SLASH" => AclTest {
            fetch: Fetch::Url,
            matcher: Matcher::Beg(strs(&["/"])),
        },
        _ => return None,
    })
}

/// `if|unless terms`, from the current word to the end of the line.
fn parse_condition(words: &mut Words, env: &Env<'_>) -> Parsed<Option<Condition>> {
    let Some((at, kw)) = words.next() else {
        return Ok(None);
    };
    let negate = match kw.as_str() {
        "if" => false,
        "unless" => true,
        _ => {
            return err(
                at,
                format!("unexpected `{kw}`"),
                "a condition starts with `if` or `unless`; quote values that contain spaces",
            )
        }
    };
    let mut any_of: Vec<Vec<Term>> = vec![Vec::new()];
    let mut negate_next = false;
    while let Some((wat, word)) = words.next() {
        if word == "||" || word == "or" {
            if negate_next || any_of.last().is_some_and(Vec::is_empty) {
                return err(
                    wat,
                    format!("`{word}` without a condition before it"),
                    COND_HINT,
                );
            }
            any_of.push(Vec::new());
            continue;
        }
        let mut name = word.as_str();
        let mut negated = negate_next;
        negate_next = false;
        if let Some(rest) = name.strip_prefix('!') {
            negated = !negated;
            name = rest;
            if name.is_empty() {
                negate_next = negated;
                continue;
            }
        }
        let acl = if name == "{" {
            let test = parse_acl_words(words, true, env)?;
            match words.next() {
                Some((_, close)) if close == "}" => {}
                _ => {
                    return err(
                        wat,
                        "anonymous ACL without its closing `}`",
                        "write { fetch patterns } with spaces around the braces",
                    )
                }
            }
            AclRef::Anonymous(test)
        } else if let Some(index) = env.acls.iter().position(|a| a == name) {
            AclRef::Named(index)
        } else if let Some(test) = predefined(name) {
            AclRef::Anonymous(test)
        } else {
            let names: Vec<&str> = env.acls.iter().map(String::as_str).collect();
            let hint = match did_you_mean(name, &names) {
                Some(near) => format!("did you mean `{near}`? {}", defined_acls(&names)),
                None => format!(
                    "{}; an inline test is written {{ fetch patterns }}",
                    defined_acls(&names)
                ),
            };
            return err(
                wat + usize::from(negated),
                format!("unknown ACL `{name}`"),
                hint,
            );
        };
        if let Some(group) = any_of.last_mut() {
            group.push(Term {
                negate: negated,
                acl,
            });
        }
    }
    if negate_next || any_of.last().is_some_and(Vec::is_empty) {
        return err(
            words.end,
            format!("`{kw}` without a complete condition"),
            COND_HINT,
        );
    }
    Ok(Some(Condition { negate, any_of }))
}

const COND_HINT: &str =
    "conditions: if|unless acl1 !acl2 || { fetch patterns } (space means AND, || or `or` means OR)";

fn defined_acls(names: &[&str]) -> String {
    if names.is_empty() {
        "no ACL is defined in this section".into()
    } else {
        format!("ACLs defined here: {}", names.join(", "))
    }
}

// ----------------------------------------------------------------- values

/// A value with `%[fetch,converter...]` parts.
fn parse_format(at: usize, text: &str, env: &Env<'_>) -> Parsed<Format> {
    let mut parts = Vec::new();
    let mut literal = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            literal.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'%') => {
                literal.push(b'%');
                i += 2;
            }
            Some(b'[') => {
                let Some(close) = matching_bracket(&text[i + 2..]) else {
                    return err(
                        at + i,
                        "`%[` without its `]`",
                        "write %[fetch] or %[fetch,converter]",
                    );
                };
                let inner = &text[i + 2..i + 2 + close];
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                }
                parts.push(parse_expression(at + i + 2, inner, env)?);
                i += 2 + close + 1;
            }
            _ => return err(
                at + i,
                "a `%` in a value must start %[fetch] (or be doubled: %%)",
                "HAProxy log variables such as %ci are not supported in rule values; use %[src]",
            ),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal.into()));
    }
    Ok(Format { parts })
}

fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ']' if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// `fetch(args),conv(args),...`, splitting on commas outside parentheses.
fn parse_expression(at: usize, text: &str, env: &Env<'_>) -> Parsed<Part> {
    let mut pieces: Vec<(usize, &str)> = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push((start, &text[start..]));
    let (off, fetch_text) = pieces[0];
    let (fetch, suffix) = parse_fetch(at + off, fetch_text.trim(), env)?;
    if suffix.is_some() {
        return err(
            at + off,
            format!("`{fetch_text}` is a match, not a fetch"),
            "in a value write the plain fetch, e.g. %[path]",
        );
    }
    let mut converters = Vec::new();
    for (off, conv) in &pieces[1..] {
        let conv = conv.trim();
        let c = if let Some(args) = conv.strip_prefix("iif(").and_then(|r| r.strip_suffix(')')) {
            let Some((yes, no)) = args.split_once(',') else {
                return err(
                    at + off,
                    "iif needs two values",
                    "write iif(<if true>,<if false>)",
                );
            };
            Converter::Iif(yes.as_bytes().into(), no.as_bytes().into())
        } else if conv == "lower" {
            Converter::Lower
        } else if conv == "upper" {
            Converter::Upper
        } else {
            return err(
                at + off,
                format!("unknown converter `{conv}`"),
                "converters: iif(<if true>,<if false>), lower, upper",
            );
        };
        converters.push(c);
    }
    Ok(Part::Sample { fetch, converters })
}

// ------------------------------------------------------------------ rules

/// `use_backend NAME [if|unless COND]` (the `use_backend` keyword itself is
/// the TOML key).
pub(crate) fn parse_use_backend(line: &str, env: &Env<'_>) -> Parsed<Rule<usize>> {
    in_raw_word(line, parse_use_backend_words(line, env))
}

fn parse_use_backend_words(line: &str, env: &Env<'_>) -> Parsed<Rule<usize>> {
    let mut words = Words::new(line)?;
    let (at, name) = words.expect("backend name", "write \"<backend> if <condition>\"")?;
    let Some(id) = env.backends.iter().position(|b| *b == name) else {
        let names: Vec<&str> = env.backends.iter().map(String::as_str).collect();
        let defined = super::sections::names_or_none(&names);
        let hint = match did_you_mean(&name, &names) {
            Some(near) => format!("did you mean \"{near}\"? defined backends: {defined}"),
            None => format!("defined backends: {defined}"),
        };
        return err(at, format!("backend \"{name}\" is not defined"), hint);
    };
    let cond = parse_condition(&mut words, env)?;
    Ok(Rule { action: id, cond })
}

/// One `tcp-request` line.
#[derive(Debug)]
pub(crate) enum TcpLine {
    InspectDelay(std::time::Duration),
    Connection(Rule<TcpAction>),
    Content(Rule<TcpAction>),
}

const TCP_HINT: &str =
    "write inspect-delay <time>, connection accept|reject|expect-proxy layer4 [if <cond>], \
     or content accept|reject [if <cond>]";

/// A `tcp-request` line (HAProxy's syntax after `tcp-request`). The
/// condition of a content rule may read the client's first bytes; a
/// connection rule's may not (none were read).
pub(crate) fn parse_tcp_request(line: &str, env: &Env<'_>) -> Parsed<TcpLine> {
    in_raw_word(line, parse_tcp_request_words(line, env))
}

fn parse_tcp_request_words(line: &str, env: &Env<'_>) -> Parsed<TcpLine> {
    let mut words = Words::new(line)?;
    let (at, kind) = words.expect("tcp-request kind", TCP_HINT)?;
    match kind.as_str() {
        "inspect-delay" => {
            let (dat, text) = words.expect("delay", "write inspect-delay 5s")?;
            if let Some((eat, extra)) = words.next() {
                return err(
                    eat,
                    format!("unexpected `{extra}`"),
                    "inspect-delay takes one duration",
                );
            }
            super::values::parse_duration(&text)
                .map(TcpLine::InspectDelay)
                .map_err(|invalid| (dat, invalid))
        }
        "connection" | "content" => {
            let connection = kind == "connection";
            let (aat, action) = words.expect("action", TCP_HINT)?;
            let action = match action.as_str() {
                "accept" => TcpAction::Accept,
                "reject" => TcpAction::Reject,
                "expect-proxy" if connection => {
                    match words.next() {
                        Some((_, layer)) if layer == "layer4" => {}
                        _ => {
                            return err(
                                aat,
                                "expect-proxy needs `layer4`",
                                "write tcp-request connection expect-proxy layer4 [if <cond>]",
                            )
                        }
                    }
                    TcpAction::ExpectProxy
                }
                "expect-proxy" => {
                    return err(
                        aat,
                        "expect-proxy is a connection action",
                        "write tcp-request connection expect-proxy layer4 [if <cond>]",
                    )
                }
                other => {
                    let known = if connection {
                        &["accept", "reject", "expect-proxy"][..]
                    } else {
                        &["accept", "reject"][..]
                    };
                    return unknown_action(aat, other, known, &format!("tcp-request {kind}"));
                }
            };
            let env = Env {
                payload: !connection,
                ..*env
            };
            let cond = parse_condition(&mut words, &env)?;
            let rule = Rule { action, cond };
            Ok(if connection {
                TcpLine::Connection(rule)
            } else {
                TcpLine::Content(rule)
            })
        }
        other => err(at, format!("unknown tcp-request kind `{other}`"), TCP_HINT),
    }
}

/// The `http-request` actions percore has (also what `convert` maps).
pub(crate) const REQUEST_ACTIONS: &[&str] = &[
    "allow",
    "deny",
    "reject",
    "tarpit",
    "auth",
    "redirect",
    "return",
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "set-path",
    "set-query",
];
/// The `http-response` actions percore has.
pub(crate) const RESPONSE_ACTIONS: &[&str] = &[
    "deny",
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
];

fn unknown_action<T>(at: usize, action: &str, known: &[&str], kind: &str) -> Parsed<T> {
    let list = known.join(", ");
    let hint = match did_you_mean(action, known) {
        Some(near) => format!("did you mean `{near}`? {kind} actions: {list}"),
        None => format!("{kind} actions supported by percore: {list}"),
    };
    err(at, format!("unknown {kind} action `{action}`"), hint)
}

fn header_name(at: usize, name: &str) -> Parsed<Box<str>> {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return err(
            at,
            format!("invalid header name `{name}`"),
            "a header name is a token: letters, digits and !#$%&'*+-.^_`|~",
        );
    }
    if PROTECTED_FIELDS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
    {
        return err(
            at,
            format!("rules may not change `{name}`"),
            "percore frames bodies and manages connections by Content-Length, Transfer-Encoding and Connection",
        );
    }
    Ok(name.into())
}

/// set-header / add-header / del-header / replace-header.
fn parse_header_edit(action: &str, words: &mut Words, env: &Env<'_>) -> Parsed<Option<HeaderEdit>> {
    let name_of = |words: &mut Words| -> Parsed<Box<str>> {
        let (nat, name) = words.argument().map_or_else(
            || {
                err(
                    words.here(),
                    format!("`{action}` needs a header name"),
                    format!("write {action} <name> ..."),
                )
            },
            Ok,
        )?;
        header_name(nat, &name)
    };
    let value_of = |words: &mut Words, what: &str| -> Parsed<Format> {
        match words.argument() {
            Some((vat, v)) => {
                let format = parse_format(vat, &v, env)?;
                // A control byte (written with a TOML or \xHH escape) would
                // reach the server inside a field or the request line; a
                // space would split the request line. Found by fuzzing
                // (fuzz/corpus/header_edit).
                let target = matches!(action, "set-path" | "set-query");
                let bad = |b: &u8| (b.is_ascii_control() && *b != b'\t') || (target && *b == b' ');
                if format
                    .parts
                    .iter()
                    .any(|p| matches!(p, Part::Literal(l) if l.iter().any(bad)))
                {
                    return err(
                        vat,
                        format!(
                            "`{action}` value holds a control character{}",
                            if target { " or a space" } else { "" }
                        ),
                        if target {
                            "a path or query is sent as written: percent-encode it (%20 for a space)"
                        } else {
                            "a field value may hold visible characters, spaces and tabs only"
                        },
                    );
                }
                Ok(format)
            }
            None => err(
                words.here(),
                format!("`{action}` needs {what}"),
                "quote a value that contains spaces: set-header X-A \"a b\"",
            ),
        }
    };
    Ok(Some(match action {
        "set-header" => HeaderEdit::Set {
            name: name_of(words)?,
            value: value_of(words, "a value")?,
        },
        "add-header" => HeaderEdit::Add {
            name: name_of(words)?,
            value: value_of(words, "a value")?,
        },
        "del-header" => HeaderEdit::Del {
            name: name_of(words)?,
        },
        "replace-header" => {
            let name = name_of(words)?;
            let Some((rat, re)) = words.argument() else {
                return err(
                    words.here(),
                    "`replace-header` needs a regex and a replacement",
                    "write replace-header <name> <regex> <replacement with \\1>",
                );
            };
            HeaderEdit::Replace {
                name,
                regex: compile_regex(rat, &re, false)?,
                with: value_of(words, "a replacement")?,
            }
        }
        "set-path" => HeaderEdit::SetPath(value_of(words, "a path")?),
        "set-query" => HeaderEdit::SetQuery(value_of(words, "a query")?),
        _ => return Ok(None),
    }))
}

fn status_arg(words: &mut Words, keyword: &str, allowed: &[u16]) -> Parsed<u16> {
    let (at, text) = words.argument().map_or_else(
        || {
            err(
                words.here(),
                format!("`{keyword}` needs a status code"),
                format!("write {keyword} <code>"),
            )
        },
        Ok,
    )?;
    match text.parse::<u16>() {
        Ok(code) if allowed.contains(&code) => Ok(code),
        _ => {
            let list: Vec<String> = allowed.iter().map(u16::to_string).collect();
            err(
                at,
                format!("invalid status `{text}` for {keyword}"),
                format!("allowed: {}", list.join(", ")),
            )
        }
    }
}

/// `deny|tarpit [deny_status N]` (also `status N`, as HAProxy 2.2+).
fn deny_status(words: &mut Words, default: u16) -> Parsed<u16> {
    match words.peek() {
        Some(k @ ("deny_status" | "status")) => {
            let k = k.to_string();
            words.next();
            status_arg(words, &k, &DENY_STATUSES)
        }
        _ => Ok(default),
    }
}

fn parse_redirect(words: &mut Words, env: &Env<'_>) -> Parsed<Redirect> {
    const HINT: &str =
        "write redirect scheme|location|prefix <value> [code 301|302|303|307|308] [drop-query]";
    let Some((kat, kind)) = words.argument() else {
        return err(
            words.here(),
            "`redirect` needs scheme, location or prefix",
            HINT,
        );
    };
    let Some((vat, value)) = words.argument() else {
        return err(
            words.here(),
            format!("`redirect {kind}` needs a value"),
            HINT,
        );
    };
    let target = match kind.as_str() {
        "scheme" => RedirectTarget::Scheme(value.into()),
        "location" => RedirectTarget::Location(parse_format(vat, &value, env)?),
        "prefix" => RedirectTarget::Prefix(parse_format(vat, &value, env)?),
        _ => return err(kat, format!("unknown redirect type `{kind}`"), HINT),
    };
    let mut redirect = Redirect {
        target,
        code: 302,
        drop_query: false,
    };
    while let Some((oat, option)) = words.argument() {
        match option.as_str() {
            "code" => redirect.code = status_arg(words, "code", &REDIRECT_CODES)?,
            "drop-query" => redirect.drop_query = true,
            "append-slash" | "set-cookie" | "clear-cookie" => {
                return err(
                    oat,
                    format!("redirect option `{option}` is not supported by percore"),
                    HINT,
                )
            }
            _ => return err(oat, format!("unknown redirect option `{option}`"), HINT),
        }
    }
    Ok(redirect)
}

fn parse_return(words: &mut Words, env: &Env<'_>) -> Parsed<Reply> {
    const HINT: &str =
        "write return [status <code>] [content-type <type>] [string <text> | file <path>]";
    let mut reply = Reply {
        status: 200,
        content_type: None,
        body: Box::new([]),
    };
    let mut has_body = false;
    while let Some((oat, option)) = words.argument() {
        match option.as_str() {
            "status" => {
                let (sat, s) = words
                    .argument()
                    .map_or_else(|| err(words.here(), "`status` needs a code", HINT), Ok)?;
                reply.status = match s.parse::<u16>() {
                    Ok(code) if (200..=599).contains(&code) => code,
                    _ => {
                        return err(
                            sat,
                            format!("invalid status `{s}`"),
                            "a status from 200 to 599",
                        )
                    }
                };
            }
            "content-type" => {
                let (_, t) = words.argument().map_or_else(
                    || err(words.here(), "`content-type` needs a type", HINT),
                    Ok,
                )?;
                reply.content_type = Some(t.into());
            }
            "string" => {
                let (_, s) = words
                    .argument()
                    .map_or_else(|| err(words.here(), "`string` needs a text", HINT), Ok)?;
                reply.body = s.into_bytes().into();
                has_body = true;
            }
            "file" => {
                let (fat, f) = words
                    .argument()
                    .map_or_else(|| err(words.here(), "`file` needs a path", HINT), Ok)?;
                let path = env.base_dir.join(&f);
                match std::fs::read(&path) {
                    Ok(body) => reply.body = body.into(),
                    Err(e) => {
                        return err(
                            fat,
                            format!("cannot read {}: {e}", path.display()),
                            "paths are relative to the configuration file",
                        )
                    }
                }
                has_body = true;
            }
            "lf-string" | "lf-file" | "errorfile" | "errorfiles" | "hdr" | "default-errorfiles" => {
                return err(
                    oat,
                    format!("return option `{option}` is not supported by percore"),
                    HINT,
                )
            }
            _ => return err(oat, format!("unknown return option `{option}`"), HINT),
        }
    }
    if has_body && reply.content_type.is_none() {
        return err(
            words.here(),
            "a return body needs a content-type",
            "add content-type text/plain (HAProxy requires it too)",
        );
    }
    Ok(reply)
}

/// One `http-request` rule.
pub(crate) fn parse_http_request(line: &str, env: &Env<'_>) -> Parsed<Rule<RequestAction>> {
    in_raw_word(line, parse_http_request_words(line, env))
}

fn parse_http_request_words(line: &str, env: &Env<'_>) -> Parsed<Rule<RequestAction>> {
    let mut words = Words::new(line)?;
    let (at, action) = words.expect(
        "action",
        "write an action, e.g. \"deny if { src 10.0.0.0/8 }\"",
    )?;
    let parsed = match action.as_str() {
        "allow" => RequestAction::Allow,
        "deny" => RequestAction::Deny {
            status: deny_status(&mut words, 403)?,
        },
        "reject" => RequestAction::Reject,
        "tarpit" => RequestAction::Tarpit {
            status: deny_status(&mut words, 500)?,
        },
        "auth" => {
            let realm = match words.peek() {
                Some("realm") => {
                    words.next();
                    words
                        .argument()
                        .map_or_else(
                            || {
                                err(
                                    words.here(),
                                    "`realm` needs a name",
                                    "write auth realm <name>",
                                )
                            },
                            Ok,
                        )?
                        .1
                }
                _ => String::new(),
            };
            RequestAction::Auth {
                realm: realm.into(),
            }
        }
        "redirect" => RequestAction::Redirect(parse_redirect(&mut words, env)?),
        "return" => RequestAction::Return(parse_return(&mut words, env)?),
        other => match parse_header_edit(other, &mut words, env)? {
            Some(edit) => RequestAction::Edit(edit),
            None => return unknown_action(at, other, REQUEST_ACTIONS, "http-request"),
        },
    };
    finish(&mut words, parsed, env)
}

/// One `http-response` rule.
pub(crate) fn parse_http_response(line: &str, env: &Env<'_>) -> Parsed<Rule<ResponseAction>> {
    in_raw_word(line, parse_http_response_words(line, env))
}

fn parse_http_response_words(line: &str, env: &Env<'_>) -> Parsed<Rule<ResponseAction>> {
    let mut words = Words::new(line)?;
    let (at, action) = words.expect(
        "action",
        "write an action, e.g. \"set-header X-Frame-Options DENY\"",
    )?;
    let parsed = match action.as_str() {
        "deny" => ResponseAction::Deny {
            status: deny_status(&mut words, 502)?,
        },
        "set-path" | "set-query" => {
            return unknown_action(at, &action, RESPONSE_ACTIONS, "http-response")
        }
        other => match parse_header_edit(other, &mut words, env)? {
            Some(edit) => ResponseAction::Edit(edit),
            None => return unknown_action(at, other, RESPONSE_ACTIONS, "http-response"),
        },
    };
    finish(&mut words, parsed, env)
}

/// The optional condition, and nothing after it.
fn finish<A>(words: &mut Words, action: A, env: &Env<'_>) -> Parsed<Rule<A>> {
    if let Some(w) = words.peek() {
        if w != "if" && w != "unless" {
            let at = words.here();
            return err(
                at,
                format!("unexpected `{w}`"),
                "a rule ends with its arguments and an optional if/unless condition; quote values with spaces",
            );
        }
    }
    let cond = parse_condition(words, env)?;
    Ok(Rule { action, cond })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeadLimits, ParseStatus, RequestParser};
    use crate::rules::{ConnFacts, Facts};

    fn env<'e>(acls: &'e [String], backends: &'e [String]) -> Env<'e> {
        Env {
            acls,
            userlists: &[],
            base_dir: Path::new("."),
            backends,
            response: false,
            payload: false,
        }
    }

    fn eval(acl: &str, raw: &str) -> bool {
        let e = env(&[], &[]);
        let test = parse_acl(acl, &e).unwrap_or_else(|(at, i)| panic!("{at}: {}", i.message));
        let mut parser = RequestParser::new(HeadLimits::from_bufsize(16384, 100));
        let conn = ConnFacts {
            pp: None,
            src: "10.1.2.3:5555".parse().unwrap(),
            dst: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
        };
        match parser.parse(raw.as_bytes()) {
            ParseStatus::Complete(h) => test.eval(&Facts::request(&conn, &h)),
            _ => panic!("bad request"),
        }
    }

    const REQ: &str = "GET /static/app.JS?tableId=9&x HTTP/1.1\r\nHost: www.example.com\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\nX-List: a, b\r\nCookie: s=1; SRV=b\r\n\r\n";

    #[test]
    fn fetches_and_flags() {
        assert!(eval("hdr(Upgrade) -i websocket", REQ));
        assert!(!eval("hdr(Upgrade) websocket", REQ));
        assert!(eval("path_beg -i /static /images", REQ));
        assert!(eval("path_end -i .jpg .css .js", REQ));
        assert!(!eval("path_end .js", REQ));
        assert!(eval("path_dir static", REQ));
        assert!(eval("path_reg ^/static/.*\\.JS$", REQ));
        assert!(eval("path -m sub app", REQ));
        assert!(eval("hdr_dom(host) example.com", REQ));
        assert!(eval("hdr_beg(host) www.", REQ));
        assert!(eval("hdr_end(host) .com", REQ));
        assert!(eval("hdr_sub(host) xampl", REQ));
        assert!(eval("hdr_reg(host) ^www\\.", REQ));
        assert!(eval("hdr(x-list) b", REQ));
        assert!(eval("hdr_cnt(x-list) eq 2", REQ));
        assert!(eval("hdr_cnt(x-missing) 0", REQ));
        assert!(eval("hdr_cnt(host) ge 1", REQ));
        assert!(!eval("hdr_cnt(host) gt 1", REQ));
        assert!(eval("url_param(tableId) 9", REQ));
        assert!(eval("urlp(x) -m found", REQ));
        assert!(!eval("url_param(nope) -m found", REQ));
        assert!(eval("query -m beg tableId=", REQ));
        assert!(eval("url -m end &x", REQ));
        assert!(eval("method GET HEAD", REQ));
        assert!(eval("req.ver 1.1", REQ));
        assert!(eval("src 10.0.0.0/8 192.168.0.0/16", REQ));
        assert!(!eval("src 2001:db8::/32", REQ));
        assert!(eval("src_port 5000:6000", REQ));
        assert!(eval("dst_port 8080", REQ));
        assert!(!eval("ssl_fc", REQ));
        assert!(!eval("ssl_fc_sni -m found", REQ));
        assert!(eval("req.cook(SRV) b", REQ));
        assert!(eval("hdr(host) -m len 15", REQ));
        assert!(eval("path_len gt 3", REQ));
        assert!(eval("hdr(host) -- www.example.com", REQ));
    }

    #[test]
    fn header_occurrences_and_flags_n_u() {
        // X-List: a, b
        assert!(eval("hdr(x-list,1) a", REQ));
        assert!(!eval("hdr(x-list,1) b", REQ));
        assert!(eval("hdr(x-list,2) b", REQ));
        assert!(eval("hdr(x-list,-1) b", REQ));
        assert!(eval("hdr(x-list,-2) a", REQ));
        assert!(!eval("hdr(x-list,3) -m found", REQ));
        assert!(!eval("hdr(x-list,-3) -m found", REQ));
        assert!(eval("req.hdr(x-list,-1) -m beg b", REQ));
        assert!(eval("src -n 10.0.0.0/8", REQ));
        assert!(eval("path_beg -u 7 -i /STATIC", REQ));
    }

    fn error(line: &str) -> (usize, String) {
        let acls = vec!["is_ws".to_string()];
        let e = env(&acls, &[]);
        match parse_http_request(line, &e) {
            Ok(_) => panic!("expected an error for {line}"),
            Err((at, i)) => (at, i.message),
        }
    }

    #[test]
    fn errors_point_into_the_line() {
        assert_eq!(error("deny if is_wss").0, 8);
        assert_eq!(error("deny if { pth /x }").0, 10);
        assert_eq!(error("deny if { path_beg }").0, 10);
        assert_eq!(error("dney").0, 0);
        assert_eq!(error("deny if { path_reg ( }").0, 19);
        assert_eq!(error("deny if { src 10.0.0.300 }").0, 14);
        assert_eq!(error("redirect scheme https code 309").0, 27);
        assert_eq!(error("deny if is_ws ||").0, 16);
        assert_eq!(error("set-header Content-Length 5").0, 11);
        assert_eq!(error("set-header X-A %ci").0, 15);
        assert_eq!(error("deny if { ssl_fc 1 }").0, 17);
        assert_eq!(error("deny if { path_beg /x").0, 8);
        assert!(error("deny foo").1.contains("unexpected"));
        // hdr(name,occ): at the occurrence.
        assert_eq!(error("deny if { hdr(x,0) a }").0, 16);
        assert_eq!(error("deny if { hdr(x,last) a }").0, 16);
        assert_eq!(error("deny if { path -u x / }").0, 18);
        assert_eq!(error("deny if { path -u }").0, 18);
        assert_eq!(error("deny if { path -M / }").0, 15);
        assert!(error("deny if { path -M / }").1.contains("-M"));
        // Inside a word written with escapes, at the word (fuzzing found
        // offsets inside a character); inside a plain word, exactly.
        assert_eq!(error("set-header X-A \"\\x41\u{e9}%\"").0, 15);
        assert_eq!(error("set-header X-A a%ci").0, 16);
    }

    /// Found by fuzzing (fuzz/corpus/header_edit): a control byte in a
    /// rule's value reached the server inside a header field.
    #[test]
    fn control_bytes_and_spaces_in_rewritten_values_are_refused() {
        let (at, message) = error("set-header X-A \"a\\x01b\"");
        assert_eq!(at, 15);
        assert!(message.contains("control character"), "{message}");
        assert_eq!(error("add-header X-A a\u{2}b").0, 15);
        assert_eq!(error("replace-header X-A (.*) \"\\x00\\1\"").0, 24);
        assert!(error("set-path \"/a b\"").1.contains("space"));
        assert!(error("set-query \"a=\\x1b\"").1.contains("control"));
        // A tab is a field-value byte.
        let e = env(&[], &[]);
        assert!(parse_http_request("set-header X-A \"a\\tb\"", &e).is_ok());
    }

    #[test]
    fn conditions_combine() {
        let acls = vec!["a".to_string(), "b".to_string()];
        let e = env(&acls, &[]);
        let rule = parse_http_request("deny if a !b || { path / } b", &e).unwrap();
        let cond = rule.cond.unwrap();
        assert!(!cond.negate);
        assert_eq!(cond.any_of.len(), 2);
        assert_eq!(cond.any_of[0].len(), 2);
        assert!(cond.any_of[0][1].negate);
        let rule = parse_http_request("deny unless ! a", &e).unwrap();
        let cond = rule.cond.unwrap();
        assert!(cond.negate && cond.any_of[0][0].negate);
        let rule = parse_http_request("redirect scheme https code 301 if !{ ssl_fc }", &e).unwrap();
        assert!(matches!(
            rule.action,
            RequestAction::Redirect(Redirect { code: 301, .. })
        ));
        assert!(rule.cond.unwrap().any_of[0][0].negate);
    }
}
