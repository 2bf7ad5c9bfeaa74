use super::*;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

fn config(bufsize: Option<usize>) -> Config {
    let global = bufsize.map_or(String::new(), |b| format!("[global]\ntune.bufsize = {b}\n"));
    crate::config::load_str(
        &format!(
            r#"{global}
[[frontend]]
name = "fe_http"
mode = "http"
bind = ["127.0.0.1:1"]
default_backend = "be_http"
[[frontend]]
name = "fe_bad"
mode = "http"
bind = ["127.0.0.1:2"]
default_backend = "be_bad"
[[backend]]
name = "be_http"
mode = "http"
servers = [{{ name = "web1", addr = "127.0.0.1:3" }}]
[[backend]]
name = "be_bad"
mode = "http"
servers = [{{ name = "b1", addr = "127.0.0.1:4" }}]
"#
        ),
        Path::new("t.toml"),
    )
    .unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// 03/Dec/2026:10:22:28 UTC, plus `ms` milliseconds.
fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_293_348) + Duration::from_millis(ms)
}

#[test]
fn dump_matches_haproxy_dump_text_line() {
    // HAProxy 2.6's `show errors` for this request (observed): text cut at
    // 70 columns with a `+` continuation, escapes for control bytes.
    let mut req = b"GET /".to_vec();
    req.extend_from_slice(&[b'a'; 100]);
    req.extend_from_slice(
        b" HTTP/1.1\r\nHost: a\r\nX: \x01\x7f\xff\\\t\x1b end\r\nBad Header\r\n\r\n",
    );
    let mut out = String::new();
    dump_text(&mut out, &req);
    let expected = concat!(
        "  00000  GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
        "  00070+ aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\\r\\n\n",
        "  00116  Host: a\\r\\n\n",
        "  00125  X: \\x01\\x7F\\xFF\\\\\\t\\e end\\r\\n\n",
        "  00140  Bad Header\\r\\n\n",
        "  00152  \\r\\n\n",
    );
    assert_eq!(out, expected);
    // A last line without LF is dumped as it is.
    let mut out = String::new();
    dump_text(&mut out, b"HTTP/1.1 200 OK\r\n\r\nok");
    assert_eq!(
        out,
        "  00000  HTTP/1.1 200 OK\\r\\n\n  00017  \\r\\n\n  00019  ok\n"
    );
}

#[test]
fn escapes_near_the_line_end_move_to_the_next_line() {
    // 69 columns of text, then an escape that needs 4: it starts a `+`
    // line, as in HAProxy (which stops a line at 80 output columns).
    let mut buf = vec![b'x'; 67];
    buf.push(0x01);
    let mut out = String::new();
    dump_text(&mut out, &buf);
    let first = format!("  00000  {}\n", "x".repeat(67));
    assert_eq!(out, format!("{first}  00067+ \\x01\n"));
    let mut buf = vec![b'x'; 66];
    buf.push(0x01);
    let mut out = String::new();
    dump_text(&mut out, &buf);
    assert_eq!(out, format!("  00000  {}\\x01\n", "x".repeat(66)));
}

fn haproxy_pair(config: &Config) -> ErrorSnapshots {
    let errors = ErrorSnapshots::new(config, 0, 1);
    let head = b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n";
    let client = addr("127.0.0.1:37168");
    let from = ErrorSource {
        frontend: 0,
        backend: None,
        server: None,
        client,
    };
    errors.request(from, head, HeadError::WhitespaceBeforeColon);
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\r\n\r\nok";
    let from = ErrorSource {
        frontend: 1,
        backend: Some(1),
        server: Some(0),
        client: addr("127.0.0.1:34632"),
    };
    errors.response(from, resp, HeadError::WhitespaceBeforeColon);
    errors
}

fn fix_dates(mut snap: ErrorSnapshot) -> ErrorSnapshot {
    snap.errors[0].when = at(589);
    snap.errors[1].when = at(595);
    snap
}

#[test]
fn show_errors_has_haproxy_layout() {
    let config = config(None);
    let snap = fix_dates(haproxy_pair(&config).snapshot());
    let out = render_show_errors(
        at(602),
        &Clock::utc(),
        &[snap],
        &config,
        &ErrorFilter::default(),
    );
    // HAProxy 2.6 for the same two events (observed), less its H1 mux
    // lines; proxy numbers are percore's (frontends first), its free space
    // and wrap point those of a 16384-byte buffer.
    let expected = "\
Total events captured on [03/Dec/2026:10:22:28.602] : 2
 
[03/Dec/2026:10:22:28.589] frontend fe_http (#1): invalid request
  backend <NONE> (#-1), server <NONE> (#-1), event #0, src 127.0.0.1:37168
  buffer starts at 0 (including 0 out), 16345 free,
  len 39, wraps at 16384, error at position 28
  
  00000  GET / HTTP/1.1\\r\\n
  00016  Host: a\\r\\n
  00025  Bad Header\\r\\n
  00037  \\r\\n
 
[03/Dec/2026:10:22:28.595] backend be_bad (#4): invalid response
  frontend fe_bad (#2), server b1 (#1), event #1, src 127.0.0.1:34632
  buffer starts at 0 (including 0 out), 16332 free,
  len 52, wraps at 16384, error at position 39
  
  00000  HTTP/1.1 200 OK\\r\\n
  00017  Content-Length: 2\\r\\n
  00036  Bad Header\\r\\n
  00048  \\r\\n
  00050  ok
";
    assert_eq!(out, expected);
}

#[test]
fn filters_by_proxy_either_end_and_direction() {
    let config = config(None);
    let snap = fix_dates(haproxy_pair(&config).snapshot());
    let render = |proxy: Option<&str>, direction| {
        let filter = ErrorFilter {
            proxy: proxy.map(|p| proxy_iid(&config, p).unwrap()),
            direction,
        };
        let out = render_show_errors(
            at(602),
            &Clock::utc(),
            std::slice::from_ref(&snap),
            &config,
            &filter,
        );
        out.lines()
            .filter(|l| l.starts_with('['))
            .map(|l| l[27..].to_string())
            .collect::<Vec<_>>()
    };
    let req = "frontend fe_http (#1): invalid request";
    let resp = "backend be_bad (#4): invalid response";
    assert_eq!(render(None, None), [req, resp]);
    assert_eq!(render(Some("fe_http"), None), [req]);
    // The frontend a response error came through shows it too (HAProxy).
    assert_eq!(render(Some("fe_bad"), None), [resp]);
    assert_eq!(render(Some("be_bad"), None), [resp]);
    assert_eq!(render(Some("4"), None), [resp]);
    assert!(render(Some("be_http"), None).is_empty());
    assert!(render(Some("9"), None).is_empty());
    assert_eq!(render(None, Some(Direction::Request)), [req]);
    assert!(render(Some("be_bad"), Some(Direction::Request)).is_empty());
    assert_eq!(proxy_iid(&config, "nope"), None);
    assert_eq!(proxy_iid(&config, "0"), None);
}

#[test]
fn cores_merge_to_the_newest_event_per_proxy() {
    let config = config(None);
    let from = ErrorSource {
        frontend: 0,
        backend: None,
        server: None,
        client: addr("[2001:db8::1]:4000"),
    };
    let core0 = ErrorSnapshots::new(&config, 0, 2);
    let core1 = ErrorSnapshots::new(&config, 1, 2);
    core0.request(
        from,
        b"GET / HTTP/1.1\r\nX Y\r\n\r\n",
        HeadError::InvalidHeaderName,
    );
    core0.request(
        from,
        b"GET / HTTP/9.9\r\n\r\n",
        HeadError::UnsupportedVersion,
    );
    core1.request(from, b"G(T / HTTP/1.1\r\n\r\n", HeadError::InvalidMethod);
    let (mut s0, mut s1) = (core0.snapshot(), core1.snapshot());
    // Only the last event per proxy stays on a core; numbers interleave.
    assert_eq!(s0.captured, 2);
    assert_eq!(s0.errors.len(), 1);
    assert_eq!(s0.errors[0].event, 2);
    assert_eq!(s1.errors[0].event, 1);
    s0.errors[0].when = at(100);
    s1.errors[0].when = at(50);
    let out = render_show_errors(
        at(200),
        &Clock::utc(),
        &[s0, s1],
        &config,
        &ErrorFilter::default(),
    );
    assert!(out.starts_with("Total events captured on [03/Dec/2026:10:22:28.200] : 3\n"));
    assert!(out.contains("event #2, src 2001:db8::1:4000\n"));
    assert!(out.contains("error at position 11\n"));
    assert!(out.contains("  00000  GET / HTTP/9.9\\r\\n\n"));
    assert_eq!(out.matches("invalid request").count(), 1);
}

#[test]
fn captures_are_bounded_and_reuse_their_buffer() {
    assert_eq!(capture_limit(16384), 16384);
    assert_eq!(capture_limit(4096), 4096);
    assert_eq!(capture_limit(1 << 20), MAX_CAPTURE);
    let config = config(Some(65536));
    let errors = ErrorSnapshots::new(&config, 0, 1);
    let from = ErrorSource {
        frontend: 1,
        backend: None,
        server: None,
        client: addr("127.0.0.1:1"),
    };
    let huge = vec![b'a'; 100_000];
    errors.request(from, &huge, HeadError::HeadTooLarge);
    let first_ptr = {
        let slots = errors.requests.borrow();
        let e = slots[1].as_ref().unwrap();
        assert_eq!(e.bytes.len(), MAX_CAPTURE);
        assert_eq!(e.position, huge.len());
        e.bytes.as_ptr()
    };
    errors.request(from, &huge[..500], HeadError::HeadTooLarge);
    let slots = errors.requests.borrow();
    let e = slots[1].as_ref().unwrap();
    assert_eq!(e.bytes.len(), 500);
    assert_eq!(e.bytes.as_ptr(), first_ptr);
    assert!(slots[0].is_none());
    // A response error without a backend has no slot to go to.
    drop(slots);
    errors.response(from, b"x", HeadError::BadStatusLine);
    assert_eq!(errors.snapshot().errors.len(), 1);
}
