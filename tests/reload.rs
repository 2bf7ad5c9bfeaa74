//! Reload in place against the real binary: SIGHUP, SIGUSR2 and the
//! runtime API's `reload` re-read the configuration and apply it on every
//! core while clients keep going; a bad file changes nothing.

mod common;

use common::{connect, free_port, socat, ws_echo_server, Backend, Pattern, Proxy, PATIENCE};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// An HTTP/1.1 server that keeps connections alive and answers every
/// request with `tag` as its body.
fn http_backend(tag: &'static str) -> Backend {
    Backend::start(move |s| {
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut out = s;
        loop {
            let mut line = String::new();
            let mut length = 0usize;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{tag}",
                tag.len()
            );
            if out.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    })
}

/// Reads one response with a Content-Length body; (status, body).
fn read_response(reader: &mut BufReader<TcpStream>) -> std::io::Result<(u16, String)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed in the head"));
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One `Connection: close` GET; (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(PATIENCE))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    read_response(&mut BufReader::new(s))
}

/// The configuration in two shapes: `extra` adds a backend, a route to it,
/// a server, and a second listener.
struct Shapes {
    web: u16,
    tcp: u16,
    extra_port: u16,
    app: Vec<SocketAddr>,
    extra: SocketAddr,
    echo: SocketAddr,
    ws: SocketAddr,
    sock: PathBuf,
}

impl Shapes {
    fn config(&self, extra: bool) -> String {
        let extra_bind = if extra {
            format!(", \"127.0.0.1:{}\"", self.extra_port)
        } else {
            String::new()
        };
        let app_servers: Vec<String> = self
            .app
            .iter()
            .enumerate()
            .take(if extra { 2 } else { 1 })
            .map(|(i, a)| format!("{{ name = \"a{i}\", addr = \"{a}\" }}"))
            .collect();
        let mut out = format!(
            r#"
[global]
threads = "auto"
stats-socket = {{ path = "{sock}", level = "admin" }}
hard-stop-after = "5s"
[defaults]
timeout = {{ connect = "2s", client = "30s", server = "30s" }}
[[frontend]]
name = "web"
mode = "http"
bind = ["127.0.0.1:{web}"{extra_bind}]
default_backend = "app"
http-request = ['return status 200 content-type text/plain string "{shape}" if {{ path /shape }}']
{route}
[[backend]]
name = "app"
mode = "http"
servers = [{servers}]
[[frontend]]
name = "tcp"
mode = "tcp"
bind = ["127.0.0.1:{tcp}"]
default_backend = "echo"
[[backend]]
name = "echo"
mode = "tcp"
servers = [{{ name = "e1", addr = "{echo}" }}]
[[backend]]
name = "ws"
mode = "http"
servers = [{{ name = "w1", addr = "{ws}" }}]
"#,
            sock = self.sock.display(),
            web = self.web,
            tcp = self.tcp,
            shape = if extra { "extra" } else { "plain" },
            route = if extra {
                "use_backend = [\"ws if { hdr(upgrade) -i websocket }\", \"extra if { path_beg /extra }\"]"
            } else {
                "use_backend = [\"ws if { hdr(upgrade) -i websocket }\"]"
            },
            servers = app_servers.join(", "),
            echo = self.echo,
            ws = self.ws,
        );
        if extra {
            out.push_str(&format!(
                "[[backend]]\nname = \"extra\"\nmode = \"http\"\nservers = [{{ name = \"x1\", addr = \"{}\" }}]\n",
                self.extra
            ));
        }
        out
    }
}

fn start(shapes: &Shapes, extra: bool) -> (Proxy, PathBuf) {
    let mut proxy = Proxy::spawn(&shapes.config(extra), &[]);
    proxy.port = shapes.web;
    proxy.wait_listening();
    let path = proxy.dir.path().join("percore.toml");
    (proxy, path)
}

fn shapes(dir: &Path) -> Shapes {
    Shapes {
        web: free_port(),
        tcp: free_port(),
        extra_port: free_port(),
        app: vec![http_backend("app").addr, http_backend("app").addr],
        extra: http_backend("extra").addr,
        echo: Backend::echo().addr,
        ws: ws_echo_server(),
        sock: dir.join("admin.sock"),
    }
}

#[test]
fn twenty_reloads_under_load_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = shapes(dir.path());
    let (mut proxy, path) = start(&shapes, false);
    let web: SocketAddr = format!("127.0.0.1:{}", shapes.web).parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    // Keep-alive clients: one connection each, request after request.
    for _ in 0..2 {
        let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
        clients.push(thread::spawn(move || {
            let s = connect(web);
            let mut writer = s.try_clone().unwrap();
            let mut reader = BufReader::new(s);
            while !stop.load(Ordering::SeqCst) {
                let ok = writer
                    .write_all(b"GET /k HTTP/1.1\r\nHost: t\r\n\r\n")
                    .and_then(|_| read_response(&mut reader));
                match ok {
                    Ok((200, body)) if body == "app" => served.fetch_add(1, Ordering::SeqCst),
                    other => {
                        eprintln!("keep-alive failure: {other:?}");
                        failures.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
            }
        }));
    }
    // A client opening a connection per request.
    {
        let (stop, failures, served) = (stop.clone(), failures.clone(), served.clone());
        clients.push(thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match get(web, "/c") {
                    Ok((200, body)) if body == "app" => served.fetch_add(1, Ordering::SeqCst),
                    other => {
                        eprintln!("close failure: {other:?}");
                        failures.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        }));
    }
    // An upload in progress across the reloads: its body trickles in.
    let upload = {
        let stop = stop.clone();
        thread::spawn(move || {
            let s = connect(web);
            let mut writer = s.try_clone().unwrap();
            let total = 4096usize;
            write!(
                writer,
                "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {total}\r\n\r\n"
            )
            .unwrap();
            let mut sent = 0;
            while sent < total {
                let chunk = if stop.load(Ordering::SeqCst) {
                    total - sent
                } else {
                    64
                };
                writer.write_all(&vec![b'u'; chunk]).unwrap();
                sent += chunk;
                thread::sleep(Duration::from_millis(20));
            }
            read_response(&mut BufReader::new(s))
        })
    };
    // A WebSocket open across every reload, each message echoed.
    let websocket = {
        let stop = stop.clone();
        thread::spawn(move || {
            let stream = connect(web);
            let (mut ws, resp) =
                tungstenite::client::client(format!("ws://{web}/ws").as_str(), stream).unwrap();
            assert_eq!(resp.status(), 101);
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let text = format!("message {n}");
                ws.send(tungstenite::Message::text(text.clone())).unwrap();
                loop {
                    let got = ws.read().unwrap();
                    if got.is_text() {
                        assert_eq!(got.into_text().unwrap().as_str(), text);
                        break;
                    }
                }
                n += 1;
                thread::sleep(Duration::from_millis(5));
            }
            n
        })
    };
    // A TCP tunnel held open across every reload, its bytes checked.
    let tunnel = {
        let stop = stop.clone();
        let tcp: SocketAddr = format!("127.0.0.1:{}", shapes.tcp).parse().unwrap();
        thread::spawn(move || {
            let mut s = connect(tcp);
            let mut pattern = Pattern::new(7);
            let (mut sent, mut echoed) = (Sha256::new(), Sha256::new());
            let mut buf = vec![0u8; 16 * 1024];
            let mut back = vec![0u8; 16 * 1024];
            while !stop.load(Ordering::SeqCst) {
                pattern.fill(&mut buf);
                s.write_all(&buf).unwrap();
                sent.update(&buf);
                s.read_exact(&mut back).unwrap();
                echoed.update(&back);
            }
            (sent.finalize(), echoed.finalize())
        })
    };

    let extra: SocketAddr = format!("127.0.0.1:{}", shapes.extra_port).parse().unwrap();
    for round in 1..=20 {
        let with_extra = round % 2 == 1;
        std::fs::write(&path, shapes.config(with_extra)).unwrap();
        if round % 3 == 0 {
            let answer = socat(&shapes.sock, "reload");
            assert!(answer.starts_with("Success=1\n--\n"), "{answer}");
        } else {
            proxy.signal(if round % 2 == 0 {
                libc::SIGHUP
            } else {
                libc::SIGUSR2
            });
            proxy.wait_for_stderr("applied on", round);
        }
        // The new routes and listeners are in force once it is applied.
        let want = if with_extra { "extra" } else { "plain" };
        assert_eq!(get(web, "/shape").unwrap(), (200, want.to_string()));
        if with_extra {
            assert_eq!(get(web, "/extra/1").unwrap(), (200, "extra".to_string()));
            assert_eq!(get(extra, "/shape").unwrap(), (200, "extra".to_string()));
        } else {
            assert_eq!(get(web, "/extra/1").unwrap(), (200, "app".to_string()));
            assert!(
                TcpStream::connect(extra).is_err(),
                "removed listener closed"
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (sent, echoed) = tunnel.join().unwrap();
    assert_eq!(sent, echoed, "tunnel bytes intact across 20 reloads");
    assert!(websocket.join().unwrap() > 20, "the WebSocket kept working");
    let (status, _) = upload.join().unwrap().expect("the upload is answered");
    assert_eq!(status, 200);
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    assert!(served.load(Ordering::SeqCst) > 20);
    let log = proxy.stderr();
    assert!(log.contains("backends added: extra"), "{log}");
    assert!(log.contains("backends removed: extra"), "{log}");
    assert!(log.contains("servers added: app/a1, extra/x1"), "{log}");
}

#[test]
fn invalid_reload_keeps_the_running_config() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = shapes(dir.path());
    let (mut proxy, path) = start(&shapes, false);
    let web: SocketAddr = format!("127.0.0.1:{}", shapes.web).parse().unwrap();
    let mut bad = shapes.config(true);
    bad.push_str("[[backend]]\nname = \"broken\"\nbalance = \"sometimes\"\n");
    std::fs::write(&path, &bad).unwrap();
    proxy.signal(libc::SIGHUP);
    let log = proxy.wait_for_stderr("reload refused", 1);
    assert!(
        log.contains("percore.toml:") && log.contains("balance"),
        "errors are located: {log}"
    );
    assert_eq!(get(web, "/shape").unwrap(), (200, "plain".to_string()));
    let answer = socat(&shapes.sock, "reload");
    assert!(answer.starts_with("Success=0\n--\n"), "{answer}");
    assert!(answer.contains("balance"), "{answer}");
    // A port another process holds: prepared on no core, applied on none.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = shapes
        .config(false)
        .replace(
            &format!("\"127.0.0.1:{}\"]", shapes.web),
            &format!(
                "\"127.0.0.1:{}\", \"{}\"]",
                shapes.web,
                taken.local_addr().unwrap()
            ),
        )
        .replace("\"plain\"", "\"busy\"");
    std::fs::write(&path, busy).unwrap();
    let answer = socat(&shapes.sock, "reload");
    assert!(
        answer.starts_with("Success=0\n--\n") && answer.contains("address already in use"),
        "{answer}"
    );
    assert_eq!(get(web, "/shape").unwrap(), (200, "plain".to_string()));
    assert!(proxy.child.id() > 0);
}

#[test]
fn runtime_state_and_health_survive_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("admin.sock");
    let live = http_backend("live").addr;
    let port = free_port();
    let dead = common::closed_addr();
    let config = |extra: &str| {
        format!(
            r#"
[global]
stats-socket = {{ path = "{}", level = "admin" }}
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[[frontend]]
name = "web"
bind = ["127.0.0.1:{port}"]
default_backend = "app"
[[backend]]
name = "app"
servers = [
  {{ name = "kept", addr = "{live}" }},
  {{ name = "down", addr = "{dead}", check = true, inter = "100ms", fall = 1 }},
]
{extra}
"#,
            sock.display()
        )
    };
    let mut proxy = Proxy::spawn(&config(""), &[]);
    proxy.port = port;
    proxy.wait_listening();
    assert_eq!(socat(&sock, "set server app/kept state maint"), "\n");
    proxy.wait_for_stderr("app/down is DOWN", 1);
    std::fs::write(
        proxy.dir.path().join("percore.toml"),
        config(
            "[[backend]]\nname = \"more\"\nservers = [{ name = \"m1\", addr = \"127.0.0.1:9\" }]",
        ),
    )
    .unwrap();
    let answer = socat(&sock, "reload");
    assert!(answer.starts_with("Success=1"), "{answer}");
    let state = socat(&sock, "show servers state app");
    let fields = |name: &str| -> Vec<String> {
        state
            .lines()
            .find(|l| l.split(' ').nth(3) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {state}"))
            .split(' ')
            .map(str::to_owned)
            .collect()
    };
    // srv_op_state (5) and srv_admin_state (6): maintenance set at run
    // time stays; the server checks found down is still down.
    assert_eq!(fields("kept")[6], "1", "{state}");
    assert_eq!(fields("down")[5], "0", "{state}");
    let (status, _) = get(proxy.addr(), "/").unwrap();
    assert_eq!(status, 503, "no usable server before and after the reload");
}

#[test]
fn connections_held_across_ten_reloads_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = shapes(dir.path());
    let (proxy, path) = start(&shapes, false);
    let web: SocketAddr = format!("127.0.0.1:{}", shapes.web).parse().unwrap();
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let hold = || {
        let mut held: Vec<BufReader<TcpStream>> = Vec::new();
        for _ in 0..2000 {
            let mut s = connect(web);
            s.write_all(b"GET /k HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            held.push(BufReader::new(s));
        }
        for r in held.iter_mut() {
            assert_eq!(read_response(r).unwrap().0, 200);
        }
        held
    };
    let alive = |proxy: &Proxy| {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", proxy.pid())).unwrap_or_default();
        assert!(
            status.contains("VmRSS"),
            "percore is gone: {}",
            proxy.stderr()
        );
    };
    // 2,000 connections held across 10 reloads, then closed.
    let round = |first_shape: bool, fds_idle: usize| {
        let mut held = hold();
        for n in 1..=10 {
            std::fs::write(&path, shapes.config((n % 2 == 1) == first_shape)).unwrap();
            let answer = socat(&shapes.sock, "reload");
            assert!(answer.starts_with("Success=1"), "{answer}");
        }
        // Held connections still work, under the newest configuration.
        let want = if first_shape { "plain" } else { "extra" };
        for r in held.iter_mut().take(50) {
            r.get_mut()
                .write_all(b"GET /shape HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            assert_eq!(read_response(r).unwrap(), (200, want.to_string()));
        }
        drop(held);
        let deadline = Instant::now() + PATIENCE;
        while proxy.fd_count() > fds_idle && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        alive(&proxy);
        assert!(
            proxy.fd_count() <= fds_idle,
            "descriptors left behind: {} > {fds_idle}",
            proxy.fd_count()
        );
    };
    // The first round brings the allocator, the pools and the retired
    // generations' memory to their size; the second must not add to it.
    // Pooled pipes and server connections may stay from the first round.
    round(true, usize::MAX);
    let fds = proxy.fd_count();
    let rss_first = rss(proxy.pid());
    round(true, fds);
    let rss_second = rss(proxy.pid());
    round(true, fds);
    let rss_third = rss(proxy.pid());
    // Generous bound (allocator caching), below what 2,000 leaked sessions
    // would cost (about 14 KB each). A leak grows RSS in every round; the
    // allocator's caching moves it one way or the other between two
    // rounds (seen: +38 MB once on a loaded machine, then flat), so the
    // smaller of the two growths is what must stay under the bound.
    let grew = (rss_second.saturating_sub(rss_first)).min(rss_third.saturating_sub(rss_second));
    assert!(
        grew < 16 * 1024,
        "RSS grew in both rounds: {rss_first} -> {rss_second} -> {rss_third} kB"
    );
}
