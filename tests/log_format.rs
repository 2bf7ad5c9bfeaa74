//! HAProxy's custom `log-format`: the same requests through HAProxy 2.6 (when
//! `haproxy` is installed) and percore, with the same format string, and
//! the log lines compared field by field for the fields that must agree
//! (names, status, bytes, method/URI/version, termination state). Timers,
//! dates, ports and connection counts differ by nature and are not in the
//! compared format.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;

/// Every field a value that should agree, separated by `|` so that empty
/// variables cannot shift fields; `%B` last, compared apart.
const FORMAT: &str =
    "LOG|%f|%ft|%b|%s|%ST|%HM|%HU|%HP|%HQ|%HV|%ts|%tsc|%{+Q}r|%ci|%si:%sp|%CC|%{+Q}ID|%%|%B";

/// (request, what it exercises)
const REQUESTS: &[(&str, &str)] = &[
    (
        "GET /a/b?x=1&y=%22 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "200 with a query",
    ),
    (
        "GET /missing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        "404 from the server",
    ),
    (
        "POST /form HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "POST with a body",
    ),
    ("HEAD / HTTP/1.0\r\n\r\n", "HTTP/1.0 HEAD"),
];

const DEAD: &str = "503, server refused";

/// Sends one request; the bytes of the answer.
fn send(addr: SocketAddr, request: &str) -> u64 {
    let mut s = connect(addr);
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(raw.starts_with(b"HTTP/1."), "{request:?}: {raw:?}");
    raw.len() as u64
}

fn backend() -> HttpBackend {
    HttpBackend::start(|r| {
        if r.target.starts_with("/missing") {
            Reply::Full(404, vec![], b"no such thing".to_vec())
        } else {
            ok("hello, world")
        }
    })
}

/// Waits until `read()` holds `n` lines with a `LOG|...` part (after a
/// syslog header or HAProxy's own words); returns those parts in order.
fn wait_lines(read: impl Fn() -> String, n: usize) -> Vec<String> {
    wait_for_matching_lines(read, |l| l.contains("LOG|"), n)
        .iter()
        .filter_map(|l| l.find("LOG|").map(|at| l[at..].to_string()))
        .collect()
}

/// The log lines and the size of each answer.
type Run = (Vec<String>, Vec<u64>);

fn percore_lines(app: SocketAddr, dead: SocketAddr) -> Run {
    let dead_port = free_port();
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
default_backend = "app"
log = true
dontlognull = true
log-format = '{FORMAT}'

[[frontend]]
name = "fe-dead"
bind = ["127.0.0.1:{dead_port}"]
default_backend = "dead"
log = true
dontlognull = true
log-format = '{FORMAT}'

[[backend]]
name = "app"
servers = [{{ name = "web1", addr = "{app}" }}]

[[backend]]
name = "dead"
retries = 0
servers = [{{ name = "gone", addr = "{dead}" }}]
"#,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let mut sizes: Vec<u64> = REQUESTS
        .iter()
        .map(|(r, _)| send(proxy.addr(), r))
        .collect();
    sizes.push(send(
        format!("127.0.0.1:{dead_port}").parse().unwrap(),
        REQUESTS[0].0,
    ));
    let lines = wait_lines(|| log.read(), REQUESTS.len() + 1);
    (lines, sizes)
}

fn haproxy_lines(app: SocketAddr, dead: SocketAddr) -> Option<Run> {
    let dead_port = free_port();
    let config = format!(
        r#"
global
    log stderr format raw local0

defaults
    mode http
    log global
    option dontlognull
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe
    bind 127.0.0.1:{{port}}
    log-format "{FORMAT}"
    default_backend app

frontend fe-dead
    bind 127.0.0.1:{dead_port}
    log-format "{FORMAT}"
    default_backend dead

backend app
    server web1 {app}

backend dead
    retries 0
    server gone {dead}
"#
    );
    let h = common::haproxy::start(&config)?;
    let addr: SocketAddr = format!("127.0.0.1:{}", h.port).parse().unwrap();
    let mut sizes: Vec<u64> = REQUESTS.iter().map(|(r, _)| send(addr, r)).collect();
    sizes.push(send(
        format!("127.0.0.1:{dead_port}").parse().unwrap(),
        REQUESTS[0].0,
    ));
    Some((wait_lines(|| h.stderr(), REQUESTS.len() + 1), sizes))
}

#[test]
fn custom_format_lines_match_haproxy_field_by_field() {
    let app = backend();
    let dead = closed_addr();
    let (ours, our_sizes) = percore_lines(app.addr, dead);
    let Some((theirs, their_sizes)) = haproxy_lines(app.addr, dead) else {
        eprintln!("haproxy is not installed: differential part skipped");
        // percore alone: the lines are still checked against what is known.
        assert!(
            ours[0].starts_with("LOG|fe|fe|app|web1|200|GET|"),
            "{}",
            ours[0]
        );
        assert!(
            ours[0].ends_with(&format!("|%|{}", our_sizes[0])),
            "{}",
            ours[0]
        );
        return;
    };
    let what: Vec<&str> = REQUESTS.iter().map(|(_, w)| *w).chain([DEAD]).collect();
    let sizes = our_sizes.iter().zip(&their_sizes);
    for (((ours, theirs), what), (our_size, their_size)) in
        ours.iter().zip(&theirs).zip(what).zip(sizes)
    {
        let a: Vec<&str> = ours.split('|').collect();
        let b: Vec<&str> = theirs.split('|').collect();
        assert_eq!(
            a.len(),
            b.len(),
            "{what}:\n percore {ours}\n haproxy {theirs}"
        );
        // %B: percore logs the bytes the client received; HAProxy 2.6 logs
        // 8 fewer (it counts the response head in its internal HTX form).
        // Each is checked against what its own client received, since the
        // answers themselves may differ (HAProxy adds `connection: close`
        // to an HTTP/1.0 answer, percore does not).
        let (Some(x), Some(y)) = (a.last(), b.last()) else {
            unreachable!("split yields at least one field")
        };
        assert_eq!(x.parse::<u64>().unwrap(), *our_size, "{what}: percore %B");
        // (HAProxy's own error page is counted differently again: left out.)
        // HAProxy's own count is only bounded: usually 8 below what its
        // client received, but a loaded CI run saw 20 below for the POST
        // (49 of 69); it is HAProxy's figure, not percore's, under test.
        if what != DEAD {
            let logged = y.parse::<u64>().unwrap();
            assert!(
                logged + 8 <= *their_size && logged > 0,
                "{what}: haproxy %B {logged}, its client received {their_size}"
            );
        }
        let n = a.len() - 1;
        for (i, (x, y)) in a[..n].iter().zip(&b[..n]).enumerate() {
            assert_eq!(
                x, y,
                "{what}: field {i} of {FORMAT}\n percore {ours}\n haproxy {theirs}"
            );
        }
    }
}

#[test]
fn a_bad_log_format_is_refused_at_load_with_its_position() {
    let config = r#"
[defaults]
mode = "http"
timeout = { connect = "2s", client = "30s", server = "30s" }

[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
default_backend = "app"
log-format = "%ci %Tx %ST"

[[backend]]
name = "app"
servers = [{ name = "web1", addr = "127.0.0.1:1" }]
"#;
    let (status, _, stderr) = run_percore(config, &["--check"]);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("unknown log variable %Tx"), "{stderr}");
    // Line 10, column of `%Tx` inside the string: 15 + 4.
    assert!(stderr.contains(":10:19"), "{stderr}");
    assert!(
        stderr.contains("did you mean %TR?") || stderr.contains("known: %ci"),
        "{stderr}"
    );
}

#[test]
fn unique_id_reaches_the_server_the_rules_and_the_log() {
    let app = HttpBackend::start(|_| ok("ok"));
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
default_backend = "app"
log = true
dontlognull = true
log-format = 'LOG|%ID|%ST|%HU'
unique-id-format = '%{{+X}}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid%HU'
unique-id-header = "X-Unique-ID"
http-request = ["set-header X-Copy %[unique-id]"]

[[backend]]
name = "app"
servers = [{{ name = "web1", addr = "{app}" }}]
"#,
        app = app.addr,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    for path in ["/one", "/two"] {
        send(
            proxy.addr(),
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        );
    }
    let lines = wait_lines(|| log.read(), 2);
    let received = app.received();
    assert_eq!(received.len(), 2);
    let mut ids = Vec::new();
    for (line, req) in lines.iter().zip(&received) {
        let id = req.header("X-Unique-ID").expect("the unique-id-header");
        // `%{+X}o`: addresses and ports in hexadecimal; `%HU` last.
        assert!(id.starts_with("7F000001:"), "{id}");
        assert!(id.ends_with(&req.target), "{id}");
        assert_eq!(req.header("X-Copy"), Some(id), "the unique-id fetch");
        assert_eq!(line, &format!("LOG|{id}|200|{}", req.target));
        ids.push(id.to_string());
    }
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn unique_id_header_without_a_format_and_a_bad_format_are_refused() {
    let base = r#"
[defaults]
mode = "http"
timeout = { connect = "2s", client = "30s", server = "30s" }

[[backend]]
name = "app"
servers = [{ name = "web1", addr = "127.0.0.1:1" }]

[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
default_backend = "app"
"#;
    // (extra lines, expected error, where: line 14 is the first extra)
    for (extra, why, at) in [
        (
            "unique-id-header = \"X-Unique-ID\"",
            "unique-id-header without unique-id-format",
            ":14:20:",
        ),
        (
            "unique-id-format = \"%ci_%bi\"",
            "%bi is not supported",
            ":14:25:",
        ),
        (
            "unique-id-format = \"%ci\"\nunique-id-header = \"X Bad\"",
            "invalid header name",
            ":15:20:",
        ),
    ] {
        let (status, _, stderr) = run_percore(&format!("{base}{extra}\n"), &["--check"]);
        assert!(!status.success(), "{extra}: {stderr}");
        assert!(stderr.contains(why), "{extra}: {stderr}");
        assert!(
            stderr.contains(at),
            "{extra}: line and column {at}: {stderr}"
        );
    }
}

#[test]
fn samples_in_log_format_read_the_connection() {
    let app = HttpBackend::start(|_| ok("ok"));
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
default_backend = "app"
log = true
dontlognull = true
log-format = 'LOG|%[src]|%{{+Q}}[var(txn.who),upper]|%[var(txn.none)]|%[dst_port]|%ST'
http-request = ["set-var(txn.who) hdr(host)"]

[[backend]]
name = "app"
servers = [{{ name = "web1", addr = "{app}" }}]
"#,
        app = app.addr,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    send(
        proxy.addr(),
        "GET / HTTP/1.1\r\nHost: alice\r\nConnection: close\r\n\r\n",
    );
    let lines = wait_lines(|| log.read(), 1);
    let port = proxy.addr().port();
    assert_eq!(lines[0], format!("LOG|127.0.0.1|\"ALICE\"|-|{port}|200"));
}

#[test]
fn a_log_format_sample_without_a_value_at_log_time_is_refused() {
    let config = r#"
[defaults]
mode = "http"
timeout = { connect = "2s", client = "30s", server = "30s" }

[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
default_backend = "app"
log-format = "%ci %[hdr(host)]"

[[backend]]
name = "app"
servers = [{ name = "web1", addr = "127.0.0.1:1" }]
"#;
    let (status, _, stderr) = run_percore(config, &["--check"]);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("`hdr(host)` has no value when the log line is written"),
        "{stderr}"
    );
    assert!(stderr.contains(":10:21:"), "{stderr}");
    assert!(stderr.contains("capture-request-header"), "{stderr}");
}

#[test]
fn custom_format_in_mode_tcp() {
    let backend = Backend::echo();
    let config = tcp_config("", &servers(&[backend.addr]))
    .replace(
        "default_backend = \"be\"",
        "default_backend = \"be\"\nlog = true\ndontlognull = true\nlog-format = 'LOG|%ci|%f|%ft|%b/%s|%B|%U|%ts|%[dst_port]|%ST|%r|%HM|%{+Q}ID'",
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let mut s = connect(proxy.addr());
    assert_eq!(roundtrip(&mut s, b"hello"), b"hello");
    drop(s);
    let lines = wait_lines(|| log.read(), 1);
    let port = proxy.addr().port();
    // HTTP variables in a tcp session: `-`, -1 for the status, `""` quoted.
    assert_eq!(
        lines[0],
        format!("LOG|127.0.0.1|fe|fe|be/s1|5|5|--|{port}|-1|-|-|\"\"")
    );
}
