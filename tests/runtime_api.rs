//! The runtime API (HAProxy's stats socket) against the real binary: the
//! real `socat` for one-shot commands as operators' scripts send them, a
//! plain unix stream for interactive sessions, real HTTP backends, and
//! requests through the proxy to see where traffic goes.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::http_backend::{read_response, HttpBackend, Reply};
use common::{free_port, run_percore, socat, wait_until, Proxy, PATIENCE};

/// A backend that answers every request with its own name.
fn named(name: &'static str) -> HttpBackend {
    HttpBackend::start(move |_| Reply::Full(200, vec![], name.as_bytes().to_vec()))
}

struct Setup {
    proxy: Proxy,
    admin: PathBuf,
    user: PathBuf,
    operator: PathBuf,
    _backends: Vec<HttpBackend>,
    _dir: tempfile::TempDir,
}

/// percore on two cores, one HTTP frontend, backend `app` with servers s1
/// and s2 (each answers its name), and three sockets, one per level.
/// `server_extra` is added to both server entries, `{name}` replaced by
/// the server's name.
fn start(backend_extra: &str, server_extra: &str) -> Setup {
    start_with(
        backend_extra,
        &server_extra.replace("{name}", "s1"),
        &server_extra.replace("{name}", "s2"),
    )
}

/// As [`start`], with each server's extra keys apart.
fn start_with(backend_extra: &str, e1: &str, e2: &str) -> Setup {
    let (s1, s2) = (named("s1"), named("s2"));
    let dir = tempfile::tempdir().unwrap();
    let sock = |n: &str| dir.path().join(n);
    let config = format!(
        r#"
[global]
threads = 2
maxconn = 2000
stats-timeout = "2s"
stats-socket = [
  {{ path = "{admin}", level = "admin", mode = "600" }},
  {{ path = "{oper}", level = "operator" }},
  "{user}",
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
{backend_extra}
servers = [
  {{ name = "s1", addr = "{a1}"{e1} }},
  {{ name = "s2", addr = "{a2}"{e2} }},
]
"#,
        admin = sock("admin.sock").display(),
        oper = sock("oper.sock").display(),
        user = sock("user.sock").display(),
        a1 = s1.addr,
        a2 = s2.addr,
    );
    let proxy = Proxy::start(&config);
    Setup {
        proxy,
        admin: sock("admin.sock"),
        user: sock("user.sock"),
        operator: sock("oper.sock"),
        _backends: vec![s1, s2],
        _dir: dir,
    }
}

/// Which server answered a GET on a new connection.
fn who(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut BufReader::new(s), false).expect("a response");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

fn counts(addr: SocketAddr, n: usize) -> (usize, usize) {
    let mut c = (0, 0);
    for _ in 0..n {
        match who(addr).as_str() {
            "s1" => c.0 += 1,
            "s2" => c.1 += 1,
            other => panic!("answered by {other}"),
        }
    }
    c
}

/// A column of the `show stat` row `<proxy>,<name>` (`app,s1`, `fe,FRONTEND`).
fn csv_field(stat: &str, row_name: &str, column: &str) -> String {
    let header: Vec<&str> = stat
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = header.iter().position(|c| *c == column).unwrap();
    let row = stat
        .lines()
        .find(|l| l.starts_with(&format!("{row_name},")))
        .unwrap_or_else(|| panic!("no row for {row_name}:\n{stat}"));
    row.split(',').nth(col).unwrap().to_string()
}

#[test]
fn one_shot_answers_end_with_a_blank_line_and_commands_chain_with_semicolons() {
    let t = start("", "");
    assert_eq!(socat(&t.admin, "show backend"), "# name\napp\n\n");
    assert_eq!(socat(&t.admin, "get weight app/s1"), "1 (initial 1)\n\n");
    assert_eq!(
        socat(&t.admin, "get weight app/s1 ; show backend;show cli level"),
        "1 (initial 1)\n\n# name\napp\n\nadmin\n\n"
    );
    // A backslash keeps a semicolon inside a word.
    assert_eq!(
        socat(&t.admin, r"get weight app/s1\;x"),
        "No such server.\n\n"
    );
    assert_eq!(socat(&t.admin, "get weight nob/s1"), "No such backend.\n\n");
    assert_eq!(
        socat(&t.admin, "get weight app"),
        "Require 'backend/server'.\n\n"
    );
}

#[test]
fn unknown_commands_get_haproxys_help_text() {
    let t = start("", "");
    let text = socat(&t.admin, "frobnicate");
    assert!(
        text.starts_with("Unknown command. Please enter one of the following commands only:\n"),
        "{text}"
    );
    assert!(text.contains("  set server <bk>/<srv> [opts]            : "));
    assert!(text.ends_with("  quit                                    : disconnect\n\n"));
    let text = socat(&t.admin, "set maxconn nothing");
    assert!(text.starts_with("Unknown command, but maybe"), "{text}");
    assert!(text.contains("set maxconn frontend") && !text.contains("get weight"));
    let help = socat(&t.admin, "help");
    assert!(help.starts_with("The following commands are valid at this level:\n"));
    // An empty command is an unknown one, as in HAProxy.
    assert!(socat(&t.admin, "").starts_with("Unknown command."));
}

#[test]
fn prompt_mode_keeps_the_session_until_quit() {
    let t = start("", "");
    let mut s = UnixStream::connect(&t.admin).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let read_until_prompt = |s: &mut UnixStream| {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"> ") {
            assert_eq!(s.read(&mut byte).unwrap(), 1, "closed early: {got:?}");
            got.push(byte[0]);
        }
        String::from_utf8(got).unwrap()
    };
    s.write_all(b"prompt\n").unwrap();
    assert_eq!(read_until_prompt(&mut s), "\n> ");
    s.write_all(b"show backend\n").unwrap();
    assert_eq!(read_until_prompt(&mut s), "# name\napp\n\n> ");
    s.write_all(b"operator\n").unwrap();
    assert_eq!(read_until_prompt(&mut s), "\n> ");
    s.write_all(b"show cli level\n").unwrap();
    assert_eq!(read_until_prompt(&mut s), "operator\n\n> ");
    s.write_all(b"set server app/s1 state drain\n").unwrap();
    assert_eq!(read_until_prompt(&mut s), "Permission denied\n\n> ");
    s.write_all(b"quit\n").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn levels_are_enforced_as_in_haproxy() {
    let t = start("", "");
    for cmd in [
        "set server app/s1 state drain",
        "set weight app/s1 0",
        "disable server app/s1",
        "set maxconn frontend fe 10",
        "shutdown sessions server app/s1",
        "clear counters",
        "show sess",
    ] {
        assert_eq!(socat(&t.user, cmd), "Permission denied\n\n", "{cmd}");
    }
    assert_eq!(socat(&t.operator, "clear counters"), "\n");
    assert_eq!(
        socat(&t.operator, "clear counters all"),
        "Permission denied\n\n"
    );
    assert_eq!(
        socat(&t.operator, "set server app/s1 weight 3"),
        "Permission denied\n\n"
    );
    assert_eq!(socat(&t.user, "get weight app/s1"), "1 (initial 1)\n\n");
    assert_eq!(socat(&t.user, "show cli level"), "user\n\n");
    assert_eq!(socat(&t.admin, "user;show cli level"), "\nuser\n\n");
    // Nothing was changed by the refused commands: both servers take
    // traffic (each core alternates, and one of two cores gets 5 of 10).
    let (a, b) = counts(t.proxy.addr(), 10);
    assert!(a > 0 && b > 0, "{a}:{b}");
}

#[test]
fn maint_takes_effect_on_every_core_before_the_answer() {
    let t = start("", "");
    let addr = t.proxy.addr();
    let (a, b) = counts(addr, 10);
    assert!(a > 0 && b > 0, "{a}:{b}");
    // Each request right after the answer, on a new connection that may
    // land on either core: none may reach s1.
    for round in 0..5 {
        assert_eq!(socat(&t.admin, "set server app/s1 state maint"), "\n");
        assert_eq!(counts(addr, 10), (0, 10), "round {round}");
        assert_eq!(socat(&t.admin, "set server app/s1 state ready"), "\n");
        let back = counts(addr, 10);
        assert!(back.0 > 0, "round {round}: {back:?}");
    }
    assert_eq!(socat(&t.admin, "disable server app/s2"), "\n");
    assert_eq!(counts(addr, 6), (6, 0));
    let stat = socat(&t.admin, "show stat");
    assert_eq!(csv_field(&stat, "app,s2", "status"), "MAINT");
    assert_eq!(socat(&t.admin, "enable server app/s2"), "\n");
    assert_eq!(
        csv_field(&socat(&t.admin, "show stat"), "app,s2", "status"),
        "UP"
    );
}

#[test]
fn weights_change_balancing_on_every_core() {
    let t = start("", "");
    let addr = t.proxy.addr();
    assert_eq!(socat(&t.admin, "set server app/s1 weight 0"), "\n");
    assert_eq!(counts(addr, 20), (0, 20));
    assert_eq!(socat(&t.admin, "get weight app/s1"), "0 (initial 1)\n\n");
    assert_eq!(socat(&t.admin, "set weight app/s1 100"), "\n");
    assert_eq!(socat(&t.admin, "set weight app/s2 0%"), "\n");
    assert_eq!(counts(addr, 20), (20, 0));
    // 3:1 over whole rounds: each core runs its own smooth round robin,
    // and connections spread over the cores, so allow a little slack.
    assert_eq!(socat(&t.admin, "set weight app/s1 3"), "\n");
    assert_eq!(socat(&t.admin, "set weight app/s2 1"), "\n");
    let (a, b) = counts(addr, 200);
    assert!((135..=165).contains(&a) && a + b == 200, "{a}:{b}");
    assert_eq!(
        socat(&t.admin, "set weight app/s1 257"),
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    );
    assert_eq!(
        socat(&t.admin, "set weight app/s1 -1%"),
        "Relative weight must be positive.\n\n"
    );
    assert_eq!(
        socat(&t.admin, "set weight app/s1"),
        "Require <weight> or <weight%>.\n\n"
    );
    assert_eq!(
        csv_field(&socat(&t.admin, "show stat"), "app,s1", "weight"),
        "3"
    );
}

#[test]
fn static_algorithms_accept_only_zero_or_the_initial_weight() {
    let t = start("balance = \"static-rr\"", ", weight = 10");
    assert_eq!(
        socat(&t.admin, "set weight app/s1 5"),
        "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n"
    );
    assert_eq!(socat(&t.admin, "set weight app/s1 0%"), "\n");
    assert_eq!(counts(t.proxy.addr(), 6), (0, 6));
    assert_eq!(socat(&t.admin, "set weight app/s1 100%"), "\n");
}

#[test]
fn drain_loses_no_request_and_keeps_persistent_clients() {
    let t = start(
        "cookie = \"SRV insert indirect nocache\"",
        ", cookie = \"{name}\"",
    );
    let addr = t.proxy.addr();
    // Continuous keep-alive and closing clients while s1 is drained.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (stop, failures, done) =
                (Arc::clone(&stop), Arc::clone(&failures), Arc::clone(&done));
            thread::spawn(move || {
                let keep_alive = i % 2 == 0;
                let mut conn: Option<BufReader<TcpStream>> = None;
                while !stop.load(Ordering::SeqCst) {
                    let c = conn.get_or_insert_with(|| {
                        let s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(PATIENCE)).unwrap();
                        BufReader::new(s)
                    });
                    let req: &[u8] = if keep_alive {
                        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                    } else {
                        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    };
                    let ok = c.get_mut().write_all(req).is_ok()
                        && matches!(read_response(c, false), Some((200, _, _)));
                    if !ok {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    if !keep_alive || !ok {
                        conn = None;
                    }
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + PATIENCE;
        while done.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline);
            thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(200);
    assert_eq!(socat(&t.admin, "set server app/s1 state drain"), "\n");
    let at_drain = done.load(Ordering::SeqCst);
    wait_for(at_drain + 200);
    // A persistent client (cookie names s1) still reaches the drained s1.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nCookie: SRV=s1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (_, _, body) = read_response(&mut BufReader::new(s), false).unwrap();
    assert_eq!(body, b"s1");
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    // New balanced connections avoid s1.
    assert_eq!(counts(addr, 10), (0, 10));
    let stat = socat(&t.admin, "show stat");
    assert_eq!(csv_field(&stat, "app,s1", "status"), "DRAIN");
    let state = socat(&t.admin, "show servers state app");
    let s1 = state.lines().find(|l| l.contains(" s1 ")).unwrap();
    let fields: Vec<&str> = s1.split(' ').collect();
    assert_eq!((fields[5], fields[6]), ("2", "8"), "{s1}");
}

#[test]
fn set_server_addr_moves_new_connections() {
    let t = start("", "");
    let s3 = named("s3");
    let line = format!(
        "set server app/s2 addr {} port {}",
        s3.addr.ip(),
        s3.addr.port()
    );
    let answer = socat(&t.admin, &line);
    assert!(
        answer.starts_with("no need to change the addr, port changed from '")
            && answer.ends_with(&format!(
                "' to '{}' by 'stats socket command'\n\n",
                s3.addr.port()
            )),
        "{answer}"
    );
    assert_eq!(socat(&t.admin, "set server app/s1 state maint"), "\n");
    for _ in 0..6 {
        assert_eq!(who(t.proxy.addr()), "s3");
    }
    assert_eq!(
        socat(&t.admin, "set server app/s2 addr not-an-ip"),
        "Invalid addr 'not-an-ip' by 'stats socket command'\n\n"
    );
    let state = socat(&t.admin, "show servers state app");
    assert!(
        state.contains(&format!(" s2 {} ", s3.addr.ip()))
            && state.contains(&format!(" {} - ", s3.addr.port())),
        "{state}"
    );
}

#[test]
fn frontend_and_server_maxconn_change_at_run_time() {
    let t = start("", "");
    assert_eq!(socat(&t.admin, "set maxconn server app/s1 7"), "\n");
    assert_eq!(
        csv_field(&socat(&t.admin, "show stat"), "app,s1", "slim"),
        "7"
    );
    assert_eq!(
        socat(&t.admin, "set maxconn server app/s1 -1"),
        "Value out of range.\n\n"
    );
    assert_eq!(
        socat(&t.admin, "set maxconn frontend nofe 5"),
        "No such frontend.\n\n"
    );
    assert_eq!(
        socat(&t.admin, "set maxconn frontend fe"),
        "Integer value expected.\n\n"
    );
    // Frontend maxconn 0: new connections wait in the backlog until it is
    // raised again.
    assert_eq!(socat(&t.admin, "set maxconn frontend fe 0"), "\n");
    let addr = t.proxy.addr();
    let waiting = thread::spawn(move || who(addr));
    thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "served while maxconn was 0");
    assert_eq!(socat(&t.admin, "set maxconn frontend fe 100"), "\n");
    let got = waiting.join().unwrap();
    assert!(got == "s1" || got == "s2");
}

#[test]
fn clear_counters_resets_maxima_or_everything() {
    let t = start("", "");
    counts(t.proxy.addr(), 6);
    let stat = |t: &Setup, column| csv_field(&socat(&t.admin, "show stat"), "fe,FRONTEND", column);
    assert_eq!(stat(&t, "stot"), "6");
    assert_eq!(socat(&t.admin, "clear counters"), "\n");
    assert_eq!(stat(&t, "stot"), "6");
    assert_eq!(stat(&t, "smax"), "0");
    assert_eq!(socat(&t.admin, "clear counters all"), "\n");
    assert_eq!(stat(&t, "stot"), "0");
}

#[test]
fn bad_input_is_refused_and_blocks_nobody() {
    let t = start("", "");
    // A line over 16 KiB: refused, the connection closed.
    let mut s = UnixStream::connect(&t.admin).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let long = vec![b'x'; 20 * 1024];
    let _ = s.write_all(&long);
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("Command line too long"), "{answer}");
    wait_until("the refusal is logged", || {
        t.proxy
            .stderr()
            .contains("command line over 16384 bytes refused, client disconnected (1 refused")
    });
    // An idle client and a slow one (half a line) are cut by stats-timeout
    // (2s here) without holding anyone else up.
    let idle = UnixStream::connect(&t.admin).unwrap();
    let mut slow = UnixStream::connect(&t.admin).unwrap();
    slow.write_all(b"show ba").unwrap();
    assert_eq!(socat(&t.admin, "show backend"), "# name\napp\n\n");
    assert_eq!(who(t.proxy.addr()).len(), 2);
    for mut c in [idle, slow] {
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}

#[test]
fn a_thousand_clients_at_once_are_all_answered() {
    let t = start("", "");
    let clients: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&t.admin).unwrap())
        .collect();
    // Every one of them connected and silent: the core still answers
    // others and still proxies.
    assert_eq!(socat(&t.admin, "get weight app/s2"), "1 (initial 1)\n\n");
    assert_eq!(who(t.proxy.addr()).len(), 2);
    for mut c in clients.iter() {
        c.write_all(b"show backend\n").unwrap();
    }
    for mut c in clients {
        c.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "# name\napp\n\n");
    }
}

#[test]
fn socket_files_start_stale_or_taken_and_go_away_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let config = |path: &Path| {
        format!(
            "[global]\nthreads = 1\nstats-socket = {{ path = \"{}\", level = \"admin\" }}\n\
             [[frontend]]\nname = \"fe\"\nmode = \"tcp\"\nbind = [\"127.0.0.1:{{port}}\"]\n\
             default_backend = \"be\"\ntimeout = {{ client = \"5s\" }}\n\
             [[backend]]\nname = \"be\"\nmode = \"tcp\"\ntimeout = {{ connect = \"1s\", server = \"5s\" }}\n\
             servers = [{{ name = \"s1\", addr = \"127.0.0.1:1\" }}]\n",
            path.display()
        )
    };
    // A socket file nobody listens on (a crashed process left it).
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let proxy = Proxy::start(&config(&path));
    assert_eq!(socat(&path, "show backend"), "# name\nbe\n\n");
    // A second process on the same socket is refused at start.
    let (status, _, stderr) = run_percore(
        &config(&path).replace("{port}", &free_port().to_string()),
        &[],
    );
    assert!(!status.success());
    assert!(stderr.contains("another process listens on it"), "{stderr}");
    let (status, _) = proxy.stop();
    assert!(status.success());
    assert!(!path.exists(), "socket file left behind");
    // A path in a directory that does not exist.
    let missing = dir.path().join("nope/admin.sock");
    let (status, _, stderr) = run_percore(
        &config(&missing).replace("{port}", &free_port().to_string()),
        &[],
    );
    assert!(!status.success());
    assert!(stderr.contains("does not exist"), "{stderr}");
}

/// A check target that counts the connections made to it.
struct CheckTarget {
    port: u16,
    hits: Arc<AtomicUsize>,
}

fn check_target() -> CheckTarget {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    CheckTarget { port, hits }
}

#[test]
fn maintenance_pauses_checks_and_ready_resumes_them() {
    let target = check_target();
    let t = start(
        "",
        &format!(
            ", check = true, inter = \"100ms\", rise = 1, fall = 1, port = {}",
            target.port
        ),
    );
    wait_until("checks run", || target.hits.load(Ordering::SeqCst) >= 4);
    // After the first passed checks, HAProxy's numbers: L4OK (6), passed
    // (3), health at rise + fall - 1, checks configured and enabled (6).
    wait_until("s1 shows a passed check", || {
        socat(&t.admin, "show servers state app")
            .lines()
            .any(|l| l.contains(" s1 ") && l.contains(" 6 3 1 6 "))
    });
    assert_eq!(socat(&t.admin, "set server app/s1 state maint"), "\n");
    assert_eq!(socat(&t.admin, "set server app/s2 state maint"), "\n");
    let state = socat(&t.admin, "show servers state app");
    // Paused (14 = configured, enabled, paused), forced maintenance (1).
    assert!(
        state
            .lines()
            .any(|l| l.contains(" s1 127.0.0.1 0 1 ") && l.contains(" 14 ")),
        "{state}"
    );
    thread::sleep(Duration::from_millis(150));
    let paused_at = target.hits.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(600));
    assert_eq!(
        target.hits.load(Ordering::SeqCst),
        paused_at,
        "checked in maintenance"
    );
    assert_eq!(socat(&t.admin, "set server app/s1 state ready"), "\n");
    wait_until("checks resume", || {
        target.hits.load(Ordering::SeqCst) > paused_at + 2
    });
    assert_eq!(who(t.proxy.addr()), "s1");
}

#[test]
fn disable_health_counts_the_server_up_until_checks_resume() {
    let closed = free_port();
    let t = start_with(
        "",
        &format!(", check = true, inter = \"100ms\", rise = 1, fall = 1, port = {closed}"),
        "",
    );
    let status = |t: &Setup| csv_field(&socat(&t.admin, "show stat"), "app,s1", "status");
    wait_until("s1 down", || status(&t) == "DOWN");
    assert_eq!(counts(t.proxy.addr(), 6), (0, 6));
    assert_eq!(socat(&t.admin, "disable health app/s1"), "\n");
    assert_eq!(status(&t), "UP");
    let (a, b) = counts(t.proxy.addr(), 10);
    assert!(a > 0 && b > 0, "{a}:{b}");
    let state = socat(&t.admin, "show servers state app");
    // Checks configured but not enabled: srv_check_state 2.
    assert!(
        state
            .lines()
            .any(|l| l.contains(" s1 ") && l.split(' ').nth(13) == Some("2")),
        "{state}"
    );
    assert_eq!(socat(&t.admin, "enable health app/s1"), "\n");
    wait_until("s1 down again", || status(&t) == "DOWN");
}

/// HAProxy 2.6 on the same two backends with the same sockets, for the
/// differential test.
struct Haproxy {
    child: std::process::Child,
    admin: PathBuf,
    user: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_haproxy(s1: SocketAddr, s2: SocketAddr) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let admin = dir.path().join("admin.sock");
    let user = dir.path().join("user.sock");
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  nbthread 2\n  stats socket {} mode 600 level admin\n  stats socket {} level user\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:{}\n  default_backend app\n\
             backend app\n  server s1 {s1}\n  server s2 {s2}\n",
            admin.display(),
            user.display(),
            free_port()
        ),
    )
    .unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy runs (Debian package haproxy; .ci/run installs it)");
    wait_until("haproxy's socket", || UnixStream::connect(&admin).is_ok());
    Haproxy {
        child,
        admin,
        user,
        _dir: dir,
    }
}

/// The columns of `show servers state` that name HAProxy's own numbering
/// or the clock: the backend id (HAProxy gives id 1 to its internal CLI
/// proxy, so its first frontend is 2 where percore's is 1) and the time
/// since the last change.
fn normalize(answer: &str) -> String {
    answer
        .lines()
        .map(|l| {
            let mut fields: Vec<&str> = l.split(' ').collect();
            if fields.len() == 25 && !l.starts_with('#') {
                fields[0] = "<id>";
                fields[9] = "<t>";
            }
            fields.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn answers_match_haproxy_2_6_word_for_word() {
    let t = start("", "");
    let haproxy = start_haproxy(t._backends[0].addr, t._backends[1].addr);
    let admin_session = [
        "get weight app/s1",
        "get weight app/nosuch",
        "get weight nob/s1",
        "get weight app",
        "get weight app/",
        "set weight app/s1 257",
        "set weight app/s1 -1%",
        "set weight app/s1",
        "set server app/s1 weight 30000%",
        "get weight app/s1",
        "set server app/s1 weight 50%",
        "get weight app/s1",
        "set server app/s2 weight 1",
        "set server app/s1 state bogus",
        "set server app/s1 state drain",
        "show servers state",
        "set server app/s1 state maint",
        "show servers state app",
        "disable server app/s2",
        "show servers state app",
        "set server app/s1 state ready",
        "enable server app/s2",
        "show servers state app",
        "show servers state nob",
        "set server app/s1 addr 127.0.0.1",
        "set server app/s1 addr bogus",
        "set server app/s1 addr",
        "set maxconn frontend nofe 1",
        "set maxconn frontend fe",
        "set maxconn frontend fe -1",
        "set maxconn server app/s1",
        "set maxconn server nob/s1 3",
        "set maxconn server app/s1 10",
        "disable server nob/x",
        "enable health app/x",
        "shutdown sessions server app/x",
        "shutdown sessions server",
        "shutdown session",
        "shutdown session 0x1234",
        "show errors nofe",
        "show backend",
        "show cli level",
        "clear counters",
        "clear counters all",
        "user;show cli level",
        "operator;clear counters all",
        "get weight app/s1 ; show backend;get weight app/s2",
    ];
    let mut differences = Vec::new();
    for line in admin_session {
        let ours = normalize(&socat(&t.admin, line));
        let theirs = normalize(&socat(&haproxy.admin, line));
        if ours != theirs {
            differences.push(format!(
                "{line}\n  percore: {ours:?}\n  haproxy: {theirs:?}"
            ));
        }
    }
    for line in [
        "set server app/s1 state drain",
        "clear counters",
        "disable health app/s1",
        "show sess",
        "get weight app/s2",
        "show cli level",
    ] {
        let ours = socat(&t.user, line);
        let theirs = socat(&haproxy.user, line);
        if ours != theirs {
            differences.push(format!(
                "(user) {line}\n  percore: {ours:?}\n  haproxy: {theirs:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn show_sess_lists_sessions_and_shutdown_ends_them() {
    // s1 answers nothing, so a request to it stays in flight.
    let silent = HttpBackend::start(|_| {
        thread::sleep(Duration::from_secs(60));
        Reply::Close
    });
    let t = start_with("", "", "");
    let line = format!(
        "set server app/s1 addr {} port {}",
        silent.addr.ip(),
        silent.addr.port()
    );
    socat(&t.admin, &line);
    assert_eq!(socat(&t.admin, "set server app/s2 state maint"), "\n");
    let mut held = TcpStream::connect(t.proxy.addr()).unwrap();
    held.set_read_timeout(Some(PATIENCE)).unwrap();
    held.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    wait_until("the session shows its server", || {
        socat(&t.admin, "show sess").contains(" fe=fe be=app srv=s1 ")
    });
    let listing = socat(&t.admin, "show sess");
    let line = listing.lines().find(|l| l.contains("srv=s1")).unwrap();
    assert!(
        line.starts_with("0x") && line.contains(" proto=tcpv4 src=127.0.0.1:"),
        "{line}"
    );
    assert_eq!(socat(&t.admin, "shutdown sessions server app/s1"), "\n");
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    wait_until("the session is gone", || {
        !socat(&t.admin, "show sess").contains("srv=s1")
    });
    // One session by id.
    let mut idle = TcpStream::connect(t.proxy.addr()).unwrap();
    idle.set_read_timeout(Some(PATIENCE)).unwrap();
    let id = {
        let mut found = None;
        wait_until("the idle session is listed", || {
            found = socat(&t.admin, "show sess")
                .lines()
                .find(|l| l.contains("fe=fe"))
                .and_then(|l| l.split(':').next().map(str::to_string));
            found.is_some()
        });
        found.unwrap()
    };
    assert_eq!(socat(&t.admin, &format!("shutdown session {id}")), "\n");
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty());
}

#[test]
fn show_errors_keeps_the_last_refused_request() {
    let t = start("", "");
    assert!(socat(&t.admin, "show errors").starts_with("Total events captured on ["));
    let mut s = TcpStream::connect(t.proxy.addr()).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 400"));
    let errors = socat(&t.admin, "show errors");
    assert!(errors.contains(": 1\n"), "{errors}");
    assert!(
        errors.contains("frontend fe (#1): invalid request"),
        "{errors}"
    );
    assert!(errors.contains("Bad Header"), "{errors}");
    assert!(!socat(&t.admin, "show errors app response").contains("invalid request"));
}

#[test]
fn show_info_and_stat_speak_haproxys_formats() {
    let t = start("", "");
    counts(t.proxy.addr(), 4);
    let info = socat(&t.user, "show info");
    assert!(info.starts_with("Name: percore\n"), "{info}");
    assert!(
        info.contains("\nNbthread: 2\n") && info.contains("\nCumReq: "),
        "{info}"
    );
    let typed = socat(&t.user, "show stat typed");
    assert!(
        typed
            .lines()
            .any(|l| l.starts_with("S.") && l.contains(".svname.1:KNS:str:s1")),
        "{typed}"
    );
    let json: serde_json::Value = serde_json::from_str(&socat(&t.user, "show stat json")).unwrap();
    assert!(json.as_array().is_some_and(|a| !a.is_empty()));
    assert_eq!(
        socat(&t.user, "show stat nosuch 4 -1"),
        "No such proxy.\n\n"
    );
}
