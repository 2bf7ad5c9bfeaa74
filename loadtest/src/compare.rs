//! `loadtest compare --haproxy-cfg FILE`: an HAProxy user's own file,
//! converted by `percore convert`, HAProxy on the original and percore on
//! the conversion side by side: same CPUs, same stand-in backends, same
//! client, alternating rounds; per-frontend requests per second and their
//! ratio, with the converter's report.
//!
//! The file is changed only where a benchmark on loopback needs it: its
//! server addresses point at stand-in backends (`loadtest serve-http`, one
//! per distinct address), its bind addresses at free loopback ports (one
//! set per proxy, both run at once), its thread count at `--proxy-cpus`,
//! and the process-management lines that cannot run twice side by side or
//! without root (daemon, user, chroot, stats socket, pidfile, logs) are
//! commented out. Both proxies read the same changed text.

use crate::bulk_tcp;
use crate::http_load::{self, Plan};
use crate::procs::{self, SpawnSpec, Spawned};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Options {
    pub haproxy_cfg: PathBuf,
    pub percore: PathBuf,
    pub haproxy: PathBuf,
    pub proxy_cpus: Vec<usize>,
    pub load_cpu: usize,
    pub rounds: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    pub path: String,
    pub host: Option<String>,
    pub work_dir: PathBuf,
}

/// Global keywords commented out in both copies (process management that
/// two side-by-side unprivileged processes cannot share, and logging,
/// which neither should pay for here).
const DROPPED_GLOBAL: &[&str] = &[
    "daemon",
    "chroot",
    "user",
    "group",
    "uid",
    "gid",
    "pidfile",
    "log",
    "nbthread",
    "cpu-map",
    "master-worker",
];

/// One frontend bind of the file, as the client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// `frontend web` / `listen app`, and the address as written.
    pub section: String,
    pub original: String,
    pub tls: bool,
}

/// The file rewritten for one proxy, and what was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub text: String,
    /// Original bind address → the loopback address it became.
    pub binds: Vec<(Bind, SocketAddr)>,
    pub dropped: Vec<String>,
}

/// Rewrites `text`: binds through `bind_port` (called once per bind
/// address, in order), servers through `servers` (original address →
/// stand-in), `nbthread threads` in global.
pub fn rewrite(
    text: &str,
    servers: &BTreeMap<String, SocketAddr>,
    bind_port: &mut dyn FnMut() -> u16,
    threads: usize,
) -> Rewritten {
    let mut out = String::new();
    let mut binds = Vec::new();
    let mut dropped = Vec::new();
    let mut section = String::new();
    let mut saw_global = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let first = words.first().copied().unwrap_or("");
        if matches!(
            first,
            "global"
                | "defaults"
                | "frontend"
                | "backend"
                | "listen"
                | "userlist"
                | "resolvers"
                | "peers"
                | "cache"
                | "program"
                | "mailers"
                | "http-errors"
                | "ring"
        ) {
            section = words[..words.len().min(2)].join(" ");
        }
        let in_global = section == "global";
        let drop = in_global
            && (DROPPED_GLOBAL.contains(&first)
                || (first == "stats" && words.get(1) == Some(&"socket")));
        if drop {
            dropped.push(line.trim().to_string());
            out.push_str("# (loadtest compare) ");
            out.push_str(line);
            out.push('\n');
            continue;
        }
        match first {
            "bind" if words.len() > 1 => {
                let tls = words.contains(&"ssl");
                let mut new = Vec::new();
                for original in words[1].split(',') {
                    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, bind_port()));
                    binds.push((
                        Bind {
                            section: section.clone(),
                            original: original.to_string(),
                            tls,
                        },
                        addr,
                    ));
                    new.push(addr.to_string());
                }
                out.push_str(&line.replacen(words[1], &new.join(","), 1));
            }
            "server" if words.len() > 2 => match servers.get(words[2]) {
                Some(stand_in) => out.push_str(&line.replacen(words[2], &stand_in.to_string(), 1)),
                None => out.push_str(line),
            },
            _ => out.push_str(line),
        }
        out.push('\n');
        if first == "global" {
            saw_global = true;
            out.push_str(&format!("    nbthread {threads}  # (loadtest compare)\n"));
        }
    }
    if !saw_global {
        out = format!("global\n    nbthread {threads}  # (loadtest compare)\n{out}");
    }
    Rewritten {
        text: out,
        binds,
        dropped,
    }
}

/// The distinct server addresses of the file, in order.
pub fn server_addresses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"server") && words.len() > 2 && !out.iter().any(|a| a == words[2])
        {
            out.push(words[2].to_string());
        }
    }
    out
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

pub fn run(o: &Options) -> Result<()> {
    let text = std::fs::read_to_string(&o.haproxy_cfg)
        .with_context(|| format!("reading {}", o.haproxy_cfg.display()))?;
    let haproxy = bulk_tcp::resolve(&o.haproxy).context("haproxy not found: pass --haproxy")?;
    if !o.percore.is_file() {
        bail!(
            "{} not found: cargo build --release, or pass --percore",
            o.percore.display()
        );
    }
    std::fs::create_dir_all(&o.work_dir)?;

    // Stand-in backends, one per server address, on the load CPU.
    let mut stand_ins = BTreeMap::new();
    let mut backends = Vec::new();
    for original in server_addresses(&text) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let ws = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        backends.push(crate::suite::start_http_backend(o.load_cpu, addr, ws)?);
        stand_ins.insert(original, addr);
    }

    let threads = o.proxy_cpus.len().max(1);
    let mut port_error = None;
    let mut next_port = || {
        free_port().unwrap_or_else(|e| {
            port_error.get_or_insert(e);
            0
        })
    };
    let for_haproxy = rewrite(&text, &stand_ins, &mut next_port, threads);
    let for_percore = rewrite(&text, &stand_ins, &mut next_port, threads);
    if let Some(e) = port_error {
        return Err(e.context("finding free ports"));
    }
    let h_cfg = o.work_dir.join("haproxy.cfg");
    let p_src = o.work_dir.join("percore-source.cfg");
    let p_toml = o.work_dir.join("percore.toml");
    std::fs::write(&h_cfg, &for_haproxy.text)?;
    std::fs::write(&p_src, &for_percore.text)?;

    // The conversion and its report.
    let converted = Command::new(&o.percore)
        .arg("convert")
        .arg(&p_src)
        .arg("-o")
        .arg(&p_toml)
        .output()
        .context("running percore convert")?;
    let report = String::from_utf8_lossy(&converted.stderr).into_owned();
    println!("## percore convert {}\n", o.haproxy_cfg.display());
    println!(
        "exit status {} ({} line(s) reported)\n",
        converted.status.code().unwrap_or(-1),
        report
            .lines()
            .filter(|l| l.contains(": ") && l.contains("(hint:"))
            .count()
    );
    for line in report.lines() {
        println!("    {line}");
    }
    for d in &for_haproxy.dropped {
        println!("    (loadtest compare) commented out in both copies: {d}");
    }
    if !p_toml.is_file() || converted.status.code() == Some(1) {
        bail!("percore convert wrote nothing");
    }

    // Both proxies at once, on the same CPUs.
    let log_dir = o.work_dir.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let mut h = Spawned::spawn(SpawnSpec {
        name: "haproxy",
        cpus: &o.proxy_cpus,
        program: &haproxy,
        args: vec!["-db".into(), "-f".into(), h_cfg.clone().into()],
        log: Some(&log_dir.join("haproxy.log")),
        capture_stdout: false,
    })?;
    let mut p = Spawned::spawn(SpawnSpec {
        name: "percore",
        cpus: &o.proxy_cpus,
        program: &o.percore,
        args: vec!["-c".into(), p_toml.clone().into()],
        log: Some(&log_dir.join("percore.log")),
        capture_stdout: false,
    })?;
    let plain: Vec<usize> = (0..for_haproxy.binds.len())
        .filter(|&i| !for_haproxy.binds[i].0.tls)
        .collect();
    for &i in &plain {
        bulk_tcp::wait_until_accepting(&mut h, for_haproxy.binds[i].1)
            .context("haproxy did not start (see its log)")?;
        bulk_tcp::wait_until_accepting(&mut p, for_percore.binds[i].1)
            .context("percore did not start (see its log)")?;
    }

    procs::pin_current_thread(o.load_cpu)?;
    println!(
        "\n## Requests per second, GET {} keep-alive, {} connection(s), {} round(s) of {:?}, proxies on CPU(s) {:?}, client and backends on CPU {}\n",
        o.path, o.connections, o.rounds, o.duration, o.proxy_cpus, o.load_cpu
    );
    println!("| section | bind | HAProxy req/s | percore req/s | per core, HAProxy | per core, percore | percore / HAProxy | errors (HAProxy / percore) |");
    println!("|---|---|---|---|---|---|---|---|");
    for i in 0..for_haproxy.binds.len() {
        let (bind, h_addr) = &for_haproxy.binds[i];
        if bind.tls {
            println!(
                "| {} | {} | TLS bind: skipped (the client speaks plain HTTP) | | | | | |",
                bind.section, bind.original
            );
            continue;
        }
        let p_addr = for_percore.binds[i].1;
        let host = o.host.clone().unwrap_or_else(|| bind.original.clone());
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {}\r\n\r\n",
            o.path,
            http_load::USER_AGENT
        )
        .into_bytes();
        let mut rates = (Vec::new(), Vec::new());
        let mut errors = (0, 0);
        for round in 1..=o.rounds {
            // Alternate who goes first, so drift hits both alike.
            let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
            for who in order {
                if procs::stopping() {
                    bail!("interrupted");
                }
                let target = if who == 0 { *h_addr } else { p_addr };
                let plan = Plan {
                    target,
                    connections: o.connections,
                    request: request.clone(),
                    reuse: true,
                    rate: None,
                    warmup: o.warmup,
                    duration: o.duration,
                    sources: Vec::new(),
                    label: format!(
                        "{} {}",
                        bind.section,
                        if who == 0 { "haproxy" } else { "percore" }
                    ),
                };
                let outcome = http_load::run(&plan, &mut |_| {})?;
                if who == 0 {
                    rates.0.push(outcome.requests_per_second());
                    errors.0 += outcome.errors;
                } else {
                    rates.1.push(outcome.requests_per_second());
                    errors.1 += outcome.errors;
                }
            }
        }
        let hm = crate::report::median(&mut rates.0).unwrap_or(0.0);
        let pm = crate::report::median(&mut rates.1).unwrap_or(0.0);
        let cores = threads as f64;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {} / {} |",
            bind.section,
            bind.original,
            hm,
            pm,
            hm / cores,
            pm / cores,
            pm / hm.max(1e-9),
            errors.0,
            errors.1
        );
    }
    println!(
        "\nMedians over the rounds. Files: {} (HAProxy), {} (percore), logs in {}.",
        h_cfg.display(),
        p_toml.display(),
        log_dir.display()
    );
    let _ = p.stop();
    let _ = h.stop();
    for b in backends {
        let _ = b.stop();
    }
    Ok(())
}

/// Where the files go by default.
pub fn default_work_dir(cfg: &Path) -> PathBuf {
    let stem = cfg
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "haproxy".into());
    PathBuf::from("target/loadtest/compare").join(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_servers_are_moved_and_process_lines_commented_out() {
        let text = "global\n    daemon\n    log /dev/log local0\n    stats socket /run/h.sock level admin\n    maxconn 100\n\
                    frontend web\n    bind :80,:8080\n    bind :443 ssl crt /c.pem\n    default_backend app\n\
                    backend app\n    server a 10.0.0.1:80 check\n    server b 10.0.0.2:80\n";
        let servers = server_addresses(text);
        assert_eq!(servers, ["10.0.0.1:80", "10.0.0.2:80"]);
        let stand_ins: BTreeMap<String, SocketAddr> = servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.clone(),
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 9000 + i as u16)),
                )
            })
            .collect();
        let mut port = 20000;
        let r = rewrite(
            text,
            &stand_ins,
            &mut || {
                port += 1;
                port
            },
            2,
        );
        assert!(r
            .text
            .contains("    bind 127.0.0.1:20001,127.0.0.1:20002\n"));
        assert!(r.text.contains("    bind 127.0.0.1:20003 ssl crt /c.pem\n"));
        assert!(r.text.contains("    server a 127.0.0.1:9000 check\n"));
        assert!(r.text.contains("global\n    nbthread 2"));
        assert!(r.text.contains("# (loadtest compare)     daemon\n"));
        assert!(r.text.contains("    maxconn 100\n"));
        assert_eq!(r.dropped.len(), 3);
        assert_eq!(r.binds.len(), 3);
        assert!(r.binds[2].0.tls && r.binds[0].0.section == "frontend web");
    }
}
