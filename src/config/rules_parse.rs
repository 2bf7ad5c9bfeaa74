//! Parsing HAProxy rule lines written in TOML strings: ACL expressions
//! (`hdr(Upgrade) -i websocket`), conditions (`if is_ws !{ ssl_fc }`),
//! `use_backend`, `http-request` and `http-response` rules, and values
//! with `%[...]`. Pure functions over one line; every error carries the
//! byte offset in the line where it was found, which the loader turns into
//! a file position.
//!
//! This file has the actions (`http-request`, `http-response`,
//! `tcp-request`, `use_backend`); the pieces they share are beside it:
//! `lexer` (words), `fetch_table` and `fetch` (sample fetches), `conv`
//! (converter chains), `acl` (ACL expressions and conditions), `value`
//! (`%[...]` values) and `stick_rules`.

use std::path::Path;
use std::sync::Arc;

use regex::bytes::Regex;

use super::error::did_you_mean;
use super::values::Invalid;
use crate::rules::{
    Format, HeaderEdit, Part, Redirect, RedirectTarget, Reply, RequestAction, ResponseAction, Rule,
    TcpAction, UseBackend, Userlist,
};

pub(crate) mod acl;
mod actions_extra;
mod body_fetch;
pub(crate) mod conv;
pub(crate) mod fetch;
pub(crate) mod fetch_table;
pub(crate) mod lexer;
mod ssl_c_fetch;
pub(crate) use actions_extra::{resolve_backend_capture_slots, resolve_capture_slots};
pub(crate) mod stick_rules;
pub(crate) mod value;

pub(crate) use acl::{compile_regex, parse_acl, parse_condition};
pub(crate) use value::{parse_format, parse_log_sample};

pub(crate) use fetch::parse_fetch;

pub(crate) use lexer::{in_raw_word, Words};

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
    /// Frontend names, by id (`fe_conn(<frontend>)`).
    pub frontends: &'e [String],
    /// The section whose lines these are (`fe_conn`, `be_conn` without
    /// argument); `None` where there is none (tests, fuzzing).
    pub section: Option<Section>,
}

/// A frontend or backend, by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Frontend(usize),
    Backend(usize),
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

/// Refuses a control byte (HTAB excepted) in the literal parts of
/// `format`, the value `action` writes: written with a TOML or `\xHH`
/// escape it would reach the server inside a field or the request line
/// (found by fuzzing, fuzz/corpus/header_edit). `in_target`: the value
/// goes into the request target, where a space is refused too. Rendered
/// samples are filtered at run time (`rules::edit`).
pub(super) fn check_literal_bytes(
    action: &str,
    at: usize,
    format: &Format,
    in_target: bool,
) -> Parsed<()> {
    let bad = |b: &u8| (b.is_ascii_control() && *b != b'\t') || (in_target && *b == b' ');
    if format
        .parts
        .iter()
        .any(|p| matches!(p, Part::Literal(l) if l.iter().any(bad)))
    {
        return err(
            at,
            format!(
                "`{action}` value holds a control character{}",
                if in_target { " or a space" } else { "" }
            ),
            if in_target {
                "a path or query is sent as written: percent-encode it (%20 for a space)"
            } else {
                "a field value may hold visible characters, spaces and tabs only"
            },
        );
    }
    Ok(())
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
                // A space would split the request line.
                let target = matches!(
                    action,
                    "set-path" | "set-query" | "set-uri" | "replace-path" | "replace-uri"
                );
                check_literal_bytes(action, vat, &format, target)?;
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
pub(super) fn backend_id(at: usize, name: &str, env: &Env<'_>) -> Parsed<usize> {
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
            frontends: &[],
            section: None,
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
            frontends: &[],
            section: None,
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
        assert!(m.contains("`table_avl` takes one argument at most"), "{m}");
        assert!(h.contains("table_avl([<table>])"), "{h}");
        let own = Env {
            own_table: Some(&tables[0]),
            ..env(d)
        };
        assert!(parse_acl("table_cnt lt 10", &own).is_ok());
    }
}
