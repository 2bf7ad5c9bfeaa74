//! A proxy's tables once all its lines are read: the frontend and/or
//! backend, or `[stats]` for a proxy that only serves the stats page.

use super::listeners::tls_alpn;
use super::*;
use crate::convert::{Entry, Origin, Problem, Table, Val};

impl State<'_> {
    pub(super) fn side_items(&self, wanted: Side) -> Vec<Entry> {
        self.s
            .items
            .iter()
            .filter(|(side, _)| *side == wanted || *side == Side::Both)
            .map(|(_, e)| e.clone())
            .collect()
    }

    pub(super) fn last_str(entries: &[Entry], key: &str) -> Option<String> {
        entries
            .iter()
            .rev()
            .find(|e| e.key == [key])
            .and_then(|e| match &e.value {
                Val::Str(s) => Some(s.clone()),
                _ => None,
            })
    }

    pub(super) fn name_entry(&self) -> Entry {
        Entry {
            key: vec!["name".into()],
            value: Val::str(self.name.clone()),
            push: false,
            origin: self.head.origin.clone(),
            note: None,
        }
    }

    pub(super) fn finish(mut self, problems: &mut Vec<Problem>) -> Vec<Table> {
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
    pub(super) fn stats_table(&mut self, problems: &mut Vec<Problem>) -> Option<Table> {
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

pub(super) fn list_start(key: &str, items: Vec<Val>, origin: &Origin) -> Entry {
    Entry {
        key: vec![key.into()],
        value: Val::List(items),
        push: false,
        origin: origin.clone(),
        note: None,
    }
}
