//! `loadtest stick`: what stick tables cost, percore vs HAProxy.
//!
//! 1. CPU per request with rate limiting: keep-alive clients, small
//!    responses, through a frontend without a table and through the same
//!    frontend with `stick-table type ip ... store http_req_rate(10s)`,
//!    `track-sc0 src` and a `deny` over a limit never reached. The proxy
//!    runs alone on one CPU, client and backend on the other; proxy CPU is
//!    utime+stime from /proc over the measured window divided by the
//!    requests answered; rounds alternate the order of the proxies and the
//!    table shows the median. After each tracked run the runtime API's
//!    `show table` must list the client's entry with a non-zero
//!    `http_req_rate`, and no request may have been denied, so a row
//!    cannot silently measure an idle table.
//! 2. Memory per entry: a `type string len 32` table tracked on an X-Key
//!    header is filled with distinct keys by pipelining keep-alive
//!    clients; VmRSS is read after a warm-up fill and 3 s after the full one,
//!    and the difference divided by the entries added (the runtime API's
//!    `used:` count, checked to be every key sent).

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::configs::{
    percore_on_cpus, write_haproxy_http_head, write_percore_http_head_with, HttpParams, Timeouts,
};
use crate::cpustat;
use crate::http_load::{self, Mark};
use crate::procs::{self, SpawnSpec, Spawned};

/// A rate limit no run reaches (the rule is evaluated, never true).
pub const NEVER_REACHED: u64 = 1_000_000_000;
/// Keys filled before the "before" RSS reading: connections, buffers and
/// allocator pools are then in place, so the difference is the entries.
const WARM_KEYS: u64 = 10_000;
/// Requests each fill connection writes before reading their answers.
const PIPELINE: u64 = 32;
/// Time between the end of the fill and the second RSS reading: what the
/// allocator gives back after a delay (arrays freed as the table grew)
/// is gone by then.
const SETTLE: Duration = Duration::from_secs(3);

pub struct Options {
    pub percore: PathBuf,
    pub haproxy: PathBuf,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    pub proxy_port: u16,
    /// The backend's port (and the next one, its WebSocket listener).
    pub backend_port: u16,
    /// Keep-alive connections of the CPU runs.
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
    /// Distinct keys of the memory run.
    pub keys: u64,
    /// Connections filling the table.
    pub fill_connections: usize,
    /// Also run the CPU rows with percore on both CPUs.
    pub two_cores: bool,
    pub config_dir: PathBuf,
    pub log_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proxy {
    Percore,
    /// percore on the proxy's CPU and the load's (`threads = [1, 0]`):
    /// the tracked key has one owner core, so the other core's requests
    /// consult it by message.
    PercoreTwoCores,
    Haproxy,
}

impl Proxy {
    fn name(self) -> &'static str {
        match self {
            Proxy::Percore => "percore",
            Proxy::PercoreTwoCores => "percore, 2 cores",
            Proxy::Haproxy => "HAProxy",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Proxy::Percore => "percore",
            Proxy::PercoreTwoCores => "percore2",
            Proxy::Haproxy => "haproxy",
        }
    }

    fn cpus(self, o: &Options) -> Vec<usize> {
        match self {
            Proxy::PercoreTwoCores => vec![o.proxy_cpu, o.load_cpu],
            _ => vec![o.proxy_cpu],
        }
    }
}

/// What the frontend does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Forward to the backend.
    Plain,
    /// Track the source address and test its rate, then forward.
    RateLimited,
    /// Track the X-Key header in a string table, answer 200 itself.
    Keys,
}

impl Shape {
    fn tag(self) -> &'static str {
        match self {
            Shape::Plain => "plain",
            Shape::RateLimited => "tracked",
            Shape::Keys => "keys",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Shape::Plain => "plain (no table)",
            Shape::RateLimited => "track-sc0 src + http_req_rate deny",
            Shape::Keys => "track-sc0 req.hdr(x-key)",
        }
    }

    /// The frontend's table, as both proxies spell it after `stick-table`.
    fn table(self) -> Option<&'static str> {
        match self {
            Shape::Plain => None,
            Shape::RateLimited => Some("type ip size 100k expire 30s store http_req_rate(10s)"),
            // A long expiry: no entry may leave before RSS is read.
            Shape::Keys => Some("type string len 32 size 2m expire 10m store http_req_rate(10s)"),
        }
    }

    /// The frontend's `http-request` rules, the same words for both.
    fn rules(self) -> Vec<String> {
        match self {
            Shape::Plain => Vec::new(),
            Shape::RateLimited => vec![
                "track-sc0 src".into(),
                format!("deny deny_status 429 if {{ sc_http_req_rate(0) gt {NEVER_REACHED} }}"),
            ],
            Shape::Keys => vec![
                "track-sc0 req.hdr(x-key)".into(),
                "return status 200 content-type text/plain string ok".into(),
            ],
        }
    }
}

/// The frontend's name, which is also its table's name.
const FRONTEND: &str = "fe";

fn params(o: &Options) -> HttpParams {
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
    HttpParams {
        cpu: o.proxy_cpu,
        listen: local(o.proxy_port),
        server: local(o.backend_port),
        ws_listen: local(o.proxy_port + 1),
        ws_server: local(o.backend_port + 1),
        maxconn: 5000,
        bufsize: 16384,
        timeouts: Timeouts::default(),
        http_request: Duration::from_secs(30),
        http_keep_alive: Duration::from_secs(30),
    }
}

fn percore_toml(p: &HttpParams, shape: Shape, socket: &Path) -> String {
    let mut out = format!("# Generated by `loadtest stick` ({}).\n", shape.tag());
    let api = format!(
        "stats-socket = {{ path = \"{}\", level = \"admin\" }}",
        socket.display()
    );
    write_percore_http_head_with(&mut out, p, &[api]);
    let _ = write!(
        out,
        "\n[[frontend]]\nname = \"{FRONTEND}\"\nbind = [\"{}\"]\n",
        p.listen
    );
    if let Some(table) = shape.table() {
        let _ = writeln!(out, "stick-table = \"{table}\"");
    }
    let rules = shape.rules();
    if !rules.is_empty() {
        let _ = writeln!(out, "http-request = [");
        for rule in rules {
            let _ = writeln!(out, "  \"{rule}\",");
        }
        let _ = writeln!(out, "]");
    }
    let _ = write!(
        out,
        "default_backend = \"app\"\n\n[[backend]]\nname = \"app\"\n\
         servers = [ {{ name = \"s1\", addr = \"{}\" }} ]\n",
        p.server
    );
    out
}

fn haproxy_cfg(p: &HttpParams, shape: Shape, socket: &Path) -> String {
    let mut out = format!("# Generated by `loadtest stick` ({}).\n", shape.tag());
    let api = format!("stats socket {} level admin", socket.display());
    write_haproxy_http_head(&mut out, p, &[&api]);
    let _ = write!(out, "\nfrontend {FRONTEND}\n    bind {}\n", p.listen);
    if let Some(table) = shape.table() {
        let _ = writeln!(out, "    stick-table {table}");
    }
    for rule in shape.rules() {
        let _ = writeln!(out, "    http-request {rule}");
    }
    let _ = write!(
        out,
        "    default_backend app\n\nbackend app\n    server s1 {}\n",
        p.server
    );
    out
}

/// One runtime API command, answered and closed (no `prompt`).
fn runtime_api(socket: &Path, command: &str) -> Result<String> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(format!("{command}\n").as_bytes())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .with_context(|| format!("reading the answer to {command:?}"))?;
    Ok(answer)
}

/// `used:<n>` of a `show table` header line.
fn table_used(answer: &str) -> Option<u64> {
    let header = answer.lines().find(|l| l.starts_with("# table:"))?;
    let rest = &header[header.find("used:")? + "used:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The largest `http_req_rate(<period>)=<n>` of the entries listed.
fn max_http_req_rate(answer: &str) -> Option<u64> {
    answer
        .lines()
        .filter(|l| l.starts_with("0x"))
        .filter_map(|l| {
            let word = l
                .split_whitespace()
                .find(|w| w.starts_with("http_req_rate("))?;
            word.rsplit('=').next()?.parse().ok()
        })
        .max()
}

struct Running {
    spawned: Spawned,
    socket: PathBuf,
}

fn spawn_proxy(o: &Options, proxy: Proxy, shape: Shape) -> Result<Running> {
    let tag = format!("stick-{}-{}", proxy.tag(), shape.tag());
    let log = o.log_dir.join(format!("{tag}.log"));
    let dir = std::fs::canonicalize(&o.config_dir)?;
    let socket = dir.join(format!("{tag}.sock"));
    let p = params(o);
    let cpus = proxy.cpus(o);
    let (program, args): (PathBuf, Vec<OsString>) = match proxy {
        Proxy::Percore | Proxy::PercoreTwoCores => {
            let cfg = dir.join(format!("{tag}.toml"));
            let text = percore_on_cpus(&percore_toml(&p, shape, &socket), &p, &cpus);
            std::fs::write(&cfg, text)?;
            (o.percore.clone(), vec!["-c".into(), cfg.into()])
        }
        Proxy::Haproxy => {
            let cfg = dir.join(format!("{tag}.cfg"));
            std::fs::write(&cfg, haproxy_cfg(&p, shape, &socket))?;
            (
                crate::bulk_tcp::resolve(&o.haproxy).context("haproxy not found")?,
                vec!["-db".into(), "-f".into(), cfg.into()],
            )
        }
    };
    let mut spawned = Spawned::spawn(SpawnSpec {
        name: &tag,
        cpus: &cpus,
        program: &program,
        args,
        log: Some(&log),
        capture_stdout: false,
    })
    .with_context(|| format!("starting {tag}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // A connect that sends nothing: neither proxy counts it as a request.
    while TcpStream::connect(p.listen).is_err() || !socket.exists() {
        spawned.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "{tag} did not listen on {} (log: {})",
                p.listen,
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Running { spawned, socket })
}

pub struct CpuRow {
    proxy: &'static str,
    shape: Shape,
    requests: u64,
    per_second: f64,
    cpu_us_per_request: f64,
    /// `used` and the client's rate after the run (tracked rows).
    table_after: Option<(u64, u64)>,
}

fn measure_cpu(o: &Options, proxy: Proxy, shape: Shape) -> Result<CpuRow> {
    let mut running = spawn_proxy(o, proxy, shape)?;
    let p = params(o);
    let plan = http_load::Plan {
        target: p.listen,
        connections: o.connections,
        request: http_load::get_request("/bytes/100", p.listen, false),
        reuse: true,
        rate: None,
        warmup: o.warmup,
        duration: o.duration,
        sources: Vec::new(),
        label: format!("stick {} {}", proxy.name(), shape.tag()),
    };
    let pid = running.spawned.pid();
    let mut marks: Vec<Result<cpustat::CpuTicks>> = Vec::new();
    // Called once as the window opens, once as it closes.
    let outcome = http_load::run(&plan, &mut |_: Mark| marks.push(cpustat::read_pid(pid)))?;
    let (Some(Ok(before)), Some(Ok(after))) = (marks.first(), marks.get(1)) else {
        bail!("{}: no CPU reading of the window", proxy.name());
    };
    let cpu = after.since(*before);
    let table_after = match shape {
        Shape::Plain => None,
        _ => {
            let answer = runtime_api(&running.socket, &format!("show table {FRONTEND}"))?;
            let used = table_used(&answer);
            let rate = max_http_req_rate(&answer);
            match (used, rate) {
                (Some(u), Some(r)) if u > 0 && r > 0 => Some((u, r)),
                _ => bail!(
                    "{}: the table counted nothing after the run:\n{answer}",
                    proxy.name()
                ),
            }
        }
    };
    running.spawned.check_running()?;
    let _ = running.spawned.stop();
    if outcome.requests == 0 || outcome.errors > 0 {
        bail!(
            "{} {}: {} requests, {} errors (first: {:?})",
            proxy.name(),
            shape.tag(),
            outcome.requests,
            outcome.errors,
            outcome.first_errors
        );
    }
    Ok(CpuRow {
        proxy: proxy.name(),
        shape,
        requests: outcome.requests,
        per_second: outcome.requests_per_second(),
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / outcome.requests as f64,
        table_after,
    })
}

pub struct MemoryRow {
    proxy: &'static str,
    entries: u64,
    rss_before_kib: u64,
    /// Right after the fill.
    rss_filled_kib: u64,
    /// `SETTLE` later: the figure bytes per entry are computed from.
    rss_after_kib: u64,
    fill_seconds: f64,
}

impl MemoryRow {
    fn bytes_per_entry(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) * 1024.0 / self.entries as f64
    }
}

/// The request carrying key number `n`: under the table's 32 bytes, so
/// no two keys collide once truncated.
fn key_request(n: u64) -> String {
    format!("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Key: key-{n:016}\r\n\r\n")
}

/// Sends keys `from..to` over `connections` pipelining keep-alive
/// connections; every answer must be a 200.
fn fill(target: SocketAddr, from: u64, to: u64, connections: usize) -> Result<()> {
    let connections = connections.max(1) as u64;
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            std::thread::spawn(move || -> Result<()> {
                let mut s = TcpStream::connect(target)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                let mine: Vec<u64> = (from..to).filter(|n| n % connections == c).collect();
                let mut buffer = Vec::with_capacity(64 * 1024);
                for batch in mine.chunks(PIPELINE as usize) {
                    let requests: String = batch.iter().map(|&n| key_request(n)).collect();
                    s.write_all(requests.as_bytes())?;
                    let mut answered = 0;
                    while answered < batch.len() {
                        match http_load::parse_response(&buffer)? {
                            Some(head)
                                if buffer.len() >= head.length + head.content_length as usize =>
                            {
                                if head.status != 200 {
                                    bail!("status {}", head.status);
                                }
                                buffer.drain(..head.length + head.content_length as usize);
                                answered += 1;
                            }
                            _ => {
                                let mut chunk = [0u8; 16384];
                                let n = s.read(&mut chunk)?;
                                if n == 0 {
                                    bail!("the proxy closed the connection");
                                }
                                buffer.extend_from_slice(&chunk[..n]);
                            }
                        }
                    }
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a fill thread panicked"))??;
    }
    Ok(())
}

fn table_entries(socket: &Path) -> Result<u64> {
    let answer = runtime_api(socket, "show table")?;
    table_used(&answer).with_context(|| format!("no used: in {answer:?}"))
}

fn measure_memory(o: &Options, proxy: Proxy) -> Result<MemoryRow> {
    let mut running = spawn_proxy(o, proxy, Shape::Keys)?;
    let p = params(o);
    let warm = WARM_KEYS.min(o.keys);
    fill(p.listen, 0, warm, o.fill_connections)?;
    let used_before = table_entries(&running.socket)?;
    let rss_before_kib = crate::suite::vm_rss(running.spawned.pid())?;
    let started = Instant::now();
    fill(p.listen, warm, o.keys, o.fill_connections)?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let rss_filled_kib = crate::suite::vm_rss(running.spawned.pid())?;
    std::thread::sleep(SETTLE);
    let rss_after_kib = crate::suite::vm_rss(running.spawned.pid())?;
    let used_after = table_entries(&running.socket)?;
    running.spawned.check_running()?;
    let _ = running.spawned.stop();
    if used_before != warm || used_after != o.keys {
        bail!(
            "{}: the table holds {used_before} then {used_after} entries, \
             expected {warm} then {}",
            proxy.name(),
            o.keys
        );
    }
    Ok(MemoryRow {
        proxy: proxy.name(),
        entries: used_after - used_before,
        rss_before_kib,
        rss_filled_kib,
        rss_after_kib,
        fill_seconds,
    })
}

fn available_proxies(o: &Options) -> Vec<Proxy> {
    let mut proxies = Vec::new();
    if o.percore.exists() {
        proxies.push(Proxy::Percore);
    } else {
        eprintln!("{} not found: percore rows skipped", o.percore.display());
    }
    if crate::bulk_tcp::resolve(&o.haproxy).is_some() {
        proxies.push(Proxy::Haproxy);
    } else {
        eprintln!("haproxy not found: HAProxy rows skipped");
    }
    proxies
}

pub fn run(o: &Options) -> Result<(Vec<CpuRow>, Vec<MemoryRow>)> {
    std::fs::create_dir_all(&o.config_dir)?;
    std::fs::create_dir_all(&o.log_dir)?;
    let p = params(o);
    let _backend = crate::suite::start_http_backend(o.load_cpu, p.server, p.ws_server)?;
    let proxies = available_proxies(o);
    let mut cpu_proxies = proxies.clone();
    if o.two_cores && proxies.contains(&Proxy::Percore) {
        cpu_proxies.push(Proxy::PercoreTwoCores);
    }
    let mut cpu_rows = Vec::new();
    for round in 0..o.rounds {
        let mut order = cpu_proxies.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for shape in [Shape::Plain, Shape::RateLimited] {
            for &proxy in &order {
                if procs::stopping() {
                    bail!("interrupted");
                }
                let row = measure_cpu(o, proxy, shape)?;
                eprintln!(
                    "round {}: {} {}: {:.0} req/s, {:.2} us CPU/request",
                    round + 1,
                    row.proxy,
                    shape.tag(),
                    row.per_second,
                    row.cpu_us_per_request
                );
                cpu_rows.push(row);
            }
        }
    }
    let mut memory_rows = Vec::new();
    for &proxy in &proxies {
        if procs::stopping() {
            bail!("interrupted");
        }
        let row = measure_memory(o, proxy)?;
        eprintln!(
            "{}: {} entries, RSS {} -> {} -> {} KiB, {:.0} bytes/entry ({:.1} s)",
            row.proxy,
            row.entries,
            row.rss_before_kib,
            row.rss_filled_kib,
            row.rss_after_kib,
            row.bytes_per_entry(),
            row.fill_seconds
        );
        memory_rows.push(row);
    }
    Ok((cpu_rows, memory_rows))
}

/// The rounds of one (proxy, frontend) pair.
struct Median {
    per_second: f64,
    cpu_us_per_request: f64,
    requests: u64,
    table_after: Option<(u64, u64)>,
}

fn median_of(rows: &[CpuRow], proxy: &str, shape: Shape) -> Option<Median> {
    let r: Vec<&CpuRow> = rows
        .iter()
        .filter(|r| r.proxy == proxy && r.shape == shape)
        .collect();
    Some(Median {
        per_second: crate::suite::median(r.iter().map(|r| r.per_second).collect())?,
        cpu_us_per_request: crate::suite::median(r.iter().map(|r| r.cpu_us_per_request).collect())?,
        requests: r.iter().map(|r| r.requests).sum(),
        table_after: r.last().and_then(|r| r.table_after),
    })
}

/// The CPU table (medians) with the ratios, then the memory table.
pub fn table(o: &Options, cpu_rows: &[CpuRow], memory_rows: &[MemoryRow]) -> String {
    let of = |proxy: &str, shape: Shape| median_of(cpu_rows, proxy, shape);
    let mut out = format!(
        "CPU per request: {} keep-alive connections, `GET /bytes/100`, proxy alone on CPU {}, \
         client and backend on CPU {}; {} s measured after {} s of warm-up; median of {} round(s)\n\n\
         | proxy | frontend | requests/s | proxy CPU per request | x plain | requests measured | `show table` after the last run |\n\
         |---|---|---|---|---|---|---|\n",
        o.connections,
        o.proxy_cpu,
        o.load_cpu,
        o.duration.as_secs_f64(),
        o.warmup.as_secs_f64(),
        o.rounds
    );
    for proxy in ["percore", "percore, 2 cores", "HAProxy"] {
        let plain = of(proxy, Shape::Plain);
        for shape in [Shape::Plain, Shape::RateLimited] {
            let Some(m) = of(proxy, shape) else {
                continue;
            };
            let (rate, cpu, n) = (m.per_second, m.cpu_us_per_request, m.requests);
            let ratio = plain.as_ref().map_or(String::from("-"), |p| {
                format!("x{:.2}", cpu / p.cpu_us_per_request)
            });
            let after = m.table_after.map_or(String::from("-"), |(used, rate)| {
                format!("used:{used}, http_req_rate {rate}")
            });
            let _ = writeln!(
                out,
                "| {proxy} | {} | {rate:.0} | {cpu:.2} µs | {ratio} | {n} | {after} |",
                shape.label()
            );
        }
    }
    for shape in [Shape::Plain, Shape::RateLimited] {
        if let (Some(p), Some(h)) = (of("percore", shape), of("HAProxy", shape)) {
            let _ = writeln!(
                out,
                "\npercore / HAProxy, {}: requests/s x{:.2}, CPU per request x{:.2}",
                shape.label(),
                p.per_second / h.per_second,
                p.cpu_us_per_request / h.cpu_us_per_request
            );
        }
    }
    if let (Some(pp), Some(pt), Some(hp), Some(ht)) = (
        of("percore", Shape::Plain),
        of("percore", Shape::RateLimited),
        of("HAProxy", Shape::Plain),
        of("HAProxy", Shape::RateLimited),
    ) {
        let _ = writeln!(
            out,
            "\nCPU added by tracking: percore {:.2} µs per request, HAProxy {:.2} µs",
            pt.cpu_us_per_request - pp.cpu_us_per_request,
            ht.cpu_us_per_request - hp.cpu_us_per_request
        );
    }
    let _ = write!(
        out,
        "\nMemory per entry: `stick-table {}`, `http-request track-sc0 req.hdr(x-key)`, \
         {} distinct keys over {} pipelining keep-alive connections; VmRSS after {} warm-up \
         keys, right after all of them and {} s later (bytes per entry from the last)\n\n\
         | proxy | entries added (`used:`) | RSS before | RSS filled | RSS after | bytes per entry | fill time |\n\
         |---|---|---|---|---|---|---|\n",
        Shape::Keys.table().unwrap_or_default(),
        o.keys,
        o.fill_connections,
        WARM_KEYS.min(o.keys),
        SETTLE.as_secs(),
    );
    for r in memory_rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} | {:.1} s |",
            r.proxy,
            r.entries,
            r.rss_before_kib as f64 / 1024.0,
            r.rss_filled_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            r.bytes_per_entry(),
            r.fill_seconds
        );
    }
    if let [p, h] = memory_rows {
        let _ = writeln!(
            out,
            "\npercore / HAProxy bytes per entry: x{:.2}",
            p.bytes_per_entry() / h.bytes_per_entry()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            percore: "p".into(),
            haproxy: "haproxy".into(),
            proxy_cpu: 1,
            load_cpu: 0,
            proxy_port: 24051,
            backend_port: 24053,
            connections: 16,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            rounds: 1,
            keys: 1000,
            fill_connections: 4,
            two_cores: false,
            config_dir: "c".into(),
            log_dir: "l".into(),
        }
    }

    const SOCKET: &str = "/tmp/stick.sock";

    #[test]
    fn both_proxies_get_the_same_table_and_rules() {
        let p = params(&options());
        for shape in [Shape::RateLimited, Shape::Keys] {
            let ours = percore_toml(&p, shape, Path::new(SOCKET));
            let theirs = haproxy_cfg(&p, shape, Path::new(SOCKET));
            let table = shape.table().unwrap();
            assert!(
                ours.contains(&format!("stick-table = \"{table}\"")),
                "{ours}"
            );
            assert!(
                theirs.contains(&format!("    stick-table {table}\n")),
                "{theirs}"
            );
            for rule in shape.rules() {
                assert!(ours.contains(&format!("  \"{rule}\",")), "{ours}");
                assert!(
                    theirs.contains(&format!("    http-request {rule}\n")),
                    "{theirs}"
                );
            }
            for text in [&ours, &theirs] {
                assert!(text.contains(SOCKET) && text.contains("admin"), "{text}");
                assert!(text.contains("127.0.0.1:24051"), "{text}");
                assert!(text.contains("127.0.0.1:24053"), "{text}");
            }
            toml::from_str::<toml::Value>(&ours).unwrap();
        }
        let plain = percore_toml(&p, Shape::Plain, Path::new(SOCKET));
        assert!(!plain.contains("stick-table") && !plain.contains("\nhttp-request = ["));
        toml::from_str::<toml::Value>(&plain).unwrap();
        assert!(!haproxy_cfg(&p, Shape::Plain, Path::new(SOCKET)).contains("stick-table"));
        let o = options();
        let two = percore_on_cpus(&plain, &p, &Proxy::PercoreTwoCores.cpus(&o));
        assert!(two.contains("\nthreads = [1, 0]\n"), "{two}");
        assert_eq!(Proxy::Percore.cpus(&o), vec![1]);
    }

    #[test]
    fn the_limit_is_never_reached_and_keys_fit_the_table() {
        assert!(Shape::RateLimited.rules()[1].contains(&NEVER_REACHED.to_string()));
        let request = key_request(u64::MAX);
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("X-Key: "))
            .unwrap();
        assert!(key.len() <= 32, "{key}");
        assert_ne!(key_request(1), key_request(2));
    }

    #[test]
    fn show_table_answers_are_read() {
        let percore = "# table: fe, type: ip, size:102400, used:1\n\
                       0x0.1: key=127.0.0.1 use=0 exp=29990 http_req_rate(10000)=123456\n\n";
        assert_eq!(table_used(percore), Some(1));
        assert_eq!(max_http_req_rate(percore), Some(123456));
        let haproxy = "# table: fe, type: ip, size:102400, used:2\n\
                       0x55d0c8a0: key=127.0.0.1 use=0 exp=29999 http_req_rate(10000)=7\n\
                       0x55d0c8b0: key=127.0.0.2 use=0 exp=29999 http_req_rate(10000)=70\n\n";
        assert_eq!(table_used(haproxy), Some(2));
        assert_eq!(max_http_req_rate(haproxy), Some(70));
        assert_eq!(table_used("No such table\n"), None);
        assert_eq!(
            max_http_req_rate("# table: fe, type: ip, size:1, used:0\n"),
            None
        );
    }

    /// `percore --check` on every generated config, one and two cores
    /// (needs `cargo build --release -p percore`; run from the workspace
    /// root or loadtest/).
    #[test]
    #[ignore]
    fn percore_accepts_the_generated_configs() {
        let binary = ["target/release/percore", "../target/release/percore"]
            .into_iter()
            .map(PathBuf::from)
            .find(|b| b.exists())
            .expect("cargo build --release -p percore first");
        let dir = std::env::temp_dir().join(format!("loadtest-stick-p-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = options();
        let p = params(&o);
        for proxy in [Proxy::Percore, Proxy::PercoreTwoCores] {
            for shape in [Shape::Plain, Shape::RateLimited, Shape::Keys] {
                let text = percore_toml(&p, shape, &dir.join("s.sock"));
                let path = dir.join(format!("{}-{}.toml", proxy.tag(), shape.tag()));
                std::fs::write(&path, percore_on_cpus(&text, &p, &proxy.cpus(&o))).unwrap();
                let out = std::process::Command::new(&binary)
                    .arg("--check")
                    .arg("-c")
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}{}",
                    path.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `haproxy -c` on every generated config (needs haproxy installed).
    #[test]
    #[ignore]
    fn haproxy_accepts_the_generated_configs() {
        let dir = std::env::temp_dir().join(format!("loadtest-stick-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = params(&options());
        for shape in [Shape::Plain, Shape::RateLimited, Shape::Keys] {
            let path = dir.join(format!("{}.cfg", shape.tag()));
            std::fs::write(&path, haproxy_cfg(&p, shape, &dir.join("s.sock"))).unwrap();
            let out = std::process::Command::new("haproxy")
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .expect("haproxy must be installed for this test");
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
