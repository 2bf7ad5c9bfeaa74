//! Mode http feeding the stats and the access log: exact merged counters
//! across all cores, `/metrics` through promtool, one httplog/JSON line
//! per request with its status, server, request line, captured header and
//! termination state. Real binary, real sockets; no timing assertions.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

fn cpus() -> usize {
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

/// Sends `requests` on one connection (keep-alive), reading each answer;
/// returns the statuses and the bytes sent and received.
fn keep_alive(proxy: SocketAddr, requests: &[String]) -> (Vec<u16>, u64, u64) {
    let s = connect(proxy);
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut rd = BufReader::new(s);
    let (mut statuses, mut sent, mut received) = (Vec::new(), 0u64, 0u64);
    for req in requests {
        w.write_all(req.as_bytes()).unwrap();
        sent += req.len() as u64;
        let (status, head, body) = read_response(&mut rd, false).expect("a response");
        received += (head.len() + body.len()) as u64;
        statuses.push(status);
    }
    (statuses, sent, received)
}

/// A request the proxy answers with an error page and closes: (status,
/// bytes sent, bytes received).
fn closing(proxy: SocketAddr, req: &str) -> (u16, u64, u64) {
    let mut s = connect(proxy);
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let (raw, err) = read_to_end_or_error(&mut s);
    assert!(err.is_none(), "{err:?}");
    let text = String::from_utf8_lossy(&raw);
    (
        text[9..12].parse().unwrap(),
        req.len() as u64,
        raw.len() as u64,
    )
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nUser-Agent: t\r\n\r\n")
}

#[test]
fn http_counters_and_log_lines_add_up_over_all_cores() {
    let app = HttpBackend::start(|r| {
        if r.target.starts_with("/missing") {
            Reply::Full(404, vec![], b"no such thing".to_vec())
        } else {
            ok("hello")
        }
    });
    let dead = closed_addr();
    let stats_port = free_port();
    let dead_port = free_port();
    let config = format!(
        r#"
[global]
threads = "auto"
maxconn = 2000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "app"
log = true
log-format = "httplog"
capture-request-header = [{{ name = "Host", len = 32 }}]

[[frontend]]
name = "fe-dead"
bind = ["127.0.0.1:{dead_port}"]
default_backend = "dead"
log = true
log-format = "httplog"

[[backend]]
name = "app"
servers = [{{ name = "web1", addr = "{app}" }}]

[[backend]]
name = "dead"
retries = 0
servers = [{{ name = "gone", addr = "{dead}" }}]

[stats]
bind = "127.0.0.1:{stats_port}"
"#,
        app = app.addr,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let proxy_addr = proxy.addr();
    let dead_fe: SocketAddr = format!("127.0.0.1:{dead_port}").parse().unwrap();
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();

    // 8 client threads, so SO_REUSEPORT spreads the connections over the
    // cores: per thread 5 keep-alive connections of 3 × 200, 4 of 1 × 404
    // and 3 requests to the dead backend (503 each).
    let threads = 8u64;
    let (ok_conns, ok_per_conn, missing_conns, dead_reqs) = (5u64, 3u64, 4u64, 3u64);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let (mut fe_in, mut fe_out, mut dead_in, mut dead_out) = (0, 0, 0, 0);
                for _ in 0..ok_conns {
                    let reqs: Vec<String> =
                        (0..ok_per_conn).map(|i| get(&format!("/ok/{i}"))).collect();
                    let (statuses, i, o) = keep_alive(proxy_addr, &reqs);
                    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
                    fe_in += i;
                    fe_out += o;
                }
                for _ in 0..missing_conns {
                    let (statuses, i, o) = keep_alive(proxy_addr, &[get("/missing")]);
                    assert_eq!(statuses, [404]);
                    fe_in += i;
                    fe_out += o;
                }
                for _ in 0..dead_reqs {
                    let (status, i, o) = closing(dead_fe, &get("/x"));
                    assert_eq!(status, 503);
                    dead_in += i;
                    dead_out += o;
                }
                (fe_in, fe_out, dead_in, dead_out)
            })
        })
        .collect();
    let (mut fe_in, mut fe_out, mut dead_in, mut dead_out) = (0, 0, 0, 0);
    for h in handles {
        let (a, b, c, d) = h.join().unwrap();
        fe_in += a;
        fe_out += b;
        dead_in += c;
        dead_out += d;
    }
    let n200 = threads * ok_conns * ok_per_conn;
    let n404 = threads * missing_conns;
    let n503 = threads * dead_reqs;
    let conns = threads * (ok_conns + missing_conns);

    let v = stats_when(stats, |v| {
        v["frontends"][0]["sessions_cur"] == 0
            && v["frontends"][1]["sessions_cur"] == 0
            && v["frontends"][0]["requests_total"] == n200 + n404
            && v["frontends"][1]["requests_total"] == n503
    });
    let cores = cpus() as u64;
    assert_eq!(v["process"]["cores_answered"], cores, "{v}");

    let fe = &v["frontends"][0];
    assert_eq!(fe["sessions_total"], conns);
    assert_eq!(fe["responses"]["2xx"], n200);
    assert_eq!(fe["responses"]["4xx"], n404);
    assert_eq!(fe["responses"]["5xx"], 0);
    assert_eq!(fe["request_errors"], 0);
    assert_eq!(fe["bytes_in"], fe_in);
    assert_eq!(fe["bytes_out"], fe_out);

    let be = &v["backends"][0];
    assert_eq!(be["requests_total"], n200 + n404);
    assert_eq!(be["responses"]["2xx"], n200);
    assert_eq!(be["responses"]["4xx"], n404);
    assert_eq!(be["sessions_total"], n200 + n404, "one per request");
    assert_eq!(be["sessions_cur"], 0);
    assert_eq!(be["bytes_in"], fe_in);
    assert_eq!(be["bytes_out"], fe_out);
    assert_eq!(be["response_errors"], 0);
    assert_eq!(be["timings"]["response"]["count"], n200 + n404);
    assert_eq!(be["timings"]["total"]["count"], n200 + n404);
    let connects = be["timings"]["connect"]["count"].as_u64().unwrap();
    assert!(
        (1..=n200 + n404).contains(&connects),
        "connect time per new server connection: {connects}"
    );
    let web1 = &be["servers"][0];
    assert_eq!(web1["responses"]["2xx"], n200);
    assert_eq!(web1["responses"]["4xx"], n404);
    assert_eq!(web1["sessions_total"], n200 + n404);
    assert_eq!(web1["bytes_out"], fe_out);

    let fe_dead = &v["frontends"][1];
    assert_eq!(fe_dead["responses"]["5xx"], n503);
    assert_eq!(fe_dead["bytes_in"], dead_in);
    assert_eq!(fe_dead["bytes_out"], dead_out);
    let dead_be = &v["backends"][1];
    assert_eq!(dead_be["requests_total"], n503);
    assert_eq!(dead_be["responses"]["5xx"], n503);
    assert_eq!(dead_be["conn_errors"], n503);
    assert_eq!(dead_be["sessions_total"], 0);
    assert_eq!(dead_be["servers"][0]["conn_errors"], n503);
    assert_eq!(
        dead_be["servers"][0]["responses"]["5xx"], 0,
        "not the server's"
    );

    // One log line per request.
    let lines = log.wait_for_lines((n200 + n404 + n503) as usize);
    let field = |line: &str, i: usize| line.split(' ').nth(i).unwrap().to_string();
    let (mut seen200, mut seen404, mut seen503) = (0, 0, 0);
    let mut logged_bytes = 0u64;
    for line in &lines {
        assert!(line.starts_with("127.0.0.1:"), "{line}");
        let f: Vec<&str> = line.split(' ').collect();
        assert!(f[1].starts_with('[') && f[1].ends_with(']'), "{line}");
        let timers: Vec<i64> = f[4].split('/').map(|t| t.parse().unwrap()).collect();
        assert_eq!(timers.len(), 5, "{line}");
        match f[2] {
            "fe" => {
                assert_eq!(f[3], "app/web1", "{line}");
                assert!(timers.iter().all(|&t| t >= 0), "{line}");
                assert_eq!(f[9], "----", "{line}");
                assert_eq!(f[12], "{app.example}", "{line}");
                logged_bytes += f[6].parse::<u64>().unwrap();
                match field(line, 5).as_str() {
                    "200" => {
                        assert!(line.ends_with(" HTTP/1.1\""), "{line}");
                        assert!(line.contains(" \"GET /ok/"), "{line}");
                        seen200 += 1;
                    }
                    "404" => {
                        assert!(line.ends_with(" \"GET /missing HTTP/1.1\""), "{line}");
                        seen404 += 1;
                    }
                    other => panic!("status {other}: {line}"),
                }
            }
            "fe-dead" => {
                assert_eq!(f[3], "dead/gone", "{line}");
                assert_eq!(f[5], "503", "{line}");
                assert_eq!(f[9], "SC--", "{line}");
                assert!(timers[0] >= 0 && timers[1] >= 0, "{line}");
                assert_eq!(&timers[2..4], [-1, -1], "never connected: {line}");
                assert!(line.ends_with(" \"GET /x HTTP/1.1\""), "{line}");
                seen503 += 1;
            }
            other => panic!("frontend {other}: {line}"),
        }
    }
    assert_eq!((seen200, seen404, seen503), (n200, n404, n503));
    assert_eq!(logged_bytes, fe_out, "%B is what each client received");

    // /metrics with HTTP traffic is still valid Prometheus text.
    let (status, body) = plain_get(stats, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(
            "percore_frontend_http_responses_total{{proxy=\"fe\",code=\"2xx\"}} {n200}\n"
        )),
        "{body}"
    );
    assert!(body.contains(&format!(
        "percore_backend_http_requests_total{{proxy=\"app\"}} {}\n",
        n200 + n404
    )));
    assert!(body.contains(&format!(
        "percore_backend_response_time_seconds_count{{proxy=\"app\"}} {}\n",
        n200 + n404
    )));
    promtool_check(&body);
    drop(proxy);
}

fn promtool_check(body: &str) {
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
                "\n\n!!!!!!!! SKIPPED promtool: not installed ({e}); \
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
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed:\n{findings}");
    assert!(findings.trim().is_empty(), "promtool findings:\n{findings}");
}

#[test]
fn http_errors_are_counted_and_logged_with_their_termination_state() {
    let app = HttpBackend::start(|r| match r.target.as_str() {
        "/close" => Reply::Close,
        "/garbage" => Reply::RawClose(b"NOT HTTP AT ALL\r\n\r\n".to_vec()),
        "/slow" => {
            thread::sleep(Duration::from_secs(3));
            ok("late")
        }
        "/fail" => Reply::Full(500, vec![], b"oops".to_vec()),
        // A head, 3 of 10 body bytes, then nothing (the connection stays
        // open, waiting for a request that never comes).
        "/stall" => Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()),
        _ => ok("fine"),
    });
    let stats_port = free_port();
    let config = format!(
        r#"
[global]
threads = 1

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "500ms", http-request = "500ms" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
log = true
log-format = "json"
dontlognull = true
capture-request-header = [{{ name = "X-Trace", len = 4 }}]

[[backend]]
name = "be"
retries = 0
servers = [{{ name = "s1", addr = "{app}" }}]

[stats]
bind = "127.0.0.1:{stats_port}"
"#,
        app = app.addr,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    let addr = proxy.addr();

    let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: h\r\nX-Trace: abcdefgh\r\n\r\n");
    assert_eq!(closing(addr, &req("/close")).0, 502);
    assert_eq!(closing(addr, &req("/garbage")).0, 502);
    assert_eq!(closing(addr, &req("/slow")).0, 504);
    let (statuses, _, _) = keep_alive(addr, &[req("/fail"), req("/fine")]);
    assert_eq!(statuses, [500, 200]);
    // The server stalls in its body: `timeout server` ends it, the client
    // has the head and 3 bytes, then the connection closes.
    {
        let mut s = connect(addr);
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(req("/stall").as_bytes()).unwrap();
        let (raw, _) = read_to_end_or_error(&mut s);
        assert!(raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
        assert!(raw.ends_with(b"\r\n\r\nabc"), "{raw:?}");
    }
    // Missing Host in HTTP/1.1: 400 before any server is involved.
    assert_eq!(closing(addr, "GET /nohost HTTP/1.1\r\n\r\n").0, 400);
    // Half a head, then silence: 408 after `timeout http-request`.
    assert_eq!(closing(addr, "GET /half HTTP/1.1\r\nHo").0, 408);
    // Half a head, then the client leaves.
    {
        let mut s = connect(addr);
        s.write_all(b"GET /gone HTTP/1.1\r\n").unwrap();
    }
    // Connect and say nothing: a 408 that dontlognull keeps out of the log.
    {
        let s = connect(addr);
        let mut rd = BufReader::new(s);
        let (status, _, _) = read_response(&mut rd, false).expect("a 408");
        assert_eq!(status, 408);
    }

    let lines = log.wait_for_lines(9);
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |request: &str| {
        records
            .iter()
            .find(|r| r["request"] == request)
            .unwrap_or_else(|| panic!("no line for {request}: {lines:#?}"))
    };
    let expect = |request: &str, status: i64, state: &str, server: Option<&str>| {
        let r = find(request);
        assert_eq!(r["status"], status, "{r}");
        assert_eq!(r["termination_state"], state, "{r}");
        match server {
            Some(s) => assert_eq!(r["server"], s, "{r}"),
            None => assert!(r["server"].is_null(), "{r}"),
        }
        r.clone()
    };
    let r = expect("GET /close HTTP/1.1", 502, "SH", Some("s1"));
    assert_eq!(r["error"], "server headers: closed", "{r}");
    assert_eq!(r["captured_request_headers"], serde_json::json!(["abcd"]));
    assert_eq!(r["backend"], "be");
    expect("GET /garbage HTTP/1.1", 502, "PH", Some("s1"));
    let r = expect("GET /slow HTTP/1.1", 504, "sH", Some("s1"));
    assert_eq!(r["tr"], -1, "no response head: {r}");
    expect("GET /fail HTTP/1.1", 500, "--", Some("s1"));
    let r = expect("GET /fine HTTP/1.1", 200, "--", Some("s1"));
    assert!(r["tr"].as_i64().unwrap() >= 0, "{r}");
    assert!(r.get("error").is_none(), "{r}");
    // HAProxy: a server timeout in the data phase is `sD` (percore logged
    // `SD` before its errors had one type).
    let r = expect("GET /stall HTTP/1.1", 200, "sD", Some("s1"));
    assert_eq!(r["error"], "server data: timeout", "{r}");
    // Refused before a backend: HAProxy names the frontend as backend.
    let bad: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["request"] == "<BADREQ>")
        .collect();
    let states: Vec<(&serde_json::Value, &serde_json::Value)> = bad
        .iter()
        .map(|r| (&r["status"], &r["termination_state"]))
        .collect();
    assert_eq!(bad.len(), 3, "{lines:#?}");
    for r in &bad {
        assert_eq!(r["backend"], "fe", "{r}");
        assert!(r["server"].is_null(), "{r}");
    }
    for want in [(400, "PR"), (408, "cR"), (-1, "CR")] {
        assert!(
            states.iter().any(|(s, t)| **s == want.0 && **t == want.1),
            "{want:?} in {states:?}"
        );
    }

    let v = stats_when(stats, |v| {
        v["frontends"][0]["sessions_cur"] == 0 && v["frontends"][0]["requests_total"] == 10
    });
    let fe = &v["frontends"][0];
    // 400, 408 (half head), client gone mid-head, 408 on an empty
    // connection.
    assert_eq!(fe["request_errors"], 4, "{v}");
    assert_eq!(fe["responses"]["2xx"], 2);
    assert_eq!(fe["responses"]["4xx"], 3);
    assert_eq!(fe["responses"]["5xx"], 4);
    let be = &v["backends"][0];
    assert_eq!(be["requests_total"], 6);
    assert_eq!(be["response_errors"], 4, "502, 502, 504, stalled body: {v}");
    assert_eq!(be["server_aborts"], 2, "the server closed, stalled: {v}");
    let s1 = &be["servers"][0];
    assert_eq!(s1["responses"]["5xx"], 1, "only the server's own 500");
    assert_eq!(s1["responses"]["2xx"], 2);
    assert_eq!(s1["response_errors"], 4);
    assert_eq!(be["sessions_cur"], 0);
    assert_eq!(v["process"]["log_lines"], 9);
    drop(proxy);
}

#[test]
fn requests_answered_by_rules_are_counted_and_logged() {
    let app = HttpBackend::start(|_| ok("from the server"));
    let stats_port = free_port();
    let config = format!(
        r#"
[global]
threads = 1

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
log = true
log-format = "json"
http-request = [
  "deny deny_status 403 if {{ path_beg /private }}",
  "redirect location /new code 301 if {{ path /old }}",
  "return status 200 content-type text/plain string ok if {{ path /ping }}",
]

[[backend]]
name = "be"
servers = [{{ name = "s1", addr = "{app}" }}]
http-request = ["deny deny_status 429 if {{ path /limited }}"]

[stats]
bind = "127.0.0.1:{stats_port}"
"#,
        app = app.addr,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();
    let addr = proxy.addr();
    let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_eq!(closing(addr, &req("/private/x")).0, 403);
    assert_eq!(closing(addr, &req("/old")).0, 301);
    assert_eq!(closing(addr, &req("/ping")).0, 200);
    assert_eq!(closing(addr, &req("/served")).0, 200);
    assert_eq!(closing(addr, &req("/limited")).0, 429);

    let lines = log.wait_for_lines(5);
    let record = |request: &str| -> serde_json::Value {
        let line = lines
            .iter()
            .find(|l| l.contains(request))
            .unwrap_or_else(|| panic!("no line for {request}: {lines:#?}"));
        serde_json::from_str(line).unwrap()
    };
    let state_of = |request: &str| {
        let r = record(request);
        (r["status"].clone(), r["termination_state"].clone())
    };
    assert_eq!(state_of("GET /private/x"), (403.into(), "PR".into()));
    assert_eq!(state_of("GET /old"), (301.into(), "LR".into()));
    assert_eq!(state_of("GET /ping"), (200.into(), "LR".into()));
    assert_eq!(state_of("GET /served"), (200.into(), "--".into()));
    assert_eq!(state_of("GET /limited"), (429.into(), "PR".into()));
    // HAProxy names the section whose rule denied (checked with 2.6).
    assert_eq!(record("GET /private/x")["backend"], "fe");
    assert_eq!(record("GET /limited")["backend"], "be");

    let v = stats_when(stats, |v| v["frontends"][0]["requests_total"] == 5);
    let fe = &v["frontends"][0];
    assert_eq!(fe["denied_requests"], 2, "{v}");
    assert_eq!(fe["responses"]["4xx"], 2, "{v}");
    assert_eq!(fe["responses"]["3xx"], 1, "{v}");
    assert_eq!(fe["responses"]["2xx"], 2, "{v}");
    assert_eq!(v["backends"][0]["requests_total"], 1, "only /served: {v}");
    drop(proxy);
}
