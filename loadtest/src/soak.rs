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

#[derive(Debug, Default)]
struct Tally {
    /// (operation, outcome) → count.
    outcomes: BTreeMap<(String, String), u64>,
    complete_transfers: u64,
    complete_bytes: u64,
    aborted_transfers: u64,
    aborted_bytes_verified: u64,
    failures: Vec<String>,
    kills: u64,
    restarts: u64,
    reloads: u64,
    reload_ms_max: f64,
    slowloris: u64,
    slowloris_408: u64,
    slowloris_cut_max: Duration,
    silent: u64,
    silent_cut_max: Duration,
}

impl Tally {
    fn record(&mut self, op: &str, result: &OpResult) {
        let label = match result {
            Ok(Outcome::Done { bytes }) => {
                self.complete_transfers += 1;
                self.complete_bytes += bytes;
                "ok".to_string()
            }
            Ok(Outcome::Refused(status)) => status.to_string(),
            Ok(Outcome::Aborted { verified }) => {
                self.aborted_transfers += 1;
                self.aborted_bytes_verified += verified;
                "aborted (server killed)".to_string()
            }
            Ok(Outcome::Retry) => "keep-alive closed, retried".to_string(),
            Err(f) => {
                if self.failures.len() < 50 {
                    self.failures.push(format!("{op}: {}", f.describe()));
                }
                match f {
                    Failure::Corrupt(_) => "CORRUPT",
                    Failure::Hang(_) => "HANG",
                    Failure::Unexpected(_) => "UNEXPECTED",
                }
                .to_string()
            }
        };
        *self.outcomes.entry((op.to_string(), label)).or_default() += 1;
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 50 {
            self.failures.push(what);
        }
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

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

// ------------------------------------------------------------ HTTP client

/// How reading an answer ended badly.
enum ReadEnd {
    /// Closed (FIN or reset); `any` is whether a byte came first.
    Closed {
        any: bool,
    },
    Timeout,
    Bad(String),
}

fn read_end(e: &std::io::Error, any: bool) -> ReadEnd {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ReadEnd::Timeout,
        _ => ReadEnd::Closed { any },
    }
}

struct Head {
    status: u16,
    content_length: Option<u64>,
    close: bool,
}

fn read_head<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> std::result::Result<Head, ReadEnd> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut fields);
        match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let head = Head {
                    status: resp.code.unwrap_or(0),
                    content_length: header("content-length").and_then(|v| v.trim().parse().ok()),
                    close: header("connection").is_some_and(|v| v.contains("close")),
                };
                buf.drain(..len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(ReadEnd::Bad(format!("unparsable response head: {e}"))),
        }
        match s.read(&mut chunk) {
            Ok(0) => {
                return Err(ReadEnd::Closed {
                    any: !buf.is_empty(),
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(read_end(&e, !buf.is_empty())),
        }
    }
}

/// Reads `len` body bytes, each handed to `check` with its offset; stops
/// at the first wrong one.
fn read_body<S: Read>(
    s: &mut S,
    buf: &mut Vec<u8>,
    len: u64,
    mut check: impl FnMut(u64, &[u8]) -> Option<String>,
) -> std::result::Result<u64, (u64, std::result::Result<ReadEnd, String>)> {
    let mut got = 0u64;
    let take = (buf.len() as u64).min(len) as usize;
    if let Some(bad) = check(0, &buf[..take]) {
        return Err((0, Err(bad)));
    }
    got += take as u64;
    buf.drain(..take);
    let mut chunk = vec![0u8; 64 * 1024];
    while got < len {
        let want = (len - got).min(chunk.len() as u64) as usize;
        match s.read(&mut chunk[..want]) {
            Ok(0) => return Err((got, Ok(ReadEnd::Closed { any: true }))),
            Ok(n) => {
                if let Some(bad) = check(got, &chunk[..n]) {
                    return Err((got, Err(bad)));
                }
                got += n as u64;
            }
            Err(e) => return Err((got, Ok(read_end(&e, true)))),
        }
    }
    Ok(got)
}

fn pattern_check(seed: u64) -> impl FnMut(u64, &[u8]) -> Option<String> {
    let mut expected = Vec::new();
    move |offset, got| {
        expected.resize(got.len(), 0);
        pattern(seed, offset, &mut expected);
        got.iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .map(|i| format!("byte {} of seed {seed}", offset + i as u64))
    }
}

fn documented(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// A response that is not the one asked for: a documented refusal (its
/// error page is read and dropped) or a failure.
fn refusal<S: Read>(s: &mut S, buf: &mut Vec<u8>, head: &Head, what: &str) -> OpResult {
    if !documented(head.status) {
        return Err(Failure::Unexpected(format!(
            "{what}: status {}",
            head.status
        )));
    }
    if let Some(len) = head.content_length {
        let _ = read_body(s, buf, len, |_, _| None);
    }
    Ok(Outcome::Refused(head.status))
}

fn no_answer(end: ReadEnd, reused: bool, what: &str) -> Failure {
    match end {
        ReadEnd::Timeout => Failure::Hang(format!("{what}: no answer within {HANG:?}")),
        ReadEnd::Bad(why) => Failure::Unexpected(format!("{what}: {why}")),
        ReadEnd::Closed { any } => Failure::Unexpected(format!(
            "{what}: connection closed {} an answer{}",
            if any { "in the middle of" } else { "without" },
            if reused { " (reused connection)" } else { "" }
        )),
    }
}

/// One `GET /dl/<len>/<seed>`; the bool says whether the connection may
/// carry another request.
fn download<S: Read + Write>(
    s: &mut S,
    len: u64,
    seed: u64,
    close: bool,
    reused: bool,
) -> (OpResult, bool) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let request = format!("GET /dl/{len}/{seed} HTTP/1.1\r\nHost: soak\r\n{connection}\r\n");
    if s.write_all(request.as_bytes())
        .and_then(|()| s.flush())
        .is_err()
    {
        return if reused {
            (Ok(Outcome::Retry), false)
        } else {
            (
                Err(Failure::Unexpected("download: request not sent".into())),
                false,
            )
        };
    }
    let mut buf = Vec::new();
    let head = match read_head(s, &mut buf) {
        Ok(h) => h,
        Err(ReadEnd::Closed { any: false }) if reused => return (Ok(Outcome::Retry), false),
        Err(end) => return (Err(no_answer(end, reused, "download")), false),
    };
    if head.status != 200 {
        return (refusal(s, &mut buf, &head, "download"), false);
    }
    if head.content_length != Some(len) {
        let why = format!(
            "download: Content-Length {:?} for {len}",
            head.content_length
        );
        return (Err(Failure::Unexpected(why)), false);
    }
    match read_body(s, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => (Ok(Outcome::Done { bytes }), !close && !head.close),
        Err((_, Err(bad))) => (Err(Failure::Corrupt(format!("download: {bad}"))), false),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => (Ok(Outcome::Aborted { verified }), false),
        Err((_, Ok(end))) => (Err(no_answer(end, reused, "download body")), false),
    }
}

/// `POST /up`: the backend answers the body's SHA-256.
fn upload<S: Read + Write>(s: &mut S, len: u64, seed: u64) -> OpResult {
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 64 * 1024];
    let mut sent_all = s.write_all(head.as_bytes()).is_ok();
    let mut sent = 0u64;
    while sent_all && sent < len {
        let n = (len - sent).min(block.len() as u64) as usize;
        pattern(seed, sent, &mut block[..n]);
        hasher.update(&block[..n]);
        match s.write_all(&block[..n]) {
            Ok(()) => sent += n as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::Hang(format!(
                    "upload: body not taken within {HANG:?}"
                )))
            }
            Err(_) => sent_all = false,
        }
    }
    let _ = s.flush();
    let mut buf = Vec::new();
    let head = match read_head(s, &mut buf) {
        Ok(h) => h,
        // The proxy stopped reading the body and closed: the server died
        // under the upload (its 502 may be lost to the reset).
        Err(ReadEnd::Closed { .. }) if !sent_all => return Ok(Outcome::Aborted { verified: 0 }),
        Err(end) => return Err(no_answer(end, false, "upload")),
    };
    if head.status != 200 {
        return refusal(s, &mut buf, &head, "upload");
    }
    if !sent_all {
        return Err(Failure::Unexpected(
            "upload: 200 for a body not all sent".into(),
        ));
    }
    let want = hex(&hasher.finalize());
    let mut got = Vec::new();
    match read_body(s, &mut buf, 64, |_, b| {
        got.extend_from_slice(b);
        None
    }) {
        Ok(_) if got == want.as_bytes() => Ok(Outcome::Done { bytes: len }),
        Ok(_) => Err(Failure::Corrupt(format!(
            "upload of {len} bytes: server hashed {} not {want}",
            String::from_utf8_lossy(&got)
        ))),
        Err((_, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified: 0 }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "upload answer")),
        Err((_, Err(bad))) => Err(Failure::Corrupt(bad)),
    }
}

fn connect(addr: SocketAddr) -> std::result::Result<TcpStream, Failure> {
    let s = TcpStream::connect_timeout(&addr, HANG)
        .map_err(|e| Failure::Unexpected(format!("connect to the proxy {addr}: {e}")))?;
    let _ = s.set_read_timeout(Some(HANG));
    let _ = s.set_write_timeout(Some(HANG));
    let _ = s.set_nodelay(true);
    Ok(s)
}

// ------------------------------------------------------------ operations

#[derive(Debug, Clone, Copy)]
enum Op {
    KeepAlive,
    Close,
    Upload,
    WebSocket,
    Tls,
    Tunnel,
    HalfClose,
    Stall,
}

const MIX: [Op; 12] = [
    Op::KeepAlive,
    Op::KeepAlive,
    Op::Close,
    Op::Upload,
    Op::WebSocket,
    Op::Tls,
    Op::Tunnel,
    Op::KeepAlive,
    Op::HalfClose,
    Op::Upload,
    Op::Tunnel,
    Op::Stall,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::KeepAlive => "http keep-alive download",
            Op::Close => "http close download",
            Op::Upload => "http upload (SHA-256)",
            Op::WebSocket => "websocket echo",
            Op::Tls => "https keep-alive download",
            Op::Tunnel => "tcp tunnel echo",
            Op::HalfClose => "http half-closed client",
            Op::Stall => "server stalls then resets",
        }
    }
}

/// A body size: mostly small, sometimes large.
fn size(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0 => 1 + rng.below(4 << 20),
        1..=3 => 1 + rng.below(256 << 10),
        _ => rng.below(8 << 10),
    }
}

/// Several requests on one connection (plain or TLS); a connection the
/// proxy closed between two requests is replaced once.
fn keep_alive_session<S: Read + Write>(
    mut open: impl FnMut() -> std::result::Result<S, Failure>,
    rng: &mut Rng,
    tally: &Shared,
    op: Op,
) {
    let mut conn = match open() {
        Ok(c) => c,
        Err(f) => return lock(tally).record(op.name(), &Err(f)),
    };
    let mut reused = false;
    for _ in 0..3 {
        let (len, seed) = (size(rng), rng.next());
        let (mut result, mut keep) = download(&mut conn, len, seed, false, reused);
        if matches!(result, Ok(Outcome::Retry)) {
            lock(tally).record(op.name(), &result);
            conn = match open() {
                Ok(c) => c,
                Err(f) => return lock(tally).record(op.name(), &Err(f)),
            };
            (result, keep) = download(&mut conn, len, seed, false, false);
        }
        lock(tally).record(op.name(), &result);
        if !keep {
            return;
        }
        reused = true;
    }
}

fn websocket(o: &Options, rng: &mut Rng) -> OpResult {
    let tcp = connect(o.http())?;
    let (mut ws, _) = match tungstenite::client("ws://soak/ws", tcp) {
        Ok(pair) => pair,
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            return if documented(status) {
                Ok(Outcome::Refused(status))
            } else {
                Err(Failure::Unexpected(format!(
                    "websocket handshake: status {status}"
                )))
            };
        }
        Err(e) => return Err(Failure::Unexpected(format!("websocket handshake: {e}"))),
    };
    let mut verified = 0u64;
    let lost = |e: tungstenite::Error, verified: u64| match e {
        tungstenite::Error::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            Err(Failure::Hang(format!("websocket: no echo within {HANG:?}")))
        }
        _ => Ok(Outcome::Aborted { verified }),
    };
    for _ in 0..4 {
        let seed = rng.next();
        let mut data = vec![0u8; 1 + rng.below(32 << 10) as usize];
        pattern(seed, 0, &mut data);
        if let Err(e) = ws.send(tungstenite::Message::binary(data.clone())) {
            return lost(e, verified);
        }
        match ws.read() {
            Ok(tungstenite::Message::Binary(echo)) if echo[..] == data[..] => {
                verified += data.len() as u64
            }
            Ok(other) => {
                return Err(Failure::Corrupt(format!(
                    "websocket: echo of {} bytes came back as {} bytes",
                    data.len(),
                    other.len()
                )))
            }
            Err(e) => return lost(e, verified),
        }
    }
    let _ = ws.close(None);
    while ws.read().is_ok() {}
    Ok(Outcome::Done { bytes: verified })
}

fn tunnel(o: &Options, rng: &mut Rng) -> OpResult {
    let mut reader = connect(o.tunnel())?;
    let mut writer = reader
        .try_clone()
        .map_err(|e| Failure::Unexpected(format!("tunnel: {e}")))?;
    let (len, seed) = (size(rng), rng.next());
    let feeder = std::thread::spawn(move || {
        let mut block = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        while sent < len {
            let n = (len - sent).min(block.len() as u64) as usize;
            pattern(seed, sent, &mut block[..n]);
            if writer.write_all(&block[..n]).is_err() {
                return;
            }
            sent += n as u64;
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut buf = Vec::new();
    let result = match read_body(&mut reader, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => {
            // Then the echo server's FIN, passed on by the proxy.
            let mut rest = [0u8; 1];
            match reader.read(&mut rest) {
                Ok(0) => Ok(Outcome::Done { bytes }),
                Ok(_) => Err(Failure::Corrupt("tunnel: bytes after the echo".into())),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    Err(Failure::Hang("tunnel: no FIN after the echo".into()))
                }
                Err(_) => Ok(Outcome::Done { bytes }),
            }
        }
        Err((_, Err(bad))) => Err(Failure::Corrupt(format!("tunnel: {bad}"))),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "tunnel")),
    };
    let _ = reader.shutdown(Shutdown::Both);
    let _ = feeder.join();
    result
}

fn half_close(o: &Options, rng: &mut Rng) -> OpResult {
    let mut s = connect(o.http())?;
    let (len, seed) = (rng.below(64 << 10), rng.next());
    let request =
        format!("GET /dl/{len}/{seed} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return Err(Failure::Unexpected("half-close: request not sent".into()));
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).map_err(|e| no_answer(e, false, "half-close"))?;
    if head.status != 200 {
        return refusal(&mut s, &mut buf, &head, "half-close");
    }
    match read_body(&mut s, &mut buf, len, pattern_check(seed)) {
        Ok(bytes) => Ok(Outcome::Done { bytes }),
        Err((_, Err(bad))) => Err(Failure::Corrupt(format!("half-close: {bad}"))),
        Err((verified, Ok(ReadEnd::Closed { .. }))) => Ok(Outcome::Aborted { verified }),
        Err((_, Ok(end))) => Err(no_answer(end, false, "half-close body")),
    }
}

fn stall(o: &Options, rng: &mut Rng) -> OpResult {
    let mut s = connect(o.http())?;
    let ms = STALLS_MS[rng.below(STALLS_MS.len() as u64) as usize];
    let request = format!("GET /stall/{ms} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return Err(Failure::Unexpected("stall: request not sent".into()));
    }
    let mut buf = Vec::new();
    let head = read_head(&mut s, &mut buf).map_err(|e| no_answer(e, false, "stall"))?;
    refusal(&mut s, &mut buf, &head, "stall")
}

fn client(
    o: &Options,
    index: usize,
    deadline: Instant,
    tally: &Shared,
    tls: &Arc<rustls::ClientConfig>,
) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (((index as u64 + 1) << 32) | (index as u64 + 7)));
    let mut turn = index;
    while going_on(deadline) {
        let op = MIX[turn % MIX.len()];
        turn += 1;
        match op {
            Op::KeepAlive => keep_alive_session(|| connect(o.http()), &mut rng, tally, op),
            Op::Tls => {
                let open = || {
                    let tcp = connect(o.https())?;
                    let name = rustls::pki_types::ServerName::try_from("soak.test")
                        .map_err(|e| Failure::Unexpected(e.to_string()))?;
                    let conn = rustls::ClientConnection::new(Arc::clone(tls), name)
                        .map_err(|e| Failure::Unexpected(format!("tls: {e}")))?;
                    Ok(rustls::StreamOwned::new(conn, tcp))
                };
                keep_alive_session(open, &mut rng, tally, op);
            }
            Op::Close => {
                let result = connect(o.http()).and_then(|mut s| {
                    let (len, seed) = (size(&mut rng), rng.next());
                    download(&mut s, len, seed, true, false).0
                });
                lock(tally).record(op.name(), &result);
            }
            Op::Upload => {
                let result = connect(o.http()).and_then(|mut s| {
                    let (len, seed) = (size(&mut rng), rng.next());
                    upload(&mut s, len, seed)
                });
                lock(tally).record(op.name(), &result);
            }
            Op::WebSocket => {
                let result = websocket(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::Tunnel => {
                let result = tunnel(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::HalfClose => {
                let result = half_close(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
            Op::Stall => {
                let result = stall(o, &mut rng);
                lock(tally).record(op.name(), &result);
            }
        }
    }
}

// ------------------------------------------------------------ bad clients

/// Connections the proxy must close by itself: slowloris (a header byte
/// every 300 ms, never the end of the head: `timeout http-request`) and
/// silent ones (nothing sent). Returns how long the proxy took, and
/// whether a slowloris got its 408.
fn misbehave(addr: SocketAddr, slow: bool) -> std::result::Result<(Duration, bool), String> {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, HANG).map_err(|e| format!("connect: {e}"))?;
    let limit = TIMEOUT_HTTP_REQUEST.max(TIMEOUT_CLIENT) + HANG;
    if slow {
        let _ = s.write_all(b"GET /dl/10/1 HTTP/1.1\r\nHost: soak\r\nX-Slow: ");
        let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    } else {
        let _ = s.set_read_timeout(Some(limit));
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if started.elapsed() > limit {
                    return Err(format!("still open after {:?}", started.elapsed()));
                }
                if slow {
                    // A write may fail once the proxy closed; the read
                    // then sees it.
                    let _ = s.write_all(b"a");
                }
            }
            Err(_) => break,
        }
    }
    Ok((started.elapsed(), answer.starts_with(b"HTTP/1.1 408")))
}

fn bad_clients(o: &Options, deadline: Instant, tally: &Shared) {
    while going_on(deadline) {
        let addr = o.http();
        let batch: Vec<_> = (0..12)
            .map(|i| std::thread::spawn(move || (i % 3 != 0, misbehave(addr, i % 3 != 0))))
            .collect();
        for t in batch {
            let Ok((slow, result)) = t.join() else {
                continue;
            };
            let mut t = lock(tally);
            match (slow, result) {
                (true, Ok((took, got_408))) => {
                    t.slowloris += 1;
                    t.slowloris_408 += u64::from(got_408);
                    t.slowloris_cut_max = t.slowloris_cut_max.max(took);
                }
                (false, Ok((took, _))) => {
                    t.silent += 1;
                    t.silent_cut_max = t.silent_cut_max.max(took);
                }
                (slow, Err(why)) => {
                    let kind = if slow {
                        "slowloris"
                    } else {
                        "silent connection"
                    };
                    t.fail(format!("{kind}: {why}"));
                }
            }
        }
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

fn render(
    o: &Options,
    t: &Tally,
    start: (usize, u64),
    peak: (usize, u64),
    after: (usize, u64),
    load_seconds: f64,
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(out, "## Soak with faults\n");
    let _ = writeln!(
        out,
        "`loadtest soak --duration {}s --clients {}` ({} s of load, {:.0} s in all; \
         proxy on CPUs {:?}, both CPUs shared with the clients and backends). \
         Faults: a backend SIGKILLed and restarted every {:?}, a reload every {:?}, \
         slowloris and silent connections throughout, requests to a server that \
         stalls {:?} ms then resets.\n",
        o.duration.as_secs(),
        o.clients,
        load_seconds,
        elapsed.as_secs_f64(),
        o.cpus,
        o.fault_every,
        o.reload_every,
        STALLS_MS,
    );
    let _ = writeln!(out, "| operation | outcome | count |");
    let _ = writeln!(out, "|---|---|---:|");
    for ((op, outcome), n) in &t.outcomes {
        let _ = writeln!(out, "| {op} | {outcome} | {n} |");
    }
    let _ = writeln!(
        out,
        "\n- Completed transfers: {}, {} bytes, every byte checked and intact.",
        t.complete_transfers, t.complete_bytes
    );
    let _ = writeln!(
        out,
        "- Transfers cut because their server was killed: {}; the {} bytes received before the cut were checked and intact.",
        t.aborted_transfers, t.aborted_bytes_verified
    );
    let _ = writeln!(
        out,
        "- Backends killed: {}, restarted: {}. Reloads applied: {} (longest {:.1} ms).",
        t.kills, t.restarts, t.reloads, t.reload_ms_max
    );
    let _ = writeln!(
        out,
        "- Slowloris connections: {} cut by the proxy ({} with 408), the slowest after {:.1} s (timeout http-request {} s). Silent connections: {} closed, the slowest after {:.1} s.",
        t.slowloris,
        t.slowloris_408,
        t.slowloris_cut_max.as_secs_f64(),
        TIMEOUT_HTTP_REQUEST.as_secs(),
        t.silent,
        t.silent_cut_max.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- Proxy descriptors: {} at the start, {} at the peak, {} after (allowed: start + {FD_MARGIN}).",
        start.0, peak.0, after.0
    );
    let _ = writeln!(
        out,
        "- Proxy RSS: {:.1} MiB at the start, {:.1} MiB at the peak, {:.1} MiB after (allowed: start + {} MiB).",
        start.1 as f64 / 1024.0,
        peak.1 as f64 / 1024.0,
        after.1 as f64 / 1024.0,
        RSS_MARGIN_KIB / 1024
    );
    if t.failures.is_empty() {
        let _ = writeln!(
            out,
            "- Verdict: **pass** (no crash, no hang, no corrupted byte, no undocumented outcome)."
        );
    } else {
        let _ = writeln!(out, "- Verdict: **FAIL**:");
        for f in &t.failures {
            let _ = writeln!(out, "  - {f}");
        }
    }
    let _ = writeln!(out, "{END}");
    out
}

#[cfg(test)]
mod tests {
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
