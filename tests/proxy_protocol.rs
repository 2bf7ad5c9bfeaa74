//! PROXY protocol on `accept-proxy` binds, against the real binary: the
//! carried address is the client's everywhere (rules, X-Forwarded-For,
//! logs), and every hostile header shape is closed, counted, logged and
//! kept from the servers.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

fn v2(ver_cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.push(ver_cmd);
    h.push(family);
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

/// 192.0.2.1:1234 -> 198.51.100.7:443, then `tlvs`.
fn tcp4_body(tlvs: &[u8]) -> Vec<u8> {
    let mut b = vec![192, 0, 2, 1, 198, 51, 100, 7];
    b.extend_from_slice(&1234u16.to_be_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    b.extend_from_slice(tlvs);
    b
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&(value.len() as u16).to_be_bytes());
    t.extend_from_slice(value);
    t
}

fn toml_path(p: &Path) -> String {
    p.display().to_string()
}

/// percore with one accept-proxy bind, logging to a file, with a stats
/// listener; `mode`, backend body and client timeout as given.
struct Edge {
    proxy: Proxy,
    log: PathBuf,
    stats: SocketAddr,
    _logdir: tempfile::TempDir,
}

fn edge(mode: &str, backend: &str, frontend_extra: &str, client_timeout: &str) -> Edge {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("access.log");
    let stats: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"
[global]
threads = 1
maxconn = 100
log = [{{ target = "file:{log}" }}]

[defaults]
mode = "{mode}"
timeout = {{ connect = "2s", client = "{client_timeout}", server = "5m" }}

[[frontend]]
name = "edge"
bind = [{{ addr = "127.0.0.1:{{port}}", accept-proxy = true }}]
default_backend = "be"
log = true
{frontend_extra}

[[backend]]
name = "be"
{backend}

[stats]
bind = "{stats}"
"#,
        log = toml_path(&log),
    );
    Edge {
        proxy: Proxy::start(&config),
        log,
        stats,
        _logdir: logdir,
    }
}

// ------------------------------------------------------------ addresses

#[test]
fn carried_address_is_the_client_in_rules_forwardfor_and_logs() {
    let backend = HttpBackend::ok();
    let e = edge(
        "http",
        &servers(&[backend.addr]),
        r#"forwardfor = true
http-request = [
  "set-header X-Src %[src]:%[src_port]",
  "set-header X-Dst %[dst]:%[dst_port]",
  "set-header X-Authority %[fc_pp_authority]",
  "set-header X-Unique %[fc_pp_unique_id]",
  "deny if { src 203.0.113.0/24 }",
]"#,
        "5m",
    );
    let get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    // v1
    let mut c = connect(e.proxy.addr());
    c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n")
        .unwrap();
    c.write_all(get).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // v2 with TLVs, header and request in one segment.
    let tlvs = [tlv(0x02, b"a.example"), tlv(0x05, b"id-42")].concat();
    let mut first = v2(0x21, 0x11, &tcp4_body(&tlvs));
    first.extend_from_slice(get);
    let mut c = connect(e.proxy.addr());
    c.write_all(&first).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(got.starts_with(b"HTTP/1.1 200"));

    // v2 LOCAL (the balancer's own check): the real address is used.
    let mut c = connect(e.proxy.addr());
    c.write_all(&v2(0x20, 0x11, &tcp4_body(&[]))).unwrap();
    c.write_all(get).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(got.starts_with(b"HTTP/1.1 200"));

    // v1 TCP6, and a client the rules deny by its carried address.
    let mut c = connect(e.proxy.addr());
    c.write_all(b"PROXY TCP6 2001:db8::7 2001:db8::1 5000 80\r\n")
        .unwrap();
    c.write_all(get).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let mut c = connect(e.proxy.addr());
    c.write_all(b"PROXY TCP4 203.0.113.9 198.51.100.7 1 80\r\n")
        .unwrap();
    c.write_all(get).unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(got.starts_with(b"HTTP/1.1 403"));

    let seen = backend.received();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let h = |i: usize, n: &str| seen[i].header(n).unwrap_or("").to_string();
    assert_eq!(h(0, "x-forwarded-for"), "192.0.2.1");
    assert_eq!(h(0, "x-src"), "192.0.2.1:1234");
    assert_eq!(h(0, "x-dst"), "198.51.100.7:443");
    assert_eq!(h(0, "x-authority"), "");
    assert_eq!(h(1, "x-src"), "192.0.2.1:1234");
    assert_eq!(h(1, "x-authority"), "a.example");
    assert_eq!(h(1, "x-unique"), "id-42");
    assert_eq!(h(2, "x-forwarded-for"), "127.0.0.1");
    assert_eq!(h(3, "x-forwarded-for"), "2001:db8::7");
    assert_eq!(h(3, "x-dst"), "2001:db8::1:80");

    let lines = wait_for_lines(&e.log, 5);
    assert!(lines[0].starts_with("192.0.2.1:1234 ["), "{lines:?}");
    assert!(lines[2].starts_with("127.0.0.1:"), "{lines:?}");
    assert!(lines[3].starts_with("2001:db8::7:5000 ["), "{lines:?}");
    assert!(lines[4].starts_with("203.0.113.9:1 ["), "{lines:?}");
}

#[test]
fn balance_source_hashes_the_carried_address() {
    // Two servers that say who they are; `balance source` must send the
    // same carried client to the same one, and different carried
    // clients (all from 127.0.0.1 really) to both.
    let a = Backend::start(|mut s| {
        let _ = s.write_all(b"A");
    });
    let b = Backend::start(|mut s| {
        let _ = s.write_all(b"B");
    });
    let e = edge(
        "tcp",
        &format!("balance = \"source\"\n{}", servers(&[a.addr, b.addr])),
        "",
        "5m",
    );
    let ask = |ip: &str| {
        let mut c = connect(e.proxy.addr());
        c.write_all(format!("PROXY TCP4 {ip} 10.0.0.1 1000 80\r\n").as_bytes())
            .unwrap();
        let (got, _) = read_to_end_or_error(&mut c);
        got
    };
    let mut by_client = Vec::new();
    for i in 1..=16 {
        let ip = format!("10.1.{i}.{i}");
        let first = ask(&ip);
        assert_eq!(ask(&ip), first, "{ip} moved");
        by_client.push(first);
    }
    assert!(by_client.contains(&b"A".to_vec()) && by_client.contains(&b"B".to_vec()));
}

// ------------------------------------------------------- hostile input

/// Sends what `send` writes to an accept-proxy bind in front of an echo
/// server, and checks that percore closes the connection, that the
/// server never sees it, and that it is counted and logged with
/// `reason`.
fn refused(send: impl FnOnce(&mut TcpStream), reason: &str) {
    let echo = Backend::echo();
    let e = edge("tcp", &servers(&[echo.addr]), "", "2s");
    let mut c = connect(e.proxy.addr());
    send(&mut c);
    c.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}"),
    }
    stats_when(e.stats, |v| v["frontends"][0]["proxy_errors"] == 1);
    let lines = wait_for_lines(&e.log, 1);
    let want = format!(
        " edge/127.0.0.1:{}: PROXY protocol error (",
        e.proxy.addr().port()
    );
    assert!(
        lines[0].contains(&want) && lines[0].contains(reason),
        "{lines:?}"
    );
    assert!(lines[0].starts_with("127.0.0.1:"), "{lines:?}");
    assert_eq!(echo.accepted(), 0, "a refused header reached a server");
    let csv = plain_get(e.stats, "/stats;csv").1;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "proxy_errors");
    assert!(col.is_none(), "percore's own counters stay out of the CSV");
}

#[test]
fn missing_header_is_refused() {
    refused(
        |c| c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap(),
        "does not look like a PROXY protocol header",
    );
}

#[test]
fn truncated_header_is_refused() {
    refused(
        |c| {
            c.write_all(b"PROXY TCP4 192.0.2.1 198.5").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        },
        "truncated",
    );
}

#[test]
fn v1_line_over_107_bytes_is_refused() {
    refused(
        |c| {
            let mut line = b"PROXY UNKNOWN ".to_vec();
            line.resize(300, b'x');
            line.extend_from_slice(b"\r\n");
            c.write_all(&line).unwrap();
        },
        "longer than 107 bytes",
    );
}

#[test]
fn v2_length_beyond_what_was_sent_is_refused() {
    refused(
        |c| {
            let mut h = v2(0x21, 0x11, &tcp4_body(&[0u8; 88]));
            h.truncate(40);
            c.write_all(&h).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        },
        "truncated",
    );
}

#[test]
fn v2_length_over_64k_is_refused() {
    refused(
        |c| {
            let mut h = SIG.to_vec();
            h.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
            h.extend_from_slice(&tcp4_body(&[]));
            c.write_all(&h).unwrap();
        },
        "PROXY v2 header of 65551 bytes is over the 16384-byte limit",
    );
}

#[test]
fn v2_tlv_overflowing_the_header_is_refused() {
    refused(
        |c| {
            // The TLV says 200 bytes; the header holds 5 after it.
            let mut body = tcp4_body(&[0x02, 0x00, 200]);
            body.extend_from_slice(b"short");
            c.write_all(&v2(0x21, 0x11, &body)).unwrap();
        },
        "TLV overflows the header",
    );
}

#[test]
fn v2_unknown_family_is_refused() {
    refused(
        |c| c.write_all(&v2(0x21, 0x41, &tcp4_body(&[]))).unwrap(),
        "address family 0x41",
    );
}

#[test]
fn v2_unknown_command_is_refused() {
    refused(
        |c| c.write_all(&v2(0x2e, 0x11, &tcp4_body(&[]))).unwrap(),
        "command 0xe",
    );
}

#[test]
fn header_trickling_slower_than_timeout_client_is_refused() {
    // One byte at a time, each after a pause: `timeout client` bounds the
    // whole header, not each read. The header is 44 bytes; the client
    // stops as soon as percore has closed.
    refused(
        |c| {
            c.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let line = b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n";
            let mut buf = [0u8; 8];
            for (i, byte) in line.iter().enumerate() {
                assert!(i < line.len() - 1, "percore waited for the whole header");
                if c.write_all(&[*byte]).is_err() {
                    break;
                }
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => panic!("unexpected {n} bytes"),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
        },
        "timeout while waiting for the PROXY protocol header",
    );
}

#[test]
fn closing_before_any_byte_is_not_an_error() {
    let echo = Backend::echo();
    let e = edge("tcp", &servers(&[echo.addr]), "", "2s");
    drop(connect(e.proxy.addr()));
    // A valid connection after it: the only line logged, nothing counted.
    let mut c = connect(e.proxy.addr());
    c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\nping")
        .unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    drop(c);
    let lines = wait_for_lines(&e.log, 1);
    assert!(lines[0].starts_with("192.0.2.1:1234 ["), "{lines:?}");
    let v = stats_json(e.stats);
    assert_eq!(v["frontends"][0]["proxy_errors"], 0);
}
