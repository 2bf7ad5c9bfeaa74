//! Memory with a large configuration: percore against HAProxy, each
//! started on the same 1,000 backends × 10 servers (`loadtest reload`'s
//! large configuration) on one core and on two, no traffic. What an edge
//! node with many backends pays before its first request, and what each
//! further core adds.

use crate::configs::{self, HttpParams, ReloadShape};
use crate::procs::{SpawnSpec, Spawned};
use crate::suite;
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Time between "accepting" and reading RSS: start-up allocations done.
const SETTLE: Duration = Duration::from_millis(500);

/// One proxy started on one set of cores.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    pub target: &'static str,
    pub cores: usize,
    pub rss_kib: u64,
    pub command: String,
}

/// What the measurement needs from `loadtest reload`'s options.
pub struct Setup<'a> {
    pub percore: &'a Path,
    pub haproxy: &'a Path,
    pub params: HttpParams,
    pub shape: ReloadShape,
    /// `[proxy CPU]`, then `[load CPU, proxy CPU]`.
    pub core_sets: [Vec<usize>; 2],
    pub proxy_addr: SocketAddr,
    pub results_dir: &'a Path,
    pub log_dir: &'a Path,
}

/// Starts each proxy on each core set in turn and reads its RSS. A proxy
/// that is not installed (HAProxy) is skipped and said so in `skipped`.
pub fn measure(s: &Setup<'_>, skipped: &mut Vec<String>) -> Result<Vec<MemoryRow>> {
    let socket = std::env::temp_dir().join(format!("loadtest-memory-{}.sock", std::process::id()));
    let percore_text = configs::percore_reload_toml(&s.params, &socket, &s.shape, false);
    let haproxy = crate::bulk_tcp::resolve(s.haproxy);
    if haproxy.is_none() {
        skipped.push(format!(
            "HAProxy rows: `{}` not found (`apt-get install -y haproxy`)",
            s.haproxy.display()
        ));
    }
    let mut rows = Vec::new();
    for cpus in &s.core_sets {
        let label = format!("{}core", cpus.len());
        let config = s.results_dir.join(format!("memory-{label}.toml"));
        write(
            &config,
            &configs::percore_on_cpus(&percore_text, &s.params, cpus),
        )?;
        rows.push(start_and_read(
            s,
            "percore",
            cpus,
            s.percore,
            vec!["-c".into(), config.into()],
        )?);
        if let Some(program) = &haproxy {
            let config = s.results_dir.join(format!("memory-{label}.cfg"));
            write(
                &config,
                &configs::haproxy_reload_cfg(&s.params, &s.shape, cpus),
            )?;
            rows.push(start_and_read(
                s,
                "haproxy",
                cpus,
                program,
                vec!["-db".into(), "-f".into(), config.into()],
            )?);
        }
    }
    let _ = std::fs::remove_file(&socket);
    Ok(rows)
}

fn write(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn start_and_read(
    s: &Setup<'_>,
    target: &'static str,
    cpus: &[usize],
    program: &Path,
    args: Vec<std::ffi::OsString>,
) -> Result<MemoryRow> {
    let log = s
        .log_dir
        .join(format!("memory-{target}-{}core.log", cpus.len()));
    let mut proxy = Spawned::spawn(SpawnSpec {
        name: target,
        cpus,
        program,
        args,
        log: Some(&log),
        capture_stdout: false,
    })?;
    crate::bulk_tcp::wait_until_accepting(&mut proxy, s.proxy_addr)
        .with_context(|| format!("{target} on {} core(s); log: {}", cpus.len(), log.display()))?;
    std::thread::sleep(SETTLE);
    let rss_kib = suite::vm_rss(proxy.pid())?;
    let command = proxy.command_line().to_string();
    proxy.stop()?;
    Ok(MemoryRow {
        target,
        cores: cpus.len(),
        rss_kib,
        command,
    })
}

fn rss(rows: &[MemoryRow], target: &str, cores: usize) -> Option<u64> {
    rows.iter()
        .find(|r| r.target == target && r.cores == cores)
        .map(|r| r.rss_kib)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn render(w: &mut String, shape: &ReloadShape, rows: &[MemoryRow]) {
    let _ = writeln!(
        w,
        "The large configuration above ({} backends × {} servers, {} routes, no health checks), \
         started with no traffic; RSS (`VmRSS`) {} ms after the proxy accepts. HAProxy gets the \
         same frontend, routes, backends and servers, with `nbthread` and `cpu-map` on the same \
         CPUs.\n",
        shape.backends,
        shape.servers,
        shape.routes.min(shape.backends),
        SETTLE.as_millis()
    );
    let _ = writeln!(w, "| proxy | 1 core | 2 cores | added by the second core |");
    let _ = writeln!(w, "|---|---:|---:|---:|");
    for target in ["percore", "haproxy"] {
        let (one, two) = (rss(rows, target, 1), rss(rows, target, 2));
        if one.is_none() && two.is_none() {
            continue;
        }
        let cell = |v: Option<u64>| v.map_or("–".to_string(), mib);
        let added = match (one, two) {
            (Some(a), Some(b)) => format!(
                "{} ({:+.0}%)",
                if b >= a {
                    mib(b - a)
                } else {
                    format!("-{}", mib(a - b))
                },
                (b as f64 - a as f64) / a.max(1) as f64 * 100.0
            ),
            _ => "–".into(),
        };
        let _ = writeln!(w, "| {target} | {} | {} | {added} |", cell(one), cell(two));
    }
    let _ = writeln!(w);
    for cores in [1, 2] {
        if let (Some(p), Some(h)) = (rss(rows, "percore", cores), rss(rows, "haproxy", cores)) {
            let _ = writeln!(
                w,
                "- percore / HAProxy, {cores} core(s): **{:.2}×**.",
                p as f64 / h.max(1) as f64
            );
        }
    }
    let _ = writeln!(w, "\n```sh");
    for row in rows {
        let _ = writeln!(w, "{}", row.command);
    }
    let _ = writeln!(w, "```\n");
}
