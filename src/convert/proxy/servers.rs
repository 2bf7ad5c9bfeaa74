//! `server` and `default-server` lines.

use super::keywords::*;
use super::*;
use crate::convert::lexer::Line;
use crate::convert::{Problem, Val};

impl State<'_> {
    /// Reads server options from word `from` on.
    pub(super) fn server_options(
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
                ("send-proxy" | "send-proxy-v2" | "check-send-proxy", None) => {
                    set(w.as_str(), Val::Bool(true))
                }
                ("no-send-proxy", None) => set("send-proxy", Val::Bool(false)),
                ("no-send-proxy-v2", None) => set("send-proxy-v2", Val::Bool(false)),
                ("send-proxy-v2-ssl" | "send-proxy-v2-ssl-cn", None) => {
                    problems.push(line.problem(
                        format!("{w}: percore's v2 header carries no SSL TLVs"),
                        "send-proxy-v2 sends the header without them",
                    ))
                }
                // The multiplexer HAProxy speaks to the server.
                ("proto", None) if value == "h2" || value == "h1" => {
                    set("proto", Val::str(value.clone()))
                }
                ("proto", None) => problems.push(line.problem(
                    format!("proto {value}: percore speaks HTTP/1.1 or HTTP/2 to servers"),
                    "proto h2, or no proto for HTTP/1.1",
                )),
                ("alpn", None) => {
                    if let Some(problem) = server_alpn(&value, &mut set) {
                        problems.push(line.problem(format!("alpn {value}: {problem}"), ALPN_HINT));
                    }
                }
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

    pub(super) fn server(&mut self, line: &Line, problems: &mut Vec<Problem>) {
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
}

const ALPN_HINT: &str =
    "proto h2 if the server speaks HTTP/2 (percore offers h2 by ALPN over ssl); \
     left as HTTP/1.1";

/// A server's `alpn` list: `h2` alone becomes `proto = "h2"` (percore
/// offers h2 by ALPN over `ssl`); HTTP/1.1 alone is percore's default;
/// a choice between the two is HAProxy's, decided per connection by the
/// server, which percore does not do: the problem is returned.
fn server_alpn(list: &str, set: &mut impl FnMut(&str, Val)) -> Option<&'static str> {
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    let h1 = |n: &&str| matches!(*n, "http/1.1" | "http/1.0");
    match names.as_slice() {
        ["h2"] => {
            set("proto", Val::str("h2"));
            None
        }
        all if all.iter().all(h1) => None,
        all if all.contains(&"h2") && all.iter().all(|n| *n == "h2" || h1(n)) => {
            Some("percore does not let the server choose between h2 and HTTP/1.1")
        }
        _ => Some("percore speaks HTTP/1.1 or HTTP/2 to servers"),
    }
}

/// `base/file` for a relative `file` when a `*-base` is set.
pub(super) fn based(base: &Option<String>, file: String) -> String {
    match base {
        Some(b) if !file.starts_with('/') => format!("{}/{file}", b.trim_end_matches('/')),
        _ => file,
    }
}

/// A server address percore reads: `ip:port`, `[v6]:port`, `host:port`.
pub(super) fn server_addr(addr: &str) -> Option<String> {
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
