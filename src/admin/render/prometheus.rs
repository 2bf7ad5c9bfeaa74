//! `/metrics`: Prometheus text exposition format 0.0.4, with names in the
//! style of HAProxy's built-in exporter (`haproxy_frontend_current_sessions`
//! becomes `percore_frontend_current_sessions`; labels `proxy`, `server`,
//! `code`). Latencies are histograms in seconds built from the merged
//! HdrHistograms.

use std::fmt::Write;

use super::fields::{self, Kind, Row, FIELDS, HRSP};
use super::View;
use crate::stats::{LatencyHisto, RESPONSE_CLASSES, STATE_LABELS};

/// One family, or a group of families not read from the table.
#[derive(Clone, Copy)]
enum Item {
    /// The table field of this CSV name.
    F(&'static str),
    /// `http_responses_total{code=...}`, from the hrsp_* fields.
    Responses,
    /// `status`: 0/1 for a backend, one sample per state for a server.
    Status,
    /// The latency histograms of a backend.
    Histograms,
}
use Item::{Histograms, Responses, Status, F};

/// Families in the order `/metrics` has always listed them; fields added
/// to the table later follow.
#[rustfmt::skip]
const FRONTEND: &[Item] = &[
    F("scur"), F("smax"), F("stot"), F("bin"), F("bout"), F("req_tot"), F("dreq"), F("dresp"),
    F("ereq"), F("ssl_failed_handshake"), Responses,
];
#[rustfmt::skip]
const BACKEND: &[Item] = &[
    F("scur"), F("smax"), F("stot"), F("bin"), F("bout"), F("econ"), F("eresp"), F("wretr"),
    F("wredis"), F("queue_timeouts"), F("no_server"), F("cli_abrt"), F("srv_abrt"), F("req_tot"),
    F("dreq"), Responses, F("qcur"), F("qmax"), Status, F("act"), F("bck"), Histograms,
];
#[rustfmt::skip]
const SERVER: &[Item] = &[
    F("scur"), F("smax"), F("stot"), F("bin"), F("bout"), F("econ"), F("eresp"), F("wretr"),
    F("wredis"), F("cli_abrt"), F("srv_abrt"), Status, F("weight"), F("lastchg"), F("lbtot"),
];

/// Bucket bounds in seconds, from 100 µs to one minute.
const BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

/// Label values: escape `\`, `"` and newlines (names are already tame).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {value}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    fn histogram(&mut self, name: &str, labels: &str, h: &LatencyHisto) {
        for le in BUCKETS {
            let le_us = (le * 1e6) as u64;
            self.sample(
                &format!("{name}_bucket"),
                &format!("{labels},le=\"{le}\""),
                h.count_le(le_us),
            );
        }
        self.sample(
            &format!("{name}_bucket"),
            &format!("{labels},le=\"+Inf\""),
            h.count(),
        );
        self.sample(&format!("{name}_sum"), labels, h.sum_us() as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, h.count());
    }
}

/// `proxy="..."`, plus `server="..."` on server rows.
fn labels(r: &Row<'_>) -> String {
    match r {
        Row::Server(sv) => format!(
            "proxy=\"{}\",server=\"{}\"",
            label(&sv.be.name),
            label(&sv.srv.name)
        ),
        _ => format!("proxy=\"{}\"", label(r.proxy_name())),
    }
}

fn family(o: &mut Out, kind: Kind, item: Item, rows: &[(String, &Row<'_>)]) {
    let prefix = kind.prom_prefix();
    match item {
        F(name) => {
            let Some(f) = fields::field(name) else {
                return;
            };
            let Some((suffix, ty)) = f.prom_name(kind) else {
                return;
            };
            let name = format!("percore_{prefix}_{suffix}");
            o.family(&name, ty.as_str(), f.help(kind));
            for (labels, r) in rows {
                o.sample(&name, labels, r.get(f).to_plain());
            }
        }
        Responses => {
            let name = format!("percore_{prefix}_http_responses_total");
            o.family(&name, "counter", "HTTP responses by status class.");
            for (labels, r) in rows {
                for (class, field) in RESPONSE_CLASSES.iter().zip(HRSP) {
                    o.sample(
                        &name,
                        &format!("{labels},code=\"{class}\""),
                        r.value(field).to_plain(),
                    );
                }
            }
        }
        Status => match kind {
            Kind::Backend => {
                o.family(
                    "percore_backend_status",
                    "gauge",
                    "1 if the backend has a usable server.",
                );
                for (labels, r) in rows {
                    if let Row::Backend(b) = r {
                        let up = b.state.status_word() == "UP";
                        o.sample("percore_backend_status", labels, u8::from(up));
                    }
                }
            }
            Kind::Server => {
                o.family(
                    "percore_server_status",
                    "gauge",
                    "Server state: 1 for the state the server is in.",
                );
                for (labels, r) in rows {
                    let Some(st) = r.server_state() else {
                        continue;
                    };
                    let now = st.status().look().label;
                    for state in STATE_LABELS {
                        o.sample(
                            "percore_server_status",
                            &format!("{labels},state=\"{state}\""),
                            u8::from(now == state),
                        );
                    }
                }
            }
            Kind::Frontend => {}
        },
        Histograms => {
            type Pick = fn(&crate::stats::BackendTimings) -> &LatencyHisto;
            let histos: [(&str, &str, Pick); 3] = [
                (
                    "connect_time_seconds",
                    "Time to connect to a server.",
                    |t| &t.connect,
                ),
                (
                    "response_time_seconds",
                    "Time from connected to the first byte from the server.",
                    |t| &t.response,
                ),
                (
                    "total_time_seconds",
                    "Session time, accept to close.",
                    |t| &t.total,
                ),
            ];
            for (suffix, help, get) in histos {
                let name = format!("percore_{prefix}_{suffix}");
                o.family(&name, "histogram", help);
                for (labels, r) in rows {
                    if let Row::Backend(b) = r {
                        o.histogram(&name, labels, get(b.t));
                    }
                }
            }
        }
    }
}

pub fn render(v: &View<'_>) -> String {
    let s = v.snapshot;
    let mut o = Out(String::with_capacity(16 << 10));

    o.family(
        "percore_process_nbthread",
        "gauge",
        "Executors (one per core) running.",
    );
    o.sample("percore_process_nbthread", "", v.info.cores);
    o.family(
        "percore_process_stats_cores_answered",
        "gauge",
        "Cores whose counters are included in this scrape.",
    );
    o.sample("percore_process_stats_cores_answered", "", s.cores);
    o.family(
        "percore_process_uptime_seconds",
        "gauge",
        "Time since percore started.",
    );
    o.sample(
        "percore_process_uptime_seconds",
        "",
        v.info.uptime.as_secs(),
    );
    o.family(
        "percore_process_current_connections",
        "gauge",
        "Client sessions open, all frontends.",
    );
    o.sample(
        "percore_process_current_connections",
        "",
        s.stats.current_sessions(),
    );
    o.family(
        "percore_process_log_lines_total",
        "counter",
        "Access-log lines handed to the log writer.",
    );
    o.sample("percore_process_log_lines_total", "", s.log_lines);
    o.family(
        "percore_process_log_dropped_total",
        "counter",
        "Access-log lines dropped because a buffer was full.",
    );
    o.sample("percore_process_log_dropped_total", "", s.log_dropped);
    if let Some(version) = v.info.version {
        o.family("percore_process_build_info", "gauge", "Build information.");
        o.sample(
            "percore_process_build_info",
            &format!("version=\"{}\"", label(version)),
            1,
        );
    }

    let rows = fields::rows(v);
    for (kind, layout) in [
        (Kind::Frontend, FRONTEND),
        (Kind::Backend, BACKEND),
        (Kind::Server, SERVER),
    ] {
        let of_kind: Vec<(String, &Row<'_>)> = rows
            .iter()
            .filter(|r| r.kind() == kind)
            .map(|r| (labels(r), r))
            .collect();
        let listed = layout.iter().copied();
        let added = FIELDS
            .iter()
            .filter(|f| f.prom_name(kind).is_some())
            .filter(|f| {
                !layout
                    .iter()
                    .any(|i| matches!(i, Item::F(n) if *n == f.name))
            })
            .map(|f| Item::F(f.name));
        for item in listed.chain(added) {
            family(&mut o, kind, item, &of_kind);
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_listed_field_is_exported_for_its_kind() {
        for (kind, layout) in [
            (Kind::Frontend, FRONTEND),
            (Kind::Backend, BACKEND),
            (Kind::Server, SERVER),
        ] {
            for item in layout {
                if let F(name) = item {
                    let f = fields::field(name);
                    assert!(
                        f.and_then(|f| f.prom_name(kind)).is_some(),
                        "{name} on {kind:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn families_are_declared_once_and_histograms_are_cumulative() {
        let (config, snapshot, info) = sample();
        let text = render(&View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        });
        let mut seen = std::collections::HashSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(seen.insert(line.to_string()), "declared twice: {line}");
        }
        assert!(text.contains("percore_frontend_bytes_in_total{proxy=\"fe\"} 1234\n"));
        assert!(
            text.contains(
                "percore_backend_connect_time_seconds_bucket{proxy=\"be\",le=\"0.00025\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "percore_backend_connect_time_seconds_bucket{proxy=\"be\",le=\"0.0001\"} 0\n"
        ));
        assert!(text.contains("percore_backend_total_time_seconds_sum{proxy=\"be\"} 0.04\n"));
        assert!(
            text.contains("percore_server_status{proxy=\"be\",server=\"s2\",state=\"DOWN\"} 1\n")
        );
        assert!(text.contains("percore_process_build_info{version=\"9.9.9\"} 1\n"));
    }
}
