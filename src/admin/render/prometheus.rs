//! `/metrics`: Prometheus text exposition format 0.0.4, with names in the
//! style of HAProxy's built-in exporter (`haproxy_frontend_current_sessions`
//! becomes `percore_frontend_current_sessions`; labels `proxy`, `server`,
//! `code`). Latencies are histograms in seconds built from the merged
//! HdrHistograms.

use std::fmt::Write;

use super::{backend_status, View};
use crate::stats::{LatencyHisto, ServerStatus, RESPONSE_CLASSES};

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

    let fes: Vec<(String, &crate::stats::FrontendCounters)> = v
        .config
        .frontends
        .iter()
        .zip(&s.stats.frontends)
        .map(|(fe, c)| (format!("proxy=\"{}\"", label(&fe.name)), c))
        .collect();
    type FeField = fn(&crate::stats::FrontendCounters) -> u64;
    let fe_metrics: [(&str, &str, &str, FeField); 10] = [
        ("current_sessions", "gauge", "Current sessions.", |c| {
            c.sessions_cur
        }),
        (
            "max_sessions",
            "gauge",
            "Highest current sessions (sum of per-core peaks).",
            |c| c.sessions_max,
        ),
        ("sessions_total", "counter", "Sessions accepted.", |c| {
            c.sessions_total
        }),
        (
            "bytes_in_total",
            "counter",
            "Bytes received from clients.",
            |c| c.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Bytes sent to clients.",
            |c| c.bytes_out,
        ),
        (
            "http_requests_total",
            "counter",
            "HTTP requests received.",
            |c| c.requests_total,
        ),
        (
            "requests_denied_total",
            "counter",
            "Requests denied.",
            |c| c.denied_requests,
        ),
        (
            "responses_denied_total",
            "counter",
            "Responses denied.",
            |c| c.denied_responses,
        ),
        (
            "request_errors_total",
            "counter",
            "Invalid or aborted requests.",
            |c| c.request_errors,
        ),
        (
            "ssl_failed_handshakes_total",
            "counter",
            "TLS handshakes with clients that failed.",
            |c| c.ssl_failed_handshakes,
        ),
    ];
    for (suffix, kind, help, get) in fe_metrics {
        let name = format!("percore_frontend_{suffix}");
        o.family(&name, kind, help);
        for (labels, c) in &fes {
            o.sample(&name, labels, get(c));
        }
    }
    o.family(
        "percore_frontend_http_responses_total",
        "counter",
        "HTTP responses by status class.",
    );
    for (labels, c) in &fes {
        for (class, n) in RESPONSE_CLASSES.iter().zip(&c.responses) {
            o.sample(
                "percore_frontend_http_responses_total",
                &format!("{labels},code=\"{class}\""),
                n,
            );
        }
    }

    let bes: Vec<(String, usize)> = v
        .config
        .backends
        .iter()
        .enumerate()
        .filter(|(b, _)| *b < s.stats.backends.len() && *b < s.backends.len())
        .map(|(b, be)| (format!("proxy=\"{}\"", label(&be.name)), b))
        .collect();
    type BeField = fn(&crate::stats::BackendCounters) -> u64;
    let be_metrics: [(&str, &str, &str, BeField); 15] = [
        ("current_sessions", "gauge", "Current sessions.", |c| {
            c.sessions_cur
        }),
        (
            "max_sessions",
            "gauge",
            "Highest current sessions (sum of per-core peaks).",
            |c| c.sessions_max,
        ),
        (
            "sessions_total",
            "counter",
            "Sessions that reached a server.",
            |c| c.sessions_total,
        ),
        ("bytes_in_total", "counter", "Bytes sent to servers.", |c| {
            c.bytes_in
        }),
        (
            "bytes_out_total",
            "counter",
            "Bytes received from servers.",
            |c| c.bytes_out,
        ),
        (
            "connection_errors_total",
            "counter",
            "Failed connection attempts.",
            |c| c.conn_errors,
        ),
        (
            "response_errors_total",
            "counter",
            "Server errors after connecting.",
            |c| c.response_errors,
        ),
        (
            "retry_warnings_total",
            "counter",
            "Connection retries.",
            |c| c.retries,
        ),
        (
            "redispatch_warnings_total",
            "counter",
            "Retries sent to another server.",
            |c| c.redispatches,
        ),
        (
            "queue_timeouts_total",
            "counter",
            "Connections that gave up in the queue.",
            |c| c.queue_timeouts,
        ),
        (
            "no_server_total",
            "counter",
            "Connections refused: no usable server.",
            |c| c.no_server,
        ),
        (
            "client_aborts_total",
            "counter",
            "Sessions aborted by the client.",
            |c| c.client_aborts,
        ),
        (
            "server_aborts_total",
            "counter",
            "Sessions aborted by the server.",
            |c| c.server_aborts,
        ),
        (
            "http_requests_total",
            "counter",
            "HTTP requests sent.",
            |c| c.requests_total,
        ),
        (
            "requests_denied_total",
            "counter",
            "Requests denied.",
            |c| c.denied_requests,
        ),
    ];
    for (suffix, kind, help, get) in be_metrics {
        let name = format!("percore_backend_{suffix}");
        o.family(&name, kind, help);
        for (labels, b) in &bes {
            o.sample(&name, labels, get(&s.stats.backends[*b]));
        }
    }
    o.family(
        "percore_backend_http_responses_total",
        "counter",
        "HTTP responses by status class.",
    );
    for (labels, b) in &bes {
        for (class, n) in RESPONSE_CLASSES.iter().zip(&s.stats.backends[*b].responses) {
            o.sample(
                "percore_backend_http_responses_total",
                &format!("{labels},code=\"{class}\""),
                n,
            );
        }
    }
    o.family(
        "percore_backend_current_queue",
        "gauge",
        "Connections waiting for a server slot.",
    );
    for (labels, b) in &bes {
        o.sample(
            "percore_backend_current_queue",
            labels,
            s.backends[*b].queue_cur,
        );
    }
    o.family(
        "percore_backend_max_queue",
        "gauge",
        "Highest queue (sum of per-core peaks).",
    );
    for (labels, b) in &bes {
        o.sample(
            "percore_backend_max_queue",
            labels,
            s.backends[*b].queue_max,
        );
    }
    o.family(
        "percore_backend_status",
        "gauge",
        "1 if the backend has a usable server.",
    );
    for (labels, b) in &bes {
        o.sample(
            "percore_backend_status",
            labels,
            u8::from(backend_status(s, *b) == "UP"),
        );
    }
    o.family(
        "percore_backend_active_servers",
        "gauge",
        "Usable active servers.",
    );
    for (labels, b) in &bes {
        o.sample(
            "percore_backend_active_servers",
            labels,
            s.backends[*b].usable_servers().0,
        );
    }
    o.family(
        "percore_backend_backup_servers",
        "gauge",
        "Usable backup servers.",
    );
    for (labels, b) in &bes {
        o.sample(
            "percore_backend_backup_servers",
            labels,
            s.backends[*b].usable_servers().1,
        );
    }
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
        let name = format!("percore_backend_{suffix}");
        o.family(&name, "histogram", help);
        for (labels, b) in &bes {
            if let Some(t) = s.stats.timings.get(*b) {
                o.histogram(&name, labels, get(t));
            }
        }
    }

    let mut servers = Vec::new();
    for (labels, b) in &bes {
        let be = &v.config.backends[*b];
        for (i, srv) in be.servers.iter().enumerate() {
            if let (Some(c), Some(st)) = (s.stats.servers[*b].get(i), s.backends[*b].servers.get(i))
            {
                servers.push((format!("{labels},server=\"{}\"", label(&srv.name)), c, st));
            }
        }
    }
    type SrvField = fn(&crate::stats::ServerCounters) -> u64;
    let srv_metrics: [(&str, &str, &str, SrvField); 11] = [
        ("current_sessions", "gauge", "Current sessions.", |c| {
            c.sessions_cur
        }),
        (
            "max_sessions",
            "gauge",
            "Highest current sessions (sum of per-core peaks).",
            |c| c.sessions_max,
        ),
        (
            "sessions_total",
            "counter",
            "Sessions sent to this server.",
            |c| c.sessions_total,
        ),
        (
            "bytes_in_total",
            "counter",
            "Bytes sent to the server.",
            |c| c.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Bytes received from the server.",
            |c| c.bytes_out,
        ),
        (
            "connection_errors_total",
            "counter",
            "Failed connection attempts.",
            |c| c.conn_errors,
        ),
        (
            "response_errors_total",
            "counter",
            "Errors after connecting.",
            |c| c.response_errors,
        ),
        (
            "retry_warnings_total",
            "counter",
            "Connection retries.",
            |c| c.retries,
        ),
        (
            "redispatch_warnings_total",
            "counter",
            "Retries moved to another server.",
            |c| c.redispatches,
        ),
        (
            "client_aborts_total",
            "counter",
            "Sessions aborted by the client.",
            |c| c.client_aborts,
        ),
        (
            "server_aborts_total",
            "counter",
            "Sessions aborted by the server.",
            |c| c.server_aborts,
        ),
    ];
    for (suffix, kind, help, get) in srv_metrics {
        let name = format!("percore_server_{suffix}");
        o.family(&name, kind, help);
        for (labels, c, _) in &servers {
            o.sample(&name, labels, get(c));
        }
    }
    o.family(
        "percore_server_status",
        "gauge",
        "Server state: 1 for the state the server is in.",
    );
    for (labels, _, st) in &servers {
        let now = st.status();
        for (word, is) in [
            ("UP", now == ServerStatus::Up),
            ("DOWN", now == ServerStatus::Down),
            ("MAINT", now == ServerStatus::Maint),
            ("DRAIN", now == ServerStatus::Drain),
            ("PARTIAL", matches!(now, ServerStatus::Partial { .. })),
        ] {
            o.sample(
                "percore_server_status",
                &format!("{labels},state=\"{word}\""),
                u8::from(is),
            );
        }
    }
    o.family("percore_server_weight", "gauge", "Server weight.");
    for (labels, _, st) in &servers {
        o.sample("percore_server_weight", labels, st.weight);
    }
    o.family(
        "percore_server_last_change_seconds",
        "gauge",
        "Seconds since the server's last state change.",
    );
    for (labels, _, st) in &servers {
        o.sample(
            "percore_server_last_change_seconds",
            labels,
            st.since_change.as_secs(),
        );
    }
    o.family(
        "percore_server_loadbalanced_total",
        "counter",
        "Times picked by load balancing.",
    );
    for (labels, _, st) in &servers {
        o.sample("percore_server_loadbalanced_total", labels, st.lbtot);
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

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
