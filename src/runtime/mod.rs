//! Executors, CPU placement, signals and process lifecycle.
//!
//! The main thread resolves CPUs, checks the descriptor budget, starts one
//! pinned glommio executor per CPU, waits until every core has bound its
//! listeners (or one failed), drops privileges ([`privileges`]), lets the
//! cores accept, tells systemd ([`crate::notify`]), then waits for them to stop.
//! Signals reach the cores through per-core control pipes (see
//! [`signals`]).

pub mod core;
pub mod cpus;
pub mod handover;
pub mod limits;
pub mod pidfile;
pub mod privileges;
/// Listener binding moved to `net`; kept under its old path too.
pub use crate::net::listener;
mod observe;
pub(crate) mod parking;
#[cfg(test)]
mod sessions_tests;
pub mod signals;
mod trim;

use crate::config::Config;
use crate::stats::CoreStats;
use glommio::{LocalExecutorBuilder, Placement};
use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;
use thiserror::Error;

pub use self::core::CoreReport;

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Cpus(#[from] cpus::CpuError),
    #[error(transparent)]
    FdLimit(#[from] limits::FdLimitError),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot set up signal handling: {0}")]
    Signals(std::io::Error),
    #[error("cannot start the executor for CPU {cpu}: {reason}")]
    Executor { cpu: usize, reason: String },
    #[error("{0}")]
    Bind(String),
    #[error(transparent)]
    Log(#[from] crate::log::LogStartError),
}

/// How a run ended.
#[derive(Debug)]
pub struct RunSummary {
    pub cores: Vec<CoreReport>,
}

impl RunSummary {
    pub fn total(&self) -> CoreStats {
        let mut iter = self.cores.iter();
        let mut total = iter.next().map(|c| c.stats.clone()).unwrap_or_default();
        for c in iter {
            total.merge(&c.stats);
        }
        total
    }
}

/// glommio allocates `io_memory` for file DMA only; a proxy never does file
/// DMA, so keep it small (its default is 10 MiB per executor).
const IO_MEMORY: usize = 512 << 10;

pub fn run(
    config: Config,
    takeover: handover::Takeover,
    plan: privileges::Plan,
) -> Result<RunSummary, StartError> {
    let allowed = crate::config::cpus::available_cpus();
    let cpu_list = cpus::resolve(&config.global.threads, &allowed)?;
    let count = cpu_list.len();
    let listeners: u64 = config.frontends.iter().map(|f| f.binds.len() as u64).sum();
    let needed = limits::fds_needed(
        config.global.maxconn,
        (config.global.tune.maxpipes * count) as u64,
        listeners * count as u64,
    );
    match limits::ensure_fd_limit(config.global.maxconn, needed) {
        Ok(_) => {}
        Err(short) if !config.global.strict_limits => {
            let got = limits::fit_fd_limit(needed);
            eprintln!(
                "[WARNING] {short}; strict-limits = false: running with {got} file descriptors, \
                 accepts pause when they run out"
            );
        }
        Err(short) => return Err(short.into()),
    }

    let clock = crate::log::Clock::local();
    let logs_needed =
        config.frontends.iter().any(|f| f.log.enabled) && !config.global.log.is_empty();
    let log_writer = if logs_needed {
        Some(crate::log::LogWriter::start(
            &config.global.log,
            count,
            clock,
        )?)
    } else {
        None
    };
    // Bound here, before any core starts, so that a bad path stops the
    // start with one clear line; core 0 serves them.
    let mut admin_sockets = Vec::with_capacity(config.global.stats_sockets.len());
    for socket in &config.global.stats_sockets {
        match crate::admin::cli::bind(socket, takeover.replace_sockets) {
            Ok(bound) => admin_sockets.push(bound),
            Err(line) => {
                crate::admin::cli::unlink(
                    &admin_sockets
                        .iter()
                        .map(|s| s.path.clone())
                        .collect::<Vec<_>>(),
                );
                return Err(StartError::Bind(line));
            }
        }
    }
    let socket_paths: Vec<std::path::PathBuf> =
        admin_sockets.iter().map(|s| s.path.clone()).collect();
    let mut admin_sockets = Some(admin_sockets);
    let reloads = signals::reload_pipe().map_err(StartError::Signals)?;
    let mut reload_signals = Some(reloads.read);
    let stats_mesh = crate::admin::mesh(count);
    let stick_mesh = crate::stick::mesh(count);
    let started = std::time::Instant::now();

    let config = Arc::new(config);
    let listeners = Arc::new(listener::ListenerRegistry::default());
    let mut inherited = handover::inherit(takeover.inherited, &config, count).into_iter();
    let (ready_tx, ready_rx) = mpsc::channel();
    let plan = Arc::new(plan);
    let mut gos = Vec::with_capacity(count);
    let mut controls = Vec::with_capacity(count);
    let mut handles = Vec::with_capacity(count);
    let mut health_links = crate::health::mesh(count).into_iter();
    for (index, &cpu) in cpu_list.iter().enumerate() {
        let pipe = signals::control_pipe().map_err(StartError::Signals)?;
        controls.push(pipe.write);
        let (go_read, go_write) =
            std::os::unix::net::UnixStream::pair().map_err(StartError::Signals)?;
        gos.push(go_write);
        let start = core::CoreStart {
            index,
            cpu,
            count,
            config: Arc::clone(&config),
            control: pipe.read,
            ready: ready_tx.clone(),
            go: go_read.into(),
            privileges: Arc::clone(&plan),
            health: health_links.next(),
            stick: stick_mesh.clone(),
            inherited: inherited.next().unwrap_or_default(),
            listeners: Arc::clone(&listeners),
            observe: crate::admin::ObserveStart {
                listeners: Arc::clone(&listeners),
                mesh: stats_mesh.clone(),
                log: log_writer.as_ref().map(crate::log::LogWriter::sender),
                clock,
                started,
                admin_sockets: if index == 0 {
                    admin_sockets.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
                reload_signals: if index == 0 {
                    reload_signals.take()
                } else {
                    None
                },
            },
        };
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("percore-{index}"))
            .io_memory(IO_MEMORY)
            .spawn(move || core::run_core(start))
            .map_err(|e| StartError::Executor {
                cpu,
                reason: e.to_string(),
            })?;
        handles.push(handle);
    }
    drop(ready_tx);
    drop(stats_mesh);
    drop(stick_mesh);

    // Every core has bound its listeners and read its files, and waits.
    let mut failure = wait_ready(&ready_rx, count);
    if failure.is_none() {
        failure = go(&plan, &mut gos, &ready_rx, count, &socket_paths);
    }
    // Cores still waiting for the word to go see the channel close: they
    // stop without having accepted anything.
    drop(gos);
    if let Some(line) = &failure {
        // Two bytes: soft then hard stop, so cores that did start exit now.
        for mut c in &controls {
            let _ = c.write_all(&[1, 1]);
        }
        crate::notify::failed(line);
    } else {
        let addrs: Vec<String> = config
            .frontends
            .iter()
            .flat_map(|f| f.binds.iter().map(move |a| format!("{}={a}", f.name)))
            .collect();
        eprintln!(
            "[NOTICE] percore {} started: {count} core(s) on CPU(s) {cpu_list:?}; listening {}",
            env!("CARGO_PKG_VERSION"),
            addrs.join(" ")
        );
        if !plan.drops() {
            crate::admin::cli::publish(&socket_paths);
        }
        crate::notify::ready(&format!(
            "serving on {count} core(s); listening {}",
            addrs.join(" ")
        ));
        if let Some(after_start) = takeover.after_start {
            after_start();
        }
    }

    let mut cores = Vec::with_capacity(count);
    for (handle, &cpu) in handles.into_iter().zip(&cpu_list) {
        match handle.join() {
            Ok(report) => cores.push(report),
            Err(e) => {
                failure.get_or_insert_with(|| format!("executor on CPU {cpu} failed: {e}"));
            }
        }
    }
    drop(controls);
    drop(reloads.write);
    crate::admin::cli::unlink(&socket_paths);
    if let Some(writer) = log_writer {
        writer.finish();
    }
    if let Some(line) = failure {
        return Err(StartError::Bind(line));
    }
    Ok(RunSummary { cores })
}

/// Waits for one start-up report from each of `count` cores; the first
/// failure's line, if any.
fn wait_ready(ready: &mpsc::Receiver<Result<(), String>>, count: usize) -> Option<String> {
    let mut failure = None;
    for _ in 0..count {
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(line)) => {
                failure.get_or_insert(line);
            }
            Err(_) => {
                failure.get_or_insert_with(|| "an executor died during start-up".into());
                break;
            }
        }
    }
    failure
}

/// Every core is ready: drop privileges, tell the cores to go, and wait
/// for each to confirm its thread's ids. The runtime API socket files are
/// moved into place first when privileges are dropped (that needs the
/// starting user's rights on their directory); else after the start, as
/// before.
fn go(
    plan: &privileges::Plan,
    gos: &mut [std::os::unix::net::UnixStream],
    ready: &mpsc::Receiver<Result<(), String>>,
    count: usize,
    socket_paths: &[std::path::PathBuf],
) -> Option<String> {
    if plan.drops() {
        crate::admin::cli::publish(socket_paths);
        if let Err(line) = privileges::apply(plan) {
            return Some(line);
        }
        if let Some(switch) = &plan.switch {
            let kept: Vec<&str> = crate::config::CAPABILITIES
                .iter()
                .filter(|(_, cap)| plan.keep.contains(cap))
                .map(|(name, _)| *name)
                .collect();
            eprintln!(
                "[NOTICE] running as user {} (uid {}), group {} (gid {}){}{}",
                switch.user,
                switch.uid,
                switch.group,
                switch.gid,
                plan.chroot
                    .as_ref()
                    .map(|d| format!(", chroot {}", d.display()))
                    .unwrap_or_default(),
                if kept.is_empty() {
                    String::new()
                } else {
                    format!(", keeping {}", kept.join(","))
                }
            );
        }
    }
    for go in gos.iter_mut() {
        if go.write_all(&[1]).is_err() {
            return Some("a core stopped during start-up".into());
        }
    }
    wait_ready(ready, count)
}
