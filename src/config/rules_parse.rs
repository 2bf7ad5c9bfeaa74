//! Parsing HAProxy rule lines written in TOML strings: ACL expressions
//! (`hdr(Upgrade) -i websocket`), conditions (`if is_ws !{ ssl_fc }`),
//! `use_backend`, `http-request` and `http-response` rules, and values
//! with `%[...]`. Pure functions over one line; every error carries the
//! byte offset in the line where it was found, which the loader turns into
//! a file position.

use std::path::Path;
use std::sync::Arc;

use regex::bytes::Regex;

use super::error::did_you_mean;
use super::health_lines::tokenize_spanned;
use super::values::Invalid;
use crate::http::Network;
use crate::rules::convert_ops::ValType;
use crate::rules::{
    AclRef, AclTest, Condition, Fetch, Format, HeaderEdit, IntRange, Matcher, Part, Redirect,
    RedirectTarget, Reply, RequestAction, ResponseAction, Rule, SampleType, Side, StrPatterns,
    TcpAction, Term, UseBackend, Userlist,
};

mod actions_extra;
pub(crate) use actions_extra::resolve_capture_slots;
pub(crate) mod stick_rules;

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
    /// Every stick table, for `table <name>` and fetch arguments.
    pub tables: &'e [Arc<crate::stick::TableDef>],
    /// The section's own table (the default of `track-sc*` and `src_*`).
    pub own_table: Option<&'e Arc<crate::stick::TableDef>>,
    /// The map files read so far (`map(<file>)` converters).
    pub maps: &'e crate::maps::load::MapRegistry,
    /// Server names per backend id (`srv_is_up(<backend>/<server>)`).
    pub servers: &'e [Vec<String>],
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
pub(super) struct Words {
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
    pub(super) fn here(&self) -> usize {
        self.words.get(self.pos).map_or(self.end, |(at, _)| *at)
    }

    fn expect(&mut self, what: &str, hint: &str) -> Parsed<(usize, String)> {
        match self.next() {
            Some(w) => Ok(w),
            None => err(self.end, format!("missing {what}"), hint),
        }
    }

    /// The next word if it is not `if`/`unless`.
    pub(super) fn argument(&mut self) -> Option<(usize, String)> {
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
    "sc_http_req_rate",
    "sc_http_req_cnt",
    "sc_conn_cur",
    "sc_conn_rate",
    "sc_get_gpc0",
    "sc_inc_gpc0",
    "sc0_http_req_rate",
    "sc0_conn_cur",
    "src_conn_rate",
    "src_conn_cur",
    "src_http_req_rate",
    "src_get_gpc0",
    "table_cnt",
    "table_avl",
    "var",
    "base",
    "base32",
    "res.cook",
    "scook",
    "ssl_fc_protocol",
    "ssl_fc_cipher",
    "ssl_fc_alpn",
    "date",
    "rand",
    "env",
    "hostname",
    "unique-id",
    "nbsrv",
    "srv_is_up",
];

const FETCH_HINT: &str = "fetches: hdr(<name>) hdr_beg/end/sub/dom/reg/dir/len(<name>) \
     hdr_cnt(<name>) path path_beg/end/sub/dir/reg url url_param(<name>) query method \
     req.ver src src_port dst dst_port fc_pp_authority fc_pp_unique_id ssl_fc ssl_fc_sni req.cook(<name>) http_auth(<userlist>) \
     status (http-response); req.len req.payload(<offset>,<length>) req.ssl_hello_type \
     req.ssl_sni req.ssl_ver req.ssl_alpn (tcp-request content, use_backend in mode tcp); var(<scope>.<name>) base base32 res.cook(<name>) (http-response) ssl_fc_protocol ssl_fc_cipher ssl_fc_alpn date([<offset>]) rand([<range>]) env(<name>) hostname unique-id nbsrv(<backend>) srv_is_up(<backend>/<server>) table_cnt([<table>]) table_avl([<table>])";

/// A fetch written as `name` or `name(arg,...)`, with the match method its
/// suffix implies (`path_beg` → beg).
pub(super) fn parse_fetch(
    at: usize,
    text: &str,
    env: &Env<'_>,
) -> Parsed<(Fetch, Option<&'static str>)> {
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
        other if stick_rules::is_stick_fetch(other) => {
            stick_rules::parse_stick_fetch(at, other, &args, env)?
        }
        "base" => no_arg().map(|_| Fetch::Base)?,
        "base32" => no_arg().map(|_| Fetch::Base32)?,
        "res.cook" | "scook" => {
            let name = one_arg("cookie name")?;
            if !env.response {
                return err(
                    at,
                    format!("`{base}` is a response fetch"),
                    "use it in http-response rules",
                );
            }
            Fetch::ResCook(name)
        }
        "ssl_fc_protocol" => no_arg().map(|_| Fetch::SslFcProtocol)?,
        "ssl_fc_cipher" => no_arg().map(|_| Fetch::SslFcCipher)?,
        "ssl_fc_alpn" => no_arg().map(|_| Fetch::SslFcAlpn)?,
        "date" | "rand" => {
            let n = match args.as_slice() {
                [] => None,
                [a] => match a.trim().parse::<i64>() {
                    Ok(n) if base == "date" || n > 0 => Some(n),
                    _ => {
                        return err(
                            at,
                            format!("`{base}`: `{a}` is not a valid argument"),
                            if base == "date" {
                                "write date or date(<offset in seconds>)"
                            } else {
                                "write rand or rand(<range>), a range above 0"
                            },
                        )
                    }
                },
                _ => {
                    return err(
                        at,
                        format!("`{base}` takes one argument at most"),
                        "write date(<offset>) or rand(<range>)",
                    )
                }
            };
            if base == "date" {
                Fetch::Date(n.unwrap_or(0))
            } else {
                Fetch::Rand(n.map(|n| n as u64))
            }
        }
        "env" => {
            let name = one_arg("environment variable name")?;
            Fetch::Env(std::env::var_os(&*name).map(|v| {
                use std::os::unix::ffi::OsStrExt;
                v.as_bytes().into()
            }))
        }
        "unique-id" => {
            no_arg()?;
            Fetch::UniqueId
        }
        "hostname" => {
            no_arg()?;
            Fetch::Hostname(crate::log::syslog::hostname().into_bytes().into())
        }
        "nbsrv" => {
            let name = one_arg("backend name")?;
            Fetch::Nbsrv(backend_id(at, &name, env)?)
        }
        "srv_is_up" => {
            let arg = one_arg("backend/server")?;
            let Some((b, s)) = arg.split_once('/') else {
                return err(
                    at,
                    format!("`{arg}` is not <backend>/<server>"),
                    "write srv_is_up(<backend>/<server>)",
                );
            };
            let backend = backend_id(at, b, env)?;
            let names = env
                .servers
                .get(backend)
                .map(Vec::as_slice)
                .unwrap_or_default();
            match names.iter().position(|n| n == s) {
                Some(server) => Fetch::SrvIsUp { backend, server },
                None => {
                    let list: Vec<&str> = names.iter().map(String::as_str).collect();
                    return err(
                        at,
                        format!("backend \"{b}\" has no server \"{s}\""),
                        format!("its servers: {}", super::sections::names_or_none(&list)),
                    );
                }
            }
        }
        "var" => {
            let name = one_arg("variable name")?;
            match crate::rules::vars::VarName::parse(&name) {
                Some(v) => Fetch::Var(v),
                None => return err(
                    at,
                    format!("`{name}` is not a variable name"),
                    "write var(<scope>.<name>), scope proc, sess, txn, req or res; names use letters, digits, . and _",
                ),
            }
        }
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
    let pieces = super::conv_parse::split_chain(&fetch_text);
    let (fetch, suffix) = parse_fetch(at, pieces[0].1, env)?;
    let (converters, ty) = super::conv_parse::parse_converters(
        at,
        &pieces[1..],
        ValType::of(fetch.sample_type()),
        env,
    )?;
    let ty = ty.sample_type();
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
                _ if ty == SampleType::Int && word[1..].parse::<i64>().is_ok() => {
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
            match ty {
                SampleType::Str => "str",
                SampleType::Int => "int",
                SampleType::Ip => "ip",
                SampleType::Bool => "bool",
            },
        ),
    };
    // A variable holds whatever was stored: any match method goes.
    let checked = if matches!(fetch, Fetch::Var(_)) && converters.is_empty() {
        None
    } else {
        Some(ty)
    };
    let matcher = build_matcher(at, checked, method, icase, &patterns)?;
    Ok(AclTest {
        fetch,
        converters,
        matcher,
    })
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
    ty: Option<SampleType>,
    (mat, method): (usize, &str),
    icase: bool,
    patterns: &[(usize, String)],
) -> Parsed<Matcher> {
    let needs = |want: &[SampleType], what: &str| -> Parsed<()> {
        let Some(ty) = ty else { return Ok(()) };
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

pub(super) fn compile_regex(at: usize, pattern: &str, icase: bool) -> Parsed<Regex> {
    crate::rules::pattern::compile_regex(pattern, icase).or_else(|first| {
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
            converters: Vec::new(),
            fetch: Fetch::Src,
            matcher: Matcher::Found,
        },
        "FALSE" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::Src,
            matcher: Matcher::Int(Vec::new()),
        },
        "LOCALHOST" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::Src,
            matcher: Matcher::Ip(vec!["127.0.0.0/8".parse().ok()?, "::1".parse().ok()?]),
        },
        "METH_GET" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::Method,
            matcher: Matcher::Str(strs(&["GET", "HEAD"])),
        },
        "METH_POST" | "METH_PUT" | "METH_DELETE" | "METH_OPTIONS" | "METH_CONNECT"
        | "METH_HEAD" | "METH_TRACE" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::Method,
            matcher: Matcher::Str(strs(&[&name[5..]])),
        },
        "HTTP_1.0" | "HTTP_1.1" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::ReqVer,
            matcher: Matcher::Str(strs(&[&name[5..]])),
        },
        "HTTP_URL_ABS" => AclTest {
            converters: Vec::new(),
            fetch: Fetch::Url,
            matcher: Matcher::Reg(vec![Regex::new("^[^/:]*://").ok()?]),
        },
        "HTTP_URL_SLASH" => AclTest {
            converters: Vec::new(),
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
pub(super) fn parse_format(at: usize, text: &str, env: &Env<'_>) -> Parsed<Format> {
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

/// The inside of a log format's `%[...]`: a fetch that has a value when
/// the line is written (end of the stream: the request and response heads
/// are gone) and its converters.
pub(crate) fn parse_log_sample(
    at: usize,
    text: &str,
    env: &Env<'_>,
) -> Parsed<(Fetch, Vec<crate::rules::Conv>)> {
    match parse_expression(at, text, env)? {
        Part::Sample { fetch, .. } if !fetch.available_at_log() => err(
            at,
            format!("`{}` has no value when the log line is written", text.trim()),
            "log-format samples read the connection (src, dst, ssl_fc*, fc_pp_*, var(sess.*), sc_*, hostname, date, unique-id...); log request headers with capture-request-header and %hr",
        ),
        Part::Sample { fetch, converters } => Ok((fetch, converters)),
        Part::Literal(_) => err(at, "expected a fetch", "write %[fetch] or %[fetch,converter]"),
    }
}

/// `fetch(args),conv(args),...`, splitting on commas outside parentheses.
fn parse_expression(at: usize, text: &str, env: &Env<'_>) -> Parsed<Part> {
    let pieces = super::conv_parse::split_chain(text);
    let (off, fetch_text) = pieces[0];
    let (fetch, suffix) = parse_fetch(at + off, fetch_text.trim(), env)?;
    if suffix.is_some() {
        return err(
            at + off,
            format!("`{fetch_text}` is a match, not a fetch"),
            "in a value write the plain fetch, e.g. %[path]",
        );
    }
    let (converters, _) = super::conv_parse::parse_converters(
        at,
        &pieces[1..],
        ValType::of(fetch.sample_type()),
        env,
    )?;
    Ok(Part::Sample { fetch, converters })
}

// ------------------------------------------------------------------ rules

/// `use_backend NAME [if|unless COND]` (the `use_backend` keyword itself is
/// the TOML key).
pub(crate) fn parse_use_backend(line: &str, env: &Env<'_>) -> Parsed<Rule<UseBackend>> {
    in_raw_word(line, parse_use_backend_words(line, env))
}

fn parse_use_backend_words(line: &str, env: &Env<'_>) -> Parsed<Rule<UseBackend>> {
    let mut words = Words::new(line)?;
    let (at, name) = words.expect("backend name", "write \"<backend> if <condition>\"")?;
    if name.contains("%[") {
        let format = parse_format(at, &name, env)?;
        let ids = env
            .backends
            .iter()
            .enumerate()
            .map(|(id, n)| (n.as_bytes().into(), id))
            .collect();
        let cond = parse_condition(&mut words, env)?;
        return Ok(Rule {
            action: UseBackend::Dynamic(std::sync::Arc::new(
                crate::rules::action::DynamicBackend { name: format, ids },
            )),
            cond,
        });
    }
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
    Ok(Rule {
        action: UseBackend::Id(id),
        cond,
    })
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
                a if stick_rules::is_stick_action(a) => {
                    TcpAction::Stick(stick_rules::parse_stick_action(aat, a, &mut words, env)?)
                }
                "accept" => TcpAction::Accept,
                "reject" => TcpAction::Reject,
                other if super::var_parse::is_var_action(other) => {
                    let env = Env {
                        payload: !connection,
                        ..*env
                    };
                    TcpAction::SetVar(super::var_parse::parse_set_var(
                        aat, other, &mut words, &env,
                    )?)
                }
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
                        &[
                            "accept",
                            "reject",
                            "expect-proxy",
                            "track-sc0",
                            "track-sc1",
                            "track-sc2",
                            "sc-inc-gpc0",
                            "sc-set-gpt0",
                            "set-var",
                            "set-var-fmt",
                            "unset-var",
                        ][..]
                    } else {
                        &[
                            "accept",
                            "reject",
                            "track-sc0",
                            "track-sc1",
                            "track-sc2",
                            "sc-inc-gpc0",
                            "sc-set-gpt0",
                            "set-var",
                            "set-var-fmt",
                            "unset-var",
                        ][..]
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
    "track-sc0",
    "track-sc1",
    "track-sc2",
    "sc-inc-gpc0",
    "sc-set-gpt0",
    "set-var",
    "set-var-fmt",
    "unset-var",
    "replace-path",
    "replace-uri",
    "set-uri",
    "replace-value",
    "set-method",
    "capture",
    "set-log-level",
    "normalize-uri",
    "set-timeout",
    "early-hint",
];
/// The `http-response` actions percore has.
pub(crate) const RESPONSE_ACTIONS: &[&str] = &[
    "deny",
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "set-var",
    "set-var-fmt",
    "unset-var",
    "replace-value",
    "set-status",
    "return",
    "redirect",
    "capture",
    "set-log-level",
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
                let target = matches!(
                    action,
                    "set-path" | "set-query" | "set-uri" | "replace-path" | "replace-uri"
                );
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
    // `<regex> <replacement>` of the replace-* actions; `args`: what
    // comes before them in the usage hint.
    let regex_and_with = |words: &mut Words, args: &str| -> Parsed<(Regex, Format)> {
        let Some((rat, re)) = words.argument() else {
            return err(
                words.here(),
                format!("`{action}` needs a regex and a replacement"),
                format!("write {action} {args}<regex> <replacement with \\1>"),
            );
        };
        let regex = compile_regex(rat, &re, false)?;
        Ok((regex, value_of(words, "a replacement")?))
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
            let (regex, with) = regex_and_with(words, "<name> ")?;
            HeaderEdit::Replace { name, regex, with }
        }
        "set-path" => HeaderEdit::SetPath(value_of(words, "a path")?),
        "set-query" => HeaderEdit::SetQuery(value_of(words, "a query")?),
        "set-uri" => HeaderEdit::SetUri(value_of(words, "a URI")?),
        "replace-path" | "replace-uri" => {
            let (regex, with) = regex_and_with(words, "")?;
            if action == "replace-path" {
                HeaderEdit::ReplacePath { regex, with }
            } else {
                HeaderEdit::ReplaceUri { regex, with }
            }
        }
        "replace-value" => {
            let name = name_of(words)?;
            let (regex, with) = regex_and_with(words, "<name> ")?;
            HeaderEdit::ReplaceValue { name, regex, with }
        }
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
    const HINT: &str = "write redirect scheme|location|prefix <value> [code 301|302|303|307|308] [drop-query] [append-slash] [set-cookie NAME[=value]] [clear-cookie NAME]";
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
        append_slash: false,
        cookie: None,
    };
    while let Some((oat, option)) = words.argument() {
        match option.as_str() {
            "code" => redirect.code = status_arg(words, "code", &REDIRECT_CODES)?,
            "drop-query" => redirect.drop_query = true,
            "append-slash" | "set-cookie" | "clear-cookie" => {
                actions_extra::redirect_option(oat, &option, words, &mut redirect)?
            }
            _ => return err(oat, format!("unknown redirect option `{option}`"), HINT),
        }
    }
    Ok(redirect)
}

fn parse_return(words: &mut Words, env: &Env<'_>) -> Parsed<Reply> {
    const HINT: &str =
        "write return [status <code>] [content-type <type>] [string <text> | lf-string <fmt> | file <path>] [hdr <name> <fmt>]...";
    let mut reply = Reply {
        status: 200,
        content_type: None,
        body: Box::new([]),
        lf_body: None,
        headers: Vec::new(),
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
            "lf-string" => {
                let (lat, s) = words
                    .argument()
                    .map_or_else(|| err(words.here(), "`lf-string` needs a text", HINT), Ok)?;
                reply.lf_body = Some(parse_format(lat, &s, env)?);
                has_body = true;
            }
            "hdr" => {
                let (nat, name) = words.argument().map_or_else(
                    || err(words.here(), "`hdr` needs a name and a value", HINT),
                    Ok,
                )?;
                let name = header_name(nat, &name)?;
                if name.eq_ignore_ascii_case("content-type") {
                    return err(nat, "write the content type with content-type", HINT);
                }
                let (vat, value) = words
                    .argument()
                    .map_or_else(|| err(words.here(), "`hdr` needs a value", HINT), Ok)?;
                reply.headers.push((name, parse_format(vat, &value, env)?));
            }
            "lf-file" | "errorfile" | "errorfiles" | "default-errorfiles" => {
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

/// `set-status <code> [reason <text>]`. Statuses whose responses carry no
/// body (1xx, 204, 304) are refused: the body is framed by the status the
/// server sent.
fn parse_set_status(words: &mut Words) -> Parsed<HeaderEdit> {
    const HINT: &str = "write set-status <code> [reason <text>], code 200 to 599 but 204 and 304";
    let Some((cat, code)) = words.argument() else {
        return err(words.here(), "`set-status` needs a status code", HINT);
    };
    let code = match code.parse::<u16>() {
        Ok(c) if (200..=599).contains(&c) && c != 204 && c != 304 => c,
        _ => return err(cat, format!("invalid status `{code}` for set-status"), HINT),
    };
    let reason = match words.peek() {
        Some("reason") => {
            words.next();
            let Some((_, r)) = words.argument() else {
                return err(words.here(), "`reason` needs a text", HINT);
            };
            Some(r.into())
        }
        _ => None,
    };
    Ok(HeaderEdit::SetStatus { code, reason })
}

/// A backend named in a fetch argument.
fn backend_id(at: usize, name: &str, env: &Env<'_>) -> Parsed<usize> {
    env.backends.iter().position(|b| b == name).map_or_else(
        || {
            let names: Vec<&str> = env.backends.iter().map(String::as_str).collect();
            err(
                at,
                format!("backend \"{name}\" is not defined"),
                format!(
                    "defined backends: {}",
                    super::sections::names_or_none(&names)
                ),
            )
        },
        Ok,
    )
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
        "set-method" => RequestAction::Edit(actions_extra::parse_set_method(&mut words, env)?),
        "set-log-level" => RequestAction::SetLogLevel(actions_extra::parse_log_level(&mut words)?),
        "normalize-uri" => RequestAction::Edit(actions_extra::parse_normalize_uri(&mut words)?),
        "set-timeout" => RequestAction::SetTimeout(actions_extra::parse_set_timeout(&mut words)?),
        "early-hint" => actions_extra::parse_early_hint(&mut words, env)?,
        "capture" => RequestAction::Capture(actions_extra::parse_capture(
            &mut words,
            env,
            crate::rules::CaptureSide::Request,
        )?),
        other if stick_rules::is_stick_action(other) => {
            RequestAction::Stick(stick_rules::parse_stick_action(at, other, &mut words, env)?)
        }
        other if super::var_parse::is_var_action(other) => {
            RequestAction::SetVar(super::var_parse::parse_set_var(at, other, &mut words, env)?)
        }
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
        "set-path" | "set-query" | "set-uri" | "replace-path" | "replace-uri" => {
            return unknown_action(at, &action, RESPONSE_ACTIONS, "http-response")
        }
        "set-status" => ResponseAction::Edit(parse_set_status(&mut words)?),
        "return" => ResponseAction::Return(parse_return(&mut words, env)?),
        "set-log-level" => ResponseAction::SetLogLevel(actions_extra::parse_log_level(&mut words)?),
        "capture" => ResponseAction::Capture(actions_extra::parse_capture(
            &mut words,
            env,
            crate::rules::CaptureSide::Response,
        )?),
        "redirect" => ResponseAction::Redirect(actions_extra::response_redirect(
            at,
            parse_redirect(&mut words, env)?,
        )?),
        other if super::var_parse::is_var_action(other) => {
            ResponseAction::SetVar(super::var_parse::parse_set_var(at, other, &mut words, env)?)
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
            tables: &[],
            own_table: None,
            maps: Box::leak(Box::default()),
            servers: &[],
        }
    }

    fn eval(acl: &str, raw: &str) -> bool {
        let e = env(&[], &[]);
        let test = parse_acl(acl, &e).unwrap_or_else(|(at, i)| panic!("{at}: {}", i.message));
        let mut parser = RequestParser::new(HeadLimits::from_bufsize(16384, 100));
        let conn = ConnFacts {
            pp: None,
            stick: Default::default(),
            vars: Default::default(),
            live: Default::default(),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
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

#[cfg(test)]
mod converter_tests {
    use super::*;
    use crate::http::{HeadLimits, ParseStatus, RequestParser};
    use crate::rules::{ConnFacts, Facts};

    fn env(dir: &Path) -> Env<'_> {
        Env {
            acls: &[],
            userlists: &[],
            base_dir: dir,
            backends: &[],
            response: false,
            payload: false,
            maps: Box::leak(Box::default()),
            servers: &[],
            tables: &[],
            own_table: None,
        }
    }

    const REQ: &str = "GET /API/Users?x=%41 HTTP/1.1\r\nHost: WWW.Example.COM\r\nX-N: 41\r\n\r\n";

    fn with_facts<R>(f: impl FnOnce(&Facts<'_>) -> R) -> R {
        let mut parser = RequestParser::new(HeadLimits::from_bufsize(16384, 100));
        let conn = ConnFacts {
            pp: None,
            stick: Default::default(),
            vars: Default::default(),
            live: Default::default(),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
            src: "10.1.2.3:5555".parse().unwrap(),
            dst: "127.0.0.1:8080".parse().unwrap(),
            tls: None,
        };
        match parser.parse(REQ.as_bytes()) {
            ParseStatus::Complete(h) => f(&Facts::request(&conn, &h)),
            _ => panic!("bad request"),
        }
    }

    fn acl(line: &str, dir: &Path) -> bool {
        let e = env(dir);
        let test = parse_acl(line, &e).unwrap_or_else(|(at, i)| panic!("{at}: {}", i.message));
        with_facts(|f| test.eval(f))
    }

    fn value(text: &str, dir: &Path) -> String {
        let e = env(dir);
        let format =
            parse_format(0, text, &e).unwrap_or_else(|(at, i)| panic!("{at}: {}", i.message));
        with_facts(|f| {
            let mut out = Vec::new();
            format.render(f, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    }

    fn error(line: &str, dir: &Path) -> (usize, String) {
        match parse_acl(line, &env(dir)) {
            Ok(_) => panic!("expected an error for {line}"),
            Err((at, i)) => (at, i.message),
        }
    }

    #[test]
    fn converters_in_acls_and_values() {
        let d = Path::new(".");
        assert!(acl("req.hdr(host),lower www.example.com", d));
        assert!(!acl("req.hdr(host) www.example.com", d));
        assert!(acl("path,lower -m beg /api/", d));
        assert!(acl("req.hdr(host),lower,field(2,.) example", d));
        // The chain's type decides the match: an integer here.
        assert!(acl("hdr(x-n),add(1) 42", d));
        assert!(acl("hdr(x-n),add(1) gt 41", d));
        assert!(acl("path,length 10", d));
        assert!(acl("src,ipmask(16) 10.1.0.0", d));
        assert!(acl("hdr(x-n),mod(2),bool", d));
        assert_eq!(value("%[req.hdr(host),lower]", d), "www.example.com");
        assert_eq!(value("%[path,regsub(^/API,/v2,i)]", d), "/v2/Users");
        assert_eq!(value("%[query,url_dec]", d), "x=A");
        assert_eq!(value("%[hdr(x-n),mul(2),add(1)]", d), "83");
        assert_eq!(
            value("%[src,ipmask(24)]-%[dst_port,hex]", d),
            "10.1.2.0-0000000000001F90"
        );
        assert_eq!(value("%[path,regsub(/,_,g)]", d), "_API_Users");
        assert_eq!(value("%[path,word(1,/),concat(<,,>)]", d), "<API>");
        assert_eq!(value("%[hdr(x-n),iif(y,n)]", d), "y");
        assert_eq!(value("%[path,field(2,\\,)]", d), "");
    }

    #[test]
    fn maps_in_values_and_acls() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hosts.map"),
            "www.example.com be_www\n# c\napi.example.com be_api\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("n.map"), "41 7\n").unwrap();
        let d = dir.path();
        assert_eq!(
            value("%[req.hdr(host),lower,map(hosts.map,dflt)]", d),
            "be_www"
        );
        assert_eq!(value("%[path,map(hosts.map,dflt)]", d), "dflt");
        assert_eq!(value("%[path,map(hosts.map)]", d), "");
        assert_eq!(value("%[hdr(x-n),map_int_int(n.map,0),add(1)]", d), "8");
        assert_eq!(
            value("%[req.hdr(host),lower,map_dom(hosts.map)]", d),
            "be_www"
        );
        assert!(acl("req.hdr(host),lower,map(hosts.map) be_www", d));
        assert!(acl("hdr(x-n),map_str_int(n.map) 7", d));
        std::fs::write(dir.path().join("nets.map"), "10.0.0.0/8 10.9.9.9\n").unwrap();
        assert_eq!(value("%[src,map_ip(nets.map)]", d), "10.9.9.9");
        assert!(acl("src,map_ip_ip(nets.map) 10.9.0.0/16", d));
    }

    #[test]
    fn converter_errors_point_into_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.map"), "a 1\nb two\n").unwrap();
        std::fs::write(dir.path().join("ip.map"), "10.0.0.0/8 a\nzzz b\n").unwrap();
        let d = dir.path();
        let (at, m) = error("path,lowr /x", d);
        assert_eq!(at, 5);
        assert!(m.contains("unknown converter `lowr`"), "{m}");
        let (at, m) = error("path,field(x,.) a", d);
        assert_eq!(at, 11);
        assert!(m.contains("not an integer"), "{m}");
        let (at, m) = error("path,field(1) a", d);
        assert_eq!(at, 5);
        assert!(m.contains("takes 2 to 3 arguments"), "{m}");
        let (at, m) = error("path,regsub((,x) a", d);
        assert_eq!(at, 12);
        assert!(m.contains("invalid regular expression"), "{m}");
        let (at, m) = error("path,map(missing.map) a", d);
        assert_eq!(at, 9);
        assert!(m.contains("cannot read map file"), "{m}");
        let (_, m) = error("path,map_str_int(bad.map) 1", d);
        assert!(
            m.contains("the value `two` of key `b` is not an integer"),
            "{m}"
        );
        let (_, m) = error("src,map_ip(ip.map) a", d);
        assert!(m.contains("ip.map:2: `zzz` is not an address"), "{m}");
        let (_, m) = error("path,sha2(100) a", d);
        assert!(m.contains("not a SHA-2 size"), "{m}");
        let (_, m) = error("src,iif(a,b)", d);
        assert!(m.contains("takes bool samples, it gets ip ones"), "{m}");
        let (_, m) = error("path,ipmask(33) a", d);
        assert!(m.contains("not an IPv4 mask"), "{m}");
        let (_, m) = error("path,map_foo(bad.map) a", d);
        assert!(m.contains("unknown converter"), "{m}");
    }

    #[test]
    fn table_converter_and_fetch_errors() {
        use crate::stick::{DataType, KeyType, Stored, TableDef};
        let table = |name: &str, expire| {
            Arc::new(TableDef::new(
                name.into(),
                KeyType::Ip,
                10,
                expire,
                vec![Stored {
                    data: DataType::Gpc0,
                    period: None,
                }],
            ))
        };
        let tables = [
            table("t", None),
            table("e", Some(std::time::Duration::from_secs(1))),
        ];
        let d = Path::new(".");
        let e = Env {
            tables: &tables,
            ..env(d)
        };
        let error = |line: &str| match parse_acl(line, &e) {
            Ok(_) => panic!("expected an error for {line}"),
            Err((at, i)) => (at, i.message, i.hint.unwrap_or_default()),
        };
        assert!(parse_acl("src,table_gpc0(t) gt 0", &e).is_ok());
        assert!(parse_acl("src,table_trackers(t) gt 0", &e).is_ok());
        let (at, m, h) = error("src,table_gpc0(u) gt 0");
        assert_eq!(at, 15);
        assert!(m.contains("no stick table named \"u\""), "{m}");
        assert!(h.contains("tables: \"t\", \"e\""), "{h}");
        let (at, m, h) = error("src,table_conn_cur(t) gt 0");
        assert_eq!(at, 19);
        assert!(m.contains("table \"t\" does not store conn_cur"), "{m}");
        assert!(h.contains("add conn_cur"), "{h}");
        // `kbytes_in` reads bytes_in_cnt; there is no table_bytes_in_cnt.
        let (_, m, _) = error("src,table_kbytes_in(t) gt 0");
        assert!(m.contains("does not store bytes_in_cnt"), "{m}");
        let (_, m, _) = error("src,table_bytes_in_cnt(t) gt 0");
        assert!(m.contains("unknown converter"), "{m}");
        let (_, m, _) = error("src,table_gpc0 gt 0");
        assert!(m.contains("takes 1 argument, not 0"), "{m}");
        let (_, m, _) = error("src,table_gpc0(t,t) gt 0");
        assert!(m.contains("takes 1 argument, not 2"), "{m}");
        let (_, m, _) = error("src,table_gpc0() gt 0");
        assert!(m.contains("no stick table named \"\""), "{m}");
        let (at, m, h) = error("src,table_idle(t) gt 0");
        assert_eq!(at, 15);
        assert!(m.contains("table \"t\" has no expire"), "{m}");
        assert!(h.contains("add expire"), "{h}");
        assert!(parse_acl("src,table_idle(e,-1) gt 0", &e).is_ok());
        let (_, m, _) = error("src,table_expire(e,soon) gt 0");
        assert!(
            m.contains("<default_value> `soon` is not an integer"),
            "{m}"
        );
        // table_cnt / table_avl: the named table, or the section's own.
        assert!(parse_acl("table_avl(t) gt 0", &e).is_ok());
        let (at, m, _) = error("table_cnt(u) gt 0");
        assert_eq!(at, 0);
        assert!(m.contains("no stick table named \"u\""), "{m}");
        let (_, m, h) = error("table_cnt gt 0");
        assert!(m.contains("this section has no stick-table"), "{m}");
        assert!(h.contains("name a table"), "{h}");
        let (_, m, h) = error("table_avl(t,t) gt 0");
        assert!(m.contains("`table_avl` takes at most a table name"), "{m}");
        assert!(h.contains("table_avl([<table>])"), "{h}");
        let own = Env {
            own_table: Some(&tables[0]),
            ..env(d)
        };
        assert!(parse_acl("table_cnt lt 10", &own).is_ok());
    }
}
