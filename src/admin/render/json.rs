//! `<uri>;json` / `?format=json`: one JSON document with every counter,
//! named as in percore's stats structs (not HAProxy's field-array layout,
//! which is awkward to consume). Documented in docs/observability.md.

use std::fmt::Write;

use super::{backend_status, View};
use crate::log::format::json_str;
use crate::stats::{LatencyHisto, RESPONSE_CLASSES};

fn responses(out: &mut String, r: &[u64; 6]) {
    out.push('{');
    for (i, (class, n)) in RESPONSE_CLASSES.iter().zip(r).enumerate() {
        let _ = write!(out, "{}\"{class}\":{n}", if i > 0 { "," } else { "" });
    }
    out.push('}');
}

fn timing(out: &mut String, h: &LatencyHisto) {
    let _ = write!(
        out,
        "{{\"count\":{},\"sum_us\":{},\"mean_us\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        h.count(),
        h.sum_us(),
        h.mean_us(),
        h.quantile_us(0.5),
        h.quantile_us(0.9),
        h.quantile_us(0.99),
        h.max_us()
    );
}

pub fn render(v: &View<'_>) -> String {
    let s = v.snapshot;
    let mut out = String::with_capacity(4096);
    let _ = write!(out, "{{\"process\":{{\"pid\":{}", v.info.pid);
    if let Some(version) = v.info.version {
        out.push_str(",\"version\":");
        json_str(&mut out, version);
    }
    let _ = write!(
        out,
        ",\"uptime_seconds\":{},\"cores\":{},\"cores_answered\":{},\"current_sessions\":{},\"log_lines\":{},\"log_dropped\":{}}}",
        v.info.uptime.as_secs(),
        v.info.cores,
        s.cores,
        s.stats.current_sessions(),
        s.log_lines,
        s.log_dropped
    );
    out.push_str(",\"frontends\":[");
    for (i, (fe, c)) in v
        .config
        .frontends
        .iter()
        .zip(&s.stats.frontends)
        .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, &fe.name);
        let _ = write!(
            out,
            ",\"status\":\"OPEN\",\"sessions_cur\":{},\"sessions_max\":{},\"sessions_total\":{},\"bytes_in\":{},\"bytes_out\":{},\"requests_total\":{},\"denied_requests\":{},\"denied_responses\":{},\"request_errors\":{},\"ssl_failed_handshakes\":{},\"responses\":",
            c.sessions_cur, c.sessions_max, c.sessions_total, c.bytes_in, c.bytes_out,
            c.requests_total, c.denied_requests, c.denied_responses, c.request_errors,
            c.ssl_failed_handshakes
        );
        responses(&mut out, &c.responses);
        out.push('}');
    }
    out.push_str("],\"backends\":[");
    for (b, be) in v.config.backends.iter().enumerate() {
        let (Some(c), Some(state), Some(t)) = (
            s.stats.backends.get(b),
            s.backends.get(b),
            s.stats.timings.get(b),
        ) else {
            continue;
        };
        if b > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&mut out, &be.name);
        let (act, bck) = state.usable_servers();
        let _ = write!(
            out,
            ",\"status\":\"{}\",\"sessions_cur\":{},\"sessions_max\":{},\"sessions_total\":{},\"bytes_in\":{},\"bytes_out\":{},\"queue_cur\":{},\"queue_max\":{},\"conn_errors\":{},\"response_errors\":{},\"retries\":{},\"redispatches\":{},\"queue_timeouts\":{},\"no_server\":{},\"client_aborts\":{},\"server_aborts\":{},\"requests_total\":{},\"denied_requests\":{},\"denied_responses\":{},\"active_servers\":{act},\"backup_servers\":{bck},\"responses\":",
            backend_status(s, b), c.sessions_cur, c.sessions_max, c.sessions_total, c.bytes_in,
            c.bytes_out, state.queue_cur, state.queue_max, c.conn_errors, c.response_errors,
            c.retries, c.redispatches, c.queue_timeouts, c.no_server, c.client_aborts,
            c.server_aborts, c.requests_total, c.denied_requests, c.denied_responses
        );
        responses(&mut out, &c.responses);
        out.push_str(",\"timings\":{\"connect\":");
        timing(&mut out, &t.connect);
        out.push_str(",\"response\":");
        timing(&mut out, &t.response);
        out.push_str(",\"total\":");
        timing(&mut out, &t.total);
        out.push_str("},\"servers\":[");
        for (i, (srv, (sc, ss))) in be
            .servers
            .iter()
            .zip(s.stats.servers[b].iter().zip(&state.servers))
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            json_str(&mut out, &srv.name);
            let _ = write!(
                out,
                ",\"status\":\"{}\",\"weight\":{},\"backup\":{},\"last_change_seconds\":{},\"lbtot\":{},\"slots_used\":{},\"sessions_cur\":{},\"sessions_max\":{},\"sessions_total\":{},\"bytes_in\":{},\"bytes_out\":{},\"conn_errors\":{},\"response_errors\":{},\"retries\":{},\"redispatches\":{},\"client_aborts\":{},\"server_aborts\":{},\"responses\":",
                ss.status().word(), ss.weight, ss.backup, ss.since_change.as_secs(), ss.lbtot,
                ss.slots_used, sc.sessions_cur, sc.sessions_max, sc.sessions_total, sc.bytes_in,
                sc.bytes_out, sc.conn_errors, sc.response_errors, sc.retries, sc.redispatches,
                sc.client_aborts, sc.server_aborts
            );
            responses(&mut out, &sc.responses);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
    out
}
