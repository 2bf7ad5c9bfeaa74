//! Test harness: starts the real `percore` binary on loopback against real
//! backend servers run by the test. No mocks of the network.
#![allow(dead_code)]

pub mod h2raw;
pub mod haproxy;
pub mod http_backend;
pub mod pki;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for: a hung test fails instead of
/// blocking CI. Never used to assert speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A port on 127.0.0.1 that nothing listens on, for percore to bind.
///
/// Taken below Linux's ephemeral range (32768 and up by default): a port
/// the kernel handed out as free could be given a moment later to another
/// test's outgoing connection as its source port, and percore's bind then
/// fails (a CI run saw "address already in use"). Ports are handed out in
/// turn from a start that depends on the process id, each checked free by
/// binding it, so the tests of one binary never get the same one.
pub fn free_port() -> u16 {
    const FIRST: usize = 20_000;
    const COUNT: usize = 12_000;
    static NEXT: AtomicUsize = AtomicUsize::new(usize::MAX);
    let start = (std::process::id() as usize % 64) * (COUNT / 64);
    let _ = NEXT.compare_exchange(usize::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + COUNT);
}

/// An address where nothing listens: connecting to it is refused, for the
/// whole test run.
///
/// The port stays bound (never listening) by a socket kept open until the
/// process exits: a port that was merely free a moment ago could be bound
/// by a test running in parallel, and a backend meant to be dead would
/// answer. A bound socket that does not listen is refused by the kernel
/// like a closed port, and without SO_REUSEADDR/SO_REUSEPORT no other
/// socket can take the port.
pub fn closed_addr() -> SocketAddr {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    // Held, never closed, for the rest of the run.
    std::mem::forget(socket);
    addr
}

pub struct Proxy {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Proxy {
    /// Writes `config` (with `{port}` replaced by a free port) and starts
    /// percore on it, returning once the frontend accepts connections.
    ///
    /// `free_port` only knows the port was free a moment ago: a parallel
    /// test's outgoing connection can take it as its ephemeral port before
    /// percore binds it. That start fails with "address already in use",
    /// and is retried on another port.
    pub fn start(config: &str) -> Proxy {
        Proxy::start_with(config, &[])
    }

    /// [`Proxy::start`] with extra environment variables.
    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Proxy {
        for _ in 0..5 {
            let port = free_port();
            let mut p = Proxy::spawn_with(&config.replace("{port}", &port.to_string()), &[], env);
            p.port = port;
            match p.listening() {
                Ok(()) => return p,
                Err(stderr) if stderr.contains("address already in use") => continue,
                Err(stderr) => panic!("percore exited early:\n{stderr}"),
            }
        }
        panic!("percore found no free port in 5 tries");
    }

    /// Starts percore with `config` as is, without waiting for anything.
    pub fn spawn(config: &str, extra_args: &[&str]) -> Proxy {
        Proxy::spawn_with(config, extra_args, &[])
    }

    /// [`Proxy::spawn`] with extra environment variables.
    pub fn spawn_with(config: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("percore.toml");
        std::fs::write(&cfg, config).unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_percore"))
            .arg("-c")
            .arg(&cfg)
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Proxy {
            child,
            port: 0,
            dir,
            stderr_path,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr holds `needle` `n` times (bounded); returns
    /// stderr.
    pub fn wait_for_stderr(&mut self, needle: &str, n: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stderr = self.stderr();
            if stderr.matches(needle).count() >= n {
                return stderr;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("percore exited ({status}) before printing {needle:?}:\n{stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "percore never printed {needle:?}:\n{stderr}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stderr has `nth + 1` lines holding every needle;
    /// returns line `nth` of them (from 0).
    pub fn wait_for_stderr_line(&self, needles: &[&str], nth: usize) -> String {
        let holds = |l: &str| needles.iter().all(|n| l.contains(n));
        wait_for_matching_lines(|| self.stderr(), holds, nth + 1).swap_remove(nth)
    }

    /// The lines of stderr holding `needle`.
    pub fn count_stderr_lines(&self, needle: &str) -> usize {
        self.stderr().lines().filter(|l| l.contains(needle)).count()
    }

    pub fn wait_listening(&mut self) {
        if let Err(stderr) = self.listening() {
            panic!("percore exited early:\n{stderr}");
        }
    }

    /// Waits for the start-up notice; `Err` carries stderr if percore
    /// exited first.
    fn listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("({status}) {}", self.stderr()));
            }
            // The start-up notice is printed once every core has bound its
            // listeners. No probe connection: it would be proxied and count
            // in the tests' backend tallies.
            if self.stderr().contains("started:") {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "percore did not start:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit by itself (bounded).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "percore did not exit:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait for the exit; returns the status and stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit();
        (status, self.stderr())
    }

    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `percore -c <config> [args]` to completion and returns
/// (status, stdout, stderr). Bounded: a hang kills it.
pub fn run_percore(config: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("percore.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_percore"))
        .arg("-c")
        .arg(&cfg)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("percore did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A threaded TCP server on 127.0.0.1 that runs `handler` per connection.
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
}

impl Backend {
    pub fn start<F>(handler: F) -> Backend
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let handler = Arc::new(handler);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let h = Arc::clone(&handler);
                thread::spawn(move || h(stream));
            }
        });
        Backend { addr, accepted }
    }

    /// Echoes every byte back; on EOF from the client, shuts down its write
    /// side (so half-close is visible end to end).
    pub fn echo() -> Backend {
        Backend::start(|mut s| {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = s.shutdown(Shutdown::Write);
        })
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Sends `msg` and reads back exactly as many bytes.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// Reads until EOF or error; returns what was read and whether it ended with
/// an error (e.g. a reset) rather than a clean EOF.
pub fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, Option<std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), cheap enough to stream GiBs.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Self {
        Pattern(seed | 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// A minimal config with one tcp frontend on `{port}` and one backend.
pub fn tcp_config(extra_global: &str, backend_body: &str) -> String {
    format!(
        r#"
[global]
threads = 1
maxconn = 1000
{extra_global}

[defaults]
mode = "tcp"
timeout = {{ connect = "2s", client = "5m", server = "5m" }}

[[frontend]]
name = "fe"
bind = ["127.0.0.1:{{port}}"]
default_backend = "be"

[[backend]]
name = "be"
{backend_body}
"#
    )
}

pub fn servers(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{{ name = \"s{}\", addr = \"{a}\" }}", i + 1))
        .collect();
    format!("servers = [{}]", list.join(", "))
}

// --- stats endpoint and log files (observability tests) ---

pub fn stats_json(addr: SocketAddr) -> serde_json::Value {
    let (status, body) = plain_get(addr, "/stats;json");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// One GET with `Connection: close`; (status, body).
pub fn plain_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut s = connect(addr);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: stats\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    (head[9..12].parse().unwrap(), body.to_string())
}

/// Polls the JSON stats until `done` holds (requests are counted when
/// they end, possibly after the client read its last byte).
pub fn stats_when(
    addr: SocketAddr,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let v = stats_json(addr);
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "stats never settled: {v}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A file percore writes its log lines to (a `file:` log target), alone
/// in a temporary directory that lives as long as it.
pub struct LogFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl LogFile {
    pub fn new() -> LogFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        LogFile { _dir: dir, path }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The path as a configuration writes it.
    pub fn display(&self) -> std::path::Display<'_> {
        self.path.display()
    }

    /// `{ target = "file:<path>" }`, an element of `[global]`'s `log`.
    pub fn target(&self) -> String {
        format!("{{ target = \"file:{}\" }}", self.path.display())
    }

    /// [`LogFile::target`] with `options` (`format = "raw"`, ...).
    pub fn target_with(&self, options: &str) -> String {
        format!("{{ target = \"file:{}\", {options} }}", self.path.display())
    }

    /// `log = [{ target = "file:<path>" }]`, an entry of `[global]`.
    pub fn global_entry(&self) -> String {
        format!("log = [{}]", self.target())
    }

    /// `config` with this file as its global log target: the entry goes
    /// first in its `[global]` table (one is added if it has none).
    pub fn added_to(&self, config: &str) -> String {
        let entry = self.global_entry();
        match config.find("[global]\n") {
            Some(at) => {
                let after = at + "[global]\n".len();
                format!("{}{entry}\n{}", &config[..after], &config[after..])
            }
            None => format!("[global]\n{entry}\n\n{config}"),
        }
    }

    /// What percore wrote so far (empty before the first line).
    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap_or_default()
    }

    /// Waits until the file holds `n` lines; returns all its lines.
    pub fn wait_for_lines(&self, n: usize) -> Vec<String> {
        wait_for_lines(&self.path, n)
    }
}

impl Proxy {
    /// [`Proxy::start`] with `config` logging to a new [`LogFile`].
    pub fn start_logging(config: &str) -> (Proxy, LogFile) {
        let log = LogFile::new();
        (Proxy::start(&log.added_to(config)), log)
    }
}

/// Waits until the file at `path` (a log file percore writes) holds `n`
/// lines; returns all its lines.
pub fn wait_for_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    wait_for_matching_lines(
        || std::fs::read_to_string(path).unwrap_or_default(),
        |_| true,
        n,
    )
}

/// Waits until `read()` (a log file, a process's stderr) holds `n` lines
/// that `keep` accepts; returns those lines (all of them, in order).
pub fn wait_for_matching_lines(
    read: impl Fn() -> String,
    keep: impl Fn(&str) -> bool,
    n: usize,
) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = read();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| keep(l))
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} lines:\n{text}",
            lines.len()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded by [`PATIENCE`]) until `done` holds; `what` names it in
/// the failure.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// One command as an operator's script sends it: `echo "$cmd" | socat
/// stdio UNIX-CONNECT:$sock`.
pub fn socat(sock: &std::path::Path, line: &str) -> String {
    let out = Command::new("socat")
        .arg("stdio")
        .arg(format!("UNIX-CONNECT:{}", sock.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{line}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("socat runs (Debian package socat)");
    assert!(
        out.status.success(),
        "socat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// WebSocket server (plain) that echoes text messages.
pub fn ws_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(msg) = ws.read() {
                    match msg {
                        m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_)) => {
                            let sent = ws.send(m);
                            if sent.is_err() {
                                return;
                            }
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

/// Whether `tool` is on the PATH (tests assert it, naming what installs it).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A self-signed certificate for `h2.test`, chain and key in one PEM
/// (`site.pem` in `dir`).
pub fn site_bundle(dir: &std::path::Path) -> PathBuf {
    pki::write_self_signed_bundle(&dir.join("site.pem"), &["h2.test"])
}
