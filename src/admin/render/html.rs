//! The stats page: the layout HAProxy users know — a process summary with
//! a colour legend, then one table per frontend and per backend with
//! Queue / Sessions / Bytes / Denied / Errors / Warnings / Server column
//! groups, server rows coloured by state — plus a latency column group
//! (p50 / p99 from the merged histograms).

use std::fmt::Write;
use std::time::Duration;

use super::{backend_status, uptime, View};
use crate::stats::{LatencyHisto, ServerState, ServerStatus};

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Latency as HAProxy prints times: ms, or µs below 1 ms.
fn latency(us: u64) -> String {
    if us == 0 {
        "-".into()
    } else if us < 1000 {
        format!("{us}µs")
    } else if us < 10_000_000 {
        format!("{}ms", us / 1000)
    } else {
        format!("{}s", us / 1_000_000)
    }
}

fn since(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d{}h", s / 86_400, s / 3600 % 24)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

const STYLE: &str = r#"
body { font-family: arial, helvetica, sans-serif; font-size: 12px; font-weight: normal; color: black; background: white; margin: 8px; }
h1 { font-size: 20px; margin: 4px 0; color: #5b4f9a; }
h1 a { color: #5b4f9a; text-decoration: none; }
h2 { font-size: 14px; margin: 4px 0 8px 0; }
h3 { font-size: 14px; color: #606060; margin: 12px 0 4px 0; }
a { color: #3030a0; }
table.info { border-collapse: collapse; margin-bottom: 10px; }
table.info td { vertical-align: top; padding: 2px 18px 2px 0; }
table.legend td { padding: 1px 6px; border: 1px solid #a0a0a0; }
table.tbl { border-collapse: collapse; border: 1px solid #808080; margin-bottom: 14px; width: 100%; }
table.tbl th, table.tbl td { border: 1px solid #b0b0b0; padding: 2px 4px; white-space: nowrap; }
table.tbl td { text-align: right; font-family: courier new, monospace; font-size: 12px; }
table.tbl td.ac, table.tbl td.name { text-align: left; font-family: arial, helvetica, sans-serif; }
table.tbl th { background: #ffffff; font-weight: normal; font-size: 11px; }
table.tbl th.pxname { background: #b00040; color: #ffff40; font-weight: bold; font-size: 13px; text-align: left; padding: 3px 8px; border-style: solid solid none solid; }
table.tbl th.empty { border-style: none; background: #ffffff; }
tr.titre th { background: #20d0d0; color: #000000; font-weight: bold; font-size: 11px; }
tr.frontend td { background: #ffffff; }
tr.backend td { background: #e8e8d0; font-weight: bold; }
tr.active_up td { background: #c0ffc0; }
tr.active_down td { background: #ff9090; }
tr.backup_up td { background: #b0d0ff; }
tr.backup_down td { background: #ff9090; }
tr.partial td { background: #ffffa0; }
tr.maintain td { background: #c07820; }
tr.draining td { background: #b0d0f0; }
td.legend_up { background: #c0ffc0; } td.legend_bup { background: #b0d0ff; }
td.legend_down { background: #ff9090; } td.legend_partial { background: #ffffa0; }
td.legend_maint { background: #c07820; }
.footer { color: #808080; font-size: 11px; margin-top: 8px; }
"#;

/// Two header rows shared by every proxy table.
const HEADER: &str = r#"<tr class="titre"><th rowspan="2"></th><th colspan="3">Queue</th><th colspan="5">Sessions</th><th colspan="2">Bytes</th><th colspan="2">Denied</th><th colspan="3">Errors</th><th colspan="2">Warnings</th><th colspan="3">Latency p50 / p99</th><th colspan="6">Server</th></tr>
<tr class="titre"><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Connect</th><th>Response</th><th>Total</th><th>Status</th><th>LastChg</th><th>Wght</th><th>Act</th><th>Bck</th><th>Aborts C/S</th></tr>
"#;

struct Cells<'a> {
    class: &'a str,
    name: &'a str,
    queue: [String; 3],
    sessions: [String; 5],
    bytes: [u64; 2],
    denied: [String; 2],
    errors: [String; 3],
    warnings: [String; 2],
    latency: [String; 3],
    server: [String; 6],
}

fn p50_p99(h: &LatencyHisto) -> String {
    if h.count() == 0 {
        "-".into()
    } else {
        format!(
            "{} / {}",
            latency(h.quantile_us(0.5)),
            latency(h.quantile_us(0.99))
        )
    }
}

fn row(out: &mut String, c: &Cells<'_>) {
    let _ = write!(
        out,
        "<tr class=\"{}\"><td class=\"name\">{}</td>",
        c.class,
        esc(c.name)
    );
    let cells = c
        .queue
        .iter()
        .chain(&c.sessions)
        .cloned()
        .chain(c.bytes.iter().map(u64::to_string))
        .chain(c.denied.iter().cloned())
        .chain(c.errors.iter().cloned())
        .chain(c.warnings.iter().cloned())
        .chain(c.latency.iter().cloned());
    for cell in cells {
        let _ = write!(out, "<td>{}</td>", esc(&cell));
    }
    for (i, cell) in c.server.iter().enumerate() {
        let class = if i == 0 { " class=\"ac\"" } else { "" };
        let _ = write!(out, "<td{class}>{}</td>", esc(cell));
    }
    out.push_str("</tr>\n");
}

fn server_class(st: &ServerState) -> &'static str {
    match (st.status(), st.backup) {
        (ServerStatus::Maint, _) => "maintain",
        (ServerStatus::Drain, _) => "draining",
        (ServerStatus::Partial { .. }, _) => "partial",
        (ServerStatus::Up, false) => "active_up",
        (ServerStatus::Up, true) => "backup_up",
        (ServerStatus::Down, false) => "active_down",
        (ServerStatus::Down, true) => "backup_down",
    }
}

fn table_start(out: &mut String, name: &str, kind: &str) {
    let _ = write!(
        out,
        "<table class=\"tbl\"><tr><th class=\"pxname\" colspan=\"6\"><a name=\"{0}\"></a>{0}</th><th class=\"empty\" colspan=\"21\">{kind}</th></tr>\n{HEADER}",
        esc(name)
    );
}

pub fn render(v: &View<'_>) -> String {
    let s = v.snapshot;
    let info = v.info;
    let mut out = String::with_capacity(16 << 10);
    out.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<title>Statistics Report for percore on {}</title>",
        esc(&info.hostname)
    );
    if let Some(r) = info.refresh {
        let _ = writeln!(
            out,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            r.as_secs().max(1)
        );
    }
    let _ = writeln!(out, "<style>{STYLE}</style></head><body>");
    match info.version {
        Some(version) => {
            let _ = writeln!(out, "<h1>percore version {}</h1>", esc(version));
        }
        None => out.push_str("<h1>percore</h1>\n"),
    }
    let _ = writeln!(
        out,
        "<h2>Statistics Report for pid {} on {}</h2><hr>",
        info.pid,
        esc(&info.hostname)
    );
    out.push_str("<h3>&gt; General process information</h3>\n<table class=\"info\"><tr><td><p>");
    let _ = write!(
        out,
        "<b>pid = </b>{} (nbthread = {})<br>\n<b>uptime = </b>{}<br>\n<b>system limits:</b> maxconn = {}<br>\n<b>current conns = </b>{}<br>\n<b>cores answered = </b>{}/{}<br>\n<b>access log:</b> {} lines, {} dropped",
        info.pid,
        info.cores,
        uptime(info.uptime),
        v.config.global.maxconn,
        s.stats.current_sessions(),
        s.cores,
        info.cores,
        s.log_lines,
        s.log_dropped
    );
    out.push_str("</p></td><td><table class=\"legend\">\n");
    out.push_str(
        "<tr><td class=\"legend_up\">active UP</td><td class=\"legend_bup\">backup UP</td></tr>\n",
    );
    out.push_str("<tr><td class=\"legend_down\">active or backup DOWN</td><td class=\"legend_partial\">cores disagree (changing)</td></tr>\n");
    out.push_str(
        "<tr><td class=\"legend_maint\" colspan=\"2\">active or backup in MAINTENANCE</td></tr>\n",
    );
    out.push_str("</table></td><td><b>Display option:</b><ul>\n");
    let uri = esc(&info.uri);
    if info.refresh.is_some() {
        let _ = writeln!(
            out,
            "<li><a href=\"{uri};norefresh\">Disable refresh</a></li>"
        );
    }
    let _ = writeln!(out, "<li><a href=\"{uri}\">Refresh now</a></li>");
    let _ = writeln!(out, "<li><a href=\"{uri};csv\">CSV export</a></li>");
    let _ = writeln!(out, "<li><a href=\"{uri};json\">JSON export</a></li>");
    out.push_str("<li><a href=\"/metrics\">Prometheus metrics</a></li>\n");
    out.push_str("</ul></td></tr></table>\n");

    for (fe, c) in v.config.frontends.iter().zip(&s.stats.frontends) {
        table_start(&mut out, &fe.name, "frontend");
        row(
            &mut out,
            &Cells {
                class: "frontend",
                name: "Frontend",
                queue: ["".into(), "".into(), "".into()],
                sessions: [
                    c.sessions_cur.to_string(),
                    c.sessions_max.to_string(),
                    fe.maxconn.map(|m| m.to_string()).unwrap_or_default(),
                    c.sessions_total.to_string(),
                    "".into(),
                ],
                bytes: [c.bytes_in, c.bytes_out],
                denied: [
                    c.denied_requests.to_string(),
                    c.denied_responses.to_string(),
                ],
                errors: [c.request_errors.to_string(), "".into(), "".into()],
                warnings: ["".into(), "".into()],
                latency: ["".into(), "".into(), "".into()],
                server: [
                    "OPEN".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                    "".into(),
                ],
            },
        );
        out.push_str("</table>\n");
    }

    for (b, be) in v.config.backends.iter().enumerate() {
        let (Some(c), Some(state), Some(t)) = (
            s.stats.backends.get(b),
            s.backends.get(b),
            s.stats.timings.get(b),
        ) else {
            continue;
        };
        table_start(&mut out, &be.name, "backend");
        for (srv, (sc, st)) in be
            .servers
            .iter()
            .zip(s.stats.servers[b].iter().zip(&state.servers))
        {
            row(
                &mut out,
                &Cells {
                    class: server_class(st),
                    name: &srv.name,
                    queue: ["0".into(), "0".into(), "".into()],
                    sessions: [
                        sc.sessions_cur.to_string(),
                        sc.sessions_max.to_string(),
                        srv.maxconn.map(|m| m.to_string()).unwrap_or_default(),
                        sc.sessions_total.to_string(),
                        st.lbtot.to_string(),
                    ],
                    bytes: [sc.bytes_in, sc.bytes_out],
                    denied: ["".into(), "0".into()],
                    errors: [
                        "".into(),
                        sc.conn_errors.to_string(),
                        sc.response_errors.to_string(),
                    ],
                    warnings: [sc.retries.to_string(), sc.redispatches.to_string()],
                    latency: ["".into(), "".into(), "".into()],
                    server: [
                        st.status().word(),
                        since(st.since_change),
                        st.weight.to_string(),
                        if st.backup { "-" } else { "Y" }.into(),
                        if st.backup { "Y" } else { "-" }.into(),
                        format!("{}/{}", sc.client_aborts, sc.server_aborts),
                    ],
                },
            );
        }
        let (act, bck) = state.usable_servers();
        let weight: u32 = state
            .servers
            .iter()
            .filter(|st| st.status() == ServerStatus::Up && !st.backup)
            .map(|st| st.weight)
            .sum();
        let lbtot: u64 = state.servers.iter().map(|st| st.lbtot).sum();
        let last = state
            .servers
            .iter()
            .map(|st| st.since_change)
            .min()
            .unwrap_or_default();
        row(
            &mut out,
            &Cells {
                class: "backend",
                name: "Backend",
                queue: [
                    state.queue_cur.to_string(),
                    state.queue_max.to_string(),
                    "".into(),
                ],
                sessions: [
                    c.sessions_cur.to_string(),
                    c.sessions_max.to_string(),
                    "".into(),
                    c.sessions_total.to_string(),
                    lbtot.to_string(),
                ],
                bytes: [c.bytes_in, c.bytes_out],
                denied: [
                    c.denied_requests.to_string(),
                    c.denied_responses.to_string(),
                ],
                errors: [
                    "".into(),
                    c.conn_errors.to_string(),
                    c.response_errors.to_string(),
                ],
                warnings: [c.retries.to_string(), c.redispatches.to_string()],
                latency: [p50_p99(&t.connect), p50_p99(&t.response), p50_p99(&t.total)],
                server: [
                    backend_status(s, b).into(),
                    since(last),
                    weight.to_string(),
                    act.to_string(),
                    bck.to_string(),
                    format!("{}/{}", c.client_aborts, c.server_aborts),
                ],
            },
        );
        out.push_str("</table>\n");
    }
    out.push_str("<p class=\"footer\">Counters are merged from every core over glommio channels at each request; Max values are sums of per-core peaks.</p>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn page_has_tables_colours_and_refresh() {
        let (config, snapshot, info) = sample();
        let page = render(&View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        });
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        assert!(page.contains("<tr class=\"active_up\"><td class=\"name\">s1</td>"));
        assert!(page.contains("<tr class=\"backup_down\"><td class=\"name\">s2</td>"));
        assert!(page.contains("<tr class=\"backend\"><td class=\"name\">Backend</td>"));
        assert!(page.contains("uptime = </b>1d 1h01m01s"));
        assert!(page.contains("percore version 9.9.9"));
        assert_eq!(page.matches("<table class=\"tbl\">").count(), 2);
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
