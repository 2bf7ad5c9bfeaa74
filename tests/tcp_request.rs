//! `tcp-request` rules and SNI routing in mode tcp, against the real
//! binary: connection rules before any byte, `expect-proxy layer4`,
//! content inspection of the first bytes (left in place for the server),
//! and TLS passthrough routed by SNI to two `openssl s_server`s, checked
//! with `openssl s_client`.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn with_stats(config: &str) -> (String, SocketAddr) {
    let stats: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    (format!("{config}\n[stats]\nbind = \"{stats}\"\n"), stats)
}

/// percore closed `c` without sending anything.
fn assert_closed(c: &mut TcpStream) {
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn connection_rules_run_before_any_byte() {
    let echo = Backend::echo();
    let (config, stats) = with_stats(
        &tcp_config("", &servers(&[echo.addr])).replace(
            "default_backend = \"be\"",
            "default_backend = \"be\"\ntcp-request = [\"connection reject if { src 127.0.0.0/8 } !{ dst_port 1 }\"]",
        ),
    );
    let proxy = Proxy::start(&config);
    let mut c = connect(proxy.addr());
    assert_closed(&mut c);
    assert_eq!(echo.accepted(), 0);
    stats_when(stats, |v| v["frontends"][0]["denied_connections"] == 1);

    // accept stops the evaluation: the reject after it is not reached.
    let proxy = Proxy::start(&tcp_config("", &servers(&[echo.addr])).replace(
        "default_backend = \"be\"",
        "default_backend = \"be\"\ntcp-request = [\"connection accept if { src 127.0.0.1 }\", \"connection reject\"]",
    ));
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"hi"), b"hi");
}

#[test]
fn expect_proxy_layer4_for_chosen_sources() {
    let backend = HttpBackend::ok();
    let get = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    for (cond, header) in [
        ("if { src 127.0.0.1 }", true),
        ("unless { src 127.0.0.1 }", false),
    ] {
        let proxy = Proxy::start(&http_config(
            &format!(
                "forwardfor = true\ntcp-request = [\"connection expect-proxy layer4 {cond}\"]"
            ),
            &servers(&[backend.addr]),
        ));
        let mut c = connect(proxy.addr());
        if header {
            c.write_all(b"PROXY TCP4 192.0.2.1 198.51.100.7 1234 443\r\n")
                .unwrap();
        }
        c.write_all(get).unwrap();
        let (got, _) = read_to_end_or_error(&mut c);
        assert!(got.starts_with(b"HTTP/1.1 200"), "{cond}");
    }
    let seen = backend.received();
    assert_eq!(seen[0].header("x-forwarded-for"), Some("192.0.2.1"));
    assert_eq!(seen[1].header("x-forwarded-for"), Some("127.0.0.1"));
}

/// A ClientHello record naming `sni`, as a client sends it.
fn client_hello(sni: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    entry.extend_from_slice(sni.as_bytes());
    let mut list = (entry.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&entry);
    let mut exts = 0u16.to_be_bytes().to_vec();
    exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
    exts.extend_from_slice(&list);
    let mut hello = vec![3, 3];
    hello.extend_from_slice(&[7u8; 32]);
    hello.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    hello.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&hello);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

const TLS_ONLY: &str = r#"tcp-request = [
  "inspect-delay 30s",
  "content accept if { req.ssl_hello_type 1 }",
  "content reject if { req.payload(0,4) -m str EVIL }",
  "content accept if { req.payload(0,5) -m str hello }",
  "content reject if { req.len lt 5 }",
]"#;

#[test]
fn content_rules_wait_for_the_hello_and_leave_it_in_place() {
    let echo = Backend::echo();
    let (config, stats) = with_stats(&tcp_config("", &servers(&[echo.addr])).replace(
        "default_backend = \"be\"",
        &format!("default_backend = \"be\"\n{TLS_ONLY}"),
    ));
    let proxy = Proxy::start(&config);

    // A hello in three pieces: percore waits for all of it, then the
    // server gets every byte, untouched.
    let hello = client_hello("a.example");
    let mut c = connect(proxy.addr());
    for piece in [&hello[..3], &hello[3..20]] {
        c.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(echo.accepted(), 0, "routed before the hello was whole");
    }
    c.write_all(&hello[20..]).unwrap();
    let mut back = vec![0u8; hello.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, hello);
    assert_eq!(echo.accepted(), 1);

    // Plain text is decided at once by the payload and length rules.
    let mut c = connect(proxy.addr());
    c.write_all(b"EVIL stuff").unwrap();
    assert_closed(&mut c);
    // Decided by the payload rule as well.
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"hello"), b"hello");
    let v = stats_when(stats, |v| v["frontends"][0]["denied_sessions"] == 1);
    assert_eq!(v["frontends"][0]["denied_connections"], 0);
    assert_eq!(echo.accepted(), 2);
}

#[test]
fn inspect_delay_bounds_the_wait() {
    let echo = Backend::echo();
    let (config, stats) = with_stats(&tcp_config("", &servers(&[echo.addr])).replace(
        "default_backend = \"be\"",
        &format!(
            "default_backend = \"be\"\n{}",
            TLS_ONLY.replace("30s", "300ms") + "\n"
        ),
    ));
    let proxy = Proxy::start(&config);
    // Two bytes of a hello, then silence: the delay runs out, and with
    // the rules evaluated on what is there, `req.len lt 5` rejects.
    let mut c = connect(proxy.addr());
    c.write_all(&[0x16, 0x03]).unwrap();
    assert_closed(&mut c);
    stats_when(stats, |v| v["frontends"][0]["denied_sessions"] == 1);
    assert_eq!(echo.accepted(), 0);
}

// ------------------------------------------------- SNI routing, openssl

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` with a self-signed certificate for `name`.
fn tls_server(dir: &std::path::Path, name: &str) -> (Killed, SocketAddr) {
    let (cert, key) = pki::self_signed(&[name]);
    let (cert_path, key_path) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert_path)
        .arg("-key")
        .arg(&key_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), addr)
}

/// The subject of the certificate `openssl s_client -servername` got.
fn subject_through(proxy: SocketAddr, servername: &str) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(proxy.to_string())
        .args(["-servername", servername])
        .stdin(Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| {
            panic!(
                "no certificate:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string()
}

#[test]
fn tls_passthrough_is_routed_by_sni() {
    let dir = tempfile::tempdir().unwrap();
    let (_a, a) = tls_server(dir.path(), "a.example");
    let (_b, b) = tls_server(dir.path(), "b.example");
    let proxy = Proxy::start(&format!(
        r#"
[global]
threads = 1

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "tls-in"
bind = ["127.0.0.1:{{port}}"]
tcp-request = [
  "inspect-delay 5s",
  "content accept if {{ req.ssl_hello_type 1 }}",
  "content reject",
]
use_backend = [
  "site-a if {{ req.ssl_sni -i a.example }}",
  "site-b if {{ req.ssl_sni -i b.example }}",
]

[[backend]]
name = "site-a"
servers = [{{ name = "a", addr = "{a}" }}]

[[backend]]
name = "site-b"
servers = [{{ name = "b", addr = "{b}" }}]
"#
    ));
    // The certificate each s_client sees is the one of the server its
    // SNI names: the TLS session is the server's, end to end.
    assert!(subject_through(proxy.addr(), "a.example").contains("CN = a.example"));
    assert!(subject_through(proxy.addr(), "B.EXAMPLE").contains("CN = b.example"));
    assert!(subject_through(proxy.addr(), "a.example").contains("CN = a.example"));
    // No matching SNI and no default_backend: closed, no certificate.
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(proxy.addr().to_string())
        .args(["-servername", "c.example"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("subject="));
}
