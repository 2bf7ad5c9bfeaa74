//! The Markdown report: machine, versions, exact commands, one table per
//! direction, percore/HAProxy ratios. It is written between markers in the
//! target file so hand-written text around it (the interpretation) survives
//! a rerun that regenerates the numbers.

use crate::bulk_tcp::{Options, Outcome, Row, Variant};
use crate::client::Direction;
use crate::units::{format_bytes, format_duration, GIB};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

pub const BEGIN: &str = "<!-- loadtest:bulk-tcp:begin (generated; rerun to update) -->";
pub const END: &str = "<!-- loadtest:bulk-tcp:end -->";

#[derive(Debug, Clone)]
pub struct Environment {
    pub cpus_online: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub memory: String,
    pub haproxy_version: Option<String>,
    pub percore_version: Option<String>,
    pub loadtest_commit: Option<String>,
    pub date: Option<String>,
}

impl Environment {
    pub fn detect(o: &Options) -> Environment {
        Environment::detect_for(&o.percore, &o.haproxy)
    }

    pub fn detect_for(percore: &Path, haproxy: &Path) -> Environment {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        // SAFETY: sysconf has no preconditions. Not available_parallelism():
        // that honours our own affinity mask, which is one CPU by now.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let haproxy_version = crate::bulk_tcp::resolve(haproxy).and_then(|haproxy| {
            first_line_of(Command::new(haproxy).arg("-v"), Duration::from_secs(5))
        });
        let percore_version = percore.is_file().then(|| {
            let reported = first_line_of(
                Command::new(percore).arg("--version"),
                Duration::from_secs(3),
            );
            let commit = percore.parent().and_then(|dir| {
                first_line_of(
                    Command::new("git")
                        .arg("-C")
                        .arg(dir)
                        .args(["log", "-1", "--format=%h %s"]),
                    Duration::from_secs(5),
                )
            });
            let built = first_line_of(
                Command::new("date")
                    .args(["-u", "+%Y-%m-%d %H:%M UTC", "-r"])
                    .arg(percore),
                Duration::from_secs(5),
            );
            let mut text = reported.unwrap_or_else(|| "version unknown".into());
            if let Some(built) = built {
                let _ = write!(text, ", binary from {built}");
            }
            if let Some(commit) = commit {
                let _ = write!(text, "; its checkout is at {commit}");
            }
            text
        });
        Environment {
            cpus_online: online.max(0) as usize,
            cpu_model: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            memory: field(&meminfo, "MemTotal")
                .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|kb| format!("{:.1} GiB", kb / (1024.0 * 1024.0)))
                .unwrap_or_else(|| "unknown".into()),
            haproxy_version,
            percore_version,
            loadtest_commit: first_line_of(
                Command::new("git").args(["log", "-1", "--format=%h %s"]),
                Duration::from_secs(5),
            ),
            date: first_line_of(
                Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]),
                Duration::from_secs(5),
            ),
        }
    }
}

/// `key : value` from /proc/cpuinfo or /proc/meminfo.
pub fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// First line a short-lived command prints (stdout, else stderr); None if
/// it fails, cannot start, or outlives `limit`.
pub fn first_line_of(command: &mut Command, limit: Duration) -> Option<String> {
    let output = crate::procs::output_within(command, limit).ok()?;
    if !output.status.success() {
        return None;
    }
    let text = if output.stdout.is_empty() {
        output.stderr
    } else {
        output.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Medians of one row, in report units.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub gib_per_second: f64,
    pub min: f64,
    pub max: f64,
    /// Proxy CPU seconds per GiB moved.
    pub proxy_cpu_per_gib: Option<f64>,
    /// Proxy CPU time over wall time: near 100% means the proxy's core is
    /// the bottleneck, well below means the load side is.
    pub proxy_busy: Option<f64>,
    pub load_cpu_per_gib: f64,
    /// The proxy core's busy fraction from /proc/stat, all processes.
    pub core_busy: f64,
    /// Busy seconds of the proxy core per GiB (proxy + its softirq work +
    /// anything else that ran there).
    pub core_cpu_per_gib: f64,
    /// The load side's core busy fraction, all processes.
    pub load_core_busy: f64,
    /// Runs that started on quiet cores, when that was checked.
    pub quiet_runs: Option<usize>,
}

pub fn summarize(row: &Row) -> Option<Summary> {
    let gib = |s: &crate::bulk_tcp::Sample| s.transfer.bytes as f64 / GIB as f64;
    let mut rates: Vec<f64> = row
        .samples
        .iter()
        .map(|s| s.transfer.gib_per_second())
        .collect();
    let gib_per_second = median(&mut rates)?;
    let mut proxy: Vec<f64> = row
        .samples
        .iter()
        .filter_map(|s| Some(s.proxy_cpu?.as_secs_f64() / gib(s)))
        .collect();
    let mut busy: Vec<f64> = row
        .samples
        .iter()
        .filter_map(|s| Some(s.proxy_cpu?.as_secs_f64() / s.transfer.elapsed.as_secs_f64()))
        .collect();
    let mut load: Vec<f64> = row
        .samples
        .iter()
        .map(|s| s.load_cpu.as_secs_f64() / gib(s))
        .collect();
    let mut core: Vec<f64> = row.samples.iter().map(|s| s.proxy_core_busy).collect();
    let mut core_time: Vec<f64> = row
        .samples
        .iter()
        .map(|s| s.proxy_core_time.as_secs_f64() / gib(s))
        .collect();
    let mut load_core: Vec<f64> = row.samples.iter().map(|s| s.load_core_busy).collect();
    let checked: Vec<bool> = row.samples.iter().filter_map(|s| s.quiet).collect();
    let quiet_runs = (!checked.is_empty()).then(|| checked.iter().filter(|q| **q).count());
    Some(Summary {
        gib_per_second,
        min: rates.first().copied().unwrap_or(gib_per_second),
        max: rates.last().copied().unwrap_or(gib_per_second),
        proxy_cpu_per_gib: median(&mut proxy),
        proxy_busy: median(&mut busy),
        load_cpu_per_gib: median(&mut load).unwrap_or(0.0),
        core_busy: median(&mut core).unwrap_or(0.0),
        core_cpu_per_gib: median(&mut core_time).unwrap_or(0.0),
        load_core_busy: median(&mut load_core).unwrap_or(0.0),
        quiet_runs,
    })
}

/// Pairs compared in the ratio table: (ours, reference).
const RATIOS: [(Variant, Variant); 3] = [
    (Variant::PercoreSplice, Variant::Haproxy),
    (Variant::PercoreCopy, Variant::HaproxyNosplice),
    (Variant::PercoreCopy, Variant::Haproxy),
];

pub fn render(o: &Options, env: &Environment, outcome: &Outcome, command: &str) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "{BEGIN}");
    let _ = writeln!(w, "## Bulk TCP: throughput and proxy CPU per GiB\n");
    if let Some(date) = &env.date {
        let _ = writeln!(w, "Run: {date}.\n");
    }
    let _ = writeln!(w, "### Machine and versions\n");
    let _ = writeln!(w, "- CPUs online: {} ({})", env.cpus_online, env.cpu_model);
    let _ = writeln!(w, "- Kernel: {}", env.kernel);
    let _ = writeln!(w, "- Memory: {}", env.memory);
    let _ = writeln!(
        w,
        "- HAProxy: {}",
        env.haproxy_version.as_deref().unwrap_or("not installed")
    );
    let _ = writeln!(
        w,
        "- percore: {}",
        env.percore_version
            .as_deref()
            .unwrap_or("binary not found (rows pending)")
    );
    if let Some(commit) = &env.loadtest_commit {
        let _ = writeln!(w, "- loadtest: built at {commit}");
    }
    let _ = writeln!(w, "\n### Command\n");
    let _ = writeln!(w, "```sh\n{command}\n```\n");
    let quiet = if o.quiet_wait.is_zero() {
        "not checked".to_string()
    } else {
        format!(
            "before each proxy start, waited up to {} for a 1 s window with both CPUs \
             under {:.0}% busy",
            format_duration(o.quiet_wait),
            o.quiet_below * 100.0
        )
    };
    let _ = writeln!(
        w,
        "Each run moves {} over {} parallel TCP connections in one direction \
         (capped at {} wall clock); {} rounds, variants alternating within each round. \
         Proxy alone on CPU {}; client and backend (`loadtest serve`, blocking \
         threads, 256 KiB reads/writes) on CPU {}. Proxy settings: one thread, \
         `bufsize` {}, `pipesize` {}, `maxconn` {}. Quiet check: {quiet}. \
         Load average before / after: {} / {}.\n",
        format_bytes(o.bytes),
        o.streams,
        format_duration(o.time_limit),
        o.rounds,
        o.proxy_cpu,
        o.load_cpu,
        o.bufsize,
        o.pipesize,
        o.maxconn,
        outcome.loadavg_before,
        outcome.loadavg_after,
    );
    let cpu = o.proxy_cpu;
    let load = o.load_cpu;
    let _ = writeln!(w, "Columns (medians over rounds):\n");
    let _ = writeln!(
        w,
        "- *proxy CPU s/GiB*: utime+stime of the proxy process (`/proc/<pid>/stat`, \
         all its threads) per GiB moved. With tick accounting (no \
         `CONFIG_IRQ_TIME_ACCOUNTING`) a tick that lands in softirq is charged to the \
         task it interrupted, so loopback network work done while the proxy runs counts \
         here; work in ksoftirqd or kernel workers does not."
    );
    let _ = writeln!(
        w,
        "- *CPU {cpu} s/GiB*: busy time of the proxy's core (`/proc/stat`: everything \
         but idle and iowait) per GiB: the proxy plus ksoftirqd and kernel workers on \
         that core, plus any other tenant that ran there (a gap between *CPU {cpu} busy* \
         and *proxy busy* shows how much)."
    );
    let _ = writeln!(
        w,
        "- *proxy busy* / *CPU {cpu} busy*: the same two, as a share of wall time. \
         Near 100% means the proxy's core is the bottleneck."
    );
    let _ = writeln!(
        w,
        "- *client+backend CPU s/GiB*: the load side's processes on CPU {load}; *CPU {load} \
         busy*: that core's busy share. Near 100% means the load side, not the proxy, \
         limited the run: then GiB/s understates the proxy and CPU s/GiB is the number \
         to compare."
    );
    let _ = writeln!(
        w,
        "- *runs*: completed runs / rounds, and how many started on quiet cores.\n"
    );
    let _ = writeln!(
        w,
        "Processes, with configs in `{}`:\n",
        o.config_dir.display()
    );
    let _ = writeln!(w, "```sh");
    if !outcome.backend_command.is_empty() {
        let _ = writeln!(w, "{}", outcome.backend_command);
    }
    for (_, command) in &outcome.proxy_commands {
        let _ = writeln!(w, "{command}");
    }
    let _ = writeln!(w, "```\n");

    for direction in [Direction::Upload, Direction::Download] {
        let _ = writeln!(w, "### {}\n", capitalize(direction.label()));
        let _ = writeln!(
            w,
            "| variant | GiB/s | GiB/s min–max | proxy CPU s/GiB | CPU {cpu} s/GiB | \
             proxy busy | CPU {cpu} busy | client+backend CPU s/GiB | CPU {load} busy | runs |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for variant in &o.variants {
            let Some(row) = outcome
                .rows
                .iter()
                .find(|r| r.variant == *variant && r.direction == direction)
            else {
                let _ = writeln!(
                    w,
                    "| {} | pending | | | | | | | | 0/{} |",
                    variant.name(),
                    o.rounds
                );
                continue;
            };
            let mut runs = format!("{}/{}", row.samples.len(), o.rounds);
            match summarize(row) {
                Some(s) => {
                    if let Some(quiet) = s.quiet_runs {
                        let _ = write!(runs, " ({quiet} quiet)");
                    }
                    let dash = || "–".to_string();
                    let _ = writeln!(
                        w,
                        "| {} | {:.3} | {:.3}–{:.3} | {} | {} | {} | {:.0}% | {:.3} | {:.0}% | {runs} |",
                        variant.name(),
                        s.gib_per_second,
                        s.min,
                        s.max,
                        s.proxy_cpu_per_gib
                            .map(|c| format!("{c:.3}"))
                            .unwrap_or_else(dash),
                        if *variant == Variant::Direct {
                            dash()
                        } else {
                            format!("{:.3}", s.core_cpu_per_gib)
                        },
                        s.proxy_busy
                            .map(|b| format!("{:.0}%", b * 100.0))
                            .unwrap_or_else(dash),
                        s.core_busy * 100.0,
                        s.load_cpu_per_gib,
                        s.load_core_busy * 100.0,
                    );
                }
                None => {
                    let _ = writeln!(w, "| {} | failed | | | | | | | | {runs} |", variant.name());
                }
            }
        }
        let _ = writeln!(w);
        let ratio_lines: Vec<String> = RATIOS
            .iter()
            .filter_map(|&(ours, reference)| {
                let a = summary_of(outcome, ours, direction)?;
                let b = summary_of(outcome, reference, direction)?;
                let proxy_cpu = match (a.proxy_cpu_per_gib, b.proxy_cpu_per_gib) {
                    (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                    _ => "–".into(),
                };
                let core_cpu = if b.core_cpu_per_gib > 0.0 {
                    format!("{:.2}", a.core_cpu_per_gib / b.core_cpu_per_gib)
                } else {
                    "–".into()
                };
                Some(format!(
                    "| {} / {} | {:.2} | {proxy_cpu} | {core_cpu} |",
                    ours.name(),
                    reference.name(),
                    a.gib_per_second / b.gib_per_second
                ))
            })
            .collect();
        if !ratio_lines.is_empty() {
            let _ = writeln!(
                w,
                "| ratio | throughput (higher is better) | proxy CPU s/GiB (lower is better) \
                 | CPU {cpu} s/GiB (lower is better) |"
            );
            let _ = writeln!(w, "|---|---:|---:|---:|");
            for line in ratio_lines {
                let _ = writeln!(w, "{line}");
            }
            let _ = writeln!(w);
        }
    }

    let _ = writeln!(w, "<details><summary>Every run</summary>\n");
    let _ = writeln!(
        w,
        "| round | variant | direction | GiB/s | proxy CPU s/GiB | CPU {cpu} s/GiB | \
         proxy busy | CPU {cpu} busy | CPU {load} busy | quiet start |"
    );
    let _ = writeln!(w, "|---:|---|---|---:|---:|---:|---:|---:|---:|---|");
    let mut all: Vec<(&Row, &crate::bulk_tcp::Sample)> = outcome
        .rows
        .iter()
        .flat_map(|r| r.samples.iter().map(move |s| (r, s)))
        .collect();
    all.sort_by_key(|(r, s)| (s.round, r.variant, r.direction == Direction::Download));
    for (row, sample) in all {
        let gib = sample.transfer.bytes as f64 / GIB as f64;
        let wall = sample.transfer.elapsed.as_secs_f64();
        let (proxy_per_gib, core_per_gib, proxy_busy) = match sample.proxy_cpu {
            Some(cpu_time) => (
                format!("{:.3}", cpu_time.as_secs_f64() / gib),
                format!("{:.3}", sample.proxy_core_time.as_secs_f64() / gib),
                format!("{:.0}%", cpu_time.as_secs_f64() / wall * 100.0),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {:.3} | {proxy_per_gib} | {core_per_gib} | {proxy_busy} | {:.0}% | {:.0}% | {} |",
            sample.round,
            row.variant.name(),
            if row.direction == Direction::Upload {
                "upload"
            } else {
                "download"
            },
            sample.transfer.gib_per_second(),
            sample.proxy_core_busy * 100.0,
            sample.load_core_busy * 100.0,
            match sample.quiet {
                Some(true) => "yes",
                Some(false) => "no",
                None => "not checked",
            }
        );
    }
    let _ = writeln!(w, "\n</details>\n");
    let _ = writeln!(w, "Variants:\n");
    for variant in &o.variants {
        let _ = writeln!(w, "- `{}`: {}", variant.name(), variant.describe());
    }
    let _ = writeln!(w);
    if !outcome.skipped.is_empty() {
        let _ = writeln!(w, "**Not run** (rows pending):\n");
        for (variant, reason) in &outcome.skipped {
            let _ = writeln!(w, "- `{}`: {reason}", variant.name());
        }
        let _ = writeln!(w);
    }
    let failures: Vec<_> = outcome
        .rows
        .iter()
        .flat_map(|r| {
            r.failures
                .iter()
                .map(move |f| format!("- `{}` {:?}: {f}", r.variant.name(), r.direction))
        })
        .chain(outcome.warnings.iter().map(|w| format!("- {w}")))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(w, "**Failed runs and warnings:**\n");
        for line in failures {
            let _ = writeln!(w, "{line}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "{END}");
    out
}

fn summary_of(outcome: &Outcome, variant: Variant, direction: Direction) -> Option<Summary> {
    outcome
        .rows
        .iter()
        .find(|r| r.variant == variant && r.direction == direction)
        .and_then(summarize)
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Replaces the generated section of `existing` (between the markers) with
/// `section`, or appends it when there is none; text outside is kept.
#[cfg(test)]
pub fn splice_section(existing: &str, section: &str) -> String {
    splice_between(existing, BEGIN, END, section)
}

/// `splice_section` for any pair of markers (`begin` is matched up to its
/// " (" so the marker's comment may change between versions).
pub fn splice_between(existing: &str, begin: &str, end: &str, section: &str) -> String {
    let begin_key = begin.split(" (").next().unwrap_or(begin);
    if let (Some(from), Some(to)) = (existing.find(begin_key), existing.find(end)) {
        if from < to {
            let after = &existing[to + end.len()..];
            let after = after.strip_prefix('\n').unwrap_or(after);
            return format!("{}{section}{after}", &existing[..from]);
        }
    }
    let mut out = existing.to_string();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
    out.push_str(section);
    out
}

pub fn write_into(path: &Path, section: &str) -> anyhow::Result<()> {
    write_between(path, BEGIN, END, section)
}

/// Writes `section` between `begin` and `end` in the file at `path`
/// (created as "# Benchmarks" if absent).
pub fn write_between(path: &Path, begin: &str, end: &str, section: &str) -> anyhow::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_string(),
        Err(e) => return Err(e.into()),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, splice_between(&existing, begin, end, section))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bulk_tcp::Sample;
    use crate::client::Transfer;
    use std::path::PathBuf;

    fn options() -> Options {
        Options {
            bytes: 4 * GIB,
            streams: 4,
            rounds: 2,
            variants: Variant::ALL.to_vec(),
            percore: PathBuf::from("target/release/percore"),
            haproxy: PathBuf::from("haproxy"),
            proxy_cpu: 1,
            load_cpu: 0,
            proxy_addr: "127.0.0.1:24001".parse().unwrap(),
            backend_addr: "127.0.0.1:24002".parse().unwrap(),
            time_limit: Duration::from_secs(60),
            bufsize: 16384,
            pipesize: 65536,
            maxconn: 5000,
            config_dir: PathBuf::from("docs/benchmarks/bulk-tcp"),
            log_dir: PathBuf::from("target/loadtest/logs"),
            quiet_wait: Duration::from_secs(60),
            quiet_below: 0.1,
        }
    }

    /// A run of 4 GiB taking `seconds`, with `proxy` CPU seconds.
    fn sample(seconds: f64, proxy: Option<f64>) -> Sample {
        Sample {
            transfer: Transfer {
                bytes: 4 * GIB,
                elapsed: Duration::from_secs_f64(seconds),
            },
            proxy_cpu: proxy.map(Duration::from_secs_f64),
            load_cpu: Duration::from_secs(2),
            proxy_core_busy: 1.0,
            load_core_busy: 0.5,
            proxy_core_time: Duration::from_secs_f64(proxy.unwrap_or(0.0) * 1.5),
            quiet: Some(true),
            round: 1,
        }
    }

    fn row(variant: Variant, direction: Direction, samples: Vec<Sample>) -> Row {
        Row {
            variant,
            direction,
            samples,
            failures: Vec::new(),
        }
    }

    #[test]
    fn tables_ratios_and_pending_rows() {
        let mut rows = Vec::new();
        for direction in [Direction::Upload, Direction::Download] {
            // haproxy: 1 GiB/s, 4 s CPU per 4 GiB = 1.0 s/GiB.
            rows.push(row(
                Variant::Haproxy,
                direction,
                vec![sample(4.0, Some(4.0)), sample(4.0, Some(4.0))],
            ));
            // direct: 2 GiB/s (median of 1.6 and 2.4 GiB/s -> 2.0).
            rows.push(row(
                Variant::Direct,
                direction,
                vec![sample(2.5, None), sample(4.0 / 2.4, None)],
            ));
        }
        rows.push(Row {
            variant: Variant::HaproxyNosplice,
            direction: Direction::Upload,
            samples: Vec::new(),
            failures: vec!["boom".into()],
        });
        let outcome = Outcome {
            rows,
            skipped: vec![(Variant::PercoreSplice, "binary not found".into())],
            proxy_commands: vec![(Variant::Haproxy, "taskset -c 1 haproxy -db -f x".into())],
            backend_command: "taskset -c 0 loadtest serve".into(),
            warnings: Vec::new(),
            loadavg_before: "0.1 0.1 0.1".into(),
            loadavg_after: "0.2 0.1 0.1".into(),
        };
        let env = Environment {
            cpus_online: 2,
            cpu_model: "Test CPU".into(),
            kernel: "6.0".into(),
            memory: "1 kB".into(),
            haproxy_version: Some("HAProxy version 2.6.12".into()),
            percore_version: None,
            loadtest_commit: None,
            date: None,
        };
        let text = render(&options(), &env, &outcome, "cargo run -- bulk-tcp");
        assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
        assert!(text.contains("HAProxy version 2.6.12"));
        assert!(text.contains("- percore: binary not found (rows pending)"));
        assert!(text.contains("| haproxy | 1.000 | 1.000–1.000 | 1.000 | 1.500 | 100% | 100% | 0.500 | 50% | 2/2 (2 quiet) |"));
        assert!(text.contains("| direct | 2.000 | 1.600–2.400 | – | – | – | 100% |"));
        assert!(text.contains("| percore-splice | pending |"));
        assert!(text.contains("| haproxy-nosplice | failed |"));
        assert!(text.contains("- `haproxy-nosplice` Upload: boom"));
        assert!(text.contains("- `percore-splice`: binary not found"));
        assert!(text.contains("2/2 (2 quiet)"));
        assert!(text.contains(
            "| 1 | haproxy | upload | 1.000 | 1.000 | 1.500 | 100% | 100% | 50% | yes |"
        ));
        // No percore data, so no ratio table.
        assert!(!text.contains("| ratio |"));

        // With percore rows: half the CPU per GiB, 1.5x the throughput.
        let mut outcome = outcome;
        for direction in [Direction::Upload, Direction::Download] {
            outcome.rows.push(row(
                Variant::PercoreSplice,
                direction,
                vec![sample(4.0 / 1.5, Some(2.0))],
            ));
        }
        let text = render(&options(), &env, &outcome, "cargo run -- bulk-tcp");
        assert_eq!(
            text.matches("| percore-splice / haproxy | 1.50 | 0.50 | 0.50 |")
                .count(),
            2
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn proc_fields_are_found_by_key() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu\n";
        assert_eq!(
            field(cpuinfo, "model name").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(field(cpuinfo, "missing"), None);
    }

    #[test]
    fn the_generated_section_is_replaced_and_hand_text_kept() {
        let first = format!("{BEGIN}\nold numbers\n{END}\n");
        let doc = format!("# Benchmarks\n\nintro\n\n{first}\n## Interpretation\nkept\n");
        let second = format!("{BEGIN}\nnew numbers\n{END}\n");
        let updated = splice_section(&doc, &second);
        assert!(updated.contains("new numbers"));
        assert!(!updated.contains("old numbers"));
        assert!(updated.starts_with("# Benchmarks\n\nintro\n\n"));
        assert!(updated.ends_with("\n## Interpretation\nkept\n"));
        assert_eq!(updated.matches(END).count(), 1);
        // Idempotent.
        assert_eq!(splice_section(&updated, &second), updated);
    }

    #[test]
    fn a_document_without_a_section_gets_it_appended() {
        let section = format!("{BEGIN}\nnumbers\n{END}\n");
        let updated = splice_section("# Benchmarks\n", &section);
        assert_eq!(updated, format!("# Benchmarks\n\n{section}"));
    }
}
