//! `<uri>;json` / `?format=json`: one JSON document with every counter,
//! named as in percore's stats structs (not HAProxy's field-array layout,
//! which is awkward to consume; the runtime API's `show stat json` has
//! that one). Documented in docs/observability.md. Values and keys come
//! from [`fields::FIELDS`]; the lists below keep the order the document
//! has always had, and fields added to the table later follow them.

use std::fmt::Write;

use super::fields::{self, Kind, Row, FIELDS, HRSP};
use super::View;
use crate::log::format::json_str;
use crate::stats::{LatencyHisto, RESPONSE_CLASSES};

/// Fields in document order, by CSV name; `responses` closes each object.
#[rustfmt::skip]
const FRONTEND: &[&str] = &[
    "pxname", "status", "scur", "smax", "stot", "bin", "bout", "req_tot", "dreq", "dresp", "ereq",
    "ssl_failed_handshake",
];
#[rustfmt::skip]
const BACKEND: &[&str] = &[
    "pxname", "status", "scur", "smax", "stot", "bin", "bout", "qcur", "qmax", "econ", "eresp",
    "wretr", "wredis", "queue_timeouts", "no_server", "cli_abrt", "srv_abrt", "req_tot", "dreq",
    "dresp", "act", "bck",
];
#[rustfmt::skip]
const SERVER: &[&str] = &[
    "svname", "status", "weight", "backup", "lastchg", "lbtot", "slots_used", "scur", "smax",
    "stot", "bin", "bout", "econ", "eresp", "wretr", "wredis", "cli_abrt", "srv_abrt",
];

/// `{"name":...,...,"responses":{...}` (left open for the caller).
fn object(out: &mut String, r: &Row<'_>) {
    let kind = r.kind();
    let order = match kind {
        Kind::Frontend => FRONTEND,
        Kind::Backend => BACKEND,
        Kind::Server => SERVER,
    };
    let listed = order.iter().filter_map(|name| fields::field(name));
    let added = FIELDS.iter().filter(|f| !order.contains(&f.name));
    let mut first = true;
    for f in listed.chain(added) {
        let Some(key) = f.json_key(kind) else {
            continue;
        };
        out.push(if first { '{' } else { ',' });
        first = false;
        json_str(out, key);
        out.push(':');
        r.get(f).write_json(out);
    }
    if first {
        out.push('{');
    } else {
        out.push(',');
    }
    out.push_str("\"responses\":{");
    for (i, (class, name)) in RESPONSE_CLASSES.iter().zip(HRSP).enumerate() {
        let _ = write!(out, "{}\"{class}\":", if i > 0 { "," } else { "" });
        r.value(name).write_json(out);
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
    let rows = fields::rows(v);
    let mut first = true;
    for r in rows.iter().filter(|r| r.kind() == Kind::Frontend) {
        if !first {
            out.push(',');
        }
        first = false;
        object(&mut out, r);
        out.push('}');
    }
    out.push_str("],\"backends\":[");
    // Rows come as each backend's servers, then the backend itself; the
    // document nests the servers inside their backend.
    let mut servers = String::new();
    let mut first_backend = true;
    for r in &rows {
        match r {
            Row::Server(_) => {
                servers.push(if servers.is_empty() { '[' } else { ',' });
                object(&mut servers, r);
                servers.push('}');
            }
            Row::Backend(b) => {
                if !first_backend {
                    out.push(',');
                }
                first_backend = false;
                object(&mut out, r);
                out.push_str(",\"timings\":{\"connect\":");
                timing(&mut out, &b.t.connect);
                out.push_str(",\"response\":");
                timing(&mut out, &b.t.response);
                out.push_str(",\"total\":");
                timing(&mut out, &b.t.total);
                out.push_str("},\"servers\":");
                if servers.is_empty() {
                    servers.push('[');
                }
                out.push_str(&servers);
                out.push_str("]}");
                servers.clear();
            }
            Row::Frontend(_) => {}
        }
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_field_has_a_key_for_its_kind() {
        for (kind, order) in [
            (Kind::Frontend, FRONTEND),
            (Kind::Backend, BACKEND),
            (Kind::Server, SERVER),
        ] {
            for name in order {
                let f = fields::field(name);
                assert!(
                    f.and_then(|f| f.json_key(kind)).is_some(),
                    "{name} on {kind:?}"
                );
            }
        }
    }
}
