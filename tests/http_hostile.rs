//! Hostile requests over real sockets: each is answered 400 and nothing
//! reaches the backend (no connection, no byte). The same cases are sent
//! to HAProxy 2.6 when `haproxy` is installed, and its answers compared
//! with the table in docs/http.md (the `haproxy` column below).

mod common;

use common::http_backend::*;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Case {
    name: &'static str,
    request: &'static [u8],
    /// What percore answers.
    ours: u16,
    /// What HAProxy 2.6 answers (0: no answer, the connection is closed;
    /// 200: it forwards the request). Differences are explained in
    /// docs/http.md.
    haproxy: u16,
}

const CASES: &[Case] = &[
    Case {
        name: "content-length and transfer-encoding",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
    Case {
        name: "two differing content-length fields",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "content-length list with differing values",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "non-numeric content-length",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "transfer-encoding not ending in chunked",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "transfer-encoding chunked then gzip",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "invalid chunk size",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "overflowing chunk size",
        request: b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "obs-fold",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX-A: one\r\n two\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
    Case {
        name: "NUL in a header value",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
        ours: 400,
        // Forwarded; the test backend refuses it and closes.
        haproxy: 502,
    },
    Case {
        name: "bare CR in a header value",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "LF inside a header value (line without colon)",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\nb\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "invalid header name",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX(A): 1\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "whitespace before the colon",
        request: b"GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "invalid method",
        request: b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "invalid version",
        request: b"GET / HTTP/1.x\r\nHost: t\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "HTTP/2.0 version on an HTTP/1 request line",
        request: b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
    Case {
        name: "absolute-form authority differs from Host",
        request: b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n",
        ours: 400,
        haproxy: 400,
    },
    Case {
        name: "missing Host in HTTP/1.1",
        request: b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
    Case {
        name: "two Host fields",
        request: b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
    Case {
        name: "transfer-encoding in HTTP/1.0",
        request: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ours: 400,
        haproxy: 200,
    },
];

/// Sends one request and returns the status of the answer (0: closed
/// without an answer).
fn status_of(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut s = connect(addr);
    let _ = s.write_all(request);
    let (got, _) = read_to_end_or_error_or_timeout(&mut s);
    let text = String::from_utf8_lossy(&got);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Reads until the peer closes, or stops after a quiet period once a
/// complete response is in (a proxy that forwarded the request keeps the
/// connection alive).
fn read_to_end_or_error_or_timeout(s: &mut TcpStream) -> (Vec<u8>, bool) {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !out.is_empty() => {
                return (out, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

#[test]
fn hostile_requests_get_400_and_never_reach_the_backend() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config("", &servers(&[be.addr])));
    for case in CASES {
        let status = status_of(proxy.addr(), case.request);
        assert_eq!(status, case.ours, "{}", case.name);
        assert_eq!(
            be.accepted(),
            0,
            "{}: the backend got a connection",
            case.name
        );
        assert_eq!(be.bytes(), 0, "{}: the backend got bytes", case.name);
    }
    // A valid request still goes through afterwards.
    assert_eq!(
        status_of(proxy.addr(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"),
        200
    );
    assert_eq!(be.accepted(), 1);
}

#[test]
fn oversized_head_is_400() {
    let be = HttpBackend::ok();
    let proxy = Proxy::start(&http_config("", &servers(&[be.addr])));
    let mut req = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..400 {
        req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    assert_eq!(status_of(proxy.addr(), &req), 400);
    assert_eq!(be.accepted(), 0);
}

#[test]
fn malformed_responses_are_502() {
    let bad: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    ];
    for (i, raw) in bad.iter().enumerate() {
        let raw = raw.to_vec();
        let be = HttpBackend::start(move |_| Reply::Raw(raw.clone()));
        let proxy = Proxy::start(&http_config("", &servers(&[be.addr])));
        assert_eq!(
            status_of(proxy.addr(), b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"),
            502,
            "case {i}"
        );
    }
}

// ------------------------------------------------ comparison with HAProxy

fn start_haproxy(backend: std::net::SocketAddr) -> Option<common::haproxy::Haproxy> {
    common::haproxy::start(&format!(
        "global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{{port}}\n  default_backend be\n\
         backend be\n  server s1 {backend}\n"
    ))
}

#[test]
fn haproxy_2_6_answers_as_documented() {
    let be = HttpBackend::ok();
    let Some(haproxy) = start_haproxy(be.addr) else {
        eprintln!("haproxy not installed: comparison skipped");
        return;
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", haproxy.port).parse().unwrap();
    let mut table = String::new();
    let mut mismatches = Vec::new();
    for case in CASES {
        let status = status_of(addr, case.request);
        table.push_str(&format!("| {} | {} | {} |\n", case.name, case.ours, status));
        if status != case.haproxy {
            mismatches.push(format!(
                "{}: haproxy answered {status}, documented {}",
                case.name, case.haproxy
            ));
        }
    }
    eprintln!("{table}");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
