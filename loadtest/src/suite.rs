//! The benchmark suite: every scenario run against percore, HAProxy and no
//! proxy (direct) in alternation, with the same backend, client, pinning
//! and parameters. Per run it records throughput, latency percentiles, and
//! CPU time of the proxy, its core, the client and the backend from /proc.

use crate::bulk_tcp;
use crate::configs::{self, HttpParams, Timeouts};
use crate::cpustat::{self, CoreTicks, CpuTicks};
use crate::hist::Percentiles;
use crate::http_load::{self, Mark, Outcome as LoadOutcome};
use crate::procs::{SpawnSpec, Spawned};
use crate::ws_load;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    Percore,
    Haproxy,
    Direct,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Percore, Target::Haproxy, Target::Direct];

    pub fn name(self) -> &'static str {
        match self {
            Target::Percore => "percore",
            Target::Haproxy => "haproxy",
            Target::Direct => "direct",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    HttpKeepalive,
    HttpClose,
    Http64k,
    Http10m,
    Latency,
    Websocket,
    Idle,
    BulkTcp,
    /// TLS termination (crate::tls): handshakes and HTTPS keep-alive.
    Tls,
    /// HTTP/2 clients over TLS (h2load) and gRPC unary calls
    /// (crate::h2_load).
    H2,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::HttpKeepalive,
        Scenario::HttpClose,
        Scenario::Http64k,
        Scenario::Http10m,
        Scenario::Latency,
        Scenario::Websocket,
        Scenario::Idle,
        Scenario::BulkTcp,
        Scenario::Tls,
        Scenario::H2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::HttpKeepalive => "http-keepalive",
            Scenario::HttpClose => "http-close",
            Scenario::Http64k => "http-64k",
            Scenario::Http10m => "http-10m",
            Scenario::Latency => "latency",
            Scenario::Websocket => "websocket",
            Scenario::Idle => "idle",
            Scenario::BulkTcp => "bulk-tcp",
            Scenario::Tls => "tls",
            Scenario::H2 => "h2",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub scenarios: Vec<Scenario>,
    pub percore: PathBuf,
    pub haproxy: PathBuf,
    /// wrk for the cross-check of `http-keepalive`; None skips it.
    pub wrk: Option<PathBuf>,
    /// Alternating loadtest/wrk rounds per target in the cross-check.
    pub wrk_rounds: usize,
    /// Window of each cross-check run (whole seconds: wrk's `-d`).
    pub wrk_window: Duration,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    pub proxy_addr: SocketAddr,
    pub backend_addr: SocketAddr,
    pub ws_proxy_addr: SocketAddr,
    pub ws_backend_addr: SocketAddr,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
    pub connections: usize,
    pub close_connections: usize,
    pub connections_64k: usize,
    pub connections_10m: usize,
    pub small_body: u64,
    pub idle_connections: usize,
    pub ws_rate: f64,
    pub ws_connections: usize,
    pub ws_message: usize,
    /// Fractions of HAProxy's keep-alive maximum for the latency runs.
    pub latency_fractions: Vec<f64>,
    pub maxconn: u32,
    /// RLIMIT_NOFILE as the run found or raised it, and why `maxconn` or
    /// the idle count are lower than asked, if they are.
    pub fd_limit_note: Option<String>,
    pub bufsize: usize,
    /// Client source addresses, used in turn.
    pub sources: Vec<Ipv4Addr>,
    pub config_dir: PathBuf,
    pub log_dir: PathBuf,
    pub quiet_wait: Duration,
    pub quiet_below: f64,
    /// The bulk-TCP scenario's own options.
    pub bulk: bulk_tcp::Options,
}

impl Options {
    pub fn http_params(&self) -> HttpParams {
        HttpParams {
            cpu: self.proxy_cpu,
            listen: self.proxy_addr,
            server: self.backend_addr,
            ws_listen: self.ws_proxy_addr,
            ws_server: self.ws_backend_addr,
            maxconn: self.maxconn,
            bufsize: self.bufsize,
            timeouts: Timeouts::default(),
            http_request: Duration::from_secs(30),
            http_keep_alive: Duration::from_secs(30),
        }
    }
}

/// Idle-connection measurements of one proxy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub fds_before: usize,
    pub fds_after: usize,
    /// RSS once each connection has had one request answered and waits
    /// for its next one (an idle keep-alive session).
    #[serde(default)]
    pub rss_after_request_kib: Option<u64>,
}

impl IdleResult {
    pub fn bytes_per_connection(&self) -> f64 {
        (self.rss_after_kib as f64 - self.rss_before_kib as f64) * 1024.0
            / self.connections.max(1) as f64
    }

    /// Per idle keep-alive session: from before the connections to after
    /// their one request each.
    pub fn bytes_per_keepalive_session(&self) -> Option<f64> {
        Some(
            (self.rss_after_request_kib? as f64 - self.rss_before_kib as f64) * 1024.0
                / self.connections.max(1) as f64,
        )
    }
}

/// One measured run: a scenario, a target, a round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `http-keepalive`, `latency-50`, `bulk-tcp-upload`, ...
    pub scenario: String,
    pub target: Target,
    /// For bulk TCP: the proxy variant (percore-splice, haproxy-nosplice...).
    pub variant: Option<String>,
    /// `loadtest` or `wrk`.
    pub tool: String,
    pub round: usize,
    pub connections: usize,
    /// Offered rate (open loop), per second.
    pub rate: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub unanswered: u64,
    pub requests_per_second: f64,
    pub bytes_per_second: f64,
    pub latency: Percentiles,
    pub window_seconds: f64,
    /// utime+stime of the proxy process over the window.
    pub proxy_cpu_seconds: Option<f64>,
    /// Busy time of the proxy's core over the window (all processes and
    /// softirq work there).
    pub proxy_core_seconds: Option<f64>,
    pub client_cpu_seconds: Option<f64>,
    pub backend_cpu_seconds: Option<f64>,
    pub proxy_core_busy: f64,
    pub load_core_busy: f64,
    pub quiet_start: Option<bool>,
    pub idle: Option<IdleResult>,
}

impl RunResult {
    fn per_request(&self, seconds: Option<f64>) -> Option<f64> {
        let s = seconds?;
        (self.requests > 0).then(|| s / self.requests as f64)
    }
    /// Proxy CPU microseconds per request.
    pub fn proxy_us_per_request(&self) -> Option<f64> {
        self.per_request(self.proxy_cpu_seconds).map(|s| s * 1e6)
    }
    pub fn core_us_per_request(&self) -> Option<f64> {
        self.per_request(self.proxy_core_seconds).map(|s| s * 1e6)
    }
    pub fn client_us_per_request(&self) -> Option<f64> {
        self.per_request(self.client_cpu_seconds).map(|s| s * 1e6)
    }
    pub fn backend_us_per_request(&self) -> Option<f64> {
        self.per_request(self.backend_cpu_seconds).map(|s| s * 1e6)
    }
}

/// Everything a suite run produced, serialised as the raw results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SuiteOutcome {
    pub runs: Vec<RunResult>,
    /// What did not run, and why.
    pub skipped: Vec<String>,
    pub failures: Vec<String>,
    /// Every process started, as a shell would spell it.
    pub commands: Vec<String>,
    /// (moment, /proc/loadavg) around each scenario.
    pub loadavg: Vec<(String, String)>,
    /// (percent of HAProxy's maximum, requests per second) of the latency runs.
    pub latency_rates: Vec<(u32, f64)>,
    /// Wall-clock seconds the suite took.
    pub elapsed_seconds: f64,
    /// Library versions and handshake counts of the TLS scenarios.
    #[serde(default)]
    pub tls: crate::tls::TlsFacts,
    /// The runs of the HTTP/2 and gRPC scenario.
    #[serde(default)]
    pub h2: Vec<crate::h2_load::Row>,
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// VmRSS of a process in KiB, from /proc/<pid>/status.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmRSS:")?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

pub(crate) fn vm_rss(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS in {path}"))
}

fn fd_count(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?
        .count())
}

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    proxy: Option<CpuTicks>,
    client: CpuTicks,
    backend: CpuTicks,
    proxy_core: CoreTicks,
    load_core: CoreTicks,
}

pub(crate) struct Meter {
    proxy_pid: Option<u32>,
    backend_pid: u32,
    proxy_cpu: usize,
    load_cpu: usize,
    before: Option<Result<Snapshot>>,
    after: Option<Result<Snapshot>>,
}

/// CPU seconds over a window, per process and per core.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spent {
    proxy: Option<f64>,
    proxy_core: f64,
    client: f64,
    backend: f64,
    proxy_core_busy: f64,
    load_core_busy: f64,
}

impl Meter {
    pub(crate) fn new(o: &Options, proxy_pid: Option<u32>, backend_pid: u32) -> Meter {
        Meter::on_cpus(o.proxy_cpu, o.load_cpu, proxy_pid, backend_pid)
    }

    /// For runs outside the suite (`loadtest reload`), which have no
    /// suite `Options`.
    pub(crate) fn on_cpus(
        proxy_cpu: usize,
        load_cpu: usize,
        proxy_pid: Option<u32>,
        backend_pid: u32,
    ) -> Meter {
        Meter {
            proxy_pid,
            backend_pid,
            proxy_cpu,
            load_cpu,
            before: None,
            after: None,
        }
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            proxy: self.proxy_pid.map(cpustat::read_pid).transpose()?,
            client: cpustat::read_self()?,
            backend: cpustat::read_pid(self.backend_pid)?,
            proxy_core: cpustat::read_core(self.proxy_cpu)?,
            load_core: cpustat::read_core(self.load_cpu)?,
        })
    }

    pub(crate) fn mark(&mut self, mark: Mark) {
        let snapshot = self.snapshot();
        match mark {
            Mark::WindowOpens => self.before = Some(snapshot),
            Mark::WindowCloses => self.after = Some(snapshot),
        }
    }

    pub(crate) fn spent(&mut self) -> Result<Spent> {
        let before = self.before.take().context("window never opened")??;
        let after = self.after.take().context("window never closed")??;
        Ok(Spent {
            proxy: match (before.proxy, after.proxy) {
                (Some(b), Some(a)) => Some(a.since(b).as_secs_f64()),
                _ => None,
            },
            proxy_core: after
                .proxy_core
                .busy_time_since(before.proxy_core)
                .as_secs_f64(),
            client: after.client.since(before.client).as_secs_f64(),
            backend: after.backend.since(before.backend).as_secs_f64(),
            proxy_core_busy: after.proxy_core.busy_since(before.proxy_core),
            load_core_busy: after.load_core.busy_since(before.load_core),
        })
    }
}

/// What one HTTP scenario asks of the load generator.
struct HttpScenario {
    name: String,
    connections: usize,
    path: String,
    reuse: bool,
    rate: Option<f64>,
}

/// One measurement: (suite, target, proxy pid, round) -> result.
type Measure<'m> = dyn FnMut(&mut Suite<'_>, Target, Option<u32>, usize) -> Result<RunResult> + 'm;

pub(crate) struct Suite<'a> {
    pub(crate) o: &'a Options,
    pub(crate) backend: Spawned,
    pub(crate) outcome: SuiteOutcome,
    /// Targets that can run, in alternation order.
    targets: Vec<Target>,
    percore_config: PathBuf,
    haproxy_config: PathBuf,
}

pub fn run(o: &Options) -> Result<SuiteOutcome> {
    let started = Instant::now();
    if crate::procs::which("taskset").is_none() {
        bail!("taskset not found (Debian package util-linux)");
    }
    for (addr, flag) in [
        (o.proxy_addr, "--proxy-port"),
        (o.ws_proxy_addr, "--proxy-port"),
        (o.backend_addr, "--backend-port"),
        (o.ws_backend_addr, "--backend-port"),
    ] {
        std::net::TcpListener::bind(addr)
            .map(drop)
            .with_context(|| format!("{addr} is in use; choose another with {flag}"))?;
    }
    let dir = o.config_dir.join("http");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::create_dir_all(&o.log_dir)
        .with_context(|| format!("creating {}", o.log_dir.display()))?;
    let params = o.http_params();
    let percore_config = dir.join("percore.toml");
    let haproxy_config = dir.join("haproxy.cfg");
    std::fs::write(&percore_config, configs::percore_http_toml(&params))
        .with_context(|| format!("writing {}", percore_config.display()))?;
    std::fs::write(&haproxy_config, configs::haproxy_http_cfg(&params))
        .with_context(|| format!("writing {}", haproxy_config.display()))?;

    let mut outcome = SuiteOutcome::default();
    let mut targets = Vec::new();
    for target in Target::ALL {
        match unavailable(o, target, &percore_config) {
            Some(reason) => {
                eprintln!("loadtest: skipping {}: {reason}", target.name());
                outcome
                    .skipped
                    .push(format!("`{}`: {reason}", target.name()));
            }
            None => targets.push(target),
        }
    }
    let backend = start_backend(o)?;
    outcome.commands.push(backend.command_line().to_string());
    let mut suite = Suite {
        o,
        backend,
        outcome,
        targets,
        percore_config,
        haproxy_config,
    };
    for (index, &scenario) in o.scenarios.iter().enumerate() {
        if crate::procs::stopping() {
            bail!("interrupted");
        }
        eprintln!(
            "loadtest: scenario {} ({} of {}, {:.0} s elapsed)",
            scenario.name(),
            index + 1,
            o.scenarios.len(),
            started.elapsed().as_secs_f64()
        );
        suite
            .outcome
            .loadavg
            .push((format!("before {}", scenario.name()), loadavg()));
        let result = match scenario {
            Scenario::HttpKeepalive => suite.keepalive(),
            Scenario::HttpClose => suite.http(&HttpScenario {
                name: "http-close".into(),
                connections: o.close_connections,
                path: format!("/bytes/{}", o.small_body),
                reuse: false,
                rate: None,
            }),
            Scenario::Http64k => suite.http(&HttpScenario {
                name: "http-64k".into(),
                connections: o.connections_64k,
                path: "/bytes/65536".into(),
                reuse: true,
                rate: None,
            }),
            Scenario::Http10m => suite.http(&HttpScenario {
                name: "http-10m".into(),
                connections: o.connections_10m,
                path: format!("/bytes/{}", 10 * 1024 * 1024),
                reuse: true,
                rate: None,
            }),
            Scenario::Latency => suite.latency(),
            Scenario::Websocket => suite.websocket(),
            Scenario::Idle => suite.idle(),
            Scenario::BulkTcp => suite.bulk(),
            Scenario::Tls => {
                let backend_pid = suite.backend.pid();
                crate::tls::run(o, &suite.targets, backend_pid, &mut suite.outcome)
            }
            Scenario::H2 => suite.h2(),
        };
        if let Err(e) = result {
            if crate::procs::stopping() {
                return Err(e);
            }
            let message = format!("scenario `{}`: {e:#}", scenario.name());
            eprintln!("loadtest: {message}");
            suite.outcome.failures.push(message);
        }
    }
    suite.outcome.loadavg.push(("at the end".into(), loadavg()));
    let mut outcome = suite.outcome;
    drop(suite.backend);
    outcome.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The `h2` scenario's options: its own ports, the suite's CPUs, binaries
/// and rounds; fewer requests with `--quick`.
pub fn h2_options(o: &Options) -> crate::h2_load::Options {
    let (requests, grpc_calls) = if o.quick {
        (20_000, 3_000)
    } else {
        (100_000, 20_000)
    };
    crate::h2_load::Options {
        percore: o.percore.clone(),
        haproxy: o.haproxy.clone(),
        proxy_cpu: o.proxy_cpu,
        load_cpu: o.load_cpu,
        proxy_port: 24041,
        backend_port: 24043,
        connections: 8,
        streams: 10,
        requests,
        body: o.small_body,
        grpc_calls,
        rounds: o.rounds,
        config_dir: o.config_dir.join("h2"),
        log_dir: o.log_dir.clone(),
    }
}

/// Why a target cannot run here, if it cannot.
fn unavailable(o: &Options, target: Target, percore_config: &Path) -> Option<String> {
    match target {
        Target::Percore if !o.percore.is_file() => Some(format!(
            "percore binary not found at `{}`: build it with `cargo build --release` or pass \
             `--percore PATH`",
            o.percore.display()
        )),
        Target::Percore => {
            let mut command = std::process::Command::new("taskset");
            command
                .arg("-c")
                .arg(o.proxy_cpu.to_string())
                .arg(&o.percore)
                .arg("--check")
                .arg("-c")
                .arg(percore_config);
            match crate::procs::output_within(&mut command, Duration::from_secs(10)) {
                Ok(out) if out.status.success() => None,
                Ok(out) => Some(format!(
                    "`percore --check` rejected the generated config: {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join(" / ")
                )),
                Err(e) => Some(format!("{e:#}")),
            }
        }
        Target::Haproxy if bulk_tcp::resolve(&o.haproxy).is_none() => Some(format!(
            "`{}` not found: `apt-get update && apt-get install -y haproxy` or pass \
             `--haproxy PATH`",
            o.haproxy.display()
        )),
        _ => None,
    }
}

fn start_backend(o: &Options) -> Result<Spawned> {
    start_http_backend(o.load_cpu, o.backend_addr, o.ws_backend_addr)
}

/// `loadtest serve-http` pinned to `cpu`, once it listens.
pub(crate) fn start_http_backend(
    cpu: usize,
    addr: SocketAddr,
    ws_addr: SocketAddr,
) -> Result<Spawned> {
    let exe = std::env::current_exe().context("locating the loadtest binary")?;
    let mut backend = Spawned::spawn(SpawnSpec {
        name: "backend",
        cpus: &[cpu],
        program: &exe,
        args: vec![
            "serve-http".into(),
            "--listen".into(),
            addr.to_string().into(),
            "--ws-listen".into(),
            ws_addr.to_string().into(),
        ],
        log: None,
        capture_stdout: true,
    })?;
    backend.wait_listening()?;
    Ok(backend)
}

/// Median of the values, None when empty.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    crate::report::median(&mut values)
}

impl Suite<'_> {
    /// Rounds alternate the order of the targets (forward, then backward)
    /// so slow drift on a shared machine does not always favour the same
    /// one.
    pub(crate) fn order(&self, round: usize) -> Vec<Target> {
        let mut order = self.targets.clone();
        if round.is_multiple_of(2) {
            order.reverse();
        }
        order
    }

    pub(crate) fn quiet(&self) -> Result<Option<bool>> {
        if self.o.quiet_wait.is_zero() {
            return Ok(None);
        }
        Ok(Some(cpustat::wait_for_quiet(
            &[self.o.load_cpu, self.o.proxy_cpu],
            self.o.quiet_below,
            Duration::from_millis(500),
            self.o.quiet_wait,
        )?))
    }

    /// Starts the proxy for `target` (None for direct) and waits until both
    /// its listeners accept.
    pub(crate) fn start_proxy(&mut self, target: Target, label: &str) -> Result<Option<Spawned>> {
        let o = self.o;
        let (program, args): (PathBuf, Vec<std::ffi::OsString>) = match target {
            Target::Direct => return Ok(None),
            Target::Percore => (
                o.percore.clone(),
                vec!["-c".into(), self.percore_config.clone().into()],
            ),
            Target::Haproxy => (
                bulk_tcp::resolve(&o.haproxy).context("haproxy not found")?,
                vec![
                    "-db".into(),
                    "-f".into(),
                    self.haproxy_config.clone().into(),
                ],
            ),
        };
        let log = o.log_dir.join(format!("{label}-{}.log", target.name()));
        let mut proxy = Spawned::spawn(SpawnSpec {
            name: target.name(),
            cpus: &[o.proxy_cpu],
            program: &program,
            args,
            log: Some(&log),
            capture_stdout: false,
        })?;
        let command = proxy.command_line().to_string();
        if !self.outcome.commands.contains(&command) {
            self.outcome.commands.push(command);
        }
        for addr in [o.proxy_addr, o.ws_proxy_addr] {
            bulk_tcp::wait_until_accepting(&mut proxy, addr)
                .with_context(|| format!("log: {}", log.display()))?;
        }
        Ok(Some(proxy))
    }

    pub(crate) fn addresses(&self, target: Target) -> (SocketAddr, SocketAddr) {
        match target {
            Target::Direct => (self.o.backend_addr, self.o.ws_backend_addr),
            _ => (self.o.proxy_addr, self.o.ws_proxy_addr),
        }
    }

    pub(crate) fn stop_proxy(&mut self, proxy: Option<Spawned>, target: Target) {
        if let Some(proxy) = proxy {
            let command = proxy.command_line().to_string();
            match proxy.stop() {
                Ok(status) if target == Target::Percore && !status.success() => {
                    self.outcome.failures.push(format!(
                        "`{command}` ended with {status} after SIGTERM (expected exit 0)"
                    ))
                }
                Ok(_) => {}
                Err(e) => self.outcome.failures.push(format!("{e:#}")),
            }
        }
    }

    /// Runs `measure` once per round and target, each with a fresh proxy.
    fn each_target(
        &mut self,
        label: &str,
        targets: Option<&[Target]>,
        rounds: usize,
        measure: &mut Measure<'_>,
    ) -> Result<()> {
        for round in 1..=rounds {
            for target in self.order(round) {
                if targets.is_some_and(|only| !only.contains(&target)) {
                    continue;
                }
                if crate::procs::stopping() {
                    bail!("interrupted");
                }
                let quiet = self.quiet()?;
                let proxy = match self.start_proxy(target, label) {
                    Ok(proxy) => proxy,
                    Err(e) => {
                        let message = format!("{label} {} round {round}: {e:#}", target.name());
                        eprintln!("loadtest: {message}");
                        self.outcome.failures.push(message);
                        continue;
                    }
                };
                let pid = proxy.as_ref().map(Spawned::pid);
                let result = measure(self, target, pid, round);
                self.stop_proxy(proxy, target);
                match result {
                    Ok(mut run) => {
                        run.quiet_start = quiet;
                        run.round = round;
                        eprintln!(
                            "loadtest: {label} {:<8} round {round}: {:>10.0}/s  p99 {}  proxy CPU {}/req  errors {}",
                            target.name(),
                            run.requests_per_second,
                            crate::hist::format_micros(run.latency.p99_us),
                            run.proxy_us_per_request()
                                .map(|us| format!("{us:.1} µs"))
                                .unwrap_or_else(|| "–".into()),
                            run.errors,
                        );
                        self.outcome.runs.push(run);
                    }
                    Err(e) => {
                        if crate::procs::stopping() {
                            return Err(e);
                        }
                        let message = format!("{label} {} round {round}: {e:#}", target.name());
                        eprintln!("loadtest: {message}");
                        self.outcome.failures.push(message);
                    }
                }
            }
        }
        Ok(())
    }

    fn http(&mut self, scenario: &HttpScenario) -> Result<()> {
        let o = self.o;
        let backend_pid = self.backend.pid();
        self.each_target(
            &scenario.name,
            None,
            o.rounds,
            &mut |suite, target, pid, round| {
                let (addr, _) = suite.addresses(target);
                let plan = http_load::Plan {
                    target: addr,
                    connections: scenario.connections,
                    request: http_load::get_request(&scenario.path, addr, !scenario.reuse),
                    reuse: scenario.reuse,
                    rate: scenario.rate,
                    warmup: o.warmup,
                    duration: o.duration,
                    sources: o.sources.clone(),
                    label: format!("{} {} round {round}", scenario.name, target.name()),
                };
                let mut meter = Meter::new(o, pid, backend_pid);
                let outcome = http_load::run(&plan, &mut |m| meter.mark(m))?;
                let spent = meter.spent()?;
                Ok(result_of(
                    &scenario.name,
                    target,
                    scenario.connections,
                    scenario.rate,
                    &outcome,
                    spent,
                ))
            },
        )
    }

    /// Keep-alive small responses, then the cross-check against wrk.
    fn keepalive(&mut self) -> Result<()> {
        let o = self.o;
        self.http(&HttpScenario {
            name: "http-keepalive".into(),
            connections: o.connections,
            path: format!("/bytes/{}", o.small_body),
            reuse: true,
            rate: None,
        })?;
        match o.wrk.clone() {
            Some(wrk) => crate::crosscheck::run(self, &wrk),
            None => {
                self.outcome.skipped.push(
                    "wrk cross-check: wrk not found (`apt-get install -y wrk`), not run".into(),
                );
                Ok(())
            }
        }
    }

    fn haproxy_max(&self) -> Option<f64> {
        median(
            self.outcome
                .runs
                .iter()
                .filter(|r| {
                    r.scenario == "http-keepalive"
                        && r.target == Target::Haproxy
                        && r.tool == "loadtest"
                })
                .map(|r| r.requests_per_second)
                .collect(),
        )
    }

    fn latency(&mut self) -> Result<()> {
        if self.haproxy_max().is_none() && self.targets.contains(&Target::Haproxy) {
            eprintln!("loadtest: measuring HAProxy's keep-alive maximum first");
            let o = self.o;
            let name = "http-keepalive".to_string();
            let backend_pid = self.backend.pid();
            self.each_target(
                &name,
                Some(&[Target::Haproxy]),
                1,
                &mut |suite, target, pid, _| {
                    let (addr, _) = suite.addresses(target);
                    let plan = http_load::Plan {
                        target: addr,
                        connections: o.connections,
                        request: http_load::get_request(
                            &format!("/bytes/{}", o.small_body),
                            addr,
                            false,
                        ),
                        reuse: true,
                        rate: None,
                        warmup: o.warmup,
                        duration: o.duration,
                        sources: o.sources.clone(),
                        label: "haproxy maximum".into(),
                    };
                    let mut meter = Meter::new(o, pid, backend_pid);
                    let outcome = http_load::run(&plan, &mut |m| meter.mark(m))?;
                    let spent = meter.spent()?;
                    Ok(result_of(
                        &name,
                        target,
                        o.connections,
                        None,
                        &outcome,
                        spent,
                    ))
                },
            )?;
        }
        let Some(max) = self.haproxy_max() else {
            self.outcome.skipped.push(
                "latency: no HAProxy keep-alive maximum to take 50%/80% of (HAProxy did not run)"
                    .into(),
            );
            return Ok(());
        };
        for &fraction in &self.o.latency_fractions.clone() {
            let percent = (fraction * 100.0).round() as u32;
            let rate = (max * fraction).max(1.0).round();
            self.outcome.latency_rates.push((percent, rate));
            eprintln!("loadtest: latency at {percent}% of HAProxy's {max:.0} req/s: {rate} req/s");
            self.http(&HttpScenario {
                name: format!("latency-{percent}"),
                connections: self.o.connections,
                path: format!("/bytes/{}", self.o.small_body),
                reuse: true,
                rate: Some(rate),
            })?;
        }
        Ok(())
    }

    fn websocket(&mut self) -> Result<()> {
        let o = self.o;
        let backend_pid = self.backend.pid();
        self.each_target(
            "websocket",
            None,
            o.rounds,
            &mut |suite, target, pid, round| {
                let (_, addr) = suite.addresses(target);
                let plan = ws_load::Plan {
                    target: addr,
                    connections: o.ws_connections,
                    rate: o.ws_rate,
                    message_size: o.ws_message,
                    warmup: o.warmup,
                    duration: o.duration,
                    label: format!("websocket {} round {round}", target.name()),
                };
                let mut meter = Meter::new(o, pid, backend_pid);
                let outcome = ws_load::run(&plan, &mut |m| meter.mark(m))?;
                let spent = meter.spent()?;
                Ok(result_of(
                    "websocket",
                    target,
                    o.ws_connections,
                    Some(o.ws_rate),
                    &outcome,
                    spent,
                ))
            },
        )
    }

    fn idle(&mut self) -> Result<()> {
        let o = self.o;
        let backend_pid = self.backend.pid();
        let proxies: Vec<Target> = self
            .targets
            .iter()
            .copied()
            .filter(|t| *t != Target::Direct)
            .collect();
        // Idle is about memory, not noise: one round is enough.
        self.each_target("idle", Some(&proxies), 1, &mut |suite, target, pid, _| {
            let pid = pid.context("idle needs a proxy")?;
            let (addr, _) = suite.addresses(target);
            // Let the proxy finish starting (pools, first allocations).
            std::thread::sleep(Duration::from_millis(500));
            let mut meter = Meter::new(o, Some(pid), backend_pid);
            let rss_before_kib = vm_rss(pid)?;
            let fds_before = fd_count(pid)?;
            meter.mark(Mark::WindowOpens);
            let started = Instant::now();
            let held = http_load::open_idle(
                addr,
                o.idle_connections,
                &o.sources,
                &format!("idle {}", target.name()),
            )?;
            // Wait until the proxy holds them all (accepted, registered).
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut fds_after = fd_count(pid)?;
            while fds_after < fds_before + held.len() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                fds_after = fd_count(pid)?;
            }
            std::thread::sleep(Duration::from_secs(1));
            let rss_after_kib = vm_rss(pid)?;
            fds_after = fd_count(pid)?;
            // Then one request on each: what an idle keep-alive session
            // (served once, waiting for its next request) costs.
            let request = http_load::get_request(&format!("/bytes/{}", o.small_body), addr, false);
            let mut failed_requests = 0u64;
            let mut first_failure = None;
            for stream in &held {
                match http_load::request_once(stream, &request) {
                    Ok(200) => {}
                    Ok(status) => {
                        failed_requests += 1;
                        first_failure.get_or_insert_with(|| format!("status {status}"));
                    }
                    Err(e) => {
                        failed_requests += 1;
                        first_failure.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_secs(1));
            let rss_after_request_kib = vm_rss(pid)?;
            meter.mark(Mark::WindowCloses);
            let spent = meter.spent()?;
            let window = started.elapsed();
            // Still open? A proxy that closed them would make RSS look good.
            let mut probe = [0u8; 1];
            let closed = held
                .iter()
                .step_by((held.len() / 100).max(1))
                .filter(|s| {
                    let _ = s.set_nonblocking(true);
                    matches!(std::io::Read::read(&mut &**s, &mut probe), Ok(0))
                })
                .count();
            drop(held);
            let idle = IdleResult {
                connections: o.idle_connections,
                rss_before_kib,
                rss_after_kib,
                fds_before,
                fds_after,
                rss_after_request_kib: Some(rss_after_request_kib),
            };
            eprintln!(
                "loadtest: idle {}: RSS {rss_before_kib} -> {rss_after_kib} KiB, {:.0} B per connection, fds {fds_before} -> {fds_after}; after one request each {rss_after_request_kib} KiB, {:.0} B per keep-alive session",
                target.name(),
                idle.bytes_per_connection(),
                idle.bytes_per_keepalive_session().unwrap_or(0.0)
            );
            let mut result = result_of(
                "idle",
                target,
                o.idle_connections,
                None,
                &LoadOutcome {
                    window,
                    duration: window,
                    ..LoadOutcome::default()
                },
                spent,
            );
            if closed > 0 {
                result.errors = closed as u64;
                result
                    .first_errors
                    .push(format!("{closed} of the sampled connections were closed"));
            }
            if failed_requests > 0 {
                result.errors += failed_requests;
                result.first_errors.push(format!(
                    "{failed_requests} of the keep-alive requests failed, the first: {}",
                    first_failure.unwrap_or_default()
                ));
            }
            result.idle = Some(idle);
            Ok(result)
        })
    }

    /// h2load and gRPC rows (no direct column: TLS and HTTP/2 end at the
    /// proxy). Skipped, and said so, where h2load or grpcio is missing.
    fn h2(&mut self) -> Result<()> {
        let mut h2 = h2_options(self.o);
        let found = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !found("h2load", &["--version"]) {
            self.outcome
                .skipped
                .push("h2: h2load not found (Debian package nghttp2-client)".into());
            return Ok(());
        }
        if !found("python3", &["-c", "import grpc"]) {
            self.outcome.skipped.push(
                "h2 gRPC rows: python3 grpcio not found (python3 -m pip install grpcio)".into(),
            );
            h2.grpc_calls = 0;
        }
        self.outcome.h2 = crate::h2_load::run(&h2)?;
        Ok(())
    }

    fn bulk(&mut self) -> Result<()> {
        let b = &self.o.bulk;
        std::fs::create_dir_all(&b.config_dir).ok();
        let outcome = bulk_tcp::run(b)?;
        for command in outcome
            .proxy_commands
            .iter()
            .map(|(_, c)| c.clone())
            .chain(std::iter::once(outcome.backend_command.clone()))
        {
            if !command.is_empty() && !self.outcome.commands.contains(&command) {
                self.outcome.commands.push(command);
            }
        }
        for (variant, reason) in &outcome.skipped {
            self.outcome
                .skipped
                .push(format!("bulk-tcp `{}`: {reason}", variant.name()));
        }
        for warning in &outcome.warnings {
            self.outcome.failures.push(format!("bulk-tcp: {warning}"));
        }
        for row in &outcome.rows {
            let target = match row.variant {
                bulk_tcp::Variant::PercoreSplice | bulk_tcp::Variant::PercoreCopy => {
                    Target::Percore
                }
                bulk_tcp::Variant::Haproxy | bulk_tcp::Variant::HaproxyNosplice => Target::Haproxy,
                bulk_tcp::Variant::Direct => Target::Direct,
            };
            let direction = match row.direction {
                crate::client::Direction::Upload => "upload",
                crate::client::Direction::Download => "download",
            };
            for failure in &row.failures {
                self.outcome.failures.push(format!(
                    "bulk-tcp {} {direction}: {failure}",
                    row.variant.name()
                ));
            }
            for sample in &row.samples {
                let seconds = sample.transfer.elapsed.as_secs_f64();
                self.outcome.runs.push(RunResult {
                    scenario: format!("bulk-tcp-{direction}"),
                    target,
                    variant: Some(row.variant.name().into()),
                    tool: "loadtest".into(),
                    round: sample.round,
                    connections: b.streams,
                    rate: None,
                    requests: 1,
                    errors: 0,
                    first_errors: Vec::new(),
                    unanswered: 0,
                    requests_per_second: 1.0 / seconds,
                    bytes_per_second: sample.transfer.bytes as f64 / seconds,
                    latency: Percentiles::default(),
                    window_seconds: seconds,
                    proxy_cpu_seconds: sample.proxy_cpu.map(|d| d.as_secs_f64()),
                    proxy_core_seconds: (target != Target::Direct)
                        .then_some(sample.proxy_core_time.as_secs_f64()),
                    client_cpu_seconds: None,
                    backend_cpu_seconds: None,
                    proxy_core_busy: sample.proxy_core_busy,
                    load_core_busy: sample.load_core_busy,
                    quiet_start: sample.quiet,
                    idle: None,
                });
            }
        }
        Ok(())
    }
}

pub(crate) fn result_of(
    scenario: &str,
    target: Target,
    connections: usize,
    rate: Option<f64>,
    outcome: &LoadOutcome,
    spent: Spent,
) -> RunResult {
    let window = outcome.window.as_secs_f64().max(1e-9);
    RunResult {
        scenario: scenario.into(),
        target,
        variant: None,
        tool: "loadtest".into(),
        round: 0,
        connections,
        rate,
        requests: outcome.requests,
        errors: outcome.errors,
        first_errors: outcome.first_errors.clone(),
        unanswered: outcome.unanswered,
        requests_per_second: outcome.requests_per_second(),
        bytes_per_second: outcome.body_bytes as f64 / outcome.duration.as_secs_f64().max(1e-9),
        latency: outcome.latencies.summary(),
        window_seconds: window,
        proxy_cpu_seconds: spent.proxy,
        proxy_core_seconds: (target != Target::Direct).then_some(spent.proxy_core),
        client_cpu_seconds: Some(spent.client),
        backend_cpu_seconds: Some(spent.backend),
        proxy_core_busy: spent.proxy_core_busy,
        load_core_busy: spent.load_core_busy,
        quiet_start: None,
        idle: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_from_status() {
        let status = "Name:\thaproxy\nVmPeak:\t  90000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert!(vm_rss(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn idle_cost_is_per_connection_in_bytes() {
        let idle = IdleResult {
            connections: 1000,
            rss_before_kib: 10_000,
            rss_after_kib: 12_000,
            fds_before: 10,
            fds_after: 1010,
            rss_after_request_kib: Some(15_000),
        };
        assert_eq!(idle.bytes_per_connection(), 2048.0);
        assert_eq!(idle.bytes_per_keepalive_session(), Some(5120.0));
    }
}
