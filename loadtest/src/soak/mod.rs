//! `loadtest soak --duration <d>`: mixed traffic through percore while
//! its backends are killed and restarted, one stalls then resets, clients
//! misbehave and the configuration is reloaded, and proof that nothing
//! was lost or corrupted.
//!
//! Traffic (one thread per client, each cycling through the operations):
//! keep-alive and closing HTTP downloads, uploads whose SHA-256 the
//! backend returns, WebSocket echo, HTTPS downloads (TLS terminated by
//! percore), TCP tunnel echo (mode tcp), a request half-closed by the
//! client, and requests to a server that stalls then resets. Every byte
//! received is checked against what was sent or what the backend's
//! pattern says (`soak_backend::pattern`).
//!
//! Faults, all the time: SIGKILL of one backend process every
//! `--fault-every` then its restart on the same ports; slowloris clients
//! (a header byte every 300 ms) and silent connections; a `reload` on
//! the runtime API every `--reload-every` (the file alternates two server
//! weights).
//!
//! Every operation ends in one of: success; a documented refusal (502,
//! 503, 504: server failed, none available, server timeout); a transfer
//! aborted because the server died during it (the bytes received before
//! are checked and must be right); or a keep-alive connection the proxy
//! closed between two requests, retried once on a new connection as
//! HTTP clients do. The run fails (non-zero exit) on anything else: a
//! corrupted byte, another status, a connection closed with no answer, a
//! client waiting past every proxy timeout ([`HANG`]), a slowloris or
//! silent connection kept past its timeout, a failed reload, a proxy that
//! exits, or proxy descriptors or memory not back near their start after
//! the load stops ([`FD_MARGIN`], [`RSS_MARGIN_KIB`]).
//!
//! Here: options, the proxy's configuration, processes, faults and the
//! run. `http`: the client side of one request and how its end is
//! classified; `ops`: the operations and the misbehaving clients;
//! `tally`: the counts and the report.

use crate::procs::{SpawnSpec, Spawned};
use crate::soak_backend::{hex, pattern};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod http;
mod ops;
mod tally;

use http::{connect, download};
use ops::*;
use tally::*;

pub const BEGIN: &str = "<!-- loadtest:soak:begin (generated; rerun to update) -->";
pub const END: &str = "<!-- loadtest:soak:end -->";

/// percore's timeouts in the soak configuration. `server` is below the
/// long stall, so that stall ends in 504; `http-request` cuts slowloris.
const TIMEOUT_CONNECT: Duration = Duration::from_secs(1);
const TIMEOUT_CLIENT: Duration = Duration::from_secs(10);
const TIMEOUT_SERVER: Duration = Duration::from_secs(3);
const TIMEOUT_HTTP_REQUEST: Duration = Duration::from_secs(3);
const TIMEOUT_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A client waiting this long has waited past every proxy timeout (the
/// longest is `client`/`tunnel`, 10 s, plus retries' connects): a hang.
const HANG: Duration = Duration::from_secs(30);
/// A stall shorter than `timeout server` (the reset comes first: 502)
/// and one longer (the proxy gives up first: 504).
const STALLS_MS: [u64; 2] = [300, 5000];
/// Descriptors the proxy may hold after the load beyond those at the
/// start: idle server connections kept for reuse (`http-reuse safe`) are
/// not a leak, but there is at most one per backend server per core
/// left after the keep-alive timeout.
const FD_MARGIN: usize = 16;
/// RSS growth allowed after the load (KiB): the allocator keeps freed
/// pages for reuse (mimalloc), and TLS session caches stay filled; a leak
/// of even a few bytes per request grows far beyond this over a soak.
const RSS_MARGIN_KIB: u64 = 48 * 1024;

#[derive(Debug, Clone)]
pub struct Options {
    pub percore: PathBuf,
    pub duration: Duration,
    pub clients: usize,
    pub base_port: u16,
    pub fault_every: Duration,
    pub reload_every: Duration,
    pub cpus: Vec<usize>,
    pub work_dir: PathBuf,
    pub log_dir: PathBuf,
}

impl Options {
    fn addr(&self, offset: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base_port + offset))
    }
    fn http(&self) -> SocketAddr {
        self.addr(0)
    }
    fn https(&self) -> SocketAddr {
        self.addr(1)
    }
    fn tunnel(&self) -> SocketAddr {
        self.addr(2)
    }
    /// Backend `i`'s HTTP, WebSocket and TCP ports.
    fn backend(&self, i: usize) -> [SocketAddr; 3] {
        let first = 10 + 3 * i as u16;
        [self.addr(first), self.addr(first + 1), self.addr(first + 2)]
    }
    fn socket(&self) -> PathBuf {
        // sun_path holds 108 bytes: a short path, not under work_dir.
        std::env::temp_dir().join(format!("percore-soak-{}.sock", std::process::id()))
    }
}

const BACKENDS: usize = 2;

/// Set when a part of the soak cannot go on (a backend that does not
/// restart): every loop ends early instead of running to the deadline.
static ABORT: AtomicBool = AtomicBool::new(false);

fn going_on(deadline: Instant) -> bool {
    Instant::now() < deadline && !crate::procs::stopping() && !ABORT.load(Ordering::SeqCst)
}

/// How one operation ended.
#[derive(Debug)]
enum Outcome {
    /// Everything sent and received, every byte right.
    Done { bytes: u64 },
    /// A documented refusal: 502, 503 or 504.
    Refused(u16),
    /// The server died during the transfer; `verified` bytes before the
    /// end were checked and right.
    Aborted { verified: u64 },
    /// A keep-alive connection closed between two requests: retried.
    Retry,
}

/// What fails the soak.
#[derive(Debug)]
enum Failure {
    Corrupt(String),
    Hang(String),
    Unexpected(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Corrupt(s) => format!("corrupted: {s}"),
            Failure::Hang(s) => format!("hang: {s}"),
            Failure::Unexpected(s) => format!("unexpected: {s}"),
        }
    }
}

type OpResult = std::result::Result<Outcome, Failure>;

/// xorshift64*: operation parameters, not cryptography.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

// ------------------------------------------------------------ processes

fn spawn_backend(o: &Options, exe: &Path, i: usize, generation: u64) -> Result<Spawned> {
    let [http, ws, tcp] = o.backend(i);
    let log = o.log_dir.join(format!("soak-backend-{i}-{generation}.log"));
    let mut b = Spawned::spawn(SpawnSpec {
        name: &format!("soak backend {i}"),
        cpus: &[],
        program: exe,
        args: vec![
            "soak-backend".into(),
            "--http".into(),
            http.to_string().into(),
            "--ws".into(),
            ws.to_string().into(),
            "--tcp".into(),
            tcp.to_string().into(),
        ],
        log: Some(&log),
        capture_stdout: true,
    })?;
    b.wait_listening()?;
    Ok(b)
}

fn config(o: &Options, bundle: &Path, flip: bool) -> String {
    let threads: Vec<String> = o.cpus.iter().map(ToString::to_string).collect();
    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let servers = |port: usize| -> String {
        (0..BACKENDS)
            .map(|i| {
                // The reload changes a weight: each reload is a real change.
                let weight = if flip && i == 0 { 2 } else { 1 };
                format!(
                    "{{ name = \"b{i}\", addr = \"{}\", weight = {weight} }}",
                    o.backend(i)[port]
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"# Generated by `loadtest soak`.
[global]
threads = [{threads}]
maxconn = 4000
strict-limits = false
stats-socket = {{ path = "{socket}", level = "admin" }}
hard-stop-after = "5s"

[defaults]
mode = "http"
retries = 3
redispatch = true
timeout = {{ connect = "{connect}", client = "{client}", server = "{server}", tunnel = "{client}", http-request = "{http_request}", http-keep-alive = "{keep_alive}", queue = "{client}" }}

[[frontend]]
name = "web"
bind = ["{http}", {{ addr = "{https}", ssl = true, crt = "{bundle}" }}]
use_backend = ["ws if {{ path_beg /ws }}"]
default_backend = "app"

[[frontend]]
name = "tunnel"
mode = "tcp"
bind = ["{tunnel}"]
default_backend = "echo"

[[backend]]
name = "app"
default-server = {{ check = true, inter = "300ms", rise = 1, fall = 1 }}
servers = [{app}]

[[backend]]
name = "ws"
default-server = {{ check = true, inter = "300ms", rise = 1, fall = 1 }}
servers = [{ws}]

[[backend]]
name = "echo"
mode = "tcp"
default-server = {{ check = true, inter = "300ms", rise = 1, fall = 1 }}
servers = [{echo}]
"#,
        threads = threads.join(", "),
        socket = o.socket().display(),
        connect = secs(TIMEOUT_CONNECT),
        client = secs(TIMEOUT_CLIENT),
        server = secs(TIMEOUT_SERVER),
        http_request = secs(TIMEOUT_HTTP_REQUEST),
        keep_alive = secs(TIMEOUT_KEEP_ALIVE),
        http = o.http(),
        https = o.https(),
        tunnel = o.tunnel(),
        bundle = bundle.display(),
        app = servers(0),
        ws = servers(1),
        echo = servers(2),
    )
}

/// Descriptors and RSS (KiB) of the proxy; `None` once it is gone.
fn sample(pid: u32) -> Option<(usize, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
    {
        return None;
    }
    let rss = crate::suite::parse_vm_rss(&status)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((fds, rss))
}

#[derive(Debug, Default)]
pub struct Report {
    pub markdown: String,
    pub failures: Vec<String>,
}

pub fn run(o: &Options) -> Result<Report> {
    std::fs::create_dir_all(&o.work_dir)
        .with_context(|| format!("creating {}", o.work_dir.display()))?;
    std::fs::create_dir_all(&o.log_dir)
        .with_context(|| format!("creating {}", o.log_dir.display()))?;
    if !o.percore.exists() {
        bail!(
            "{} does not exist: build percore first",
            o.percore.display()
        );
    }
    let started = Instant::now();
    let (bundle, _) =
        crate::tls::setup::make_certificate(&o.work_dir, crate::tls::setup::KeyType::EcdsaP256)?;
    let tls = crate::tls::client::accept_any_config()?;

    // Resolved once: if the binary is rebuilt during the soak, the path
    // still names a loadtest (/proc/self/exe would then say "(deleted)").
    let exe = std::env::current_exe().context("locating loadtest itself")?;
    let mut backends = Vec::new();
    for i in 0..BACKENDS {
        backends.push(spawn_backend(o, &exe, i, 0)?);
    }
    let config_path = o.work_dir.join("soak.toml");
    std::fs::write(&config_path, config(o, &bundle, false))?;
    let socket = o.socket();
    let mut proxy = Spawned::spawn(SpawnSpec {
        name: "percore",
        cpus: &[],
        program: &o.percore,
        args: vec!["-c".into(), config_path.clone().into()],
        log: Some(&o.log_dir.join("soak-percore.log")),
        capture_stdout: false,
    })?;
    let ready = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(o.tunnel()).is_err() || !socket.exists() {
        proxy.check_running()?;
        if Instant::now() > ready {
            bail!("percore did not listen on {} within 20 s", o.tunnel());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = proxy.pid();

    // Warm-up: one of each operation, then the idle state is the start.
    let tally: Shared = Arc::default();
    {
        let mut rng = Rng(1);
        for op in MIX {
            let r = match op {
                Op::WebSocket => websocket(o, &mut rng),
                Op::Tunnel => tunnel(o, &mut rng),
                Op::HalfClose => half_close(o, &mut rng),
                _ => connect(o.http()).and_then(|mut s| download(&mut s, 1000, 1, true, false).0),
            };
            if let Err(f) = r {
                bail!("warm-up {}: {}", op.name(), f.describe());
            }
        }
        std::thread::sleep(TIMEOUT_KEEP_ALIVE + Duration::from_secs(2));
    }
    let start = sample(pid).context("percore is gone after the warm-up")?;

    let deadline = Instant::now() + o.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(start));
    let crashed = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (stop, peak, crashed) = (Arc::clone(&stop), Arc::clone(&peak), Arc::clone(&crashed));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match sample(pid) {
                    Some((fds, rss)) => {
                        let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                        *p = (p.0.max(fds), p.1.max(rss));
                    }
                    None => {
                        crashed.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let faults = {
        let (o, tally, exe) = (o.clone(), Arc::clone(&tally), exe.clone());
        std::thread::spawn(move || -> Result<Vec<Spawned>> {
            let mut generation = 0;
            while going_on(deadline - o.fault_every) {
                std::thread::sleep(o.fault_every);
                let i = (generation as usize) % BACKENDS;
                generation += 1;
                let victim = backends.remove(i);
                let restarted = victim.kill_hard().and_then(|_| {
                    lock(&tally).kills += 1;
                    std::thread::sleep(Duration::from_secs(1));
                    spawn_backend(&o, &exe, i, generation)
                });
                match restarted {
                    Ok(b) => backends.insert(i, b),
                    Err(e) => {
                        ABORT.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
                lock(&tally).restarts += 1;
            }
            Ok(backends)
        })
    };
    let reloads = {
        let (o, tally, bundle, config_path) = (
            o.clone(),
            Arc::clone(&tally),
            bundle.clone(),
            config_path.clone(),
        );
        std::thread::spawn(move || {
            let mut flip = false;
            while going_on(deadline - o.reload_every) {
                std::thread::sleep(o.reload_every);
                flip = !flip;
                let tmp = config_path.with_extension("toml.new");
                let written = std::fs::write(&tmp, config(&o, &bundle, flip))
                    .and_then(|()| std::fs::rename(&tmp, &config_path));
                let result = written
                    .map_err(anyhow::Error::from)
                    .and_then(|()| crate::reload::send_reload(&o.socket()));
                let mut t = lock(&tally);
                match result {
                    Ok((_, applied)) => {
                        t.reloads += 1;
                        t.reload_ms_max = t.reload_ms_max.max(applied.ms);
                    }
                    Err(e) => t.fail(format!("reload: {e:#}")),
                }
            }
        })
    };
    let bad = {
        let (o, tally) = (o.clone(), Arc::clone(&tally));
        std::thread::spawn(move || bad_clients(&o, deadline, &tally))
    };
    let clients: Vec<_> = (0..o.clients)
        .map(|i| {
            let (o, tally, tls) = (o.clone(), Arc::clone(&tally), Arc::clone(&tls));
            std::thread::spawn(move || client(&o, i, deadline, &tally, &tls))
        })
        .collect();

    for c in clients {
        if c.join().is_err() {
            lock(&tally).fail("a client thread panicked".into());
        }
    }
    let _ = bad.join();
    let _ = reloads.join();
    let backends = match faults.join() {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => bail!("fault injection: {e:#}"),
        Err(_) => bail!("the fault thread panicked"),
    };
    let load_seconds = o.duration.as_secs_f64();

    // After: idle keep-alive and pooled server connections time out, then
    // the proxy should be back where it started.
    let settle_until =
        Instant::now() + TIMEOUT_KEEP_ALIVE + TIMEOUT_CLIENT + Duration::from_secs(5);
    let mut after = sample(pid);
    while Instant::now() < settle_until {
        if let Some((fds, _)) = after {
            if fds <= start.0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        after = sample(pid);
    }
    stop.store(true, Ordering::SeqCst);
    let _ = monitor.join();
    let peak = *peak.lock().unwrap_or_else(|e| e.into_inner());

    let mut t = std::mem::take(&mut *lock(&tally));
    if crashed.load(Ordering::SeqCst) || proxy.check_running().is_err() {
        t.fail("percore exited during the soak (see soak-percore.log)".into());
    }
    let after = match after {
        Some(a) => a,
        None => {
            t.fail("percore is gone after the load".into());
            (0, 0)
        }
    };
    if after.0 > start.0 + FD_MARGIN {
        t.fail(format!(
            "descriptors not back after the load: {} at the start, {} after (margin {FD_MARGIN})",
            start.0, after.0
        ));
    }
    if after.1 > start.1 + RSS_MARGIN_KIB {
        t.fail(format!(
            "RSS not back after the load: {} KiB at the start, {} KiB after (margin {RSS_MARGIN_KIB} KiB)",
            start.1, after.1
        ));
    }
    drop(backends);
    let _ = proxy.stop();
    let _ = std::fs::remove_file(&socket);

    let markdown = render(o, &t, start, peak, after, load_seconds, started.elapsed());
    Ok(Report {
        markdown,
        failures: t.failures,
    })
}

#[cfg(test)]
mod tests {
    use super::http::documented;
    use super::*;

    fn options() -> Options {
        Options {
            percore: "percore".into(),
            duration: Duration::from_secs(1),
            clients: 1,
            base_port: 24100,
            fault_every: Duration::from_secs(4),
            reload_every: Duration::from_secs(3),
            cpus: vec![0, 1],
            work_dir: "/tmp".into(),
            log_dir: "/tmp".into(),
        }
    }

    #[test]
    fn both_config_variants_are_toml_and_differ_only_in_a_weight() {
        let o = options();
        let a = config(&o, Path::new("/tmp/c.pem"), false);
        let b = config(&o, Path::new("/tmp/c.pem"), true);
        for text in [&a, &b] {
            let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(doc["frontend"].as_array().map(Vec::len), Some(2));
            assert_eq!(doc["backend"].as_array().map(Vec::len), Some(3));
        }
        let changed: Vec<_> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
        assert_eq!(changed.len(), 3, "{changed:?}");
        assert!(changed
            .iter()
            .all(|(x, y)| x.contains("weight = 1") && y.contains("weight = 2")));
    }

    #[test]
    fn only_502_503_504_are_documented_refusals() {
        assert!([502, 503, 504].into_iter().all(documented));
        assert!(![200, 400, 404, 408, 500, 501, 505]
            .into_iter()
            .any(documented));
    }

    #[test]
    fn every_operation_is_in_the_mix() {
        for op in [
            Op::KeepAlive,
            Op::Close,
            Op::Upload,
            Op::WebSocket,
            Op::Tls,
            Op::Tunnel,
            Op::HalfClose,
            Op::Stall,
        ] {
            assert!(MIX.iter().any(|m| m.name() == op.name()), "{op:?}");
        }
    }
}
