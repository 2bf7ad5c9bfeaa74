//! `option http-buffer-request` and the `req.body*` fetches, with the real
//! binary, curl and raw sockets: the body is waited for (Content-Length or
//! chunked, up to `tune.bufsize`) before the rules run, then forwarded
//! unchanged; a client too slow to send it gets 408 (`timeout
//! http-request`).

mod common;

use std::io::{Read, Write};
use std::process::Command;

use common::http_backend::{http_config, ok, HttpBackend};
use common::{connect, run_percore, servers, Pattern, Proxy, PATIENCE};
use sha2::{Digest, Sha256};

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The backend answers with the SHA-256 of the body it received and the
/// headers the rules set.
fn hashing_backend() -> HttpBackend {
    HttpBackend::start(|r| {
        let hash = hex(&Sha256::digest(&r.body));
        ok(&format!(
            "{hash} len={} size={} user={}",
            r.header("x-body-len").unwrap_or("-"),
            r.header("x-body-size").unwrap_or("-"),
            r.header("x-user").unwrap_or("-"),
        ))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const RULES: &str = r#"http-request = [
  "deny if { req.body -m sub secret }",
  "set-header X-Body-Len %[req.body_len] if { req.body_len gt 0 }",
  "set-header X-Body-Size %[req.body_size] if { req.body_size gt 0 }",
  "set-header X-User %[req.body_param(user)] if { req.body_param(user) -m found }",
]"#;

fn buffering_proxy(be: &HttpBackend, frontend: &str) -> Proxy {
    Proxy::start(&http_config(
        &format!("http-buffer-request = true\n{frontend}\n{RULES}"),
        &servers(&[be.addr]),
    ))
}

#[test]
fn a_content_length_body_is_read_by_the_rules_and_forwarded_unchanged() {
    let be = hashing_backend();
    let proxy = buffering_proxy(&be, "");
    let url = format!("http://{}/post", proxy.addr());
    let (out, err) = curl(&["-d", "user=bob&note=hello", &url]);
    let hash = hex(&Sha256::digest(b"user=bob&note=hello"));
    assert_eq!(out, format!("{hash} len=19 size=19 user=bob"), "{err}");
    let (out, err) = curl(&[
        "-d",
        "user=eve&note=the secret plan",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(out, "403", "{err}");
    assert_eq!(be.received().len(), 1);
}

#[test]
fn a_chunked_body_is_read_without_its_framing_and_forwarded_as_sent() {
    let be = hashing_backend();
    let proxy = buffering_proxy(&be, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    let mut body = vec![0u8; 5000];
    Pattern::new(7).fill(&mut body);
    body.retain(|b| b.is_ascii_alphanumeric());
    std::fs::write(&file, &body).unwrap();
    let url = format!("http://{}/up", proxy.addr());
    let data = format!("@{}", file.display());
    let (out, err) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &url,
    ]);
    let hash = hex(&Sha256::digest(&body));
    let n = body.len();
    assert_eq!(out, format!("{hash} len={n} size={n} user=-"), "{err}");

    // Raw chunks, the word split across two of them: the rules see the
    // data joined; the backend gets nothing.
    let mut s = connect(proxy.addr());
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nsecr\r\n2;ext=1\r\net\r\n0\r\n\r\n",
    )
    .unwrap();
    let mut answer = vec![0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 403");
    assert_eq!(be.received().len(), 1);
}

#[test]
fn a_body_larger_than_the_buffer_is_not_waited_for_in_full() {
    let be = hashing_backend();
    let proxy = buffering_proxy(&be, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    // "secret" only past the first 16 KiB: the rules never see it.
    let mut body = vec![b'a'; 100_000];
    body[50_000..50_006].copy_from_slice(b"secret");
    std::fs::write(&file, &body).unwrap();
    let url = format!("http://{}/big", proxy.addr());
    let data = format!("@{}", file.display());
    for expect in ["Expect: 100-continue", "Expect:"] {
        let (out, err) = curl(&["-H", expect, "--data-binary", &data, &url]);
        let (hash, rest) = out.split_once(' ').unwrap_or_default();
        assert_eq!(hash, hex(&Sha256::digest(&body)), "{err}");
        let len: usize = rest
            .strip_prefix("len=")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(len > 0 && len < 16384, "{out}");
        assert!(rest.contains("size=100000"), "{out}");
    }
    // Chunked, the buffer filled in the middle of a chunk: the rules see
    // the data so far (the size is what was waited for).
    let (out, err) = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &url,
    ]);
    let (hash, rest) = out.split_once(' ').unwrap_or_default();
    assert_eq!(hash, hex(&Sha256::digest(&body)), "{err}");
    let len = rest
        .strip_prefix("len=")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(rest.contains(&format!("size={len} ")), "{out}");
}

#[test]
fn a_client_too_slow_to_send_its_body_gets_408() {
    let be = hashing_backend();
    let proxy = buffering_proxy(&be, "timeout = { http-request = \"300ms\" }");
    let mut s = connect(proxy.addr());
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 408"), "{answer:?}");
    assert!(be.received().is_empty());
}

#[test]
fn without_the_option_the_body_fetches_give_no_sample() {
    let be = hashing_backend();
    let proxy = Proxy::start(&http_config(RULES, &servers(&[be.addr])));
    let url = format!("http://{}/", proxy.addr());
    let (out, err) = curl(&["-d", "user=bob&the secret", &url]);
    let hash = hex(&Sha256::digest(b"user=bob&the secret"));
    assert_eq!(out, format!("{hash} len=- size=- user=-"), "{err}");
}

#[test]
fn the_option_in_the_backend_makes_its_frontend_wait() {
    let be = hashing_backend();
    let proxy = Proxy::start(&http_config(
        RULES,
        &format!("http-buffer-request = true\n{}", servers(&[be.addr])),
    ));
    let url = format!("http://{}/", proxy.addr());
    let (out, err) = curl(&["-d", "user=ann", &url]);
    assert!(out.ends_with("len=8 size=8 user=ann"), "{out} {err}");
}

#[test]
fn body_fetches_are_checked_at_load() {
    for (line, message) in [
        ("req.body(1)", "`req.body` takes no argument"),
        ("req.body_param(a,b,c)", "`req.body_param`: bad arguments"),
        ("req.body_param(a,x)", "`req.body_param`: bad arguments"),
        ("req.bdy_size", "did you mean `req.body_size`?"),
    ] {
        let config = http_config(
            &format!(
                "http-buffer-request = true\nhttp-request = [\"deny if {{ {line} -m found }}\"]"
            ),
            "servers = []",
        )
        .replace("{port}", &common::free_port().to_string());
        let (status, _, stderr) = run_percore(&config, &["--check"]);
        assert!(!status.success(), "{line}");
        assert!(stderr.contains(message), "{line}: {stderr}");
    }
    let config = http_config(
        "http-response = [\"set-header X %[req.body]\"]",
        "servers = []",
    )
    .replace("{port}", &common::free_port().to_string());
    let (status, _, stderr) = run_percore(&config, &["--check"]);
    assert!(!status.success());
    assert!(stderr.contains("`req.body` is a request fetch"), "{stderr}");
    let config = http_config("http-buffer-request = \"yes\"", "servers = []")
        .replace("{port}", &common::free_port().to_string());
    let (status, _, stderr) = run_percore(&config, &["--check"]);
    assert!(!status.success(), "{stderr}");
}

#[test]
fn http2_requests_are_buffered_too() {
    let be = hashing_backend();
    let config = http_config(
        &format!("http-buffer-request = true\n{RULES}"),
        &servers(&[be.addr]),
    )
    .replace(
        "bind = [\"127.0.0.1:{port}\"]",
        "bind = [{ addr = \"127.0.0.1:{port}\", proto = \"h2\" }]",
    );
    let proxy = Proxy::start(&config);
    let url = format!("http://{}/", proxy.addr());
    let h2 = "--http2-prior-knowledge";
    let (out, err) = curl(&[
        h2,
        "-d",
        "a secret",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(out, "403", "{err}");
    // An HTTP/2 stream gets no interim 100 from percore (its writes are
    // the response); curl sends the body after its own wait.
    for expect in ["Expect: 100-continue", "Expect:"] {
        let (out, err) = curl(&[h2, "-H", expect, "-d", "user=dan", &url]);
        assert!(out.ends_with("len=8 size=8 user=dan"), "{out} {err}");
    }
}

/// The same requests through HAProxy 2.6 and percore with the same rules:
/// the body fetches give the same values (bodies that fit in the buffer;
/// HAProxy keeps `tune.maxrewrite` of it free, so larger ones differ in
/// `req.body_len`).
#[test]
fn the_body_fetches_give_what_haproxy_gives() {
    let be = HttpBackend::start(|r| {
        let mut fields: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.to_ascii_lowercase().starts_with("x-b-"))
            .map(|(n, v)| format!("{}={v}", n.to_ascii_lowercase()))
            .collect();
        fields.sort();
        ok(&fields.join(" "))
    });
    let fetches = [
        ("x-b-body", "req.body"),
        ("x-b-len", "req.body_len"),
        ("x-b-size", "req.body_size"),
        ("x-b-user", "req.body_param(user)"),
        ("x-b-first", "req.body_param"),
        // (`req.body_param(<name>,i)` is not in HAProxy 2.6.)
    ];
    let rules: String = fetches
        .iter()
        .map(|(h, f)| format!("  http-request set-header {h} %[{f}]\n"))
        .collect();
    let Some(haproxy) = common::haproxy::start(&format!(
        "global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{{port}}\n  option http-buffer-request\n{rules}  default_backend be\n\
         backend be\n  server s1 {}\n",
        be.addr
    )) else {
        eprintln!("haproxy not installed: comparison skipped");
        return;
    };
    let percore_rules: String = fetches
        .iter()
        .map(|(h, f)| format!("  \"set-header {h} %[{f}]\",\n"))
        .collect();
    let proxy = Proxy::start(&http_config(
        &format!("http-buffer-request = true\nhttp-request = [\n{percore_rules}]"),
        &servers(&[be.addr]),
    ));
    let requests: [&[u8]; 4] = [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\nuser=bob&note=hello",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nuser=\r\n3;e=1\r\nann\r\n4\r\n&x=1\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nnote&user=",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    let mut answers = Vec::new();
    for request in requests {
        let answer = |port: u16| {
            let mut s = connect(format!("127.0.0.1:{port}").parse().unwrap());
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.write_all(request).unwrap();
            let mut reader = std::io::BufReader::new(s);
            common::http_backend::read_response(&mut reader, false)
                .map(|(status, _, body)| (status, String::from_utf8_lossy(&body).into_owned()))
        };
        let theirs = answer(haproxy.port);
        let ours = answer(proxy.port);
        assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(request));
        answers.push(ours.map(|(_, body)| body).unwrap_or_default());
    }
    assert!(
        answers[0].contains("x-b-len=19 x-b-size=19 x-b-user=bob"),
        "{answers:?}"
    );
    assert!(answers[1].contains("x-b-body=user=ann&x=1"), "{answers:?}");
}

/// `Expect: 100-continue` while the body is awaited: percore answers the
/// 100 itself and the server does not see the field (one 100 for the
/// client, as with HAProxy).
#[test]
fn expect_100_continue_is_answered_once() {
    let be = HttpBackend::start(|r| ok(&format!("expect={:?}", r.header("expect"))));
    let proxy = buffering_proxy(&be, "");
    let mut s = connect(proxy.addr());
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let continue_line = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; continue_line.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, continue_line);
    s.write_all(b"hello").unwrap();
    let mut reader = std::io::BufReader::new(s);
    let (status, _, body) = common::http_backend::read_response(&mut reader, false).unwrap();
    assert_eq!(
        (status, String::from_utf8_lossy(&body).into_owned()),
        (200, "expect=None".to_string())
    );
}
