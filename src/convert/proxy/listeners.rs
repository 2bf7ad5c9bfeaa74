//! `bind` lines: addresses and TLS options.

use super::keywords::*;
use super::servers::based;
use super::*;
use crate::convert::lexer::Line;
use crate::convert::{Entry, Problem, Val};

/// A bind option given twice: the later one counts, as HAProxy applies
/// them in order (a TOML table cannot hold a key twice: found by fuzzing
/// `convert`, `bind :443 ssl crt a.pem ssl` wrote `ssl = true` twice).
fn set(opts: &mut Vec<(String, Val)>, key: &str, value: Val) {
    match opts.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => opts.push((key.into(), value)),
    }
}

impl State<'_> {
    pub(super) fn bind(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let mut opts: Vec<(String, Val)> = Vec::new();
        let mut i = 2;
        while i < line.len() {
            let w = line.word(i);
            let value = line.word(i + 1);
            match w.as_str() {
                "ssl" => set(&mut opts, "ssl", Val::Bool(true)),
                "crt" if opts.iter().any(|(k, _)| k == "crt") => problems.push(line.problem(
                    "percore takes one crt per bind",
                    "put the certificates in one directory and name it in crt",
                )),
                "crt" => set(&mut opts, "crt", Val::str(based(&self.global.crt_base, value))),
                "alpn" => set(
                    &mut opts,
                    "alpn",
                    Val::List(value.split(',').map(Val::str).collect()),
                ),
                "ssl-min-ver" | "ssl-max-ver" | "ciphers" | "ciphersuites" | "verify" => {
                    set(&mut opts, &w, Val::str(value))
                }
                "ca-file" | "crl-file" => {
                    set(&mut opts, &w, Val::str(based(&self.global.ca_base, value)))
                }
                // percore binds [::] v6only always; IPv4 addresses ignore it.
                "v6only" => {}
                "accept-proxy" => set(&mut opts, "accept-proxy", Val::Bool(true)),
                // HTTP/2 with prior knowledge (h2c on a plain bind).
                "proto" if value == "h2" => set(&mut opts, "proto", Val::str("h2")),
                "proto" => problems.push(line.problem(
                    format!("bind proto `{value}` is not supported"),
                    "percore binds speak HTTP/1.1, or HTTP/2 with proto h2",
                )),
                "v4v6" => problems.push(line.problem(
                    "percore binds [::] v6only",
                    "add an IPv4 bind next to the IPv6 one",
                )),
                other => problems.push(line.problem(
                    format!("bind option `{other}` is not supported"),
                    "percore's binds take ssl, crt, alpn, ssl-min-ver, ssl-max-ver, ciphers, ciphersuites, verify, ca-file, crl-file, accept-proxy, proto",
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
}

/// In mode http, TLS binds: HAProxy 2.6 offers no ALPN unless told, percore
/// offers http/1.1 by default: written out as `alpn = []`. A list given
/// (`alpn h2,http/1.1`) is kept as it is: percore speaks HTTP/2 to clients
/// too.
pub(super) fn tls_alpn(entries: &mut [Entry], http: bool, _problems: &mut Vec<Problem>) {
    for e in entries.iter_mut().filter(|e| e.key == ["bind"]) {
        let Val::Table(t) = &mut e.value else {
            continue;
        };
        if !t.iter().any(|(k, v)| k == "ssl" && *v == Val::Bool(true)) || !http {
            continue;
        }
        match t.iter_mut().find(|(k, _)| k == "alpn") {
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
pub(super) fn bind_addr(addr: &str) -> Option<String> {
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
