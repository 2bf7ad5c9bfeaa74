//! Start-up failures, limits and graceful stop of the real binary.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

fn one_line_alert(stderr: &str) -> &str {
    let alerts: Vec<&str> = stderr.lines().filter(|l| l.contains("[ALERT]")).collect();
    assert_eq!(
        alerts.len(),
        1,
        "expected exactly one alert line:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    alerts[0]
}

#[test]
fn port_in_use_is_one_clear_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let backend = Backend::echo();
    let config = tcp_config("", &servers(&[backend.addr])).replace("{port}", &port.to_string());
    let (status, _, stderr) = run_percore(&config, &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = one_line_alert(&stderr);
    assert!(line.contains("address already in use"), "{line}");
    assert!(line.contains(&port.to_string()), "{line}");
    assert!(line.contains("\"fe\""), "{line}");
}

#[test]
fn bad_config_is_refused_with_exit_1() {
    let (status, _, stderr) = run_percore("[global]\nthreads = \"many\"\n", &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("threads"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_flag_validates_without_running() {
    let backend = Backend::echo();
    let config = tcp_config("", &servers(&[backend.addr])).replace("{port}", "1");
    let (status, stdout, stderr) = run_percore(&config, &["--check"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("valid"), "{stdout}");

    let broken = config.replace("default_backend = \"be\"", "default_backend = \"nope\"");
    let (status, _, stderr) = run_percore(&broken, &["--check"]);
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_percore"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(env!("CARGO_BIN_EXE_percore"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--check") && help.contains("--config"),
        "{help}"
    );
}

/// The child starts with `n` descriptors, soft and hard.
fn limit_fds(cmd: &mut Command, n: libc::rlim_t) {
    // SAFETY: setrlimit is async-signal-safe; runs in the child before exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn too_few_descriptors_for_maxconn_is_refused() {
    let backend = Backend::echo();
    let config = tcp_config("", &servers(&[backend.addr]))
        .replace("maxconn = 1000", "maxconn = 5000")
        .replace("{port}", &free_port().to_string());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_percore"));
    cmd.arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    limit_fds(&mut cmd, 256);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = one_line_alert(&stderr);
    assert!(line.contains("maxconn") && line.contains("256"), "{line}");
}

/// HAProxy's `no strict-limits`: the same shortfall warns, and the proxy
/// runs with the descriptors it has.
#[test]
fn no_strict_limits_warns_and_serves() {
    let backend = Backend::echo();
    let port = free_port();
    let config = tcp_config("strict-limits = false", &servers(&[backend.addr]))
        .replace("maxconn = 1000", "maxconn = 5000")
        .replace("{port}", &port.to_string());
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config).unwrap();
    let err_path = dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_percore"));
    cmd.arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    limit_fds(&mut cmd, 256);
    let mut child = cmd.spawn().unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut c = loop {
        if let Ok(c) = TcpStream::connect(addr) {
            break c;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited with {status}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        assert!(std::time::Instant::now() < deadline, "never listened");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(roundtrip(&mut c, b"ping"), b"ping");
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        stderr.contains("[WARNING]")
            && stderr.contains("strict-limits = false")
            && stderr.contains("256"),
        "{stderr}"
    );
}

#[test]
fn sigterm_drains_established_connections_then_exits_0() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&tcp_config(
        "hard-stop-after = \"30s\"",
        &servers(&[backend.addr]),
    ));
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"before"), b"before");
    proxy.signal(libc::SIGTERM);
    // New connections are no longer accepted...
    wait_until("no longer accepting after SIGTERM", || {
        TcpStream::connect(proxy.addr()).is_err()
    });
    // ...but the established one keeps working until it ends.
    assert_eq!(roundtrip(&mut c, b"during drain"), b"during drain");
    drop(c);
    let mut proxy = proxy;
    let status = proxy.wait_exit();
    assert!(status.success(), "{}", proxy.stderr());
}

#[test]
fn grace_period_cuts_remaining_connections() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&tcp_config(
        "hard-stop-after = \"300ms\"",
        &servers(&[backend.addr]),
    ));
    let mut c = connect(proxy.addr());
    assert_eq!(roundtrip(&mut c, b"hi"), b"hi");
    let (status, log) = proxy.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("cut 1"), "{log}");
    let (_, _) = read_to_end_or_error(&mut c);
}

#[test]
fn global_maxconn_is_enforced() {
    // Connections beyond maxconn wait in the kernel backlog, unserved, until
    // a slot frees.
    let backend = Backend::echo();
    let proxy = Proxy::start(
        &tcp_config("", &servers(&[backend.addr])).replace("maxconn = 1000", "maxconn = 2"),
    );
    let mut a = connect(proxy.addr());
    let mut b = connect(proxy.addr());
    assert_eq!(roundtrip(&mut a, b"a"), b"a");
    assert_eq!(roundtrip(&mut b, b"b"), b"b");
    let mut third = connect(proxy.addr());
    third.write_all(b"c").unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        third.read(&mut buf).is_err(),
        "third connection served beyond maxconn"
    );
    assert_eq!(backend.accepted(), 2);
    drop(a);
    third.set_read_timeout(Some(PATIENCE)).unwrap();
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"c");
}

#[test]
fn server_maxconn_queues_then_times_out() {
    let backend = Backend::echo();
    let body = format!(
        "timeout = {{ queue = \"500ms\" }}\nservers = [{{ name = \"s1\", addr = \"{}\", maxconn = 1 }}]",
        backend.addr
    );
    let proxy = Proxy::start(&tcp_config("", &body));
    let mut first = connect(proxy.addr());
    assert_eq!(roundtrip(&mut first, b"1"), b"1");
    // The second waits in the queue; when the first leaves, it is served.
    let mut second = connect(proxy.addr());
    second.write_all(b"2").unwrap();
    drop(first);
    let mut buf = [0u8; 1];
    second.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"2");
    // A third, while the second holds the only slot, times out in the queue
    // and is closed.
    let mut third = connect(proxy.addr());
    let _ = third.write_all(b"3");
    let (got, _) = read_to_end_or_error(&mut third);
    assert!(got.is_empty());
    assert_eq!(roundtrip(&mut second, b"still"), b"still");
}

#[test]
fn backup_server_only_when_no_primary_is_usable() {
    let primary = Backend::echo();
    let backup = Backend::echo();
    let body = format!(
        "servers = [{{ name = \"p\", addr = \"{}\" }}, {{ name = \"b\", addr = \"{}\", backup = true }}]",
        primary.addr, backup.addr
    );
    let proxy = Proxy::start(&tcp_config("", &body));
    for _ in 0..5 {
        let mut c = connect(proxy.addr());
        assert_eq!(roundtrip(&mut c, b"x"), b"x");
    }
    assert_eq!((primary.accepted(), backup.accepted()), (5, 0));

    let body = format!(
        "servers = [{{ name = \"p\", addr = \"{}\", disabled = true }}, {{ name = \"b\", addr = \"{}\", backup = true }}]",
        primary.addr, backup.addr
    );
    let proxy = Proxy::start(&tcp_config("", &body));
    for _ in 0..3 {
        let mut c = connect(proxy.addr());
        assert_eq!(roundtrip(&mut c, b"x"), b"x");
    }
    assert_eq!((primary.accepted(), backup.accepted()), (5, 3));
}
