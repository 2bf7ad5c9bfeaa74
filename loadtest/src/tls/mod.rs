//! TLS termination scenarios: full handshakes/s, resumed handshakes/s
//! (TLS 1.3 tickets and TLS 1.2), HTTPS keep-alive requests/s; for an
//! ECDSA P-256 and an RSA-2048 certificate made at run time; percore
//! against HAProxy, same cipher suite, same key exchange (X25519), same
//! backend and client. No direct row: without a proxy there is nothing
//! terminating TLS in front of the plain backend.

pub mod client;
pub mod report;
pub mod setup;

use crate::bulk_tcp;
use crate::procs::{SpawnSpec, Spawned};
use crate::suite::{result_of, Meter, Options, SuiteOutcome, Target};
use anyhow::{Context, Result};
use client::{Version, Workload};
use serde::{Deserialize, Serialize};
use setup::KeyType;
use std::path::PathBuf;
use std::time::Duration;

/// One measured workload of the TLS scenarios.
#[derive(Debug, Clone, Copy)]
pub struct TlsWorkload {
    /// Prefix of the scenario name; the key type is appended.
    pub name: &'static str,
    pub title: &'static str,
    pub workload: Workload,
    pub version: Version,
}

pub const WORKLOADS: [TlsWorkload; 4] = [
    TlsWorkload {
        name: "tls13-full",
        title: "full handshake, TLS 1.3",
        workload: Workload::FullHandshakes,
        version: Version::Tls13,
    },
    TlsWorkload {
        name: "tls13-resumed",
        title: "resumed handshake, TLS 1.3 (ticket)",
        workload: Workload::ResumedHandshakes,
        version: Version::Tls13,
    },
    TlsWorkload {
        name: "tls12-resumed",
        title: "resumed handshake, TLS 1.2",
        workload: Workload::ResumedHandshakes,
        version: Version::Tls12,
    },
    TlsWorkload {
        name: "https-keepalive",
        title: "HTTPS keep-alive request, TLS 1.3",
        workload: Workload::KeepAlive,
        version: Version::Tls13,
    },
];

impl TlsWorkload {
    pub fn scenario(&self, key: KeyType) -> String {
        format!("{}-{}", self.name, key.short())
    }

    /// The suite negotiated: TLS 1.3's is the same for both keys.
    pub fn suite_name(&self, key: KeyType) -> &'static str {
        match self.version {
            Version::Tls13 => setup::TLS13_SUITE,
            Version::Tls12 => key.tls12_openssl(),
        }
    }

    fn iana_suite(&self, key: KeyType) -> &'static str {
        match self.version {
            Version::Tls13 => setup::TLS13_SUITE,
            Version::Tls12 => key.tls12_iana(),
        }
    }
}

/// How the handshakes of one run went, as the client saw them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandshakeCount {
    pub scenario: String,
    pub target: Target,
    pub round: usize,
    pub full: u64,
    pub resumed: u64,
}

/// What the TLS scenarios add to the raw results.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TlsFacts {
    pub percore_library: Option<String>,
    pub haproxy_library: Option<String>,
    pub handshakes: Vec<HandshakeCount>,
    /// How the certificates were made.
    pub certificate_commands: Vec<String>,
    /// Concurrent connections of the handshake and keep-alive runs.
    pub handshake_connections: usize,
    pub keepalive_connections: usize,
    pub warmup_seconds: f64,
    pub window_seconds: f64,
}

/// Measured window and warm-up of one TLS run: shorter than the HTTP
/// scenarios' (twelve runs per proxy and round), still thousands of
/// operations each.
fn timing(o: &Options) -> (Duration, Duration) {
    if o.quick {
        (
            o.warmup.min(Duration::from_millis(400)),
            o.duration.min(Duration::from_secs(1)),
        )
    } else {
        (
            o.warmup.min(Duration::from_secs(1)),
            o.duration.min(Duration::from_secs(3)),
        )
    }
}

/// Where the throwaway certificates go: next to the logs, not next to the
/// results that may be committed.
fn certificate_dir(o: &Options) -> PathBuf {
    o.log_dir
        .parent()
        .map(|p| p.join("tls-certs"))
        .unwrap_or_else(|| PathBuf::from("target/loadtest/tls-certs"))
}

pub fn run(
    o: &Options,
    targets: &[Target],
    backend_pid: u32,
    outcome: &mut SuiteOutcome,
) -> Result<()> {
    let proxies: Vec<Target> = targets
        .iter()
        .copied()
        .filter(|t| *t != Target::Direct)
        .collect();
    let (warmup, window) = timing(o);
    outcome.tls.percore_library = Some(setup::percore_tls_library());
    outcome.tls.haproxy_library = bulk_tcp::resolve(&o.haproxy).and_then(|haproxy| {
        let out = crate::procs::output_within(
            std::process::Command::new(haproxy).arg("-vv"),
            Duration::from_secs(10),
        )
        .ok()?;
        setup::haproxy_tls_library(&String::from_utf8_lossy(&out.stdout))
    });
    outcome.tls.handshake_connections = o.close_connections;
    outcome.tls.keepalive_connections = o.connections;
    outcome.tls.warmup_seconds = warmup.as_secs_f64();
    outcome.tls.window_seconds = window.as_secs_f64();
    let certs = certificate_dir(o);
    for key in KeyType::ALL {
        let (bundle, command) = setup::make_certificate(&certs, key)?;
        outcome.tls.certificate_commands.push(command);
        let bundle = std::fs::canonicalize(&bundle).unwrap_or(bundle);
        let dir = o.config_dir.join("tls").join(key.short());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let params = o.http_params();
        let percore_config = dir.join("percore.toml");
        let haproxy_config = dir.join("haproxy.cfg");
        std::fs::write(&percore_config, setup::percore_toml(&params, key, &bundle))
            .with_context(|| format!("writing {}", percore_config.display()))?;
        std::fs::write(&haproxy_config, setup::haproxy_cfg(&params, key, &bundle))
            .with_context(|| format!("writing {}", haproxy_config.display()))?;
        for round in 1..=o.rounds {
            let mut order = proxies.clone();
            if round.is_multiple_of(2) {
                order.reverse();
            }
            for &target in &order {
                if crate::procs::stopping() {
                    anyhow::bail!("interrupted");
                }
                let config = match target {
                    Target::Haproxy => &haproxy_config,
                    _ => &percore_config,
                };
                let label = format!("tls-{} {} round {round}", key.short(), target.name());
                if let Err(e) = run_proxy(
                    o,
                    (target, key, round),
                    config,
                    backend_pid,
                    (warmup, window),
                    outcome,
                ) {
                    if crate::procs::stopping() {
                        return Err(e);
                    }
                    let message = format!("{label}: {e:#}");
                    eprintln!("loadtest: {message}");
                    outcome.failures.push(message);
                }
            }
        }
    }
    Ok(())
}

fn quiet(o: &Options) -> Result<Option<bool>> {
    if o.quiet_wait.is_zero() {
        return Ok(None);
    }
    Ok(Some(crate::cpustat::wait_for_quiet(
        &[o.load_cpu, o.proxy_cpu],
        o.quiet_below,
        Duration::from_millis(500),
        o.quiet_wait,
    )?))
}

/// One fresh proxy, every workload against it in turn.
fn run_proxy(
    o: &Options,
    (target, key, round): (Target, KeyType, usize),
    config: &std::path::Path,
    backend_pid: u32,
    (warmup, window): (Duration, Duration),
    outcome: &mut SuiteOutcome,
) -> Result<()> {
    let quiet = quiet(o)?;
    let (program, args): (PathBuf, Vec<std::ffi::OsString>) = match target {
        Target::Percore => (o.percore.clone(), vec!["-c".into(), config.into()]),
        _ => (
            bulk_tcp::resolve(&o.haproxy).context("haproxy not found")?,
            vec!["-db".into(), "-f".into(), config.into()],
        ),
    };
    let log = o
        .log_dir
        .join(format!("tls-{}-{}.log", key.short(), target.name()));
    let mut proxy = Spawned::spawn(SpawnSpec {
        name: target.name(),
        cpus: &[o.proxy_cpu],
        program: &program,
        args,
        log: Some(&log),
        capture_stdout: false,
    })?;
    let command = proxy.command_line().to_string();
    if !outcome.commands.contains(&command) {
        outcome.commands.push(command.clone());
    }
    bulk_tcp::wait_until_accepting(&mut proxy, o.proxy_addr)
        .with_context(|| format!("log: {}", log.display()))?;
    let pid = proxy.pid();
    for w in WORKLOADS {
        let scenario = w.scenario(key);
        let connections = match w.workload {
            Workload::KeepAlive => o.connections,
            _ => o.close_connections,
        };
        let plan = client::Plan {
            target: o.proxy_addr,
            server_name: setup::SERVER_NAME.into(),
            connections,
            workload: w.workload,
            version: w.version,
            suite: client::suite_named(w.iana_suite(key))
                .with_context(|| format!("rustls has no {}", w.iana_suite(key)))?,
            request: crate::http_load::get_request(
                &format!("/bytes/{}", o.small_body),
                o.proxy_addr,
                false,
            ),
            warmup,
            duration: window,
            sources: o.sources.clone(),
            label: format!("{scenario} {} round {round}", target.name()),
        };
        let mut meter = Meter::new(o, Some(pid), backend_pid);
        let measured =
            client::run(&plan, &mut |m| meter.mark(m)).and_then(|run| Ok((meter.spent()?, run)));
        let (spent, run) = match measured {
            Ok(got) => got,
            Err(e) => {
                if crate::procs::stopping() {
                    return Err(e);
                }
                let message = format!("{scenario} {} round {round}: {e:#}", target.name());
                eprintln!("loadtest: {message}");
                outcome.failures.push(message);
                continue;
            }
        };
        let mut result = result_of(&scenario, target, connections, None, &run.load, spent);
        result.round = round;
        result.quiet_start = quiet;
        if w.workload == Workload::ResumedHandshakes && run.resumed_handshakes == 0 {
            outcome.failures.push(format!(
                "{scenario} {} round {round}: no handshake was resumed ({} full)",
                target.name(),
                run.full_handshakes
            ));
        }
        eprintln!(
            "loadtest: {scenario:<22} {:<8} round {round}: {:>8.0}/s  proxy CPU {}/op  \
             full {} resumed {}  errors {}",
            target.name(),
            result.requests_per_second,
            result
                .proxy_us_per_request()
                .map(|us| format!("{us:.1} µs"))
                .unwrap_or_else(|| "–".into()),
            run.full_handshakes,
            run.resumed_handshakes,
            result.errors
        );
        outcome.tls.handshakes.push(HandshakeCount {
            scenario,
            target,
            round,
            full: run.full_handshakes,
            resumed: run.resumed_handshakes,
        });
        outcome.runs.push(result);
    }
    match proxy.stop() {
        Ok(status) if target == Target::Percore && !status.success() => outcome.failures.push(
            format!("`{command}` ended with {status} after SIGTERM (expected exit 0)"),
        ),
        Ok(_) => {}
        Err(e) => outcome.failures.push(format!("{e:#}")),
    }
    Ok(())
}
