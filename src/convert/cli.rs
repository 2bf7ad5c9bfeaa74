//! `percore convert [FILE|DIR ...] [-o OUT]`: file handling, the report on
//! stderr, and the exit status (0 all mapped, 2 some lines not, 1 input
//! unreadable).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::Input;

/// Converts HAProxy configuration files to a percore configuration.
#[derive(Parser, Debug)]
#[command(name = "percore convert")]
struct Args {
    /// haproxy.cfg files or directories (their *.cfg files in name order,
    /// as `haproxy -f DIR`); standard input when none is given.
    files: Vec<PathBuf>,
    /// Write the TOML here instead of standard output.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

/// Exit status when some lines were not converted (output still written).
const PARTIAL: u8 = 2;

pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = Args::parse_from(std::iter::once(OsString::from("percore convert")).chain(args));
    let inputs = match read_inputs(&args.files) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("[ALERT] percore convert: {e}");
            return ExitCode::FAILURE;
        }
    };
    let converted = super::convert(&inputs, &|name| std::env::var(name).ok());
    for p in &converted.problems {
        eprintln!("{p}");
    }
    // The result is loaded as `percore --check` would; relative paths in it
    // are relative to where it is written.
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("percore.toml"));
    let valid = match crate::config::load_str(&converted.toml, &target) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("[WARNING] {w}");
            }
            true
        }
        Err(errors) => {
            eprintln!(
                "{}",
                with_sources(&errors.to_string(), &converted.toml, &target)
            );
            eprintln!(
                "[WARNING] percore convert: the converted configuration does not pass percore --check (the lines above say why)"
            );
            false
        }
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &converted.toml)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(converted.toml.as_bytes())
                .map_err(|e| format!("cannot write the output: {e}"))
        }
    };
    if let Err(e) = written {
        eprintln!("[ALERT] percore convert: {e}");
        return ExitCode::FAILURE;
    }
    if converted.problems.is_empty() && valid {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "[NOTICE] percore convert: {} line(s) not converted",
            converted.problems.len()
        );
        ExitCode::from(PARTIAL)
    }
}

/// Each `<target>:<line>:` error of the check is followed by the HAProxy
/// line that TOML line was converted from (its trailing comment).
fn with_sources(errors: &str, toml: &str, target: &Path) -> String {
    let prefix = format!("{}:", target.display());
    let lines: Vec<&str> = toml.lines().collect();
    let mut out = String::new();
    for e in errors.lines() {
        out.push_str(e);
        out.push('\n');
        let source = e
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split(':').next()?.parse::<usize>().ok())
            .and_then(|n| lines.get(n.checked_sub(1)?))
            .and_then(|l| l.split_once("  # ").map(|(_, c)| c));
        if let Some(c) = source {
            out.push_str(&format!("    converted from {c}\n"));
        }
    }
    out.trim_end().to_string()
}

fn read_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, String> {
    if paths.is_empty() {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(vec![Input {
            name: "<stdin>".into(),
            bytes,
        }]);
    }
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read directory {}: {e}", path.display()))?
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cfg") && p.is_file())
                .collect();
            files.sort();
            for f in files {
                inputs.push(read_file(&f)?);
            }
        } else {
            inputs.push(read_file(path)?);
        }
    }
    Ok(inputs)
}

fn read_file(path: &Path) -> Result<Input, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Input {
        name: path.display().to_string(),
        bytes,
    })
}
