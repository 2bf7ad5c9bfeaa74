//! The `http-request` / `http-response` actions of issue #18 through the
//! real binary and a real backend: `set-method`, `http-response return`
//! and `redirect`, the `redirect` options `append-slash`, `set-cookie` and
//! `clear-cookie` (their fields checked against HAProxy 2.6's).

mod common;

use std::io::{BufReader, Write};
use std::net::TcpStream;

use common::http_backend::*;
use common::*;

/// Answers with the method it received as the body; `/missing` is a 404,
/// `/broken` a 500.
fn backend() -> HttpBackend {
    HttpBackend::start(|r| {
        let status = match r.target.as_str() {
            "/missing" => 404,
            "/broken" => 500,
            _ => 200,
        };
        let headers = r
            .header("x-seen-method")
            .map(|m| vec![format!("X-Seen-Method: {m}")])
            .unwrap_or_default();
        Reply::Full(status, headers, r.method.clone().into_bytes())
    })
}

fn proxy(frontend: &str, be: &HttpBackend) -> Proxy {
    Proxy::start(&http_config(frontend, &servers(&[be.addr])))
}

/// Sends `req` on the connection, reads one response.
fn exchange(rd: &mut BufReader<TcpStream>, req: &str, head: bool) -> (u16, String, String) {
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    let (status, head, body) = read_response(rd, head).expect("a response");
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n")
}

#[test]
fn set_method_changes_what_the_server_and_later_rules_see() {
    let be = backend();
    let proxy = proxy(
        r#"http-request = [
  "set-method POST if { path /post }",
  "set-method %[req.hdr(x-method)] if { req.hdr(x-method) -m found }",
  "set-method HEAD if { path /head }",
  "set-header X-Seen-Method %[method]",
]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, _, body) = exchange(&mut rd, &get("/post"), false);
    assert_eq!((status, body.as_str()), (200, "POST"));
    let req = "GET /x HTTP/1.1\r\nHost: h\r\nX-Method: PURGE\r\n\r\n";
    let (_, _, body) = exchange(&mut rd, req, false);
    assert_eq!(body, "PURGE");
    // A rendered value that is no method leaves the method alone.
    let req = "GET /x HTTP/1.1\r\nHost: h\r\nX-Method: G T\r\n\r\n";
    let (_, _, body) = exchange(&mut rd, req, false);
    assert_eq!(body, "GET");
    let received = be.received();
    assert_eq!(received[0].header("x-seen-method"), Some("POST"));
    assert_eq!(received[1].header("x-seen-method"), Some("PURGE"));

    // A GET sent as HEAD: percore reads the server's answer as the answer
    // to a HEAD (no body), and the connection goes on.
    let (status, head, _) = exchange(&mut rd, &get("/head"), true);
    assert_eq!(status, 200);
    assert!(head.contains("X-Seen-Method: HEAD"), "{head}");
    let (_, _, body) = exchange(&mut rd, &get("/after"), false);
    assert_eq!(body, "GET");
}

#[test]
fn http_response_return_and_redirect_replace_the_server_answer() {
    let be = backend();
    let proxy = proxy(
        r#"http-response = [
  "return status 503 content-type text/plain lf-string \"was %[status]\" hdr X-Why broken if { status 500 }",
  "redirect location /gone code 303 set-cookie LOST=1 if { status 404 }",
]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, head, body) = exchange(&mut rd, &get("/broken"), false);
    assert_eq!((status, body.as_str()), (503, "was 500"));
    assert!(
        head.to_ascii_lowercase().contains("x-why: broken"),
        "{head}"
    );
    // The client connection stays usable.
    let (status, head, _) = exchange(&mut rd, &get("/missing"), false);
    assert_eq!(status, 303);
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("location: /gone\r\n"), "{head}");
    assert!(lower.contains("set-cookie: lost=1; path=/;\r\n"), "{head}");
    let (status, _, body) = exchange(&mut rd, &get("/ok"), false);
    assert_eq!((status, body.as_str()), (200, "GET"));
    // HEAD: the answer has no body.
    let (status, head, _) = exchange(&mut rd, "HEAD /broken HTTP/1.1\r\nHost: h\r\n\r\n", true);
    assert_eq!(status, 503);
    assert!(head.contains("content-length: 7"), "{head}");
    let (status, _, _) = exchange(&mut rd, &get("/ok"), false);
    assert_eq!(status, 200);
}

#[test]
fn redirect_options_append_slash_and_cookies() {
    let be = backend();
    let proxy = proxy(
        r#"http-request = [
  "redirect prefix https://new.example append-slash drop-query set-cookie MOVED=yes if { path_beg /dir }",
  "redirect scheme https append-slash if { path_beg /s }",
  "redirect location /bye clear-cookie SESSION= if { path /logout }",
]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let location = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("location: "))
            .map(str::to_string)
    };
    let cookie = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .map(str::to_string)
    };
    let (status, head, _) = exchange(&mut rd, &get("/dir/a?x=1"), false);
    assert_eq!(status, 302);
    assert_eq!(
        location(&head).as_deref(),
        Some("https://new.example/dir/a/")
    );
    assert_eq!(cookie(&head).as_deref(), Some("MOVED=yes; path=/;"));
    let (_, head, _) = exchange(&mut rd, &get("/dir/"), false);
    assert_eq!(location(&head).as_deref(), Some("https://new.example/dir/"));
    let (_, head, _) = exchange(&mut rd, &get("/s?q"), false);
    assert_eq!(location(&head).as_deref(), Some("https://h/s/?q"));
    assert_eq!(cookie(&head), None);
    let (_, head, _) = exchange(&mut rd, &get("/logout"), false);
    assert_eq!(location(&head).as_deref(), Some("/bye"));
    assert_eq!(
        cookie(&head).as_deref(),
        Some("SESSION=; path=/; Max-Age=0;")
    );
}

/// A frontend with every kind of capture slot, logging with `log_format`.
fn capturing_config(be: &HttpBackend, log_format: &str) -> String {
    format!(
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
log-format = '{log_format}'
capture-request-header = [{{ name = "Host", len = 20 }}]
capture-response-header = [{{ name = "X-Seen-Method", len = 3 }}]
declare-capture = [{{ type = "response", len = 10 }}, {{ type = "request", len = 8 }}]
http-request = [
  "capture req.hdr(user-agent) len 5",
  "capture path id 1 if {{ path_beg /a }}",
]
http-response = ["capture res.hdr(content-length),add(1000) id 1"]

[[backend]]
name = "be"
{servers}
"#,
        servers = servers(&[be.addr]),
    )
}

#[test]
fn captures_fill_the_log_slots() {
    let be = backend();
    let format = "LOG|%hr|%hrl|%hs|%hsl|%{+Q}hs|%ST";
    let (proxy, log) = Proxy::start_logging(&capturing_config(&be, format));
    let mut rd = BufReader::new(connect(proxy.addr()));
    let req = "GET /a/b/c/d/e HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nX-Seen-Method: POSTX\r\n\r\n";
    assert_eq!(exchange(&mut rd, req, false).0, 200);
    // The `id 1` rule's condition does not hold: its slot stays empty.
    let req = "GET /z HTTP/1.1\r\nHost: h|2\r\n\r\n";
    assert_eq!(exchange(&mut rd, req, false).0, 200);
    let lines = log.wait_for_lines(2);
    assert!(
        lines[0].ends_with(
            "LOG|{example.com|/a/b/c/d|curl/}|example.com /a/b/c/d curl/|{POS|1003}|POS 1003|{\"POS\"|\"1003\"}|200"
        ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with("LOG|{h#7C2||}|h#7C2  |{|1003}| 1003|{\"\"|\"1003\"}|200"),
        "{}",
        lines[1]
    );

    // httplog: the request then the response slots, in braces.
    let (proxy, log) = Proxy::start_logging(
        &capturing_config(&be, "httplog")
            .replace("log-format = 'httplog'", "log-format = \"httplog\""),
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let req = "GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n\r\n";
    assert_eq!(exchange(&mut rd, req, false).0, 200);
    let line = &log.wait_for_lines(1)[0];
    assert!(
        line.contains(" {example.com|/a|curl/} {|1003} \"GET /a HTTP/1.1\""),
        "{line}"
    );
}

/// The backend of [`backend_id_captures_write_the_routing_frontends_slots`]
/// in HAProxy's syntax and percore's.
const BACKEND_CAPTURES: [&str; 4] = [
    "http-request capture path id 0",
    "http-request capture req.hdr(x-a) id 1",
    "http-request capture req.hdr(x-b) id 7",
    "http-response capture res.hdr(content-length) id 0",
];

/// `capture ... id <n>` in a backend writes slot `n` of the frontend that
/// routed the request, cut to that frontend's slot (a header capture's
/// slot too); a slot the frontend lacks captures nothing. Three frontends
/// with different slots share the backend; the log lines match HAProxy
/// 2.6's for the same configuration.
#[test]
fn backend_id_captures_write_the_routing_frontends_slots() {
    let be = target_echo();
    let log = LogFile::new();
    let ports = [free_port(), free_port(), free_port()];
    let frontends = [
        "declare-capture = [{ type = \"request\", len = 4 }, { type = \"response\", len = 3 }]",
        "capture-request-header = [{ name = \"Host\", len = 2 }]\ndeclare-capture = [{ type = \"request\", len = 8 }]",
        "",
    ];
    let mut config = "[global]\nthreads = 1\n\n[defaults]\nmode = \"http\"\ntimeout = { connect = \"2s\", client = \"30s\", server = \"30s\" }\n".to_string();
    for (i, (port, slots)) in ports.iter().zip(frontends).enumerate() {
        config += &format!(
            "\n[[frontend]]\nname = \"fe{n}\"\nbind = [\"127.0.0.1:{port}\"]\ndefault_backend = \"be\"\nlog = true\nlog-format = \"FE{n} %hr %hs %HU\"\n{slots}\n",
            n = i + 1
        );
    }
    let (request, response): (Vec<&str>, Vec<&str>) = BACKEND_CAPTURES
        .iter()
        .partition(|r| r.starts_with("http-request"));
    let quoted = |rules: Vec<&str>, prefix: &str| -> String {
        rules
            .iter()
            .map(|r| format!("{:?}", &r[prefix.len()..]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    config += &format!(
        "\n[[backend]]\nname = \"be\"\n{}\nhttp-request = [{}]\nhttp-response = [{}]\n",
        servers(&[be.addr]),
        quoted(request, "http-request "),
        quoted(response, "http-response "),
    );
    let mut proxy = Proxy::spawn(&log.added_to(&config), &[]);
    proxy.wait_listening();
    let ask = |port: u16| {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut rd = BufReader::new(connect(addr));
        let req = "GET /abcdefghij HTTP/1.1\r\nHost: hostname\r\nX-A: valueofxa-long\r\nX-B: b\r\nConnection: close\r\n\r\n";
        assert_eq!(exchange(&mut rd, req, false).0, 200);
    };
    for port in ports {
        ask(port);
    }
    let mut ours = log.wait_for_lines(3);
    ours.sort();
    let expected = [
        "FE1 {/abc} {11} /abcdefghij",
        "FE2 {/a|valueofx} /abcdefghij",
        "FE3 /abcdefghij",
    ];
    for (line, want) in ours.iter().zip(expected) {
        assert!(line.ends_with(want), "{line} (wanted {want})");
    }

    let haproxy_ports = [free_port(), free_port()];
    let haproxy_frontends = [
        "declare capture request len 4\n  declare capture response len 3",
        "capture request header Host len 2\n  declare capture request len 8",
        "",
    ];
    let mut haproxy_cfg = "global\n  log stderr format raw local0\n\
         defaults\n  mode http\n  log global\n  option dontlognull\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n"
        .to_string();
    let bind_ports = [
        "{port}".to_string(),
        haproxy_ports[0].to_string(),
        haproxy_ports[1].to_string(),
    ];
    for (i, (port, slots)) in bind_ports.iter().zip(haproxy_frontends).enumerate() {
        haproxy_cfg += &format!(
            "frontend fe{n}\n  bind 127.0.0.1:{port}\n  log-format \"FE{n} %hr %hs %HU\"\n  {slots}\n  default_backend be\n",
            n = i + 1
        );
    }
    haproxy_cfg += &format!(
        "backend be\n  {}\n  server s {}\n",
        BACKEND_CAPTURES.join("\n  "),
        be.addr
    );
    let Some(haproxy) = common::haproxy::start(&haproxy_cfg) else {
        eprintln!("haproxy not installed: comparison skipped");
        return;
    };
    for port in [haproxy.port, haproxy_ports[0], haproxy_ports[1]] {
        ask(port);
    }
    let mut theirs = wait_for_matching_lines(|| haproxy.stderr(), |l| l.starts_with("FE"), 3);
    theirs.sort();
    assert_eq!(theirs, expected, "HAProxy 2.6");
}

/// The capture configuration errors, each with its place and a hint.
#[test]
fn capture_configuration_errors() {
    use percore::config::load_str;
    let base = |frontend: &str, backend: &str| {
        format!(
            "[defaults]\nmode = \"http\"\n\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:18080\"]\ndefault_backend = \"be\"\n{frontend}\n\n[[backend]]\nname = \"be\"\nservers = [{{ name = \"s\", addr = \"127.0.0.1:9000\" }}]\n{backend}\n"
        )
    };
    let errors = |text: String| -> Vec<String> {
        match load_str(&text, std::path::Path::new("t.toml")) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors.0.iter().map(|e| format!("{e}")).collect(),
        }
    };
    // HAProxy: "proxy 'be' has no frontend capability".
    let e = errors(base("", "http-request = [\"capture path len 4\"]"));
    assert!(
        e[0].contains("backend \"be\": capture ... len in a backend"),
        "{e:?}"
    );
    assert!(e[0].contains("frontends that route here"), "{e:?}");
    let e = errors(base("http-response = [\"capture status id 0\"]", ""));
    assert!(
        e[0].contains("capture id 0: the frontend has 0 response capture slots"),
        "{e:?}"
    );
    assert!(e[0].contains("declare-capture"), "{e:?}");
    let e = errors(base("declare-capture = [{ type = \"req\", len = 4 }]", ""));
    assert!(e[0].contains("invalid capture type \"req\""), "{e:?}");
    let e = errors(base("declare-capture = [{ type = \"request\" }]", ""));
    assert!(e[0].contains("declare-capture has no len"), "{e:?}");
    let e = errors(base(
        "capture-response-header = [{ name = \"a b\", len = 4 }]",
        "",
    ));
    assert!(e[0].contains("invalid header name"), "{e:?}");
    let e = errors(base("http-request = [\"capture path len 0\"]", ""));
    assert!(e[0].contains("out of range"), "{e:?}");
    assert!(e[0].contains(":8:"), "{e:?}");
}

/// `set-log-level`: `silent` writes no line, a level sets the syslog
/// severity of the request's line (`<PRI>` = facility * 8 + severity).
#[test]
fn set_log_level_silences_or_sets_the_severity() {
    let be = backend();
    let (log, raw) = (LogFile::new(), LogFile::new());
    let config = format!(
        r#"
[global]
threads = 1
log = [{log}, {raw}]

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
log = true
log-format = "LOG %HU %ST"
http-request = [
  "set-log-level silent if {{ path /health }}",
  "set-log-level err if {{ path_beg /err }}",
]
http-response = ["set-log-level debug if {{ status 404 }}"]

[[backend]]
name = "be"
{servers}
"#,
        log = log.target_with("format = \"rfc3164\", facility = \"local0\""),
        raw = raw.target_with("format = \"raw\""),
        servers = servers(&[be.addr]),
    );
    let proxy = Proxy::start(&config);
    let mut rd = BufReader::new(connect(proxy.addr()));
    for target in ["/health", "/err", "/missing", "/ok", "/health"] {
        exchange(&mut rd, &get(target), false);
    }
    let lines = log.wait_for_lines(3);
    // local0 = 16: err 131, debug 135, info 134.
    let pri: Vec<&str> = lines.iter().map(|l| &l[..5]).collect();
    assert_eq!(pri, ["<131>", "<135>", "<134>"], "{lines:#?}");
    assert!(lines[0].ends_with("LOG /err 200"), "{lines:#?}");
    assert!(lines[1].ends_with("LOG /missing 404"), "{lines:#?}");
    assert!(lines[2].ends_with("LOG /ok 200"), "{lines:#?}");
    let raw = raw.wait_for_lines(3);
    assert_eq!(raw, ["LOG /err 200", "LOG /missing 404", "LOG /ok 200"]);
}

/// Answers with the target it received as the body.
fn target_echo() -> HttpBackend {
    HttpBackend::start(|r| ok(&r.target))
}

#[test]
fn normalize_uri_rewrites_what_later_rules_and_the_server_see() {
    let be = target_echo();
    let proxy = proxy(
        r#"http-request = [
  "normalize-uri path-merge-slashes",
  "normalize-uri path-strip-dot",
  "normalize-uri path-strip-dotdot full",
  "normalize-uri percent-decode-unreserved",
  "normalize-uri percent-to-uppercase",
  "normalize-uri query-sort-by-name",
  "normalize-uri fragment-strip",
  "deny if { path_beg /admin }",
]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let cases = [
        ("//a/./b//c/../d?z=1&a=%2f", "/a/b/d?a=%2F&z=1"),
        ("/%7Euser/%41", "/~user/A"),
        ("/../../x#frag", "/x"),
    ];
    for (sent, seen) in cases {
        let (status, _, body) = exchange(&mut rd, &get(sent), false);
        assert_eq!((status, body.as_str()), (200, seen), "{sent}");
    }
    // The ACL sees the normalized path (a deny closes: one connection
    // each).
    for sneaky in ["/public/../admin", "//admin", "/%61dmin", "/./admin"] {
        let mut rd = BufReader::new(connect(proxy.addr()));
        let (status, _, _) = exchange(&mut rd, &get(sneaky), false);
        assert_eq!(status, 403, "{sneaky}");
    }
}

/// HAProxy 2.6's built-in 400 page (`errors/400.http` body).
const HAPROXY_400_BODY: &str =
    "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n";

/// `normalize-uri percent-to-uppercase|percent-decode-unreserved strict`:
/// a `%` not followed by two hex digits, in path, query or fragment,
/// answers HAProxy's 400 page and closes; the request reaches no server,
/// is logged PR and counted as a request error. Valid targets go on
/// normalized. A backend's rule does the same (HAProxy's ACT_RET_INV).
#[test]
fn normalize_uri_strict_answers_400_to_invalid_percent_sequences() {
    let be = target_echo();
    let config = http_config(
        r#"log = true
log-format = "LOG %ST %tsc %b/%s %HU"
http-request = ["normalize-uri percent-to-uppercase strict if { path_beg /u }"]"#,
        &format!(
            "{}\nhttp-request = [\"normalize-uri percent-decode-unreserved strict if {{ path_beg /d }}\"]",
            servers(&[be.addr])
        ),
    );
    let stats: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (proxy, log) = Proxy::start_logging(&format!("{config}\n[stats]\nbind = \"{stats}\"\n"));
    let cases = [
        ("/u/%2f?x=%2a", Some("/u/%2F?x=%2A")),
        ("/u/%zz", None),
        ("/u/%2", None),
        ("/u/a%", None),
        ("/u?q=%g1", None),
        ("/d/%41%2f", Some("/d/A%2f")),
        ("/d?x=%", None),
        ("/d/%4", None),
        // Without a strict rule an invalid sequence is forwarded.
        ("/x/%zz", Some("/x/%zz")),
    ];
    for (sent, seen) in cases {
        let mut rd = BufReader::new(connect(proxy.addr()));
        let (status, head, body) = exchange(&mut rd, &get(sent), false);
        match seen {
            Some(seen) => assert_eq!((status, body.as_str()), (200, seen), "{sent}"),
            None => {
                assert_eq!((status, body.as_str()), (400, HAPROXY_400_BODY), "{sent}");
                assert!(head.contains("connection: close"), "{sent}: {head}");
                // The connection is closed after the page.
                assert!(read_response(&mut rd, false).is_none(), "{sent}");
            }
        }
    }
    let forwarded: Vec<String> = be.received().into_iter().map(|r| r.target).collect();
    assert_eq!(forwarded, ["/u/%2F?x=%2A", "/d/A%2f", "/x/%zz"]);
    let lines = log.wait_for_lines(cases.len());
    for ((sent, seen), line) in cases.iter().zip(&lines) {
        let expected = match seen {
            Some(_) => format!("LOG 200 ---- be/s1 {sent}"),
            // HAProxy names the section whose rule refused.
            None if sent.starts_with("/d") => format!("LOG 400 PR-- be/<NOSRV> {sent}"),
            None => format!("LOG 400 PR-- fe/<NOSRV> {sent}"),
        };
        assert!(line.ends_with(&expected), "{line} (wanted {expected})");
    }
    let v = stats_when(stats, |v| v["frontends"][0]["requests_total"] == 9);
    let fe = &v["frontends"][0];
    assert_eq!(fe["request_errors"], 6, "{v}");
    assert_eq!(fe["denied_requests"], 0, "{v}");
}

/// `set-timeout server`: this request's wait for the response head. The
/// backend never answers `/hang` (it holds the connection far longer than
/// the test runs), so the answer can only be the timeout's 504.
#[test]
fn set_timeout_server_applies_to_the_request() {
    let be = HttpBackend::start(|r| {
        if r.target == "/hang" {
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        ok("fast")
    });
    let proxy = proxy(
        r#"http-request = ["set-timeout server 200ms if { path /hang }"]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, _, body) = exchange(&mut rd, &get("/fast"), false);
    assert_eq!((status, body.as_str()), (200, "fast"));
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, _, _) = exchange(&mut rd, &get("/hang"), false);
    assert_eq!(status, 504);
}

/// `early-hint`: an HTTP/1.1 client gets a 103 Early Hints with the
/// rules' fields before the server's answer; an HTTP/1.0 client does not
/// (it knows no 1xx).
#[test]
fn early_hints_come_before_the_response() {
    let be = backend();
    let proxy = proxy(
        r#"http-request = [
  "early-hint Link \"</style.css>; rel=preload; as=style\" if { path / }",
  "early-hint Link </app.js>;rel=preload;as=script if { path / }",
  "early-hint X-Client %[src] if { path / }",
]"#,
        &be,
    );
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, head, _) = exchange(&mut rd, &get("/"), false);
    assert_eq!(status, 103);
    assert_eq!(
        head,
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </app.js>;rel=preload;as=script\r\nX-Client: 127.0.0.1\r\n\r\n"
    );
    let (status, _, body) = read_response(&mut rd, false).expect("the final response");
    assert_eq!((status, body.as_slice()), (200, &b"GET"[..]));
    // No hint rule holds: no 103.
    let (status, _, _) = exchange(&mut rd, &get("/other"), false);
    assert_eq!(status, 200);
    let mut rd = BufReader::new(connect(proxy.addr()));
    let (status, _, _) = exchange(&mut rd, "GET / HTTP/1.0\r\n\r\n", false);
    assert_eq!(status, 200);
}

/// The same over HTTP/2 (prior knowledge): curl sees the 103 as an
/// informational HEADERS frame before the 200.
#[test]
fn early_hints_reach_http2_clients() {
    if !have("curl") {
        eprintln!("curl not installed: skipped");
        return;
    }
    let be = backend();
    let config = http_config(
        "http-request = [\"early-hint Link </a.css>;rel=preload\"]",
        &servers(&[be.addr]),
    )
    .replace(
        "bind = [\"127.0.0.1:{port}\"]",
        "bind = [{ addr = \"127.0.0.1:{port}\", proto = \"h2\" }]",
    );
    let proxy = Proxy::start(&config);
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--http2-prior-knowledge", "--max-time", "10"])
        .arg(format!("http://{}/", proxy.addr()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let hint = text.find("HTTP/2 103").expect(&text);
    assert!(
        text[hint..].contains("link: </a.css>;rel=preload"),
        "{text}"
    );
    let fin = text.find("HTTP/2 200").expect(&text);
    assert!(hint < fin, "{text}");
    assert!(text.ends_with("GET"), "{text}");
}

/// Syslog over TCP: each line is one RFC 6587 octet-counted message
/// (`LEN SP MSG`), here RFC 5424 framed, on one connection.
#[test]
fn logs_reach_a_tcp_syslog_server_octet_counted() {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let syslog = listener.local_addr().unwrap();
    let be = backend();
    let config = http_config(
        "log = true\nlog-format = \"LOG %HU %ST\"",
        &servers(&[be.addr]),
    )
    .replace(
        "[defaults]",
        &format!(
            "log = [{{ target = \"tcp@{syslog}\", format = \"rfc5424\", tag = \"pc\" }}]\n\n[defaults]"
        ),
    );
    let proxy = Proxy::start(&config);
    let mut rd = BufReader::new(connect(proxy.addr()));
    for target in ["/one", "/missing"] {
        exchange(&mut rd, &get(target), false);
    }
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut messages = Vec::new();
    let mut bytes = Vec::new();
    while messages.len() < 2 {
        // LEN SP MSG: parse whatever whole messages arrived.
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed after {messages:?}");
        bytes.extend_from_slice(&chunk[..n]);
        while let Some(sp) = bytes.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&bytes[..sp]).unwrap().parse().unwrap();
            if bytes.len() < sp + 1 + len {
                break;
            }
            let msg = String::from_utf8(bytes[sp + 1..sp + 1 + len].to_vec()).unwrap();
            bytes.drain(..sp + 1 + len);
            messages.push(msg);
        }
    }
    assert!(messages[0].starts_with("<134>1 "), "{messages:?}");
    assert!(messages[0].contains(" pc "), "{messages:?}");
    assert!(messages[0].ends_with(" - - LOG /one 200"), "{messages:?}");
    assert!(
        messages[1].ends_with(" - - LOG /missing 404"),
        "{messages:?}"
    );
    assert!(bytes.is_empty());
}

#[test]
fn a_bad_tcp_syslog_address_is_refused_where_it_is_written() {
    use percore::config::load_str;
    let text = "[global]\nlog = [{ target = \"tcp://host-name:514\" }]\n\n[defaults]\nmode = \"http\"\n\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:18080\"]\ndefault_backend = \"be\"\n\n[[backend]]\nname = \"be\"\nservers = [{ name = \"s\", addr = \"127.0.0.1:9000\" }]\n";
    let errors = match load_str(text, std::path::Path::new("t.toml")) {
        Ok(_) => panic!("expected an error"),
        Err(errors) => errors.0,
    };
    let e = format!("{}", errors[0]);
    assert!(e.contains("t.toml:2:"), "{e}");
    assert!(
        e.contains("invalid syslog address \"host-name:514\""),
        "{e}"
    );
    assert!(e.contains("tcp://IP:port"), "{e}");
}

/// `log-format-sd`: the structured data of RFC 5424 lines; other framings
/// leave it out.
#[test]
fn log_format_sd_fills_rfc5424_structured_data() {
    let be = backend();
    let (rfc5424, rfc3164) = (LogFile::new(), LogFile::new());
    let config = http_config(
        "log = true\nlog-format = \"LOG %HU\"\nlog-format-sd = '[req@32473 status=\"%ST\" src=\"%[src]\"]'",
        &servers(&[be.addr]),
    )
    .replace(
        "[defaults]",
        &format!(
            "log = [{}, {}]\n\n[defaults]",
            rfc5424.target_with("format = \"rfc5424\""),
            rfc3164.target_with("format = \"rfc3164\""),
        ),
    );
    let proxy = Proxy::start(&config);
    let mut rd = BufReader::new(connect(proxy.addr()));
    exchange(&mut rd, &get("/sd"), false);
    let line = &rfc5424.wait_for_lines(1)[0];
    assert!(
        line.ends_with(" - [req@32473 status=\"200\" src=\"127.0.0.1\"] LOG /sd"),
        "{line}"
    );
    let line = &rfc3164.wait_for_lines(1)[0];
    assert!(line.ends_with("]: LOG /sd"), "{line}");

    // A sample that has no value at log time is refused where it is.
    use percore::config::load_str;
    let bad = http_config(
        "log = true\nlog-format-sd = '[a b=\"%[path]\"]'",
        &servers(&[be.addr]),
    )
    .replace("{port}", "18080");
    let errors = match load_str(&bad, std::path::Path::new("t.toml")) {
        Ok(_) => panic!("expected an error"),
        Err(errors) => errors.0,
    };
    let e = format!("{}", errors[0]);
    assert!(e.contains("log-format-sd"), "{e}");
    assert!(
        e.contains("has no value when the log line is written"),
        "{e}"
    );
}

/// `capture-cookie`: `%CC` / `%CS` and httplog's two cookie fields show
/// the request's and the response's cookie whose name begins so.
#[test]
fn captured_cookies_appear_in_the_log() {
    let be = HttpBackend::start(|r| {
        let headers = match r.target.as_str() {
            "/login" => vec!["Set-Cookie: SESSIONID=new-0123456789; Path=/".to_string()],
            _ => vec![],
        };
        Reply::Full(200, headers, b"ok".to_vec())
    });
    let log = LogFile::new();
    let config = |format: &str| {
        log.added_to(&http_config(
            &format!("log = true\nlog-format = '{format}'\ncapture-cookie = {{ name = \"SESS\", len = 16 }}"),
            &servers(&[be.addr]),
        ))
    };
    let proxy = Proxy::start(&config("LOG|%CC|%CS|%{+Q}CC"));
    let mut rd = BufReader::new(connect(proxy.addr()));
    exchange(
        &mut rd,
        "GET /login HTTP/1.1\r\nHost: h\r\nCookie: a=1; SESSIONID=old\r\n\r\n",
        false,
    );
    exchange(&mut rd, &get("/none"), false);
    let lines = log.wait_for_lines(2);
    assert!(
        lines[0].ends_with("LOG|SESSIONID=old|SESSIONID=new-01|\"SESSIONID=old\""),
        "{lines:?}"
    );
    assert!(lines[1].ends_with("LOG|-|-|\"\""), "{lines:?}");
    drop(proxy);
    std::fs::remove_file(log.path()).unwrap();
    let proxy = Proxy::start(&config("httplog").replace("'httplog'", "\"httplog\""));
    let mut rd = BufReader::new(connect(proxy.addr()));
    exchange(
        &mut rd,
        "GET /login HTTP/1.1\r\nHost: h\r\nCookie: SESSIONID=old\r\n\r\n",
        false,
    );
    let line = &log.wait_for_lines(1)[0];
    assert!(
        line.contains(" SESSIONID=old SESSIONID=new-01 ---- "),
        "{line}"
    );
}

/// The same rules through HAProxy 2.6 (when installed) and percore: what
/// the client gets (status, Location, Set-Cookie, body) and what the
/// server sees (method and target) must agree. `append-slash` is used
/// with `drop-query` only, where both agree (see docs/configuration.md).
/// (`normalize-uri` is experimental in HAProxy 2.6.) `strict` answers
/// invalid `%`-sequences with the same 400 page.
#[test]
fn actions_agree_with_haproxy() {
    let be = HttpBackend::start(|r| {
        let status = if r.target == "/broken" { 500 } else { 200 };
        Reply::Full(
            status,
            vec![],
            format!("{} {}", r.method, r.target).into_bytes(),
        )
    });
    let rules = [
        "http-request set-method PUT if { path /put }",
        "http-request normalize-uri path-merge-slashes",
        "http-request normalize-uri path-strip-dotdot",
        "http-request normalize-uri percent-to-uppercase strict",
        "http-request normalize-uri percent-decode-unreserved strict if { path_beg /d }",
        "http-request normalize-uri query-sort-by-name",
        "http-request redirect prefix /new append-slash drop-query set-cookie MOVED=1 if { path_beg /old }",
        "http-request redirect location /bye clear-cookie S= if { path /logout }",
        "http-response return status 503 content-type text/plain string down if { status 500 }",
    ];
    let haproxy_cfg = format!(
        "global\n  expose-experimental-directives\n\
         defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\n\
         frontend fe\n  bind 127.0.0.1:{{port}}\n  {}\n  default_backend be\n\
         backend be\n  server s {}\n",
        rules.join("\n  "),
        be.addr
    );
    let Some(haproxy) = common::haproxy::start(&haproxy_cfg) else {
        eprintln!("haproxy not installed: skipped");
        return;
    };
    let (mut req_rules, mut res_rules) = (Vec::new(), Vec::new());
    for r in rules {
        let (list, rest) = match r.strip_prefix("http-request ") {
            Some(rest) => (&mut req_rules, rest),
            None => (&mut res_rules, &r["http-response ".len()..]),
        };
        list.push(format!("{rest:?}"));
    }
    let proxy = proxy(
        &format!(
            "http-request = [{}]\nhttp-response = [{}]",
            req_rules.join(", "),
            res_rules.join(", ")
        ),
        &be,
    );
    let ask = |port: u16, target: &str| {
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut rd = BufReader::new(connect(addr));
        let req = format!("GET {target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let (status, head, body) = exchange(&mut rd, &req, false);
        let field = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(": ")?;
                    n.eq_ignore_ascii_case(name).then(|| v.to_string())
                })
                .unwrap_or_default()
        };
        (status, field("location"), field("set-cookie"), body)
    };
    for target in [
        "/put",
        "//a//b/../c?z=%2f&a=1",
        "/old/x?q=1",
        "/old/",
        "/logout",
        "/broken",
        "/d/%41%2f?b&a=%7e",
        // `strict`: HAProxy's 400 page.
        "/bad%zz",
        "/q?x=%",
    ] {
        assert_eq!(
            ask(proxy.addr().port(), target),
            ask(haproxy.port, target),
            "{target}: percore (left) and HAProxy (right) differ"
        );
    }
}

/// `deny deny_status 401|407` answer with HAProxy's own pages for those
/// codes (they fell back to the 500 page, which has no 401 or 407).
#[test]
fn deny_with_401_and_407_answers_haproxys_pages() {
    let be = backend();
    let proxy = proxy(
        r#"http-request = [
  "deny deny_status 401 if { path /a }",
  "deny deny_status 407 if { path /b }",
]"#,
        &be,
    );
    for (target, status) in [("/a", 401), ("/b", 407)] {
        let mut rd = BufReader::new(connect(proxy.addr()));
        let (got, head, body) = exchange(&mut rd, &get(target), false);
        assert_eq!(got, status, "{head}");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} Unauthorized")),
            "{head}"
        );
        assert_eq!(
            body,
            format!(
                "<html><body><h1>{status} Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n"
            )
        );
    }
    assert_eq!(be.received().len(), 0, "denied requests reach no server");
}
