//! `<uri>;csv`: HAProxy's stats CSV. The first 77 columns are HAProxy's,
//! in HAProxy's order (`pxname` .. `algo`), so scripts that read columns by
//! position or by name keep working; then `ssl_failed_handshake` (the name
//! of HAProxy's SSL stats module field, frontends only); fields percore does not have (health
//! checks, rates, compression, agents, cookies) are empty. `qtime`/`ctime`/
//! `rtime`/`ttime` are averages in ms over the whole run (HAProxy averages
//! the last 1024 sessions).

use std::collections::HashMap;

use super::{backend_status, View};
use crate::config::{Balance, Mode};
use crate::stats::LatencyHisto;

pub const COLUMNS: [&str; 78] = [
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "ssl_failed_handshake",
];

fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

fn algo(b: Balance) -> &'static str {
    match b {
        Balance::RoundRobin => "roundrobin",
        Balance::StaticRr => "static-rr",
        Balance::LeastConn => "leastconn",
        Balance::First => "first",
        Balance::Source => "source",
        Balance::Random => "random",
        Balance::Uri => "uri",
        Balance::UrlParam => "url_param",
        Balance::Hdr => "hdr",
    }
}

fn avg_ms(h: &LatencyHisto) -> String {
    (h.mean_us() / 1000).to_string()
}

/// One row: values by column name, everything else empty. Commas cannot
/// occur in values (names are restricted at config load).
fn row(out: &mut String, fields: &[(&str, String)]) {
    let by_name: HashMap<&str, &str> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (i, column) in COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(by_name.get(column).copied().unwrap_or(""));
    }
    out.push_str(",\n");
}

fn hrsp(r: &[u64; 6]) -> [(&'static str, String); 6] {
    [
        ("hrsp_1xx", r[0].to_string()),
        ("hrsp_2xx", r[1].to_string()),
        ("hrsp_3xx", r[2].to_string()),
        ("hrsp_4xx", r[3].to_string()),
        ("hrsp_5xx", r[4].to_string()),
        ("hrsp_other", r[5].to_string()),
    ]
}

pub fn render(v: &View<'_>) -> String {
    let s = v.snapshot;
    let pid = v.info.pid.to_string();
    let mut out = String::from("# ");
    out.push_str(&COLUMNS.join(","));
    out.push_str(",\n");
    for (i, (fe, c)) in v
        .config
        .frontends
        .iter()
        .zip(&s.stats.frontends)
        .enumerate()
    {
        let mut f = vec![
            ("pxname", fe.name.clone()),
            ("svname", "FRONTEND".into()),
            ("scur", c.sessions_cur.to_string()),
            ("smax", c.sessions_max.to_string()),
            (
                "slim",
                s.frontend_maxconn
                    .get(i)
                    .copied()
                    .unwrap_or(fe.maxconn)
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ),
            ("stot", c.sessions_total.to_string()),
            ("bin", c.bytes_in.to_string()),
            ("bout", c.bytes_out.to_string()),
            ("dreq", c.denied_requests.to_string()),
            ("dresp", c.denied_responses.to_string()),
            ("ereq", c.request_errors.to_string()),
            ("status", "OPEN".into()),
            ("pid", pid.clone()),
            ("iid", (i + 1).to_string()),
            ("sid", "0".into()),
            ("type", "0".into()),
            ("req_tot", c.requests_total.to_string()),
            ("mode", mode(fe.mode).into()),
            ("ssl_failed_handshake", c.ssl_failed_handshakes.to_string()),
        ];
        f.extend(hrsp(&c.responses));
        row(&mut out, &f);
    }
    let iid_base = v.config.frontends.len();
    for (b, be) in v.config.backends.iter().enumerate() {
        let (Some(c), Some(state), Some(t)) = (
            s.stats.backends.get(b),
            s.backends.get(b),
            s.stats.timings.get(b),
        ) else {
            continue;
        };
        let iid = (iid_base + b + 1).to_string();
        for (i, (srv, (sc, ss))) in be
            .servers
            .iter()
            .zip(s.stats.servers[b].iter().zip(&state.servers))
            .enumerate()
        {
            let mut f = vec![
                ("pxname", be.name.clone()),
                ("svname", srv.name.clone()),
                ("qcur", "0".into()),
                ("qmax", "0".into()),
                ("scur", sc.sessions_cur.to_string()),
                ("smax", sc.sessions_max.to_string()),
                (
                    "slim",
                    match ss.admin.maxconn {
                        0 => String::new(),
                        m => m.to_string(),
                    },
                ),
                ("stot", sc.sessions_total.to_string()),
                ("bin", sc.bytes_in.to_string()),
                ("bout", sc.bytes_out.to_string()),
                ("dresp", "0".into()),
                ("econ", sc.conn_errors.to_string()),
                ("eresp", sc.response_errors.to_string()),
                ("wretr", sc.retries.to_string()),
                ("wredis", sc.redispatches.to_string()),
                ("status", ss.status().word()),
                ("weight", ss.effective_weight().to_string()),
                ("act", u8::from(!ss.backup).to_string()),
                ("bck", u8::from(ss.backup).to_string()),
                ("lastchg", ss.since_change.as_secs().to_string()),
                ("pid", pid.clone()),
                ("iid", iid.clone()),
                ("sid", (i + 1).to_string()),
                ("lbtot", ss.lbtot.to_string()),
                ("type", "2".into()),
                ("cli_abrt", sc.client_aborts.to_string()),
                ("srv_abrt", sc.server_aborts.to_string()),
                ("addr", ss.admin.addr.unwrap_or(srv.addr).to_string()),
                ("mode", mode(be.mode).into()),
            ];
            f.extend(hrsp(&sc.responses));
            row(&mut out, &f);
        }
        let (act, bck) = state.usable_servers();
        let weight: u32 = state
            .servers
            .iter()
            .filter(|ss| ss.status() == crate::stats::ServerStatus::Up && !ss.backup)
            .map(|ss| ss.weight)
            .sum();
        let lbtot: u64 = state.servers.iter().map(|ss| ss.lbtot).sum();
        let since_change = state
            .servers
            .iter()
            .map(|ss| ss.since_change)
            .min()
            .unwrap_or_default();
        let mut f = vec![
            ("pxname", be.name.clone()),
            ("svname", "BACKEND".into()),
            ("qcur", state.queue_cur.to_string()),
            ("qmax", state.queue_max.to_string()),
            ("scur", c.sessions_cur.to_string()),
            ("smax", c.sessions_max.to_string()),
            ("stot", c.sessions_total.to_string()),
            ("bin", c.bytes_in.to_string()),
            ("bout", c.bytes_out.to_string()),
            ("dreq", c.denied_requests.to_string()),
            ("dresp", c.denied_responses.to_string()),
            ("econ", c.conn_errors.to_string()),
            ("eresp", c.response_errors.to_string()),
            ("wretr", c.retries.to_string()),
            ("wredis", c.redispatches.to_string()),
            ("status", backend_status(s, b).into()),
            ("weight", weight.to_string()),
            ("act", act.to_string()),
            ("bck", bck.to_string()),
            ("lastchg", since_change.as_secs().to_string()),
            ("pid", pid.clone()),
            ("iid", iid),
            ("sid", "0".into()),
            ("lbtot", lbtot.to_string()),
            ("type", "1".into()),
            ("req_tot", c.requests_total.to_string()),
            ("cli_abrt", c.client_aborts.to_string()),
            ("srv_abrt", c.server_aborts.to_string()),
            ("qtime", "0".into()),
            ("ctime", avg_ms(&t.connect)),
            ("rtime", avg_ms(&t.response)),
            ("ttime", avg_ms(&t.total)),
            ("mode", mode(be.mode).into()),
            ("algo", algo(be.balance).into()),
        ];
        f.extend(hrsp(&c.responses));
        row(&mut out, &f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn columns_are_haproxys_and_rows_line_up() {
        let (config, snapshot, info) = sample();
        let text = render(&View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        });
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"));
        let names: Vec<&str> = header[2..].trim_end_matches(',').split(',').collect();
        assert_eq!(names[61], "ttime");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 4, "frontend, two servers, backend");
        for r in &rows {
            assert_eq!(r.len(), COLUMNS.len() + 1, "{r:?}");
        }
        let col = |row: &Vec<&str>, name: &str| {
            row[COLUMNS.iter().position(|c| *c == name).unwrap()].to_string()
        };
        assert_eq!(col(&rows[0], "svname"), "FRONTEND");
        assert_eq!(col(&rows[0], "bin"), "1234");
        assert_eq!(col(&rows[1], "status"), "UP");
        assert_eq!(col(&rows[2], "status"), "DOWN");
        assert_eq!(col(&rows[2], "bck"), "1");
        assert_eq!(col(&rows[3], "svname"), "BACKEND");
        assert_eq!(col(&rows[3], "act"), "1");
        assert_eq!(col(&rows[3], "qmax"), "2");
        assert_eq!(col(&rows[3], "algo"), "roundrobin");
    }
}
