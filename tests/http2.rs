//! HTTP/2 from clients: real clients (curl, nghttp, h2load) over TLS with
//! ALPN and over h2c with prior knowledge, each stream served like an
//! HTTP/1.1 request (rules, persistence, forwardfor, logs, counters), and
//! the known HTTP/2 attacks sent frame by frame (`common::h2raw`): each is
//! refused, counted or bounded, and never reaches a server.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;

use common::h2raw::{self, H2Conn};
use common::http_backend::{http_config, ok, HttpBackend, Reply};
use common::*;

/// A mode http configuration whose frontend has `binds` (TOML list
/// elements, `{port}` for the test port), logs (to the global targets),
/// and has a stats endpoint on `stats`.
fn h2_config(binds: &str, frontend: &str, backend: &str, stats: u16) -> String {
    http_config(&format!("log = true\n{frontend}"), backend).replace(
        "bind = [\"127.0.0.1:{port}\"]",
        &format!("bind = [{binds}]"),
    ) + &format!("\n[stats]\nbind = \"127.0.0.1:{stats}\"\n")
}

struct Setup {
    proxy: Proxy,
    log: LogFile,
    stats: std::net::SocketAddr,
}

/// percore with an h2c bind (`proto = "h2"`) on the test port.
fn h2c(frontend: &str, backend: &str, global: &str) -> Setup {
    let stats_port = free_port();
    let config = h2_config(
        r#"{ addr = "127.0.0.1:{port}", proto = "h2" }"#,
        frontend,
        backend,
        stats_port,
    )
    .replace("maxconn = 1000", &format!("maxconn = 1000\n{global}"));
    let (proxy, log) = Proxy::start_logging(&config);
    Setup {
        proxy,
        log,
        stats: format!("127.0.0.1:{stats_port}").parse().unwrap(),
    }
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_speaks_h2_over_tls_and_http11_on_the_same_bind() {
    assert!(have("curl"), "curl is required (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    let bundle = site_bundle(dir.path());
    let be = HttpBackend::start(|r| ok(&format!("{} {}", r.method, r.target)));
    let config = h2_config(
        &format!(
            r#"{{ addr = "127.0.0.1:{{port}}", ssl = true, crt = "{}", alpn = "h2,http/1.1" }}"#,
            bundle.display()
        ),
        "forwardfor = true\nx-forwarded-proto = true",
        &servers(&[be.addr]),
        free_port(),
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let url = |path: &str| format!("https://h2.test:{}{path}", proxy.port);
    let resolve = format!("h2.test:{}:127.0.0.1", proxy.port);
    let ca = bundle.display().to_string();
    let base = [
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "-w",
        " %{http_version}",
    ];

    let (done, out, err) = curl(&[&base[..], &["--http2", &url("/over/h2?q=1")]].concat());
    assert!(done, "{err}");
    assert_eq!(out, "GET /over/h2?q=1 2");
    let (done, out, err) = curl(&[&base[..], &["--http1.1", &url("/over/h1")]].concat());
    assert!(done, "{err}");
    assert_eq!(out, "GET /over/h1 1.1");
    let (done, out, err) = curl(
        &[
            &base[..],
            &["--http2", "--data-binary", "posted body", &url("/post")],
        ]
        .concat(),
    );
    assert!(done, "{err}");
    assert_eq!(out, "POST /post 2");

    let got = be.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.header("x-forwarded-proto"), Some("https"), "{r:?}");
        assert_eq!(r.header("x-forwarded-for"), Some("127.0.0.1"), "{r:?}");
        assert_eq!(r.header("host"), Some(&*format!("h2.test:{}", proxy.port)));
        assert_eq!(r.minor, 1, "servers get HTTP/1.1");
    }
    assert_eq!(got[2].body, b"posted body");
    assert_eq!(got[2].header("content-length"), Some("11"));

    let lines = log.wait_for_lines(3);
    assert!(
        lines[0].ends_with("\"GET /over/h2?q=1 HTTP/2.0\""),
        "{lines:?}"
    );
    assert!(lines[1].ends_with("\"GET /over/h1 HTTP/1.1\""), "{lines:?}");
    assert!(lines[2].ends_with("\"POST /post HTTP/2.0\""), "{lines:?}");
}

#[test]
fn h2c_streams_share_one_connection_and_one_log_line_each() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    let be = HttpBackend::start(|r| ok(&r.target));
    let s = h2c("", &servers(&[be.addr]), "");
    // One connection, 40 requests, 20 streams at a time.
    let out = Command::new("h2load")
        .args(["-n", "40", "-c", "1", "-m", "20"])
        .arg(format!("http://127.0.0.1:{}/many", s.proxy.port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("40 succeeded"), "{text}");
    assert!(text.contains("40 2xx"), "{text}");
    let v = stats_when(s.stats, |v| v["frontends"][0]["requests_total"] == 40);
    assert_eq!(
        v["frontends"][0]["sessions_total"], 1,
        "one connection: {v}"
    );
    assert_eq!(v["backends"][0]["requests_total"], 40);
    let lines = s.log.wait_for_lines(40);
    assert!(lines.iter().all(|l| l.ends_with("\"GET /many HTTP/2.0\"")));
    // http-reuse safe: after the first stream, idle server connections are
    // shared, so 40 requests took fewer than 40 server connections only if
    // streams were not all concurrent; at most 40 either way.
    assert!(be.accepted() <= 40);

    // curl with prior knowledge; a body with content-length.
    let (done, out, err) = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        "12345",
        &format!("http://127.0.0.1:{}/pk", s.proxy.port),
    ]);
    assert!(done, "{err}");
    assert_eq!(out, "/pk");
    let last = be.received().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), &last.body[..]),
        ("POST", &b"12345"[..])
    );
}

#[test]
fn h2load_many_streams_over_tls() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    let dir = tempfile::tempdir().unwrap();
    let bundle = site_bundle(dir.path());
    let be = HttpBackend::ok();
    let stats = free_port();
    let config = h2_config(
        &format!(
            r#"{{ addr = "127.0.0.1:{{port}}", ssl = true, crt = "{}", alpn = ["h2", "http/1.1"] }}"#,
            bundle.display()
        ),
        "",
        &servers(&[be.addr]),
        stats,
    );
    let (proxy, _log) = Proxy::start_logging(&config);
    let out = Command::new("h2load")
        .args(["-n", "2000", "-c", "4", "-m", "32"])
        .arg(format!("https://127.0.0.1:{}/load", proxy.port))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2000 succeeded"), "{text}");
    assert!(text.contains("Application protocol: h2"), "{text}");
    let stats: std::net::SocketAddr = format!("127.0.0.1:{stats}").parse().unwrap();
    let v = stats_when(stats, |v| v["frontends"][0]["requests_total"] == 2000);
    assert_eq!(v["frontends"][0]["responses"]["2xx"], 2000);
    assert_eq!(v["frontends"][0]["sessions_total"], 4);
}

#[test]
fn bodies_stream_both_ways_with_flow_control() {
    assert!(have("curl"), "curl is required");
    // 3 MiB each way: far beyond every window (64 KiB per stream, 1 MiB
    // per connection), so both directions wait for window updates.
    let big = {
        let mut b = vec![0u8; 3 << 20];
        Pattern::new(7).fill(&mut b);
        b
    };
    let reply = big.clone();
    let be = HttpBackend::start(move |r| {
        if r.method == "POST" {
            ok(&format!(
                "{} {:?}",
                r.body.len(),
                r.header("transfer-encoding")
            ))
        } else {
            Reply::Full(200, vec![], reply.clone())
        }
    });
    let s = h2c("", &servers(&[be.addr]), "");
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("up.bin");
    std::fs::write(&upload, &big).unwrap();
    let url = format!("http://127.0.0.1:{}/data", s.proxy.port);
    let (done, out, err) = curl(&[
        "--http2-prior-knowledge",
        "--data-binary",
        &format!("@{}", upload.display()),
        &url,
    ]);
    assert!(done, "{err}");
    assert_eq!(out, format!("{} None", big.len()));
    assert_eq!(be.received()[0].body, big);

    let down = dir.path().join("down.bin");
    let (done, _, err) = curl(&[
        "--http2-prior-knowledge",
        "-o",
        &down.display().to_string(),
        &url,
    ]);
    assert!(done, "{err}");
    assert!(std::fs::read(&down).unwrap() == big, "download differs");

    // No content-length: DATA frames become chunks, END_STREAM the last.
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let block = h2raw::request_block("POST", "/chunked", &[]);
    c.send(&h2raw::headers(1, &block, false));
    c.send(&h2raw::frame(h2raw::DATA, 0, 1, b"hello "));
    c.send(&h2raw::frame(h2raw::DATA, 0, 1, b"chunked "));
    c.send(&h2raw::frame(h2raw::DATA, h2raw::END_STREAM, 1, b"world"));
    let f = c
        .until(|f| f.kind == h2raw::DATA && f.flags & h2raw::END_STREAM != 0)
        .expect("a response");
    assert_eq!(f.payload, b"19 Some(\"chunked\")");
    let last = be.received().pop().unwrap();
    assert_eq!(last.body, b"hello chunked world");
}

#[test]
fn rules_persistence_and_error_pages_apply_per_stream() {
    assert!(have("curl"), "curl is required");
    let a = HttpBackend::start(|_| ok("a"));
    let b = HttpBackend::start(|_| ok("b"));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("503.http");
    std::fs::write(
        &page,
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\nsorry, h2",
    )
    .unwrap();
    let frontend = r#"http-request = ["deny deny_status 403 if { path_beg /private }", "set-header X-Via-H2 yes"]
http-response = ["set-header X-Served percore"]
use_backend = ["other if { hdr(host) -i other.test }", "gone if { path_beg /gone }"]"#;
    let backend = format!(
        "cookie = \"SRV insert indirect nocache\"\nservers = [{{ name = \"s1\", addr = \"{}\", cookie = \"c1\" }}]\n\n[[backend]]\nname = \"other\"\n{}\n\n[[backend]]\nname = \"gone\"\nretries = 0\nerrorfile = {{ 503 = \"{}\" }}\nservers = [{{ name = \"x\", addr = \"{}\" }}]",
        a.addr,
        servers(&[b.addr]),
        page.display(),
        closed_addr()
    );
    let s = h2c(frontend, &backend, "");
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", s.proxy.port);
    let get = |args: &[&str]| {
        let (done, out, err) = curl(&[&["--http2-prior-knowledge", "-i"], args].concat());
        assert!(done, "{err}");
        out
    };

    let out = get(&[&url("/")]);
    assert!(out.starts_with("HTTP/2 200"), "{out}");
    assert!(out.contains("set-cookie: SRV=c1"), "{out}");
    assert!(out.contains("x-served: percore"), "{out}");
    assert!(!out.to_ascii_lowercase().contains("connection:"), "{out}");
    assert!(out.ends_with("a"), "{out}");
    assert_eq!(a.received()[0].header("x-via-h2"), Some("yes"));

    let out = get(&["-H", "cookie: SRV=c1; x=y", &url("/again")]);
    assert!(!out.contains("set-cookie"), "directed by its cookie: {out}");
    assert_eq!(a.received()[1].header("cookie"), Some("x=y"), "indirect");

    let out = get(&["-H", "host: other.test", &url("/")]);
    assert!(out.ends_with("b"), "use_backend on :authority: {out}");

    let out = get(&[&url("/private/x")]);
    assert!(out.starts_with("HTTP/2 403"), "{out}");
    let out = get(&[&url("/gone")]);
    assert!(out.starts_with("HTTP/2 503"), "{out}");
    assert!(out.ends_with("sorry, h2"), "the backend's errorfile: {out}");

    let lines = s.log.wait_for_lines(5);
    assert!(
        lines[3].contains(" 403 ") && lines[3].ends_with("\"GET /private/x HTTP/2.0\""),
        "{lines:?}"
    );
    assert!(
        lines[4].contains(" 503 ") && lines[4].contains("gone/x"),
        "{lines:?}"
    );
    assert_eq!(a.received().len(), 2, "denied requests reach no server");
}

// --- hostile input, frame by frame ---

/// The connection still serves a good request on stream `id`: its
/// response HEADERS say 200.
fn still_serves(c: &mut H2Conn, id: u32) {
    let block = h2raw::request_block("GET", "/good", &[]);
    assert!(c.send(&h2raw::headers(id, &block, true)));
    let f = c
        .until(|f| f.stream == id && (f.kind == h2raw::HEADERS || f.kind == h2raw::RST_STREAM))
        .expect("an answer");
    assert_eq!(f.kind, h2raw::HEADERS, "{f:?}");
    assert_eq!(f.indexed_status(), Some(200));
}

/// What is wrong, the header block, the DATA that follows it (if any).
type Malformed<'a> = (&'a str, Vec<u8>, Option<&'a [u8]>);

#[test]
fn malformed_requests_are_stream_errors_and_never_forwarded() {
    let be = HttpBackend::ok();
    let s = h2c("", &servers(&[be.addr]), "");
    // RFC 9113 §8.2.1 and §8.3: the h2 crate ends the whole connection
    // for these two (GOAWAY PROTOCOL_ERROR, stricter than the stream error
    // the RFC asks for; docs/http.md).
    for (what, block) in [
        (
            "uppercase name",
            h2raw::request_block("GET", "/", &[("X-Upper", "1")]),
        ),
        (
            "unknown pseudo-header",
            h2raw::request_block("GET", "/", &[(":foo", "bar")]),
        ),
    ] {
        let mut c = H2Conn::open(s.proxy.addr(), &[]);
        c.send(&h2raw::headers(1, &block, true));
        assert_eq!(c.goaway(), Some(h2raw::PROTOCOL_ERROR), "{what}");
    }
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    // RFC 9113 §8.2.2, §8.3.1, §8.1.1: stream errors, each on its own
    // stream of one connection.
    let cases: Vec<Malformed> = vec![
        (
            "connection-specific",
            h2raw::request_block("GET", "/", &[("connection", "keep-alive")]),
            None,
        ),
        (
            "transfer-encoding",
            h2raw::request_block("GET", "/", &[("transfer-encoding", "chunked")]),
            None,
        ),
        (
            "te other than trailers",
            h2raw::request_block("GET", "/", &[("te", "gzip")]),
            None,
        ),
        (
            "missing :path",
            {
                let mut b = h2raw::literal(":method", b"GET");
                b.extend(h2raw::literal(":scheme", b"http"));
                b.extend(h2raw::literal(":authority", b"h2.test"));
                b
            },
            None,
        ),
        (
            "pseudo-header after a field",
            {
                let mut b = h2raw::request_block("GET", "/", &[("x-a", "1")]);
                b.extend(h2raw::literal(":path", b"/again"));
                b
            },
            None,
        ),
        (
            "content-length above DATA",
            h2raw::request_block("POST", "/", &[("content-length", "5")]),
            Some(b"abc"),
        ),
        (
            "content-length below DATA",
            h2raw::request_block("POST", "/", &[("content-length", "2")]),
            Some(b"abc"),
        ),
    ];
    let mut id = 1;
    for (what, block, data) in &cases {
        assert!(c.send(&h2raw::headers(id, block, data.is_none())));
        if let Some(data) = data {
            c.send(&h2raw::frame(h2raw::DATA, h2raw::END_STREAM, id, data));
        }
        let f = c
            .until(|f| f.stream == id && f.kind == h2raw::RST_STREAM)
            .unwrap_or_else(|| panic!("{what}: connection ended"));
        assert_eq!(f.error_code(), Some(h2raw::PROTOCOL_ERROR), "{what}");
        id += 2;
    }
    // Refused by percore itself (not the h2 crate): counted and logged.
    let mismatch = h2raw::request_block("GET", "/", &[("host", "elsewhere.test")]);
    c.send(&h2raw::headers(id, &mismatch, true));
    let f = c
        .until(|f| f.stream == id && f.kind == h2raw::RST_STREAM)
        .unwrap();
    assert_eq!(f.error_code(), Some(h2raw::PROTOCOL_ERROR));
    id += 2;
    let connect = {
        let mut b = h2raw::literal(":method", b"CONNECT");
        b.extend(h2raw::literal(":authority", b"h2.test:443"));
        b
    };
    c.send(&h2raw::headers(id, &connect, false));
    let f = c
        .until(|f| f.stream == id && f.kind == h2raw::RST_STREAM)
        .unwrap();
    assert_eq!(f.error_code(), Some(h2raw::REFUSED_STREAM));
    id += 2;

    still_serves(&mut c, id);
    let got = be.received();
    assert_eq!(got.len(), 1, "only the good request arrived: {got:?}");
    assert_eq!(got[0].target, "/good");
    // A stream whose content-length and DATA disagree may already have
    // been counted as a request (its head goes to a server as soon as it
    // arrives, as HAProxy's does) before h2 finds the disagreement and
    // resets it: the server then sees a request cut short, never a
    // complete one (checked above). How often depends on whether HEADERS
    // and DATA were read together, so the count is a range.
    let v = stats_when(s.stats, |v| {
        v["frontends"][0]["h2_streams_refused"] == 2 && v["frontends"][0]["responses"]["2xx"] == 1
    });
    let requests = v["frontends"][0]["requests_total"].as_u64().unwrap_or(0);
    assert!((1..=3).contains(&requests), "{v}");
    assert_eq!(v["frontends"][0]["h2_connection_errors"], 2, "{v}");
    let lines = s.log.wait_for_lines(5);
    let goaways = lines
        .iter()
        .filter(|l| l.ends_with("HTTP/2 connection error (GOAWAY PROTOCOL_ERROR sent)"));
    assert_eq!(goaways.count(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("HTTP/2 stream refused (Host disagrees with :authority)")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("HTTP/2 stream refused (CONNECT over HTTP/2 is not supported)")),
        "{lines:?}"
    );
}

/// A backend whose answers wait until the test drops the guard.
fn held_backend() -> (HttpBackend, std::sync::MutexGuard<'static, ()>) {
    let gate: &'static Mutex<()> = Box::leak(Box::new(Mutex::new(())));
    let held = gate.lock().unwrap();
    let be = HttpBackend::start(move |_| {
        drop(gate.lock().unwrap());
        ok("released")
    });
    (be, held)
}

#[test]
fn concurrent_streams_and_header_list_are_limited() {
    let (be, held) = held_backend();
    let s = h2c(
        "",
        &servers(&[be.addr]),
        "tune.h2 = { max-concurrent-streams = 2 }\ntune.bufsize = 4096",
    );
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let settings = c.until(|f| f.kind == h2raw::SETTINGS).unwrap();
    // SETTINGS_MAX_CONCURRENT_STREAMS (3) = 2 is announced.
    assert!(
        settings.payload.chunks(6).any(|s| s == [0, 3, 0, 0, 0, 2]),
        "{settings:?}"
    );
    let block = h2raw::request_block("GET", "/held", &[]);
    for id in [1, 3, 5] {
        c.send(&h2raw::headers(id, &block, true));
    }
    let f = c.until(|f| f.kind == h2raw::RST_STREAM).unwrap();
    assert_eq!((f.stream, f.error_code()), (5, Some(h2raw::REFUSED_STREAM)));
    // A header list beyond tune.bufsize: 431 (HEADERS), then the stream is
    // refused; never forwarded.
    let mut other = H2Conn::open(s.proxy.addr(), &[]);
    let big = "x".repeat(5000);
    let block = h2raw::request_block("GET", "/big", &[("x-big", &big)]);
    other.send(&h2raw::headers(1, &block, true));
    let f = other.until(|f| f.stream == 1).unwrap();
    assert_eq!(f.kind, h2raw::HEADERS, "{f:?}");
    drop(held);
    let mut done = HashSet::new();
    while done.len() < 2 {
        let f = c
            .until(|f| f.kind == h2raw::DATA && f.flags & h2raw::END_STREAM != 0)
            .unwrap();
        done.insert(f.stream);
    }
    assert_eq!(done, HashSet::from([1, 3]));
    assert_eq!(be.received().len(), 2);
}

#[test]
fn rapid_reset_ends_with_enhance_your_calm_and_few_server_requests() {
    let be = HttpBackend::ok();
    let s = h2c("", &servers(&[be.addr]), "");
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    // CVE-2023-44487: thousands of streams opened and cancelled at once.
    let block = h2raw::request_block("GET", "/reset", &[]);
    let mut burst = Vec::new();
    for i in 0..5000u32 {
        let id = 2 * i + 1;
        burst.extend(h2raw::headers(id, &block, true));
        burst.extend(h2raw::rst_stream(id, h2raw::CANCEL));
    }
    let writer = {
        let mut sock = c.sock.try_clone().unwrap();
        thread::spawn(move || {
            use std::io::Write;
            let _ = sock.write_all(&burst);
        })
    };
    assert_eq!(c.goaway(), Some(h2raw::ENHANCE_YOUR_CALM));
    writer.join().unwrap();
    let served = be.received().len();
    eprintln!("5000 streams opened and reset: {served} server requests");
    assert!(served < 150, "{served} server requests");
    let v = stats_when(s.stats, |v| v["frontends"][0]["h2_connection_errors"] == 1);
    assert!(
        v["frontends"][0]["requests_total"].as_u64().unwrap() < 150,
        "{v}"
    );
    let lines = s.log.wait_for_lines(1);
    eprintln!("{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("HTTP/2 connection error")),
        "{lines:?}"
    );
}

#[test]
fn streams_reset_after_they_reached_a_server_are_bounded_too() {
    // Each stream is reset only once its request reached the server (so
    // h2 had accepted it): the slot it held in SETTINGS_MAX_CONCURRENT_
    // STREAMS is free again for h2, but percore takes no new stream while
    // `max-concurrent-streams` requests are still being served; what the
    // client opens and resets meanwhile ends the connection.
    let (be, held) = held_backend();
    let s = h2c(
        "",
        &servers(&[be.addr]),
        "tune.h2 = { max-concurrent-streams = 8 }",
    );
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let block = h2raw::request_block("GET", "/slow", &[]);
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut id = 1;
    let mut reached = 0;
    let end = loop {
        if !c.send(&h2raw::headers(id, &block, true)) {
            break None;
        }
        if reached < 8 {
            // Wait for the request to reach the server, then cancel it.
            while be.accepted() == reached {
                assert!(std::time::Instant::now() < deadline, "no server request");
                thread::sleep(std::time::Duration::from_millis(5));
            }
            reached += 1;
        }
        if !c.send(&h2raw::rst_stream(id, h2raw::CANCEL)) {
            break None;
        }
        id += 2;
        if id > 2001 {
            break c.goaway();
        }
    };
    let end = end.or_else(|| c.goaway());
    assert_eq!(end, Some(h2raw::ENHANCE_YOUR_CALM));
    assert_eq!(be.accepted(), 8, "server requests: max-concurrent-streams");
    drop(held);
}

#[test]
fn cancelling_most_streams_mid_response_uses_up_the_budget() {
    // Responses larger than the stream window: each waits for the client,
    // who cancels it once its HEADERS came. A browser cancels a few; a
    // client that cancels more than it completes, past 100, is cut off.
    let be = HttpBackend::start(|_| Reply::Full(200, vec![], vec![b'r'; 200_000]));
    let s = h2c("", &servers(&[be.addr]), "");
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let block = h2raw::request_block("GET", "/large", &[]);
    let mut id = 1;
    let end = loop {
        if !c.send(&h2raw::headers(id, &block, true)) {
            break c.goaway();
        }
        match c.until(|f| f.stream == id && f.kind == h2raw::HEADERS || f.kind == h2raw::GOAWAY) {
            Some(f) if f.kind == h2raw::GOAWAY => break f.error_code(),
            Some(_) => {}
            None => break None,
        }
        if !c.send(&h2raw::rst_stream(id, h2raw::CANCEL)) {
            break c.goaway();
        }
        id += 2;
        assert!(id < 1000, "never cut off");
    };
    assert_eq!(end, Some(h2raw::ENHANCE_YOUR_CALM));
    let served = be.received().len();
    assert!((100..=110).contains(&served), "{served} server requests");
    let v = stats_when(s.stats, |v| v["frontends"][0]["h2_connection_errors"] == 1);
    assert_eq!(v["frontends"][0]["h2_connection_errors"], 1);
    let lines = s.log.wait_for_lines(served + 1);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("HTTP/2 connection error (rapid reset)")),
        "{lines:?}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn continuation_flood_and_hpack_bomb_are_bounded() {
    let be = HttpBackend::ok();
    let s = h2c("", &servers(&[be.addr]), "");
    let before = rss_kib(s.proxy.pid());

    // CVE-2024-27316: a header block that never ends.
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let mut flood = h2raw::frame(h2raw::HEADERS, 0, 1, &h2raw::request_block("GET", "/", &[]));
    let field = h2raw::literal("x-flood", &[b'a'; 1000]);
    for _ in 0..2000 {
        flood.extend(h2raw::frame(h2raw::CONTINUATION, 0, 1, &field));
    }
    let writer = {
        let mut sock = c.sock.try_clone().unwrap();
        thread::spawn(move || {
            use std::io::Write;
            let _ = sock.write_all(&flood);
        })
    };
    assert_eq!(c.goaway(), Some(h2raw::ENHANCE_YOUR_CALM));
    writer.join().unwrap();

    // HPACK bomb: one 4000-byte entry in the dynamic table, referenced
    // 2000 times (8 MB decoded from 6 KB): 431, nothing forwarded.
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let mut block = h2raw::request_block("GET", "/bomb", &[]);
    block.extend(h2raw::literal_indexed("x-bomb", &[b'b'; 4000]));
    for _ in 0..2000 {
        block.extend(h2raw::indexed(62));
    }
    let mut frames = h2raw::frame(h2raw::HEADERS, 0, 1, &block[..3000]);
    frames.extend(h2raw::frame(
        h2raw::CONTINUATION,
        h2raw::END_HEADERS,
        1,
        &block[3000..],
    ));
    // h2 stops decoding past the header list limit and ends the
    // connection (GOAWAY ENHANCE_YOUR_CALM "header_list_way_too_large").
    c.send(&frames);
    assert_eq!(c.goaway(), Some(h2raw::ENHANCE_YOUR_CALM));
    // A dynamic table size update above what percore announced (4096).
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let mut oversized = vec![0x3f, 0xe1, 0x3f]; // size update to 8192
    oversized.extend(h2raw::request_block("GET", "/", &[]));
    c.send(&h2raw::headers(1, &oversized, true));
    // A connection error; h2 names HPACK decoding errors PROTOCOL_ERROR
    // (RFC 9113 §4.3 says COMPRESSION_ERROR).
    assert_eq!(c.goaway(), Some(h2raw::PROTOCOL_ERROR));

    assert!(be.received().is_empty(), "{:?}", be.received());
    let after = rss_kib(s.proxy.pid());
    eprintln!("RSS before {before} KiB, after the floods {after} KiB");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

#[test]
fn ping_settings_and_window_update_floods_are_bounded() {
    let be = HttpBackend::ok();
    let s = h2c("", &servers(&[be.addr]), "");
    let before = rss_kib(s.proxy.pid());
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    let mut flood = Vec::new();
    for i in 0..30_000u64 {
        flood.extend(h2raw::frame(h2raw::PING, 0, 0, &i.to_be_bytes()));
        flood.extend(h2raw::settings(&[(
            h2raw::SETTINGS_INITIAL_WINDOW_SIZE,
            65_535,
        )]));
        flood.extend(h2raw::window_update(0, 1));
    }
    let writer = {
        let mut sock = c.sock.try_clone().unwrap();
        thread::spawn(move || {
            use std::io::Write;
            let _ = sock.write_all(&flood);
        })
    };
    // The flood is read and answered (or the connection is closed); the
    // client reads all the while, as a flooder must to keep going.
    let mut acks = 0;
    let ended = loop {
        match c.read_frame() {
            Some(f) if f.kind == h2raw::PING && f.flags & h2raw::ACK != 0 => {
                acks += 1;
                if acks == 30_000 {
                    break None;
                }
            }
            Some(f) if f.kind == h2raw::GOAWAY => break f.error_code(),
            Some(_) => {}
            None => break Some(u32::MAX),
        }
    };
    writer.join().unwrap();
    let after = rss_kib(s.proxy.pid());
    eprintln!("PING acks {acks}, end {ended:?}; RSS before {before} KiB, after {after} KiB");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    if ended.is_none() {
        still_serves(&mut c, 1);
    }

    // A window beyond 2^31-1 is a connection error (RFC 9113 §6.9.1).
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    c.send(&h2raw::window_update(0, 0x7fff_ffff));
    assert_eq!(c.goaway(), Some(h2raw::FLOW_CONTROL_ERROR));
    assert!(be.received().len() <= 1);
}

#[test]
fn a_client_that_never_opens_its_window_is_closed_at_timeout_client() {
    let be = HttpBackend::start(|_| Reply::Full(200, vec![], vec![b'z'; 200_000]));
    // timeout client 1s (the shared configuration says 5m).
    let stats = free_port();
    let config = h2_config(
        r#"{ addr = "127.0.0.1:{port}", proto = "h2" }"#,
        "timeout = { client = \"1s\" }",
        &servers(&[be.addr]),
        stats,
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let mut c = H2Conn::open(proxy.addr(), &[(h2raw::SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
    c.send(&h2raw::headers(
        1,
        &h2raw::request_block("GET", "/big", &[]),
        true,
    ));
    let frames = c.drain();
    assert!(
        frames
            .iter()
            .any(|f| f.stream == 1 && f.kind == h2raw::HEADERS),
        "{frames:?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.kind == h2raw::DATA && !f.payload.is_empty()),
        "no window, no DATA"
    );
    // The stream was cut when its write waited `timeout client`, then the
    // idle connection was closed.
    assert!(
        frames
            .iter()
            .any(|f| f.stream == 1 && f.kind == h2raw::RST_STREAM),
        "{frames:?}"
    );
    let lines = log.wait_for_lines(1);
    assert!(
        lines[0].contains(" cD") || lines[0].contains(" CD"),
        "{lines:?}"
    );
}

/// The body of the response on `stream`, once it is complete.
fn body_of(c: &mut H2Conn, stream: u32) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let f = c
            .until(|f| f.stream == stream && (f.kind == h2raw::DATA || f.kind == h2raw::RST_STREAM))
            .expect("a response");
        assert_eq!(f.kind, h2raw::DATA, "{f:?}");
        body.extend_from_slice(&f.payload);
        if f.flags & h2raw::END_STREAM != 0 {
            return body;
        }
    }
}

#[test]
fn show_sess_lists_streams_and_a_reload_applies_to_the_next_stream() {
    let (a, held) = held_backend();
    let b = HttpBackend::start(|_| ok("b"));
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let stats = free_port();
    let log = LogFile::new();
    let config = |server: std::net::SocketAddr| {
        log.added_to(&h2_config(
            r#"{ addr = "127.0.0.1:{port}", proto = "h2" }"#,
            "",
            &servers(&[server]),
            stats,
        ))
        .replace(
            "maxconn = 1000",
            &format!(
                "maxconn = 1000\nstats-socket = [{{ path = \"{}\", level = \"admin\" }}]",
                sock.display()
            ),
        )
    };
    let proxy = Proxy::start(&config(a.addr));
    let mut c = H2Conn::open(proxy.addr(), &[]);
    let block = h2raw::request_block("GET", "/", &[]);
    c.send(&h2raw::headers(1, &block, true));
    // The stream in flight is listed with its server, beside its connection.
    let deadline = std::time::Instant::now() + PATIENCE;
    let listing = loop {
        let listing = socat(&sock, "show sess");
        if listing.contains(" fe=fe be=be srv=s1 ") {
            break listing;
        }
        assert!(std::time::Instant::now() < deadline, "{listing}");
        thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(listing.matches(" fe=fe ").count(), 2, "{listing}");
    drop(held);
    assert_eq!(body_of(&mut c, 1), b"released");

    // Same connection, new configuration: the next stream goes to b.
    let text = config(b.addr).replace("{port}", &proxy.port.to_string());
    std::fs::write(proxy.dir.path().join("percore.toml"), text).unwrap();
    let answer = socat(&sock, "reload");
    assert!(answer.starts_with("Success=1"), "{answer}");
    c.send(&h2raw::headers(3, &block, true));
    assert_eq!(body_of(&mut c, 3), b"b");
    drop(c);
    // The connection counted once, under the generation it ended in.
    let stats: std::net::SocketAddr = format!("127.0.0.1:{stats}").parse().unwrap();
    let v = stats_when(stats, |v| {
        v["frontends"][0]["sessions_cur"] == 0 && v["frontends"][0]["requests_total"] == 2
    });
    assert_eq!(v["frontends"][0]["sessions_total"], 1, "{v}");
}

#[test]
fn chromium_loads_a_page_over_h2() {
    assert!(
        have("chromium"),
        "chromium is required (.ci/run installs it)"
    );
    // The page reports the protocol its own navigation used.
    const PAGE: &str = r#"<!doctype html><html><body><div id="out">pending</div>
<script>
window.addEventListener('load', function () {
  document.getElementById('out').textContent =
    'next-hop:' + performance.getEntries()[0].nextHopProtocol;
});
</script></body></html>"#;
    let be = HttpBackend::start(|_| {
        Reply::Full(
            200,
            vec!["Content-Type: text/html".into()],
            PAGE.as_bytes().to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let bundle = site_bundle(dir.path());
    let config = h2_config(
        &format!(
            r#"{{ addr = "127.0.0.1:{{port}}", ssl = true, crt = "{}", alpn = ["h2", "http/1.1"] }}"#,
            bundle.display()
        ),
        "",
        &servers(&[be.addr]),
        free_port(),
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let profile = dir.path().join("chromium-profile");
    // Headless, as root in CI (no sandbox), trusting the test's
    // self-signed certificate; the virtual time budget lets the load
    // event run before the DOM is printed.
    let out = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("https://127.0.0.1:{}/page", proxy.port))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(r#"<div id="out">next-hop:h2</div>"#),
        "{dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = log.wait_for_lines(1);
    assert!(lines[0].ends_with("\"GET /page HTTP/2.0\""), "{lines:?}");
}

#[test]
fn interim_responses_and_trailers_pass_both_ways() {
    assert!(
        have("nghttp"),
        "nghttp is required (.ci/run installs nghttp2-client)"
    );
    let be = HttpBackend::start(|r| match r.target.as_str() {
        "/early" => Reply::Raw(
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n\
              HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        ),
        "/trailers" => Reply::Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n\
              5\r\nhello\r\n0\r\ngrpc-status: 0\r\nx-t: done\r\n\r\n"
                .to_vec(),
        ),
        _ => ok(&r.trailers.join(",")),
    });
    let s = h2c("", &servers(&[be.addr]), "");
    let nghttp = |path: &str| {
        let out = Command::new("nghttp")
            .args(["-v", "-t", "30"])
            .arg(format!("http://127.0.0.1:{}{path}", s.proxy.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = nghttp("/early");
    assert!(out.contains(":status: 103"), "{out}");
    assert!(out.contains("link: </s.css>; rel=preload"), "{out}");
    assert!(out.contains(":status: 200"), "{out}");
    let out = nghttp("/trailers");
    let data = out.find("recv DATA frame").expect("DATA");
    let trailer = out.rfind("grpc-status: 0").expect("grpc-status trailer");
    assert!(trailer > data, "a trailer, after the body: {out}");
    assert!(out.contains("x-t: done"), "{out}");

    // Request trailers go into the last chunk.
    let mut c = H2Conn::open(s.proxy.addr(), &[]);
    c.send(&h2raw::headers(
        1,
        &h2raw::request_block("POST", "/up", &[]),
        false,
    ));
    c.send(&h2raw::frame(h2raw::DATA, 0, 1, b"body"));
    c.send(&h2raw::headers(
        1,
        &h2raw::literal("x-checksum", b"123"),
        true,
    ));
    assert_eq!(body_of(&mut c, 1), b"x-checksum: 123");
    assert_eq!(be.received().last().unwrap().body, b"body");
}

#[test]
fn a_proxy_header_before_the_preface_names_the_client_of_every_stream() {
    let be = HttpBackend::ok();
    let config = h2_config(
        r#"{ addr = "127.0.0.1:{port}", proto = "h2", accept-proxy = true }"#,
        "forwardfor = true",
        &servers(&[be.addr]),
        free_port(),
    );
    let (proxy, log) = Proxy::start_logging(&config);
    let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 80\r\n";
    let mut c = H2Conn::open_after(proxy.addr(), header, &[]);
    let block = h2raw::request_block("GET", "/pp", &[]);
    for id in [1, 3] {
        c.send(&h2raw::headers(id, &block, true));
        assert_eq!(body_of(&mut c, id), b"ok");
    }
    let got = be.received();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter()
            .all(|r| r.header("x-forwarded-for") == Some("192.0.2.7")),
        "{got:?}"
    );
    let lines = log.wait_for_lines(2);
    assert!(
        lines.iter().all(|l| l.starts_with("192.0.2.7:40000 ")),
        "{lines:?}"
    );
}

// ------------------------------------------------------- HTTP/2 to servers

/// nghttpd (Debian nghttp2-server) serving `index.html` from its own
/// directory, h2c or (with `tls`, a `site_bundle`) TLS, which needs ALPN
/// h2. Its frame log (`-v`) tells which connections came and what they
/// carried. Stopped when dropped.
struct Nghttpd {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Nghttpd {
    fn start(tls: Option<&Path>, extra: &[&str]) -> Nghttpd {
        Self::start_on(free_port(), tls, extra)
    }

    fn start_on(port: u16, tls: Option<&Path>, extra: &[&str]) -> Nghttpd {
        assert!(
            have("nghttpd"),
            "nghttpd is required (.ci/run installs nghttp2-server)"
        );
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("index.html"), "hello over h2\n").unwrap();
        let log = dir.path().join("frames.log");
        let mut cmd = Command::new("nghttpd");
        cmd.arg("-v").arg("-d").arg(&www).args(extra);
        match tls {
            // The bundle holds the key and the certificate.
            Some(bundle) => cmd.arg(port.to_string()).arg(bundle).arg(bundle),
            None => cmd.arg("--no-tls").arg(port.to_string()),
        };
        let child = cmd
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + PATIENCE;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        // A probe connection sends no frame: it is not counted below.
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nghttpd did not start"
            );
            thread::sleep(std::time::Duration::from_millis(20));
        }
        Nghttpd {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn frames(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// HTTP/2 connections the server received: each starts with the
    /// client's SETTINGS (not an ACK).
    fn connections(&self) -> usize {
        self.frames()
            .lines()
            .filter(|l| l.contains("recv SETTINGS frame") && l.contains("flags=0x00"))
            .filter_map(|l| l.split(']').next())
            .collect::<HashSet<_>>()
            .len()
    }
}

impl Drop for Nghttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// percore with an HTTP/1.1 bind (the test port) and an h2c bind, in
/// front of `backend`; returns the proxy, its log and the h2c port.
fn both_binds(backend: &str) -> (Proxy, LogFile, u16) {
    let h2c_port = free_port();
    let config = h2_config(
        &format!(r#""127.0.0.1:{{port}}", {{ addr = "127.0.0.1:{h2c_port}", proto = "h2" }}"#),
        "",
        backend,
        free_port(),
    );
    let (proxy, log) = Proxy::start_logging(&config);
    (proxy, log, h2c_port)
}

#[test]
fn an_h2_server_answers_http11_and_h2_clients_with_trailers_both_ways() {
    assert!(have("curl"), "curl is required");
    let server = Nghttpd::start(None, &["--trailer=x-trail: yes"]);
    // `default-server` gives the protocol, as HAProxy's does.
    let backend = format!(
        "default-server = {{ proto = \"h2\" }}\nservers = [{{ name = \"n1\", addr = \"{}\" }}]",
        server.addr()
    );
    let (proxy, _log, h2c_port) = both_binds(&backend);

    // HTTP/1.1 client: the response trailers arrive in the last chunk.
    let (ok, body, err) = curl(&[
        "--raw",
        "-i",
        &format!("http://127.0.0.1:{}/index.html", proxy.port),
    ]);
    assert!(ok, "{err}");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("hello over h2"), "{body}");
    assert!(body.contains("\r\n0\r\nx-trail: yes\r\n\r\n"), "{body}");

    // HTTP/2 client: as a trailing HEADERS frame.
    let (ok, body, err) = curl(&[
        "-v",
        "--http2-prior-knowledge",
        &format!("http://127.0.0.1:{h2c_port}/index.html"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(body, "hello over h2\n");
    assert!(err.contains("< HTTP/2 200"), "{err}");
    assert!(err.contains("< x-trail: yes"), "{err}");

    // Request trailers: an HTTP/1.1 chunked body's reach the server as a
    // trailing HEADERS frame, after the DATA.
    let mut c = connect(proxy.addr());
    let reply = roundtrip(
        &mut c,
        b"POST /index.html HTTP/1.1\r\nHost: h2.test\r\nTransfer-Encoding: chunked\r\n\
          Trailer: x-req-trail\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n0\r\nx-req-trail: 42\r\n\r\n",
    );
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let frames = server.frames();
    let data = frames
        .find("recv DATA frame <length=5")
        .expect("the body's DATA");
    let trailer = frames.find("x-req-trail: 42").expect("the request trailer");
    assert!(data < trailer, "{frames}");
}

#[test]
fn concurrent_requests_share_few_h2_server_connections() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    let server = Nghttpd::start(None, &[]);
    let backend = format!(
        "servers = [{{ name = \"n1\", addr = \"{}\", proto = \"h2\" }}]",
        server.addr()
    );
    let (proxy, _log, h2c_port) = both_binds(&backend);
    let run = |args: &[&str]| {
        let out = Command::new("h2load").args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            text.contains("1000 succeeded, 0 failed"),
            "{text}\n{}",
            proxy.stderr()
        );
    };
    // 4 HTTP/2 clients with 25 streams each, then 40 HTTP/1.1 clients:
    // at most 100 requests at once, within the server's limit of 100
    // concurrent streams (nghttpd's SETTINGS_MAX_CONCURRENT_STREAMS).
    let h2c = format!("http://127.0.0.1:{h2c_port}/index.html");
    run(&["-n", "1000", "-c", "4", "-m", "25", &h2c]);
    let h1 = format!("http://127.0.0.1:{}/index.html", proxy.port);
    run(&["--h1", "-n", "1000", "-c", "40", &h1]);
    // One connection carried them (two if it idled out between the runs).
    let conns = server.connections();
    assert!((1..=2).contains(&conns), "{conns} server connections");
}

#[test]
fn an_h2_server_over_tls_is_chosen_by_alpn() {
    assert!(have("curl"), "curl is required");
    let dir = tempfile::tempdir().unwrap();
    let bundle = site_bundle(dir.path());
    // nghttpd over TLS speaks to clients that negotiated h2 only.
    let server = Nghttpd::start(Some(&bundle), &[]);
    let backend = format!(
        "servers = [{{ name = \"n1\", addr = \"{}\", proto = \"h2\", ssl = true, verify = \"none\" }}]",
        server.addr()
    );
    let (proxy, _log, _) = both_binds(&backend);
    let (ok, body, err) = curl(&[&format!("http://127.0.0.1:{}/index.html", proxy.port)]);
    assert!(ok, "{err}\n{}", proxy.stderr());
    assert_eq!(body, "hello over h2\n", "{}", proxy.stderr());
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_dead_h2_server_connection_is_replaced() {
    assert!(have("curl"), "curl is required");
    let server = Nghttpd::start(None, &[]);
    let backend = format!(
        "servers = [{{ name = \"n1\", addr = \"{}\", proto = \"h2\" }}]",
        server.addr()
    );
    let (proxy, _log, _) = both_binds(&backend);
    let url = format!("http://127.0.0.1:{}/index.html", proxy.port);
    let (ok, body, err) = curl(&[&url]);
    assert!(ok && body == "hello over h2\n", "{err}");
    // The server restarts: the pooled connection is dead, whether percore
    // noticed yet or finds out when the next request's stream fails on it
    // (then the request, which has no body, is sent again on a new one).
    let port = server.port;
    drop(server);
    let server = Nghttpd::start_on(port, None, &[]);
    for _ in 0..3 {
        let (ok, body, err) = curl(&[&url]);
        assert!(
            ok && body == "hello over h2\n",
            "{body}{err}\n{}",
            proxy.stderr()
        );
    }
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_full_h2_server_connection_makes_percore_open_another() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    // The server takes 10 streams per connection; 40 requests are kept in
    // flight. Over its limit a server refuses streams (RST_STREAM), so
    // "all succeeded" says percore never went over it.
    let server = Nghttpd::start(None, &["--max-concurrent-streams=10"]);
    let backend = format!(
        "servers = [{{ name = \"n1\", addr = \"{}\", proto = \"h2\" }}]",
        server.addr()
    );
    let (proxy, _log, h2c_port) = both_binds(&backend);
    let out = Command::new("h2load")
        .args(["-n", "400", "-c", "1", "-m", "40"])
        .arg(format!("http://127.0.0.1:{h2c_port}/index.html"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("400 succeeded, 0 failed"),
        "{text}\n{}",
        proxy.stderr()
    );
    // 40 streams at 10 per connection: 4 (measured: 4 nearly every run).
    // A few more when requests come before the streams whose responses
    // they follow have left their connections (one run of the suite saw
    // more than 5 on a loaded machine); fewer when the first connections'
    // streams are answered before the pool has grown to 4 (it grows one
    // connection at a time, and a request waits for a stream meanwhile:
    // a CI run saw 3). Before the pool let only one connection wait for
    // the server's SETTINGS, a loaded machine saw 31 (see the next test,
    // which makes that case certain).
    let conns = server.connections();
    assert!(
        (2..=8).contains(&conns),
        "{conns} server connection(s) for 40 concurrent requests"
    );
    let frames = server.frames();
    assert!(!frames.contains("send RST_STREAM"), "{frames}");
}

/// A TCP relay in front of a server that holds back everything the server
/// sends (its SETTINGS first) until the test opens the gate; then relays
/// both ways, or (`close`) closes every connection instead. Counts the
/// connections it accepted.
struct SlowSettings {
    addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    gate: std::sync::Arc<(Mutex<Option<bool>>, std::sync::Condvar)>,
}

impl SlowSettings {
    fn start(server: std::net::SocketAddr) -> SlowSettings {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Condvar};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        // `None`: held; `Some(close)`: open.
        let gate: Arc<(Mutex<Option<bool>>, Condvar)> =
            Arc::new((Mutex::new(None), Condvar::new()));
        let (count, opened) = (Arc::clone(&accepted), Arc::clone(&gate));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(upstream) = std::net::TcpStream::connect(server) else {
                    continue;
                };
                let (mut up_from, mut up_to) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                thread::spawn(move || {
                    let _ = std::io::copy(&mut up_from, &mut up_to);
                    let _ = up_to.shutdown(std::net::Shutdown::Write);
                });
                let gate = Arc::clone(&opened);
                thread::spawn(move || {
                    let (lock, cv) = &*gate;
                    let mut state = lock.lock().unwrap();
                    while state.is_none() {
                        state = cv.wait(state).unwrap();
                    }
                    let close = state.unwrap_or(false);
                    drop(state);
                    let (mut down_from, mut down_to) = (upstream, client);
                    if close {
                        let _ = down_to.shutdown(std::net::Shutdown::Both);
                        let _ = down_from.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    let _ = std::io::copy(&mut down_from, &mut down_to);
                    let _ = down_to.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        SlowSettings {
            addr,
            accepted,
            gate,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets the server's bytes through (`close`: closes the connections).
    fn open(&self, close: bool) {
        let (lock, cv) = &*self.gate;
        *lock.lock().unwrap() = Some(close);
        cv.notify_all();
    }
}

/// percore with an h2c bind and an admin socket in front of `server`
/// (`proto = "h2"`); returns the proxy, its log, the h2c port and the
/// socket.
fn h2_server_with_socket(
    server: std::net::SocketAddr,
    dir: &Path,
) -> (Proxy, LogFile, u16, PathBuf) {
    let sock = dir.join("admin.sock");
    let h2c_port = free_port();
    let backend = format!("servers = [{{ name = \"n1\", addr = \"{server}\", proto = \"h2\" }}]");
    let config = h2_config(
        &format!(r#""127.0.0.1:{{port}}", {{ addr = "127.0.0.1:{h2c_port}", proto = "h2" }}"#),
        "",
        &backend,
        free_port(),
    )
    .replace(
        "maxconn = 1000",
        &format!(
            "maxconn = 1000\nstats-socket = [{{ path = \"{}\", level = \"admin\" }}]",
            sock.display()
        ),
    );
    let (proxy, log) = Proxy::start_logging(&config);
    (proxy, log, h2c_port, sock)
}

/// Waits until the core has `n` client streams (each a session, beside
/// their client connection's) and `slow` has accepted percore's first
/// server connection.
fn wait_for_streams(sock: &Path, n: usize, slow: &SlowSettings) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let listing = socat(sock, "show sess");
        if listing.matches(" fe=fe ").count() > n && slow.accepted() > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{listing}");
        thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs h2load, `requests` in all with `n` streams at a time on one
/// connection, through `proxy` to a server behind `slow`, holding the
/// server's bytes until `n` streams are in percore (one server connection
/// open by then), then letting them through (`close`: closing the
/// connections instead). Returns h2load's report.
fn h2load_behind_held_settings(
    (proxy, h2c_port, sock): (&Proxy, u16, &Path),
    slow: &SlowSettings,
    (requests, n): (usize, usize),
    close: bool,
) -> String {
    let h2load = Command::new("h2load")
        .args(["-n", &requests.to_string(), "-c", "1", "-m", &n.to_string()])
        .arg(format!("http://127.0.0.1:{h2c_port}/index.html"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_streams(sock, n, slow);
    assert_eq!(slow.accepted(), 1, "{}", proxy.stderr());
    slow.open(close);
    let out = h2load.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn requests_wait_for_the_one_connection_that_has_not_had_the_servers_settings() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    // What a loaded machine does by chance, made certain: the server's
    // SETTINGS (10 streams per connection) come only once all 40 requests
    // are in percore. The requests past the first wait for them on the
    // one connection; then the pool grows one connection at a time, to 4
    // unless the first connections' streams are answered before it got
    // there (a CI run saw 3; see the test above). Before, all 40 streams
    // went out on the first connection ahead of the SETTINGS, the server
    // refused 30, and each refused request connected its own: 31
    // connections.
    let server = Nghttpd::start(None, &["--max-concurrent-streams=10"]);
    let slow = SlowSettings::start(server.addr());
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _log, h2c_port, sock) = h2_server_with_socket(slow.addr, dir.path());
    let text = h2load_behind_held_settings((&proxy, h2c_port, &sock), &slow, (400, 40), false);
    assert!(
        text.contains("400 succeeded, 0 failed"),
        "{text}\n{}",
        proxy.stderr()
    );
    let conns = server.connections();
    assert!(
        (2..=8).contains(&conns),
        "{conns} server connection(s) for 40 concurrent requests"
    );
    assert_eq!(slow.accepted(), conns);
    let frames = server.frames();
    assert!(!frames.contains("send RST_STREAM"), "{frames}");
}

#[test]
fn requests_waiting_for_settings_get_an_error_when_the_connection_fails() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    // The server's connections close before its SETTINGS: every request
    // gets a 5xx page from percore (none is left without an answer), and
    // the waiting requests connect again one at a time, never more
    // connections than requests.
    let server = Nghttpd::start(None, &["--max-concurrent-streams=10"]);
    let slow = SlowSettings::start(server.addr());
    let dir = tempfile::tempdir().unwrap();
    let (proxy, _log, h2c_port, sock) = h2_server_with_socket(slow.addr, dir.path());
    let text = h2load_behind_held_settings((&proxy, h2c_port, &sock), &slow, (20, 20), true);
    assert!(
        text.contains("status codes: 0 2xx, 0 3xx, 0 4xx, 20 5xx"),
        "{text}\n{}",
        proxy.stderr()
    );
    assert!(slow.accepted() <= 20, "{}", slow.accepted());
}

#[test]
fn requests_waiting_for_settings_that_never_come_get_503_within_the_timeouts() {
    assert!(
        have("h2load"),
        "h2load is required (.ci/run installs nghttp2-client)"
    );
    // The server connects and says nothing: the requests waiting for its
    // SETTINGS give up after `timeout queue` (here `timeout connect`, 2 s)
    // with a 503, and the connection is closed after `timeout connect`
    // (its one stream gets an error page too).
    let server = Nghttpd::start(None, &[]);
    let slow = SlowSettings::start(server.addr());
    let dir = tempfile::tempdir().unwrap();
    let (mut proxy, log, h2c_port, _sock) = h2_server_with_socket(slow.addr, dir.path());
    let out = Command::new("h2load")
        .args(["-n", "5", "-c", "1", "-m", "5"])
        .arg(format!("http://127.0.0.1:{h2c_port}/index.html"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("status codes: 0 2xx, 0 3xx, 0 4xx, 5 5xx"),
        "{text}\n{}",
        proxy.stderr()
    );
    proxy.wait_for_stderr("no HTTP/2 SETTINGS from the server", 1);
    // The four waiting requests: 503 sQ; the one stream on the connection:
    // 502 SH when it closed.
    let lines = wait_for_lines(log.path(), 5);
    let queued = lines
        .iter()
        .filter(|l| l.contains(" be/<NOSRV> ") && l.contains(" 503 ") && l.contains(" sQ--"))
        .count();
    assert_eq!(queued, 4, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" be/n1 ") && l.contains(" 502 ")),
        "{lines:#?}"
    );
    assert!(slow.accepted() <= 5, "{}", slow.accepted());
    slow.open(true);
}
