//! Reading the routing keys: `acl`, `use_backend`, `http-request`,
//! `http-response` (frontends and backends), `balance` with arguments,
//! `hash-type`, `cookie`, and `[[userlist]]` sections. Rule lines are
//! parsed by `rules_parse`; here their errors get file positions: the
//! exact character when the TOML string has no escapes, else the string
//! with the offset in it.

use std::path::Path;
use std::sync::Arc;

use super::error::{Diagnostics, Reported};
use super::model::{Backend, Balance, BalanceParams, Frontend, Mode};
use super::reader::{Node, TableView};
use super::rules_parse::{
    parse_acl, parse_http_request, parse_http_response, parse_tcp_request, parse_use_backend, Env,
    Located, Section, TcpLine,
};
use super::values::Invalid;
use crate::rules::{
    Acl, CookieMode, CookiePersistence, HashKey, HashType, HttpRules, Password, TcpRules, User,
    Userlist,
};

pub(crate) const HASH_TYPES: [(&str, HashType); 2] = [
    ("map-based", HashType::MapBased),
    ("consistent", HashType::Consistent),
];

const BALANCE_HINT: &str = "balance is roundrobin, static-rr, leastconn, first, source, \
     random, random(<draws>), uri [whole] [len <n>] [depth <n>], url_param <name> or hdr(<name>)";

fn invalid(message: impl Into<String>, hint: &str) -> Invalid {
    Invalid {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

/// `balance = "..."` with HAProxy's arguments.
pub(crate) fn read_balance(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
) -> Result<(Balance, BalanceParams), Reported> {
    let text = node.string(diag)?.value;
    parse_balance(&text).map_err(|i| super::sections::report(diag, node, i))
}

fn parse_balance(text: &str) -> Result<(Balance, BalanceParams), Invalid> {
    let mut words = text.split_whitespace();
    let algo = words.next().unwrap_or("");
    let mut params = BalanceParams::default();
    let simple = |b: Balance| (b, BalanceParams::default());
    let result = match algo {
        "roundrobin" => simple(Balance::RoundRobin),
        "static-rr" => simple(Balance::StaticRr),
        "leastconn" => simple(Balance::LeastConn),
        "first" => simple(Balance::First),
        "source" => simple(Balance::Source),
        "random" => simple(Balance::Random),
        "uri" => {
            let (mut whole, mut len, mut depth) = (false, None, None);
            while let Some(option) = words.next() {
                let mut number = |what: &str| -> Result<usize, Invalid> {
                    words
                        .next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|&n| n > 0)
                        .ok_or_else(|| {
                            invalid(
                                format!("balance uri {what} needs a positive number"),
                                BALANCE_HINT,
                            )
                        })
                };
                match option {
                    "whole" => whole = true,
                    "len" => len = Some(number("len")?),
                    "depth" => depth = Some(number("depth")?),
                    other => {
                        return Err(invalid(
                            format!("unknown balance uri option `{other}`"),
                            "balance uri takes whole, len <n> and depth <n>",
                        ))
                    }
                }
            }
            params.key = Some(HashKey::Uri { whole, len, depth });
            (Balance::Uri, params)
        }
        "url_param" => {
            let Some(name) = words.next() else {
                return Err(invalid(
                    "balance url_param needs a parameter name",
                    BALANCE_HINT,
                ));
            };
            params.key = Some(HashKey::UrlParam(name.to_string()));
            (Balance::UrlParam, params)
        }
        other => {
            if let Some(name) = other.strip_prefix("hdr(").and_then(|r| r.strip_suffix(')')) {
                if name.is_empty() {
                    return Err(invalid("balance hdr() needs a header name", BALANCE_HINT));
                }
                params.key = Some(HashKey::Hdr(name.to_string()));
                (Balance::Hdr, params)
            } else if let Some(n) = other
                .strip_prefix("random(")
                .and_then(|r| r.strip_suffix(')'))
            {
                match n.parse::<u32>() {
                    Ok(draws) if (1..=16).contains(&draws) => {
                        params.draws = draws;
                        (Balance::Random, params)
                    }
                    _ => {
                        return Err(invalid(
                            format!("random({n}): draws must be between 1 and 16"),
                            "random(2) picks the less loaded of two random servers",
                        ))
                    }
                }
            } else {
                let known = [
                    "roundrobin",
                    "static-rr",
                    "leastconn",
                    "first",
                    "source",
                    "random",
                    "uri",
                    "url_param",
                ];
                let list = super::error::quoted_list(&known);
                let hint = match super::error::did_you_mean(other, &known) {
                    Some(near) => format!(
                        "did you mean \"{near}\"? one of {list}, random(<draws>), hdr(<name>); \
                         uri takes [whole] [len <n>] [depth <n>], url_param a parameter name"
                    ),
                    None => format!(
                        "one of {list}, random(<draws>), hdr(<name>); \
                         uri takes [whole] [len <n>] [depth <n>], url_param a parameter name"
                    ),
                };
                return Err(Invalid {
                    message: format!("unknown balance algorithm \"{other}\""),
                    hint: Some(hint),
                });
            }
        }
    };
    if let Some(extra) = words.next() {
        return Err(invalid(
            format!("unexpected `{extra}` after balance {algo}"),
            BALANCE_HINT,
        ));
    }
    Ok(result)
}

const COOKIE_HINT: &str =
    "cookie = \"<name> insert|rewrite|prefix [indirect] [nocache]\", and a cookie value per server";

/// `cookie = "SERVERID insert indirect nocache"`.
pub(crate) fn read_cookie(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
) -> Result<CookiePersistence, Reported> {
    let text = node.string(diag)?.value;
    parse_cookie(&text).map_err(|i| super::sections::report(diag, node, i))
}

fn parse_cookie(text: &str) -> Result<CookiePersistence, Invalid> {
    let mut words = text.split_whitespace();
    let Some(name) = words.next() else {
        return Err(invalid("cookie needs a name", COOKIE_HINT));
    };
    let mut mode = None;
    let (mut indirect, mut nocache) = (false, false);
    for word in words {
        let m = match word {
            "insert" => CookieMode::Insert,
            "rewrite" => CookieMode::Rewrite,
            "prefix" => CookieMode::Prefix,
            "indirect" => {
                indirect = true;
                continue;
            }
            "nocache" => {
                nocache = true;
                continue;
            }
            other => {
                return Err(invalid(
                    format!("cookie option `{other}` is not supported by percore"),
                    COOKIE_HINT,
                ))
            }
        };
        if mode.replace(m).is_some() {
            return Err(invalid(
                "cookie takes one of insert, rewrite, prefix",
                COOKIE_HINT,
            ));
        }
    }
    let Some(mode) = mode else {
        return Err(invalid(
            "cookie needs a mode: insert, rewrite or prefix",
            COOKIE_HINT,
        ));
    };
    Ok(CookiePersistence {
        name: name.to_string(),
        mode,
        indirect,
        nocache,
    })
}

const USERLIST_KEYS: &[&str] = &["name", "users"];
const USER_KEYS: &[&str] = &["name", "password", "insecure-password"];

/// `[[userlist]]` sections.
pub(crate) fn read_userlists(
    diag: &mut Diagnostics<'_>,
    node: Option<Node<'_>>,
) -> Vec<Arc<Userlist>> {
    let Some(node) = node else {
        return Vec::new();
    };
    let Ok(elements) = node.array(diag) else {
        return Vec::new();
    };
    let mut lists: Vec<Arc<Userlist>> = Vec::new();
    for element in elements {
        let Ok(table) = element.table(diag) else {
            continue;
        };
        table.check_keys(diag, USERLIST_KEYS);
        let Some(name) = table.get("name").and_then(|n| n.string(diag).ok()) else {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "userlist has no name",
                Some("add name = \"admins\"".into()),
            );
            continue;
        };
        if lists.iter().any(|l| l.name == name.value) {
            diag.error(
                name.span.as_ref(),
                &format!("{}.name", table.path),
                format!("duplicate userlist name \"{}\"", name.value),
                Some("userlist names must be unique".into()),
            );
            continue;
        }
        let users = table
            .get("users")
            .map(|n| read_users(diag, &n))
            .unwrap_or_default();
        lists.push(Arc::new(Userlist {
            name: name.value,
            id: lists.len(),
            users,
        }));
    }
    lists
}

fn read_users(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Vec<User> {
    let mut users = Vec::new();
    for element in node.array(diag).unwrap_or_default() {
        let Ok(table) = element.table(diag) else {
            continue;
        };
        table.check_keys(diag, USER_KEYS);
        let Some(name) = table.get("name").and_then(|n| n.string(diag).ok()) else {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "user has no name",
                Some("add name = \"alice\"".into()),
            );
            continue;
        };
        let crypt = table.get("password");
        let plain = table.get("insecure-password");
        let password = match (crypt, plain) {
            (Some(c), None) => {
                let Ok(hash) = c.string(diag) else { continue };
                if !crate::rules::auth::CRYPT_SCHEMES
                    .iter()
                    .any(|s| hash.value.starts_with(s))
                {
                    diag.error(
                        hash.span.as_ref(),
                        &c.path,
                        "password is not a supported crypt(3) hash",
                        Some(
                            "use SHA-512 ($6$..., mkpasswd -m sha-512), SHA-256 ($5$...) or bcrypt ($2y$/$2b$..., htpasswd -nB), or insecure-password"
                                .into(),
                        ),
                    );
                    continue;
                }
                Password::Crypt(hash.value)
            }
            (None, Some(p)) => {
                let Ok(text) = p.string(diag) else { continue };
                Password::Plain(text.value)
            }
            _ => {
                diag.error(
                    table.span.as_ref(),
                    &table.path,
                    format!(
                        "user \"{}\" needs exactly one of password and insecure-password",
                        name.value
                    ),
                    Some(
                        "password = \"$6$...\" (a crypt(3) hash) or insecure-password = \"...\""
                            .into(),
                    ),
                );
                continue;
            }
        };
        users.push(User {
            name: name.value,
            password,
        });
    }
    users
}

/// What rule parsing needs from the rest of the configuration.
pub(crate) struct RuleContext<'c> {
    pub userlists: &'c [Arc<Userlist>],
    pub base_dir: &'c Path,
    /// Every stick table (`stick_tables::read_tables`).
    pub tables: &'c [Arc<crate::stick::TableDef>],
    pub maps: &'c crate::maps::load::MapRegistry,
    /// Server names per backend id (`srv_is_up`).
    pub servers: &'c [Vec<String>],
}

/// Reads the rules of every frontend and backend (after the sections and
/// their references were checked, so backends have ids).
pub(crate) fn attach_rules(
    diag: &mut Diagnostics<'_>,
    root: &TableView<'_>,
    frontends: &mut [Frontend],
    backends: &mut [Backend],
    cx: &RuleContext<'_>,
) {
    let backend_names: Vec<String> = backends.iter().map(|b| b.name.clone()).collect();
    let frontend_names: Vec<String> = frontends.iter().map(|f| f.name.clone()).collect();
    // Where each frontend's use_backend list is written, for the mode
    // check below (found by fuzzing config_toml: that error had no
    // position).
    let mut use_backend_at: Vec<(String, Option<super::error::Span>)> = Vec::new();
    for (kind, is_frontend) in [("frontend", true), ("backend", false)] {
        let Some(list) = root.get(kind) else { continue };
        if !list.is_array() {
            continue;
        }
        for node in list.array(diag).unwrap_or_default() {
            let Some(mut table) = node.table_quiet() else {
                continue;
            };
            let Some(name) = table.get("name").and_then(|n| n.string_quiet()) else {
                continue;
            };
            table.rename(format!("{kind} \"{name}\""));
            if is_frontend {
                let at = table
                    .get("use_backend")
                    .and_then(|n| n.span)
                    .or(table.span.clone());
                use_backend_at.push((name.to_string(), at));
            }
            let (mode, rules_slot, tcp_slot, own_table) = if is_frontend {
                match frontends.iter_mut().find(|f| f.name == name) {
                    Some(f) => (
                        f.mode,
                        &mut f.rules,
                        Some(&mut f.tcp_rules),
                        f.stick_table.clone(),
                    ),
                    None => continue,
                }
            } else {
                match backends.iter_mut().find(|b| b.name == name) {
                    Some(b) => (b.mode, &mut b.rules, None, b.stick_table.clone()),
                    None => continue,
                }
            };
            let section = if is_frontend {
                frontend_names
                    .iter()
                    .position(|n| *n == name)
                    .map(Section::Frontend)
            } else {
                backend_names
                    .iter()
                    .position(|n| *n == name)
                    .map(Section::Backend)
            };
            let (mut rules, tcp_rules, stick_rules) = read_rules(
                diag,
                &table,
                (is_frontend, mode, own_table.as_ref(), section),
                (&frontend_names, &backend_names),
                cx,
            );
            // A mode tcp frontend has ACLs for its tcp-request rules and
            // use_backend; HTTP rules need HTTP.
            let http_only = if is_frontend {
                !rules.request.is_empty() || !rules.response.is_empty()
            } else {
                !rules.is_empty() || !rules.acls.is_empty()
            };
            if mode != Mode::Http && http_only {
                diag.error(
                    table.span.as_ref(),
                    &table.path,
                    format!("{kind} \"{name}\" has HTTP rules but is mode tcp"),
                    Some(if is_frontend {
                        "http-request and http-response need mode = \"http\"; use tcp-request rules in mode tcp".into()
                    } else {
                        "acl, http-request and http-response in a backend need mode = \"http\"".into()
                    }),
                );
            }
            if !is_frontend {
                if let Err((message, hint)) =
                    super::rules_parse::resolve_backend_capture_slots(&mut rules)
                {
                    diag.error(
                        table.span.as_ref(),
                        &table.path,
                        format!("backend \"{name}\": {message}"),
                        Some(hint),
                    );
                }
            }
            if !rules.is_empty() || !rules.acls.is_empty() {
                *rules_slot = rules;
            }
            if let Some(slot) = tcp_slot {
                *slot = tcp_rules;
            }
            if is_frontend {
                if let Some(f) = frontends.iter_mut().find(|f| f.name == name) {
                    if let Err((message, hint)) =
                        super::rules_parse::resolve_capture_slots(&mut f.log, &mut f.rules)
                    {
                        diag.error(table.span.as_ref(), &table.path, message, Some(hint));
                    }
                    let env = Env {
                        acls: &[],
                        userlists: cx.userlists,
                        base_dir: cx.base_dir,
                        backends: &backend_names,
                        response: false,
                        payload: false,
                        tables: cx.tables,
                        own_table: own_table.as_ref(),
                        maps: cx.maps,
                        servers: cx.servers,
                        frontends: &frontend_names,
                        section,
                    };
                    compile_log_samples(diag, &table, &mut f.log, &env);
                }
            }
            if !is_frontend {
                if let Some(b) = backends.iter_mut().find(|b| b.name == name) {
                    b.stick_rules = stick_rules;
                }
            }
        }
    }
    // use_backend targets speak the frontend's mode.
    for fe in frontends.iter() {
        for id in fe
            .rules
            .use_backend
            .iter()
            .filter_map(|r| r.action.static_id())
        {
            let be = &backends[id];
            if be.mode != fe.mode {
                let at = use_backend_at
                    .iter()
                    .find(|(name, _)| *name == fe.name)
                    .and_then(|(_, at)| at.as_ref());
                diag.error(
                    at,
                    &format!("frontend \"{}\".use_backend", fe.name),
                    format!(
                        "backend \"{}\" is mode {} but frontend \"{}\" is mode {}",
                        be.name,
                        super::values::mode_name(be.mode),
                        fe.name,
                        super::values::mode_name(fe.mode)
                    ),
                    Some("HAProxy refuses to mix modes".into()),
                );
            }
        }
    }
    for be in backends.iter() {
        if let Some(cookie) = &be.cookie {
            if be.servers.iter().all(|s| s.cookie.is_none()) {
                diag.warn(
                    None,
                    &format!("backend \"{}\".cookie", be.name),
                    format!(
                        "cookie \"{}\" is set but no server has a cookie value: nothing will stick",
                        cookie.name
                    ),
                    Some("give each server cookie = \"<value>\"".into()),
                );
            }
        }
    }
}

/// The rule lines of one key: a string or an array of strings.
fn lines<'a>(diag: &mut Diagnostics<'_>, node: &Node<'a>) -> Vec<(Node<'a>, String)> {
    let elements = if node.is_array() {
        node.array(diag).unwrap_or_default()
    } else {
        vec![node.clone()]
    };
    elements
        .into_iter()
        .filter_map(|e| {
            let text = e.string(diag).ok()?.value;
            Some((e, text))
        })
        .collect()
}

/// Reports an error of a one-line value (also `stick-table` lines).
pub(crate) fn report_line(diag: &mut Diagnostics<'_>, node: &Node<'_>, text: &str, e: Located) {
    report(diag, node, text, e)
}

fn report(diag: &mut Diagnostics<'_>, node: &Node<'_>, text: &str, (offset, invalid): Located) {
    let exact = node
        .span
        .as_ref()
        .and_then(|s| diag.inside_string(s, text, offset));
    let message = if exact.is_some() {
        invalid.message
    } else {
        format!("{} (at offset {offset} of \"{text}\")", invalid.message)
    };
    diag.error(
        exact.as_ref().or(node.span.as_ref()),
        &node.path,
        message,
        invalid.hint,
    );
}

/// Compiles the `%[...]` samples of a frontend's `log-format` and
/// `unique-id-format` (read with their variables by `observe`, which has
/// no fetch context). Only what makes sense when the line is written is
/// accepted: connection fetches, variables, stick counters...
fn compile_log_samples(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    log: &mut super::model::FrontendLog,
    env: &Env<'_>,
) {
    use crate::log::custom::{CustomFormat, FormatError, LogSample};
    let hostname = crate::log::syslog::hostname();
    for key in ["log-format", "unique-id-format", "log-format-sd"] {
        let compiled_once = match key {
            "log-format" => matches!(log.format, super::model::LogFormat::Custom(_)),
            "log-format-sd" => log.sd.is_some(),
            _ => log.unique_id.is_some(),
        };
        let Some(node) = table.get(key).filter(|_| compiled_once) else {
            continue;
        };
        let Some(text) = node.string_quiet() else {
            continue;
        };
        if !text.contains("%[") {
            continue;
        }
        let mut compile = |at: usize, inner: &str| {
            super::rules_parse::parse_log_sample(at, inner, env)
                .map(|(fetch, converters)| LogSample { fetch, converters })
                .map_err(|(at, invalid)| FormatError {
                    at,
                    message: invalid.message,
                    hint: invalid.hint.unwrap_or_default(),
                })
        };
        match CustomFormat::parse_with(&text, &hostname, &mut compile) {
            Ok(format) => {
                let format = Arc::new(format);
                match (key, &mut log.unique_id) {
                    ("log-format", _) => log.format = super::model::LogFormat::Custom(format),
                    ("log-format-sd", _) => log.sd = Some(format),
                    (_, Some(uid)) => uid.format = format,
                    _ => {}
                }
            }
            Err(e) => {
                let invalid = super::values::Invalid {
                    message: e.message,
                    hint: Some(e.hint),
                };
                report(diag, &node, &text, (e.at, invalid));
            }
        }
    }
}

fn read_rules(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    (is_frontend, mode, own_table, section): (
        bool,
        Mode,
        Option<&Arc<crate::stick::TableDef>>,
        Option<Section>,
    ),
    (frontends, backends): (&[String], &[String]),
    cx: &RuleContext<'_>,
) -> (HttpRules, TcpRules, Vec<crate::stick::StickRule>) {
    let mut rules = HttpRules::default();
    let mut acl_names: Vec<String> = Vec::new();
    let mut acl_lines: Vec<(usize, Node<'_>, String)> = Vec::new();
    if let Some(Ok(acls)) = table.get("acl").map(|n| n.table(diag)) {
        for (name, node) in acls.entries() {
            if !super::values::is_valid_name(&name) {
                diag.error(
                    node.span.as_ref(),
                    &node.path,
                    format!("invalid ACL name {name:?}"),
                    Some("ACL names use letters, digits, - _ . :".into()),
                );
                continue;
            }
            let index = acl_names.len();
            acl_names.push(name.clone());
            rules.acls.push(Acl {
                name: name.into(),
                tests: Vec::new(),
            });
            for (line_node, text) in lines(diag, &node) {
                acl_lines.push((index, line_node, text));
            }
        }
    }
    let env = Env {
        acls: &acl_names,
        userlists: cx.userlists,
        base_dir: cx.base_dir,
        backends,
        response: false,
        payload: false,
        tables: cx.tables,
        own_table,
        maps: cx.maps,
        servers: cx.servers,
        frontends,
        section,
    };
    // Named ACLs may be used by any rule; a payload fetch in one that an
    // http-request rule uses simply never has a sample there.
    let acl_env = Env {
        payload: is_frontend,
        ..env
    };
    for (index, node, text) in acl_lines {
        match parse_acl(&text, &acl_env) {
            Ok(test) => rules.acls[index].tests.push(test),
            Err(e) => report(diag, &node, &text, e),
        }
    }
    if is_frontend {
        if let Some(node) = table.get("use_backend") {
            // In mode tcp, use_backend runs after content inspection.
            let env = Env {
                payload: mode == Mode::Tcp,
                ..env
            };
            for (line_node, text) in lines(diag, &node) {
                match parse_use_backend(&text, &env) {
                    Ok(rule) => rules.use_backend.push(rule),
                    Err(e) => report(diag, &line_node, &text, e),
                }
            }
        }
    }
    if let Some(node) = table.get("http-request") {
        for (line_node, text) in lines(diag, &node) {
            match parse_http_request(&text, &env) {
                Ok(rule) => rules.request.push(rule),
                Err(e) => report(diag, &line_node, &text, e),
            }
        }
    }
    if let Some(node) = table.get("http-response") {
        let env = Env {
            response: true,
            ..env
        };
        for (line_node, text) in lines(diag, &node) {
            match parse_http_response(&text, &env) {
                Ok(rule) => rules.response.push(rule),
                Err(e) => report(diag, &line_node, &text, e),
            }
        }
    }
    let mut stick = Vec::new();
    if let Some(node) = table.get("stick").filter(|_| !is_frontend) {
        for (line_node, text) in lines(diag, &node) {
            match super::rules_parse::stick_rules::parse_stick_rule(&text, &env) {
                Ok(rule) => stick.push(rule),
                Err(e) => report(diag, &line_node, &text, e),
            }
        }
    }
    let mut tcp = TcpRules::default();
    if let Some(node) = table.get("tcp-request").filter(|_| is_frontend) {
        for (line_node, text) in lines(diag, &node) {
            match parse_tcp_request(&text, &env) {
                Ok(TcpLine::InspectDelay(d)) => tcp.inspect_delay = Some(d),
                Ok(TcpLine::Connection(rule)) => tcp.connection.push(rule),
                Ok(TcpLine::Content(rule)) => tcp.content.push(rule),
                Err(e) => report(diag, &line_node, &text, e),
            }
        }
        let reads_payload = |r: &crate::rules::Rule<crate::rules::TcpAction>| {
            r.cond
                .as_ref()
                .is_some_and(|c| c.reads_payload(&rules.acls))
        };
        if tcp.inspect_delay.is_none() && tcp.content.iter().any(reads_payload) {
            // HAProxy warns the same way: without a delay the rules see
            // only what happened to be there, usually nothing.
            diag.warn(
                node.span.as_ref(),
                &node.path,
                "tcp-request content rules read the client's bytes but there is no inspect-delay: they are evaluated at once, on nothing",
                Some("add \"inspect-delay 5s\" (how long to wait for the bytes) before them".into()),
            );
        }
    }
    (rules, tcp, stick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_arguments() {
        let (b, p) = parse_balance("uri whole depth 3").unwrap();
        assert_eq!(b, Balance::Uri);
        assert_eq!(
            p.key,
            Some(HashKey::Uri {
                whole: true,
                len: None,
                depth: Some(3)
            })
        );
        let (b, p) = parse_balance("url_param tableId").unwrap();
        assert_eq!(
            (b, p.key),
            (Balance::UrlParam, Some(HashKey::UrlParam("tableId".into())))
        );
        let (b, p) = parse_balance("hdr(Host)").unwrap();
        assert_eq!(
            (b, p.key),
            (Balance::Hdr, Some(HashKey::Hdr("Host".into())))
        );
        assert_eq!(parse_balance("random(2)").unwrap().1.draws, 2);
        assert!(parse_balance("random(0)").is_err());
        assert!(parse_balance("url_param").is_err());
        assert!(parse_balance("uri len x").is_err());
        assert!(parse_balance("leastconn extra").is_err());
        assert!(parse_balance("least_conn")
            .unwrap_err()
            .hint
            .unwrap()
            .contains("leastconn"));
    }

    #[test]
    fn cookie_settings() {
        let c = parse_cookie("SRV insert indirect nocache").unwrap();
        assert_eq!(c.mode, CookieMode::Insert);
        assert!(c.indirect && c.nocache);
        assert!(parse_cookie("SRV").is_err());
        assert!(parse_cookie("SRV insert prefix").is_err());
        assert!(parse_cookie("SRV insert postonly").is_err());
    }
}
