//! Health checks end to end: the real binary, real servers on loopback,
//! and the HAProxy-style log lines as the signal of a state change. No
//! durations are asserted; every wait is bounded by PATIENCE.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{closed_addr, wait_for_matching_lines, wait_until, Proxy, PATIENCE};

type Handler = Arc<dyn Fn(TcpStream) + Send + Sync>;

/// A server that can be killed (listener closed, open connections cut)
/// and brought back on the same address.
struct Server {
    addr: SocketAddr,
    handler: Handler,
    accepted: Arc<AtomicUsize>,
    running: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Server {
    fn start(handler: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut server = Server {
            addr: listener.local_addr().unwrap(),
            handler: Arc::new(handler),
            accepted: Arc::new(AtomicUsize::new(0)),
            running: None,
            open: Arc::new(Mutex::new(Vec::new())),
        };
        server.serve(listener);
        server
    }

    /// Answers every read with `tag` followed by what was read.
    fn tagged_echo(tag: u8) -> Server {
        Server::start(move |mut s| {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let mut out = vec![tag];
                        out.extend_from_slice(&buf[..n]);
                        if s.write_all(&out).is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (handler, accepted, open, flag) = (
            Arc::clone(&self.handler),
            Arc::clone(&self.accepted),
            Arc::clone(&self.open),
            Arc::clone(&stop),
        );
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        accepted.fetch_add(1, Ordering::SeqCst);
                        if let Ok(copy) = stream.try_clone() {
                            open.lock().unwrap().push(copy);
                        }
                        let h = Arc::clone(&handler);
                        thread::spawn(move || h(stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        self.running = Some((stop, thread));
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listener (new connections are refused) and cuts every
    /// open connection, like a crashed process.
    fn kill(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            thread.join().unwrap();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn revive(&mut self) {
        let listener = TcpListener::bind(self.addr).unwrap();
        self.serve(listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One proxied exchange: the reply, or `None` if the proxy closed or failed.
fn exchange(proxy: SocketAddr, msg: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(proxy).ok()?;
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(msg).ok()?;
    let mut back = vec![0u8; msg.len() + 1];
    s.read_exact(&mut back).ok()?;
    Some(back)
}

fn config(global: &str, backend: &str) -> String {
    format!(
        r#"
[global]
threads = "auto"
maxconn = 1000
{global}

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
{backend}
"#
    )
}

#[test]
fn killed_server_goes_down_under_load_and_comes_back() {
    let mut s1 = Server::tagged_echo(b'1');
    let s2 = Server::tagged_echo(b'2');
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"retries = 0
default-server = {{ check = true, inter = "100ms", rise = 2, fall = 2 }}
servers = [
  {{ name = "s1", addr = "{}" }},
  {{ name = "s2", addr = "{}" }},
]"#,
            s1.addr, s2.addr
        ),
    ));

    // Steady load: one connection after another, each recorded with when
    // it started and whether it got its echo.
    let results: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (results, stop, addr) = (Arc::clone(&results), Arc::clone(&stop), proxy.addr());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let ok = exchange(addr, b"ping").is_some_and(|r| &r[1..] == b"ping");
                results.lock().unwrap().push((started, ok));
            }
        })
    };
    wait_until("load reaching s1", || s1.accepted() > 0);

    s1.kill();
    let down = proxy.wait_for_stderr_line(&["Server be/s1 is DOWN"], 0);
    let marked_down = Instant::now();
    assert!(
        down.starts_with("[WARNING] Server be/s1 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: "),
        "{down}"
    );
    assert!(
        down.ends_with("1 active and 0 backup servers left."),
        "{down}"
    );
    let after_down = |r: &Vec<(Instant, bool)>| r.iter().filter(|(t, _)| *t > marked_down).count();
    wait_until("load after the DOWN line", || {
        after_down(&results.lock().unwrap()) >= 50
    });

    let s1_before = s1.accepted();
    s1.revive();
    let up = proxy.wait_for_stderr_line(&["Server be/s1 is UP"], 0);
    assert!(
        up.starts_with(
            "[WARNING] Server be/s1 is UP, reason: Layer4 check passed, check duration: "
        ),
        "{up}"
    );
    assert!(
        up.ends_with("2 active and 0 backup servers online."),
        "{up}"
    );
    // Checks connect too; wait for proxied traffic proper: a reply from s1.
    wait_until("traffic back on s1", || {
        s1.accepted() > s1_before && exchange(proxy.addr(), b"ping").is_some_and(|r| r[0] == b'1')
    });
    stop.store(true, Ordering::SeqCst);
    load.join().unwrap();

    let results = results.lock().unwrap();
    let failed_after: Vec<_> = results
        .iter()
        .filter(|(t, ok)| *t > marked_down && !ok)
        .collect();
    assert!(
        failed_after.is_empty(),
        "{} of {} connections started after the DOWN line failed",
        failed_after.len(),
        after_down(&results)
    );
    let log = proxy.stderr();
    assert!(!log.contains("has no server available"), "{log}");
}

/// A SOCKS5-like server: greeting `05 02 00 01` answered with `answer`;
/// then `PING\r\n` answered with `+PONG\r\n+OK\r\n`. Closes on anything
/// else.
fn socks_server(good: Arc<AtomicBool>) -> Server {
    Server::start(move |mut s| {
        let mut greeting = [0u8; 4];
        if s.read_exact(&mut greeting).is_err() || greeting != [5, 2, 0, 1] {
            return;
        }
        let answer: &[u8] = if good.load(Ordering::SeqCst) {
            &[5, 0]
        } else {
            &[5, 0xff]
        };
        if s.write_all(answer).is_err() || answer != [5, 0] {
            // "No acceptable methods": close, as SOCKS servers do (the
            // harness keeps a clone of the socket, so shut it down).
            let _ = s.shutdown(Shutdown::Both);
            return;
        }
        let mut line = [0u8; 6];
        if s.read_exact(&mut line).is_ok() && &line == b"PING\r\n" {
            let _ = s.write_all(b"+PONG\r\n+OK\r\n");
        }
        let mut rest = [0u8; 64];
        let _ = s.read(&mut rest);
    })
}

#[test]
fn binary_tcp_check_script_fails_on_wrong_bytes_and_passes_on_right_ones() {
    let good = Arc::new(AtomicBool::new(false));
    let socks = socks_server(Arc::clone(&good));
    // Traffic goes to a closed address; only the check reaches the fake
    // server, through `port` on the connect rule.
    let traffic = closed_addr();
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"tcp-check = [
  "connect port {}",
  "send-binary 05020001",
  "expect binary 0500",
  "send PING\\r\\n",
  "expect string +PONG",
  "expect rstring (?m)^\\+OK",
]
servers = [ {{ name = "socks", addr = "{traffic}", check = true, inter = "100ms", rise = 1, fall = 1 }} ]"#,
            socks.addr.port()
        ),
    ));
    let down = proxy.wait_for_stderr_line(&["Server be/socks is DOWN"], 0);
    assert!(
        down.contains("reason: Layer7 invalid response, info: \"TCPCHK did not match content '0500' at step 3\""),
        "{down}"
    );
    proxy.wait_for_stderr_line(&["[ALERT] backend be has no server available!"], 0);

    good.store(true, Ordering::SeqCst);
    let up = proxy.wait_for_stderr_line(&["Server be/socks is UP"], 0);
    assert!(
        up.contains("reason: Layer7 check passed, info: \"(tcp-check)\""),
        "{up}"
    );

    good.store(false, Ordering::SeqCst);
    let again = proxy.wait_for_stderr_line(&["Server be/socks is DOWN"], 1);
    assert!(again.contains("did not match content '0500'"), "{again}");
}

/// An HTTP server answering `status` (shared, changeable) and recording
/// every request head it gets.
fn http_server(status: Arc<AtomicUsize>, heads: Arc<Mutex<Vec<String>>>) -> Server {
    Server::start(move |mut s| {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        heads
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        let reply = match status.load(Ordering::SeqCst) {
            204 => "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
            code => format!("HTTP/1.1 {code} OK\r\nContent-Length: 2\r\n\r\nok"),
        };
        let _ = s.write_all(reply.as_bytes());
    })
}

#[test]
fn http_check_expects_204_from_generate_204() {
    let status = Arc::new(AtomicUsize::new(200));
    let heads = Arc::default();
    let web = http_server(Arc::clone(&status), Arc::clone(&heads));
    let app = Server::tagged_echo(b'a');
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"http-check = [
  "send meth GET uri /generate_204 ver HTTP/1.1 hdr Host health.example",
  "expect status 204",
]
servers = [ {{ name = "app", addr = "{}", check = true, port = {}, inter = "100ms", rise = 1, fall = 1 }} ]"#,
            app.addr,
            web.addr.port()
        ),
    ));
    let down = proxy.wait_for_stderr_line(&["Server be/app is DOWN"], 0);
    assert!(
        down.contains("reason: Layer7 wrong status, code: 200, info: \"OK\", check duration: "),
        "{down}"
    );
    assert!(
        down.ends_with("0 active and 0 backup servers left."),
        "{down}"
    );
    proxy.wait_for_stderr_line(&["[ALERT] backend be has no server available!"], 0);
    {
        let heads = heads.lock().unwrap();
        let first = heads.first().expect("a check request");
        assert!(
            first.starts_with("GET /generate_204 HTTP/1.1\r\n"),
            "{first}"
        );
        assert!(first.contains("\r\nHost: health.example\r\n"), "{first}");
    }

    // No usable server: a TCP client is closed without a byte, and logged.
    let mut client = common::connect(proxy.addr());
    client.write_all(b"hello").unwrap();
    let (got, _) = common::read_to_end_or_error(&mut client);
    assert!(got.is_empty(), "{got:?}");
    let refused = proxy.wait_for_stderr_line(
        &["backend be has no server available; closed the connection from"],
        0,
    );
    assert!(refused.starts_with("[WARNING] frontend fe:"), "{refused}");
    assert_eq!(app.accepted(), 0, "no traffic may reach a DOWN server");

    status.store(204, Ordering::SeqCst);
    let up = proxy.wait_for_stderr_line(&["Server be/app is UP"], 0);
    assert!(
        up.contains("reason: Layer7 check passed, code: 204, info: \"No Content\""),
        "{up}"
    );
    assert_eq!(exchange(proxy.addr(), b"hi").as_deref(), Some(&b"ahi"[..]));
}

#[test]
fn hanging_server_hits_timeout_check() {
    // Accepts, reads, never answers.
    let hang = Server::start(|mut s| {
        let mut buf = [0u8; 64];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    });
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"timeout = {{ check = "200ms" }}
tcp-check = [ "send PING\\r\\n", "expect string +PONG" ]
servers = [ {{ name = "slow", addr = "{}", check = true, inter = "100ms", fall = 1 }} ]"#,
            hang.addr
        ),
    ));
    let down = proxy.wait_for_stderr_line(&["Server be/slow is DOWN"], 0);
    assert!(
        down.contains(
            "reason: Layer7 timeout, info: \"(expect string '+PONG') at step 2 of tcp-check\""
        ),
        "{down}"
    );
}

#[test]
fn backup_takes_over_when_every_primary_is_down() {
    let mut primary = Server::tagged_echo(b'p');
    let backup1 = Server::tagged_echo(b'b');
    let backup2 = Server::tagged_echo(b'c');
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"retries = 0
default-server = {{ check = true, inter = "100ms", rise = 1, fall = 1 }}
servers = [
  {{ name = "p1", addr = "{}" }},
  {{ name = "b1", addr = "{}", backup = true }},
  {{ name = "b2", addr = "{}", backup = true }},
]"#,
            primary.addr, backup1.addr, backup2.addr
        ),
    ));
    for _ in 0..5 {
        assert_eq!(exchange(proxy.addr(), b"x").as_deref(), Some(&b"px"[..]));
    }
    primary.kill();
    let down = proxy.wait_for_stderr_line(&["Server be/p1 is DOWN"], 0);
    assert!(
        down.ends_with("0 active and 2 backup servers left."),
        "{down}"
    );
    // Without allbackups only the first backup takes traffic.
    for _ in 0..5 {
        assert_eq!(exchange(proxy.addr(), b"x").as_deref(), Some(&b"bx"[..]));
    }
    primary.revive();
    proxy.wait_for_stderr_line(&["Server be/p1 is UP"], 0);
    for _ in 0..5 {
        assert_eq!(exchange(proxy.addr(), b"x").as_deref(), Some(&b"px"[..]));
    }
}

#[test]
fn allbackups_spreads_over_every_backup() {
    let primary_addr = closed_addr();
    let b1 = Server::tagged_echo(b'b');
    let b2 = Server::tagged_echo(b'c');
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"retries = 0
allbackups = true
default-server = {{ check = true, inter = "100ms", rise = 1, fall = 1 }}
servers = [
  {{ name = "p1", addr = "{primary_addr}" }},
  {{ name = "b1", addr = "{}", backup = true }},
  {{ name = "b2", addr = "{}", backup = true }},
]"#,
            b1.addr, b2.addr
        ),
    ));
    proxy.wait_for_stderr_line(
        &[
            "Server be/p1 is DOWN",
            "0 active and 2 backup servers left.",
        ],
        0,
    );
    let mut tags = std::collections::HashSet::new();
    wait_until("both backups answering", || {
        if let Some(reply) = exchange(proxy.addr(), b"x") {
            tags.insert(reply[0]);
        }
        tags.contains(&b'b') && tags.contains(&b'c')
    });
}

#[test]
fn passive_layer4_errors_mark_a_server_down_between_checks() {
    // The check port answers, so active checks pass; the traffic address
    // refuses every connection. Only live traffic can see the problem.
    let check_target = Server::tagged_echo(b'h');
    let good = Server::tagged_echo(b'g');
    let dead = closed_addr();
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"retries = 0
servers = [
  {{ name = "bad", addr = "{dead}", check = true, port = {}, inter = "30s", observe = "layer4", error-limit = 2, on-error = "mark-down" }},
  {{ name = "good", addr = "{}" }},
]"#,
            check_target.addr.port(),
            good.addr
        ),
    ));
    let seen_down = || proxy.count_stderr_lines("Server be/bad is DOWN") > 0;
    wait_until("passive mark-down", || {
        let _ = exchange(proxy.addr(), b"x");
        seen_down()
    });
    let down = proxy.wait_for_stderr_line(&["Server be/bad is DOWN"], 0);
    assert!(
        down.contains("reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: L4 unsuccessful connection\"."),
        "{down}"
    );
    assert!(
        down.ends_with("1 active and 0 backup servers left."),
        "{down}"
    );
    for _ in 0..20 {
        assert_eq!(exchange(proxy.addr(), b"x").as_deref(), Some(&b"gx"[..]));
    }
}

#[test]
fn http_check_matches_the_body_even_when_chunked() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ready);
    let web = Server::start(move |mut s| {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let reply: &[u8] = if flag.load(Ordering::SeqCst) {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nall \r\na\r\nsystems go\r\n0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nbooting"
        };
        let _ = s.write_all(reply);
    });
    let proxy = Proxy::start(&config(
        "",
        &format!(
            r#"http-check = [ "send uri /health", "expect status 200", "expect rstring all\\ systems?\\ go" ]
servers = [ {{ name = "w", addr = "{}", check = true, inter = "100ms", rise = 1, fall = 1 }} ]"#,
            web.addr
        ),
    ));
    let down = proxy.wait_for_stderr_line(&["Server be/w is DOWN"], 0);
    assert!(
        down.contains("reason: Layer7 invalid response, code: 200, info: \"HTTP content check did not match (rstring all systems? go)\""),
        "{down}"
    );
    ready.store(true, Ordering::SeqCst);
    let up = proxy.wait_for_stderr_line(&["Server be/w is UP"], 0);
    assert!(
        up.contains("reason: Layer7 check passed, code: 200"),
        "{up}"
    );
}

/// Mode http, every core, a stats endpoint and an httplog file.
fn http_config(stats_port: u16, backend: &str) -> String {
    format!(
        r#"
[global]
threads = "auto"
maxconn = 1000

[defaults]
mode = "http"
timeout = {{ connect = "2s", client = "30s", server = "30s" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"
log = true
log-format = "httplog"

[[backend]]
name = "be"
{backend}

[stats]
bind = "127.0.0.1:{stats_port}"
"#
    )
}

/// One GET over its own connection: (status, body), `None` if the proxy
/// closed without an answer.
fn http_get(proxy: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let s = TcpStream::connect(proxy).ok()?;
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut w = s.try_clone().ok()?;
    write!(
        w,
        "GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut rd = std::io::BufReader::new(s);
    let (status, _, body) = common::http_backend::read_response(&mut rd, false)?;
    Some((status, body))
}

/// Merged server status from the stats endpoint (UP only when every core
/// agrees, DOWN when none has it up).
fn server_status(stats_port: u16, server: usize) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", stats_port)).unwrap();
    write!(s, "GET /stats;json HTTP/1.1\r\nHost: s\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (_, body) = raw.split_once("\r\n\r\n").unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["backends"][0]["servers"][server]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn passive_layer7_errors_mark_a_server_answering_500_down() {
    use common::http_backend::{ok, HttpBackend, Reply};
    // Active checks (TCP connect) pass: only the answers to real requests
    // show that `bad` is broken.
    let bad = HttpBackend::start(|_| Reply::Full(500, vec![], b"broken".to_vec()));
    let good = HttpBackend::start(|_| ok("good"));
    let stats_port = common::free_port();
    let (proxy, log) = Proxy::start_logging(&http_config(
        stats_port,
        &format!(
            r#"servers = [
  {{ name = "bad", addr = "{}", check = true, inter = "30s", observe = "layer7", error-limit = 2, on-error = "mark-down" }},
  {{ name = "good", addr = "{}" }},
]"#,
            bad.addr, good.addr
        ),
    ));
    wait_until("passive layer7 mark-down", || {
        let answer = http_get(proxy.addr(), "/");
        assert!(answer.is_some(), "every request gets an answer");
        proxy.count_stderr_lines("Server be/bad is DOWN") > 0
    });
    let down = proxy.wait_for_stderr_line(&["Server be/bad is DOWN"], 0);
    assert!(
        down.contains("reason: Health analyze, info: \"Detected 2 consecutive errors, last one was: Wrong http response\"."),
        "{down}"
    );
    assert!(
        down.ends_with("1 active and 0 backup servers left."),
        "{down}"
    );
    // Once every core knows, traffic goes to `good` only.
    wait_until("every core has bad DOWN", || {
        server_status(stats_port, 0) == "DOWN"
    });
    let reached_bad = bad.received().len();
    assert!(reached_bad >= 2, "{reached_bad}");
    for _ in 0..20 {
        assert_eq!(http_get(proxy.addr(), "/"), Some((200, b"good".to_vec())));
    }
    assert_eq!(bad.received().len(), reached_bad, "traffic after DOWN");
    // The 500s were logged as the server's answers.
    let logged_500 = |l: &str| l.contains(" fe be/bad ") && l.contains(" 500 ");
    wait_for_matching_lines(|| log.read(), logged_500, 1);
}

#[test]
fn http_answers_503_and_logs_when_every_server_is_down() {
    let dead = closed_addr();
    let stats_port = common::free_port();
    let (proxy, log) = Proxy::start_logging(&http_config(
        stats_port,
        &format!(
            "retries = 0\nservers = [ {{ name = \"s1\", addr = \"{dead}\", check = true, inter = \"100ms\", rise = 1, fall = 1 }} ]"
        ),
    ));
    proxy.wait_for_stderr_line(&["[ALERT] backend be has no server available!"], 0);
    wait_until("every core has s1 DOWN", || {
        server_status(stats_port, 0) == "DOWN"
    });
    for _ in 0..5 {
        let (status, body) = http_get(proxy.addr(), "/page").expect("an answer");
        assert_eq!(status, 503);
        assert!(
            String::from_utf8_lossy(&body).contains("No server is available"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    let refused = proxy.wait_for_stderr_line(
        &["backend be has no server available; closed the connection from"],
        0,
    );
    assert!(refused.starts_with("[WARNING] frontend fe:"), "{refused}");
    // One access-log line per refused request, without a server.
    let lines = log.wait_for_lines(5);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for line in &lines {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(&f[2..4], ["fe", "be/<NOSRV>"], "{line}");
        assert_eq!(f[5], "503", "{line}");
        assert_eq!(f[9], "SC--", "{line}");
        assert!(line.ends_with(" \"GET /page HTTP/1.1\""), "{line}");
    }
}
