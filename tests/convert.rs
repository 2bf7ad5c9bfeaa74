//! `percore convert`, proven against HAProxy itself: every haproxy.cfg of
//! tests/convert/ is converted, HAProxy 2.6 runs the original and percore
//! the conversion, both in front of the same backends started here, and
//! the same scripted requests go to both. Status, the server that
//! answered, `Location`/`Set-Cookie`, and the header fields the server saw
//! must agree (and match what the file expects).
//!
//! A corpus file scripts its test in `#@` comments (HAProxy ignores them):
//!
//! ```text
//! #@ env NAME=value          environment of the converter and of HAProxy
//! #@ down 9003               nothing listens on that server port
//! #@ failcheck 9002          that server fails health checks (HTTP /health*
//!                            gets 503, PING gets -ERR, SOCKS gets 05 ff)
//! #@ convert-exit 2          expected exit status of percore convert
//! #@ unmapped <text>         a line holding <text> must be reported as not
//!                            converted (stderr and a comment in the output)
//! #@ differs <field> <why>  a deliberate difference (docs/migration.md):
//!                            the response field, or the field the server
//!                            saw, is not compared in this file
//! #@ req 8080 GET /path [H=Name:value]... [tls[=sni]] [auth=u:p] [wait] [own-page] => 200 9001
//! #@ tcp 8081 [wait] => 9001
//! ```
//!
//! Ports 8000-8999 are frontends (each proxy gets its own free ports),
//! 9000-9999 servers (one test backend each, shared by both proxies); the
//! answering server is named by its port in the file, `-` for none.
//! `/etc/haproxy/` and `/run/haproxy/` are moved to a temporary
//! directory holding a self-signed certificate for *.example.com and the
//! error pages. `wait` repeats a request until it gets the expected answer
//! (health checks take a moment to mark a server down), on both proxies.
//! `own-page` marks an answer each proxy writes itself (the stats page):
//! only the status is compared. `same:<group>` as the server: every
//! request of the group must reach one server, not necessarily the one
//! HAProxy picks (percore's hashes are its own). Each of these deliberate
//! differences is listed in docs/migration.md with the file's name.

mod common;

use common::haproxy::{self, Haproxy};
use common::{free_port, Proxy, PATIENCE};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Header fields a server saw, per test request id.
type Seen = Arc<Mutex<HashMap<String, Vec<(String, String)>>>>;

#[derive(Debug, Default)]
struct Script {
    env: Vec<(String, String)>,
    down: Vec<u16>,
    failcheck: Vec<u16>,
    convert_exit: i32,
    unmapped: Vec<String>,
    differs: Vec<String>,
    requests: Vec<Request>,
}

#[derive(Debug, Clone)]
struct Request {
    line: usize,
    port: u16,
    tcp: bool,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    tls: Option<String>,
    auth: Option<String>,
    wait: bool,
    own_page: bool,
    status: u16,
    server: String,
}

fn parse_script(text: &str) -> Script {
    let mut s = Script::default();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("#@") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.first().copied() {
            Some("env") => {
                let (k, v) = words[1].split_once('=').expect("env NAME=value");
                s.env.push((k.into(), v.into()));
            }
            Some("down") => s.down.push(words[1].parse().unwrap()),
            Some("failcheck") => s.failcheck.push(words[1].parse().unwrap()),
            Some("convert-exit") => s.convert_exit = words[1].parse().unwrap(),
            Some("unmapped") => s.unmapped.push(words[1..].join(" ")),
            Some("differs") => s.differs.push(words[1].to_ascii_lowercase()),
            Some(kind @ ("req" | "tcp")) => {
                let arrow = words.iter().position(|w| *w == "=>").expect("=> in #@ req");
                let mut r = Request {
                    line: i + 1,
                    port: words[1].parse().unwrap(),
                    tcp: kind == "tcp",
                    method: String::new(),
                    path: String::new(),
                    headers: Vec::new(),
                    tls: None,
                    auth: None,
                    wait: false,
                    own_page: false,
                    status: 0,
                    server: String::new(),
                };
                let mut opts = &words[2..arrow];
                if !r.tcp {
                    r.method = words[2].into();
                    r.path = words[3].into();
                    opts = &words[4..arrow];
                }
                for o in opts {
                    if let Some(h) = o.strip_prefix("H=") {
                        let (n, v) = h.split_once(':').expect("H=Name:value");
                        r.headers.push((n.into(), v.replace("%20", " ")));
                    } else if *o == "tls" {
                        r.tls = Some("www.example.com".into());
                    } else if let Some(sni) = o.strip_prefix("tls=") {
                        r.tls = Some(sni.into());
                    } else if let Some(a) = o.strip_prefix("auth=") {
                        r.auth = Some(a.into());
                    } else if *o == "wait" {
                        r.wait = true;
                    } else if *o == "own-page" {
                        r.own_page = true;
                    } else {
                        panic!("line {}: unknown request option {o}", i + 1);
                    }
                }
                let expect = &words[arrow + 1..];
                if r.tcp {
                    r.server = expect[0].into();
                } else {
                    r.status = expect[0].parse().unwrap();
                    r.server = expect.get(1).unwrap_or(&"-").to_string();
                }
                s.requests.push(r);
            }
            _ => {}
        }
    }
    s
}

/// Replaces `:<port>` for ports in 8000..=9999 by the mapped ones.
fn remap(text: &str, ports: &HashMap<u16, u16>) -> String {
    let re = regex::Regex::new(r":([89]\d{3})\b").unwrap();
    re.replace_all(text, |c: &regex::Captures<'_>| {
        let p: u16 = c[1].parse().unwrap();
        format!(":{}", ports.get(&p).copied().unwrap_or(p))
    })
    .into_owned()
}

fn ports_in(text: &str, range: std::ops::RangeInclusive<u16>) -> Vec<u16> {
    let re = regex::Regex::new(r":([89]\d{3})\b").unwrap();
    let mut out: Vec<u16> = re
        .captures_iter(text)
        .map(|c| c[1].parse().unwrap())
        .filter(|p| range.contains(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

// ------------------------------------------------------------ backends

/// A test server: HTTP (answers 200 naming itself, records the fields of
/// requests carrying X-Test-Id), the health checks of the corpus (PING,
/// SOCKS5 greeting), and a line protocol for TCP frontends.
fn start_backend(label: u16, failing: bool, seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let seen = Arc::clone(&seen);
            thread::spawn(move || serve(stream, label, failing, &seen));
        }
    });
    port
}

fn serve(stream: TcpStream, label: u16, failing: bool, seen: &Seen) {
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let mut first = [0u8; 8];
    let Ok(n) = stream.peek(&mut first) else {
        return;
    };
    let mut out = stream.try_clone().unwrap();
    let mut rd = BufReader::new(stream);
    if n == 0 {
        return;
    }
    if first[0] == 0x05 {
        let mut greeting = [0u8; 4];
        if rd.read_exact(&mut greeting).is_ok() {
            let _ = out.write_all(if failing {
                &[0x05, 0xff]
            } else {
                &[0x05, 0x00]
            });
        }
        return;
    }
    if first[..n].starts_with(b"PING") {
        let mut line = String::new();
        while rd.read_line(&mut line).is_ok_and(|n| n > 0) {
            if failing {
                // Closing makes the check fail at once (no timeout).
                let _ = out.write_all(b"-ERR\r\n");
                return;
            }
            let _ = out.write_all(b"+PONG\r\n");
            line.clear();
        }
        return;
    }
    let is_http = first[..n]
        .iter()
        .take_while(|b| b.is_ascii_uppercase())
        .count()
        >= 3;
    if !is_http {
        let mut line = String::new();
        if rd.read_line(&mut line).is_ok() {
            let _ = out.write_all(format!("{label} {line}").as_bytes());
        }
        return;
    }
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            match rd.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut fields);
        if req.parse(&head).is_err() {
            return;
        }
        let path = req.path.unwrap_or("").to_string();
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let field = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        if let Some(len) = field("content-length").and_then(|l| l.parse::<usize>().ok()) {
            let mut body = vec![0u8; len];
            if rd.read_exact(&mut body).is_err() {
                return;
            }
        }
        if let Some(id) = field("x-test-id") {
            let kept = headers
                .iter()
                .filter(|(k, _)| k != "x-test-id")
                .cloned()
                .collect();
            seen.lock().unwrap().insert(format!("{label}/{id}"), kept);
        }
        let status = if failing && path.starts_with("/health") {
            "503 Service Unavailable"
        } else {
            "200 OK"
        };
        let body = label.to_string();
        let reply = format!(
            "HTTP/1.1 {status}\r\nX-Served-By: {label}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

// ------------------------------------------------------------ clients

/// Response fields compared between the proxies (the others, such as
/// `date` or `content-length` of HAProxy's own pages, say nothing about
/// the configuration).
const COMPARED: &[&str] = &[
    "location",
    "set-cookie",
    "cache-control",
    "www-authenticate",
    "x-frame-options",
    "strict-transport-security",
    "x-served-by",
    "x-cache",
    "server",
    "content-type",
];

/// What one proxy answered to one request.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    server: String,
    /// The response fields of [`COMPARED`] the client got.
    fields: Vec<(String, String)>,
    /// The body, when no server answered (error pages, redirects).
    body: Option<String>,
    /// The fields the server saw (lower-case names, in order).
    seen: Option<Vec<(String, String)>>,
}

fn send(r: &Request, port: u16, id: &str, seen: &Seen) -> Answer {
    if r.tcp {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"hello\n");
        let mut back = String::new();
        let _ = BufReader::new(s).read_line(&mut back);
        let server = back
            .split(' ')
            .next()
            .filter(|w| !w.is_empty())
            .unwrap_or("-");
        return Answer {
            status: 0,
            server: server.trim().to_string(),
            fields: Vec::new(),
            body: None,
            seen: None,
        };
    }
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-i", "--http1.1", "--max-time", "10", "-X", &r.method]);
    let host = r
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let url = match &r.tls {
        Some(sni) => {
            cmd.arg("-k")
                .arg("--resolve")
                .arg(format!("{sni}:{port}:127.0.0.1"));
            format!("https://{sni}:{port}{}", r.path)
        }
        None => format!("http://127.0.0.1:{port}{}", r.path),
    };
    cmd.arg("-H").arg(format!(
        "Host: {}",
        host.unwrap_or_else(|| "www.example.com".into())
    ));
    for (n, v) in r
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
    {
        cmd.arg("-H").arg(format!("{n}: {v}"));
    }
    if let Some(a) = &r.auth {
        cmd.arg("-u").arg(a);
    }
    cmd.arg("-H").arg(format!("X-Test-Id: {id}"));
    cmd.arg(url);
    let out = cmd.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let fields: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let server = fields
        .iter()
        .find(|(n, _)| n == "x-served-by")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "-".into());
    let seen_fields = seen.lock().unwrap().remove(&format!("{server}/{id}"));
    Answer {
        status,
        body: (server == "-").then(|| body.to_string()),
        server,
        fields: fields
            .into_iter()
            .filter(|(n, _)| COMPARED.contains(&n.as_str()))
            .collect(),
        seen: seen_fields,
    }
}

/// Whether both proxies answered alike, the file's deliberate
/// differences set aside.
fn same_answer(r: &Request, script: &Script, ah: &Answer, ap: &Answer) -> bool {
    if r.own_page {
        return ah.status == ap.status;
    }
    let strip = |a: &Answer| {
        let mut a = a.clone();
        if r.server.starts_with("same:") {
            a.server.clear();
            a.fields.retain(|(n, _)| n != "x-served-by");
        }
        a.fields.retain(|(n, _)| !script.differs.contains(n));
        a.fields.sort();
        if let Some(seen) = a.seen.as_mut() {
            seen.retain(|(n, _)| !script.differs.contains(n));
            // Where a field sits among the others means nothing unless it
            // repeats (sort is stable: repeated ones keep their order);
            // Connection's tokens are case-insensitive (RFC 9110, 7.6.1).
            for (n, v) in seen.iter_mut() {
                if n == "connection" {
                    *v = v.to_ascii_lowercase();
                }
            }
            seen.sort_by(|x, y| x.0.cmp(&y.0));
        }
        a
    };
    strip(ah) == strip(ap)
}

/// Whether `a` is what `r` expects; `same:<group>` servers must be one
/// server for the whole group (`groups` remembers it per proxy).
fn matches(r: &Request, a: &Answer, groups: &mut HashMap<String, String>) -> bool {
    let server_ok = match r.server.strip_prefix("same:") {
        Some(group) => {
            a.server != "-"
                && groups.entry(group.to_string()).or_insert(a.server.clone()) == &a.server
        }
        None => a.server == r.server,
    };
    server_ok && (r.tcp || a.status == r.status)
}

/// With `wait`, the expected answer must come this many times in a row:
/// once could be round robin's turn while the server to avoid is still up.
const WAIT_STREAK: usize = 4;

/// Sends `r` (with `wait`, again and again until it gets its expected
/// answer WAIT_STREAK times in a row, or PATIENCE runs out).
fn ask(r: &Request, port: u16, id: &str, seen: &Seen) -> Answer {
    let deadline = Instant::now() + PATIENCE;
    let mut streak = 0;
    loop {
        let a = send(r, port, id, seen);
        if !r.wait || Instant::now() > deadline {
            return a;
        }
        if matches(r, &a, &mut HashMap::new()) {
            streak += 1;
            if streak == WAIT_STREAK {
                return a;
            }
        } else {
            streak = 0;
            thread::sleep(Duration::from_millis(100));
        }
    }
}

// ------------------------------------------------------------ the test

fn run_case(name: &str) {
    if !haproxy::installed() {
        eprintln!("haproxy not installed: {name} skipped");
        return;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/convert")
        .join(name);
    let text = std::fs::read_to_string(&src).unwrap();
    let script = parse_script(&text);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let text = files_under(root, &text);

    // Servers, shared by both proxies.
    let seen: Seen = Arc::default();
    let mut server_ports = HashMap::new();
    for label in ports_in(&text, 9000..=9999) {
        let port = if script.down.contains(&label) {
            common::closed_addr().port()
        } else {
            start_backend(label, script.failcheck.contains(&label), Arc::clone(&seen))
        };
        server_ports.insert(label, port);
    }
    let front = ports_in(&text, 8000..=8999);
    let ports_for = |_: &str| -> HashMap<u16, u16> {
        let mut m = server_ports.clone();
        for &p in &front {
            m.insert(p, free_port());
        }
        m
    };
    // Frontend ports were free when picked; a parallel test may take one
    // before a proxy binds it: then both start again on new ones.
    let mut attempts = 0;
    let (h_ports, p_ports, h, p, toml) = loop {
        attempts += 1;
        let h_ports = ports_for("haproxy");
        let p_ports = ports_for("percore");
        match start_both(name, &script, &text, root, &front, &h_ports, &p_ports) {
            Ok((h, p, toml)) => break (h_ports, p_ports, h, p, toml),
            Err(e) if attempts < 5 && is_port_taken(&e) => continue,
            Err(e) => panic!("{e}"),
        }
    };

    let mut diffs = Vec::new();
    let (mut h_groups, mut p_groups) = (HashMap::new(), HashMap::new());
    for (i, r) in script.requests.iter().enumerate() {
        let id_h = format!("h{i}");
        let id_p = format!("p{i}");
        let ah = ask(r, h_ports[&r.port], &id_h, &seen);
        let ap = ask(r, p_ports[&r.port], &id_p, &seen);
        let (ah, ap) = (&ah, &ap);
        let what = format!(
            "{name}:{} ({} {} {})",
            r.line,
            if r.tcp { "tcp" } else { &r.method },
            r.path,
            r.port
        );
        if !matches(r, ah, &mut h_groups) {
            diffs.push(format!(
                "{what}: HAProxy answered {} from {}, the file expects {} from {}",
                ah.status, ah.server, r.status, r.server
            ));
        }
        if !matches(r, ap, &mut p_groups) {
            diffs.push(format!(
                "{what}: percore answered {} from {}, the file expects {} from {}",
                ap.status, ap.server, r.status, r.server
            ));
        }
        if std::env::var_os("CONVERT_DEBUG").is_some() {
            eprintln!("{what}\n  haproxy {ah:?}\n  percore {ap:?}");
        }
        if !same_answer(r, &script, ah, ap) {
            diffs.push(format!("{what}: HAProxy {ah:?}\n      percore {ap:?}"));
        }
    }
    let deliberate = !script.differs.is_empty()
        || script
            .requests
            .iter()
            .any(|r| r.own_page || r.server.starts_with("same:"));
    if deliberate {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migration.md"),
        )
        .unwrap();
        assert!(
            doc.contains(name),
            "{name} marks deliberate differences: docs/migration.md must list them under its name"
        );
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s):\n{}\n--- converted:\n{toml}\n--- percore stderr:\n{}\n--- haproxy stderr:\n{}",
        diffs.len(),
        diffs.join("\n"),
        p.stderr(),
        h.stderr()
    );
}

/// Moves `/etc/haproxy/` under `root`, with the files
/// the corpus names there: a certificate bundle for www.example.com and
/// *.example.com, error pages.
fn files_under(root: &Path, text: &str) -> String {
    let etc = root.join("etc/haproxy");
    for d in ["certs", "errors"] {
        std::fs::create_dir_all(etc.join(d)).unwrap();
    }
    for who in ["haproxy", "percore"] {
        std::fs::create_dir_all(root.join(format!("run-{who}"))).unwrap();
    }
    common::pki::write_self_signed_bundle(
        &etc.join("certs/site.pem"),
        &["www.example.com", "*.example.com"],
    );
    let pages: BTreeMap<u16, &str> = [(503, "Service Unavailable"), (403, "Forbidden")].into();
    for (code, reason) in pages {
        let body = format!("<h1>{code} {reason} (custom page)</h1>\n");
        std::fs::write(
            etc.join(format!("errors/{code}.http")),
            format!(
                "HTTP/1.0 {code} {reason}\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        )
        .unwrap();
    }
    let root_text = root.display().to_string();
    text.replace("/etc/haproxy/", &format!("{root_text}/etc/haproxy/"))
}

/// Starts HAProxy on the file and percore on its conversion (checked
/// against the file's expectations); Err with the stderr of a proxy that
/// did not start.
fn start_both(
    name: &str,
    script: &Script,
    text: &str,
    root: &Path,
    front: &[u16],
    h_ports: &HashMap<u16, u16>,
    p_ports: &HashMap<u16, u16>,
) -> Result<(Haproxy, Proxy, String), String> {
    let env: Vec<(String, String)> = script
        .env
        .iter()
        .map(|(k, v)| (k.clone(), remap(v, h_ports)))
        .collect();

    // HAProxy on the original.
    let h_cfg = root.join("haproxy.cfg");
    std::fs::write(&h_cfg, remap(&run_dir(text, root, "haproxy"), h_ports)).unwrap();
    let h_front: Vec<u16> = front.iter().map(|p| h_ports[p]).collect();
    let h = Haproxy::try_start(&h_cfg, &env, &h_front)?;

    // percore on the conversion (the same file and environment, its own
    // frontend ports).
    let p_src = root.join("percore-src.cfg");
    let p_env: Vec<(String, String)> = script
        .env
        .iter()
        .map(|(k, v)| (k.clone(), remap(v, p_ports)))
        .collect();
    std::fs::write(&p_src, remap(&run_dir(text, root, "percore"), p_ports)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_percore"))
        .arg("convert")
        .arg(&p_src)
        .envs(p_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let toml = String::from_utf8(out.stdout).unwrap();
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(script.convert_exit),
        "{name}: percore convert exit status; report:\n{report}\n{toml}"
    );
    for text in &script.unmapped {
        let reported = report
            .lines()
            .any(|l| l.contains("percore-src.cfg:") && l.contains(text.as_str()));
        let commented = toml
            .lines()
            .any(|l| l.starts_with("# NOT CONVERTED") && l.contains(text.as_str()));
        assert!(
            reported && commented,
            "{name}: a line with `{text}` should be reported as not converted:\n{report}"
        );
    }
    let mut p = Proxy::spawn(&toml, &[]);
    percore_listening(&mut p)?;
    Ok((h, p, toml))
}

fn is_port_taken(stderr: &str) -> bool {
    stderr
        .to_ascii_lowercase()
        .contains("address already in use")
        || stderr.contains("cannot bind socket")
}

/// Waits for percore's start-up notice; Err(stderr) if it exited first.
fn percore_listening(p: &mut Proxy) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(Some(status)) = p.child.try_wait() {
            return Err(format!("percore exited ({status}):\n{}", p.stderr()));
        }
        if p.stderr().contains("started:") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("percore did not start:\n{}", p.stderr()));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `/run/haproxy/` (stats sockets) is one directory per proxy: both run at once.
fn run_dir(text: &str, root: &Path, who: &str) -> String {
    text.replace("/run/haproxy/", &format!("{}/run-{who}/", root.display()))
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert")
}

macro_rules! corpus {
    ($($test:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $test() {
                run_case($file);
            }
        )*

        /// Every file of tests/convert/ has its test above.
        #[test]
        fn every_corpus_file_is_tested() {
            let listed = [$($file),*];
            for entry in std::fs::read_dir(corpus_dir()).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.ends_with(".cfg") {
                    assert!(listed.contains(&name.as_str()), "{name} has no test");
                }
            }
        }
    };
}

corpus! {
    tls_termination_with_redirect => "01-tls-termination.cfg",
    websocket_routing_by_host_and_upgrade => "02-websocket-routing.cfg",
    static_dynamic_split_by_path => "03-static-dynamic.cfg",
    url_param_balancing => "04-url-param-balance.cfg",
    hdr_balancing_on_a_consistent_ring => "05-hdr-balance.cfg",
    scripted_tcp_checks_with_binary_send_expect => "06-tcp-check-scripts.cfg",
    httpchk_with_backups => "07-httpchk-backups.cfg",
    basic_auth_with_a_userlist => "08-basic-auth.cfg",
    cookie_persistence => "09-cookie-persistence.cfg",
    several_defaults_sections => "10-several-defaults.cfg",
    environment_variables_and_conditions => "11-environment.cfg",
    stats_page => "12-stats-page.cfg",
    errorfiles_and_deny => "13-errorfiles-deny.cfg",
    request_header_rewrites => "14-header-rewrites.cfg",
    response_rules => "15-response-rules.cfg",
    tcp_failover_with_backups => "16-tcp-failover.cfg",
    legacy_redirect_lines => "17-legacy-redirects.cfg",
    uri_balancing_on_a_consistent_ring => "18-uri-consistent-hash.cfg",
    forwardfor_options => "19-forwardfor-options.cfg",
    production_file_with_unmapped_lines => "20-production-mix.cfg",
}

// ------------------------------------------------------------ the command

/// Runs `percore convert <args>` with `stdin`; (exit code, stdout, stderr).
fn convert_cmd(args: &[&std::ffi::OsStr], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore"))
        .arg("convert")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SMALL: &str = "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n\
frontend web\n    bind 127.0.0.1:18080\n    default_backend app\n\
backend app\n    server a1 127.0.0.1:19001\n";

#[test]
fn convert_reads_stdin_and_exits_0_when_everything_maps() {
    let (code, out, err) = convert_cmd(&[], SMALL.as_bytes());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("[[frontend]]") && out.contains("# <stdin>:7: bind 127.0.0.1:18080"));
}

#[test]
fn convert_reports_unmapped_lines_and_exits_2_with_the_output_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("haproxy.cfg");
    std::fs::write(&src, format!("{SMALL}    option nolinger\n")).unwrap();
    let out = dir.path().join("out.toml");
    let (code, stdout, err) = convert_cmd(&[src.as_os_str(), "-o".as_ref(), out.as_os_str()], b"");
    assert_eq!(code, Some(2), "{err}");
    assert!(stdout.is_empty());
    let line = format!(
        "{}:11: option nolinger: percore has no option nolinger (hint: ",
        src.display()
    );
    assert!(err.lines().any(|l| l.starts_with(&line)), "{err}");
    let toml = std::fs::read_to_string(&out).unwrap();
    assert!(toml.contains(&format!("# NOT CONVERTED {line}")), "{toml}");
    // What was written is a configuration percore runs.
    let (status, _, check_err) = common::run_percore(&toml, &["--check"]);
    assert!(status.success(), "{check_err}");
}

#[test]
fn convert_exits_1_when_an_input_cannot_be_read() {
    let missing = Path::new("/nonexistent/haproxy.cfg");
    let (code, out, err) = convert_cmd(&[missing.as_os_str()], b"");
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("cannot read /nonexistent/haproxy.cfg"),
        "{err}"
    );
}

#[test]
fn convert_reads_a_directory_in_name_order_as_haproxy_does() {
    let dir = tempfile::tempdir().unwrap();
    let (head, tail) = SMALL.split_at(SMALL.find("\nbackend").unwrap() + 1);
    std::fs::write(dir.path().join("20-backends.cfg"), tail).unwrap();
    std::fs::write(dir.path().join("10-front.cfg"), head).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a configuration").unwrap();
    let (code, out, err) = convert_cmd(&[dir.path().as_os_str()], b"");
    assert_eq!(code, Some(0), "{err}");
    let front = out.find("10-front.cfg:6: frontend web").unwrap();
    let back = out.find("20-backends.cfg:1: backend app").unwrap();
    assert!(front < back, "{out}");
}

#[test]
fn convert_says_when_the_result_would_not_load() {
    // HAProxy starts a frontend that can only answer 503; percore refuses
    // it: converted as is, the check's error is printed, status 2.
    let cfg = "frontend web\n    mode http\n    bind 127.0.0.1:18081\n    timeout client 5s\n";
    let (code, out, err) = convert_cmd(&[], cfg.as_bytes());
    assert_eq!(code, Some(2), "{err}");
    assert!(out.contains("[[frontend]]"));
    assert!(err.contains("does not pass percore --check"), "{err}");
    // The check's error names the HAProxy line too.
    assert!(
        err.contains("converted from <stdin>:1: frontend web"),
        "{err}"
    );
}
