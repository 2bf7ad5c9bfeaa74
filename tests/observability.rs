//! Stats endpoint, cross-core merge, Prometheus output and access logs,
//! all over real sockets against the real binary.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::thread;

/// A GET over a fresh connection; returns (status, head, body).
fn get(addr: SocketAddr, target: &str, auth: Option<&str>) -> (u16, String, String) {
    let mut s = connect(addr);
    let auth = auth
        .map(|b64| format!("Authorization: Basic {b64}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {target} HTTP/1.1\r\nHost: stats\r\n{auth}\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head[9..12].parse().unwrap();
    (status, head.to_string(), body.to_string())
}

fn config_with(
    global: &str,
    frontend: &str,
    backend: &str,
    stats_port: u16,
    stats: &str,
) -> String {
    format!(
        r#"
[global]
threads = "auto"
maxconn = 2000
{global}

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
{frontend}

[[backend]]
name = "be"
{backend}

[stats]
bind = "127.0.0.1:{stats_port}"
{stats}
"#
    )
}

/// `n` sessions of `len` bytes echoed back, from several client threads so
/// that SO_REUSEPORT spreads them over the cores.
fn drive(proxy: SocketAddr, n: usize, len: usize) {
    let threads = 8;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                let mut pattern = Pattern::new(t as u64 + 1);
                let mut msg = vec![0u8; len];
                for _ in (t..n).step_by(threads) {
                    pattern.fill(&mut msg);
                    let mut s = connect(proxy);
                    assert_eq!(roundtrip(&mut s, &msg), msg);
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let (rest, err) = read_to_end_or_error(&mut s);
                    assert!(rest.is_empty() && err.is_none());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn cpus() -> usize {
    // The proxy's "auto" is one executor per CPU in the affinity mask.
    // SAFETY: sched_getaffinity fills the set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        libc::CPU_COUNT(&set) as usize
    }
}

#[test]
fn merged_counters_equal_the_sum_over_all_cores() {
    let backend = Backend::echo();
    let stats_port = free_port();
    let config = config_with("", "", &servers(&[backend.addr]), stats_port, "");
    let proxy = Proxy::start(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    let (n, len) = (300u64, 1500u64);
    drive(proxy.addr(), n as usize, len as usize);

    let v = stats_when(stats, |v| {
        v["frontends"][0]["sessions_total"] == n && v["frontends"][0]["sessions_cur"] == 0
    });
    let cores = cpus() as u64;
    assert_eq!(v["process"]["cores"], cores);
    assert_eq!(v["process"]["cores_answered"], cores, "every core answered");
    let fe = &v["frontends"][0];
    assert_eq!(fe["bytes_in"], n * len);
    assert_eq!(fe["bytes_out"], n * len);
    let be = &v["backends"][0];
    assert_eq!(be["sessions_total"], n);
    assert_eq!(be["sessions_cur"], 0);
    assert_eq!(be["bytes_in"], n * len);
    assert_eq!(be["bytes_out"], n * len);
    assert_eq!(be["conn_errors"], 0);
    assert_eq!(be["timings"]["connect"]["count"], n);
    assert_eq!(be["timings"]["total"]["count"], n);
    assert_eq!(be["timings"]["response"]["count"], n);
    let s1 = &be["servers"][0];
    assert_eq!(s1["sessions_total"], n);
    assert_eq!(s1["lbtot"], n);
    assert_eq!(s1["bytes_out"], n * len);
    assert_eq!(s1["status"], "UP");

    // The per-core reports at exit add up to the same total, and with more
    // than one core the traffic really was spread (the merge was exercised).
    let (status, stderr) = proxy.stop();
    assert!(status.success(), "{stderr}");
    let per_core: Vec<u64> = stderr
        .lines()
        .filter(|l| l.contains("[NOTICE] core "))
        .map(|l| {
            let after = l.split("accepted ").nth(1).unwrap();
            after.split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(per_core.len() as u64, cores, "{stderr}");
    assert_eq!(per_core.iter().sum::<u64>(), n);
    if cores > 1 {
        assert!(
            per_core.iter().filter(|&&c| c > 0).count() > 1,
            "all {n} connections landed on one core: {per_core:?}"
        );
    }
}

#[test]
fn retries_and_connection_errors_are_counted() {
    let dead = closed_addr();
    let stats_port = free_port();
    let backend = format!(
        "retries = 2\nredispatch = false\ntimeout = {{ connect = \"500ms\" }}\n{}",
        servers(&[dead])
    );
    let config = config_with("", "", &backend, stats_port, "");
    let proxy = Proxy::start(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    for _ in 0..3 {
        let mut s = connect(proxy.addr());
        let (_, _) = read_to_end_or_error(&mut s);
    }
    let v = stats_when(stats, |v| v["backends"][0]["conn_errors"] == 9);
    let be = &v["backends"][0];
    assert_eq!(be["retries"], 6);
    assert_eq!(be["sessions_total"], 0);
    assert_eq!(be["servers"][0]["conn_errors"], 9);
    assert_eq!(be["servers"][0]["retries"], 6);
    assert_eq!(v["frontends"][0]["sessions_total"], 3);
}

#[test]
fn prometheus_metrics_pass_promtool() {
    let backend = Backend::echo();
    let stats_port = free_port();
    let config = config_with("", "", &servers(&[backend.addr]), stats_port, "");
    let proxy = Proxy::start(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    drive(proxy.addr(), 40, 100);
    stats_when(stats, |v| {
        v["frontends"][0]["sessions_total"] == 40 && v["frontends"][0]["sessions_cur"] == 0
    });

    let (status, head, body) = get(stats, "/metrics", None);
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("percore_frontend_sessions_total{proxy=\"fe\"} 40\n"),
        "{body}"
    );
    assert!(body.contains("percore_frontend_bytes_in_total{proxy=\"fe\"} 4000\n"));
    assert!(body.contains("percore_backend_connect_time_seconds_count{proxy=\"be\"} 40\n"));
    assert!(
        body.contains("percore_backend_total_time_seconds_bucket{proxy=\"be\",le=\"+Inf\"} 40\n")
    );
    assert!(body.contains("percore_server_status{proxy=\"be\",server=\"s1\",state=\"UP\"} 1\n"));

    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(child) => child,
        Err(e) => {
            eprintln!(
                "\n\n!!!!!!!! SKIPPED: promtool is not installed ({e}); \
                 install Debian package `prometheus` (.ci/run does) !!!!!!!!\n\n"
            );
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool exits 0 on lint findings too; it prints them.
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(findings.trim().is_empty(), "promtool findings:\n{findings}");
}

#[test]
fn stats_page_formats_auth_and_hide_version() {
    let backend = Backend::echo();
    let stats_port = free_port();
    let config = config_with(
        "",
        "",
        &servers(&[backend.addr, closed_addr()]),
        stats_port,
        "uri = \"/haproxy?stats\"\n",
    );
    // A '?' in the uri is refused at load.
    let (status, _, stderr) = run_percore(&config.replace("{port}", "1"), &["--check"]);
    assert!(
        !status.success() && stderr.contains("invalid stats uri"),
        "{stderr}"
    );

    let config = config_with(
        "",
        "",
        &format!(
            "servers = [{{ name = \"web1\", addr = \"{}\" }}, {{ name = \"web2\", addr = \"{}\", backup = true }}]",
            backend.addr,
            closed_addr()
        ),
        stats_port,
        "uri = \"/admin/stats\"\nauth = \"admin:s3cret\"\nhide-version = true\nrefresh = \"7s\"\n",
    );
    let proxy = Proxy::start(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    drive(proxy.addr(), 4, 10);

    let (status, head, _) = get(stats, "/admin/stats", None);
    assert_eq!(status, 401);
    assert!(head.contains("WWW-Authenticate: Basic realm="), "{head}");
    // admin:wrong
    assert_eq!(get(stats, "/admin/stats", Some("YWRtaW46d3Jvbmc=")).0, 401);
    assert_eq!(get(stats, "/metrics", None).0, 401);
    let good = Some("YWRtaW46czNjcmV0"); // admin:s3cret
    assert_eq!(get(stats, "/nothing-here", good).0, 404);

    let (status, head, html) = get(stats, "/admin/stats", good);
    assert_eq!(status, 200);
    assert!(head.contains("Content-Type: text/html"));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"7\">"));
    assert!(html.contains("<th class=\"pxname\" colspan=\"6\"><a name=\"fe\"></a>fe</th>"));
    assert!(html.contains("<tr class=\"active_up\"><td class=\"name\">web1</td>"));
    assert!(html.contains("<tr class=\"backup_up\"><td class=\"name\">web2</td>"));
    assert!(!html.contains(env!("CARGO_PKG_VERSION")), "hide-version");
    let (_, _, html) = get(stats, "/admin/stats;norefresh", good);
    assert!(!html.contains("http-equiv=\"refresh\""));

    let (status, _, csv) = get(stats, "/admin/stats;csv", good);
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap()[2..].split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    assert_eq!(&header[..4], ["pxname", "svname", "qcur", "qmax"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let fe = rows.iter().find(|r| r[1] == "FRONTEND").unwrap();
    assert_eq!(fe[col("stot")], "4");
    assert_eq!(fe[col("bin")], "40");
    let be = rows.iter().find(|r| r[1] == "BACKEND").unwrap();
    assert_eq!(be[col("status")], "UP");
    assert_eq!(be[col("type")], "1");
    let (_, _, csv2) = get(stats, "/admin/stats?stats;csv", good);
    assert!(csv2.starts_with("# pxname,svname,"));
    let (_, head, json) = get(stats, "/admin/stats?format=json", good);
    assert!(head.contains("application/json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["process"].get("version").is_none(), "hide-version");
    assert_eq!(v["frontends"][0]["sessions_total"], 4);
}

/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
fn assert_tcplog(line: &str, server: &str, bytes: &str, state: &str) {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 9, "{line}");
    let (ip, port) = f[0].rsplit_once(':').unwrap();
    assert_eq!(ip, "127.0.0.1", "{line}");
    port.parse::<u16>().unwrap();
    assert!(
        f[1].starts_with('[') && f[1].ends_with(']') && f[1].len() == 26,
        "{line}"
    );
    assert_eq!(f[2], "fe");
    assert_eq!(f[3], format!("be/{server}"));
    let timers: Vec<&str> = f[4].split('/').collect();
    assert_eq!(timers.len(), 3, "{line}");
    for t in timers {
        t.parse::<i64>().unwrap();
    }
    assert_eq!(f[5], bytes, "{line}");
    assert_eq!(f[6], state, "{line}");
    assert_eq!(f[7].split('/').count(), 5, "{line}");
    assert_eq!(f[8].split('/').count(), 2, "{line}");
}

#[test]
fn tcplog_to_a_file_with_dontlognull_and_errors() {
    let backend = Backend::echo();
    let log = LogFile::new();
    let stats_port = free_port();
    let frontend = "log = true\nlog-format = \"tcplog\"\ndontlognull = true";
    let config = config_with(
        &log.global_entry(),
        frontend,
        &servers(&[backend.addr]),
        stats_port,
        "",
    );
    let proxy = Proxy::start(&config);
    drive(proxy.addr(), 20, 64);
    // Null connections: connect and close without a byte: not logged.
    for _ in 0..5 {
        drop(connect(proxy.addr()));
    }
    let lines = log.wait_for_lines(20);
    for line in &lines {
        assert_tcplog(line, "s1", "64", "--");
    }
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    let v = stats_when(stats, |v| {
        v["frontends"][0]["sessions_total"] == 25 && v["frontends"][0]["sessions_cur"] == 0
    });
    assert_eq!(v["process"]["log_lines"], 20);
    assert_eq!(v["process"]["log_dropped"], 0);
    let (status, stderr) = proxy.stop();
    assert!(status.success(), "{stderr}");
    assert_eq!(log.read().lines().count(), 20, "null connections logged");

    // A refused server is logged with SC and -1 for the connect time.
    let log2 = LogFile::new();
    let dead = closed_addr();
    let backend = format!("retries = 0\n{}", servers(&[dead]));
    let config = config_with(
        &log2.global_entry(),
        "log = true\ndontlognull = true",
        &backend,
        free_port(),
        "",
    );
    let proxy = Proxy::start(&config);
    let mut s = connect(proxy.addr());
    let _ = read_to_end_or_error(&mut s);
    let lines = log2.wait_for_lines(1);
    assert_tcplog(&lines[0], "s1", "0", "SC");
    assert!(lines[0].contains("/-1/"), "{}", lines[0]);
    drop(proxy);
}

#[test]
fn json_log_lines_parse() {
    let backend = Backend::echo();
    let log = LogFile::new();
    let config = config_with(
        &log.global_entry(),
        "log = true\nlog-format = \"json\"",
        &servers(&[backend.addr]),
        free_port(),
        "",
    );
    let proxy = Proxy::start(&config);
    drive(proxy.addr(), 3, 33);
    let lines = log.wait_for_lines(3);
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["frontend"], "fe");
        assert_eq!(v["backend"], "be");
        assert_eq!(v["server"], "s1");
        assert_eq!(v["bytes_read"], 33);
        assert_eq!(v["bytes_uploaded"], 33);
        assert_eq!(v["termination_state"], "--");
        assert_eq!(v["client_ip"], "127.0.0.1");
        assert!(v["tt"].as_i64().unwrap() >= 0);
    }
    drop(proxy);
}

#[test]
fn syslog_over_udp_in_rfc3164_and_rfc5424() {
    let receiver_3164 = UdpSocket::bind("127.0.0.1:0").unwrap();
    let receiver_5424 = UdpSocket::bind("127.0.0.1:0").unwrap();
    for r in [&receiver_3164, &receiver_5424] {
        r.set_read_timeout(Some(PATIENCE)).unwrap();
    }
    let backend = Backend::echo();
    let global = format!(
        "log = [{{ target = \"udp://{}\", facility = \"local3\" }}, {{ target = \"udp://{}\", format = \"rfc5424\", tag = \"lb\" }}]",
        receiver_3164.local_addr().unwrap(),
        receiver_5424.local_addr().unwrap()
    );
    let config = config_with(
        &global,
        "log = true",
        &servers(&[backend.addr]),
        free_port(),
        "",
    );
    let proxy = Proxy::start(&config);
    drive(proxy.addr(), 2, 5);
    let pid = proxy.pid();
    let mut buf = [0u8; 2048];
    for _ in 0..2 {
        let n = receiver_3164.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        // local3.info = 19*8+6 = 158; HAProxy's layout: no hostname.
        let prefix = format!("percore[{pid}]: 127.0.0.1:");
        assert!(msg.starts_with("<158>"), "{msg}");
        assert_eq!(msg.as_bytes()[8], b' ', "Mmm dd: {msg}");
        assert_eq!(&msg[20..21 + prefix.len()], format!(" {prefix}"), "{msg}");
        assert!(!msg.ends_with('\n'));
        let line = &msg[21 + prefix.len() - "127.0.0.1:".len()..];
        assert_tcplog(line, "s1", "5", "--");

        let n = receiver_5424.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let f: Vec<&str> = msg.splitn(8, ' ').collect();
        assert_eq!(f[0], "<134>1", "{msg}");
        assert!(
            f[1].len() == 32 && f[1].as_bytes()[10] == b'T',
            "timestamp: {msg}"
        );
        assert!(!f[2].is_empty(), "hostname");
        assert_eq!(f[3], "lb");
        assert_eq!(f[4], pid.to_string());
        assert_eq!((f[5], f[6]), ("-", "-"));
        assert_tcplog(f[7], "s1", "5", "--");
    }
    drop(proxy);
}

#[test]
fn syslog_to_a_unix_datagram_socket_and_after_the_daemon_restarts() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let bind = || {
        let r = UnixDatagram::bind(&path).unwrap();
        r.set_read_timeout(Some(PATIENCE)).unwrap();
        r
    };
    let receiver = bind();
    let backend = Backend::echo();
    let global = format!("log = [\"unix:{}\"]", path.display());
    let config = config_with(
        &global,
        "log = true",
        &servers(&[backend.addr]),
        free_port(),
        "",
    );
    let proxy = Proxy::start(&config);
    let pid = proxy.pid();
    let mut buf = [0u8; 2048];
    let prefix = format!("percore[{pid}]: ");
    let mut check = |receiver: &UnixDatagram, what: &str| {
        let n = receiver
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let msg = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        // local0.info = 16*8+6 = 134, RFC 3164 as for UDP.
        assert!(msg.starts_with("<134>"), "{msg}");
        let at = msg.find(&prefix).expect("the tag");
        assert_tcplog(&msg[at + prefix.len()..], "s1", "5", "--");
    };
    drive(proxy.addr(), 2, 5);
    for i in 0..2 {
        check(&receiver, &format!("line {i}"));
    }
    // The daemon restarts: a new socket at the same path. The writer
    // reconnects when the old one refuses.
    drop(receiver);
    std::fs::remove_file(&path).unwrap();
    let receiver = bind();
    drive(proxy.addr(), 1, 5);
    check(&receiver, "after the restart");
    drop(proxy);
}

#[test]
fn a_syslog_socket_that_appears_later_gets_the_lines_from_then_on() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.sock");
    let backend = Backend::echo();
    let global = format!("log = [\"unix:{}\"]", path.display());
    let config = config_with(
        &global,
        "log = true",
        &servers(&[backend.addr]),
        free_port(),
        "",
    );
    // Starts without the socket (a daemon starting after percore, as at
    // boot); the first lost line is reported once.
    let mut proxy = Proxy::start(&config);
    drive(proxy.addr(), 1, 5);
    proxy.wait_for_stderr("lines are being lost", 1);
    let receiver = UnixDatagram::bind(&path).unwrap();
    receiver.set_read_timeout(Some(PATIENCE)).unwrap();
    drive(proxy.addr(), 1, 5);
    let mut buf = [0u8; 2048];
    let n = receiver.recv(&mut buf).unwrap();
    let msg = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(msg.starts_with("<134>"), "{msg}");
    // A relative path is refused at load.
    let config = config_with(
        "log = [\"unix:log.sock\"]",
        "log = true",
        &servers(&[closed_addr()]),
        free_port(),
        "",
    )
    .replace("{port}", &free_port().to_string());
    let (status, _, stderr) = run_percore(&config, &["--check"]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("is not an absolute path"), "{stderr}");
}

#[test]
fn stats_bind_conflict_fails_start_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let backend = Backend::echo();
    let config = config_with("", "", &servers(&[backend.addr]), port, "")
        .replace("{port}", &free_port().to_string());
    let mut p = Proxy::spawn(&config, &[]);
    let status = p.wait_exit();
    assert!(!status.success());
    assert!(p.stderr().contains("stats: cannot bind"), "{}", p.stderr());
}
