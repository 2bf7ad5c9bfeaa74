//! `defaults`, `frontend`, `backend` and `listen` sections.
//!
//! Each proxy starts from the defaults section in force where it is
//! declared (the last one before it, or the one named after `from`), as
//! HAProxy 2.6 does; what it inherits is written into its own tables, so
//! the output needs no `[defaults]` and several defaults sections convert
//! exactly. Keywords apply to a side: a listen's are split between its
//! frontend and its backend, an inherited one lands only where HAProxy
//! would use it.
//!
//! Files: `keywords` (the tables of what maps and what does not),
//! `listeners` (bind lines), `servers` (server and default-server lines),
//! `routing` (rules, balance, cookie), `options` (`option`, checks,
//! stats), `finish` (a proxy's tables).

mod finish;
mod keywords;
mod listeners;
mod options;
mod routing;
mod servers;

use std::collections::HashMap;

use super::global::Global;
use super::lexer::Line;
use super::sections::{Kind, Section};
use super::words;
use super::{Entry, Origin, Problem, Table, Val};

use keywords::*;

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

    /// `log-format <string>` / `unique-id-format <string>`: HAProxy's
    /// custom format, kept as written when percore knows every variable in
    /// it.
    fn log_format(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kw = line.word(0);
        if line.len() != 2 {
            problems.push(line.problem(
                format!("{kw} takes one argument"),
                "quote the format: log-format \"%ci:%cp [%tr] %ft %b/%s %ST %B\"",
            ));
            return;
        }
        let format = line.word(1);
        match crate::log::custom::CustomFormat::parse(&format) {
            Ok(_) if kw == "log-format" && !format.contains(['%', ' ']) => {
                problems.push(line.problem(
                    format!("log-format {format:?} has no variable"),
                    "percore reads a log-format without % or space as a layout name (tcplog, httplog, json)",
                ))
            }
            Ok(_) => self.add(Side::Front, entry(&[&kw], Val::str(format), line), problems),
            Err(e) => problems.push(line.problem(
                format!("{kw}: {} (at offset {})", e.message, e.at),
                e.hint,
            )),
        }
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
                // `acl` alone has no name and no test (found by fuzzing
                // convert: this slice panicked); percore then reports the
                // empty ACL when the output is checked.
                let rule = words::join(line.words.get(2..).unwrap_or_default());
                let side = self.rules_side();
                self.add(side, pushed(&["acl", &arg], Val::str(rule), line), problems)
            }
            "http-request" | "http-response" => self.http_rule(line, problems),
            "tcp-request" => self.tcp_rule(line, problems),
            "stick-table" | "stick" => self.stick(line, problems),
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
            "log-format" | "unique-id-format" | "log-format-sd" => self.log_format(line, problems),
            "unique-id-header" => {
                self.add(Side::Front, entry(&["unique-id-header"], Val::str(arg), line), problems)
            }
            "errorfile" => {
                let file = line.word(2);
                let mut e = entry(&["errorfile", &arg], Val::str(file.clone()), line);
                if !file.starts_with('/') {
                    e.note = Some("relative: percore reads it from the directory of its configuration file, HAProxy from its working directory".into());
                }
                self.add(Side::Both, e, problems)
            }
            "capture"
                if (arg == "request" || arg == "response")
                    && line.word(2) == "header"
                    && line.word(4) == "len" =>
            {
                if let Some(len) = int_word(line, 5, problems) {
                    let v = Val::Table(vec![
                        ("name".into(), Val::str(line.word(3))),
                        ("len".into(), Val::Int(len)),
                    ]);
                    let key = format!("capture-{arg}-header");
                    self.add(Side::Front, pushed(&[&key], v, line), problems)
                }
            }
            "capture" if arg == "cookie" && line.word(3) == "len" => {
                if let Some(len) = int_word(line, 4, problems) {
                    let v = Val::Table(vec![
                        ("name".into(), Val::str(line.word(2))),
                        ("len".into(), Val::Int(len)),
                    ]);
                    self.add(Side::Front, entry(&["capture-cookie"], v, line), problems)
                }
            }
            "capture" => problems.push(line.problem(
                "percore captures request and response headers and one cookie",
                "capture request|response header <name> len <n>, capture cookie <name> len <n>",
            )),
            "declare"
                if arg == "capture"
                    && matches!(line.word(2).as_str(), "request" | "response")
                    && line.word(3) == "len" =>
            {
                if let Some(len) = int_word(line, 4, problems) {
                    let v = Val::Table(vec![
                        ("type".into(), Val::str(line.word(2))),
                        ("len".into(), Val::Int(len)),
                    ]);
                    self.add(Side::Front, pushed(&["declare-capture"], v, line), problems)
                }
            }
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
}
