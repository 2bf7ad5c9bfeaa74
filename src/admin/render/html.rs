//! The stats page: the layout HAProxy users know — a process summary with
//! a colour legend, then one table per frontend and per backend with
//! Queue / Sessions / Bytes / Denied / Errors / Warnings / Server column
//! groups, server rows coloured by state — plus a latency column group
//! (p50 / p99 from the merged histograms).

use std::fmt::Write;
use std::time::Duration;

use super::fields::{self, Row};
use super::typed::Val;
use super::{uptime, View};
use crate::stats::{BackendTimings, LatencyHisto};

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

/// What one cell of a proxy table shows.
#[derive(Clone, Copy)]
enum Cell {
    /// The field's value, as in the CSV.
    F(&'static str),
    /// A field in seconds, as `1h2m`.
    Since(&'static str),
    /// A 0/1 field as `Y`/`-` on server rows; the number elsewhere.
    Flag(&'static str),
    /// Two fields as `a/b`; empty if the row has neither.
    Pair(&'static str, &'static str),
    /// p50 / p99 of a backend latency histogram.
    Latency(fn(&BackendTimings) -> &LatencyHisto),
}
use Cell::{Flag, Latency, Pair, Since, F};

/// HAProxy's column groups (title, then each column's title and cell).
/// Values come from the stats field table ([`fields`]).
const LAYOUT: &[(&str, &[(&str, Cell)])] = &[
    (
        "Queue",
        &[
            ("Cur", F("qcur")),
            ("Max", F("qmax")),
            ("Limit", F("qlimit")),
        ],
    ),
    (
        "Sessions",
        &[
            ("Cur", F("scur")),
            ("Max", F("smax")),
            ("Limit", F("slim")),
            ("Total", F("stot")),
            ("LbTot", F("lbtot")),
        ],
    ),
    ("Bytes", &[("In", F("bin")), ("Out", F("bout"))]),
    ("Denied", &[("Req", F("dreq")), ("Resp", F("dresp"))]),
    (
        "Errors",
        &[
            ("Req", F("ereq")),
            ("Conn", F("econ")),
            ("Resp", F("eresp")),
        ],
    ),
    ("Warnings", &[("Retr", F("wretr")), ("Redis", F("wredis"))]),
    (
        "Latency p50 / p99",
        &[
            ("Connect", Latency(|t| &t.connect)),
            ("Response", Latency(|t| &t.response)),
            ("Total", Latency(|t| &t.total)),
        ],
    ),
    (
        "Server",
        &[
            ("Status", F("status")),
            ("LastChg", Since("lastchg")),
            ("Wght", F("weight")),
            ("Act", Flag("act")),
            ("Bck", Flag("bck")),
            ("Aborts C/S", Pair("cli_abrt", "srv_abrt")),
        ],
    ),
];

fn columns() -> impl Iterator<Item = &'static (&'static str, Cell)> {
    LAYOUT.iter().flat_map(|(_, cols)| cols.iter())
}

/// The two header rows shared by every proxy table.
fn header(out: &mut String) {
    out.push_str("<tr class=\"titre\"><th rowspan=\"2\"></th>");
    for (title, cols) in LAYOUT {
        let _ = write!(out, "<th colspan=\"{}\">{title}</th>", cols.len());
    }
    out.push_str("</tr>\n<tr class=\"titre\">");
    for (title, _) in columns() {
        let _ = write!(out, "<th>{title}</th>");
    }
    out.push_str("</tr>\n");
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

fn cell(r: &Row<'_>, c: Cell) -> String {
    match c {
        F(name) => r.value(name).to_plain(),
        Since(name) => match r.value(name) {
            Val::U64(s) => since(Duration::from_secs(s)),
            other => other.to_plain(),
        },
        Flag(name) => match (r, r.value(name)) {
            (Row::Server(_), Val::U64(n)) => if n > 0 { "Y" } else { "-" }.into(),
            (_, other) => other.to_plain(),
        },
        Pair(a, b) => match (r.value(a), r.value(b)) {
            (Val::Empty, Val::Empty) => String::new(),
            (a, b) => format!("{}/{}", a.to_plain(), b.to_plain()),
        },
        Latency(pick) => match r {
            Row::Backend(b) => p50_p99(pick(b.t)),
            _ => String::new(),
        },
    }
}

fn row(out: &mut String, r: &Row<'_>) {
    let (class, name) = match r {
        Row::Frontend(_) => ("frontend", "Frontend"),
        Row::Backend(_) => ("backend", "Backend"),
        Row::Server(sv) => (
            sv.state.status().look().css[usize::from(sv.state.backup)],
            sv.srv.name.as_str(),
        ),
    };
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td class=\"name\">{}</td>",
        esc(name)
    );
    for (_, c) in columns() {
        // Status words are text: left-aligned like the names.
        let class = if matches!(c, F("status")) {
            " class=\"ac\""
        } else {
            ""
        };
        let _ = write!(out, "<td{class}>{}</td>", esc(&cell(r, *c)));
    }
    out.push_str("</tr>\n");
}

fn table_start(out: &mut String, name: &str, kind: &str) {
    let _ = writeln!(
        out,
        "<table class=\"tbl\"><tr><th class=\"pxname\" colspan=\"6\"><a name=\"{0}\"></a>{0}</th><th class=\"empty\" colspan=\"{1}\">{kind}</th></tr>",
        esc(name),
        // The name cell plus every column, less the six the name spans.
        columns().count() + 1 - 6
    );
    header(out);
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

    // Rows come as frontends, then each backend's servers followed by the
    // backend: one table per frontend and one per backend.
    let mut open = false;
    for r in fields::rows(v) {
        match &r {
            Row::Frontend(fe) => {
                table_start(&mut out, &fe.fe.name, "frontend");
                row(&mut out, &r);
                out.push_str("</table>\n");
            }
            Row::Server(sv) => {
                if !open {
                    table_start(&mut out, &sv.be.name, "backend");
                    open = true;
                }
                row(&mut out, &r);
            }
            Row::Backend(be) => {
                if !open {
                    table_start(&mut out, &be.be.name, "backend");
                }
                open = false;
                row(&mut out, &r);
                out.push_str("</table>\n");
            }
        }
    }
    out.push_str("<p class=\"footer\">Counters are merged from every core over glommio channels at each request; Max values are sums of per-core peaks.</p>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_layout_cell_names_a_field() {
        for (_, c) in columns() {
            let names = match *c {
                F(n) | Since(n) | Flag(n) => vec![n],
                Pair(a, b) => vec![a, b],
                Latency(_) => vec![],
            };
            for n in names {
                assert!(fields::field(n).is_some(), "{n}");
            }
        }
    }

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
