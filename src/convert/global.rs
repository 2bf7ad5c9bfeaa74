//! The `global` and `userlist` sections.

use super::lexer::Line;
use super::sections::Section;
use super::{Entry, Origin, Problem, Table, Val};

/// What `global` sets, and what later sections read from it.
#[derive(Debug, Default)]
pub struct Global {
    entries: Vec<Entry>,
    origin: Option<Origin>,
    /// `cpu-map`: (thread number, cpu), for `threads = [cpus]`.
    cpu_map: Vec<(u32, u32)>,
    cpu_map_origin: Option<Origin>,
    nbthread: Option<(i64, Origin)>,
    log_tag: Option<String>,
    /// Read by bind lines: `crt-base`, `ssl-default-bind-*`.
    pub crt_base: Option<String>,
    pub ca_base: Option<String>,
    pub bind_ciphers: Option<(String, Origin)>,
    pub bind_ciphersuites: Option<(String, Origin)>,
    pub bind_min_ver: Option<(String, Origin)>,
    pub bind_max_ver: Option<(String, Origin)>,
    maxconn_set: bool,
    hard_stop_set: bool,
}

/// Global keywords that have no percore equivalent, with the hint.
const UNMAPPED: &[(&str, &str)] = &[
    (
        "daemon",
        "percore runs in the foreground; let systemd (or your supervisor) run it in the background",
    ),
    (
        "master-worker",
        "percore has no master process; reload with SIGHUP or the runtime API `reload`",
    ),
    (
        "ulimit-n",
        "percore raises its descriptor limit from maxconn itself",
    ),
    (
        "setenv",
        "export the variable before running percore convert",
    ),
    (
        "presetenv",
        "export the variable before running percore convert",
    ),
    (
        "unsetenv",
        "unset the variable before running percore convert",
    ),
    (
        "resetenv",
        "run percore convert in the environment you want",
    ),
    ("ssl-server-verify", "set verify on each server"),
    ("spread-checks", "percore does not spread checks"),
    ("lua-load", "percore has no Lua"),
    (
        "log-send-hostname",
        "percore's RFC 5424 lines carry the host name; RFC 3164 lines have none",
    ),
];

fn set(key: &[&str], value: Val, line: &Line) -> Entry {
    Entry {
        key: key.iter().map(|k| k.to_string()).collect(),
        value,
        push: false,
        origin: line.origin.clone(),
        note: None,
    }
}

fn int(line: &Line, i: usize, problems: &mut Vec<Problem>) -> Option<i64> {
    match line.word(i).parse() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(line.problem(
                format!("`{}` is not a number", line.word(i)),
                format!("write `{} <number>`", line.word(0)),
            ));
            None
        }
    }
}

impl Global {
    pub fn read(&mut self, section: &Section, problems: &mut Vec<Problem>) {
        self.origin.get_or_insert(section.head.origin.clone());
        for line in &section.body {
            self.line(line, problems);
        }
    }

    fn line(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kw = line.word(0);
        let arg = line.word(1);
        match kw.as_str() {
            "maxconn" => {
                if let Some(n) = int(line, 1, problems) {
                    self.maxconn_set = true;
                    self.entries.push(set(&["maxconn"], Val::Int(n), line));
                }
            }
            "nbthread" => {
                if let Some(n) = int(line, 1, problems) {
                    self.nbthread = Some((n, line.origin.clone()));
                }
            }
            "cpu-map" => self.cpu_map(line, problems),
            "hard-stop-after" => {
                self.hard_stop_set = true;
                self.entries
                    .push(set(&["hard-stop-after"], Val::str(arg), line));
            }
            "strict-limits" => self
                .entries
                .push(set(&["strict-limits"], Val::Bool(true), line)),
            "no" if arg == "strict-limits" => {
                self.entries
                    .push(set(&["strict-limits"], Val::Bool(false), line))
            }
            "nosplice" => self
                .entries
                .push(set(&["tune", "splice"], Val::Bool(false), line)),
            "tune.pipesize"
            | "tune.bufsize"
            | "maxpipes"
            | "tune.h2.max-concurrent-streams"
            | "tune.h2.initial-window-size"
            | "tune.h2.max-frame-size"
            | "tune.h2.header-table-size" => {
                if let Some(n) = int(line, 1, problems) {
                    let key: Vec<&str> = kw.split('.').collect();
                    self.entries.push(set(&key, Val::Int(n), line));
                }
            }
            "log" => self.log(line, problems),
            "log-tag" => self.log_tag = Some(arg),
            "stats" if arg == "socket" => self.stats_socket(line, problems),
            "stats" if arg == "timeout" => {
                self.entries
                    .push(set(&["stats-timeout"], Val::str(line.word(2)), line))
            }
            // Who the process runs as once started (percore drops root
            // after binding, as HAProxy does); uid/gid are the numeric forms.
            "user" | "uid" => self.entries.push(set(&["user"], Val::str(arg), line)),
            "group" | "gid" => self.entries.push(set(&["group"], Val::str(arg), line)),
            "chroot" => self.entries.push(set(&["chroot"], Val::str(arg), line)),
            "pidfile" => self.entries.push(set(&["pidfile"], Val::str(arg), line)),
            "setcap" => self.entries.push(set(&["setcap"], Val::str(arg), line)),
            "crt-base" => self.crt_base = Some(arg),
            "ca-base" => self.ca_base = Some(arg),
            "ssl-default-bind-ciphers" => self.bind_ciphers = Some((arg, line.origin.clone())),
            "ssl-default-bind-ciphersuites" => {
                self.bind_ciphersuites = Some((arg, line.origin.clone()))
            }
            "ssl-default-bind-options" => self.bind_options(line, problems),
            _ => {
                let hint = UNMAPPED
                    .iter()
                    .find(|(k, _)| *k == kw)
                    .map(|(_, h)| h.to_string());
                problems.push(match hint {
                    Some(h) => line.problem(format!("percore has no global `{kw}`"), h),
                    None => line.problem(
                        format!("unknown or unsupported global keyword `{kw}`"),
                        "see docs/configuration.md, [global], for what percore supports",
                    ),
                });
            }
        }
    }

    /// `cpu-map [auto:]1/<threads> <cpus>` (HAProxy 2.6 forms).
    fn cpu_map(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let spec = line.word(1);
        let (auto, spec) = match spec.strip_prefix("auto:") {
            Some(s) => (true, s.to_string()),
            None => (false, spec),
        };
        let threads = spec.split_once('/').map(|(_, t)| t).and_then(ranges);
        let cpus = (2..line.len())
            .map(|i| ranges(&line.word(i)))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        match (threads, cpus) {
            (Some(t), Some(c))
                if (auto && t.len() == c.len()) || (t.len() == 1 && c.len() == 1) =>
            {
                self.cpu_map.extend(t.into_iter().zip(c));
                self.cpu_map_origin = Some(line.origin.clone());
            }
            _ => problems.push(line.problem(
                "this cpu-map form is not converted",
                "percore pins one executor per CPU: write threads = [cpu, ...] in [global]",
            )),
        }
    }

    fn log(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let target = line.word(1);
        let target = match target.as_str() {
            "stdout" | "stderr" => target.clone(),
            // A local syslog socket (`log /dev/log`, `unix@/dev/log`).
            t if t.starts_with('/') || t.starts_with("unix@/") => {
                format!("unix:{}", t.strip_prefix("unix@").unwrap_or(t))
            }
            t if t.starts_with("unix@") || t.starts_with("ring@") => {
                problems.push(line.problem(
                    format!("percore cannot log to {t}"),
                    "percore logs to udp://IP:port, tcp://IP:port, unix:/path (a syslog socket), file:/path, stdout or stderr",
                ));
                return;
            }
            // Syslog over TCP (octet-counted, as HAProxy's ring forwarding).
            t if t.starts_with("tcp@") => format!("tcp://{}", &t[4..]),
            t => {
                let t = t
                    .strip_prefix("udp@")
                    .or(t.strip_prefix("ipv4@"))
                    .unwrap_or(t);
                if t.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                {
                    format!("udp://{t}")
                } else {
                    format!("udp://{t}:514")
                }
            }
        };
        let mut table = vec![("target".to_string(), Val::str(target))];
        let mut i = 2;
        let mut level_seen = 0;
        while i < line.len() {
            let w = line.word(i);
            match w.as_str() {
                "len" => {
                    if line.word(i + 1) != "1024" {
                        problems.push(line.problem(
                            "percore cuts UDP log messages at 1024 bytes",
                            "remove `len`",
                        ));
                    }
                    i += 1;
                }
                "format" => {
                    let f = line.word(i + 1);
                    if ["rfc3164", "rfc5424", "raw"].contains(&f.as_str()) {
                        table.push(("format".into(), Val::str(f)));
                    } else {
                        problems.push(line.problem(
                            format!("percore has no log format `{f}`"),
                            "rfc3164, rfc5424 or raw",
                        ));
                    }
                    i += 1;
                }
                "sample" => {
                    problems.push(line.problem("percore does not sample logs", "remove `sample`"));
                    i += 1;
                }
                w if level_seen == 0 && FACILITY.contains(&w) => {
                    level_seen = 1;
                    if w != "local0" {
                        table.push(("facility".into(), Val::str(w)));
                    }
                }
                w if level_seen >= 1 => {
                    // Access logs are sent at `info`: a maximum level more
                    // severe than that would have dropped them.
                    if level_seen == 1 && !["info", "debug"].contains(&w) {
                        problems.push(line.problem(
                            format!("with maximum level {w} HAProxy sends no access log; percore sends them at info"),
                            "remove the log line, or the proxies' `log global`, to log nothing",
                        ));
                    }
                    level_seen += 1;
                }
                other => problems.push(line.problem(
                    format!("unknown log option `{other}`"),
                    "log <target> [len <n>] [format <fmt>] <facility> [<level>]",
                )),
            }
            i += 1;
        }
        if let Some(tag) = &self.log_tag {
            table.push(("tag".into(), Val::str(tag.clone())));
        }
        let value = if table.len() == 1 {
            table.remove(0).1
        } else {
            Val::Table(table)
        };
        self.entries.push(Entry {
            key: vec!["log".into()],
            value,
            push: true,
            origin: line.origin.clone(),
            note: None,
        });
    }

    fn stats_socket(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let path = line.word(2);
        if !path.starts_with('/') && !path.starts_with("unix@") {
            problems.push(line.problem(
                format!("percore's runtime API listens on unix sockets, not {path}"),
                "stats socket /run/percore/admin.sock level admin",
            ));
            return;
        }
        let path = path.strip_prefix("unix@").unwrap_or(&path).to_string();
        let mut table = vec![("path".to_string(), Val::str(path))];
        let mut i = 3;
        while i < line.len() {
            match line.word(i).as_str() {
                "mode" => table.push(("mode".into(), Val::str(line.word(i + 1)))),
                "level" => table.push(("level".into(), Val::str(line.word(i + 1)))),
                // percore hands listeners over to any admin-level client.
                "expose-fd" => {}
                other => {
                    problems.push(line.problem(
                        format!("stats socket option `{other}` is not supported"),
                        "percore's sockets take mode and level",
                    ));
                    i -= 1;
                }
            }
            i += 2;
        }
        self.entries.push(Entry {
            key: vec!["stats-socket".into()],
            value: Val::Table(table),
            push: true,
            origin: line.origin.clone(),
            note: None,
        });
    }

    fn bind_options(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let mut i = 1;
        while i < line.len() {
            let w = line.word(i);
            match w.as_str() {
                "ssl-min-ver" => {
                    self.bind_min_ver = Some((line.word(i + 1), line.origin.clone()));
                    i += 1;
                }
                "ssl-max-ver" => {
                    self.bind_max_ver = Some((line.word(i + 1), line.origin.clone()));
                    i += 1;
                }
                // percore never speaks these versions.
                "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
                other => problems.push(line.problem(
                    format!("bind option `{other}` is not supported"),
                    "percore's TLS binds take ssl-min-ver, ssl-max-ver, ciphers, ciphersuites, alpn",
                )),
            }
            i += 1;
        }
    }

    /// The `[global]` table, with the implicit differences written out.
    pub fn table(&self) -> Table {
        let mut entries = self.entries.clone();
        let mut notes = Vec::new();
        if let Some((n, origin)) = &self.nbthread {
            if self.cpu_map.is_empty() {
                entries.push(Entry {
                    key: vec!["threads".into()],
                    value: Val::Int(*n),
                    push: false,
                    origin: origin.clone(),
                    note: None,
                });
            }
        }
        if let Some(origin) = &self.cpu_map_origin {
            let mut map = self.cpu_map.clone();
            map.sort();
            entries.push(Entry {
                key: vec!["threads".into()],
                value: Val::List(map.iter().map(|(_, c)| Val::Int(i64::from(*c))).collect()),
                push: false,
                origin: origin.clone(),
                note: Some("one pinned executor per CPU of cpu-map".into()),
            });
        }
        if !self.maxconn_set {
            notes.push(
                "HAProxy derives the global maxconn from the descriptor limit when it is not set; \
                 percore uses 4096"
                    .to_string(),
            );
        }
        if !self.hard_stop_set {
            notes.push(
                "without hard-stop-after HAProxy waits for connections forever at a soft stop; \
                 percore cuts them after 30s (set hard-stop-after to change it)"
                    .to_string(),
            );
        }
        Table {
            header: "[global]".into(),
            origin: self.origin.clone(),
            entries,
            notes,
        }
    }
}

const FACILITY: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// `1-4`, `0,2`, `3` → the numbers.
fn ranges(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u32>().ok()?..=b.parse::<u32>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// A `userlist` section → `[[userlist]]`.
pub fn userlist(section: &Section, problems: &mut Vec<Problem>) -> Table {
    let mut entries = vec![Entry {
        key: vec!["name".into()],
        value: Val::str(section.head.word(1)),
        push: false,
        origin: section.head.origin.clone(),
        note: None,
    }];
    for line in &section.body {
        match line.word(0).as_str() {
            "user" if matches!(line.word(2).as_str(), "password" | "insecure-password") => {
                if line.len() > 4 {
                    problems.push(line.problem(
                        "user groups are not supported",
                        "percore has no http_auth_group; list the users allowed in their own userlist",
                    ));
                }
                entries.push(Entry {
                    key: vec!["users".into()],
                    value: Val::Table(vec![
                        ("name".into(), Val::str(line.word(1))),
                        (line.word(2), Val::str(line.word(3))),
                    ]),
                    push: true,
                    origin: line.origin.clone(),
                    note: None,
                });
            }
            "group" => problems.push(line.problem(
                "user groups are not supported",
                "percore has no http_auth_group; list the users allowed in their own userlist",
            )),
            _ => problems.push(line.problem(
                "not a userlist line percore knows",
                "user <name> password <hash> | insecure-password <text>",
            )),
        }
    }
    Table {
        header: "[[userlist]]".into(),
        origin: Some(section.head.origin.clone()),
        entries,
        notes: Vec::new(),
    }
}
