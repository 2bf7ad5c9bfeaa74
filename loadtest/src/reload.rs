//! `loadtest reload`: what a reload in place costs.
//!
//! 1. **Apply time.** percore starts on a configuration of 1,000 backends ×
//!    10 servers with routes to some of them, then takes back-to-back
//!    `reload` commands on its runtime API socket, the file alternating
//!    between two variants (one backend added or removed, one server's
//!    weight changed). Per reload: percore's own "applied ... in X ms", the
//!    command's round trip as a client sees it, and the proxy's RSS.
//! 2. **Latency during a reload storm.** The same open-loop keep-alive load
//!    as the `latency` scenario, at a fixed rate, through a fresh percore
//!    on a small configuration: once without reloads, once with one reload
//!    per second (two small variants in turn). Same rate, connections and
//!    window, so the difference between the two is what reloads cost the
//!    requests. A third run reloads the large configuration of (1) once
//!    per second under the same load: a reload is parsed and built on the
//!    cores that serve, so its length is how long their requests wait.
//!
//! 3. **Memory with the large configuration** (`config_memory`): percore
//!    and HAProxy started on it with no traffic, on one core and on two.
//!
//! Not part of `loadtest all`: it mostly answers a different question
//! (percore against itself) and would add most of a minute.

use crate::configs::{self, HttpParams, ReloadShape, Timeouts};
use crate::cpustat;
use crate::hist::format_micros;
use crate::http_load::{self, Mark};
use crate::procs::{SpawnSpec, Spawned};
use crate::report::Environment;
use crate::suite::{self, Meter, RunResult, Target};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub const BEGIN: &str = "<!-- loadtest:reload:begin (generated; rerun to update) -->";
pub const END: &str = "<!-- loadtest:reload:end -->";

/// How long one `reload` command may take before it counts as failed (a
/// reload that hangs must not hang the benchmark).
const RELOAD_LIMIT: Duration = Duration::from_secs(30);
/// Pause after the proxy starts and after the last reload before RSS is
/// read: the first allocations of the cores, and the retired generation's
/// release, happen just after the moment the socket answers.
const SETTLE: Duration = Duration::from_millis(500);
/// Pause between two reloads of the apply-time run, so each starts from a
/// process that has dropped the generation before the last.
const BETWEEN_RELOADS: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Options {
    pub percore: PathBuf,
    /// For the memory comparison with the large configuration.
    pub haproxy: PathBuf,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    pub proxy_addr: SocketAddr,
    pub backend_addr: SocketAddr,
    pub ws_backend_addr: SocketAddr,
    /// The large configuration of the apply-time run.
    pub shape: ReloadShape,
    pub reloads: usize,
    /// Open-loop rate of the latency runs, requests per second.
    pub rate: f64,
    pub connections: usize,
    pub small_body: u64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Time between two reloads of the storm.
    pub storm_interval: Duration,
    pub sources: Vec<Ipv4Addr>,
    /// Where the generated configs and reload.json go.
    pub results_dir: PathBuf,
    pub log_dir: PathBuf,
    /// The runtime API socket (a short path: sun_path holds 108 bytes).
    pub socket: PathBuf,
    pub quiet_wait: Duration,
    pub quiet_below: f64,
}

impl Options {
    fn http_params(&self) -> HttpParams {
        HttpParams {
            cpu: self.proxy_cpu,
            listen: self.proxy_addr,
            server: self.backend_addr,
            // Unused by the reload configs (no WebSocket frontend).
            ws_listen: self.proxy_addr,
            ws_server: self.ws_backend_addr,
            maxconn: 1000,
            bufsize: 16384,
            timeouts: Timeouts::default(),
            http_request: Duration::from_secs(30),
            http_keep_alive: Duration::from_secs(30),
        }
    }

    /// The storm's small configuration: one backend of two servers, the
    /// frontend routing one prefix; its second variant adds a backend and
    /// changes a weight like the large one's.
    fn small_shape(&self) -> ReloadShape {
        ReloadShape {
            backends: 1,
            servers: 2,
            routes: 1,
        }
    }
}

/// What percore answered to one `reload`.
/// The three latency runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baseline,
    /// One reload per interval, small configuration.
    Storm,
    /// One reload per interval, the apply-time run's large configuration.
    StormLarge,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Baseline, Kind::Storm, Kind::StormLarge];

    fn name(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline",
            Kind::Storm => "storm",
            Kind::StormLarge => "storm-large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Applied {
    pub generation: u64,
    pub cores: usize,
    /// percore's own figure: from reading the file to every core switched.
    pub ms: f64,
    /// The part spent switching the cores (`switched in X ms`): the time
    /// their traffic waits. `None` from a percore that does not say.
    pub switched_ms: Option<f64>,
}

/// One reload as measured.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadSample {
    /// "A" or "B": the variant the file held for this reload.
    pub variant: &'static str,
    pub applied: Applied,
    /// Connect, write `reload\n`, read to EOF.
    pub round_trip_ms: f64,
    /// The proxy's RSS right after the answer (apply-time run only).
    pub rss_kib: Option<u64>,
    /// When it was sent, from the start of the measured window (storm).
    pub at_seconds: Option<f64>,
}

/// Share of an interval the hypervisor gave each CPU to someone else.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Steal {
    pub proxy_cpu: f64,
    pub load_cpu: f64,
}

type StealTicks = Option<[(u64, u64); 2]>;

fn steal_now(o: &Options) -> StealTicks {
    Some([
        cpustat::read_steal(o.proxy_cpu).ok()?,
        cpustat::read_steal(o.load_cpu).ok()?,
    ])
}

fn steal_since(before: StealTicks, after: StealTicks) -> Option<Steal> {
    let (b, a) = (before?, after?);
    let share = |i: usize| {
        let total = a[i].1.saturating_sub(b[i].1);
        (total > 0).then(|| a[i].0.saturating_sub(b[i].0) as f64 / total as f64)
    };
    Some(Steal {
        proxy_cpu: share(0)?,
        load_cpu: share(1)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    pub shape_backends: usize,
    pub shape_servers: usize,
    pub shape_routes: usize,
    pub config_bytes: u64,
    /// From spawning the proxy to its listener accepting.
    pub start_ms: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub samples: Vec<ReloadSample>,
    /// Over the reloads.
    pub steal: Option<Steal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadRun {
    pub result: RunResult,
    /// Connections the client had to open in the window: keep-alive
    /// connections the proxy closed (0 when a reload drops none).
    pub connects: u64,
    pub reloads: Vec<ReloadSample>,
    /// Over the measured window.
    pub steal: Option<Steal>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub apply: Option<ApplyOutcome>,
    pub baseline: Option<LoadRun>,
    pub storm: Option<LoadRun>,
    /// The storm with the large configuration.
    pub storm_large: Option<LoadRun>,
    /// RSS with the large configuration, percore and HAProxy, 1 and 2 cores.
    pub memory: Vec<crate::config_memory::MemoryRow>,
    /// Rows of the memory comparison not measured, and why.
    pub memory_skipped: Vec<String>,
    pub failures: Vec<String>,
    pub commands: Vec<String>,
    pub loadavg: Vec<(String, String)>,
    /// Proxy starts that found both CPUs quiet, of those checked.
    pub quiet_starts: Vec<bool>,
    pub elapsed_seconds: f64,
}

/// Sends `reload` to the runtime API socket and waits for the whole answer
/// (the socket closes after one command when not in interactive mode).
pub fn send_reload(socket: &Path) -> Result<(Duration, Applied)> {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    stream.set_read_timeout(Some(RELOAD_LIMIT))?;
    stream.set_write_timeout(Some(RELOAD_LIMIT))?;
    stream.write_all(b"reload\n").context("sending `reload`")?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .context("reading the answer to `reload`")?;
    let round_trip = started.elapsed();
    Ok((round_trip, parse_answer(&answer)?))
}

/// `Success=1`, `--`, the reload's log lines, the last of which says
/// `reload N applied on C core(s) in X.Y ms`.
pub fn parse_answer(answer: &str) -> Result<Applied> {
    let summary = || answer.lines().collect::<Vec<_>>().join(" / ");
    if answer.lines().next().map(str::trim) != Some("Success=1") {
        bail!("reload not applied: {}", summary());
    }
    answer
        .lines()
        .find_map(parse_applied_line)
        .with_context(|| format!("no `applied ... in X ms` line in the answer: {}", summary()))
}

/// One `reload N applied on C core(s) in X.Y ms[ ...]` line, with or
/// without the log's `[NOTICE] ` prefix.
fn parse_applied_line(line: &str) -> Option<Applied> {
    let line = line.trim();
    let line = line.strip_prefix("[NOTICE] ").unwrap_or(line);
    let rest = line.strip_prefix("reload ")?;
    let (generation, rest) = rest.split_once(" applied on ")?;
    let (cores, rest) = rest.split_once(" core(s) in ")?;
    let (ms, rest) = rest.split_once(" ms")?;
    let switched_ms = rest
        .split_once("switched in ")
        .and_then(|(_, r)| r.split_once(" ms"))
        .and_then(|(v, _)| v.trim().parse().ok());
    Some(Applied {
        generation: generation.trim().parse().ok()?,
        cores: cores.trim().parse().ok()?,
        ms: ms.trim().parse().ok()?,
        switched_ms,
    })
}

/// Replaces the file percore re-reads in one step (write, then rename), so
/// a reload never reads half a file.
fn install(live: &Path, text: &str) -> Result<()> {
    let staging = live.with_extension("toml.next");
    std::fs::write(&staging, text).with_context(|| format!("writing {}", staging.display()))?;
    std::fs::rename(&staging, live).with_context(|| format!("replacing {}", live.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `percore --check` on each file: a config percore rejects is reported
/// as such rather than as a proxy that did not start or a refused reload.
fn check(o: &Options, files: &[&Path]) -> Result<()> {
    if !o.percore.is_file() {
        bail!(
            "percore binary not found at `{}`: build it with `cargo build --release -p percore` \
             or pass `--percore PATH`",
            o.percore.display()
        );
    }
    for file in files {
        // Pinned like the proxy: `threads` names a CPU, which must be in
        // the affinity mask (ours is the load CPU by now).
        let mut command = std::process::Command::new("taskset");
        command
            .arg("-c")
            .arg(o.proxy_cpu.to_string())
            .arg(&o.percore)
            .arg("--check")
            .arg("-c")
            .arg(file);
        let out = crate::procs::output_within(&mut command, Duration::from_secs(30))?;
        if !out.status.success() {
            bail!(
                "`percore --check` rejected {}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        }
    }
    Ok(())
}

struct Run<'a> {
    o: &'a Options,
    outcome: Outcome,
    backend_pid: u32,
}

pub fn run(o: &Options) -> Result<Outcome> {
    let started = Instant::now();
    if crate::procs::which("taskset").is_none() {
        bail!("taskset not found (Debian package util-linux)");
    }
    for (addr, flag) in [
        (o.proxy_addr, "--proxy-port"),
        (o.backend_addr, "--backend-port"),
        (o.ws_backend_addr, "--backend-port"),
    ] {
        std::net::TcpListener::bind(addr)
            .map(drop)
            .with_context(|| format!("{addr} is in use; choose another with {flag}"))?;
    }
    for dir in [&o.results_dir, &o.log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let backend = suite::start_http_backend(o.load_cpu, o.backend_addr, o.ws_backend_addr)?;
    let mut run = Run {
        o,
        outcome: Outcome::default(),
        backend_pid: backend.pid(),
    };
    run.outcome
        .commands
        .push(backend.command_line().to_string());
    run.outcome
        .loadavg
        .push(("at the start".into(), suite::loadavg()));

    eprintln!(
        "loadtest: reload apply time: {} backends x {} servers, {} reloads",
        o.shape.backends, o.shape.servers, o.reloads
    );
    match run.apply_time() {
        Ok(apply) => run.outcome.apply = Some(apply),
        Err(e) => run.fail("apply time", e)?,
    }
    eprintln!(
        "loadtest: memory with {} backends x {} servers: percore and HAProxy on 1 and 2 cores",
        o.shape.backends, o.shape.servers
    );
    let setup = crate::config_memory::Setup {
        percore: &o.percore,
        haproxy: &o.haproxy,
        params: o.http_params(),
        shape: o.shape,
        core_sets: [vec![o.proxy_cpu], {
            let mut both = vec![o.load_cpu, o.proxy_cpu];
            both.sort_unstable();
            both.dedup();
            both
        }],
        proxy_addr: o.proxy_addr,
        results_dir: &o.results_dir,
        log_dir: &o.log_dir,
    };
    let mut skipped = Vec::new();
    match crate::config_memory::measure(&setup, &mut skipped) {
        Ok(rows) => run.outcome.memory = rows,
        Err(e) => run.fail("memory", e)?,
    }
    run.outcome.memory_skipped = skipped;
    for kind in Kind::ALL {
        let name = kind.name();
        eprintln!(
            "loadtest: reload latency, {name}: {} req/s over {} keep-alive connections{}",
            o.rate,
            o.connections,
            match kind {
                Kind::Baseline => ", no reload".to_string(),
                Kind::Storm => format!(", a reload every {:?}", o.storm_interval),
                Kind::StormLarge => format!(
                    ", a reload of {} backends x {} servers every {:?}",
                    o.shape.backends, o.shape.servers, o.storm_interval
                ),
            }
        );
        run.outcome
            .loadavg
            .push((format!("before the {name} run"), suite::loadavg()));
        match run.latency(kind) {
            Ok(load) => match kind {
                Kind::Baseline => run.outcome.baseline = Some(load),
                Kind::Storm => run.outcome.storm = Some(load),
                Kind::StormLarge => run.outcome.storm_large = Some(load),
            },
            Err(e) => run.fail(name, e)?,
        }
    }
    run.outcome
        .loadavg
        .push(("at the end".into(), suite::loadavg()));
    drop(backend);
    let mut outcome = run.outcome;
    outcome.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

impl Run<'_> {
    /// Records a failed part and goes on with the next, unless the run was
    /// interrupted.
    fn fail(&mut self, part: &str, e: anyhow::Error) -> Result<()> {
        if crate::procs::stopping() {
            return Err(e);
        }
        let message = format!("{part}: {e:#}");
        eprintln!("loadtest: {message}");
        self.outcome.failures.push(message);
        Ok(())
    }

    fn start_proxy(&mut self, config: &Path, label: &str) -> Result<(Spawned, Duration)> {
        let o = self.o;
        if !o.quiet_wait.is_zero() {
            let quiet = cpustat::wait_for_quiet(
                &[o.load_cpu, o.proxy_cpu],
                o.quiet_below,
                Duration::from_millis(500),
                o.quiet_wait,
            )?;
            self.outcome.quiet_starts.push(quiet);
        }
        let log = o.log_dir.join(format!("reload-{label}-percore.log"));
        let started = Instant::now();
        let mut proxy = Spawned::spawn(SpawnSpec {
            name: "percore",
            cpus: &[o.proxy_cpu],
            program: &o.percore,
            args: vec!["-c".into(), config.into()],
            log: Some(&log),
            capture_stdout: false,
        })?;
        let command = proxy.command_line().to_string();
        if !self.outcome.commands.contains(&command) {
            self.outcome.commands.push(command);
        }
        crate::bulk_tcp::wait_until_accepting(&mut proxy, o.proxy_addr)
            .with_context(|| format!("log: {}", log.display()))?;
        Ok((proxy, started.elapsed()))
    }

    fn stop_proxy(&mut self, mut proxy: Spawned) -> Result<()> {
        // Still running means no reload crashed it.
        proxy.check_running()?;
        let command = proxy.command_line().to_string();
        let status = proxy.stop()?;
        if !status.success() {
            self.outcome.failures.push(format!(
                "`{command}` ended with {status} after SIGTERM (expected exit 0)"
            ));
        }
        Ok(())
    }

    fn apply_time(&mut self) -> Result<ApplyOutcome> {
        let o = self.o;
        let params = o.http_params();
        let dir = &o.results_dir;
        let texts = [false, true]
            .map(|second| configs::percore_reload_toml(&params, &o.socket, &o.shape, second));
        let (a, b) = (dir.join("large-a.toml"), dir.join("large-b.toml"));
        write(&a, &texts[0])?;
        write(&b, &texts[1])?;
        check(o, &[&a, &b])?;
        let live = dir.join("large.toml");
        install(&live, &texts[0])?;

        let (proxy, start) = self.start_proxy(&live, "apply")?;
        let pid = proxy.pid();
        std::thread::sleep(SETTLE);
        let rss_before_kib = suite::vm_rss(pid)?;
        let steal_before = steal_now(o);
        let mut samples = Vec::with_capacity(o.reloads);
        for i in 0..o.reloads {
            if crate::procs::stopping() {
                bail!("interrupted");
            }
            // The process started on A: the first reload goes to B.
            let (variant, text) = if i.is_multiple_of(2) {
                ("B", &texts[1])
            } else {
                ("A", &texts[0])
            };
            install(&live, text)?;
            let (round_trip, applied) = send_reload(&o.socket)
                .with_context(|| format!("reload {} of {}", i + 1, o.reloads))?;
            let rss_kib = suite::vm_rss(pid).ok();
            eprintln!(
                "loadtest:   reload {} ({variant}): applied in {:.1} ms, round trip {:.1} ms, RSS {} KiB",
                i + 1,
                applied.ms,
                round_trip.as_secs_f64() * 1e3,
                rss_kib.map_or("?".into(), |k| k.to_string())
            );
            samples.push(ReloadSample {
                variant,
                applied,
                round_trip_ms: round_trip.as_secs_f64() * 1e3,
                rss_kib,
                at_seconds: None,
            });
            std::thread::sleep(BETWEEN_RELOADS);
        }
        let steal = steal_since(steal_before, steal_now(o));
        std::thread::sleep(SETTLE);
        let rss_after_kib = suite::vm_rss(pid)?;
        self.stop_proxy(proxy)?;
        Ok(ApplyOutcome {
            shape_backends: o.shape.backends,
            shape_servers: o.shape.servers,
            shape_routes: o.shape.routes.min(o.shape.backends),
            config_bytes: texts[0].len() as u64,
            start_ms: start.as_secs_f64() * 1e3,
            rss_before_kib,
            rss_after_kib,
            samples,
            steal,
        })
    }

    fn latency(&mut self, kind: Kind) -> Result<LoadRun> {
        let o = self.o;
        let params = o.http_params();
        let dir = &o.results_dir;
        let (shape, size) = match kind {
            Kind::StormLarge => (o.shape, "large"),
            Kind::Baseline | Kind::Storm => (o.small_shape(), "small"),
        };
        let texts = [false, true]
            .map(|second| configs::percore_reload_toml(&params, &o.socket, &shape, second));
        let (a, b) = (
            dir.join(format!("{size}-a.toml")),
            dir.join(format!("{size}-b.toml")),
        );
        write(&a, &texts[0])?;
        write(&b, &texts[1])?;
        check(o, &[&a, &b])?;
        let live = dir.join(format!("{size}.toml"));
        install(&live, &texts[0])?;
        let label = kind.name();
        let storm = kind != Kind::Baseline;
        let (proxy, _) = self.start_proxy(&live, label)?;

        let plan = http_load::Plan {
            target: o.proxy_addr,
            connections: o.connections,
            request: http_load::get_request(
                &format!("/bytes/{}", o.small_body),
                o.proxy_addr,
                false,
            ),
            reuse: true,
            rate: Some(o.rate),
            warmup: o.warmup,
            duration: o.duration,
            sources: o.sources.clone(),
            label: format!("reload {label}"),
        };
        // The storm thread starts reloading when the window opens and stops
        // when it closes, so every reload lands in the measured window.
        let (opened_tx, opened_rx) = mpsc::channel::<Instant>();
        let done = Arc::new(AtomicBool::new(false));
        let stormer = storm.then(|| {
            let socket = o.socket.clone();
            let live = live.clone();
            let texts = texts.clone();
            let (interval, duration, done) = (o.storm_interval, o.duration, Arc::clone(&done));
            let limit = o.warmup + Duration::from_secs(30);
            std::thread::Builder::new()
                .name("reload-storm".into())
                .spawn(move || {
                    let opened = opened_rx.recv_timeout(limit).ok()?;
                    Some(storm_loop(
                        &socket, &live, &texts, opened, interval, duration, &done,
                    ))
                })
        });
        let stormer = stormer.transpose().context("starting the reload thread")?;
        let mut meter =
            Meter::on_cpus(o.proxy_cpu, o.load_cpu, Some(proxy.pid()), self.backend_pid);
        let (mut steal_before, mut steal_after) = (None, None);
        let outcome = http_load::run(&plan, &mut |mark| {
            meter.mark(mark);
            match mark {
                Mark::WindowOpens => {
                    steal_before = steal_now(o);
                    // Nobody listens in the baseline run: a failed send is fine.
                    let _ = opened_tx.send(Instant::now());
                }
                Mark::WindowCloses => steal_after = steal_now(o),
            }
        });
        done.store(true, Ordering::SeqCst);
        let (reloads, storm_failures) = match stormer {
            Some(handle) => match handle.join() {
                Ok(Some(result)) => result,
                Ok(None) => (Vec::new(), vec!["the window never opened".into()]),
                Err(_) => (Vec::new(), vec!["the reload thread panicked".into()]),
            },
            None => (Vec::new(), Vec::new()),
        };
        for failure in storm_failures {
            self.outcome.failures.push(format!("{label}: {failure}"));
        }
        let outcome = outcome?;
        let spent = meter.spent()?;
        self.stop_proxy(proxy)?;
        let mut result = suite::result_of(
            &format!("reload-{label}"),
            Target::Percore,
            o.connections,
            Some(o.rate),
            &outcome,
            spent,
        );
        result.quiet_start = self.outcome.quiet_starts.last().copied();
        eprintln!(
            "loadtest: reload {label}: {:.0} req/s, p50 {} p99 {} p99.9 {} max {}, errors {}, unanswered {}, {} reload(s)",
            result.requests_per_second,
            format_micros(result.latency.p50_us),
            format_micros(result.latency.p99_us),
            format_micros(result.latency.p999_us),
            format_micros(result.latency.max_us),
            result.errors,
            result.unanswered,
            reloads.len()
        );
        Ok(LoadRun {
            result,
            connects: outcome.connects,
            reloads,
            steal: steal_since(steal_before, steal_after),
        })
    }
}

/// One reload every `interval` from `opened + interval / 2` while the
/// window lasts, alternating the file between B and A (the proxy started
/// on A). Failed reloads are returned as messages, not raised: the load
/// run goes on and the report says what failed.
fn storm_loop(
    socket: &Path,
    live: &Path,
    texts: &[String; 2],
    opened: Instant,
    interval: Duration,
    duration: Duration,
    done: &AtomicBool,
) -> (Vec<ReloadSample>, Vec<String>) {
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    let interval = interval.max(Duration::from_millis(10));
    let end = opened + duration;
    let mut at = opened + interval / 2;
    let mut index = 0usize;
    while at < end && !done.load(Ordering::SeqCst) && !crate::procs::stopping() {
        let now = Instant::now();
        if now < at {
            std::thread::sleep((at - now).min(Duration::from_millis(50)));
            continue;
        }
        let (variant, text) = if index.is_multiple_of(2) {
            ("B", &texts[1])
        } else {
            ("A", &texts[0])
        };
        let sent = Instant::now();
        let result = install(live, text).and_then(|()| send_reload(socket));
        match result {
            Ok((round_trip, applied)) => samples.push(ReloadSample {
                variant,
                applied,
                round_trip_ms: round_trip.as_secs_f64() * 1e3,
                rss_kib: None,
                at_seconds: Some((sent - opened).as_secs_f64()),
            }),
            Err(e) => failures.push(format!("reload {}: {e:#}", index + 1)),
        }
        index += 1;
        at += interval;
    }
    (samples, failures)
}

/// (min, median, max), None when empty.
fn spread(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64, f64)> {
    let mut values: Vec<f64> = values.into_iter().collect();
    let median = crate::report::median(&mut values)?;
    // Sorted by median().
    Some((*values.first()?, median, *values.last()?))
}

fn steal_text(steal: Option<Steal>) -> String {
    steal.map_or_else(
        || "–".into(),
        |s| format!("{:.0}% / {:.0}%", s.proxy_cpu * 100.0, s.load_cpu * 100.0),
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(value: f64) -> String {
    format!("{value:.1} ms")
}

fn spread_row(w: &mut String, what: &str, values: impl IntoIterator<Item = f64>) {
    if let Some((min, median, max)) = spread(values) {
        let _ = writeln!(w, "| {what} | {} | {} | {} |", ms(min), ms(median), ms(max));
    }
}

pub fn render(o: &Options, env: &Environment, outcome: &Outcome, command: &str) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{BEGIN}");
    let _ = writeln!(w, "## Reload in place\n");
    if let Some(date) = &env.date {
        let _ = writeln!(w, "Run: {date}, {:.0} s in all.\n", outcome.elapsed_seconds);
    }
    let _ = writeln!(w, "### Machine, versions and command\n");
    let _ = writeln!(w, "- CPUs online: {} ({})", env.cpus_online, env.cpu_model);
    let _ = writeln!(w, "- Kernel: {}", env.kernel);
    let _ = writeln!(
        w,
        "- percore: {}",
        env.percore_version.as_deref().unwrap_or("binary not found")
    );
    if let Some(commit) = &env.loadtest_commit {
        let _ = writeln!(w, "- loadtest: built at {commit}");
    }
    let _ = writeln!(
        w,
        "- Load average (1/5/15 min) on this shared machine: {}",
        outcome
            .loadavg
            .iter()
            .map(|(when, avg)| format!("{avg} ({when})"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !outcome.quiet_starts.is_empty() {
        let quiet = outcome.quiet_starts.iter().filter(|q| **q).count();
        let _ = writeln!(
            w,
            "- Quiet check: {quiet} of {} proxy starts found both CPUs under {:.0}% busy \
             (waited up to {:?} each)",
            outcome.quiet_starts.len(),
            o.quiet_below * 100.0,
            o.quiet_wait
        );
    }
    let _ = writeln!(w, "\n```sh\n{command}\n```\n");
    let _ = writeln!(
        w,
        "percore alone on CPU {} (`threads = [{}]`); the client (loadtest's open-loop \
         generator, one thread), the reload client and the backend (`loadtest serve-http`) on \
         CPU {}. Processes (configs written to `{}`, regenerated by the command):\n",
        o.proxy_cpu,
        o.proxy_cpu,
        o.load_cpu,
        o.results_dir.display()
    );
    let _ = writeln!(w, "```sh\n{}\n```\n", outcome.commands.join("\n"));

    let _ = writeln!(
        w,
        "### Time to apply a reload: {} backends × {} servers\n",
        o.shape.backends, o.shape.servers
    );
    match &outcome.apply {
        Some(apply) => render_apply(w, o, apply),
        None => {
            let _ = writeln!(w, "Not measured: see the failures below.\n");
        }
    }

    let _ = writeln!(
        w,
        "### Memory with {} backends × {} servers: percore vs HAProxy\n",
        o.shape.backends, o.shape.servers
    );
    if outcome.memory.is_empty() {
        let _ = writeln!(w, "Not measured: see the failures below.\n");
    } else {
        crate::config_memory::render(w, &o.shape, &outcome.memory);
    }
    for skipped in &outcome.memory_skipped {
        let _ = writeln!(w, "- Not measured: {skipped}");
    }

    let _ = writeln!(w, "### Request latency during a reload storm\n");
    render_storm(w, o, outcome);

    if !outcome.failures.is_empty() {
        let _ = writeln!(w, "### Failures\n");
        for failure in &outcome.failures {
            let _ = writeln!(w, "- {failure}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "{END}");
    out
}

fn render_apply(w: &mut String, o: &Options, apply: &ApplyOutcome) {
    let step = (apply.shape_backends / apply.shape_routes.max(1)).max(1);
    let example = configs::reload_backend_name(step, apply.shape_backends);
    let _ = writeln!(
        w,
        "One HTTP frontend, {} `use_backend` rules on path prefixes (`use_backend {example} if \
         {{ path_beg /{example}/ }}`, one every {step} backends), {} backends of {} servers each (no health \
         checks), {:.0} KiB of TOML. {} reloads back to back ({} ms apart) through the runtime \
         API socket, the file alternating between variant A and variant B (B: one backend of {} \
         servers more, and `b0000/s0` at weight 2 instead of 1), so every reload adds or \
         removes a backend and changes a weight. No traffic. *applied in*: percore's own \
         figure (`reload N applied on C core(s) in X ms`, from re-reading the file to every \
         core switched); *round trip*: connect to the socket, write `reload\\n`, read the \
         answer to EOF (`std::os::unix::net::UnixStream`).\n",
        apply.shape_routes,
        apply.shape_backends,
        apply.shape_servers,
        apply.config_bytes as f64 / 1024.0,
        apply.samples.len(),
        BETWEEN_RELOADS.as_millis(),
        apply.shape_servers,
    );
    let _ = writeln!(w, "| measure | min | median | max |");
    let _ = writeln!(w, "|---|---:|---:|---:|");
    spread_row(
        w,
        "applied in (percore's figure)",
        apply.samples.iter().map(|s| s.applied.ms),
    );
    spread_row(
        w,
        "of which switching the cores",
        apply.samples.iter().filter_map(|s| s.applied.switched_ms),
    );
    spread_row(
        w,
        "`reload` round trip",
        apply.samples.iter().map(|s| s.round_trip_ms),
    );
    let _ = writeln!(w);
    let cores = apply
        .samples
        .first()
        .map_or_else(|| "?".into(), |s| s.applied.cores.to_string());
    let _ = writeln!(
        w,
        "- Applied on {cores} core(s); percore started on this configuration (spawn to \
         accepting, polled every 50 ms) in {}. CPU time stolen by the hypervisor during the \
         reloads (CPU {} / CPU {}): {}.",
        ms(apply.start_ms),
        o.proxy_cpu,
        o.load_cpu,
        steal_text(apply.steal)
    );
    let _ = writeln!(
        w,
        "- percore RSS: {} before the reloads ({} after start), {} after the {} reloads \
         ({} after the last), {:+.1} MiB.\n",
        mib(apply.rss_before_kib),
        ms(SETTLE.as_secs_f64() * 1e3),
        mib(apply.rss_after_kib),
        apply.samples.len(),
        ms(SETTLE.as_secs_f64() * 1e3),
        (apply.rss_after_kib as f64 - apply.rss_before_kib as f64) / 1024.0
    );
    let _ = writeln!(
        w,
        "| reload | to variant | applied in | round trip | RSS after |"
    );
    let _ = writeln!(w, "|---:|---|---:|---:|---:|");
    for (i, s) in apply.samples.iter().enumerate() {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            s.variant,
            ms(s.applied.ms),
            ms(s.round_trip_ms),
            s.rss_kib.map_or_else(|| "–".into(), mib)
        );
    }
    let _ = writeln!(w);
}

fn render_storm(w: &mut String, o: &Options, outcome: &Outcome) {
    let shape = o.small_shape();
    let _ = writeln!(
        w,
        "{} requests/s (open loop, `GET /bytes/{}`, latency from each request's intended send \
         time, as the `latency` scenario) spread over {} keep-alive connections, {:?} warm-up \
         then a {:?} window, each run on a fresh percore. *baseline*: a small configuration \
         ({} backend of {} servers, {} route), no reload. *storm*: the same, and one `reload` \
         every {:?} during the window, the file alternating between that configuration and a \
         variant with one backend more and a server's weight changed. *storm, large*: percore \
         started on the {} backends × {} servers configuration above (requests go to its \
         first backend), one reload of it every {:?} (variants A and B in turn). Same rate, \
         connections and window in all three. *failed*: errors (refused or reset \
         connections, non-200 answers, responses cut short) plus requests still unanswered \
         3 s after the window; *connects*: connections the client had to open again in the \
         window (a keep-alive connection the proxy closed); *steal*: share of the window the \
         hypervisor ran another guest on the proxy's and the load's vCPU (this is a shared \
         virtual machine: a tail measured under steal is partly the host's).\n",
        o.rate,
        o.small_body,
        o.connections,
        o.warmup,
        o.duration,
        shape.backends,
        shape.servers,
        shape.routes,
        o.storm_interval,
        o.shape.backends,
        o.shape.servers,
        o.storm_interval,
    );
    let _ = writeln!(
        w,
        "| run | reloads | achieved req/s | p50 | p90 | p99 | p99.9 | max | proxy CPU/req | failed | connects | steal CPU {} / CPU {} |",
        o.proxy_cpu, o.load_cpu
    );
    let _ = writeln!(
        w,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let runs = [
        ("baseline", &outcome.baseline),
        ("storm", &outcome.storm),
        ("storm, large", &outcome.storm_large),
    ];
    for (name, run) in runs {
        let Some(run) = run else {
            let _ = writeln!(w, "| {name} | – | not measured | | | | | | | | | |");
            continue;
        };
        let r = &run.result;
        let _ = writeln!(
            w,
            "| {name} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run.reloads.len(),
            r.requests_per_second,
            format_micros(r.latency.p50_us),
            format_micros(r.latency.p90_us),
            format_micros(r.latency.p99_us),
            format_micros(r.latency.p999_us),
            format_micros(r.latency.max_us),
            r.proxy_us_per_request()
                .map_or_else(|| "–".into(), |us| format!("{us:.1} µs")),
            r.errors + r.unanswered,
            run.connects,
            steal_text(run.steal)
        );
    }
    let _ = writeln!(w);
    let failed = |r: &RunResult| r.errors + r.unanswered;
    let measured: Vec<(&str, &LoadRun)> = runs
        .iter()
        .filter_map(|(name, run)| run.as_ref().map(|run| (*name, run)))
        .collect();
    let total_failed: u64 = measured.iter().map(|(_, run)| failed(&run.result)).sum();
    let _ = writeln!(
        w,
        "- Failed requests: {}{}.",
        measured
            .iter()
            .map(|(name, run)| format!("{} ({name})", failed(&run.result)))
            .collect::<Vec<_>>()
            .join(", "),
        if total_failed == 0 {
            ""
        } else {
            " — **not 0**"
        }
    );
    if let Some(base) = &outcome.baseline {
        for (name, run) in [
            ("storm", &outcome.storm),
            ("storm, large", &outcome.storm_large),
        ] {
            if let Some(run) = run {
                let ratio =
                    run.result.latency.p99_us as f64 / base.result.latency.p99_us.max(1) as f64;
                let _ = writeln!(w, "- p99 {name} / baseline: **{ratio:.2}×**.");
            }
        }
    }
    for (name, run) in &measured {
        if !run.result.first_errors.is_empty() {
            let _ = writeln!(
                w,
                "- First errors ({name}): {}",
                run.result.first_errors.join(" / ")
            );
        }
        if let Some((min, median, max)) = spread(run.reloads.iter().map(|s| s.applied.ms)) {
            let switched = spread(run.reloads.iter().filter_map(|s| s.applied.switched_ms))
                .map_or_else(String::new, |(a, b, c)| {
                    format!(" (switching the core: {} / {} / {})", ms(a), ms(b), ms(c))
                });
            let _ = writeln!(
                w,
                "- Reloads of the {name} run: applied in {} / {} / {}{switched} (min / median / \
                 max), round trip {}.",
                ms(min),
                ms(median),
                ms(max),
                spread(run.reloads.iter().map(|s| s.round_trip_ms)).map_or_else(
                    String::new,
                    |(a, b, c)| format!("{} / {} / {}", ms(a), ms(b), ms(c))
                )
            );
        }
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_gives_the_applied_figure() {
        let answer = "Success=1\n--\nfrontends modified: web\nbackends added: b1000\n\
                      reload 3 applied on 2 core(s) in 6.1 ms\n";
        assert_eq!(
            parse_answer(answer).unwrap(),
            Applied {
                generation: 3,
                cores: 2,
                ms: 6.1,
                switched_ms: None,
            }
        );
        let unchanged = "Success=1\n--\nreload 12 applied on 1 core(s) in 0.4 ms \
                         (no frontend, backend or server changed)\n";
        assert_eq!(parse_answer(unchanged).unwrap().generation, 12);
        assert_eq!(
            parse_applied_line("[NOTICE] reload 4 applied on 1 core(s) in 163.5 ms"),
            Some(Applied {
                generation: 4,
                cores: 1,
                ms: 163.5,
                switched_ms: None,
            })
        );
    }

    #[test]
    fn a_refused_or_odd_answer_is_an_error() {
        let refused = "Success=0\n--\nx.toml:3:1: bad\nreload refused: configuration x.toml \
                       is invalid; still serving the running one\n";
        let e = parse_answer(refused).unwrap_err();
        assert!(format!("{e}").contains("not applied"), "{e}");
        assert!(parse_answer("Success=1\n--\n").is_err());
        assert!(parse_answer("").is_err());
        assert!(parse_answer("Unknown command.\n").is_err());
    }

    fn options() -> Options {
        Options {
            percore: PathBuf::from("target/release/percore"),
            haproxy: PathBuf::from("haproxy"),
            proxy_cpu: 1,
            load_cpu: 0,
            proxy_addr: "127.0.0.1:24021".parse().unwrap(),
            backend_addr: "127.0.0.1:24023".parse().unwrap(),
            ws_backend_addr: "127.0.0.1:24024".parse().unwrap(),
            shape: ReloadShape {
                backends: 1000,
                servers: 10,
                routes: 100,
            },
            reloads: 2,
            rate: 10_000.0,
            connections: 64,
            small_body: 100,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            storm_interval: Duration::from_secs(1),
            sources: vec![Ipv4Addr::new(127, 0, 0, 2)],
            results_dir: PathBuf::from("target/loadtest/reload"),
            log_dir: PathBuf::from("target/loadtest/logs"),
            socket: PathBuf::from("/tmp/x.sock"),
            quiet_wait: Duration::ZERO,
            quiet_below: 0.1,
        }
    }

    fn sample(ms: f64) -> ReloadSample {
        ReloadSample {
            variant: "B",
            applied: Applied {
                generation: 1,
                cores: 1,
                ms,
                switched_ms: Some(ms / 4.0),
            },
            round_trip_ms: ms + 0.5,
            rss_kib: Some(200 * 1024),
            at_seconds: None,
        }
    }

    fn load_run(p99_us: u64, errors: u64, reloads: Vec<ReloadSample>) -> LoadRun {
        let mut result = suite::result_of(
            "reload-x",
            Target::Percore,
            64,
            Some(10_000.0),
            &http_load::Outcome::default(),
            Default::default(),
        );
        result.latency.p99_us = p99_us;
        result.errors = errors;
        LoadRun {
            result,
            connects: 0,
            reloads,
            steal: Some(Steal {
                proxy_cpu: 0.07,
                load_cpu: 0.13,
            }),
        }
    }

    #[test]
    fn the_section_has_both_measurements_between_its_markers() {
        let outcome = Outcome {
            apply: Some(ApplyOutcome {
                shape_backends: 1000,
                shape_servers: 10,
                shape_routes: 100,
                config_bytes: 500 * 1024,
                start_ms: 350.0,
                rss_before_kib: 100 * 1024,
                rss_after_kib: 250 * 1024,
                samples: vec![sample(300.0), sample(100.0)],
                steal: None,
            }),
            baseline: Some(load_run(2_000, 0, vec![])),
            storm: Some(load_run(3_000, 0, vec![sample(2.0)])),
            storm_large: Some(load_run(400_000, 1, vec![sample(390.0)])),
            ..Outcome::default()
        };
        let env = Environment::detect_for(Path::new("/nonexistent"), Path::new("/nonexistent"));
        let text = render(&options(), &env, &outcome, "cargo run -- reload");
        assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
        assert!(text.contains("| applied in (percore's figure) | 100.0 ms | 200.0 ms | 300.0 ms |"));
        assert!(text.contains("| `reload` round trip | 100.5 ms | 200.5 ms | 300.5 ms |"));
        assert!(text.contains("100.0 MiB before the reloads"));
        assert!(text.contains("250.0 MiB after the 2 reloads"));
        assert!(text.contains("p99 storm / baseline: **1.50×**"));
        assert!(text.contains("p99 storm, large / baseline: **200.00×**"));
        assert!(text.contains("0 (baseline), 0 (storm), 1 (storm, large) — **not 0**"));
        assert!(text.contains("| 7% / 13% |"));
        let doc = format!("# B\n\n{text}\nhand-written\n");
        let again = crate::report::splice_between(&doc, BEGIN, END, &text);
        assert_eq!(again, doc);
    }

    #[test]
    fn spread_is_min_median_max() {
        assert_eq!(spread([3.0, 1.0, 2.0]), Some((1.0, 2.0, 3.0)));
        assert_eq!(spread([4.0, 1.0]), Some((1.0, 2.5, 4.0)));
        assert_eq!(spread(std::iter::empty()), None);
    }

    #[test]
    fn reload_talks_to_a_unix_socket_and_reads_to_eof() {
        let dir = std::env::temp_dir().join(format!("loadtest-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut line = [0u8; 7];
            stream.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"reload\n");
            stream
                .write_all(
                    b"Success=1\n--\nreload 2 applied on 1 core(s) in 1.5 ms (file read and \
                      compared in 1.0 ms, cores prepared in 0.2 ms, switched in 0.3 ms)\n",
                )
                .unwrap();
        });
        let (round_trip, applied) = send_reload(&path).unwrap();
        server.join().unwrap();
        assert_eq!(applied.ms, 1.5);
        assert_eq!(applied.switched_ms, Some(0.3));
        assert!(round_trip < RELOAD_LIMIT);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn install_replaces_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("loadtest-install-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let live = dir.join("live.toml");
        install(&live, "a = 1\n").unwrap();
        install(&live, "b = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&live).unwrap(), "b = 2\n");
        assert!(!live.with_extension("toml.next").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
