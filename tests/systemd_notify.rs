//! systemd's notification protocol without systemd: the test binds the
//! datagram socket systemd would, names it in `NOTIFY_SOCKET`, and reads
//! what percore says through start, reloads, the watchdog and stop.

mod common;

use common::{connect, free_port, tcp_config, Backend, Proxy, PATIENCE};
use std::os::unix::net::UnixDatagram;
use std::time::Instant;

/// The notification socket, as systemd binds it.
struct Manager {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    /// What to put in NOTIFY_SOCKET.
    address: String,
}

impl Manager {
    fn at_path() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Manager::ready(socket, dir, path.to_str().unwrap().to_string())
    }

    fn abstract_name() -> Manager {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("percore-test-notify-{}-{}", std::process::id(), free_port());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        Manager::ready(socket, tempfile::tempdir().unwrap(), format!("@{name}"))
    }

    fn ready(socket: UnixDatagram, dir: tempfile::TempDir, address: String) -> Manager {
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        Manager {
            socket,
            _dir: dir,
            address,
        }
    }

    /// The next message for which `wanted` holds, skipping the others
    /// (periodic status lines arrive in between). Bounded.
    fn until(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                break;
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            if wanted(&message) {
                return message;
            }
            seen.push(message);
        }
        panic!("no {what} message; seen: {seen:#?}");
    }
}

fn field<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

fn monotonic_usec() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

#[test]
fn ready_reloading_watchdog_status_and_stopping_reach_the_manager() {
    let manager = Manager::at_path();
    let backend = Backend::echo();
    // A short watchdog, so that pings and status lines come often; the
    // test only waits for them, it never measures.
    let mut proxy = Proxy::start_with(
        &tcp_config("", &common::servers(&[backend.addr])),
        &[
            ("NOTIFY_SOCKET", &manager.address),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let ready = manager.until("READY=1", |m| field(m, "READY") == Some("1"));
    assert!(
        field(&ready, "STATUS").is_some_and(|s| s.starts_with("serving on 1 core(s)")),
        "{ready}"
    );

    // One open connection shows in the status; every core answered, so
    // the watchdog is pinged with it.
    let mut client = connect(proxy.addr());
    common::roundtrip(&mut client, b"hello");
    let status = manager.until("a status with one connection", |m| {
        field(m, "STATUS").is_some_and(|s| s.starts_with("serving 1 connection(s) on 1 core(s)"))
    });
    assert_eq!(field(&status, "WATCHDOG"), Some("1"), "{status}");
    drop(client);

    // A reload: RELOADING=1 stamped after the signal was sent, then
    // READY=1 with the result.
    let before = monotonic_usec();
    proxy.signal(libc::SIGHUP);
    let reloading = manager.until("RELOADING=1", |m| field(m, "RELOADING") == Some("1"));
    let stamp: u64 = field(&reloading, "MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(stamp >= before, "{stamp} < {before}");
    let reloaded = manager.until("READY=1 after the reload", |m| {
        field(m, "READY") == Some("1")
    });
    assert!(
        field(&reloaded, "STATUS").is_some_and(|s| s.contains("last reload applied")),
        "{reloaded}"
    );

    // A refused reload is a reload too: READY=1 again, saying so, and
    // the periodic status remembers it.
    std::fs::write(proxy.dir.path().join("percore.toml"), "[global\n").unwrap();
    proxy.signal(libc::SIGHUP);
    manager.until("RELOADING=1", |m| field(m, "RELOADING") == Some("1"));
    let refused = manager.until("READY=1", |m| field(m, "READY") == Some("1"));
    assert!(
        field(&refused, "STATUS").is_some_and(|s| s.contains("last reload refused")),
        "{refused}"
    );
    manager.until("a status with the refused reload", |m| {
        field(m, "STATUS")
            .is_some_and(|s| s.starts_with("serving") && s.contains("last reload refused"))
    });

    proxy.signal(libc::SIGTERM);
    manager.until("STOPPING=1", |m| field(m, "STOPPING") == Some("1"));
    assert!(proxy.wait_exit().success(), "{}", proxy.stderr());
}

#[test]
fn an_abstract_socket_works_and_a_bad_address_only_warns() {
    let manager = Manager::abstract_name();
    let backend = Backend::echo();
    let mut proxy = Proxy::start_with(
        &tcp_config("", &common::servers(&[backend.addr])),
        &[("NOTIFY_SOCKET", &manager.address)],
    );
    manager.until("READY=1", |m| field(m, "READY") == Some("1"));
    proxy.signal(libc::SIGTERM);
    manager.until("STOPPING=1", |m| field(m, "STOPPING") == Some("1"));
    assert!(proxy.wait_exit().success());

    // Not a path nor @name: percore says so and runs without.
    let mut proxy = Proxy::start_with(
        &tcp_config("", &common::servers(&[backend.addr])),
        &[("NOTIFY_SOCKET", "relative/notify")],
    );
    let stderr = proxy.stderr();
    assert!(
        stderr.contains("NOTIFY_SOCKET=\"relative/notify\" cannot be used"),
        "{stderr}"
    );
    proxy.signal(libc::SIGTERM);
    assert!(proxy.wait_exit().success());
}
