//! The bulk-TCP scenario: the same byte count pushed through each proxy
//! variant in turn (and directly, as the ceiling), upload and download as
//! separate runs, for several alternating rounds. Per run it records wall
//! time, the proxy's CPU time and the load side's CPU time.

use crate::client::{self, Direction, Transfer};
use crate::configs::{self, ProxyParams, Timeouts};
use crate::cpustat;
use crate::procs::{SpawnSpec, Spawned};
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    PercoreSplice,
    PercoreCopy,
    Haproxy,
    HaproxyNosplice,
    Direct,
}

impl Variant {
    pub const ALL: [Variant; 5] = [
        Variant::PercoreSplice,
        Variant::PercoreCopy,
        Variant::Haproxy,
        Variant::HaproxyNosplice,
        Variant::Direct,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::PercoreSplice => "percore-splice",
            Variant::PercoreCopy => "percore-copy",
            Variant::Haproxy => "haproxy",
            Variant::HaproxyNosplice => "haproxy-nosplice",
            Variant::Direct => "direct",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Variant::PercoreSplice => "percore, `tune.splice = true`",
            Variant::PercoreCopy => "percore, `tune.splice = false` (copy path)",
            Variant::Haproxy => "HAProxy `mode tcp`, `option splice-auto`",
            Variant::HaproxyNosplice => "HAProxy `mode tcp`, `nosplice` (copy path)",
            Variant::Direct => "no proxy: client straight to backend",
        }
    }

    pub fn parse(text: &str) -> Result<Variant> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == text)
            .with_context(|| {
                let names: Vec<_> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown variant {text:?}; one of {}", names.join(", "))
            })
    }

    fn splice(self) -> bool {
        matches!(self, Variant::PercoreSplice | Variant::Haproxy)
    }

    /// The config file this variant runs with, relative to the config dir.
    pub fn config_file(self) -> Option<&'static str> {
        match self {
            Variant::PercoreSplice => Some("percore-splice.toml"),
            Variant::PercoreCopy => Some("percore-copy.toml"),
            Variant::Haproxy => Some("haproxy.cfg"),
            Variant::HaproxyNosplice => Some("haproxy-nosplice.cfg"),
            Variant::Direct => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub bytes: u64,
    pub streams: usize,
    pub rounds: usize,
    pub variants: Vec<Variant>,
    pub percore: PathBuf,
    pub haproxy: PathBuf,
    pub proxy_cpu: usize,
    pub load_cpu: usize,
    pub proxy_addr: SocketAddr,
    pub backend_addr: SocketAddr,
    pub time_limit: Duration,
    pub bufsize: usize,
    pub pipesize: usize,
    pub maxconn: u32,
    pub config_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Before each proxy start, wait at most this long for both cores to
    /// be quiet (zero disables).
    pub quiet_wait: Duration,
    /// "Quiet" means every core busy below this fraction over 1 s.
    pub quiet_below: f64,
}

/// One completed run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub transfer: Transfer,
    /// None for the direct row (no proxy).
    pub proxy_cpu: Option<Duration>,
    /// Client process plus backend process.
    pub load_cpu: Duration,
    /// How busy the proxy's core was, counting every process on it.
    pub proxy_core_busy: f64,
    /// How busy the load side's core was (client + backend + their
    /// softirq work, + anyone else): near 100% means the load side, not the
    /// proxy, limited the run.
    pub load_core_busy: f64,
    /// Busy time of the proxy's core: the proxy plus the softirq network
    /// work it triggers there, which tick accounting charges to no process
    /// (plus anything else that ran on that core).
    pub proxy_core_time: Duration,
    /// Whether the cores were quiet just before the run (None: not checked).
    pub quiet: Option<bool>,
    pub round: usize,
}

#[derive(Debug, Clone)]
pub struct Row {
    pub variant: Variant,
    pub direction: Direction,
    pub samples: Vec<Sample>,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub rows: Vec<Row>,
    /// Variants that did not run at all, with why and how to fix it.
    pub skipped: Vec<(Variant, String)>,
    /// Exact command per variant that ran (proxy side), for the report.
    pub proxy_commands: Vec<(Variant, String)>,
    pub backend_command: String,
    /// Warnings such as a proxy exiting non-zero on SIGTERM.
    pub warnings: Vec<String>,
    /// /proc/loadavg before and after: other work on a shared machine
    /// shows up here.
    pub loadavg_before: String,
    pub loadavg_after: String,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

pub fn proxy_params(o: &Options, splice: bool) -> ProxyParams {
    ProxyParams {
        cpu: o.proxy_cpu,
        listen: o.proxy_addr,
        server: o.backend_addr,
        maxconn: o.maxconn,
        bufsize: o.bufsize,
        pipesize: o.pipesize,
        splice,
        timeouts: Timeouts::default(),
    }
}

/// Writes every proxy config into `o.config_dir`.
pub fn write_configs(o: &Options) -> Result<()> {
    std::fs::create_dir_all(&o.config_dir)
        .with_context(|| format!("creating {}", o.config_dir.display()))?;
    for variant in Variant::ALL {
        let Some(file) = variant.config_file() else {
            continue;
        };
        let params = proxy_params(o, variant.splice());
        let text = match variant {
            Variant::PercoreSplice | Variant::PercoreCopy => configs::percore_toml(&params),
            _ => configs::haproxy_cfg(&params),
        };
        let path = o.config_dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Why a variant cannot run here, if it cannot.
fn unavailable(o: &Options, variant: Variant) -> Option<String> {
    match variant {
        Variant::PercoreSplice | Variant::PercoreCopy if !o.percore.is_file() => Some(format!(
            "percore binary not found at `{}`: build it with `cargo build --release` \
             or pass `--percore PATH`",
            o.percore.display()
        )),
        Variant::Haproxy | Variant::HaproxyNosplice if resolve(&o.haproxy).is_none() => {
            Some(format!(
                "`{}` not found: install it with `apt-get update && apt-get install -y haproxy` \
                 or pass `--haproxy PATH`",
                o.haproxy.display()
            ))
        }
        _ => None,
    }
}

/// percore's own verdict on the generated config (`percore --check`), so a
/// contract mismatch is reported as such rather than as a failed start.
fn rejected_config(o: &Options, variant: Variant) -> Option<String> {
    if !matches!(variant, Variant::PercoreSplice | Variant::PercoreCopy) {
        return None;
    }
    let config = o.config_dir.join(variant.config_file()?);
    // Under the same pinning as the real run: percore validates `threads`
    // against its affinity mask, and ours is the load CPU by now.
    let mut command = std::process::Command::new("taskset");
    command
        .arg("-c")
        .arg(o.proxy_cpu.to_string())
        .arg(&o.percore)
        .arg("--check")
        .arg("-c")
        .arg(&config);
    match crate::procs::output_within(&mut command, Duration::from_secs(10)) {
        Ok(out) if out.status.success() => None,
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first: Vec<&str> = stderr.lines().take(5).collect();
            Some(format!(
                "`{} --check -c {}` rejected the generated config ({}): {}",
                o.percore.display(),
                config.display(),
                out.status,
                first.join(" / ")
            ))
        }
        Err(e) => Some(format!("{e:#}")),
    }
}

/// A bare program name is looked up in PATH; a path is taken as is.
pub fn resolve(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        program.is_file().then(|| program.to_path_buf())
    } else {
        crate::procs::which(&program.to_string_lossy())
    }
}

fn proxy_spec_args(o: &Options, variant: Variant) -> Result<(PathBuf, Vec<OsString>)> {
    let config = o
        .config_dir
        .join(variant.config_file().context("direct has no proxy")?);
    Ok(match variant {
        Variant::PercoreSplice | Variant::PercoreCopy => {
            (o.percore.clone(), vec!["-c".into(), config.into()])
        }
        _ => (
            resolve(&o.haproxy).context("haproxy not found")?,
            // -db: stay in the foreground, so SIGTERM reaches the proxy itself.
            vec!["-db".into(), "-f".into(), config.into()],
        ),
    })
}

fn ensure_port_free(addr: SocketAddr, flag: &str) -> Result<()> {
    TcpListener::bind(addr)
        .map(drop)
        .with_context(|| format!("{addr} is in use; choose another with {flag}"))
}

pub fn wait_until_accepting(proxy: &mut Spawned, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proxy.check_running()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not accept on {addr} within {READY_TIMEOUT:?}",
                proxy.command_line()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_backend(o: &Options) -> Result<Spawned> {
    let exe = std::env::current_exe().context("locating the loadtest binary")?;
    let mut backend = Spawned::spawn(SpawnSpec {
        name: "backend",
        cpus: &[o.load_cpu],
        program: &exe,
        args: vec![
            "serve".into(),
            "--listen".into(),
            o.backend_addr.to_string().into(),
        ],
        log: None,
        capture_stdout: true,
    })?;
    backend.wait_listening()?;
    Ok(backend)
}

pub fn run(o: &Options) -> Result<Outcome> {
    if o.proxy_cpu == o.load_cpu {
        eprintln!(
            "loadtest: warning: proxy and load share CPU {}",
            o.proxy_cpu
        );
    }
    if crate::procs::which("taskset").is_none() {
        bail!("taskset not found (Debian package util-linux)");
    }
    ensure_port_free(o.proxy_addr, "--proxy-port")?;
    write_configs(o)?;
    std::fs::create_dir_all(&o.log_dir)
        .with_context(|| format!("creating {}", o.log_dir.display()))?;

    let mut outcome = Outcome {
        rows: Vec::new(),
        skipped: Vec::new(),
        proxy_commands: Vec::new(),
        backend_command: String::new(),
        warnings: Vec::new(),
        loadavg_before: loadavg(),
        loadavg_after: String::new(),
    };
    let mut runnable = Vec::new();
    for &variant in &o.variants {
        match unavailable(o, variant).or_else(|| rejected_config(o, variant)) {
            Some(reason) => {
                eprintln!("loadtest: skipping {}: {reason}", variant.name());
                outcome.skipped.push((variant, reason));
            }
            None => runnable.push(variant),
        }
    }
    for &variant in &runnable {
        for direction in [Direction::Upload, Direction::Download] {
            outcome.rows.push(Row {
                variant,
                direction,
                samples: Vec::new(),
                failures: Vec::new(),
            });
        }
    }

    let backend = start_backend(o)?;
    outcome.backend_command = backend.command_line().to_string();

    for round in 1..=o.rounds {
        for &variant in &runnable {
            if crate::procs::stopping() {
                bail!("interrupted");
            }
            let quiet = if o.quiet_wait.is_zero() {
                None
            } else {
                Some(cpustat::wait_for_quiet(
                    &[o.load_cpu, o.proxy_cpu],
                    o.quiet_below,
                    Duration::from_secs(1),
                    o.quiet_wait,
                )?)
            };
            if quiet == Some(false) {
                eprintln!(
                    "loadtest: CPUs {} and {} not quiet after {:?}; running anyway",
                    o.load_cpu, o.proxy_cpu, o.quiet_wait
                );
            }
            let mut proxy = None;
            let target = if variant == Variant::Direct {
                o.backend_addr
            } else {
                let (program, args) = proxy_spec_args(o, variant)?;
                let log = o
                    .log_dir
                    .join(format!("{}-round{round}.log", variant.name()));
                let mut spawned = Spawned::spawn(SpawnSpec {
                    name: variant.name(),
                    cpus: &[o.proxy_cpu],
                    program: &program,
                    args,
                    log: Some(&log),
                    capture_stdout: false,
                })?;
                if !outcome.proxy_commands.iter().any(|(v, _)| *v == variant) {
                    outcome
                        .proxy_commands
                        .push((variant, spawned.command_line().to_string()));
                }
                if let Err(e) = wait_until_accepting(&mut spawned, o.proxy_addr) {
                    let message = format!("{e:#} (log: {})", log.display());
                    eprintln!("loadtest: round {round} {}: {message}", variant.name());
                    for row in outcome.rows.iter_mut().filter(|r| r.variant == variant) {
                        row.failures.push(message.clone());
                    }
                    continue;
                }
                proxy = Some(spawned);
                o.proxy_addr
            };

            for row in outcome.rows.iter_mut().filter(|r| r.variant == variant) {
                let result = measure(o, target, row.direction, proxy.as_ref(), &backend, quiet);
                match result {
                    Ok(mut sample) => {
                        sample.round = round;
                        eprintln!(
                            "loadtest: round {round}/{} {:<16} {:<9} {:6.3} GiB/s  proxy CPU {}  core {:.0}% busy",
                            o.rounds,
                            variant.name(),
                            format!("{:?}", row.direction).to_lowercase(),
                            sample.transfer.gib_per_second(),
                            sample
                                .proxy_cpu
                                .map(|c| format!("{:.3} s", c.as_secs_f64()))
                                .unwrap_or_else(|| "-".into()),
                            sample.proxy_core_busy * 100.0,
                        );
                        row.samples.push(sample);
                    }
                    Err(e) => {
                        eprintln!(
                            "loadtest: round {round} {} {:?}: {e:#}",
                            variant.name(),
                            row.direction
                        );
                        row.failures.push(format!("{e:#}"));
                    }
                }
            }

            if let Some(proxy) = proxy {
                let command = proxy.command_line().to_string();
                let status = proxy.stop()?;
                // percore's contract is exit 0 on SIGTERM; HAProxy -db exits
                // 0 or 143 depending on version, which is not ours to judge.
                let is_percore = matches!(variant, Variant::PercoreSplice | Variant::PercoreCopy);
                if is_percore && !status.success() {
                    outcome.warnings.push(format!(
                        "round {round}: `{command}` ended with {status} after SIGTERM (expected exit 0)"
                    ));
                }
            }
        }
    }
    drop(backend);
    outcome.loadavg_after = loadavg();
    Ok(outcome)
}

fn measure(
    o: &Options,
    target: SocketAddr,
    direction: Direction,
    proxy: Option<&Spawned>,
    backend: &Spawned,
    quiet: Option<bool>,
) -> Result<Sample> {
    let proxy_before = proxy.map(|p| cpustat::read_pid(p.pid())).transpose()?;
    let client_before = cpustat::read_self()?;
    let backend_before = cpustat::read_pid(backend.pid())?;
    let core_before = cpustat::read_core(o.proxy_cpu)?;
    let load_core_before = cpustat::read_core(o.load_cpu)?;

    let transfer = client::transfer(target, direction, o.bytes, o.streams, o.time_limit)?;

    let proxy_cpu = match (proxy, proxy_before) {
        (Some(p), Some(before)) => Some(cpustat::read_pid(p.pid())?.since(before)),
        _ => None,
    };
    let load_cpu = cpustat::read_self()?.since(client_before)
        + cpustat::read_pid(backend.pid())?.since(backend_before);
    let core_after = cpustat::read_core(o.proxy_cpu)?;
    Ok(Sample {
        transfer,
        proxy_cpu,
        load_cpu,
        proxy_core_busy: core_after.busy_since(core_before),
        load_core_busy: cpustat::read_core(o.load_cpu)?.busy_since(load_core_before),
        proxy_core_time: core_after.busy_time_since(core_before),
        quiet,
        round: 0,
    })
}
