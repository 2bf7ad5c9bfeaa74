//! `option` lines, `tcp-check`/`http-check` lines, `stats` lines.

use super::keywords::*;
use super::*;
use crate::convert::lexer::Line;
use crate::convert::words;
use crate::convert::{Problem, Val};

impl State<'_> {
    pub(super) fn option(&mut self, line: &Line, problems: &mut Vec<Problem>) {
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
            "http-buffer-request" => self.add(
                Side::Both,
                entry(&["http-buffer-request"], flag, line),
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

    pub(super) fn check_line(&mut self, line: &Line, kind: CheckKind, problems: &mut Vec<Problem>) {
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

    pub(super) fn stats(&mut self, line: &Line, problems: &mut Vec<Problem>) {
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
}

/// `option httpchk [<method>] <uri> [<version>]` as an `http-check send`
/// rule; a version may carry header lines (`HTTP/1.1\r\nHost:\ x`).
pub(super) fn httpchk_send(args: &[Vec<u8>]) -> Option<String> {
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
