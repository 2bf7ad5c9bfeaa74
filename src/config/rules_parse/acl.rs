//! ACL expressions (`hdr(Upgrade) -i websocket`: a fetch, converters,
//! flags and patterns) and the conditions that combine them (`if is_ws
//! !{ ssl_fc }`), with HAProxy's predefined ACLs and the match methods.

use std::path::Path;

use regex::bytes::Regex;

use super::{err, in_raw_word, parse_fetch, Env, Parsed, Words};
use crate::config::error::did_you_mean;
use crate::config::values::Invalid;
use crate::http::Network;
use crate::maps::MatchKind;
use crate::rules::convert_ops::ValType;
use crate::rules::{
    AclRef, AclTest, Condition, Fetch, IntRange, LivePatterns, Matcher, SampleType, StrPatterns,
    Term,
};

const MATCH_METHODS: [&str; 12] = [
    "str", "beg", "end", "sub", "dir", "dom", "reg", "found", "len", "int", "ip", "bool",
];

/// An ACL expression: `fetch [-i] [-m method] [-f file] [--] pattern...`.
fn parse_acl_words(words: &mut Words, stop_at_brace: bool, env: &Env<'_>) -> Parsed<AclTest> {
    let (at, fetch_text) = words.expect(
        "fetch",
        "an ACL starts with a fetch, e.g. \"path_beg /static\"",
    )?;
    let pieces = super::conv::split_chain(&fetch_text);
    let (fetch, suffix) = parse_fetch(at, pieces[0].1, env)?;
    let (converters, ty) =
        super::conv::parse_converters(at, &pieces[1..], ValType::of(fetch.sample_type()), env)?;
    let ty = ty.sample_type();
    let mut icase = false;
    let mut method: Option<(usize, String)> = suffix.map(|s| (at, s.to_string()));
    let mut patterns: Vec<(usize, String)> = Vec::new();
    let mut flags_done = false;
    // The `-f` files, for a live pattern set, each with whether a `-i`
    // came before it: as in HAProxy, `-i` applies to the patterns after
    // it (`-f a.lst -i -f b.lst`: only b.lst ignores case; the patterns
    // written on the line come after every flag).
    let mut files: Vec<(usize, String, bool)> = Vec::new();
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
                    files.push((fat, file, icase));
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
    let live_kind = LIVE_METHODS
        .iter()
        .find(|(m, _)| *m == method.1)
        .map(|(_, k)| *k);
    let matcher = match live_kind {
        Some(kind) if !files.is_empty() => {
            // Checked as the inlined matcher would be, with the inline
            // patterns or a probe (an empty file is fine: `add acl`
            // fills it); the files' lines are checked as they are read.
            let probe = [(files[0].0, live_probe(kind).to_string())];
            let checking: &[(usize, String)] = if patterns.is_empty() {
                &probe
            } else {
                &patterns
            };
            let inline = build_matcher(at, checked, method, icase, checking)?;
            let used_at = env.base_dir.display().to_string();
            let files = files
                .iter()
                .map(|(fat, file, file_icase)| {
                    env.maps
                        .get_or_load_patterns(env.base_dir, file, (kind, *file_icase), &used_at)
                        .or_else(|e| err(*fat, e, PATTERN_FILE_HINT))
                })
                .collect::<Parsed<Vec<_>>>()?;
            Matcher::Live(Box::new(LivePatterns {
                files,
                fixed: (!patterns.is_empty()).then_some(inline),
            }))
        }
        _ => {
            for (fat, file, _) in &files {
                patterns.extend(read_pattern_file(*fat, file, env.base_dir)?);
                env.maps.note_frozen_patterns(env.base_dir, file);
            }
            build_matcher(at, checked, method, icase, &patterns)?
        }
    };
    Ok(AclTest {
        fetch,
        converters,
        matcher,
    })
}

/// A valid pattern of each kind, to check an empty live file's fetch and
/// method as if it had one.
fn live_probe(kind: MatchKind) -> &'static str {
    match kind {
        MatchKind::Ip => "127.0.0.1",
        MatchKind::Int | MatchKind::Len => "1",
        _ => "x",
    }
}

const PATTERN_FILE_HINT: &str =
    "-f paths are relative to the configuration file; one pattern per line, # comments";

/// The match methods whose `-f` files are read live from the core's copy
/// (`add acl`, `del acl`, `clear acl` change them): all those that take
/// patterns. `found` and `bool` take none, so a file for them is read
/// at load (and must be empty).
const LIVE_METHODS: [(&str, MatchKind); 10] = [
    ("str", MatchKind::Str),
    ("beg", MatchKind::Beg),
    ("end", MatchKind::End),
    ("sub", MatchKind::Sub),
    ("dir", MatchKind::Dir),
    ("dom", MatchKind::Dom),
    ("reg", MatchKind::Reg),
    ("ip", MatchKind::Ip),
    ("int", MatchKind::Int),
    ("len", MatchKind::Len),
];

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
            PATTERN_FILE_HINT,
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

pub(crate) fn compile_regex(at: usize, pattern: &str, icase: bool) -> Parsed<Regex> {
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
            matcher: Matcher::Reg(vec![crate::rules::pattern::compile_regex(
                "^[^/:]*://",
                false,
            )
            .ok()?]),
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
pub(crate) fn parse_condition(words: &mut Words, env: &Env<'_>) -> Parsed<Option<Condition>> {
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
