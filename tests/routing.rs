//! HTTP routing end to end: ACL fetches and flags, `http-request` /
//! `http-response` actions, `use_backend`, HTTP balancing and cookie
//! persistence, through the real binary over loopback sockets.

mod common;

use common::http_backend::*;
use common::*;
use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};

/// A configuration with frontend `fe` on `{port}` and the given backends
/// (name, body), all mode http.
fn config(top: &str, frontend: &str, backends: &[(&str, String)]) -> String {
    let mut text = format!(
        r#"
[global]
threads = 1
maxconn = 1000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s", tarpit = "200ms" }}

{top}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "{}"
{frontend}
"#,
        backends[0].0
    );
    for (name, body) in backends {
        text.push_str(&format!("\n[[backend]]\nname = \"{name}\"\n{body}\n"));
    }
    text
}

fn servers_of(backends: &[&HttpBackend]) -> String {
    servers(&backends.iter().map(|b| b.addr).collect::<Vec<_>>())
}

fn client(proxy: &Proxy) -> BufReader<TcpStream> {
    BufReader::new(connect(proxy.addr()))
}

fn ask(rd: &mut BufReader<TcpStream>, req: &str) -> (u16, String, Vec<u8>) {
    rd.get_mut().write_all(req.as_bytes()).unwrap();
    read_response(rd, req.starts_with("HEAD ")).expect("a response")
}

/// One request on a new connection.
fn once(proxy: &Proxy, req: &str) -> (u16, String, String) {
    let (status, head, body) = ask(&mut client(proxy), req);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// Answers with the name of the backend and the request's headers, one
/// `name: value` per line.
fn named_backend(name: &'static str) -> HttpBackend {
    HttpBackend::start(move |r| {
        let mut body = format!("{name}\n{} {}\n", r.method, r.target);
        for (n, v) in &r.headers {
            body.push_str(&format!("{}: {v}\n", n.to_ascii_lowercase()));
        }
        ok(&body)
    })
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect()
}

#[test]
fn every_fetch_and_flag_over_sockets() {
    let be = named_backend("be");
    let dir = tempfile::tempdir().unwrap();
    let patterns = dir.path().join("paths.txt");
    std::fs::write(&patterns, "# static prefixes\n/nothing\n\n/a/\n").unwrap();
    let rules = [
        ("hdr", "hdr(X-Kind) -i websocket"),
        ("hdr_beg", "hdr_beg(host) www."),
        ("hdr_end", "hdr_end(host) .com"),
        ("hdr_sub", "hdr_sub(host) xampl"),
        ("hdr_dom", "hdr_dom(host) example.com"),
        ("hdr_reg", "hdr_reg(host) ^www[.]ex"),
        ("hdr_cnt", "hdr_cnt(X-Dup) eq 2"),
        ("path", "path /a/b.css"),
        ("path_beg", "path_beg /a/"),
        ("path_end", "path_end -i .CSS"),
        ("path_sub", "path_sub b.c"),
        ("path_dir", "path_dir a"),
        ("path_reg", "path_reg ^/a/[a-z]+[.]css$"),
        ("url", "url /a/b.css?t=1&u=2"),
        ("url_param", "url_param(u) 2"),
        ("query", "query t=1&u=2"),
        ("method", "method POST"),
        ("req.ver", "req.ver 1.1"),
        ("src", "src 10.0.0.0/8 127.0.0.0/8"),
        ("src_v6", "src 2001:db8::/32"),
        ("src_port", "src_port 1:65535"),
        ("dst_port", "dst_port {port}"),
        ("ssl_fc", "ssl_fc"),
        ("ssl_fc_sni", "ssl_fc_sni -m found"),
        ("req.cook", "req.cook(sess) abc"),
        ("found", "hdr(X-Opt) -m found"),
        ("len", "hdr(X-Opt) -m len 3"),
        ("m_beg", "hdr(X-Opt) -m beg ab"),
        ("m_sub", "hdr(X-Opt) -m sub b"),
        ("m_end", "hdr(X-Opt) -m end bc"),
        ("m_reg", "hdr(X-Opt) -m reg ^a.c$"),
        ("m_str", "hdr(X-Opt) -m str abc"),
        ("file", "path_beg -f PATTERNS"),
        ("auth", "http_auth(users)"),
    ];
    let lines: Vec<String> = rules
        .iter()
        .map(|(name, acl)| {
            let acl = acl.replace("PATTERNS", &patterns.display().to_string());
            format!("  'add-header X-Hit {name} if {{ {acl} }}',")
        })
        .collect();
    let frontend = format!("http-request = [\n{}\n]", lines.join("\n"));
    let top = r#"[[userlist]]
name = "users"
users = [{ name = "alice", insecure-password = "s3cret" }]"#;
    let proxy = Proxy::start(&config(top, &frontend, &[("be", servers_of(&[&be]))]));

    let all = "POST /a/b.css?t=1&u=2 HTTP/1.1\r\nHost: www.example.com\r\nX-Kind: WebSocket\r\n\
               X-Dup: 1\r\nX-Dup: 2\r\nCookie: x=1; sess=abc\r\nX-Opt: abc\r\n\
               Authorization: Basic YWxpY2U6czNjcmV0\r\nContent-Length: 0\r\n\r\n";
    let (status, _, body) = once(&proxy, all);
    assert_eq!(status, 200);
    let hits: Vec<&str> = header(&body, "x-hit");
    let expected: Vec<&str> = rules
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !["ssl_fc", "ssl_fc_sni", "src_v6"].contains(n))
        .collect();
    assert_eq!(hits, expected);

    // A request matching almost nothing.
    let none = "GET /zz HTTP/1.1\r\nHost: other.org\r\nX-Opt: abcd\r\nX-Dup: 1\r\n\
                Authorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n";
    let (_, _, body) = once(&proxy, none);
    assert_eq!(
        header(&body, "x-hit"),
        vec!["req.ver", "src", "src_port", "dst_port", "found", "m_beg", "m_sub"]
    );
}

#[test]
fn request_actions() {
    let be = named_backend("be");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("maintenance.html");
    std::fs::write(&page, "<h1>back soon</h1>").unwrap();
    let frontend = format!(
        r#"acl = {{ admin = "path_beg /admin", local = "src 127.0.0.1" }}
http-request = [
  "allow if {{ path /allowed }}",
  "deny if {{ path /allowed }}",
  "deny deny_status 429 if {{ path /slow-down }}",
  "deny if {{ path /forbidden }}",
  "reject if {{ path /reject }}",
  "tarpit if {{ path /tarpit }}",
  "redirect scheme https code 301 if {{ path_beg /secure }}",
  "redirect location https://example.org/moved code 308 if {{ path /moved }}",
  "redirect prefix /v2 drop-query if {{ path_beg /v1 }}",
  "redirect prefix https://new.example code 303 if {{ path_beg /old }}",
  "return status 503 content-type text/html file {} if {{ path /maintenance }}",
  'return status 200 content-type text/plain string "pong" if {{ path /ping }}',
  "set-header X-Client %[src]",
  "set-header X-Port %[dst_port]",
  "set-header X-Host-Path %[hdr(host)]%[path]",
  "set-header X-Proto %[ssl_fc,iif(https,http)]",
  "set-header X-Last %[hdr(X-Dup),upper]",
  "add-header X-Added one",
  "add-header X-Added two",
  "del-header X-Secret",
  'replace-header X-Rewrite ^v=([0-9]+)$ version-\1',
  "set-header X-Admin yes if admin local",
  "set-header X-Not-Admin yes unless admin",
  "set-path /rewritten%[path] if {{ path_beg /rw }}",
  "set-query lang=en if {{ path_beg /q }}",
]"#,
        page.display()
    );
    let proxy = Proxy::start(&config("", &frontend, &[("be", servers_of(&[&be]))]));

    // allow stops the rules: the deny after it never runs, nor do edits.
    let (status, _, body) = once(&proxy, &get("/allowed"));
    assert_eq!(status, 200);
    assert!(header(&body, "x-added").is_empty(), "{body}");

    let (status, head, _) = once(&proxy, &get("/slow-down"));
    assert_eq!(status, 429, "{head}");
    let (status, _, _) = once(&proxy, &get("/forbidden"));
    assert_eq!(status, 403);

    let mut s = connect(proxy.addr());
    s.write_all(get("/reject").as_bytes()).unwrap();
    let (bytes, _) = read_to_end_or_error(&mut s);
    assert!(bytes.is_empty(), "reject sends nothing");

    let (status, _, _) = once(&proxy, &get("/tarpit"));
    assert_eq!(status, 500);

    let (status, head, _) = once(
        &proxy,
        "GET /secure/x?a=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n",
    );
    assert_eq!(status, 301);
    assert_eq!(
        header(&head, "location"),
        vec!["https://shop.example/secure/x?a=1"]
    );
    let (status, head, _) = once(&proxy, &get("/moved"));
    assert_eq!(status, 308);
    assert_eq!(header(&head, "location"), vec!["https://example.org/moved"]);
    let (status, head, _) = once(&proxy, &get("/v1/users?x=1"));
    assert_eq!(status, 302);
    assert_eq!(header(&head, "location"), vec!["/v2/v1/users"]);
    let (status, head, _) = once(&proxy, &get("/old/page?k=v"));
    assert_eq!(status, 303);
    assert_eq!(
        header(&head, "location"),
        vec!["https://new.example/old/page?k=v"]
    );

    let (status, head, body) = once(&proxy, &get("/maintenance"));
    assert_eq!((status, body.as_str()), (503, "<h1>back soon</h1>"));
    assert_eq!(header(&head, "content-type"), vec!["text/html"]);

    // Local answers keep the connection: several on one.
    let mut c = client(&proxy);
    for _ in 0..3 {
        let (status, _, body) = ask(&mut c, &get("/ping"));
        assert_eq!((status, body.as_slice()), (200, &b"pong"[..]));
    }
    let (status, head, body) = ask(&mut c, "HEAD /ping HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(header(&head, "content-length"), vec!["4"]);
    // ... and the next request still reaches the server.
    let (status, _, body) = ask(
        &mut c,
        "GET /admin/x HTTP/1.1\r\nHost: h.test\r\nX-Secret: s\r\nX-Rewrite: v=42\r\nX-Client: forged\r\nX-Dup: a, b\r\nX-Dup: c\r\n\r\n",
    );
    assert_eq!(status, 200);
    let body = String::from_utf8(body).unwrap();
    assert_eq!(header(&body, "x-client"), vec!["127.0.0.1"]);
    assert_eq!(
        header(&body, "x-port"),
        vec![proxy.port.to_string().as_str()]
    );
    assert_eq!(header(&body, "x-host-path"), vec!["h.test/admin/x"]);
    assert_eq!(header(&body, "x-proto"), vec!["http"]);
    // A value takes the last occurrence, as HAProxy.
    assert_eq!(header(&body, "x-last"), vec!["C"]);
    assert_eq!(header(&body, "x-added"), vec!["one", "two"]);
    assert!(header(&body, "x-secret").is_empty());
    assert_eq!(header(&body, "x-rewrite"), vec!["version-42"]);
    assert_eq!(header(&body, "x-admin"), vec!["yes"]);
    assert!(header(&body, "x-not-admin").is_empty());

    let (_, _, body) = once(&proxy, &get("/rw/a?k=1"));
    assert!(body.contains("GET /rewritten/rw/a?k=1\n"), "{body}");
    assert_eq!(header(&body, "x-not-admin"), vec!["yes"]);
    let (_, _, body) = once(&proxy, &get("/q/a?k=1"));
    assert!(body.contains("GET /q/a?lang=en\n"), "{body}");
}

#[test]
fn response_actions() {
    let be = HttpBackend::start(|r| {
        let extra = vec![
            "Server: internal/1.2".to_string(),
            "X-Powered-By: php".to_string(),
            "Set-Cookie: a=1; Path=/app".to_string(),
        ];
        let status = if r.target == "/error" { 500 } else { 200 };
        Reply::Full(status, extra, b"body".to_vec())
    });
    let frontend = r#"http-response = [
  "set-header Server percore",
  "add-header X-Frame-Options DENY",
  "del-header X-Powered-By",
  'replace-header Set-Cookie ^(.*)Path=/app(.*)$ \1Path=/\2',
  "deny if { status 500 }",
]"#;
    let backend = format!(
        "{}\nhttp-response = [\"add-header X-Backend be\", \"deny deny_status 503 if {{ res.hdr(X-Powered-By) -m found }} {{ status 201 }}\"]",
        servers_of(&[&be])
    );
    let proxy = Proxy::start(&config("", frontend, &[("be", backend)]));
    let (status, head, body) = once(&proxy, &get("/"));
    assert_eq!((status, body.as_str()), (200, "body"));
    assert_eq!(header(&head, "server"), vec!["percore"]);
    assert_eq!(header(&head, "x-frame-options"), vec!["DENY"]);
    assert!(header(&head, "x-powered-by").is_empty());
    assert_eq!(header(&head, "set-cookie"), vec!["a=1; Path=/"]);
    assert_eq!(header(&head, "x-backend"), vec!["be"]);
    let (status, _, _) = once(&proxy, &get("/error"));
    assert_eq!(status, 502, "http-response deny answers 502");
}

#[test]
fn use_backend_routes_in_order_with_default_fallback() {
    let (a, b, c) = (named_backend("a"), named_backend("b"), named_backend("c"));
    let frontend = r#"acl = { is_api = "path_beg /api", v2 = ["hdr(X-Version) 2", "url_param(v) 2"] }
use_backend = ["b if is_api v2", "c if is_api", "c unless { method GET HEAD }"]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("a", servers_of(&[&a])),
            ("b", servers_of(&[&b])),
            ("c", servers_of(&[&c])),
        ],
    ));
    let route = |req: &str| once(&proxy, req).2.lines().next().unwrap_or("").to_string();
    assert_eq!(route(&get("/")), "a");
    assert_eq!(route(&get("/api/x")), "c");
    assert_eq!(route(&get("/api/x?v=2")), "b");
    assert_eq!(
        route("GET /api HTTP/1.1\r\nHost: t\r\nX-Version: 2\r\n\r\n"),
        "b"
    );
    assert_eq!(
        route("DELETE /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
        "c"
    );
    // One connection, requests for different backends in turn.
    let mut conn = client(&proxy);
    for (path, want) in [("/", "a"), ("/api", "c"), ("/", "a"), ("/api?v=2", "b")] {
        let (_, _, body) = ask(&mut conn, &get(path));
        assert!(body.starts_with(want.as_bytes()), "{path}");
    }
}

/// Backend-section rules run after the switch, with the backend's ACLs.
#[test]
fn backend_rules_and_basic_auth_on_one_backend() {
    let (public, admin) = (named_backend("public"), named_backend("admin"));
    let hash = sha_crypt_hash("hunter2");
    let top = format!(
        r#"[[userlist]]
name = "admins"
users = [{{ name = "root", password = "{hash}" }}, {{ name = "ops", insecure-password = "ops-pw" }}]"#
    );
    let frontend = r#"use_backend = ["admin if { path_beg /admin }"]"#;
    let admin_body = format!(
        "{}\nacl = {{ ok = \"http_auth(admins)\" }}\nhttp-request = [\"auth realm Admin-Area unless ok\"]",
        servers_of(&[&admin])
    );
    let proxy = Proxy::start(&config(
        &top,
        frontend,
        &[("public", servers_of(&[&public])), ("admin", admin_body)],
    ));
    let (status, _, body) = once(&proxy, &get("/"));
    assert_eq!(status, 200);
    assert!(body.starts_with("public"));
    let (status, head, _) = once(&proxy, &get("/admin/"));
    assert_eq!(status, 401);
    assert_eq!(
        header(&head, "www-authenticate"),
        vec!["Basic realm=\"Admin-Area\""]
    );
    let with = |creds: &str| {
        format!("GET /admin/ HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {creds}\r\n\r\n")
    };
    // root:hunter2 (SHA-512 crypt), ops:ops-pw (insecure-password)
    let (status, _, body) = once(&proxy, &with("cm9vdDpodW50ZXIy"));
    assert_eq!(status, 200);
    assert!(body.starts_with("admin"));
    let (status, _, _) = once(&proxy, &with("b3BzOm9wcy1wdw=="));
    assert_eq!(status, 200);
    // root:wrong
    let (status, _, _) = once(&proxy, &with("cm9vdDp3cm9uZw=="));
    assert_eq!(status, 401);
}

/// A SHA-512 crypt(3) hash, as `mkpasswd -m sha-512` makes.
fn sha_crypt_hash(password: &str) -> String {
    let params = sha_crypt::Sha512Params::new(5000).unwrap();
    sha_crypt::sha512_simple(password, &params).unwrap()
}

#[test]
fn static_assets_go_to_their_own_backend() {
    let (app, stat) = (named_backend("app"), named_backend("static"));
    let frontend = r#"acl = { static = ["path_beg -i /static /images", "path_end -i .jpg .css .js"] }
use_backend = ["static if static"]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("app", servers_of(&[&app])),
            ("static", servers_of(&[&stat])),
        ],
    ));
    let first = |p: &str| {
        once(&proxy, &get(p))
            .2
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    };
    for p in [
        "/static/x",
        "/IMAGES/logo.png",
        "/a/b/photo.JPG",
        "/site.css",
        "/app.js?v=3",
    ] {
        assert_eq!(first(p), "static", "{p}");
    }
    for p in ["/", "/api/static", "/x.json", "/stat", "/img.jpeg"] {
        assert_eq!(first(p), "app", "{p}");
    }
}

#[test]
fn redirect_to_https_unless_tls() {
    let be = named_backend("be");
    let frontend = r#"http-request = ["redirect scheme https code 301 if !{ ssl_fc }"]"#;
    let proxy = Proxy::start(&config("", frontend, &[("be", servers_of(&[&be]))]));
    let (status, head, body) = once(
        &proxy,
        "GET /cart?id=7 HTTP/1.1\r\nHost: shop.example.com\r\n\r\n",
    );
    assert_eq!(status, 301);
    assert!(body.is_empty());
    assert_eq!(
        header(&head, "location"),
        vec!["https://shop.example.com/cart?id=7"]
    );
    assert!(be.received().is_empty(), "never forwarded");
}

#[test]
fn websocket_upgrades_need_exactly_one_key_and_version() {
    let be = named_backend("be");
    let frontend = r#"acl = { is_ws = "hdr(Upgrade) -i websocket", one_key = "hdr_cnt(Sec-WebSocket-Key) eq 1", one_version = "hdr_cnt(Sec-WebSocket-Version) eq 1" }
http-request = ["deny deny_status 400 if is_ws !one_key || is_ws !one_version"]"#;
    let proxy = Proxy::start(&config("", frontend, &[("be", servers_of(&[&be]))]));
    let upgrade = |extra: &str| {
        format!(
            "GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n"
        )
    };
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let version = "Sec-WebSocket-Version: 13\r\n";
    for bad in [
        upgrade(""),
        upgrade(key),
        upgrade(version),
        upgrade(&format!("{key}{key}{version}")),
        upgrade(&format!("{key}{version}{version}")),
    ] {
        assert_eq!(once(&proxy, &bad).0, 400, "{bad}");
    }
    assert!(be.received().is_empty());
    // A plain request is not an upgrade and passes.
    assert_eq!(once(&proxy, &get("/")).0, 200);
}

#[test]
fn host_based_routing_to_websocket_backends() {
    let chat = ws_echo_server("chat");
    let game = ws_echo_server("game");
    let web = named_backend("web");
    let frontend = r#"acl = { is_ws = "hdr(Upgrade) -i websocket", chat = "hdr(host) -i chat.example.com", game = "hdr_beg(host) -i game." }
use_backend = ["chat if is_ws chat", "game if is_ws game"]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("web", servers_of(&[&web])),
            ("chat", servers(&[chat])),
            ("game", servers(&[game])),
        ],
    ));
    for (host, want) in [
        ("chat.example.com", "chat"),
        ("game.eu.example.com", "game"),
    ] {
        let stream = connect(proxy.addr());
        let url = format!("ws://{host}/socket");
        let (mut ws, response) = tungstenite::client(url.as_str(), stream).expect("handshake");
        assert_eq!(response.status(), 101);
        ws.send(tungstenite::Message::text("hi")).unwrap();
        let reply = loop {
            match ws.read().unwrap() {
                tungstenite::Message::Text(t) => break t.to_string(),
                _ => continue,
            }
        };
        assert_eq!(reply, format!("{want}: hi"));
        ws.close(None).unwrap();
    }
    // Non-WebSocket requests to those hosts stay on the default backend.
    let (_, _, body) = once(&proxy, "GET / HTTP/1.1\r\nHost: chat.example.com\r\n\r\n");
    assert!(body.starts_with("web"));
}

/// A WebSocket server that answers each text message with `name: text`.
fn ws_echo_server(name: &'static str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(m) = ws.read() {
                    match m {
                        tungstenite::Message::Text(t) => {
                            let _ = ws.send(tungstenite::Message::text(format!("{name}: {t}")));
                        }
                        tungstenite::Message::Close(_) => {
                            let _ = ws.flush();
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
    });
    addr
}

/// Backends answering with their own name.
fn named(names: &[&'static str]) -> Vec<HttpBackend> {
    names
        .iter()
        .map(|&n| HttpBackend::start(move |_| ok(n)))
        .collect()
}

fn spread(proxy: &Proxy, reqs: impl Iterator<Item = String>) -> Vec<String> {
    let mut c = client(proxy);
    reqs.map(|r| String::from_utf8(ask(&mut c, &r).2).unwrap())
        .collect()
}

#[test]
fn url_param_keeps_each_table_on_one_server_while_tables_spread() {
    for hash_type in ["map-based", "consistent"] {
        let bes = named(&["s1", "s2", "s3"]);
        let refs: Vec<&HttpBackend> = bes.iter().collect();
        let backend = format!(
            "balance = \"url_param tableId\"\nhash-type = \"{hash_type}\"\n{}",
            servers_of(&refs)
        );
        let proxy = Proxy::start(&config("", "", &[("tables", backend)]));
        let mut owner: HashMap<u32, String> = HashMap::new();
        for round in 0..3 {
            let got = spread(
                &proxy,
                (0..60).map(|t| get(&format!("/play?seat={round}&tableId={t}"))),
            );
            for (t, server) in got.into_iter().enumerate() {
                let prev = owner.entry(t as u32).or_insert_with(|| server.clone());
                assert_eq!(*prev, server, "{hash_type}: table {t} moved");
            }
        }
        let mut per_server: HashMap<&str, usize> = HashMap::new();
        for s in owner.values() {
            *per_server.entry(s.as_str()).or_default() += 1;
        }
        assert_eq!(
            per_server.len(),
            3,
            "{hash_type}: tables spread: {per_server:?}"
        );
        // Requests without the parameter are balanced round robin.
        let rr = spread(&proxy, (0..6).map(|_| get("/lobby")));
        let distinct: std::collections::HashSet<&String> = rr.iter().collect();
        assert_eq!(distinct.len(), 3, "{rr:?}");
    }
}

#[test]
fn uri_hdr_and_random_balancing() {
    let bes = named(&["s1", "s2", "s3"]);
    let refs: Vec<&HttpBackend> = bes.iter().collect();
    let list = servers_of(&refs);
    let frontend = r#"use_backend = ["by_host if { path_beg /h }", "random2 if { path_beg /r }"]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("by_uri", format!("balance = \"uri depth 1\"\n{list}")),
            ("by_host", format!("balance = \"hdr(Host)\"\n{list}")),
            ("random2", format!("balance = \"random(2)\"\n{list}")),
        ],
    ));
    // uri depth 1: /dirN/... share a server whatever follows.
    let mut by_dir: HashMap<usize, String> = HashMap::new();
    for i in 0..40 {
        let dir = i % 10;
        let got = spread(&proxy, std::iter::once(get(&format!("/dir{dir}/f{i}"))));
        let prev = by_dir.entry(dir).or_insert_with(|| got[0].clone());
        assert_eq!(*prev, got[0]);
    }
    let distinct: std::collections::HashSet<&String> = by_dir.values().collect();
    assert!(distinct.len() >= 2, "{by_dir:?}");
    // hdr(Host): one host, one server.
    for host in ["a.test", "b.test", "c.test", "d.test"] {
        let req = format!("GET /h HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let got = spread(&proxy, (0..5).map(|_| req.clone()));
        assert!(got.iter().all(|s| *s == got[0]), "{host}: {got:?}");
    }
    // random(2): every server gets traffic.
    let got = spread(&proxy, (0..60).map(|_| get("/r")));
    let distinct: std::collections::HashSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 3);
}

#[test]
fn cookie_insert_sticks_and_falls_back_when_the_server_is_down() {
    let bes = named(&["s1", "s2"]);
    let backend = format!(
        "cookie = \"SRV insert indirect nocache\"\nservers = [{{ name = \"s1\", addr = \"{}\", cookie = \"c1\" }}, {{ name = \"s2\", addr = \"{}\", cookie = \"c2\" }}]",
        bes[0].addr, bes[1].addr
    );
    let proxy = Proxy::start(&config("", "", &[("be", backend)]));
    let (_, head, first) = once(&proxy, &get("/"));
    let set = header(&head, "set-cookie");
    assert_eq!(set.len(), 1, "{head}");
    assert_eq!(header(&head, "cache-control"), vec!["private"]);
    let value = set[0].split(';').next().unwrap().to_string();
    let want = if first == "s1" { "SRV=c1" } else { "SRV=c2" };
    assert_eq!(value, want);
    // With the cookie: same server every time, no new cookie, and the
    // cookie is not forwarded (indirect).
    for _ in 0..6 {
        let req = format!("GET / HTTP/1.1\r\nHost: t\r\nCookie: a=b; {value}\r\n\r\n");
        let (_, head, body) = once(&proxy, &req);
        assert_eq!(body, first);
        assert!(header(&head, "set-cookie").is_empty());
    }
    let seen: Vec<Received> = bes.iter().flat_map(|b| b.received()).collect();
    for r in &seen {
        let cookie = r.header("cookie").unwrap_or("");
        assert!(!cookie.contains("SRV="), "indirect: {cookie}");
    }
    assert!(seen.iter().any(|r| r.header("cookie") == Some("a=b")));
    // An unknown cookie value balances normally and gets a new cookie.
    let (_, head, _) = once(
        &proxy,
        "GET / HTTP/1.1\r\nHost: t\r\nCookie: SRV=zz\r\n\r\n",
    );
    assert_eq!(header(&head, "set-cookie").len(), 1);
}

#[test]
fn cookie_persistence_falls_back_when_the_server_is_unusable() {
    let alive = named(&["alive"]);
    let dead = closed_addr();
    let backend = format!(
        "cookie = \"SRV insert\"\nretries = 0\nredispatch = true\nservers = [{{ name = \"dead\", addr = \"{dead}\", cookie = \"d\", disabled = true }}, {{ name = \"alive\", addr = \"{}\", cookie = \"a\" }}]",
        alive[0].addr
    );
    let proxy = Proxy::start(&config("", "", &[("be", backend)]));
    let (status, head, body) = once(&proxy, "GET / HTTP/1.1\r\nHost: t\r\nCookie: SRV=d\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, "alive"));
    // The client is re-stuck to the server that answered.
    assert_eq!(header(&head, "set-cookie"), vec!["SRV=a; path=/"]);
}

#[test]
fn cookie_prefix_and_rewrite_modes() {
    let app = HttpBackend::start(|r| {
        let cookie = r.header("cookie").unwrap_or("").to_string();
        Reply::Full(
            200,
            vec!["Set-Cookie: JSESSIONID=abc123; Path=/".to_string()],
            cookie.into_bytes(),
        )
    });
    let prefix = format!(
        "cookie = \"JSESSIONID prefix\"\nservers = [{{ name = \"s1\", addr = \"{}\", cookie = \"n1\" }}]",
        app.addr
    );
    let rewrite = format!(
        "cookie = \"JSESSIONID rewrite\"\nservers = [{{ name = \"s1\", addr = \"{}\", cookie = \"n1\" }}]",
        app.addr
    );
    let frontend = r#"use_backend = ["rewrite if { path_beg /rw }"]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[("prefix", prefix), ("rewrite", rewrite)],
    ));
    let (_, head, _) = once(&proxy, &get("/"));
    assert_eq!(
        header(&head, "set-cookie"),
        vec!["JSESSIONID=n1~abc123; Path=/"]
    );
    // The prefix is removed before the server sees the cookie.
    let (_, _, body) = once(
        &proxy,
        "GET / HTTP/1.1\r\nHost: t\r\nCookie: JSESSIONID=n1~abc123\r\n\r\n",
    );
    assert_eq!(body, "JSESSIONID=abc123");
    let (_, head, _) = once(&proxy, &get("/rw"));
    assert_eq!(header(&head, "set-cookie"), vec!["JSESSIONID=n1; Path=/"]);
}

/// The shipped config.toml answers /percore-status itself, with no server
/// running behind it.
#[test]
fn shipped_config_answers_status_without_a_backend() {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"))
        .unwrap()
        .replace("127.0.0.1:8000", "127.0.0.1:{port}")
        .replace("127.0.0.1:8001", &format!("127.0.0.1:{}", free_port()))
        .replace("127.0.0.1:9000", &closed_addr().to_string())
        .replace("threads = \"auto\"", "threads = 1");
    let proxy = Proxy::start(&shipped);
    let (status, head, body) = once(&proxy, &get("/percore-status"));
    assert_eq!((status, body.as_str()), (200, "percore is running"));
    assert_eq!(header(&head, "content-type"), vec!["text/plain"]);
    assert_eq!(once(&proxy, &get("/")).0, 503);
}

/// `src` with IPv6 networks, over an IPv6 connection.
#[test]
fn src_matches_ipv6_clients() {
    let be = named_backend("be");
    let frontend = r#"http-request = ["add-header X-Net v6-loopback if { src ::1/128 }", "add-header X-Net v6-doc if { src 2001:db8::/32 }", "add-header X-Net v4 if { src 127.0.0.0/8 }"]"#;
    let text = config("", frontend, &[("be", servers_of(&[&be]))]).replace(
        "bind = [\"127.0.0.1:{port}\"]",
        "bind = [\"127.0.0.1:{port}\", \"[::1]:{port}\"]",
    );
    let proxy = Proxy::start(&text);
    let v6: SocketAddr = format!("[::1]:{}", proxy.port).parse().unwrap();
    let mut c = BufReader::new(connect(v6));
    let (_, _, body) = ask(&mut c, &get("/"));
    let body = String::from_utf8(body).unwrap();
    assert_eq!(header(&body, "x-net"), vec!["v6-loopback"]);
    let (_, _, body) = once(&proxy, &get("/"));
    assert_eq!(header(&body, "x-net"), vec!["v4"]);
}

/// The first line of a `named_backend` answer: which backend served.
fn served_by(body: &str) -> &str {
    body.lines().next().unwrap_or("")
}

/// HAProxy: `option forwardfor` and `option http-server-close` apply if
/// set in the frontend or in the backend the request was routed to;
/// `http-reuse` and `timeout server` are the chosen backend's; errorfiles
/// are looked up in the chosen backend, then the frontend. None of them
/// comes from `default_backend` when `use_backend` chose another.
#[test]
fn http_settings_are_those_of_the_chosen_backend() {
    let (plain, special, shared) = (
        named_backend("plain"),
        named_backend("special"),
        named_backend("shared"),
    );
    let slow = HttpBackend::start(|_| {
        std::thread::sleep(std::time::Duration::from_secs(3));
        ok("late")
    });
    let dir = tempfile::tempdir().unwrap();
    let page = |name: &str, body: &str| {
        let path = dir.path().join(name);
        let status = &name[name.len() - 8..name.len() - 5];
        let page = format!(
            "HTTP/1.1 {status} Error\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        std::fs::write(&path, page).unwrap();
        path.display().to_string()
    };
    let fe_page = page("fe503.http", "frontend page");
    let be_page = page("be503.http", "default backend page");
    let own_page = page("own503.http", "own page");
    let fe_forbidden = page("fe403.http", "frontend forbidden");
    let special_forbidden = page("special403.http", "special forbidden");
    let stats_port = free_port();
    let closed = closed_addr();
    let text = format!(
        r#"
[global]
threads = 1
maxconn = 1000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "plain"
errorfile = {{ 503 = "{fe_page}", 403 = "{fe_forbidden}" }}
http-request = "deny if {{ path_beg /fe-deny }}"
use_backend = [
  "special if {{ path_beg /special }}",
  "shared if {{ path_beg /shared }}",
  "slow if {{ path_beg /slow }}",
  "down_own_page if {{ path_beg /down-own }}",
  "down if {{ path_beg /down }}",
]

[[backend]]
name = "plain"
http-reuse = "never"
timeout = {{ server = "30s" }}
errorfile = {{ 503 = "{be_page}" }}
{plain_servers}

[[backend]]
name = "special"
forwardfor = {{ header = "X-Real-IP" }}
http-server-close = true
errorfile = {{ 403 = "{special_forbidden}" }}
http-request = "deny if {{ path_beg /special/deny }}"
{special_servers}

[[backend]]
name = "shared"
http-reuse = "always"
{shared_servers}

[[backend]]
name = "slow"
timeout = {{ server = "300ms" }}
{slow_servers}

[[backend]]
name = "down_own_page"
errorfile = {{ 503 = "{own_page}" }}
servers = [{{ name = "gone", addr = "{closed}" }}]

[[backend]]
name = "down"
servers = [{{ name = "gone", addr = "{closed}" }}]

[stats]
bind = "127.0.0.1:{stats_port}"
"#,
        plain_servers = servers_of(&[&plain]),
        special_servers = servers_of(&[&special]),
        shared_servers = servers_of(&[&shared]),
        slow_servers = servers_of(&[&slow]),
    );
    let proxy = Proxy::start(&text);
    let stats: SocketAddr = format!("127.0.0.1:{stats_port}").parse().unwrap();

    // forwardfor and http-server-close of the chosen backend.
    let (_, _, body) = once(&proxy, &get("/special"));
    assert_eq!(served_by(&body), "special");
    assert!(body.contains("x-real-ip: 127.0.0.1\n"), "{body}");
    assert!(body.contains("connection: close\n"), "{body}");
    let (_, _, body) = once(&proxy, &get("/"));
    assert_eq!(served_by(&body), "plain");
    assert!(!body.contains("x-real-ip"), "{body}");
    assert!(!body.contains("connection: close"), "{body}");

    // http-reuse always on the chosen backend: a new client connection's
    // first request takes the idle server connection the previous client
    // connection left (the default backend says never).
    for _ in 0..3 {
        let (status, _, body) = once(&proxy, &get("/shared"));
        assert_eq!((status, served_by(&body)), (200, "shared"));
        // The session (and its parking of the server connection) is over.
        stats_when(stats, |v| v["frontends"][0]["sessions_cur"] == 0);
    }
    assert_eq!(shared.accepted(), 1, "one server connection, reused");
    // ...while the default backend's never keeps them private.
    for _ in 0..2 {
        once(&proxy, &get("/plain"));
        stats_when(stats, |v| v["frontends"][0]["sessions_cur"] == 0);
    }
    assert_eq!(plain.accepted(), 3, "never: one per client connection");

    // timeout server of the chosen backend (the default one has 30 s).
    let (status, _, _) = once(&proxy, &get("/slow"));
    assert_eq!(status, 504);

    // errorfiles: the chosen backend's, else the frontend's, never the
    // default backend's.
    let (status, _, body) = once(&proxy, &get("/down-own"));
    assert_eq!((status, body.as_str()), (503, "own page"));
    let (status, _, body) = once(&proxy, &get("/down"));
    assert_eq!((status, body.as_str()), (503, "frontend page"));
    // A deny by a backend rule: that backend's page; by a frontend rule:
    // the frontend's (HAProxy: the stream's backend, then its frontend).
    let (status, _, body) = once(&proxy, &get("/special/deny"));
    assert_eq!((status, body.as_str()), (403, "special forbidden"));
    let (status, _, body) = once(&proxy, &get("/fe-deny"));
    assert_eq!((status, body.as_str()), (403, "frontend forbidden"));
}

/// HAProxy runs each http-request rule on the request as the rules before
/// it left it, and use_backend after all of the frontend's http-request
/// rules; the backend's rules see the frontend's rewrites too.
#[test]
fn rules_see_the_rewrites_of_earlier_rules() {
    let (a, b, c, d) = (
        named_backend("a"),
        named_backend("b"),
        named_backend("c"),
        named_backend("d"),
    );
    let frontend = r#"forwardfor = true
http-request = [
  "set-header X-Route b if { path /route }",
  "set-path /new%[path] if { path_beg /old }",
  "del-header X-Debug",
  "del-header X-Forwarded-For",
  "set-header X-A one",
  "set-header X-B %[hdr(X-A)]-copy",
  "add-header X-Hit yes if { hdr(X-B) one-copy }",
  "set-query table=7 if { path_beg /q }",
  "redirect location %[path] code 302 if { path_beg /new/old/redirect }",
]
use_backend = [
  "b if { hdr(X-Route) b }",
  "c if { path_beg /new/ }",
  "d if { hdr(X-Debug) -m found }",
  "d if { url_param(table) 7 }",
]"#;
    let d_rules = format!(
        "{}\nhttp-request = [\"add-header X-Seen-A yes if {{ hdr(X-A) one }}\"]",
        servers_of(&[&d])
    );
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("a", servers_of(&[&a])),
            ("b", servers_of(&[&b])),
            ("c", servers_of(&[&c])),
            ("d", d_rules),
        ],
    ));
    // set-header then hdr().
    let (_, _, body) = once(&proxy, &get("/route"));
    assert_eq!(served_by(&body), "b", "{body}");
    // set-path then path_beg; the server gets the new path.
    let (_, _, body) = once(&proxy, &get("/old/x?k=1"));
    assert_eq!(served_by(&body), "c", "{body}");
    assert!(body.contains("GET /new/old/x?k=1\n"), "{body}");
    // del-header then -m found: the client's X-Debug is gone.
    let (_, _, body) = once(&proxy, "GET / HTTP/1.1\r\nHost: t\r\nX-Debug: 1\r\n\r\n");
    assert_eq!(served_by(&body), "a", "{body}");
    assert!(!body.contains("x-debug"), "{body}");
    // A value sees the header a rule before set; a condition sees it too.
    assert!(body.contains("x-b: one-copy\n"), "{body}");
    assert!(body.contains("x-hit: yes\n"), "{body}");
    // set-query then url_param; the backend's rules see the frontend's
    // rewrites.
    let (_, _, body) = once(&proxy, &get("/q?table=1"));
    assert_eq!(served_by(&body), "d", "{body}");
    assert!(body.contains("GET /q?table=7\n"), "{body}");
    assert!(body.contains("x-seen-a: yes\n"), "{body}");
    // A redirect built from the rewritten path.
    let (status, head, _) = once(&proxy, &get("/old/redirect/x"));
    assert_eq!(status, 302);
    assert_eq!(header(&head, "location"), vec!["/new/old/redirect/x"]);
    // X-Forwarded-For is added after the rules (HAProxy adds it last):
    // the rule removed the client's, percore's own is there once.
    let (_, _, body) = once(
        &proxy,
        "GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    );
    let xff: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("x-forwarded-for: "))
        .collect();
    assert_eq!(xff, vec!["127.0.0.1"], "{body}");
}

/// Without default_backend, a request no use_backend rule routes gets a
/// 503, logged with the frontend as backend and `<NOSRV>` (HAProxy).
#[test]
fn no_default_backend_answers_503_when_no_rule_matches() {
    let b = named_backend("b");
    let text = format!(
        r#"
[global]
threads = 1
maxconn = 1000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "edge"
bind = ["127.0.0.1:{{port}}"]
log = true
log-format = "httplog"
use_backend = "b if {{ path_beg /b }}"

[[backend]]
name = "b"
{servers}
"#,
        servers = servers_of(&[&b]),
    );
    let (proxy, log) = Proxy::start_logging(&text);
    let mut conn = client(&proxy);
    let (status, _, body) = ask(&mut conn, &get("/b/1"));
    assert_eq!(
        (status, served_by(&String::from_utf8_lossy(&body))),
        (200, "b")
    );
    let (status, head, body) = ask(&mut conn, &get("/other"));
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("No server is available"));
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let lines = log.wait_for_lines(2);
    let line = &lines[1];
    assert!(line.contains(" edge edge/<NOSRV> "), "{line}");
    assert!(line.contains(" 503 "), "{line}");
    assert!(line.contains(" SC"), "{line}");
    assert!(line.contains("\"GET /other HTTP/1.1\""), "{line}");
    assert!(lines[0].contains(" edge b/"), "{}", lines[0]);
}

/// A frontend that only answers by itself needs no backend at all.
#[test]
fn frontend_with_only_a_return_rule_needs_no_backend() {
    let text = r#"
[global]
threads = 1

[defaults]
mode = "http"
timeout = { connect = "2s", client = "30s", server = "30s" }

[[frontend]]
name = "hello"
bind = ["127.0.0.1:{port}"]
http-request = "return status 200 content-type text/plain string hello"
"#;
    let proxy = Proxy::start(text);
    let (status, _, body) = once(&proxy, &get("/"));
    assert_eq!((status, body.as_str()), (200, "hello"));
}

/// Each core remembers refused credentials (so retrying one wrong
/// password costs one bcrypt, which `rules::auth`'s unit test counts):
/// the retries are still refused, and the right password is accepted
/// after them, on the same connection and on new ones.
#[test]
fn retried_wrong_passwords_stay_refused_and_never_lock_out_the_right_one() {
    let be = named_backend("be");
    let hash = bcrypt::hash("hunter2", 4)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let top = format!(
        r#"[[userlist]]
name = "users"
users = [{{ name = "root", password = "{hash}" }}]"#
    );
    let frontend = r#"http-request = "auth unless { http_auth(users) }""#;
    let proxy = Proxy::start(&config(&top, frontend, &[("be", servers_of(&[&be]))]));
    let with =
        |creds: &str| format!("GET / HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {creds}\r\n\r\n");
    // root:wrong, root:hunter2, root:hunter3
    let (wrong, right, near) = ("cm9vdDp3cm9uZw==", "cm9vdDpodW50ZXIy", "cm9vdDpodW50ZXIz");
    let mut conn = client(&proxy);
    for _ in 0..5 {
        let (status, _, _) = ask(&mut conn, &with(wrong));
        assert_eq!(status, 401);
    }
    let (status, _, body) = ask(&mut conn, &with(right));
    assert_eq!(
        (status, served_by(&String::from_utf8_lossy(&body))),
        (200, "be")
    );
    for creds in [near, wrong, near] {
        assert_eq!(once(&proxy, &with(creds)).0, 401, "{creds}");
    }
    assert_eq!(once(&proxy, &with(right)).0, 200);
}

/// `hdr(<name>,<occ>)` reads one value (1 the first, -1 the last, across
/// repeated fields and comma lists), in ACLs and in `%[...]`; the ACL
/// flags `-n` and `-u <id>` are accepted as HAProxy writes them.
#[test]
fn header_occurrences_and_flags_n_u() {
    let (a, b, c, d) = (
        named_backend("a"),
        named_backend("b"),
        named_backend("c"),
        named_backend("d"),
    );
    let frontend = r#"http-request = "set-header X-First %[hdr(X-Tag,1)] if { hdr(X-Tag) -m found }"
use_backend = [
  "b if { hdr(X-Forwarded-For,-1) -m beg 10. }",
  "c if { hdr(X-Tag,2) -u 3 blue }",
  "d if { path /src } { src -n 127.0.0.0/8 }",
]"#;
    let proxy = Proxy::start(&config(
        "",
        frontend,
        &[
            ("a", servers_of(&[&a])),
            ("b", servers_of(&[&b])),
            ("c", servers_of(&[&c])),
            ("d", servers_of(&[&d])),
        ],
    ));
    let route = |req: &str| once(&proxy, req).2;
    let xff = |v: &str| format!("GET / HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {v}\r\n\r\n");
    assert_eq!(served_by(&route(&xff("1.1.1.1, 10.0.0.5"))), "b");
    assert_eq!(served_by(&route(&xff("10.0.0.5, 1.1.1.1"))), "a");
    let body = route("GET / HTTP/1.1\r\nHost: t\r\nX-Tag: red\r\nX-Tag: blue\r\n\r\n");
    assert_eq!(served_by(&body), "c", "{body}");
    assert!(body.contains("x-first: red\n"), "{body}");
    let body = route("GET / HTTP/1.1\r\nHost: t\r\nX-Tag: blue, red\r\n\r\n");
    assert_eq!(served_by(&body), "a", "{body}");
    assert!(body.contains("x-first: blue\n"), "{body}");
    assert_eq!(served_by(&route(&get("/src"))), "d");
}

/// Balancing hashes the request as the rules left it: a header set by an
/// http-request rule keeps each key on one server.
#[test]
fn balancing_hashes_the_rewritten_request() {
    let servers = named(&["s1", "s2", "s3"]);
    let frontend = r#"http-request = "set-header X-Shard %[url_param(t)]""#;
    let backend = format!(
        "balance = \"hdr(X-Shard)\"\n{}",
        servers_of(&servers.iter().collect::<Vec<_>>())
    );
    let proxy = Proxy::start(&config("", frontend, &[("be", backend)]));
    let mut seen = std::collections::HashSet::new();
    for t in 0..12 {
        let got = spread(&proxy, (0..4).map(|_| get(&format!("/?t={t}"))));
        assert!(got.iter().all(|s| *s == got[0]), "t={t}: {got:?}");
        seen.insert(got[0].clone());
    }
    assert!(seen.len() > 1, "keys spread over servers: {seen:?}");
}

/// http-response rules, like http-request ones, see the rewrites of the
/// rules before them: the backend's first, then the frontend's.
#[test]
fn response_rules_see_the_rewrites_of_earlier_rules() {
    let be =
        HttpBackend::start(|_| Reply::Full(200, vec!["X-Server: app1".into()], b"body".to_vec()));
    let frontend = r#"http-response = [
  "add-header X-Saw-Backend yes if { res.hdr(X-From-Backend) b }",
  "del-header X-Server",
  "add-header X-Had-Server yes if { res.hdr(X-Server) -m found }",
  "set-header X-A one",
  "set-header X-B %[res.hdr(X-A)]-copy",
  "add-header X-Hit yes if { res.hdr(X-B) one-copy }",
]"#;
    let backend = format!(
        "{}\nhttp-response = \"set-header X-From-Backend b\"",
        servers_of(&[&be])
    );
    let proxy = Proxy::start(&config("", frontend, &[("be", backend)]));
    let (status, head, body) = once(&proxy, &get("/"));
    assert_eq!((status, body.as_str()), (200, "body"));
    assert_eq!(header(&head, "x-saw-backend"), vec!["yes"], "{head}");
    assert!(header(&head, "x-server").is_empty(), "{head}");
    assert!(header(&head, "x-had-server").is_empty(), "{head}");
    assert_eq!(header(&head, "x-b"), vec!["one-copy"], "{head}");
    assert_eq!(header(&head, "x-hit"), vec!["yes"], "{head}");
}
