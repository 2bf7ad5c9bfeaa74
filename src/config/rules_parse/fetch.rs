//! Sample fetches in rule lines: `name`, `name(arg,...)` and the match
//! suffixes (`path_beg` = `path -m beg`). Names, arity, output types and
//! where a fetch is allowed come from [`super::fetch_table`]; this file
//! has the checks every fetch shares and the builders of the fetches
//! whose arguments need more than a copy.

use std::sync::Arc;

use super::fetch_table::{find, Allowed, FetchDef, Output, FETCHES};
use super::lexer::split_call;
use super::{backend_id, err, stick_rules, Env, Parsed, Section};
use crate::config::error::did_you_mean;
use crate::rules::{Fetch, SampleType, Side};

/// Match suffixes of fetch names (`hdr_beg` = `hdr -m beg`).
pub(super) const SUFFIXES: [&str; 7] = ["beg", "end", "sub", "dir", "dom", "reg", "len"];

/// A fetch as written, once its entry is found and its arity checked.
pub(crate) struct Call<'a, 'e> {
    /// Offset of the fetch in the line.
    pub at: usize,
    /// The whole fetch text, `name(args)`.
    pub text: &'a str,
    /// The name as written (an alias, a family member).
    pub name: &'a str,
    /// The arguments as written (not trimmed).
    pub args: Vec<&'a str>,
    pub env: &'a Env<'e>,
}

impl Call<'_, '_> {
    /// Argument `i`, trimmed (the arity is checked: a required one is
    /// there).
    pub(crate) fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", |a| a.trim())
    }
}

/// A fetch written as `name` or `name(arg,...)`, with the match method its
/// suffix implies (`path_beg` → beg).
pub(crate) fn parse_fetch(
    at: usize,
    text: &str,
    env: &Env<'_>,
) -> Parsed<(Fetch, Option<&'static str>)> {
    let (name, inner) = split_call(at, text, "fetch", "hdr(host)")?;
    let args: Vec<&str> = match inner {
        Some((_, inner)) if !inner.is_empty() => inner.split(',').collect(),
        _ => Vec::new(),
    };
    // A fetch's own name first: `req.body_len` is a fetch, not
    // `req.body -m len`.
    let (base, suffix) = match name.rsplit_once('_') {
        Some((b, s)) if find(name).is_none() && SUFFIXES.contains(&s) && find(b).is_some() => {
            (b, SUFFIXES.iter().copied().find(|x| *x == s))
        }
        _ => (name, None),
    };
    let Some(def) = find(base) else {
        return unknown(at, base);
    };
    check_arity(at, base, def, &args)?;
    if def.allowed == Allowed::Response && !env.response {
        return err(
            at,
            format!("`{base}` is a response fetch"),
            "use it in http-response rules",
        );
    }
    let call = Call {
        at,
        text,
        name: base,
        args,
        env,
    };
    let fetch = (def.build)(&call)?;
    // The table's type is what the sample code gives (a family's
    // counters vary: `tracked` is a boolean).
    debug_assert!(
        def.family().is_some()
            || def.output == Output::Stored
            || def.output == Output::Of(fetch.sample_type()),
        "fetch table: {} is not {:?}",
        def.name,
        def.output
    );
    if def.allowed == Allowed::Payload && !env.payload {
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

/// The argument counts every fetch of a shape shares; fetches of other
/// shapes (`req.payload`) check theirs in their builder.
fn check_arity(at: usize, base: &str, def: &FetchDef, args: &[&str]) -> Parsed<()> {
    let required = def.required();
    let max = def.args.len();
    if max == 0 && !args.is_empty() {
        return err(
            at,
            format!("`{base}` takes no argument"),
            format!("write {base} alone"),
        );
    }
    let first_missing = args.first().is_none_or(|a| a.trim().is_empty());
    if required == 1 && (first_missing || args.len() > max) {
        let what = def.args.first().map_or("argument", |a| a.what);
        return err(
            at,
            format!("`{base}` needs one argument, the {what}"),
            format!("write {base}{}", def.args_usage()),
        );
    }
    if required == 0 && max == 1 && args.len() > 1 {
        return err(
            at,
            format!("`{base}` takes one argument at most"),
            format!("write {base}{}", def.args_usage()),
        );
    }
    Ok(())
}

/// Every name a fetch may be written with, families spelled out.
fn every_name() -> Vec<String> {
    let mut names = Vec::new();
    for def in FETCHES {
        match def.family() {
            Some(prefix) => names.extend(
                stick_rules::reads(prefix == "src_")
                    .into_iter()
                    .map(|x| format!("{prefix}{x}")),
            ),
            None => {
                names.push(def.name.to_string());
                names.extend(def.aliases.iter().map(|a| a.to_string()));
            }
        }
    }
    names
}

/// The list of fetches hints give, from the table.
pub(crate) fn fetch_hint() -> String {
    let usages: Vec<String> = FETCHES
        .iter()
        .map(|d| format!("{}{}", d.usage(), d.allowed.note()))
        .collect();
    format!(
        "fetches: {}; <x>: {}; string fetches take the match suffixes _{}",
        usages.join(" "),
        stick_rules::reads(false).join(" "),
        SUFFIXES.join(" _")
    )
}

fn unknown<T>(at: usize, other: &str) -> Parsed<T> {
    // `pth_beg`: suggest on the base, keep the suffix.
    let (stem, tail) = match other.rsplit_once('_') {
        Some((b, s)) if SUFFIXES.contains(&s) => (b, format!("_{s}")),
        _ => (other, String::new()),
    };
    let names = every_name();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let hint = match did_you_mean(stem, &names) {
        Some(near) => {
            let what = find(near).map_or("", |d| d.description);
            format!(
                "did you mean `{near}{tail}`? ({near}: {what}, {}) {}",
                find(near).map_or("", |d| d.output.name()),
                fetch_hint()
            )
        }
        None => fetch_hint(),
    };
    err(at, format!("unknown fetch `{other}`"), hint)
}

// ---------------------------------------------------------------- builders

fn side(base: &str) -> Side {
    match base.split('.').next().unwrap_or("") {
        "req" => Side::Request,
        "res" => Side::Response,
        _ => Side::Current,
    }
}

pub(super) fn hdr(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let name = c.arg(0).into();
    let side = side(c.name);
    let occ = match c.args.get(1) {
        None => None,
        Some(occ) => {
            // The occurrence's position in the text, for the error.
            let occ_at = c.at + c.text.len() - 1 - occ.len();
            match occ.trim().parse::<i32>() {
                Ok(n) if n != 0 => Some(n),
                _ => {
                    let base = c.name;
                    return err(
                        occ_at,
                        format!("`{base}`: occurrence `{occ}` is not a non-zero integer"),
                        format!(
                            "write {base}(<name>,<occ>): 1 is the first value, 2 the second, -1 the last"
                        ),
                    );
                }
            }
        }
    };
    Ok(Fetch::Hdr { name, side, occ })
}

pub(super) fn hdr_cnt(c: &Call<'_, '_>) -> Parsed<Fetch> {
    Ok(Fetch::HdrCnt {
        name: c.arg(0).into(),
        side: side(c.name),
    })
}

pub(super) fn req_payload(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let number = |a: &str| a.trim().parse::<usize>().ok().filter(|n| *n <= 1 << 20);
    if let [o, l] = c.args.as_slice() {
        if let (Some(offset), Some(len)) = (number(o), number(l)) {
            return Ok(Fetch::ReqPayload { offset, len });
        }
    }
    err(
        c.at,
        format!("`{}`: req.payload takes an offset and a length", c.text),
        "write req.payload(<offset>,<length>) in bytes, each at most 1048576; length 0 is up to the end",
    )
}

pub(super) fn http_auth(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let list = c.arg(0);
    match c.env.userlists.iter().find(|u| *u.name == *list) {
        Some(u) => Ok(Fetch::HttpAuth(Arc::clone(u))),
        None => {
            let names: Vec<&str> = c.env.userlists.iter().map(|u| u.name.as_str()).collect();
            err(
                c.at,
                format!("userlist \"{list}\" is not defined"),
                format!(
                    "define it with [[userlist]] name = \"{list}\"; defined userlists: {}",
                    crate::config::sections::names_or_none(&names)
                ),
            )
        }
    }
}

/// `date([<offset>])` and `rand([<range>])`: the argument, if any.
fn optional_int(c: &Call<'_, '_>, valid: impl Fn(i64) -> bool, hint: &str) -> Parsed<Option<i64>> {
    match c.args.first() {
        None => Ok(None),
        Some(a) => match a.trim().parse::<i64>() {
            Ok(n) if valid(n) => Ok(Some(n)),
            _ => err(
                c.at,
                format!("`{}`: `{a}` is not a valid argument", c.name),
                hint,
            ),
        },
    }
}

pub(super) fn date(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let n = optional_int(c, |_| true, "write date or date(<offset in seconds>)")?;
    Ok(Fetch::Date(n.unwrap_or(0)))
}

pub(super) fn rand(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let n = optional_int(c, |n| n > 0, "write rand or rand(<range>), a range above 0")?;
    Ok(Fetch::Rand(n.map(|n| n as u64)))
}

pub(super) fn env(c: &Call<'_, '_>) -> Parsed<Fetch> {
    Ok(Fetch::Env(std::env::var_os(c.arg(0)).map(|v| {
        use std::os::unix::ffi::OsStrExt;
        v.as_bytes().into()
    })))
}

pub(super) fn var(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let name = c.arg(0);
    match crate::rules::vars::VarName::parse(name) {
        Some(v) => Ok(Fetch::Var(v)),
        None => err(
            c.at,
            format!("`{name}` is not a variable name"),
            "write var(<scope>.<name>), scope proc, sess, txn, req or res; names use letters, digits, . and _",
        ),
    }
}

pub(super) fn nbsrv(c: &Call<'_, '_>) -> Parsed<Fetch> {
    Ok(Fetch::Nbsrv(backend_id(c.at, c.arg(0), c.env)?))
}

pub(super) fn fe_conn(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let frontend = match (c.args.first(), c.env.section) {
        (Some(name), _) => {
            let name = name.trim();
            match c.env.frontends.iter().position(|f| f == name) {
                Some(id) => id,
                None => {
                    let names: Vec<&str> = c.env.frontends.iter().map(String::as_str).collect();
                    return err(
                        c.at,
                        format!("frontend \"{name}\" is not defined"),
                        format!(
                            "defined frontends: {}",
                            crate::config::sections::names_or_none(&names)
                        ),
                    );
                }
            }
        }
        (None, Some(Section::Frontend(id))) => id,
        (None, _) => {
            return err(
                c.at,
                "`fe_conn` without argument means this frontend, and this is not one",
                "name the frontend: fe_conn(<frontend>)",
            )
        }
    };
    Ok(Fetch::FeConn(frontend))
}

pub(super) fn be_conn(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let backend = match (c.args.first(), c.env.section) {
        (Some(name), _) => backend_id(c.at, name.trim(), c.env)?,
        (None, Some(Section::Backend(id))) => id,
        (None, _) => {
            return err(
                c.at,
                "`be_conn` without argument means this backend, and this is not one",
                "name the backend: be_conn(<backend>)",
            )
        }
    };
    Ok(Fetch::BeConn(backend))
}

pub(super) fn srv_is_up(c: &Call<'_, '_>) -> Parsed<Fetch> {
    let arg = c.arg(0);
    let Some((b, s)) = arg.split_once('/') else {
        return err(
            c.at,
            format!("`{arg}` is not <backend>/<server>"),
            "write srv_is_up(<backend>/<server>)",
        );
    };
    let backend = backend_id(c.at, b, c.env)?;
    let names = c
        .env
        .servers
        .get(backend)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match names.iter().position(|n| n == s) {
        Some(server) => Ok(Fetch::SrvIsUp { backend, server }),
        None => {
            let list: Vec<&str> = names.iter().map(String::as_str).collect();
            err(
                c.at,
                format!("backend \"{b}\" has no server \"{s}\""),
                format!(
                    "its servers: {}",
                    crate::config::sections::names_or_none(&list)
                ),
            )
        }
    }
}

/// The stick-table fetches (`sc_*`, `sc0_*`.., `src_*`, `table_*`).
pub(super) fn stick(c: &Call<'_, '_>) -> Parsed<Fetch> {
    stick_rules::parse_stick_fetch(c.at, c.name, &c.args, c.env)
}

pub(super) fn body(c: &Call<'_, '_>) -> Parsed<Fetch> {
    super::body_fetch::parse_body_fetch(c.at, c.name, &c.args, c.env)
}

pub(super) fn client_cert(c: &Call<'_, '_>) -> Parsed<Fetch> {
    super::ssl_c_fetch::parse_ssl_c_fetch(c.at, c.name, &c.args, c.env)
}
