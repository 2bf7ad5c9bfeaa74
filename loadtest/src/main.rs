//! loadtest: percore's benchmark harness. First scenario: bulk TCP
//! throughput and proxy CPU per GiB, percore vs HAProxy vs no proxy.
//!
//! `cargo run --release -p loadtest -- bulk-tcp --out docs/benchmarks.md`

mod backend;
mod bulk_tcp;
mod client;
mod configs;
mod cpustat;
mod hist;
mod http_backend;
mod http_load;
mod pacing;
mod procs;
mod report;
mod units;
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
    /// Bulk TCP throughput and proxy CPU seconds per GiB: percore splice,
    /// percore copy, HAProxy (splice-auto and nosplice), direct.
    BulkTcp(Box<BulkTcpArgs>),
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
        Commands::Serve { listen } => {
            let listener =
                TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
            let mut stdout = std::io::stdout();
            writeln!(stdout, "listening {}", listener.local_addr()?)?;
            stdout.flush()?;
            backend::serve(listener)
        }
        Commands::BulkTcp(args) => bulk_tcp_main(*args),
    }
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
