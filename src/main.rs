//! The `percore` command: parse arguments, load the config, run.

use clap::Parser;
use mimalloc::MiMalloc;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    if cli.check {
        println!("Configuration file {} is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    match percore::runtime::run(config, Default::default()) {
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
