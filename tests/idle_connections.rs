//! Client connections that wait for a request are held without a task
//! (`runtime::parking`) once they have been idle a moment: they must be
//! served when they speak again, keep their deadlines, stay visible to the
//! runtime API, and close at a soft stop. Real binary, real sockets; waits
//! are long enough for a connection to be parked (100 ms idle), and no
//! assertion depends on how long anything took.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

/// Longer than the 100 ms a connection waits in its task before it is
/// parked.
const IDLE: Duration = Duration::from_millis(400);

fn get() -> &'static [u8] {
    b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
}

fn config(timeouts: &str, stats_socket: &Path) -> String {
    format!(
        r#"
[global]
threads = 1
maxconn = 1000
hard-stop-after = "1m"
stats-socket = {{ path = "{sock}", level = "admin" }}

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "5m", server = "5m"{timeouts} }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
servers = [ {{ name = "s1", addr = "{{backend}}" }} ]
"#,
        sock = stats_socket.display(),
    )
}

fn start(timeouts: &str) -> (Proxy, HttpBackend, tempfile::TempDir) {
    let backend = HttpBackend::start(|_| ok("hello"));
    let dir = tempfile::tempdir().unwrap();
    let text = config(timeouts, &dir.path().join("admin.sock"))
        .replace("{backend}", &backend.addr.to_string());
    (Proxy::start(&text), backend, dir)
}

fn request(s: &TcpStream) -> (u16, Vec<u8>) {
    let mut w = s.try_clone().unwrap();
    w.write_all(get()).unwrap();
    let (status, _, body) =
        read_response(&mut BufReader::new(s.try_clone().unwrap()), false).expect("a response");
    (status, body)
}

fn open(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

fn current_sessions(admin: &Path) -> u64 {
    let csv = socat(admin, "show stat");
    let header: Vec<&str> = csv
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = header.iter().position(|h| *h == "scur").unwrap();
    let line = csv
        .lines()
        .find(|l| l.starts_with("fe,FRONTEND,"))
        .expect("the frontend's line");
    line.split(',').nth(col).unwrap().parse().unwrap()
}

#[test]
fn connections_idle_before_and_between_requests_are_served_when_they_speak() {
    let (proxy, _backend, dir) = start("");
    let admin = dir.path().join("admin.sock");
    let clients: Vec<TcpStream> = (0..20).map(|_| open(proxy.addr())).collect();
    // Silent since their accept: parked.
    thread::sleep(IDLE);
    for c in &clients {
        assert_eq!(request(c), (200, b"hello".to_vec()));
    }
    // Idle after a response: parked again, several times over.
    for _ in 0..3 {
        thread::sleep(IDLE);
        for c in &clients {
            assert_eq!(request(c), (200, b"hello".to_vec()));
        }
    }
    assert_eq!(current_sessions(&admin), 20);
    drop(clients);
    wait_until("every closed client is counted closed", || {
        current_sessions(&admin) == 0
    });
}

#[test]
fn a_parked_connection_is_listed_and_can_be_shut_down() {
    let (proxy, _backend, dir) = start("");
    let admin = dir.path().join("admin.sock");
    let c = open(proxy.addr());
    assert_eq!(request(&c).0, 200);
    thread::sleep(IDLE);
    let listing = socat(&admin, "show sess");
    let id = listing
        .lines()
        .find(|l| l.contains("fe=fe"))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("the idle connection is listed: {listing}"))
        .to_string();
    assert_eq!(socat(&admin, &format!("shutdown session {id}")), "\n");
    let mut rest = Vec::new();
    let _ = (&c).read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    wait_until("the session is gone", || {
        !socat(&admin, "show sess").contains("fe=fe")
    });
    assert_eq!(current_sessions(&admin), 0);
}

#[test]
fn parked_connections_keep_their_deadlines() {
    let (proxy, _backend, dir) = start(r#", http-request = "700ms", http-keep-alive = "700ms""#);
    let admin = dir.path().join("admin.sock");
    // Never sent a byte: `timeout http-request` answers 408, as HAProxy.
    let mut silent = open(proxy.addr());
    let (raw, _) = read_to_end_or_error(&mut silent);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    // Idle after a response: `timeout http-keep-alive` closes it quietly.
    let mut kept = open(proxy.addr());
    assert_eq!(request(&kept).0, 200);
    let (raw, _) = read_to_end_or_error(&mut kept);
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    wait_until("both are counted closed", || current_sessions(&admin) == 0);
}

#[test]
fn a_soft_stop_closes_parked_connections_and_exits() {
    let (proxy, _backend, _dir) = start("");
    let mut fresh = open(proxy.addr());
    let mut kept = open(proxy.addr());
    assert_eq!(request(&kept).0, 200);
    thread::sleep(IDLE);
    // hard-stop-after is a minute and the keep-alive timeout five: only
    // closing idle connections at the stop lets the process end now.
    proxy.signal(libc::SIGTERM);
    let (raw, _) = read_to_end_or_error(&mut kept);
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    let (raw, _) = read_to_end_or_error(&mut fresh);
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
    let mut proxy = proxy;
    let status = proxy.wait_exit();
    assert!(status.success(), "{}", proxy.stderr());
    assert!(!proxy.stderr().contains("cut "), "{}", proxy.stderr());
}
