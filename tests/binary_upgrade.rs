//! Binary upgrade (`-x <socket> -sf <pid>`) against the real binary: a
//! client opens connections in a tight loop through the whole hand-over,
//! and not one may be refused, reset or left hanging.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::http_backend::HttpBackend;
use common::{free_port, run_percore, Proxy, PATIENCE};

struct Setup {
    backend: HttpBackend,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            backend: HttpBackend::ok(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn admin(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    fn operator(&self) -> PathBuf {
        self.dir.path().join("oper.sock")
    }

    /// An HTTP frontend on `{port}` to the test's backend, an admin and
    /// an operator runtime API socket, `threads` cores; `extra` is added
    /// at the end.
    fn config(&self, threads: usize, extra: &str) -> String {
        format!(
            r#"
[global]
threads = {threads}
maxconn = 2000
stats-socket = [
  {{ path = "{admin}", level = "admin" }},
  {{ path = "{oper}", level = "operator" }},
]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "app"

[[backend]]
name = "app"
servers = [{{ name = "s1", addr = "{backend}" }}]
{extra}
"#,
            admin = self.admin().display(),
            oper = self.operator().display(),
            backend = self.backend.addr,
        )
    }
}

/// One runtime API command; the whole answer.
fn command(sock: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The `Pid` line of `show info`.
fn pid_behind(sock: &Path) -> u32 {
    let info = command(sock, "show info");
    info.lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Pid in show info:\n{info}"))
}

/// "[NOTICE] percore stopped: accepted N connection(s) in total".
fn accepted_in_total(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("[NOTICE] percore stopped: accepted "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no stop notice in:\n{stderr}"))
}

/// Clients opening connections one after the other as fast as they can:
/// each a new TCP connection, one request with `Connection: close`, the
/// whole response read. Several, so that connections are in flight at
/// every step of the hand-over.
struct Churn {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

const CLIENTS: usize = 4;

struct ChurnReport {
    ok: usize,
    failures: Vec<String>,
}

impl Churn {
    fn start(addr: SocketAddr) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let threads = (0..CLIENTS)
            .map(|_| {
                let (stop, ok) = (Arc::clone(&stop), Arc::clone(&ok));
                thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match attempt(addr) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => failures.push(e),
                        }
                    }
                    failures
                })
            })
            .collect();
        Churn { stop, ok, threads }
    }

    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` further requests succeeded (bounded).
    fn wait_for(&self, more: usize) {
        let target = self.ok() + more;
        let deadline = Instant::now() + PATIENCE;
        while self.ok() < target {
            assert!(
                Instant::now() < deadline,
                "the client got only {} answers",
                self.ok()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> ChurnReport {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ChurnReport {
            ok: self.ok.load(Ordering::SeqCst),
            failures,
        }
    }
}

/// One connection; `Err` says what went wrong (refused, reset, no or a
/// bad answer). A connection left in an accept queue nobody serves would
/// hang: the read timeout turns that into a failure too.
fn attempt(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    if text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nok") {
        Ok(())
    } else {
        Err(format!("answer: {text:?}"))
    }
}

/// percore A with `threads_a` cores serves a client that never pauses;
/// percore B (`threads_b` cores, same config otherwise) takes its sockets
/// over with `-x` and stops it with `-sf`.
fn upgrade_under_load(threads_a: usize, threads_b: usize) {
    let t = Setup::new();
    let mut a = Proxy::start(&t.config(threads_a, ""));
    let port = a.port.to_string();
    let churn = Churn::start(a.addr());
    churn.wait_for(50);

    let pid_a = a.pid().to_string();
    let admin = t.admin();
    let mut b = Proxy::spawn(
        &t.config(threads_b, "").replace("{port}", &port),
        &["-x", admin.to_str().unwrap(), "-sf", &pid_a],
    );
    b.port = a.port;
    b.wait_listening();
    let status_a = a.wait_exit();
    let stderr_a = a.stderr();
    assert!(status_a.success(), "A: {status_a}\n{stderr_a}");
    // The churn goes on against B alone.
    churn.wait_for(50);
    thread::sleep(Duration::from_secs(1));
    let report = churn.stop();

    // The path is B's runtime API now.
    assert_eq!(pid_behind(&admin), b.pid());
    let (status_b, stderr_b) = b.stop();
    assert!(status_b.success(), "B: {status_b}\n{stderr_b}");

    assert!(
        report.failures.is_empty(),
        "{} of {} attempts failed, first ones: {:?}\nA:\n{stderr_a}\nB:\n{stderr_b}",
        report.failures.len(),
        report.ok + report.failures.len(),
        &report.failures[..report.failures.len().min(10)]
    );
    assert!(
        stderr_a.contains(&format!("{threads_a} listening socket(s) handed over")),
        "{stderr_a}"
    );
    assert!(
        stderr_b.contains(&format!("took {threads_a} listening socket(s) over")),
        "{stderr_b}"
    );
    let (by_a, by_b) = (accepted_in_total(&stderr_a), accepted_in_total(&stderr_b));
    assert!(by_a > 0 && by_b > 0, "A {by_a}, B {by_b}");
    // Every attempt was accepted exactly once, by one or the other.
    assert_eq!(by_a + by_b, report.ok, "A {by_a} + B {by_b}");
    // B removes its socket file at exit; A left it alone.
    assert!(!admin.exists());
}

#[test]
fn upgrade_loses_no_connection() {
    upgrade_under_load(2, 2);
}

#[test]
fn upgrade_to_fewer_cores_serves_every_inherited_socket() {
    // B's only core takes both of A's sockets: each has its own accept
    // queue in the SO_REUSEPORT group, and one left unserved would hang
    // the connections the kernel puts there.
    upgrade_under_load(2, 1);
}

#[test]
fn upgrade_to_more_cores_binds_the_extra_ones() {
    upgrade_under_load(1, 2);
}

/// Sends a request on a connection that may not be accepted yet, and
/// returns the thread that reads its answer.
fn request_in_queue(addr: SocketAddr) -> JoinHandle<Result<(), String>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    thread::spawn(move || {
        s.set_read_timeout(Some(PATIENCE))
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        match text.starts_with("HTTP/1.1 200") {
            true => Ok(()),
            false => Err(format!("answer: {text:?}")),
        }
    })
}

#[test]
fn connections_queued_in_the_old_process_are_served_by_the_new_one() {
    let t = Setup::new();
    // A: two cores, one connection each at most (the frontend's maxconn
    // 2), and room in the accept queues for the rest (the backlog
    // defaults to maxconn).
    let mut a = Proxy::start(&t.config(2, "").replace(
        "name = \"fe\"\n",
        "name = \"fe\"\nmaxconn = 2\nbacklog = 1024\n",
    ));
    // Idle connections: A accepts two and waits for their requests;
    // the others wait in the kernel's accept queues of A's two sockets.
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(a.addr()).unwrap())
        .collect();
    // Requests queued behind them, in both sockets' queues (the kernel
    // spreads connections over a SO_REUSEPORT group by their addresses).
    let queued: Vec<_> = (0..8).map(|_| request_in_queue(a.addr())).collect();
    // B, one core: it must accept on both of A's sockets.
    let config = t.config(1, "").replace("{port}", &a.port.to_string());
    let admin = t.admin();
    let mut b = Proxy::spawn(
        &config,
        &["-x", admin.to_str().unwrap(), "-sf", &a.pid().to_string()],
    );
    b.port = a.port;
    b.wait_listening();
    let results: Vec<_> = queued.into_iter().map(|q| q.join().unwrap()).collect();
    // A drains its two idle connections, then exits.
    drop(idle);
    let status_a = a.wait_exit();
    let stderr_a = a.stderr();
    let (_, stderr_b) = b.stop();
    assert!(
        results.iter().all(Result::is_ok),
        "{results:?}\nA:\n{stderr_a}\nB:\n{stderr_b}"
    );
    assert!(status_a.success(), "{stderr_a}");
    assert_eq!(accepted_in_total(&stderr_a), 2, "{stderr_a}");
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let t = Setup::new();
    let a = Proxy::start(&t.config(2, ""));
    // A second frontend on a port held without SO_REUSEPORT: B's start
    // fails after it received A's sockets and bound its own API sockets.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        r#"
[[frontend]]
name = "other"
bind = ["{}"]
default_backend = "app"
"#,
        taken.local_addr().unwrap()
    );
    let config = t.config(1, &extra).replace("{port}", &a.port.to_string());
    let admin = t.admin();
    let (status, _, stderr) = run_percore(
        &config,
        &["-x", admin.to_str().unwrap(), "-sf", &a.pid().to_string()],
    );
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("took 2 listening socket(s) over"),
        "{stderr}"
    );
    assert!(stderr.contains("address already in use"), "{stderr}");
    assert!(!stderr.contains("sent SIGUSR1"), "{stderr}");
    // A still answers on its path and still serves.
    assert_eq!(pid_behind(&admin), a.pid());
    attempt(a.addr()).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (status_a, stderr_a) = a.stop();
    assert!(status_a.success(), "{stderr_a}");
}

#[test]
fn take_over_from_nowhere_fails_before_binding_anything() {
    let t = Setup::new();
    let config = t.config(1, "").replace("{port}", &free_port().to_string());
    let nowhere = t.dir.path().join("nothing.sock");
    let (status, _, stderr) = run_percore(&config, &["-x", nowhere.to_str().unwrap()]);
    assert!(!status.success(), "{stderr}");
    let alert: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[ALERT]"))
        .collect();
    assert_eq!(alert.len(), 1, "{stderr}");
    assert!(
        alert[0].contains("cannot connect") && alert[0].contains(&*nowhere.to_string_lossy()),
        "{stderr}"
    );
    assert!(!stderr.contains("started"), "{stderr}");
    assert!(!t.admin().exists(), "the runtime API socket was bound");

    // kill(2) takes 0 as "my process group": never a pid to signal.
    let (status, _, stderr) = run_percore(&config, &["-sf", "0"]);
    assert!(!status.success(), "{stderr}");
    assert!(!stderr.contains("started"), "{stderr}");
}

#[test]
fn getsocks_needs_an_admin_socket_and_is_not_in_help() {
    let t = Setup::new();
    let a = Proxy::start(&t.config(1, ""));
    assert_eq!(command(&t.operator(), "_getsocks"), "Permission denied\n\n");
    assert!(!command(&t.admin(), "help").contains("_getsocks"));
    // The transfer's text part, as socat would show it (the descriptors
    // are dropped by a reader that does not take them).
    assert_eq!(
        command(&t.admin(), "_getsocks"),
        format!("percore-listeners/1 1\n127.0.0.1:{}\n", a.port)
    );
    // A new process pointed at the operator socket says why it cannot start.
    let config = t.config(1, "").replace("{port}", &a.port.to_string());
    let (status, _, stderr) = run_percore(&config, &["-x", t.operator().to_str().unwrap()]);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("refused _getsocks") && stderr.contains("Permission denied"),
        "{stderr}"
    );
    // A is untouched.
    attempt(a.addr()).unwrap();
}
