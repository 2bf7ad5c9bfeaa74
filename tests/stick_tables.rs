//! Stick tables against the real binary on two cores: rate limits by
//! client address and by API key that stay exact however the kernel
//! spreads connections over the cores (each key is counted by one owner
//! core), connection-level tracking from `tcp-request`, gpc0/gpt0, the
//! size bound and expiry, and the runtime API's `show table`, `clear
//! table`, `set table`.

mod common;

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use common::http_backend::{read_response, HttpBackend};
use common::{socat, Proxy};

/// percore on two cores with an admin socket, `fe` holding `fe_extra`.
fn start(fe_extra: &str, extra_sections: &str) -> (Proxy, PathBuf, HttpBackend, tempfile::TempDir) {
    let backend = HttpBackend::ok();
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let config = format!(
        r#"
[global]
threads = 2
maxconn = 5000
stats-socket = [{{ path = "{admin}", level = "admin" }}]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
{fe_extra}

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{addr}" }}]
{extra_sections}
"#,
        admin = admin.display(),
        addr = backend.addr,
    );
    let proxy = Proxy::start(&config);
    (proxy, admin, backend, dir)
}

/// One request on a new connection; the status.
fn get(proxy: &Proxy, headers: &str) -> u16 {
    let mut c = TcpStream::connect(proxy.addr()).unwrap();
    write!(
        c,
        "GET / HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut rd = BufReader::new(c);
    read_response(&mut rd, false).map_or(0, |(status, _, _)| status)
}

/// Cores whose sessions `show sess` lists (a session id is core << 48 | n).
fn cores_with_sessions(admin: &PathBuf) -> HashSet<u64> {
    socat(admin, "show sess")
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter_map(|id| u64::from_str_radix(id.trim_start_matches("0x"), 16).ok())
        .map(|id| id >> 48)
        .collect()
}

/// Opens connections until both cores hold some (the kernel spreads
/// them by hash of the addresses), and returns them still open.
fn connections_on_both_cores(proxy: &Proxy, admin: &PathBuf) -> Vec<TcpStream> {
    let mut open = Vec::new();
    for _ in 0..20 {
        for _ in 0..8 {
            open.push(TcpStream::connect(proxy.addr()).unwrap());
        }
        if cores_with_sessions(admin).len() == 2 {
            return open;
        }
    }
    panic!("160 connections all landed on one core");
}

const RATE_LIMIT: &str = r#"stick-table = "type ip size 100k expire 60s store http_req_rate(60s)"
http-request = [
  "track-sc0 src",
  "deny deny_status 429 if { sc_http_req_rate(0) gt 10 }",
]"#;

#[test]
fn rate_limit_by_source_is_exact_across_cores() {
    let (proxy, admin, backend, _dir) = start(RATE_LIMIT, "");
    // Both cores accept this client's connections.
    let held = connections_on_both_cores(&proxy, &admin);
    drop(held);
    let statuses: Vec<u16> = (0..40).map(|_| get(&proxy, "")).collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // Rate over 60 s, the first 10 admitted, not 10 per core.
    assert_eq!((ok, limited), (10, 30), "{statuses:?}");
    assert_eq!(backend.received().len(), 10);
    let table = socat(&admin, "show table fe");
    assert!(
        table.starts_with("# table: fe, type: ip, size:102400, used:1\n"),
        "{table}"
    );
    assert!(table.contains("key=127.0.0.1 use=0 exp="), "{table}");
    assert!(table.contains("http_req_rate(60000)=40"), "{table}");
}
