//! `defaults`, `frontend`, `backend` and `listen` sections.
//!
//! Each proxy starts from the defaults section in force where it is
//! declared (the last one before it, or the one named after `from`), as
//! HAProxy 2.6 does; what it inherits is written into its own tables, so
//! the output needs no `[defaults]` and several defaults sections convert
//! exactly. Keywords apply to a side: a listen's are split between its
//! frontend and its backend, an inherited one lands only where HAProxy
//! would use it.

use std::collections::HashMap;

use super::global::Global;
use super::lexer::Line;
use super::sections::{Kind, Section};
use super::words;
use super::{Entry, Origin, Problem, Table, Val};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Front,
    Back,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckKind {
    Tcp,
    Http,
}

/// What a defaults section hands down, and what a proxy accumulates.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    items: Vec<(Side, Entry)>,
    /// `default-server` options, merged into each later server line.
    default_server: Vec<(String, Val)>,
    /// `option tcp-check` / `option httpchk` (the last one wins), with the
    /// request of `option httpchk <method> <uri> <version>`.
    check: Option<(CheckKind, Origin, Option<String>)>,
    tcp_check: Vec<Entry>,
    http_check: Vec<Entry>,
}

/// The defaults sections read so far.
#[derive(Debug, Default)]
pub struct DefaultsSet {
    named: HashMap<String, (String, Settings)>,
    last: Option<(String, Settings)>,
}

impl DefaultsSet {
    pub fn read(&mut self, section: &Section, global: &Global, problems: &mut Vec<Problem>) {
        let base = self.base(section, problems);
        let name = section.name().unwrap_or_default();
        let mut st = State::new(section, base, global);
        for line in &section.body {
            st.line(line, problems);
        }
        let label = if name.is_empty() {
            format!("defaults at line {}", section.head.origin.line)
        } else {
            format!("defaults {name}")
        };
        // What a defaults section cannot hand down in percore terms.
        for line in st.stats_lines.iter().chain(st.prometheus.iter()) {
            problems.push(line.problem(
                "stats settings in a defaults section are not converted",
                "write them in the listen section that serves the stats page",
            ));
        }
        for e in &st.redirects {
            problems.push(Problem {
                origin: e.origin.clone(),
                why: "a redirect in a defaults section is not converted".into(),
                hint: "write it in the frontend".into(),
            });
        }
        if !name.is_empty() {
            self.named.insert(name, (label.clone(), st.s.clone()));
        }
        self.last = Some((label, st.s));
    }

    /// The settings a section starts from, each marked with where it came from.
    fn base(&self, section: &Section, problems: &mut Vec<Problem>) -> Settings {
        let from = match section.from() {
            Some(n) => match self.named.get(&n) {
                Some(d) => Some(d),
                None => {
                    problems.push(section.head.problem(
                        format!("no defaults section named `{n}` before this line"),
                        "name a defaults section declared earlier",
                    ));
                    None
                }
            },
            None if section.kind == Kind::Defaults => None,
            None => self.last.as_ref(),
        };
        let Some((label, settings)) = from else {
            return Settings::default();
        };
        let mut s = settings.clone();
        let mark = |e: &mut Entry| {
            e.note.get_or_insert_with(|| format!("from {label}"));
        };
        s.items.iter_mut().for_each(|(_, e)| mark(e));
        s.tcp_check.iter_mut().for_each(mark);
        s.http_check.iter_mut().for_each(mark);
        s
    }
}

/// One proxy being converted.
struct State<'a> {
    kind: Kind,
    name: String,
    head: Line,
    s: Settings,
    global: &'a Global,
    /// `stats ...` lines: (key, value, line).
    stats: Vec<(String, Val, Line)>,
    stats_lines: Vec<Line>,
    prometheus: Option<Line>,
    /// Old-style `redirect` lines: HAProxy runs them after `http-request`.
    redirects: Vec<Entry>,
}

/// Converts a proxy section to its table(s).
pub fn convert(
    section: &Section,
    defaults: &DefaultsSet,
    global: &Global,
    problems: &mut Vec<Problem>,
) -> Vec<Table> {
    let base = defaults.base(section, problems);
    let mut st = State::new(section, base, global);
    for line in &section.body {
        st.line(line, problems);
    }
    st.finish(problems)
}

const TIMEOUTS: [(&str, Side); 9] = [
    ("client", Side::Front),
    ("http-request", Side::Front),
    ("http-keep-alive", Side::Front),
    ("connect", Side::Back),
    ("server", Side::Back),
    ("tunnel", Side::Back),
    ("queue", Side::Back),
    ("check", Side::Back),
    ("tarpit", Side::Both),
];

const HTTP_REQUEST_ACTIONS: &[&str] = &[
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
const HTTP_RESPONSE_ACTIONS: &[&str] = &[
    "set-header",
    "add-header",
    "del-header",
    "replace-header",
    "deny",
];
const TCP_CHECK_ACTIONS: &[&str] = &["connect", "send", "send-binary", "expect", "comment"];
const HTTP_CHECK_ACTIONS: &[&str] = &["send", "expect", "comment"];

/// Keywords with no percore equivalent yet, and what to do instead.
const UNMAPPED: &[(&str, &str)] = &[
    (
        "tcp-request",
        "needs percore's tcp-request rules (being added)",
    ),
    ("tcp-response", "percore has no tcp-response rules"),
    (
        "reqrep",
        "removed in HAProxy 2.1: write http-request replace-header / set-path",
    ),
    (
        "reqirep",
        "removed in HAProxy 2.1: write http-request replace-header / set-path",
    ),
    (
        "reqadd",
        "removed in HAProxy 2.1: write http-request add-header",
    ),
    (
        "reqdel",
        "removed in HAProxy 2.1: write http-request del-header",
    ),
    (
        "reqidel",
        "removed in HAProxy 2.1: write http-request del-header",
    ),
    ("reqdeny", "removed in HAProxy 2.1: write http-request deny"),
    (
        "reqallow",
        "removed in HAProxy 2.1: write http-request allow",
    ),
    (
        "rsprep",
        "removed in HAProxy 2.1: write http-response replace-header",
    ),
    (
        "rspadd",
        "removed in HAProxy 2.1: write http-response add-header",
    ),
    (
        "rspdel",
        "removed in HAProxy 2.1: write http-response del-header",
    ),
    ("block", "removed in HAProxy 2.1: write http-request deny"),
    ("stick-table", "percore has no stick tables"),
    ("stick", "percore has no stick tables"),
    (
        "compression",
        "percore does not compress; let the servers do it",
    ),
    (
        "monitor-uri",
        "write http-request return status 200 if { path <uri> }",
    ),
    (
        "use-server",
        "percore has no use-server; route to a backend holding that server",
    ),
    (
        "fullconn",
        "percore has no dynamic maxconn (minconn/fullconn)",
    ),
    ("unique-id-format", "percore has no unique-id"),
    ("unique-id-header", "percore has no unique-id"),
    (
        "log-format",
        "percore's log formats are log-format = \"httplog\", \"tcplog\" or \"json\"",
    ),
    ("server-template", "write the servers out one by one"),
    ("filter", "percore has no filters"),
    ("http-after-response", "write http-response rules"),
    ("errorloc", "write an errorfile with a Location field"),
    ("errorloc302", "write an errorfile with a Location field"),
    ("errorloc303", "write an errorfile with a Location field"),
    ("errorfiles", "write one errorfile line per status"),
    ("http-error", "write an errorfile"),
    (
        "source",
        "percore connects from the address the kernel picks",
    ),
    ("description", "percore has no proxy descriptions"),
    ("id", "percore numbers proxies itself"),
    (
        "hash-balance-factor",
        "percore has no bounded-load consistent hashing",
    ),
    (
        "email-alert",
        "percore sends no e-mail; watch the [WARNING] lines",
    ),
    ("contimeout", "removed from HAProxy: write timeout connect"),
    ("clitimeout", "removed from HAProxy: write timeout client"),
    ("srvtimeout", "removed from HAProxy: write timeout server"),
];

const OPTION_HINTS: &[(&str, &str)] = &[
    (
        "httpclose",
        "the nearest is option http-server-close (percore keeps the client side alive)",
    ),
    ("ssl-hello-chk", "write the exchange as tcp-check lines"),
    ("mysql-check", "write the exchange as tcp-check lines"),
    ("pgsql-check", "write the exchange as tcp-check lines"),
    (
        "redis-check",
        "write it as tcp-check: send PING\\r\\n, expect string +PONG",
    ),
    ("smtpchk", "write the exchange as tcp-check lines"),
    ("ldap-check", "write the exchange as tcp-check lines"),
    (
        "splice-auto",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "splice-request",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "splice-response",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "log-health-checks",
        "percore logs every state change, not every check",
    ),
];

/// Server options that take one argument (HAProxy 2.6), to skip the
/// argument of those percore does not support.
const SERVER_ARG_OPTIONS: &[&str] = &[
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "alpn",
    "ca-file",
    "check-alpn",
    "check-proto",
    "check-sni",
    "ciphers",
    "ciphersuites",
    "cookie",
    "crl-file",
    "crt",
    "downinter",
    "error-limit",
    "fall",
    "fastinter",
    "hash-key",
    "id",
    "init-addr",
    "inter",
    "log-proto",
    "max-reuse",
    "maxconn",
    "maxqueue",
    "minconn",
    "namespace",
    "npn",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-low-conn",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "proxy-v2-options",
    "redir",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "rise",
    "shard",
    "slowstart",
    "sni",
    "socks4",
    "source",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "track",
    "usesrc",
    "verify",
    "verifyhost",
    "weight",
    "ws",
    "addr",
    "set-proxy-v2-tlv-fmt",
];

/// Bind options that take one argument.
const BIND_ARG_OPTIONS: &[&str] = &[
    "alpn",
    "backlog",
    "ca-file",
    "ca-sign-file",
    "ca-sign-pass",
    "ca-verify-file",
    "ciphers",
    "ciphersuites",
    "client-sigalgs",
    "crl-file",
    "crt",
    "crt-list",
    "curves",
    "ecdhe",
    "expose-fd",
    "gid",
    "group",
    "id",
    "interface",
    "label",
    "level",
    "maxconn",
    "mode",
    "mss",
    "name",
    "namespace",
    "nice",
    "npn",
    "process",
    "proto",
    "severity-output",
    "shards",
    "sigalgs",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "thread",
    "tls-ticket-keys",
    "uid",
    "user",
    "verify",
    "accept-netscaler-cip",
];

/// Server options percore reads: HAProxy keyword → (percore key, kind).
#[derive(Clone, Copy)]
enum Arg {
    Flag,
    Int,
    Text,
}
const SERVER_OPTIONS: &[(&str, &str, Arg)] = &[
    ("weight", "weight", Arg::Int),
    ("maxconn", "maxconn", Arg::Int),
    ("backup", "backup", Arg::Flag),
    ("disabled", "disabled", Arg::Flag),
    ("cookie", "cookie", Arg::Text),
    ("check", "check", Arg::Flag),
    ("inter", "inter", Arg::Text),
    ("fastinter", "fastinter", Arg::Text),
    ("downinter", "downinter", Arg::Text),
    ("rise", "rise", Arg::Int),
    ("fall", "fall", Arg::Int),
    ("port", "port", Arg::Int),
    ("addr", "check-addr", Arg::Text),
    ("observe", "observe", Arg::Text),
    ("error-limit", "error-limit", Arg::Int),
    ("on-error", "on-error", Arg::Text),
    ("ssl", "ssl", Arg::Flag),
    ("verify", "verify", Arg::Text),
    ("ca-file", "ca-file", Arg::Text),
    ("crt", "crt", Arg::Text),
];

fn entry(key: &[&str], value: Val, line: &Line) -> Entry {
    Entry {
        key: key.iter().map(|k| k.to_string()).collect(),
        value,
        push: false,
        origin: line.origin.clone(),
        note: None,
    }
}

fn pushed(key: &[&str], value: Val, line: &Line) -> Entry {
    Entry {
        push: true,
        ..entry(key, value, line)
    }
}

fn int_word(line: &Line, i: usize, problems: &mut Vec<Problem>) -> Option<i64> {
    let w = line.word(i);
    match w.parse() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(line.problem(
                format!("`{w}` is not a number"),
                format!("write `{} <number>`", line.word(0)),
            ));
            None
        }
    }
}

/// `base/file` for a relative `file` when a `*-base` is set.
fn based(base: &Option<String>, file: String) -> String {
    match base {
        Some(b) if !file.starts_with('/') => format!("{}/{file}", b.trim_end_matches('/')),
        _ => file,
    }
}

impl<'a> State<'a> {
    fn new(section: &Section, s: Settings, global: &'a Global) -> State<'a> {
        State {
            kind: section.kind,
            name: section.name().unwrap_or_default(),
            head: section.head.clone(),
            s,
            global,
            stats: Vec::new(),
            stats_lines: Vec::new(),
            prometheus: None,
            redirects: Vec::new(),
        }
    }

    /// The side routing rules belong to in this section.
    fn rules_side(&self) -> Side {
        if self.kind == Kind::Backend {
            Side::Back
        } else {
            Side::Front
        }
    }

    fn add(&mut self, side: Side, e: Entry, problems: &mut Vec<Problem>) {
        let misplaced = match (self.kind, side) {
            (Kind::Frontend, Side::Back) => Some("a frontend"),
            (Kind::Backend, Side::Front) => Some("a backend"),
            _ => None,
        };
        if let Some(place) = misplaced {
            problems.push(Problem {
                origin: e.origin.clone(),
                why: format!("HAProxy ignores or refuses this keyword in {place}"),
                hint: "move it to the section where it applies".into(),
            });
            return;
        }
        self.s.items.push((side, e));
    }

    fn line(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kw = line.word(0);
        let arg = line.word(1);
        match kw.as_str() {
            "mode" => match arg.as_str() {
                "http" | "tcp" => self.add(Side::Both, entry(&["mode"], Val::str(arg), line), problems),
                _ => problems.push(line.problem(format!("percore has no mode {arg}"), "mode http or mode tcp")),
            },
            "bind" => self.bind(line, problems),
            "maxconn" | "backlog" => {
                if let Some(n) = int_word(line, 1, problems) {
                    self.add(Side::Front, entry(&[&kw], Val::Int(n), line), problems);
                }
            }
            "retries" => {
                if let Some(n) = int_word(line, 1, problems) {
                    self.add(Side::Back, entry(&["retries"], Val::Int(n), line), problems);
                }
            }
            "timeout" => match TIMEOUTS.iter().find(|(k, _)| *k == arg) {
                Some((k, side)) => {
                    self.add(*side, entry(&["timeout", k], Val::str(line.word(2)), line), problems)
                }
                None => problems.push(line.problem(
                    format!("percore has no timeout {arg}"),
                    "percore's timeouts: client, server, connect, tunnel, queue, http-request, http-keep-alive, check, tarpit",
                )),
            },
            "default_backend" => {
                self.add(Side::Front, entry(&["default_backend"], Val::str(arg), line), problems)
            }
            "use_backend" => {
                let rule = words::join(&line.words[1..]);
                self.add(Side::Front, pushed(&["use_backend"], Val::str(rule), line), problems)
            }
            "acl" => {
                let rule = words::join(&line.words[2..]);
                let side = self.rules_side();
                self.add(side, pushed(&["acl", &arg], Val::str(rule), line), problems)
            }
            "http-request" | "http-response" => self.http_rule(line, problems),
            "redirect" => {
                let mut w = vec![b"redirect".to_vec()];
                w.extend_from_slice(&line.words[1..]);
                let e = pushed(&["http-request"], Val::str(words::join(&w)), line);
                if self.kind == Kind::Backend {
                    self.add(Side::Back, e, problems);
                } else {
                    self.redirects.push(e);
                }
            }
            "balance" => self.balance(line, problems),
            "hash-type" => {
                if line.len() > 2 {
                    problems.push(line.problem(
                        "percore chooses its own hash function",
                        format!("hash-type {arg}"),
                    ));
                }
                self.add(Side::Back, entry(&["hash-type"], Val::str(arg), line), problems)
            }
            "cookie" => self.cookie(line, problems),
            "http-reuse" => match arg.as_str() {
                "never" | "safe" | "always" => {
                    self.add(Side::Back, entry(&["http-reuse"], Val::str(arg), line), problems)
                }
                _ => problems.push(line.problem(
                    format!("percore has no http-reuse {arg}"),
                    "never, safe or always",
                )),
            },
            "server" => self.server(line, problems),
            "default-server" => {
                let opts = self.server_options(line, 1, problems);
                for (k, v) in opts {
                    self.s.default_server.retain(|(dk, _)| *dk != k);
                    self.s.default_server.push((k, v));
                }
            }
            "option" | "no" => self.option(line, problems),
            "log" => match arg.as_str() {
                // In a backend it only routes the backend's own messages;
                // percore's go to stderr.
                "global" if self.kind == Kind::Backend => {}
                "global" => self.add(Side::Front, entry(&["log"], Val::Bool(true), line), problems),
                _ => problems.push(line.problem(
                    "percore logs to the global targets only",
                    "move the target to a global log line and write log global here",
                )),
            },
            "errorfile" => {
                let file = line.word(2);
                let mut e = entry(&["errorfile", &arg], Val::str(file.clone()), line);
                if !file.starts_with('/') {
                    e.note = Some("relative: percore reads it from the directory of its configuration file, HAProxy from its working directory".into());
                }
                self.add(Side::Both, e, problems)
            }
            "capture" if arg == "request" && line.word(2) == "header" && line.word(4) == "len" => {
                if let Some(len) = int_word(line, 5, problems) {
                    let v = Val::Table(vec![
                        ("name".into(), Val::str(line.word(3))),
                        ("len".into(), Val::Int(len)),
                    ]);
                    self.add(Side::Front, pushed(&["capture-request-header"], v, line), problems)
                }
            }
            "capture" => problems.push(line.problem(
                "percore captures request headers only",
                "capture request header <name> len <n>",
            )),
            "http-check" => self.check_line(line, CheckKind::Http, problems),
            "tcp-check" => self.check_line(line, CheckKind::Tcp, problems),
            "stats" => self.stats(line, problems),
            _ => {
                let hint = UNMAPPED.iter().find(|(k, _)| *k == kw);
                problems.push(match hint {
                    Some((_, h)) => line.problem(format!("percore has no `{kw}`"), *h),
                    None => line.problem(
                        format!("unknown or unsupported keyword `{kw}`"),
                        "see docs/migration.md for what percore supports",
                    ),
                });
            }
        }
    }

    fn bind(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let mut opts: Vec<(String, Val)> = Vec::new();
        let mut i = 2;
        while i < line.len() {
            let w = line.word(i);
            let value = line.word(i + 1);
            match w.as_str() {
                "ssl" => opts.push(("ssl".into(), Val::Bool(true))),
                "crt" if opts.iter().any(|(k, _)| k == "crt") => problems.push(line.problem(
                    "percore takes one crt per bind",
                    "put the certificates in one directory and name it in crt",
                )),
                "crt" => opts.push(("crt".into(), Val::str(based(&self.global.crt_base, value)))),
                "alpn" => opts.push((
                    "alpn".into(),
                    Val::List(value.split(',').map(Val::str).collect()),
                )),
                "ssl-min-ver" | "ssl-max-ver" | "ciphers" | "ciphersuites" => {
                    opts.push((w.clone(), Val::str(value)))
                }
                // percore binds [::] v6only always; IPv4 addresses ignore it.
                "v6only" => {}
                "accept-proxy" => problems.push(line.problem(
                    "accept-proxy needs percore's PROXY protocol support (being added)",
                    "drop accept-proxy only if no load balancer in front sends the PROXY header",
                )),
                "v4v6" => problems.push(line.problem(
                    "percore binds [::] v6only",
                    "add an IPv4 bind next to the IPv6 one",
                )),
                other => problems.push(line.problem(
                    format!("bind option `{other}` is not supported"),
                    "percore's binds take ssl, crt, alpn, ssl-min-ver, ssl-max-ver, ciphers, ciphersuites",
                )),
            }
            if matches!(
                w.as_str(),
                "crt" | "alpn" | "ssl-min-ver" | "ssl-max-ver" | "ciphers" | "ciphersuites"
            ) || BIND_ARG_OPTIONS.contains(&w.as_str())
            {
                i += 1;
            }
            i += 1;
        }
        let ssl = opts.iter().any(|(k, _)| k == "ssl");
        if ssl {
            let g = self.global;
            for (key, dflt) in [
                ("ciphers", &g.bind_ciphers),
                ("ciphersuites", &g.bind_ciphersuites),
                ("ssl-min-ver", &g.bind_min_ver),
                ("ssl-max-ver", &g.bind_max_ver),
            ] {
                if let Some((v, _)) = dflt {
                    if !opts.iter().any(|(k, _)| k == key) {
                        opts.push((key.into(), Val::str(v.clone())));
                    }
                }
            }
        }
        for addr in line.word(1).split(',') {
            let Some(addr) = bind_addr(addr) else {
                problems.push(line.problem(
                    format!("percore cannot bind {addr}"),
                    "percore binds IPv4/IPv6 addresses with one port: ip:port, :port, [v6]:port",
                ));
                continue;
            };
            let value = if opts.is_empty() {
                Val::str(addr)
            } else {
                let mut t = vec![("addr".to_string(), Val::str(addr))];
                t.extend(opts.iter().cloned());
                Val::Table(t)
            };
            self.add(Side::Front, pushed(&["bind"], value, line), problems);
        }
    }

    fn http_rule(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kw = line.word(0);
        let action = line.word(1);
        if action == "use-service" && line.word(2) == "prometheus-exporter" {
            self.prometheus = Some(line.clone());
            return;
        }
        let supported = if kw == "http-request" {
            HTTP_REQUEST_ACTIONS
        } else {
            HTTP_RESPONSE_ACTIONS
        };
        if !supported.contains(&action.as_str()) {
            problems.push(line.problem(
                format!("percore has no {kw} {action}"),
                format!("percore's {kw} actions: {}", supported.join(", ")),
            ));
            return;
        }
        let rule = words::join(&line.words[1..]);
        let side = self.rules_side();
        self.add(side, pushed(&[&kw], Val::str(rule), line), problems);
    }

    fn balance(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let algo = line.word(1);
        let rest: Vec<String> = (2..line.len()).map(|i| line.word(i)).collect();
        let value = match algo.as_str() {
            "roundrobin" | "static-rr" | "leastconn" | "first" | "source" if rest.is_empty() => {
                Some(algo.clone())
            }
            a if a == "random" || a.starts_with("random(") => Some(algo.clone()),
            "uri" => Some(
                std::iter::once(algo.clone())
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "url_param" => {
                if line.len() > 3 {
                    problems.push(line.problem(
                        "percore hashes the query parameter only (no check_post)",
                        format!("balance url_param {}", line.word(2)),
                    ));
                }
                Some(format!("url_param {}", line.word(2)))
            }
            a if a.starts_with("hdr(") => {
                if !rest.is_empty() {
                    problems.push(line.problem(
                        "percore has no balance hdr() use_domain_only",
                        format!("balance {a}"),
                    ));
                }
                Some(algo.clone())
            }
            _ => None,
        };
        match value {
            Some(v) => self.add(Side::Back, entry(&["balance"], Val::str(v), line), problems),
            None => problems.push(line.problem(
                format!("percore has no balance {}", line.word(1)),
                "roundrobin, static-rr, leastconn, first, source, random, uri, url_param, hdr()",
            )),
        }
    }

    fn cookie(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let mut kept = vec![line.word(1)];
        let mut has_mode = false;
        let mut i = 2;
        while i < line.len() {
            let w = line.word(i);
            match w.as_str() {
                "insert" | "rewrite" | "prefix" => {
                    has_mode = true;
                    kept.push(w);
                }
                "indirect" | "nocache" => kept.push(w),
                other => {
                    problems.push(line.problem(
                        format!("percore has no cookie option `{other}`"),
                        "cookie <name> insert|rewrite|prefix [indirect] [nocache]",
                    ));
                    if matches!(other, "domain" | "maxidle" | "maxlife" | "attr") {
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        if !has_mode {
            problems.push(line.problem(
                "percore needs the cookie mode (HAProxy's passive mode has no equivalent)",
                "cookie <name> insert|rewrite|prefix",
            ));
            return;
        }
        self.add(
            Side::Back,
            entry(&["cookie"], Val::str(kept.join(" ")), line),
            problems,
        );
    }

    /// Reads server options from word `from` on.
    fn server_options(
        &self,
        line: &Line,
        from: usize,
        problems: &mut Vec<Problem>,
    ) -> Vec<(String, Val)> {
        let mut out: Vec<(String, Val)> = Vec::new();
        let mut set = |k: &str, v: Val| {
            out.retain(|(ok, _)| ok != k);
            out.push((k.to_string(), v));
        };
        let mut i = from;
        while i < line.len() {
            let w = line.word(i);
            let value = line.word(i + 1);
            let known = SERVER_OPTIONS.iter().find(|(k, _, _)| *k == w);
            match (w.as_str(), known) {
                (_, Some((_, key, Arg::Flag))) => set(key, Val::Bool(true)),
                (_, Some((_, key, Arg::Int))) => match value.parse() {
                    Ok(n) => set(key, Val::Int(n)),
                    Err(_) => problems.push(line.problem(
                        format!("`{w} {value}`: not a number"),
                        format!("{w} <number>"),
                    )),
                },
                ("ca-file", Some((_, key, Arg::Text))) => {
                    set(key, Val::str(based(&self.global.ca_base, value.clone())))
                }
                ("crt", Some((_, key, Arg::Text))) => {
                    set(key, Val::str(based(&self.global.crt_base, value.clone())))
                }
                (_, Some((_, key, Arg::Text))) => set(key, Val::str(value.clone())),
                ("sni", None) => match value.strip_prefix("str(").and_then(|v| v.strip_suffix(')'))
                {
                    Some(name) => set("sni", Val::str(name)),
                    None => problems.push(
                        line.problem("percore's sni is a fixed name", "sni str(<host name>)"),
                    ),
                },
                ("no-check", None) => set("check", Val::Bool(false)),
                ("no-backup", None) => set("backup", Val::Bool(false)),
                ("no-ssl", None) => set("ssl", Val::Bool(false)),
                ("enabled", None) => set("disabled", Val::Bool(false)),
                (
                    "send-proxy"
                    | "send-proxy-v2"
                    | "send-proxy-v2-ssl"
                    | "send-proxy-v2-ssl-cn"
                    | "check-send-proxy",
                    None,
                ) => problems.push(line.problem(
                    format!("{w} needs percore's PROXY protocol support (being added)"),
                    "the lead extends the converter when it lands",
                )),
                ("proto" | "alpn", None) if value.contains("h2") => problems.push(line.problem(
                    format!("{w} {value} needs percore's HTTP/2 support (being added)"),
                    "percore speaks HTTP/1.1 to servers",
                )),
                _ => problems.push(line.problem(
                    format!("server option `{w}` is not supported"),
                    "see docs/configuration.md, Servers and Health checks",
                )),
            }
            if SERVER_ARG_OPTIONS.contains(&w.as_str()) {
                i += 1;
            }
            i += 1;
        }
        out
    }

    fn server(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let name = line.word(1);
        let Some(addr) = server_addr(&line.word(2)) else {
            problems.push(line.problem(
                format!("percore cannot connect to {}", line.word(2)),
                "percore's servers are ip:port, [v6]:port or host:port, with a port",
            ));
            return;
        };
        let own = self.server_options(line, 3, problems);
        let mut t = vec![
            ("name".to_string(), Val::str(name)),
            ("addr".into(), Val::str(addr)),
        ];
        for (k, v) in &self.s.default_server {
            if !own.iter().any(|(ok, _)| ok == k) {
                t.push((k.clone(), v.clone()));
            }
        }
        t.extend(own);
        // `false` is percore's default for every flag: leave it out.
        t.retain(|(_, v)| *v != Val::Bool(false));
        self.add(
            Side::Back,
            pushed(&["servers"], Val::Table(t), line),
            problems,
        );
    }

    fn option(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let negated = line.word(0) == "no";
        let at = usize::from(negated);
        if negated && line.word(1) != "option" {
            problems.push(line.problem(
                format!("percore has no `no {}`", line.word(1)),
                "see docs/migration.md",
            ));
            return;
        }
        let opt = line.word(at + 1);
        let flag = Val::Bool(!negated);
        match opt.as_str() {
            "redispatch" => {
                let v = match line.word(at + 2).parse::<i64>() {
                    Ok(n) if !negated => Val::Int(n),
                    _ => flag,
                };
                self.add(Side::Back, entry(&["redispatch"], v, line), problems)
            }
            "allbackups" => self.add(Side::Back, entry(&["allbackups"], flag, line), problems),
            "http-server-close" => self.add(
                Side::Both,
                entry(&["http-server-close"], flag, line),
                problems,
            ),
            // The server side is what the servers see; the client side
            // stays keep-alive in percore: converted, and reported.
            "httpclose" => {
                if !negated {
                    problems.push(line.problem(
                        "percore has no option httpclose: converted to http-server-close (the server connection closes after each response, the client's stays open)",
                        "HAProxy also closes the client connection; percore lets the client decide",
                    ));
                }
                self.add(
                    Side::Both,
                    entry(&["http-server-close"], flag, line),
                    problems,
                )
            }
            "http-keep-alive" => self.add(
                Side::Both,
                entry(&["http-server-close"], Val::Bool(negated), line),
                problems,
            ),
            "dontlognull" => self.add(Side::Front, entry(&["dontlognull"], flag, line), problems),
            "httplog" | "tcplog" if !negated => {
                if line.len() > at + 2 {
                    problems.push(line.problem("percore has no httplog clf", "option httplog"));
                }
                self.add(
                    Side::Front,
                    entry(&["log-format"], Val::str(opt.clone()), line),
                    problems,
                )
            }
            "forwardfor" => {
                let mut t: Vec<(String, Val)> = Vec::new();
                let mut i = at + 2;
                while i < line.len() {
                    match line.word(i).as_str() {
                        "except" => t.push(("except".into(), Val::str(line.word(i + 1)))),
                        "header" => t.push(("header".into(), Val::str(line.word(i + 1)))),
                        "if-none" => {
                            t.push(("if-none".into(), Val::Bool(true)));
                            i -= 1;
                        }
                        other => {
                            problems.push(line.problem(
                                format!("unknown forwardfor option `{other}`"),
                                "option forwardfor [except <net>] [header <name>] [if-none]",
                            ));
                            i -= 1;
                        }
                    }
                    i += 2;
                }
                let v = if t.is_empty() || negated {
                    flag
                } else {
                    Val::Table(t)
                };
                self.add(Side::Both, entry(&["forwardfor"], v, line), problems)
            }
            "httpchk" if !negated => {
                let args: Vec<Vec<u8>> = line.words[at + 2..].to_vec();
                let send = httpchk_send(&args);
                self.s.check = Some((CheckKind::Http, line.origin.clone(), send));
            }
            "tcp-check" if !negated => {
                self.s.check = Some((CheckKind::Tcp, line.origin.clone(), None));
            }
            _ => {
                let hint = OPTION_HINTS
                    .iter()
                    .find(|(k, _)| *k == opt)
                    .map(|(_, h)| h.to_string())
                    .unwrap_or_else(|| {
                        "see docs/migration.md for the options percore supports".into()
                    });
                problems.push(line.problem(format!("percore has no option {opt}"), hint));
            }
        }
    }

    fn check_line(&mut self, line: &Line, kind: CheckKind, problems: &mut Vec<Problem>) {
        let action = line.word(1);
        let allowed = match kind {
            CheckKind::Tcp => TCP_CHECK_ACTIONS,
            CheckKind::Http => HTTP_CHECK_ACTIONS,
        };
        if !allowed.contains(&action.as_str()) {
            problems.push(line.problem(
                format!("percore has no {} {action}", line.word(0)),
                format!("percore's {} rules: {}", line.word(0), allowed.join(", ")),
            ));
            return;
        }
        let rule = words::join(&line.words[1..]);
        let e = pushed(&[&line.word(0)], Val::str(rule), line);
        match kind {
            CheckKind::Tcp => self.s.tcp_check.push(e),
            CheckKind::Http => self.s.http_check.push(e),
        }
    }

    fn stats(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let what = line.word(1);
        let v = line.word(2);
        let item = match what.as_str() {
            "enable" => None,
            "uri" if v.contains(['?', ';', '#']) => {
                problems.push(line.problem(
                    format!("percore's stats uri is a plain path, not {v}"),
                    "percore serves the page at /stats (the uri without '?', ';' or '#')",
                ));
                None
            }
            "uri" => Some(("uri", Val::str(v))),
            "auth" => Some(("auth", Val::str(v))),
            "refresh" => Some(("refresh", Val::str(v))),
            "hide-version" => Some(("hide-version", Val::Bool(true))),
            "realm" => None,
            _ => {
                problems.push(line.problem(
                    format!("percore's stats page has no `stats {what}`"),
                    "percore's [stats] takes bind, uri, auth, refresh, hide-version",
                ));
                return;
            }
        };
        if let Some((k, v)) = item {
            self.stats.retain(|(ok, _, _)| ok != k);
            self.stats.push((k.to_string(), v, line.clone()));
        }
        self.stats_lines.push(line.clone());
    }

    fn side_items(&self, wanted: Side) -> Vec<Entry> {
        self.s
            .items
            .iter()
            .filter(|(side, _)| *side == wanted || *side == Side::Both)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn last_str(entries: &[Entry], key: &str) -> Option<String> {
        entries
            .iter()
            .rev()
            .find(|e| e.key == [key])
            .and_then(|e| match &e.value {
                Val::Str(s) => Some(s.clone()),
                _ => None,
            })
    }

    fn name_entry(&self) -> Entry {
        Entry {
            key: vec!["name".into()],
            value: Val::str(self.name.clone()),
            push: false,
            origin: self.head.origin.clone(),
            note: None,
        }
    }

    fn finish(mut self, problems: &mut Vec<Problem>) -> Vec<Table> {
        if self.kind == Kind::Defaults {
            return Vec::new();
        }
        let mut tables = Vec::new();
        let front_wanted = matches!(self.kind, Kind::Frontend | Kind::Listen);
        let back_wanted = matches!(self.kind, Kind::Backend | Kind::Listen);
        if front_wanted && (!self.stats_lines.is_empty() || self.prometheus.is_some()) {
            if let Some(t) = self.stats_table(problems) {
                return vec![t];
            }
        }
        if front_wanted {
            let mut entries = vec![self.name_entry()];
            entries.extend(self.side_items(Side::Front));
            entries.append(&mut self.redirects);
            let http = Self::last_str(&entries, "mode").as_deref() == Some("http");
            tls_alpn(&mut entries, http, problems);
            // Without option httplog HAProxy logs its default format,
            // which is tcplog's; percore's default in mode http is httplog.
            let logs = entries
                .iter()
                .rev()
                .find(|e| e.key == ["log"])
                .is_some_and(|e| e.value == Val::Bool(true));
            if http && logs && !entries.iter().any(|e| e.key == ["log-format"]) {
                let origin = entries
                    .iter()
                    .rev()
                    .find(|e| e.key == ["log"])
                    .map(|e| e.origin.clone())
                    .unwrap_or_else(|| self.head.origin.clone());
                entries.push(Entry {
                    key: vec!["log-format".into()],
                    value: Val::str("tcplog"),
                    push: false,
                    origin,
                    note: Some(
                        "no option httplog: HAProxy logs its default format, tcplog's; percore would write httplog"
                            .into(),
                    ),
                });
            }
            if self.kind == Kind::Listen && !entries.iter().any(|e| e.key == ["default_backend"]) {
                entries.push(Entry {
                    key: vec!["default_backend".into()],
                    value: Val::str(self.name.clone()),
                    push: false,
                    origin: self.head.origin.clone(),
                    note: Some(
                        "a listen section is a frontend and a backend of the same name".into(),
                    ),
                });
            }
            tables.push(Table {
                header: "[[frontend]]".into(),
                origin: Some(self.head.origin.clone()),
                entries,
                notes: Vec::new(),
            });
        }
        if back_wanted {
            let mut entries = vec![self.name_entry()];
            entries.extend(self.side_items(Side::Back));
            match &self.s.check {
                Some((CheckKind::Tcp, origin, _)) => {
                    entries.push(list_start("tcp-check", Vec::new(), origin));
                    entries.extend(self.s.tcp_check.iter().cloned());
                }
                Some((CheckKind::Http, origin, send)) => {
                    let first = send.iter().map(|s| Val::str(s.clone())).collect();
                    entries.push(list_start("http-check", first, origin));
                    entries.extend(self.s.http_check.iter().cloned());
                }
                None => {}
            }
            let unused = match self.s.check {
                Some((CheckKind::Tcp, _, _)) => &self.s.http_check,
                Some((CheckKind::Http, _, _)) => &self.s.tcp_check,
                None => &self.s.tcp_check,
            };
            let mut leftover: Vec<&Entry> = unused.iter().collect();
            if self.s.check.is_none() {
                leftover.extend(self.s.http_check.iter());
            }
            for e in leftover {
                problems.push(Problem {
                    origin: e.origin.clone(),
                    why: "HAProxy does not run these rules without the matching option tcp-check / option httpchk".into(),
                    hint: "add the option, or remove the rules".into(),
                });
            }
            tables.push(Table {
                header: "[[backend]]".into(),
                origin: Some(self.head.origin.clone()),
                entries,
                notes: Vec::new(),
            });
        }
        tables
    }

    /// A proxy that only serves the stats page becomes `[stats]`.
    fn stats_table(&mut self, problems: &mut Vec<Problem>) -> Option<Table> {
        let items = self.side_items(Side::Front);
        let serves = items
            .iter()
            .any(|e| matches!(e.key[0].as_str(), "default_backend" | "use_backend"))
            || self.s.items.iter().any(|(_, e)| e.key == ["servers"]);
        if serves {
            for l in self.stats_lines.iter().chain(self.prometheus.iter()) {
                problems.push(l.problem(
                    "percore serves stats on its own [stats] address, not inside a proxy",
                    "move the stats lines to a listen section of their own",
                ));
            }
            return None;
        }
        let binds: Vec<&Entry> = items.iter().filter(|e| e.key == ["bind"]).collect();
        let mut entries = Vec::new();
        match binds.first() {
            Some(b) => {
                let addr = match &b.value {
                    Val::Str(a) => a.clone(),
                    Val::Table(t) => {
                        problems.push(Problem {
                            origin: b.origin.clone(),
                            why: "percore's stats page is plain HTTP".into(),
                            hint: "bind it on loopback or a private address".into(),
                        });
                        t.iter()
                            .find(|(k, _)| k == "addr")
                            .map(|(_, v)| match v {
                                Val::Str(s) => s.clone(),
                                _ => String::new(),
                            })
                            .unwrap_or_default()
                    }
                    _ => String::new(),
                };
                let mut e = (*b).clone();
                e.value = Val::str(addr);
                e.push = false;
                entries.push(e);
                for extra in &binds[1..] {
                    problems.push(Problem {
                        origin: extra.origin.clone(),
                        why: "percore's stats page has one bind".into(),
                        hint: "keep one address".into(),
                    });
                }
            }
            None => {
                problems.push(
                    self.head
                        .problem("a stats section without bind", "add a bind"),
                );
                return None;
            }
        }
        if !self.stats.iter().any(|(k, _, _)| k == "uri") && !self.stats_lines.is_empty() {
            entries.push(Entry {
                key: vec!["uri".into()],
                value: Val::str("/stats"),
                push: false,
                origin: self.head.origin.clone(),
                note: Some(
                    "HAProxy's default stats uri is /haproxy?stats, which percore cannot serve (no '?' in a stats uri)"
                        .into(),
                ),
            });
        }
        for (k, v, line) in &self.stats {
            entries.push(Entry {
                key: vec![k.clone()],
                value: v.clone(),
                push: false,
                origin: line.origin.clone(),
                note: None,
            });
        }
        let mut notes = Vec::new();
        if let Some(p) = &self.prometheus {
            notes.push(format!(
                "{}: percore serves Prometheus metrics at {} of this address",
                p.origin,
                crate::config::METRICS_PATH
            ));
        }
        // Rules of a stats proxy (auth, deny...) have no place in [stats].
        for (_, e) in &self.s.items {
            if e.note.is_none()
                && matches!(e.key[0].as_str(), "http-request" | "http-response" | "acl")
            {
                problems.push(Problem {
                    origin: e.origin.clone(),
                    why: "percore's stats page takes no rules".into(),
                    hint: "protect it with stats auth and a private bind".into(),
                });
            }
        }
        Some(Table {
            header: "[stats]".into(),
            origin: Some(self.head.origin.clone()),
            entries,
            notes,
        })
    }
}

fn list_start(key: &str, items: Vec<Val>, origin: &Origin) -> Entry {
    Entry {
        key: vec![key.into()],
        value: Val::List(items),
        push: false,
        origin: origin.clone(),
        note: None,
    }
}

/// `option httpchk [<method>] <uri> [<version>]` as an `http-check send`
/// rule; a version may carry header lines (`HTTP/1.1\r\nHost:\ x`).
fn httpchk_send(args: &[Vec<u8>]) -> Option<String> {
    let text = |w: &Vec<u8>| w.clone();
    let (meth, uri, ver) = match args.len() {
        0 => return None,
        1 => (None, text(&args[0]), None),
        2 => (Some(text(&args[0])), text(&args[1]), None),
        _ => (Some(text(&args[0])), text(&args[1]), Some(text(&args[2]))),
    };
    let mut w: Vec<Vec<u8>> = vec![b"send".to_vec()];
    if let Some(m) = meth {
        w.push(b"meth".to_vec());
        w.push(m);
    }
    w.push(b"uri".to_vec());
    w.push(uri);
    if let Some(v) = ver {
        let v = String::from_utf8_lossy(&v).into_owned();
        let mut parts = v.split("\r\n");
        w.push(b"ver".to_vec());
        w.push(parts.next().unwrap_or("").as_bytes().to_vec());
        for h in parts.filter(|p| !p.is_empty()) {
            if let Some((n, val)) = h.split_once(':') {
                w.push(b"hdr".to_vec());
                w.push(n.trim().as_bytes().to_vec());
                w.push(val.trim().as_bytes().to_vec());
            }
        }
    }
    Some(words::join(&w))
}

/// In mode http, TLS binds: HAProxy 2.6 offers no ALPN unless told, percore
/// offers http/1.1 by default: written out as `alpn = []`. `h2` is dropped
/// (percore speaks HTTP/1.1) and reported.
fn tls_alpn(entries: &mut [Entry], http: bool, problems: &mut Vec<Problem>) {
    for e in entries.iter_mut().filter(|e| e.key == ["bind"]) {
        let Val::Table(t) = &mut e.value else {
            continue;
        };
        if !t.iter().any(|(k, v)| k == "ssl" && *v == Val::Bool(true)) || !http {
            continue;
        }
        match t.iter_mut().find(|(k, _)| k == "alpn") {
            Some((_, Val::List(names))) => {
                if names.iter().any(|n| *n == Val::str("h2")) {
                    names.retain(|n| *n != Val::str("h2"));
                    problems.push(Problem {
                        origin: e.origin.clone(),
                        why: "alpn h2 needs percore's HTTP/2 support (being added); h2 left out"
                            .into(),
                        hint: "clients fall back to http/1.1".into(),
                    });
                }
            }
            Some(_) => {}
            None => {
                t.push(("alpn".into(), Val::List(Vec::new())));
                e.note.get_or_insert_with(|| {
                    "alpn = []: HAProxy 2.6 offers no ALPN unless told, percore would offer http/1.1"
                        .into()
                });
            }
        }
    }
}

/// A bind address percore reads, from HAProxy's forms.
fn bind_addr(addr: &str) -> Option<String> {
    let addr = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .unwrap_or(addr);
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|p| *p != 0)?;
    if host.starts_with('[')
        || host.is_empty()
        || host == "*"
        || host.parse::<std::net::Ipv4Addr>().is_ok()
    {
        return Some(addr.to_string());
    }
    // HAProxy writes IPv6 without brackets (`:::80`, `::1:80`).
    if host == "::" || host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(format!("[{host}]:{port}"));
    }
    None
}

/// A server address percore reads: `ip:port`, `[v6]:port`, `host:port`.
fn server_addr(addr: &str) -> Option<String> {
    let addr = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .unwrap_or(addr);
    let (host, port) = addr.rsplit_once(':')?;
    port.parse::<u16>().ok().filter(|p| *p != 0)?;
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return None;
    }
    if host.contains(':') && !host.starts_with('[') {
        host.parse::<std::net::Ipv6Addr>().ok()?;
        return Some(format!("[{host}]:{port}"));
    }
    Some(addr.to_string())
}
