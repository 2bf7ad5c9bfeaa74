//! The `percore` command: parse arguments, load the config, run.

use clap::Parser;
use mimalloc::MiMalloc;
use percore::runtime::handover::{self, PreviousStop, Takeover};
use percore::runtime::listener::Inherited;
use percore::runtime::pidfile::Pidfile;
use percore::runtime::privileges::Plan;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// A thread-per-core io_uring L4/L7 load-balancing proxy.
#[derive(Parser, Debug)]
#[command(name = "percore", version, about)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short = 'c', long = "config", default_value = "config.toml")]
    config: PathBuf,
    /// Validate the configuration, print every error, and exit (0 = valid).
    #[arg(long)]
    check: bool,
    /// Binary upgrade: take the listening sockets over from the running
    /// process through its runtime API socket (an admin-level
    /// `stats-socket`) before starting, as HAProxy's -x.
    #[arg(short = 'x', value_name = "SOCKET")]
    take_over: Option<PathBuf>,
    /// Once started, tell these processes to finish their connections and
    /// exit (SIGUSR1), as HAProxy's -sf (also accepted with one dash).
    #[arg(long = "sf", value_name = "PID", num_args = 1.., conflicts_with = "terminate",
          value_parser = pid_parser())]
    soft_stop: Vec<u32>,
    /// Once started, send SIGTERM to these processes, as HAProxy's -st
    /// (also accepted with one dash; percore soft-stops on SIGTERM too).
    #[arg(long = "st", value_name = "PID", num_args = 1.., value_parser = pid_parser())]
    terminate: Vec<u32>,
    /// Write the process id to FILE at start (as HAProxy's -p); overrides
    /// global.pidfile.
    #[arg(short = 'p', long = "pidfile", value_name = "FILE")]
    pidfile: Option<PathBuf>,
}

/// A process id: never 0 or negative, which kill(2) takes as a group.
fn pid_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(i32::MAX))
}

/// HAProxy spells -sf and -st with one dash; clap's long options take
/// two. Rewritten here, as whole arguments only.
fn haproxy_flags(args: impl Iterator<Item = OsString>) -> impl Iterator<Item = OsString> {
    args.map(|a| match a.to_str() {
        Some("-sf") => OsString::from("--sf"),
        Some("-st") => OsString::from("--st"),
        _ => a,
    })
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "convert") {
        return percore::convert::cli::run(std::env::args_os().skip(2));
    }
    let cli = Cli::parse_from(haproxy_flags(std::env::args_os()));
    let config = match percore::config::load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("[ALERT] configuration {} is invalid", cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    for w in &config.warnings {
        eprintln!("[WARNING] {w}");
    }
    // User, group, chroot and pidfile directory are checked against this
    // system here, --check included, before anything is bound.
    let plan = match Plan::resolve(&config.global.process, cli.pidfile.as_deref()) {
        Ok(plan) => plan,
        Err(lines) => {
            for line in &lines {
                eprintln!("{line}");
            }
            eprintln!(
                "[ALERT] percore cannot start as configured in {}",
                cli.config.display()
            );
            return ExitCode::FAILURE;
        }
    };
    for w in &plan.warnings {
        eprintln!("[WARNING] {w}");
    }
    if cli.check {
        println!("Configuration file {} is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    // Connected now: a chroot would hide the socket's path.
    if let Err(e) = percore::notify::init() {
        eprintln!("[WARNING] {e}; running without systemd notifications");
    }
    let mut takeover = Takeover {
        replace_sockets: cli.take_over.is_some()
            || !cli.soft_stop.is_empty()
            || !cli.terminate.is_empty(),
        ..Takeover::default()
    };
    // Before anything is bound: a failure here leaves no trace.
    if let Some(path) = &cli.take_over {
        match handover::fetch_listeners(path) {
            Ok(sockets) => {
                eprintln!(
                    "[NOTICE] took {} listening socket(s) over from the previous process ({})",
                    sockets.len(),
                    path.display()
                );
                takeover.inherited = Inherited::new(sockets);
            }
            Err(e) => {
                eprintln!("[ALERT] percore cannot take the listening sockets over: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let previous = if cli.terminate.is_empty() {
        (cli.soft_stop, PreviousStop::Soft)
    } else {
        (cli.terminate, PreviousStop::Terminate)
    };
    if !previous.0.is_empty() {
        takeover.after_start = Some(Box::new(move || {
            handover::stop_previous(&previous.0, previous.1);
        }));
    }
    let pidfile = match plan.pidfile.as_deref().map(Pidfile::write).transpose() {
        Ok(p) => p,
        Err(line) => {
            eprintln!("[ALERT] percore cannot start: {line}");
            return ExitCode::FAILURE;
        }
    };
    let result = percore::runtime::run(config, takeover, plan);
    if let Some(pidfile) = pidfile {
        pidfile.remove();
    }
    match result {
        Ok(summary) => {
            for core in &summary.cores {
                eprintln!(
                    "[NOTICE] core {} (cpu {}): accepted {} connection(s){}",
                    core.index,
                    core.cpu,
                    core.stats.accepted(),
                    if core.cut > 0 {
                        format!(", cut {} at hard stop", core.cut)
                    } else {
                        String::new()
                    }
                );
            }
            eprintln!(
                "[NOTICE] percore stopped: accepted {} connection(s) in total",
                summary.total().accepted()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("[ALERT] percore cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
