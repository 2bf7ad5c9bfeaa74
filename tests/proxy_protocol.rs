//! PROXY protocol on `accept-proxy` binds, against the real binary: the
//! carried address is the client's everywhere (rules, X-Forwarded-For,
//! logs), and every hostile header shape is closed, counted, logged and
//! kept from the servers.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
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
    log: LogFile,
    stats: SocketAddr,
}

fn edge(mode: &str, backend: &str, frontend_extra: &str, client_timeout: &str) -> Edge {
    let stats: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"
[global]
threads = 1
maxconn = 100

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
    );
    let (proxy, log) = Proxy::start_logging(&config);
    Edge { proxy, log, stats }
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

    let lines = e.log.wait_for_lines(5);
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
    let lines = e.log.wait_for_lines(1);
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
    // Its header comes after a pause, so percore finds the socket empty
    // first and has to wait for it.
    let mut c = connect(e.proxy.addr());
    std::thread::sleep(Duration::from_millis(100));
    c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\nping")
        .unwrap();
    let mut got = [0u8; 4];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    drop(c);
    let lines = e.log.wait_for_lines(1);
    assert!(lines[0].starts_with("192.0.2.1:1234 ["), "{lines:?}");
    let v = stats_json(e.stats);
    assert_eq!(v["frontends"][0]["proxy_errors"], 0);
}

// ------------------------------------------------------------- sending

/// The PROXY header a server connection starts with, decoded by the test
/// itself: the v1 line without its CRLF, `v2 LOCAL`, or
/// `v2 TCP4 <src> <dst> <sport> <dport>`; anything else: the first
/// bytes, as text, prefixed with `raw `.
fn read_pp(s: &mut TcpStream) -> String {
    let mut first = [0u8; 1];
    if s.read_exact(&mut first).is_err() {
        return "closed".into();
    }
    match first[0] {
        b'P' => {
            let mut line = vec![b'P'];
            while !line.ends_with(b"\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                line.push(b[0]);
                assert!(line.len() <= 107, "v1 line too long");
            }
            String::from_utf8(line[..line.len() - 2].to_vec()).unwrap()
        }
        b'\r' => {
            let mut fixed = [0u8; 15];
            s.read_exact(&mut fixed).unwrap();
            assert_eq!(&fixed[..11], &SIG[1..]);
            let len = u16::from_be_bytes([fixed[13], fixed[14]]) as usize;
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).unwrap();
            match (fixed[11], fixed[12]) {
                (0x20, _) => "v2 LOCAL".into(),
                (0x21, 0x11) => format!(
                    "v2 TCP4 {}.{}.{}.{} {}.{}.{}.{} {} {}",
                    body[0],
                    body[1],
                    body[2],
                    body[3],
                    body[4],
                    body[5],
                    body[6],
                    body[7],
                    u16::from_be_bytes([body[8], body[9]]),
                    u16::from_be_bytes([body[10], body[11]])
                ),
                other => format!("v2 {other:?}"),
            }
        }
        b => {
            let mut rest = [0u8; 3];
            let n = s.read(&mut rest).unwrap_or(0);
            let mut bytes = vec![b];
            bytes.extend_from_slice(&rest[..n]);
            format!("raw {}", String::from_utf8_lossy(&bytes))
        }
    }
}

/// A server that decodes the header each connection starts with, keeps
/// it, answers it, then echoes.
fn recording_server() -> (Backend, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&seen);
    let backend = Backend::start(move |mut s| {
        let header = read_pp(&mut s);
        keep.lock().unwrap().push(header.clone());
        if s.write_all(format!("{header}\n").as_bytes()).is_err() {
            return;
        }
        let mut buf = [0u8; 1024];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || s.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    (backend, seen)
}

fn first_line(c: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while c.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn tcp_send_proxy_v1_and_v2_carry_the_client() {
    for (key, want) in [
        ("send-proxy", "PROXY TCP4 192.0.2.1 198.51.100.7 1234 443"),
        ("send-proxy-v2", "v2 TCP4 192.0.2.1 198.51.100.7 1234 443"),
    ] {
        let (server, _) = recording_server();
        let e = edge(
            "tcp",
            &format!(
                "servers = [{{ name = \"s1\", addr = \"{}\", {key} = true }}]",
                server.addr
            ),
            "",
            "5m",
        );
        let mut c = connect(e.proxy.addr());
        c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n")
            .unwrap();
        assert_eq!(first_line(&mut c), want);
        // The client's bytes follow the header untouched.
        assert_eq!(roundtrip(&mut c, b"ping"), b"ping");
    }
    // Without accept-proxy: the socket's own addresses.
    let (server, _) = recording_server();
    let proxy = Proxy::start(&tcp_config(
        "",
        &format!(
            "servers = [{{ name = \"s1\", addr = \"{}\", send-proxy = true }}]",
            server.addr
        ),
    ));
    let mut c = connect(proxy.addr());
    let me = c.local_addr().unwrap().port();
    assert_eq!(
        first_line(&mut c),
        format!("PROXY TCP4 127.0.0.1 127.0.0.1 {me} {}", proxy.port)
    );
}

#[test]
fn default_server_send_proxy_is_inherited_and_overridden() {
    let (with, seen_with) = recording_server();
    let (without, seen_without) = recording_server();
    let proxy = Proxy::start(&tcp_config(
        "",
        &format!(
            r#"balance = "roundrobin"
default-server = {{ send-proxy-v2 = true }}
servers = [
  {{ name = "s1", addr = "{}" }},
  {{ name = "s2", addr = "{}", send-proxy-v2 = false }},
]"#,
            with.addr, without.addr
        ),
    ));
    for _ in 0..2 {
        let mut c = connect(proxy.addr());
        c.write_all(b"ping").unwrap();
        first_line(&mut c);
    }
    assert!(seen_with.lock().unwrap()[0].starts_with("v2 TCP4 127.0.0.1 "));
    assert_eq!(seen_without.lock().unwrap()[0], "raw ping");
}

#[test]
fn health_checks_send_unknown_or_local() {
    let (v1_forced, seen_v1) = recording_server();
    let (v2_traffic, seen_v2) = recording_server();
    let (plain, seen_plain) = recording_server();
    let _proxy = Proxy::start(&tcp_config(
        "",
        &format!(
            r#"default-server = {{ check = true, inter = "100ms" }}
servers = [
  {{ name = "forced", addr = "{}", check-send-proxy = true }},
  {{ name = "traffic", addr = "{}", send-proxy-v2 = true }},
  {{ name = "plain", addr = "{}" }},
]"#,
            v1_forced.addr, v2_traffic.addr, plain.addr
        ),
    ));
    wait_until("checks seen by the three servers", || {
        !seen_v1.lock().unwrap().is_empty()
            && !seen_v2.lock().unwrap().is_empty()
            && plain.accepted() > 0
    });
    assert_eq!(seen_v1.lock().unwrap()[0], "PROXY UNKNOWN");
    assert_eq!(seen_v2.lock().unwrap()[0], "v2 LOCAL");
    // A connect-only check sends nothing on a plain server.
    assert!(seen_plain.lock().unwrap().iter().all(|h| h == "closed"));
}

/// An HTTP server behind `send-proxy-v2`: each connection's header is
/// kept; every response body is that header; `closed` counts the
/// connections percore closed.
fn http_recording_server() -> (
    Backend,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::BufRead;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (keep, ends) = (std::sync::Arc::clone(&seen), std::sync::Arc::clone(&closed));
    let backend = Backend::start(move |mut s| {
        let header = read_pp(&mut s);
        keep.lock().unwrap().push(header.clone());
        let mut rd = std::io::BufReader::new(s.try_clone().unwrap());
        loop {
            let mut line = String::new();
            // One request head (no bodies in this test).
            let mut eof = false;
            loop {
                line.clear();
                match rd.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        eof = true;
                        break;
                    }
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            if eof {
                ends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{header}",
                header.len()
            );
            if s.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    (backend, seen, closed)
}

fn get_body(c: &mut TcpStream) -> String {
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rd = std::io::BufReader::new(c.try_clone().unwrap());
    let (status, _, body) = read_response(&mut rd, false).expect("a response");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

#[test]
fn http_server_connections_with_a_proxy_header_are_private() {
    let (server, seen, closed) = http_recording_server();
    let proxy = Proxy::start(&http_config(
        "",
        &format!(
            "http-reuse = \"always\"\nservers = [{{ name = \"s1\", addr = \"{}\", send-proxy-v2 = true }}]",
            server.addr
        ),
    ));
    let expect = |c: &TcpStream| {
        format!(
            "v2 TCP4 127.0.0.1 127.0.0.1 {} {}",
            c.local_addr().unwrap().port(),
            proxy.port
        )
    };
    // Client A: two requests, one server connection that speaks for A.
    let mut a = connect(proxy.addr());
    assert_eq!(get_body(&mut a), expect(&a));
    assert_eq!(get_body(&mut a), expect(&a));
    assert_eq!(server.accepted(), 1);
    // A leaves: its server connection is closed with it, not pooled
    // (http-reuse always would hand a pooled one to the next client).
    drop(a);
    wait_until(
        "the private server connection closed with its client",
        || closed.load(std::sync::atomic::Ordering::SeqCst) > 0,
    );
    // Client B gets its own connection and header.
    let mut b = connect(proxy.addr());
    assert_eq!(get_body(&mut b), expect(&b));
    assert_eq!(server.accepted(), 2);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

// ------------------------------------------- interoperability, real peers

/// `curl --haproxy-protocol` (v1, its own addresses) to an accept-proxy
/// bind, plain and TLS (the header comes before the handshake).
#[test]
fn curl_haproxy_protocol_to_accept_proxy_binds() {
    let backend = HttpBackend::ok();
    let dir = tempfile::tempdir().unwrap();
    let bundle =
        common::pki::write_self_signed_bundle(&dir.path().join("site.pem"), &["localhost"]);
    let tls_port = free_port();
    let proxy = Proxy::start(&http_config(
        "",
        &servers(&[backend.addr]),
    )
    .replace(
        "bind = [\"127.0.0.1:{port}\"]",
        &format!(
            "bind = [{{ addr = \"127.0.0.1:{{port}}\", accept-proxy = true }}, \
             {{ addr = \"127.0.0.1:{tls_port}\", accept-proxy = true, ssl = true, crt = \"{}\" }}]\n\
             forwardfor = true\nhttp-request = [\"set-header X-Dst-Port %[dst_port]\", \"set-header X-Src-Port %[src_port]\"]",
            toml_path(&bundle)
        ),
    ));
    for url in [
        format!("http://127.0.0.1:{}/plain", proxy.port),
        format!("https://localhost:{tls_port}/tls"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-k", "--haproxy-protocol", "--resolve"])
            .arg(format!("localhost:{tls_port}:127.0.0.1"))
            .arg(&url)
            .output()
            .expect("curl is required (.ci/run installs it)");
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen = backend.received();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        seen[0].header("x-dst-port"),
        Some(proxy.port.to_string().as_str())
    );
    assert_eq!(
        seen[1].header("x-dst-port"),
        Some(tls_port.to_string().as_str())
    );
    assert_eq!(seen[1].target, "/tls");
    // Plain curl without the header is refused on such a bind.
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/", proxy.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "000");
    assert_eq!(backend.received().len(), 2);
}

/// HAProxy 2.6 (`send-proxy-v2`, with a unique-id TLV) in front of
/// percore's accept-proxy bind: the client HAProxy was told about is the
/// client percore's server sees.
#[test]
fn haproxy_send_proxy_v2_in_front_of_percore() {
    let backend = HttpBackend::ok();
    let proxy = Proxy::start(
        &http_config(
            "forwardfor = true\nhttp-request = [\"set-header X-Unique %[fc_pp_unique_id]\"]",
            &servers(&[backend.addr]),
        )
        .replace(
            "bind = [\"127.0.0.1:{port}\"]",
            "bind = [{ addr = \"127.0.0.1:{port}\", accept-proxy = true }]",
        ),
    );
    let Some(haproxy) = common::haproxy::start(&format!(
        "global\n  nbthread 1\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{{port}} accept-proxy\n  unique-id-format id-%[src]\n  default_backend be\n\
         backend be\n  server percore {} send-proxy-v2 proxy-v2-options unique-id\n",
        proxy.addr()
    )) else {
        eprintln!("haproxy not installed: interoperability skipped");
        return;
    };
    let mut c = connect(format!("127.0.0.1:{}", haproxy.port).parse().unwrap());
    c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n")
        .unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let seen = backend.received();
    assert_eq!(seen[0].header("x-forwarded-for"), Some("192.0.2.1"));
    assert_eq!(seen[0].header("x-unique"), Some("id-192.0.2.1"));
}

/// percore's `send-proxy` and `send-proxy-v2` in front of HAProxy 2.6's
/// `accept-proxy`: HAProxy's X-Forwarded-For names the client percore
/// was told about.
#[test]
fn percore_send_proxy_in_front_of_haproxy() {
    let backend = HttpBackend::ok();
    let Some(haproxy) = common::haproxy::start(&format!(
        "global\n  nbthread 1\n\
         defaults\n  mode http\n  option forwardfor\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{{port}} accept-proxy\n  default_backend be\n\
         backend be\n  server s1 {}\n",
        backend.addr
    )) else {
        eprintln!("haproxy not installed: interoperability skipped");
        return;
    };
    let target: SocketAddr = format!("127.0.0.1:{}", haproxy.port).parse().unwrap();
    for (i, key) in ["send-proxy", "send-proxy-v2"].iter().enumerate() {
        let e = edge(
            "tcp",
            &format!("servers = [{{ name = \"haproxy\", addr = \"{target}\", {key} = true }}]"),
            "",
            "5m",
        );
        let mut c = connect(e.proxy.addr());
        c.write_all(format!("PROXY TCP4 192.0.2.{} 198.51.100.7 1234 443\r\n", i + 1).as_bytes())
            .unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (got, _) = read_to_end_or_error(&mut c);
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{key}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    let seen = backend.received();
    assert_eq!(seen[0].header("x-forwarded-for"), Some("192.0.2.1"));
    assert_eq!(seen[1].header("x-forwarded-for"), Some("192.0.2.2"));
}

#[test]
fn bytes_after_the_header_reach_the_server_in_order() {
    // Header and 200 KB in one write: the bytes read with the header are
    // sent first, the rest follows, nothing lost or reordered (mode tcp,
    // with and without content inspection reading more of them).
    let echo = Backend::echo();
    for extra in [
        "",
        r#"tcp-request = ["inspect-delay 5s", "content accept if { req.len ge 3000 }"]"#,
    ] {
        let e = edge("tcp", &servers(&[echo.addr]), extra, "5m");
        let mut body = vec![0u8; 200_000];
        Pattern::new(3).fill(&mut body);
        let mut first = v2(0x21, 0x11, &tcp4_body(&[]));
        first.extend_from_slice(&body);
        let mut c = connect(e.proxy.addr());
        let writer = {
            let mut w = c.try_clone().unwrap();
            std::thread::spawn(move || w.write_all(&first).unwrap())
        };
        let mut back = vec![0u8; body.len()];
        c.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == body, "bytes differ ({extra})");
    }
}
