//! The TLS part of the suite's report: headline lines and a section with
//! one row per workload, certificate and proxy.

use super::setup::KeyType;
use super::{TlsWorkload, WORKLOADS};
use crate::hist::format_micros;
use crate::suite::{Options, SuiteOutcome, Target};
use crate::suite_report::{cell, Better, Headline};
use std::fmt::Write as _;

/// Client-side handshake counts of a scenario and target over all rounds.
fn handshakes(outcome: &SuiteOutcome, scenario: &str, target: Target) -> (u64, u64) {
    outcome
        .tls
        .handshakes
        .iter()
        .filter(|h| h.scenario == scenario && h.target == target)
        .fold((0, 0), |(f, r), h| (f + h.full, r + h.resumed))
}

/// Proxy CPU per operation, the figure that survives this machine's noise
/// (rates are in the TLS section); TLS 1.2 resumption stays in the section.
pub fn headlines(outcome: &SuiteOutcome) -> Vec<Headline> {
    let mut lines = Vec::new();
    for key in KeyType::ALL {
        for w in WORKLOADS.iter().filter(|w| w.name != "tls12-resumed") {
            let scenario = w.scenario(key);
            let cpu = |t: Target| cell(outcome, &scenario, t, "loadtest", None)?.proxy_us;
            let values = [cpu(Target::Percore), cpu(Target::Haproxy), None];
            if values[0].is_none() && values[1].is_none() {
                continue;
            }
            let per = match w.name {
                "https-keepalive" => "request",
                _ => "handshake",
            };
            lines.push(Headline {
                measure: format!("{} ({}): proxy CPU per {per}", title(w), key.title()),
                values,
                better: Better::Lower,
                unit: "µs",
            });
        }
    }
    lines
}

fn title(w: &TlsWorkload) -> String {
    match w.name {
        "tls13-full" => "TLS 1.3 full handshakes".into(),
        "tls13-resumed" => "TLS 1.3 resumed handshakes".into(),
        "tls12-resumed" => "TLS 1.2 resumed handshakes".into(),
        _ => "HTTPS keep-alive".into(),
    }
}

fn us(value: Option<f64>) -> String {
    match value {
        Some(v) if v >= 1000.0 => format_micros(v.round() as u64),
        Some(v) => format!("{v:.1} µs"),
        None => "–".into(),
    }
}

/// The "TLS termination" subsection.
pub fn section(o: &Options, outcome: &SuiteOutcome) -> String {
    let mut out = String::new();
    let w = &mut out;
    let t = &outcome.tls;
    let _ = writeln!(w, "### TLS termination\n");
    if t.handshakes.is_empty() {
        let _ = writeln!(w, "Not run.\n");
        return out;
    }
    let _ = writeln!(
        w,
        "- percore: {}",
        t.percore_library.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        w,
        "- HAProxy: {}",
        t.haproxy_library.as_deref().unwrap_or("not installed")
    );
    let _ = writeln!(
        w,
        "- client: loadtest's own epoll loop with rustls (same version, ring), \
         offering one suite and only X25519, so both proxies negotiate the same; \
         it does not verify the certificate (like `openssl s_time`).\n"
    );
    let _ = writeln!(
        w,
        "Each certificate is made at run time (under target/, not committed), e.g. `{}`. \
         Configs per certificate in `{}/<ecdsa|rsa>/`. Per certificate and round, \
         each proxy starts fresh and runs every workload in turn, {:.1} s warm-up + \
         {:.1} s window each. Handshakes: {} concurrent connections, each connects, \
         handshakes, sends `close_notify` and reads until the proxy closes (so TLS 1.3 \
         tickets sent after the handshake are taken); the resumed runs share one \
         client session store, and the client counts each handshake as full or \
         resumed (rustls `handshake_kind()`). Keep-alive: {} connections, `GET \
         /bytes/{}` back to back. **No direct column**: TLS is terminated by the \
         proxy; without one the client would talk TLS to a plain backend.\n",
        t.certificate_commands
            .first()
            .map(String::as_str)
            .unwrap_or("openssl req -x509 ..."),
        o.config_dir.join("tls").display(),
        t.warmup_seconds,
        t.window_seconds,
        t.handshake_connections,
        t.keepalive_connections,
        o.small_body
    );
    let cpu = o.proxy_cpu;
    let _ = writeln!(
        w,
        "| workload | certificate | cipher suite | target | ops/s | p50 | p99 | proxy CPU/op | \
         CPU {cpu}/op | client CPU/op | percore / HAProxy CPU/op | full / resumed | errors | runs |"
    );
    let _ = writeln!(
        w,
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for key in KeyType::ALL {
        for wl in WORKLOADS {
            let scenario = wl.scenario(key);
            let haproxy_cpu = cell(outcome, &scenario, Target::Haproxy, "loadtest", None)
                .and_then(|c| c.proxy_us);
            for target in [Target::Percore, Target::Haproxy] {
                let Some(c) = cell(outcome, &scenario, target, "loadtest", None) else {
                    continue;
                };
                let ratio = match (target, c.proxy_us, haproxy_cpu) {
                    (Target::Percore, Some(ours), Some(theirs)) if theirs > 0.0 => {
                        format!("{:.2}×", ours / theirs)
                    }
                    _ => String::new(),
                };
                let kinds = match wl.name {
                    "https-keepalive" => "–".to_string(),
                    _ => {
                        let (full, resumed) = handshakes(outcome, &scenario, target);
                        format!("{full} / {resumed}")
                    }
                };
                let _ = writeln!(
                    w,
                    "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {ratio} | {kinds} | {} | {} |",
                    wl.title,
                    key.title(),
                    wl.suite_name(key),
                    target.name(),
                    c.requests_per_second,
                    format_micros(c.p50_us.round() as u64),
                    format_micros(c.p99_us.round() as u64),
                    us(c.proxy_us),
                    us(c.core_us),
                    us(c.client_us),
                    c.errors,
                    c.runs
                );
            }
        }
    }
    let _ = writeln!(
        w,
        "\n*ops*: handshakes (new connections) or keep-alive requests. *full / \
         resumed*: handshakes in the windows as the client saw them, summed over \
         rounds. Values are medians over rounds. The client and the backend share \
         CPU {}; when that core is saturated (see *CPU {} busy* in *Every run*) the \
         rates measure the client, and proxy CPU per operation is the figure to \
         compare.\n",
        o.load_cpu, o.load_cpu
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::RunResult;
    use crate::tls::HandshakeCount;

    #[test]
    fn rows_ratios_and_resumption_counts() {
        let mut outcome = SuiteOutcome::default();
        let options = crate::tests_support::options();
        let base = crate::suite::result_of(
            "tls13-resumed-ecdsa",
            Target::Percore,
            32,
            None,
            &crate::http_load::Outcome {
                requests: 1000,
                duration: std::time::Duration::from_secs(1),
                window: std::time::Duration::from_secs(1),
                ..Default::default()
            },
            Default::default(),
        );
        let mut ours: RunResult = base.clone();
        ours.proxy_cpu_seconds = Some(0.2);
        let mut theirs = base;
        theirs.target = Target::Haproxy;
        theirs.proxy_cpu_seconds = Some(0.1);
        outcome.runs = vec![ours, theirs];
        outcome.tls.handshakes = vec![HandshakeCount {
            scenario: "tls13-resumed-ecdsa".into(),
            target: Target::Percore,
            round: 1,
            full: 3,
            resumed: 997,
        }];
        outcome.tls.percore_library = Some("rustls 0.23.46 (ring 0.17.14 provider)".into());
        let text = section(&options, &outcome);
        assert!(text.contains("rustls 0.23.46"), "{text}");
        assert!(text.contains("No direct column"), "{text}");
        assert!(text.contains("| 3 / 997 |"), "{text}");
        assert!(text.contains("| 2.00× |"), "{text}");
        let lines = headlines(&outcome);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].values[0], Some(200.0));
        assert_eq!(lines[0].values[1], Some(100.0));
        assert_eq!(lines[0].values[2], None);
        assert!(lines[0].measure.contains("TLS 1.3 resumed"));
    }
}
