//! `mode = "http"` end to end: the real binary, curl and raw sockets as
//! clients, a threaded HTTP/1.1 server as backend.

mod common;

use common::http_backend::*;
use common::*;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::Duration;

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is installed (.ci/run installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn servers_of(backends: &[&HttpBackend]) -> String {
    servers(&backends.iter().map(|b| b.addr).collect::<Vec<_>>())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Sends `req` on `s` and reads one response.
fn ask(rd: &mut BufReader<TcpStream>, req: &str) -> (u16, String, Vec<u8>) {
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    read_response(rd, req.starts_with("HEAD ")).expect("a response")
}

fn client(proxy: &Proxy) -> BufReader<TcpStream> {
    BufReader::new(connect(proxy.addr()))
}

#[test]
fn curl_get_and_post_with_forwarded_headers() {
    let be = HttpBackend::start(|r| ok(&format!("{} {} {}", r.method, r.target, r.body.len())));
    let proxy = Proxy::start(&http_config(
        "forwardfor = true\nx-forwarded-proto = true\nx-forwarded-port = true",
        &servers_of(&[&be]),
    ));
    let url = format!("http://{}/hello?x=1", proxy.addr());
    let (out, err) = curl(&[&url]);
    assert_eq!(out, "GET /hello?x=1 0", "{err}");
    let (out, err) = curl(&["-d", "abcdef", &url]);
    assert_eq!(out, "POST /hello?x=1 6", "{err}");
    let got = be.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].body, b"abcdef");
    for r in &got {
        assert_eq!(r.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(r.header("x-forwarded-proto"), Some("http"));
        let port = proxy.port.to_string();
        assert_eq!(r.header("x-forwarded-port"), Some(port.as_str()));
    }
    let (status, err) = proxy.stop();
    assert!(status.success(), "{err}");
}

#[test]
fn forwardfor_except_and_if_none() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config(
        "forwardfor = { except = \"10.0.0.0/8\", header = \"X-Client\", if-none = true }",
        &servers_of(&[&be]),
    ));
    let mut c = client(&proxy);
    ask(&mut c, &get("/a"));
    ask(
        &mut c,
        "GET /b HTTP/1.1\r\nHost: t\r\nX-Client: 1.2.3.4\r\n\r\n",
    );
    let got = be.received();
    assert_eq!(got[0].headers_named("x-client"), ["127.0.0.1"]);
    assert_eq!(got[1].headers_named("x-client"), ["1.2.3.4"], "if-none");
    assert_eq!(got[0].header("x-forwarded-for"), None);

    let proxy = Proxy::start(&http_config(
        "forwardfor = { except = \"127.0.0.0/8\" }",
        &servers_of(&[&be]),
    ));
    let mut c = client(&proxy);
    ask(&mut c, &get("/c"));
    assert_eq!(be.received()[2].header("x-forwarded-for"), None, "except");
}

#[test]
fn keep_alive_uses_one_connection_each_side() {
    let be = HttpBackend::start(|r| ok(&r.target));
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    for i in 0..5 {
        let (status, head, body) = ask(&mut c, &get(&format!("/{i}")));
        assert_eq!(status, 200);
        assert!(!head.to_ascii_lowercase().contains("connection: close"));
        assert_eq!(body, format!("/{i}").as_bytes());
    }
    assert_eq!(be.accepted(), 1);
    assert!(be.received().iter().all(|r| r.conn == 0));
}

/// A keep-alive client that pauses between requests (longer than the
/// 100 ms after which percore lets the idle session's state go and waits
/// with the socket alone) is served as one that does not: same client
/// connection, and its server connection kept, also when it is private
/// (`http-reuse never`).
#[test]
fn keep_alive_pauses_keep_both_connections() {
    for reuse in ["never", "safe"] {
        let be = HttpBackend::start(|r| ok(&r.target));
        let proxy = Proxy::start(&http_config(
            "timeout = { http-keep-alive = \"5s\" }",
            &format!("http-reuse = \"{reuse}\"\n{}", servers_of(&[&be])),
        ));
        let mut c = client(&proxy);
        for i in 0..3 {
            if i > 0 {
                thread::sleep(Duration::from_millis(300));
            }
            let (status, _, body) = ask(&mut c, &get(&format!("/{i}")));
            assert_eq!(
                (status, body),
                (200, format!("/{i}").into_bytes()),
                "{reuse}"
            );
        }
        assert_eq!(
            be.accepted(),
            1,
            "http-reuse {reuse}: one server connection"
        );
        assert!(be.received().iter().all(|r| r.conn == 0), "{reuse}");
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let be = HttpBackend::start(|r| {
        if r.target == "/slow" {
            thread::sleep(Duration::from_millis(50));
        }
        ok(&r.target)
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let batch = format!(
        "{}POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc{}{}",
        get("/slow"),
        get("/fast"),
        "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"
    );
    c.get_mut().write_all(batch.as_bytes()).unwrap();
    for want in ["/slow", "/p", "/fast"] {
        let (status, _, body) = read_response(&mut c, false).unwrap();
        assert_eq!((status, body), (200, want.as_bytes().to_vec()));
    }
    let (status, head, body) = read_response(&mut c, true).unwrap();
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: 2"), "{head}");
    assert!(body.is_empty());
    assert_eq!(be.received()[1].body, b"abc");
}

#[test]
fn http10_closes_unless_keep_alive_is_asked() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    c.get_mut().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let (status, _, body) = read_response(&mut c, false).unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    let (rest, _) = read_to_end_or_error(c.get_mut());
    assert!(rest.is_empty(), "connection closed after a 1.0 response");

    let mut c = client(&proxy);
    for _ in 0..2 {
        let (status, head, _) = ask(&mut c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(status, 200);
        assert!(
            head.to_ascii_lowercase().contains("connection: keep-alive"),
            "{head}"
        );
    }
}

#[test]
fn chunked_bodies_and_trailers_pass_through() {
    let be = HttpBackend::start(|r| {
        assert_eq!(r.body, b"hello world");
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
5;ext=1\r\nabcde\r\n3\r\nfgh\r\n0\r\nX-Sum: 42\r\n\r\n"
                .to_vec(),
        )
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let req = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Req-Trailer: yes\r\n\r\n";
    for _ in 0..2 {
        let (status, head, body) = ask(&mut c, req);
        assert_eq!(status, 200);
        assert_eq!(body, b"abcdefgh");
        assert!(head.contains("trailer> X-Sum: 42"), "{head}");
    }
    assert_eq!(be.received()[0].trailers, ["X-Req-Trailer: yes"]);
    assert_eq!(be.accepted(), 1);
}

#[test]
fn bodiless_responses_keep_framing() {
    let be = HttpBackend::start(|r| match r.target.as_str() {
        "/204" => Reply::Full(204, vec![], vec![]),
        "/304" => Reply::Full(304, vec!["ETag: \"x\"".into()], vec![]),
        _ => ok("body"),
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let (s, head, body) = ask(&mut c, "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((s, body.len()), (200, 0));
    assert!(head.contains("Content-Length: 4"));
    assert_eq!(ask(&mut c, &get("/204")).0, 204);
    assert_eq!(ask(&mut c, &get("/304")).0, 304);
    let (s, _, body) = ask(&mut c, &get("/"));
    assert_eq!((s, body.as_slice()), (200, &b"body"[..]));
    assert_eq!(be.accepted(), 1);
}

#[test]
fn close_delimited_response_reaches_the_client() {
    let be = HttpBackend::start(|_| {
        Reply::RawClose(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end".to_vec(),
        )
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let (s, head, body) = ask(&mut c, &get("/"));
    assert_eq!((s, body.as_slice()), (200, &b"until the end"[..]));
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
}

#[test]
fn expect_100_continue_with_curl() {
    let be = HttpBackend::start(|r| ok(&r.body.len().to_string()));
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, vec![b'x'; 2 << 20]).unwrap();
    let url = format!("http://{}/upload", proxy.addr());
    let data = format!("@{}", file.display());
    let (out, err) = curl(&[
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "30",
        "--data-binary",
        &data,
        "-v",
        &url,
    ]);
    assert_eq!(out, (2 << 20).to_string(), "{err}");
    assert!(err.contains("HTTP/1.1 100 Continue"), "{err}");
    assert_eq!(be.received()[0].header("expect"), Some("100-continue"));
}

#[test]
fn hop_by_hop_headers_are_removed_and_the_rest_kept_in_order() {
    let be = HttpBackend::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nX-B: 1\r\nConnection: X-Secret\r\nX-Secret: s\r\nx-a: 2\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let (_, head, _) = ask(
        &mut c,
        "GET / HTTP/1.1\r\nhost: t\r\nX-Foo: 1\r\nConnection: keep-alive, X-Foo\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nx-lower: v\r\nX-UPPER: V\r\n\r\n",
    );
    let r = &be.received()[0];
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["host", "x-lower", "X-UPPER"], "{:?}", r.headers);
    assert!(
        !head.contains("Keep-Alive") && !head.contains("X-Secret"),
        "{head}"
    );
    let b = head.find("X-B: 1").unwrap();
    let a = head.find("x-a: 2").unwrap();
    assert!(b < a, "{head}");
}

#[test]
fn http_server_close_closes_the_server_side_each_time() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config(
        "",
        &format!("http-server-close = true\n{}", servers_of(&[&be])),
    ));
    let mut c = client(&proxy);
    for _ in 0..3 {
        assert_eq!(ask(&mut c, &get("/")).0, 200);
    }
    assert_eq!(be.accepted(), 3);
    assert!(be
        .received()
        .iter()
        .all(|r| r.header("connection") == Some("close")));
}

/// With `Connection: close` each client connection opens its own server
/// connection (`http-reuse safe`), and nobody can take it afterwards. As in
/// HAProxy 2.6 (its estimate of the connections a server needs), the proxy
/// keeps one idle and closes the rest as their clients leave, instead of
/// holding one per past client.
#[test]
fn closing_clients_leave_no_pile_of_idle_server_connections() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let baseline = proxy.fd_count();
    for i in 0..20 {
        let mut c = client(&proxy);
        let req = format!("GET /{i} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        assert_eq!(ask(&mut c, &req).0, 200);
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the proxy closes after the response");
    }
    assert_eq!(be.accepted(), 20);
    // A session parks or closes its server connection just after the
    // client sees the FIN: wait for the proxy to settle, but not as long
    // as `pool-purge-delay` (5 s), which would close idle ones anyway.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut fds = proxy.fd_count();
    while fds > baseline + 2 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
        fds = proxy.fd_count();
    }
    assert!(
        fds <= baseline + 2,
        "{} descriptors more than at start after 20 closed clients: \
         their server connections were kept idle",
        fds - baseline
    );
}

/// Client A makes one request and leaves; client B then makes two.
fn reuse_run(mode: &str) -> usize {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config(
        "",
        &format!("http-reuse = \"{mode}\"\n{}", servers_of(&[&be])),
    ));
    let mut a = client(&proxy);
    assert_eq!(ask(&mut a, &get("/a")).0, 200);
    drop(a);
    // Let the proxy see A's close and park its server connection.
    thread::sleep(Duration::from_millis(200));
    let mut b = client(&proxy);
    assert_eq!(ask(&mut b, &get("/b1")).0, 200);
    assert_eq!(ask(&mut b, &get("/b2")).0, 200);
    be.accepted()
}

#[test]
fn http_reuse_modes() {
    // always: B's first request takes A's idle connection.
    assert_eq!(reuse_run("always"), 1);
    // safe: B's first request gets its own; its second reuses that one.
    assert_eq!(reuse_run("safe"), 2);
    assert_eq!(reuse_run("never"), 2);
}

#[test]
fn dead_idle_connection_is_replaced_transparently() {
    // The server closes each connection right after answering, without
    // saying so: the proxy's next request on it must go on a new one.
    let be = HttpBackend::start(|_| {
        Reply::RawClose(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    for _ in 0..3 {
        let (s, _, body) = ask(&mut c, &get("/"));
        assert_eq!((s, body.as_slice()), (200, &b"ok"[..]));
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(be.accepted(), 3);
}

#[test]
fn no_server_or_refused_connections_get_503() {
    let proxy = Proxy::start(&http_config(
        "",
        &format!("retries = 1\n{}", servers(&[closed_addr()])),
    ));
    let mut c = client(&proxy);
    let (s, head, body) = ask(&mut c, &get("/"));
    assert_eq!(s, 503);
    assert!(head.contains("connection: close"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("No server is available"));

    let proxy = Proxy::start(&http_config("", "servers = []"));
    let mut c = client(&proxy);
    assert_eq!(ask(&mut c, &get("/")).0, 503);
}

#[test]
fn retries_redispatch_and_balancing_work_per_request() {
    let a = HttpBackend::ok();
    let b = HttpBackend::ok();
    let body = format!(
        "balance = \"roundrobin\"\nretries = 1\nredispatch = true\n{}",
        servers(&[closed_addr(), a.addr, b.addr])
    );
    let proxy = Proxy::start(&http_config("", &body));
    let mut c = client(&proxy);
    for _ in 0..6 {
        assert_eq!(ask(&mut c, &get("/")).0, 200);
    }
    assert_eq!(a.received().len() + b.received().len(), 6);
    assert!(!a.received().is_empty() && !b.received().is_empty());
}

#[test]
fn malformed_response_is_502_and_the_connection_discarded() {
    let be = HttpBackend::start(|r| {
        if r.target == "/bad" {
            Reply::Raw(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx".to_vec(),
            )
        } else {
            ok("fine")
        }
    });
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let (s, _, body) = ask(&mut c, &get("/bad"));
    assert_eq!(s, 502);
    assert!(String::from_utf8_lossy(&body).contains("Bad Gateway"));
    let mut c = client(&proxy);
    assert_eq!(ask(&mut c, &get("/good")).0, 200);
    assert_eq!(be.accepted(), 2, "the bad connection was not reused");
}

#[test]
fn server_timeout_is_504() {
    let be = HttpBackend::start(|_| {
        thread::sleep(Duration::from_secs(3));
        ok("late")
    });
    let cfg = http_config(
        "",
        &format!("timeout = {{ server = \"300ms\" }}\n{}", servers_of(&[&be])),
    );
    let proxy = Proxy::start(&cfg);
    let mut c = client(&proxy);
    let (s, _, body) = ask(&mut c, &get("/"));
    assert_eq!(s, 504);
    assert!(String::from_utf8_lossy(&body).contains("Gateway Time-out"));
}

#[test]
fn slowloris_gets_408_and_idle_keep_alive_is_closed_quietly() {
    let be = HttpBackend::ok();
    let cfg = http_config(
        "timeout = { http-request = \"300ms\", http-keep-alive = \"300ms\" }",
        &servers_of(&[&be]),
    );
    let proxy = Proxy::start(&cfg);
    let mut c = connect(proxy.addr());
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    let (got, _) = read_to_end_or_error(&mut c);
    assert!(
        got.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(be.accepted(), 0);

    let mut c = client(&proxy);
    assert_eq!(ask(&mut c, &get("/")).0, 200);
    let (rest, _) = read_to_end_or_error(c.get_mut());
    assert!(
        rest.is_empty(),
        "closed without a 408 after an idle keep-alive"
    );
}

#[test]
fn errorfile_replaces_the_default_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("503.http");
    std::fs::write(
        &page,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nbe right back\n",
    )
    .unwrap();
    let cfg = http_config(
        "",
        &format!(
            "errorfile = {{ 503 = \"{}\" }}\nservers = []",
            page.display()
        ),
    );
    let proxy = Proxy::start(&cfg);
    let mut c = client(&proxy);
    let (s, head, body) = ask(&mut c, &get("/"));
    assert_eq!((s, body.as_slice()), (503, &b"be right back\n"[..]));
    assert!(head.contains("Content-Type: text/plain"), "{head}");
}

#[test]
fn large_bodies_stream_both_ways() {
    let be =
        HttpBackend::start(|r| Reply::Full(200, vec![], r.body.iter().rev().copied().collect()));
    let proxy = Proxy::start(&http_config("", &servers_of(&[&be])));
    let mut c = client(&proxy);
    let mut body = vec![0u8; 3 << 20];
    Pattern::new(7).fill(&mut body);
    let head = format!(
        "PUT /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.get_mut().write_all(head.as_bytes()).unwrap();
    c.get_mut().write_all(&body).unwrap();
    let (s, _, back) = read_response(&mut c, false).unwrap();
    assert_eq!(s, 200);
    body.reverse();
    assert!(back == body);
    let mut rest = [0u8; 1];
    c.get_mut()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        c.get_mut().read(&mut rest).is_err(),
        "connection still open"
    );
}
