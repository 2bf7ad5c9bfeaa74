//! loadtest: percore's benchmark harness. Every scenario against percore,
//! HAProxy and no proxy, same cores, backend, client and run.
//!
//! `cargo run --release -p loadtest -- all --out docs/benchmarks.md`
//! (`--quick` for a run under two minutes; one subcommand per scenario).

mod backend;
mod bulk_tcp;
mod charts;
mod client;
mod compare;
mod config_memory;
mod configs;
mod cpustat;
mod crosscheck;
mod fdlimit;
mod h2_load;
mod hist;
mod http_backend;
mod http_load;
mod l4_edge;
mod pacing;
mod procs;
mod reload;
mod report;
mod soak;
mod soak_backend;
mod stick_load;
mod suite;
mod suite_report;
mod tls;
mod units;
mod wrk;
mod ws_load;

use anyhow::{Context, Result};
use bulk_tcp::Variant;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "loadtest", about = "Benchmarks for percore")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Every scenario: HTTP keep-alive, Connection: close, 64 KiB and
    /// 10 MiB responses, latency at 50%/80% of HAProxy's maximum, WebSocket
    /// echo, idle connections, bulk TCP, TLS termination; plus the wrk
    /// cross-check.
    All(Box<SuiteArgs>),
    /// HTTP keep-alive, small responses (closed loop), plus wrk cross-check.
    #[command(name = "http-keepalive")]
    HttpKeepalive(Box<SuiteArgs>),
    /// HTTP `Connection: close`: new connections per second.
    #[command(name = "http-close")]
    HttpClose(Box<SuiteArgs>),
    /// HTTP keep-alive, 64 KiB responses.
    #[command(name = "http-64k")]
    Http64k(Box<SuiteArgs>),
    /// HTTP keep-alive, 10 MiB responses.
    #[command(name = "http-10m")]
    Http10m(Box<SuiteArgs>),
    /// Latency percentiles at 50% and 80% of HAProxy's keep-alive maximum
    /// (open loop, corrected for coordinated omission).
    Latency(Box<SuiteArgs>),
    /// WebSocket echo round trips at a fixed rate.
    Websocket(Box<SuiteArgs>),
    /// Idle connections: proxy RSS per connection.
    Idle(Box<SuiteArgs>),
    /// TLS termination: full and resumed handshakes/s, HTTPS keep-alive;
    /// ECDSA P-256 and RSA-2048; percore vs HAProxy.
    Tls(Box<SuiteArgs>),
    /// The HTTP and WebSocket backend (started by the suite itself).
    ServeHttp {
        #[arg(long, default_value = "127.0.0.1:24013")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:24014")]
        ws_listen: SocketAddr,
    },
    /// Bulk TCP throughput and proxy CPU seconds per GiB: percore splice,
    /// percore copy, HAProxy (splice-auto and nosplice), direct.
    BulkTcp(Box<BulkTcpArgs>),
    /// Reload in place: time to apply a reload of 1,000 backends x 10
    /// servers, and request latency during one reload per second of a
    /// small and of that large configuration (under a minute; not part of
    /// `all`).
    Reload(Box<ReloadArgs>),
    /// L4 edge: proxy CPU per connection with a PROXY v2 header, SNI
    /// inspection and use_backend (TLS passthrough), percore vs HAProxy,
    /// and plain TCP connections for comparison (not part of `all`).
    #[command(name = "l4-edge")]
    L4Edge(Box<L4EdgeArgs>),
    /// HTTP/2 over TLS (ALPN h2): h2load with several streams per
    /// connection, small responses, HTTP/1.1 backend; requests/s and proxy
    /// CPU per request, percore vs HAProxy (not part of `all`).
    H2(Box<H2Args>),
    /// Stick tables: proxy CPU per request with `track-sc0 src` and an
    /// `http_req_rate` deny rule vs the same frontend without a table, and
    /// RSS per entry of a table filled with a million string keys,
    /// percore vs HAProxy (not part of `all`).
    Stick(Box<StickArgs>),
    /// An HAProxy user's file: `percore convert` it, run HAProxy on the
    /// original and percore on the conversion side by side (same CPUs,
    /// stand-in backends in place of its servers, same client, alternating
    /// rounds) and print requests per second per frontend, per core, with
    /// the converter's report (not part of `all`).
    Compare(Box<CompareArgs>),
    /// Soak with faults: mixed traffic (HTTP keep-alive and close,
    /// uploads and downloads checked byte for byte, WebSocket, TLS, TCP
    /// tunnel) while backends are SIGKILLed and restarted, a server stalls
    /// then resets, slowloris and silent clients connect and the
    /// configuration is reloaded; fails on a crash, a hang, a corrupted
    /// byte, an undocumented outcome or descriptors/memory not returning
    /// to their start (not part of `all`).
    Soak(Box<SoakArgs>),
    /// The soak's backend (started, killed and restarted by `soak`).
    #[command(name = "soak-backend", hide = true)]
    SoakBackend {
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        ws: SocketAddr,
        #[arg(long)]
        tcp: SocketAddr,
    },
    /// The backend: a TCP sink/source server (started by bulk-tcp itself).
    Serve {
        #[arg(long, default_value = "127.0.0.1:24002")]
        listen: SocketAddr,
    },
}

#[derive(Args)]
struct BulkTcpArgs {
    /// Bytes per run, split over the streams (e.g. 4GiB, 512MiB).
    #[arg(long, default_value = "4GiB", value_parser = units::parse_bytes)]
    bytes: u64,
    /// Parallel TCP connections per run.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Rounds; every variant runs once per round, in alternation.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Comma-separated subset of: percore-splice, percore-copy, haproxy,
    /// haproxy-nosplice, direct.
    #[arg(long, value_delimiter = ',', value_parser = Variant::parse,
          default_value = "percore-splice,percore-copy,haproxy,haproxy-nosplice,direct")]
    variants: Vec<Variant>,
    /// The percore binary (rows are skipped if it does not exist).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH; rows skipped if missing).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPU the proxy runs on, alone.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU the client and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    /// Port the proxy listens on (127.0.0.1).
    #[arg(long, default_value_t = 24001)]
    proxy_port: u16,
    /// Port the backend listens on (127.0.0.1).
    #[arg(long, default_value_t = 24002)]
    backend_port: u16,
    /// Wall-clock cap per run; a run that hits it is reported as failed.
    #[arg(long, default_value = "60s", value_parser = units::parse_duration)]
    time_limit: Duration,
    /// tune.bufsize for both proxies.
    #[arg(long, default_value_t = 16384)]
    bufsize: usize,
    /// tune.pipesize for both proxies.
    #[arg(long, default_value_t = 65536)]
    pipesize: usize,
    /// maxconn for both proxies. Not 50000: HAProxy reserves about 2.5 fds
    /// per maxconn (sockets and pipes) and refuses to start when the
    /// RLIMIT_NOFILE hard limit (20000 on this machine) is lower.
    #[arg(long, default_value_t = 5000)]
    maxconn: u32,
    /// Markdown file to write the results section into (created if absent;
    /// text outside the generated section is kept). Stdout if omitted.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the generated proxy configs go [default: next to --out, in
    /// <out without .md>/bulk-tcp, else target/loadtest/bulk-tcp].
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Before each proxy start, wait at most this long for both CPUs to be
    /// quiet (the machine may be shared); 0 disables the check.
    #[arg(long, default_value = "60s", value_parser = parse_wait)]
    quiet_wait: Duration,
    /// Busy percentage under which a CPU counts as quiet.
    #[arg(long, default_value_t = 10.0)]
    quiet_below: f64,
    /// Proxy logs (stdout/stderr of each run).
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct L4EdgeArgs {
    /// The percore binary (rows are skipped if it does not exist).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH; rows skipped if missing).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPU the proxy runs on, alone.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU the client threads and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    #[arg(long, default_value_t = 24031)]
    proxy_port: u16,
    #[arg(long, default_value_t = 24032)]
    backend_port: u16,
    /// Client threads, each one connection at a time.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Measured window per run (after one second of warm-up).
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Rounds; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the generated proxy configs go.
    #[arg(long, default_value = "target/loadtest/l4-edge")]
    config_dir: PathBuf,
    /// Proxy logs.
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct H2Args {
    /// The percore binary (rows are skipped if it does not exist).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH; rows skipped if missing).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPU the proxy runs on, alone.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU h2load and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    #[arg(long, default_value_t = 24041)]
    proxy_port: u16,
    /// The backend's port (and the next one, its WebSocket listener).
    #[arg(long, default_value_t = 24043)]
    backend_port: u16,
    /// h2load client connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Concurrent streams per connection.
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Requests per run.
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Response body bytes.
    #[arg(long, default_value_t = 100)]
    body: u64,
    /// gRPC unary calls per run (needs python3 with grpcio); 0 skips them.
    #[arg(long, default_value_t = 20_000)]
    grpc_calls: u64,
    /// Rounds; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the generated proxy configs and the certificate go.
    #[arg(long, default_value = "target/loadtest/h2")]
    config_dir: PathBuf,
    /// Proxy logs.
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct StickArgs {
    /// The percore binary (rows are skipped if it does not exist).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH; rows skipped if missing).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPU the proxy runs on, alone.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU the client and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    #[arg(long, default_value_t = 24051)]
    proxy_port: u16,
    /// The backend's port (and the next one, its WebSocket listener).
    #[arg(long, default_value_t = 24053)]
    backend_port: u16,
    /// Keep-alive connections of the CPU runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    warmup: Duration,
    /// Measured window of each CPU run.
    #[arg(long, default_value = "5s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Rounds of the CPU runs; the table shows the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Distinct keys of the memory run (the table holds 2m).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Pipelining connections filling the table.
    #[arg(long, default_value_t = 8)]
    fill_connections: usize,
    /// Also run the CPU rows with percore on both CPUs (`threads = [proxy,
    /// load]`, sharing the load's CPU): the cross-core cost of a key with
    /// one owner core.
    #[arg(long)]
    two_cores: bool,
    /// Where the generated configs and runtime API sockets go.
    #[arg(long, default_value = "target/loadtest/stick")]
    config_dir: PathBuf,
    /// Proxy logs.
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct SoakArgs {
    /// How long the load and the faults run (e.g. 2m, 1h).
    #[arg(long, default_value = "2m", value_parser = units::parse_duration)]
    duration: Duration,
    /// The percore binary.
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// Client threads, each running the operations in turn.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// First of the ports used on 127.0.0.1 (the proxy takes 3, each
    /// backend 3 from base+10).
    #[arg(long, default_value_t = 24100)]
    base_port: u16,
    /// Time between two backend kills.
    #[arg(long, default_value = "4s", value_parser = units::parse_duration)]
    fault_every: Duration,
    /// Time between two reloads.
    #[arg(long, default_value = "3s", value_parser = units::parse_duration)]
    reload_every: Duration,
    /// CPUs percore runs on (`threads`).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    cpus: Vec<usize>,
    /// Markdown file to write the "Soak with faults" section into.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Certificate, configuration.
    #[arg(long, default_value = "target/loadtest/soak")]
    work_dir: PathBuf,
    /// Proxy and backend logs.
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct ReloadArgs {
    /// The percore binary.
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary for the memory comparison (looked up in PATH;
    /// its rows are skipped if missing).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPU percore runs on, alone (`threads = [N]`).
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU the client, the reload client and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    /// percore's HTTP port on 127.0.0.1 (not the suite's, so the two can
    /// run one after the other without waiting for TIME_WAIT).
    #[arg(long, default_value_t = 24021)]
    proxy_port: u16,
    /// Backend HTTP port on 127.0.0.1; its WebSocket listener takes the
    /// next one.
    #[arg(long, default_value_t = 24023)]
    backend_port: u16,
    /// Backends in the large configuration.
    #[arg(long, default_value_t = 1000)]
    backends: usize,
    /// Servers per backend in the large configuration.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// `use_backend` rules in the large configuration.
    #[arg(long, default_value_t = 100)]
    routes: usize,
    /// Reloads of the large configuration.
    #[arg(long, default_value_t = 10)]
    reloads: usize,
    /// Requests per second of the latency runs (open loop). About a third
    /// of the latency scenario's lower rate (50% of HAProxy's maximum,
    /// 30,802/s in the last suite run), so the proxy's core keeps room for
    /// the reloads and a shared machine's noise.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Keep-alive connections of the latency runs (the latency scenario's).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[arg(long, default_value = "100", value_parser = units::parse_bytes)]
    small_body: u64,
    /// Measured window of each latency run.
    #[arg(long, default_value = "10s", value_parser = units::parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    warmup: Duration,
    /// Time between two reloads of the storm.
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    storm_interval: Duration,
    /// Markdown file to write the "Reload in place" section into (text
    /// outside the section is kept); stdout if omitted.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the generated configs and reload.json go. Not next to --out:
    /// the large configs are over half a MiB each and the command
    /// regenerates them exactly.
    #[arg(long, default_value = "target/loadtest/reload")]
    results_dir: PathBuf,
    /// Before each proxy start, wait at most this long for both CPUs to be
    /// quiet; 0 disables.
    #[arg(long, default_value = "3s", value_parser = parse_wait)]
    quiet_wait: Duration,
    #[arg(long, default_value_t = 10.0)]
    quiet_below: f64,
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// The haproxy.cfg to convert and compare.
    #[arg(long)]
    haproxy_cfg: PathBuf,
    /// The percore binary (it also converts).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// CPUs both proxies run on (`taskset`; the file's nbthread becomes
    /// their count).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    proxy_cpus: Vec<usize>,
    /// CPU the client and the stand-in backends share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    /// Rounds; each runs HAProxy then percore (percore first on even rounds).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured window per run.
    #[arg(long, default_value = "5s", value_parser = units::parse_duration)]
    duration: Duration,
    /// Unmeasured time before each window.
    #[arg(long, default_value = "1s", value_parser = units::parse_duration)]
    warmup: Duration,
    /// Keep-alive client connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Path requested (the stand-ins answer /bytes/<n> with n bytes).
    #[arg(long, default_value = "/bytes/64")]
    path: String,
    /// Host header [default: each bind's address as written].
    #[arg(long)]
    host: Option<String>,
    /// Where the rewritten files and logs go
    /// [default: target/loadtest/compare/<file name>].
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct SuiteArgs {
    /// Short runs (one round, 2 s windows, fewer idle connections, smaller
    /// bulk transfers): everything in under two minutes.
    #[arg(long)]
    quick: bool,
    /// The percore binary (its rows are skipped if it does not exist).
    #[arg(long, default_value = "target/release/percore")]
    percore: PathBuf,
    /// The haproxy binary (looked up in PATH).
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// The wrk binary for the cross-check (looked up in PATH; skipped with
    /// a note if missing).
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// CPU the proxy runs on, alone.
    #[arg(long, default_value_t = 1)]
    proxy_cpu: usize,
    /// CPU the client and the backend share.
    #[arg(long, default_value_t = 0)]
    load_cpu: usize,
    /// Proxy HTTP port on 127.0.0.1; the WebSocket frontend is the next one.
    #[arg(long, default_value_t = 24011)]
    proxy_port: u16,
    /// Backend HTTP port on 127.0.0.1; the WebSocket echo is the next one.
    #[arg(long, default_value_t = 24013)]
    backend_port: u16,
    /// Measured window per run [default: 5s, --quick 2s].
    #[arg(long, value_parser = units::parse_duration)]
    duration: Option<Duration>,
    /// Warm-up before each window [default: 1s, --quick 500ms].
    #[arg(long, value_parser = units::parse_duration)]
    warmup: Option<Duration>,
    /// Rounds per scenario, targets alternating [default: 2, --quick 1].
    #[arg(long)]
    rounds: Option<usize>,
    /// Connections for keep-alive small responses and the latency runs.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Concurrent connections for the `Connection: close` scenario.
    #[arg(long, default_value_t = 32)]
    close_connections: usize,
    #[arg(long, default_value_t = 32)]
    connections_64k: usize,
    #[arg(long, default_value_t = 8)]
    connections_10m: usize,
    /// Body size of the small responses.
    #[arg(long, default_value = "100", value_parser = units::parse_bytes)]
    small_body: u64,
    /// Idle connections [default: 10000, --quick 2000]; fewer (and said so)
    /// when RLIMIT_NOFILE cannot be raised far enough.
    #[arg(long)]
    idle_connections: Option<usize>,
    /// WebSocket messages per second over all connections.
    #[arg(long, default_value_t = 2000.0)]
    ws_rate: f64,
    #[arg(long, default_value_t = 16)]
    ws_connections: usize,
    #[arg(long, default_value_t = 64)]
    ws_message: usize,
    /// maxconn for both proxies [default: 16 above the idle count, at
    /// least 10016]. Each reserves two descriptors per maxconn; loadtest
    /// raises RLIMIT_NOFILE (hard and soft, inherited by the proxies) to
    /// fit, or lowers maxconn to what the hard limit allows when it may not.
    #[arg(long)]
    maxconn: Option<u32>,
    #[arg(long, default_value_t = 16384)]
    bufsize: usize,
    /// Client source addresses 127.0.0.2 .. 127.0.0.(1+N), used in turn.
    #[arg(long, default_value_t = 8)]
    sources: u8,
    /// Bytes per bulk-TCP run [default: 1GiB, --quick 256MiB].
    #[arg(long, value_parser = units::parse_bytes)]
    bulk_bytes: Option<u64>,
    /// Markdown file to write the results section into; stdout if omitted.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where configs, results.json and charts go [default: next to --out,
    /// in <out without .md>/, else target/loadtest/].
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// README to put the headline table in (replacing the
    /// BENCH_TABLE_PLACEHOLDER line or the previous table).
    #[arg(long)]
    readme: Option<PathBuf>,
    /// Before each proxy start, wait at most this long for both CPUs to be
    /// quiet; 0 disables [default: 3s, --quick 0].
    #[arg(long, value_parser = parse_wait)]
    quiet_wait: Option<Duration>,
    #[arg(long, default_value_t = 10.0)]
    quiet_below: f64,
    #[arg(long, default_value = "target/loadtest/logs")]
    log_dir: PathBuf,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("loadtest: error: {e:#}");
        // 130 like a shell for an interrupted run, so scripts can tell.
        std::process::exit(if procs::stopping() { 130 } else { 1 });
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Commands::Soak(args) => soak_main(*args),
        Commands::SoakBackend { http, ws, tcp } => {
            let bind = |a: SocketAddr| TcpListener::bind(a).with_context(|| format!("binding {a}"));
            let (http, ws, tcp) = (bind(http)?, bind(ws)?, bind(tcp)?);
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening {}", http.local_addr()?)?;
            stdout.flush()?;
            soak_backend::serve(http, ws, tcp)
        }
        Commands::Serve { listen } => {
            let listener =
                TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening {}", listener.local_addr()?)?;
            stdout.flush()?;
            backend::serve(listener)
        }
        Commands::ServeHttp { listen, ws_listen } => {
            let listener =
                TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
            let ws =
                TcpListener::bind(ws_listen).with_context(|| format!("binding {ws_listen}"))?;
            let mut stdout = std::io::stdout();
            writeln!(
                stdout,
                "listening {} {}",
                listener.local_addr()?,
                ws.local_addr()?
            )?;
            stdout.flush()?;
            std::thread::Builder::new()
                .name("ws-accept".into())
                .spawn(move || http_backend::serve_websocket(ws))?;
            http_backend::serve(listener)
        }
        Commands::Compare(args) => {
            procs::install_signal_handler()?;
            compare::run(&compare::Options {
                work_dir: args
                    .work_dir
                    .clone()
                    .unwrap_or_else(|| compare::default_work_dir(&args.haproxy_cfg)),
                haproxy_cfg: args.haproxy_cfg,
                percore: args.percore,
                haproxy: args.haproxy,
                proxy_cpus: args.proxy_cpus,
                load_cpu: args.load_cpu,
                rounds: args.rounds.max(1),
                warmup: args.warmup,
                duration: args.duration,
                connections: args.connections.max(1),
                path: args.path,
                host: args.host,
            })
        }
        Commands::BulkTcp(args) => bulk_tcp_main(*args),
        Commands::Reload(args) => reload_main(*args),
        Commands::L4Edge(args) => l4_edge_main(*args),
        Commands::H2(args) => h2_main(*args),
        Commands::Stick(args) => stick_main(*args),
        Commands::All(args) => suite_main(*args, &suite::Scenario::ALL),
        Commands::HttpKeepalive(args) => suite_main(*args, &[suite::Scenario::HttpKeepalive]),
        Commands::HttpClose(args) => suite_main(*args, &[suite::Scenario::HttpClose]),
        Commands::Http64k(args) => suite_main(*args, &[suite::Scenario::Http64k]),
        Commands::Http10m(args) => suite_main(*args, &[suite::Scenario::Http10m]),
        Commands::Latency(args) => suite_main(*args, &[suite::Scenario::Latency]),
        Commands::Websocket(args) => suite_main(*args, &[suite::Scenario::Websocket]),
        Commands::Idle(args) => suite_main(*args, &[suite::Scenario::Idle]),
        Commands::Tls(args) => suite_main(*args, &[suite::Scenario::Tls]),
    }
}

fn results_dir(args: &SuiteArgs) -> PathBuf {
    args.results_dir.clone().unwrap_or_else(|| match &args.out {
        Some(out) => out.with_extension(""),
        None => PathBuf::from("target/loadtest"),
    })
}

fn pick<T>(quick: bool, full: T, fast: T) -> T {
    if quick {
        fast
    } else {
        full
    }
}

fn suite_options(args: &SuiteArgs, scenarios: &[suite::Scenario]) -> suite::Options {
    let quick = args.quick;
    let results = results_dir(args);
    let localhost = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let idle_connections = args.idle_connections.unwrap_or(pick(quick, 10_000, 2000));
    let quiet_wait = args
        .quiet_wait
        .unwrap_or(pick(quick, Duration::from_secs(3), Duration::ZERO));
    let quiet_below = (args.quiet_below / 100.0).clamp(0.0, 1.0);
    let bulk = bulk_tcp::Options {
        bytes: args
            .bulk_bytes
            .unwrap_or(pick(quick, units::GIB, 256 * units::MIB)),
        streams: 4,
        rounds: 1,
        variants: if quick {
            vec![Variant::PercoreSplice, Variant::Haproxy, Variant::Direct]
        } else {
            Variant::ALL.to_vec()
        },
        percore: args.percore.clone(),
        haproxy: args.haproxy.clone(),
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_addr: localhost(24001),
        backend_addr: localhost(24002),
        time_limit: Duration::from_secs(60),
        bufsize: args.bufsize,
        pipesize: 65536,
        maxconn: 5000,
        config_dir: results.join("bulk-tcp"),
        log_dir: args.log_dir.clone(),
        quiet_wait,
        quiet_below,
    };
    suite::Options {
        quick,
        scenarios: scenarios.to_vec(),
        percore: args.percore.clone(),
        haproxy: args.haproxy.clone(),
        wrk: bulk_tcp::resolve(&args.wrk),
        wrk_rounds: pick(quick, 8, 3),
        wrk_window: pick(quick, Duration::from_secs(2), Duration::from_secs(1)),
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_addr: localhost(args.proxy_port),
        ws_proxy_addr: localhost(args.proxy_port.wrapping_add(1)),
        backend_addr: localhost(args.backend_port),
        ws_backend_addr: localhost(args.backend_port.wrapping_add(1)),
        warmup: args.warmup.unwrap_or(pick(
            quick,
            Duration::from_secs(1),
            Duration::from_millis(500),
        )),
        duration: args.duration.unwrap_or(pick(
            quick,
            Duration::from_secs(5),
            Duration::from_secs(2),
        )),
        rounds: args.rounds.unwrap_or(pick(quick, 2, 1)).max(1),
        connections: args.connections.max(1),
        close_connections: args.close_connections.max(1),
        connections_64k: args.connections_64k.max(1),
        connections_10m: args.connections_10m.max(1),
        small_body: args.small_body,
        idle_connections,
        ws_rate: args.ws_rate,
        ws_connections: args.ws_connections.max(1),
        ws_message: args.ws_message.max(8),
        latency_fractions: vec![0.5, 0.8],
        // The same in quick and full runs, so both measure one config.
        maxconn: args.maxconn.unwrap_or_else(|| {
            u32::try_from(idle_connections.max(10_000))
                .unwrap_or(u32::MAX)
                .saturating_add(fdlimit::IDLE_HEADROOM)
        }),
        fd_limit_note: None,
        bufsize: args.bufsize,
        sources: (0..args.sources.max(1))
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
            .collect(),
        config_dir: results,
        log_dir: args.log_dir.clone(),
        quiet_wait,
        quiet_below,
        bulk,
    }
}

fn suite_main(args: SuiteArgs, scenarios: &[suite::Scenario]) -> Result<()> {
    let mut options = suite_options(&args, scenarios);
    procs::install_signal_handler()?;
    fit_fd_limit(&mut options)?;
    // Before any client thread exists, so they all inherit the mask.
    procs::pin_current_thread(options.load_cpu)?;
    let environment = report::Environment::detect_for(&options.percore, &options.haproxy);
    let outcome = suite::run(&options)?;
    if procs::stopping() {
        anyhow::bail!("interrupted; no report written");
    }
    let results = options.config_dir.clone();
    let json = results.join("results.json");
    suite_report::write_json(&json, &outcome)?;
    eprintln!("loadtest: raw results in {}", json.display());
    let charts = match &args.out {
        Some(out) => {
            suite_report::write_charts(&results, &options, &outcome)?;
            // Relative to the Markdown file, so the images show on GitHub.
            let base = out.parent().unwrap_or(std::path::Path::new(""));
            Some(
                results
                    .strip_prefix(base)
                    .unwrap_or(&results)
                    .display()
                    .to_string(),
            )
        }
        None => None,
    };
    let rendered = suite_report::render(
        &options,
        &environment,
        &outcome,
        &invocation(),
        charts.as_deref(),
    );
    match &args.out {
        Some(path) => {
            let existing = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".into(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            };
            std::fs::write(
                path,
                suite_report::splice_section(&existing, &rendered.section),
            )
            .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("loadtest: results written to {}", path.display());
        }
        None => print!("{}", rendered.section),
    }
    if let Some(readme) = &args.readme {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("reading {}", readme.display()))?;
        match suite_report::splice_readme(&text, &rendered.readme) {
            Some(updated) => std::fs::write(readme, updated)
                .with_context(|| format!("writing {}", readme.display()))?,
            None => eprintln!(
                "loadtest: {} has neither {} nor a previous table; not changed",
                readme.display(),
                suite_report::README_PLACEHOLDER
            ),
        }
    }
    Ok(())
}

/// Raises RLIMIT_NOFILE (inherited by the proxies and the backend) so both
/// proxies start with `maxconn` and the idle scenario holds its count, or
/// runs the proxies with strict-limits off when it may not, saying so.
fn fit_fd_limit(options: &mut suite::Options) -> Result<()> {
    let budget = fdlimit::raise(fdlimit::proxy_fds(options.maxconn))?;
    let idle = options.idle_connections;
    let plan = fdlimit::plan(
        budget.hard,
        options.maxconn,
        idle,
        budget.refused.as_deref(),
    );
    options.maxconn = plan.maxconn;
    options.idle_connections = plan.idle_connections;
    let mut note = match budget.raised_from {
        Some(from) => format!("RLIMIT_NOFILE raised from {from} to {}", budget.hard),
        None => format!("RLIMIT_NOFILE {} (hard)", budget.hard),
    };
    eprintln!("loadtest: {note}; maxconn {}", plan.maxconn);
    if let Some(why) = &plan.shortfall {
        if options.scenarios.contains(&suite::Scenario::Idle) {
            eprintln!("loadtest: idle: {why}");
        }
        note = why.clone();
    }
    options.fd_limit_note = Some(note);
    Ok(())
}

fn l4_edge_main(args: L4EdgeArgs) -> Result<()> {
    let options = l4_edge::Options {
        percore: args.percore,
        haproxy: args.haproxy,
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_port: args.proxy_port,
        backend_port: args.backend_port,
        clients: args.clients.max(1),
        duration: args.duration,
        rounds: args.rounds.max(1),
        config_dir: args.config_dir,
        log_dir: args.log_dir,
    };
    procs::install_signal_handler()?;
    // Before the client and backend threads exist, so they inherit it.
    procs::pin_current_thread(options.load_cpu)?;
    let rows = l4_edge::run(&options)?;
    print!("{}", l4_edge::table(&rows));
    Ok(())
}

fn h2_main(args: H2Args) -> Result<()> {
    let options = h2_load::Options {
        percore: args.percore,
        haproxy: args.haproxy,
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_port: args.proxy_port,
        backend_port: args.backend_port,
        connections: args.connections.max(1),
        streams: args.streams.max(1),
        requests: args.requests.max(1),
        body: args.body,
        grpc_calls: args.grpc_calls,
        rounds: args.rounds.max(1),
        config_dir: args.config_dir,
        log_dir: args.log_dir,
    };
    procs::install_signal_handler()?;
    let rows = h2_load::run(&options)?;
    print!("{}", h2_load::table(&options, &rows));
    Ok(())
}

fn stick_main(args: StickArgs) -> Result<()> {
    let options = stick_load::Options {
        percore: args.percore,
        haproxy: args.haproxy,
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_port: args.proxy_port,
        backend_port: args.backend_port,
        connections: args.connections.max(1),
        warmup: args.warmup,
        duration: args.duration,
        rounds: args.rounds.max(1),
        keys: args.keys.clamp(1, 2_000_000),
        fill_connections: args.fill_connections.max(1),
        two_cores: args.two_cores,
        config_dir: args.config_dir,
        log_dir: args.log_dir,
    };
    procs::install_signal_handler()?;
    // Before the client threads exist, so they inherit it.
    procs::pin_current_thread(options.load_cpu)?;
    let (cpu, memory) = stick_load::run(&options)?;
    println!(
        "Load average (1, 5, 15 min) at the end of the run: {}\n",
        suite::loadavg()
    );
    print!("{}", stick_load::table(&options, &cpu, &memory));
    Ok(())
}

fn bulk_tcp_main(args: BulkTcpArgs) -> Result<()> {
    let config_dir = args.config_dir.clone().unwrap_or_else(|| match &args.out {
        Some(out) => out.with_extension("").join("bulk-tcp"),
        None => PathBuf::from("target/loadtest/bulk-tcp"),
    });
    let options = bulk_tcp::Options {
        bytes: args.bytes,
        streams: args.streams.max(1),
        rounds: args.rounds.max(1),
        variants: args.variants,
        percore: args.percore,
        haproxy: args.haproxy,
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_addr: (Ipv4Addr::LOCALHOST, args.proxy_port).into(),
        backend_addr: (Ipv4Addr::LOCALHOST, args.backend_port).into(),
        time_limit: args.time_limit,
        bufsize: args.bufsize,
        pipesize: args.pipesize,
        maxconn: args.maxconn,
        config_dir,
        log_dir: args.log_dir,
        quiet_wait: args.quiet_wait,
        quiet_below: (args.quiet_below / 100.0).clamp(0.0, 1.0),
    };
    procs::install_signal_handler()?;
    // Before any stream thread exists, so they all inherit the mask.
    procs::pin_current_thread(options.load_cpu)?;

    let environment = report::Environment::detect(&options);
    let outcome = bulk_tcp::run(&options)?;
    if procs::stopping() {
        anyhow::bail!("interrupted; no report written");
    }
    let section = report::render(&options, &environment, &outcome, &invocation());
    match &args.out {
        Some(path) => {
            report::write_into(path, &section)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("loadtest: results written to {}", path.display());
        }
        None => print!("{section}"),
    }
    Ok(())
}

fn soak_main(args: SoakArgs) -> Result<()> {
    procs::install_signal_handler()?;
    let absolute = |p: PathBuf| std::env::current_dir().map(|d| d.join(p));
    let options = soak::Options {
        percore: args.percore,
        duration: args.duration,
        clients: args.clients.max(1),
        base_port: args.base_port,
        fault_every: args.fault_every,
        reload_every: args.reload_every,
        cpus: args.cpus,
        work_dir: absolute(args.work_dir)?,
        log_dir: absolute(args.log_dir)?,
    };
    let outcome = soak::run(&options)?;
    match &args.out {
        Some(path) if outcome.failures.is_empty() => {
            report::write_between(path, soak::BEGIN, soak::END, &outcome.markdown)?;
            println!("{}", outcome.markdown);
            println!("loadtest: wrote {}", path.display());
        }
        _ => println!("{}", outcome.markdown),
    }
    if !outcome.failures.is_empty() {
        anyhow::bail!(
            "soak failed: {} problem(s), listed above",
            outcome.failures.len()
        );
    }
    Ok(())
}

fn reload_main(args: ReloadArgs) -> Result<()> {
    let localhost = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let options = reload::Options {
        percore: args.percore,
        haproxy: args.haproxy,
        proxy_cpu: args.proxy_cpu,
        load_cpu: args.load_cpu,
        proxy_addr: localhost(args.proxy_port),
        backend_addr: localhost(args.backend_port),
        ws_backend_addr: localhost(args.backend_port.wrapping_add(1)),
        shape: configs::ReloadShape {
            backends: args.backends.max(1),
            servers: args.servers.max(1),
            routes: args.routes,
        },
        reloads: args.reloads.max(1),
        rate: args.rate.max(1.0),
        connections: args.connections.max(1),
        small_body: args.small_body,
        warmup: args.warmup,
        duration: args.duration,
        storm_interval: args.storm_interval,
        // The suite's client addresses.
        sources: (0..8).map(|i| Ipv4Addr::new(127, 0, 0, 2 + i)).collect(),
        results_dir: args.results_dir,
        log_dir: args.log_dir,
        // In the temporary directory, not the results directory: a unix
        // socket path must fit in 108 bytes; the pid keeps two runs apart.
        socket: std::env::temp_dir().join(format!("loadtest-reload-{}.sock", std::process::id())),
        quiet_wait: args.quiet_wait,
        quiet_below: (args.quiet_below / 100.0).clamp(0.0, 1.0),
    };
    procs::install_signal_handler()?;
    // Before any thread exists, so the reload thread inherits the mask.
    procs::pin_current_thread(options.load_cpu)?;
    let environment = report::Environment::detect_for(&options.percore, &options.haproxy);
    let outcome = reload::run(&options)?;
    if procs::stopping() {
        anyhow::bail!("interrupted; no report written");
    }
    let json = options.results_dir.join("reload.json");
    let text = serde_json::to_string_pretty(&outcome).context("serialising results")?;
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    eprintln!("loadtest: raw results in {}", json.display());
    let section = reload::render(&options, &environment, &outcome, &invocation());
    match &args.out {
        Some(path) => {
            report::write_between(path, reload::BEGIN, reload::END, &section)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("loadtest: results written to {}", path.display());
        }
        None => print!("{section}"),
    }
    if !outcome.failures.is_empty() {
        anyhow::bail!(
            "{} failure(s), listed in the report",
            outcome.failures.len()
        );
    }
    Ok(())
}

/// Like `units::parse_duration`, but "0" (disabled) is allowed.
fn parse_wait(text: &str) -> Result<Duration> {
    if text.trim().trim_end_matches('s') == "0" {
        return Ok(Duration::ZERO);
    }
    units::parse_duration(text)
}

/// This invocation as a user would type it from the workspace root.
fn invocation() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", a.replace('\'', r"'\''"))
            } else {
                a
            }
        })
        .collect();
    format!("cargo run --release -p loadtest -- {}", args.join(" "))
}

#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// The suite's options as `loadtest all` would build them.
    pub fn options() -> suite::Options {
        let cli = Cli::try_parse_from(["loadtest", "all"]).unwrap();
        match cli.command {
            Commands::All(args) => suite_options(&args, &suite::Scenario::ALL),
            _ => unreachable!(),
        }
    }

    #[test]
    fn quick_and_full_defaults() {
        let full = options();
        assert_eq!(full.rounds, 2);
        assert_eq!(full.idle_connections, 10_000);
        assert_eq!(full.maxconn, 10_016);
        assert_eq!(full.sources.len(), 8);
        assert_eq!(full.sources[0], Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(full.config_dir, PathBuf::from("target/loadtest"));
        let cli = Cli::try_parse_from(["loadtest", "http-close", "--quick", "--out", "docs/b.md"])
            .unwrap();
        let Commands::HttpClose(args) = cli.command else {
            panic!("wrong subcommand")
        };
        let quick = suite_options(&args, &[suite::Scenario::HttpClose]);
        assert_eq!(quick.rounds, 1);
        assert_eq!(quick.duration, Duration::from_secs(2));
        assert_eq!(quick.quiet_wait, Duration::ZERO);
        assert_eq!(quick.config_dir, PathBuf::from("docs/b"));
        assert_eq!(quick.bulk.config_dir, PathBuf::from("docs/b/bulk-tcp"));
        assert_eq!(quick.ws_proxy_addr.port(), 24012);
        assert_eq!(quick.idle_connections, 2000);
        assert_eq!(quick.maxconn, full.maxconn);
    }
}
