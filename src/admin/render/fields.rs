//! The stats fields: one table ([`FIELDS`]) that every output reads, as
//! HAProxy's `stat_fields` is. An entry is one HAProxy stats column (or one
//! percore-only counter): its CSV name and position, HAProxy's typed tag,
//! a help text, the object kinds it has a value for and how to read it,
//! and its key in percore's JSON and name in `/metrics` if it has them.
//!
//! Adding a counter is one entry: CSV, `show stat typed|json`, the JSON
//! page and `/metrics` pick it up (the JSON page and `/metrics` list their
//! existing fields in a fixed order and append new ones after them; the
//! HTML page has a hand layout and shows what it names).
//!
//! Rows come from [`rows`], in the CSV's order: every frontend, then each
//! backend's servers followed by its BACKEND row. Frontends are proxies
//! 1..=F and backends F+1.. (csv `iid`); `sid` is 0 on FRONTEND/BACKEND rows
//! and 1.. for servers.

use super::typed::{Tag, Val};
use super::View;
use crate::config::{Backend, Balance, Frontend, Mode, Server};
use crate::stats::{
    BackendCounters, BackendState, BackendTimings, FrontendCounters, LatencyHisto, ServerCounters,
    ServerState,
};

/// Object kinds, with HAProxy's `show stat` type numbers and filter bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Frontend,
    Backend,
    Server,
}

/// Kind bits, as in HAProxy's `show stat <iid> <type> <sid>` filter.
pub const FE: u8 = 1;
pub const BE: u8 = 2;
pub const SV: u8 = 4;
pub const ALL: u8 = FE | BE | SV;

impl Kind {
    pub const fn bit(self) -> u8 {
        match self {
            Kind::Frontend => FE,
            Kind::Backend => BE,
            Kind::Server => SV,
        }
    }

    const fn index(self) -> usize {
        match self {
            Kind::Frontend => 0,
            Kind::Backend => 1,
            Kind::Server => 2,
        }
    }

    /// csv `type`.
    pub fn type_number(self) -> u32 {
        self.index() as u32
    }

    /// Object letter of typed lines.
    pub fn letter(self) -> char {
        match self {
            Kind::Frontend => 'F',
            Kind::Backend => 'B',
            Kind::Server => 'S',
        }
    }

    /// `objType` of HAProxy's JSON.
    pub fn obj_type(self) -> &'static str {
        match self {
            Kind::Frontend => "Frontend",
            Kind::Backend => "Backend",
            Kind::Server => "Server",
        }
    }

    /// Prefix of `/metrics` names: `percore_<prefix>_...`.
    pub fn prom_prefix(self) -> &'static str {
        match self {
            Kind::Frontend => "frontend",
            Kind::Backend => "backend",
            Kind::Server => "server",
        }
    }
}

/// What the readers of a FRONTEND row see.
pub struct FeRow<'a> {
    pub iid: u32,
    pub pid: u32,
    pub fe: &'a Frontend,
    pub c: &'a FrontendCounters,
    /// `maxconn` in force: configured, or set by the runtime API.
    pub maxconn: Option<u32>,
}

/// What the readers of a BACKEND row see.
pub struct BeRow<'a> {
    pub iid: u32,
    pub pid: u32,
    pub be: &'a Backend,
    pub c: &'a BackendCounters,
    pub state: &'a BackendState,
    pub t: &'a BackendTimings,
}

/// What the readers of a server row see.
pub struct SvRow<'a> {
    pub iid: u32,
    pub sid: u32,
    pub pid: u32,
    pub be: &'a Backend,
    pub srv: &'a Server,
    pub c: &'a ServerCounters,
    pub state: &'a ServerState,
}

/// One CSV row: a frontend, a backend or a server.
pub enum Row<'a> {
    Frontend(FeRow<'a>),
    Backend(BeRow<'a>),
    Server(SvRow<'a>),
}

impl<'a> Row<'a> {
    pub fn kind(&self) -> Kind {
        match self {
            Row::Frontend(_) => Kind::Frontend,
            Row::Backend(_) => Kind::Backend,
            Row::Server(_) => Kind::Server,
        }
    }

    /// Proxy id (csv `iid`).
    pub fn iid(&self) -> u32 {
        match self {
            Row::Frontend(r) => r.iid,
            Row::Backend(r) => r.iid,
            Row::Server(r) => r.iid,
        }
    }

    /// Server id (csv `sid`), 0 for FRONTEND and BACKEND rows.
    pub fn sid(&self) -> u32 {
        match self {
            Row::Server(r) => r.sid,
            _ => 0,
        }
    }

    /// The proxy's name (csv `pxname`).
    pub fn proxy_name(&self) -> &'a str {
        match self {
            Row::Frontend(r) => &r.fe.name,
            Row::Backend(r) => &r.be.name,
            Row::Server(r) => &r.be.name,
        }
    }

    /// The server, for server rows.
    pub fn server_state(&self) -> Option<&'a ServerState> {
        match self {
            Row::Server(r) => Some(r.state),
            _ => None,
        }
    }

    /// `f`'s value on this row; `Empty` where it has none.
    pub fn get(&self, f: &Field) -> Val<'a> {
        match self {
            Row::Frontend(r) => f.fe.map_or(Val::Empty, |read| read(r)),
            Row::Backend(r) => f.be.map_or(Val::Empty, |read| read(r)),
            Row::Server(r) => f.sv.map_or(Val::Empty, |read| read(r)),
        }
    }

    /// The value of the field named `name`; `Empty` for an unknown name.
    pub fn value(&self, name: &str) -> Val<'a> {
        field(name).map_or(Val::Empty, |f| self.get(f))
    }
}

/// Every row of the view, in CSV order.
pub fn rows<'a>(v: &View<'a>) -> Vec<Row<'a>> {
    let s = v.snapshot;
    let pid = v.info.pid;
    let mut out = Vec::new();
    for (i, (fe, c)) in v
        .config
        .frontends
        .iter()
        .zip(&s.stats.frontends)
        .enumerate()
    {
        let iid = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let maxconn = s.frontend_maxconn.get(i).copied().unwrap_or(fe.maxconn);
        out.push(Row::Frontend(FeRow {
            iid,
            pid,
            fe,
            c,
            maxconn,
        }));
    }
    // Backend ids follow every configured frontend, whether or not each
    // frontend had counters, so ids stay stable.
    let iid_base = v.config.frontends.len();
    for (b, be) in v.config.backends.iter().enumerate() {
        let (Some(c), Some(state), Some(t), Some(servers)) = (
            s.stats.backends.get(b),
            s.backends.get(b),
            s.stats.timings.get(b),
            s.stats.servers.get(b),
        ) else {
            continue;
        };
        let iid = u32::try_from(iid_base + b + 1).unwrap_or(u32::MAX);
        for (i, (srv, (c, state))) in be
            .servers
            .iter()
            .zip(servers.iter().zip(&state.servers))
            .enumerate()
        {
            out.push(Row::Server(SvRow {
                iid,
                sid: u32::try_from(i + 1).unwrap_or(u32::MAX),
                pid,
                be,
                srv,
                c,
                state,
            }));
        }
        out.push(Row::Backend(BeRow {
            iid,
            pid,
            be,
            c,
            state,
            t,
        }));
    }
    out
}

pub type FeRead = for<'a> fn(&FeRow<'a>) -> Val<'a>;
pub type BeRead = for<'a> fn(&BeRow<'a>) -> Val<'a>;
pub type SvRead = for<'a> fn(&SvRow<'a>) -> Val<'a>;

/// Prometheus sample type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromType {
    Gauge,
    Counter,
}

impl PromType {
    pub fn as_str(self) -> &'static str {
        match self {
            PromType::Gauge => "gauge",
            PromType::Counter => "counter",
        }
    }
}

/// A `/metrics` family: `percore_<kind>_<name>`.
#[derive(Debug, Clone, Copy)]
pub struct Prom {
    pub name: &'static str,
    pub ty: PromType,
    /// Kinds exported ([`FE`] | [`BE`] | [`SV`]).
    pub kinds: u8,
}

/// One stats field. Build entries with [`stat`] or [`own`] and the
/// methods below; see the table for examples.
#[derive(Clone, Copy)]
pub struct Field {
    /// HAProxy's CSV name (`scur`), or percore's for its own counters.
    pub name: &'static str,
    /// HAProxy's field position (typed and JSON output); `None` for
    /// percore's own counters, which only its JSON and `/metrics` show.
    pub pos: Option<u16>,
    /// HAProxy's tag, by kind: a few fields are tagged differently on
    /// backends (`act` is `SGP` on servers, `MGP` on backends).
    tags: [Tag; 3],
    /// By kind: `bin` is bytes from clients on a frontend and bytes to the
    /// servers on a backend.
    help: [&'static str; 3],
    /// Key in percore's JSON, by kind.
    json: [Option<&'static str>; 3],
    pub prom: Option<Prom>,
    fe: Option<FeRead>,
    be: Option<BeRead>,
    sv: Option<SvRead>,
}

/// A HAProxy stats column at position `pos`.
const fn stat(pos: u16, name: &'static str, tag: &str, help: &'static str) -> Field {
    let tag = Tag::parse(tag);
    Field {
        name,
        pos: Some(pos),
        tags: [tag; 3],
        help: [help; 3],
        json: [None; 3],
        prom: None,
        fe: None,
        be: None,
        sv: None,
    }
}

/// A counter HAProxy does not have.
const fn own(name: &'static str, tag: &str, help: &'static str) -> Field {
    let mut f = stat(0, name, tag, help);
    f.pos = None;
    f
}

impl Field {
    const fn fe(mut self, read: FeRead) -> Self {
        self.fe = Some(read);
        self
    }

    const fn be(mut self, read: BeRead) -> Self {
        self.be = Some(read);
        self
    }

    const fn sv(mut self, read: SvRead) -> Self {
        self.sv = Some(read);
        self
    }

    /// The JSON key, for every kind that has a value.
    const fn json(self, key: &'static str) -> Self {
        self.json_for(ALL, key)
    }

    const fn json_for(mut self, kinds: u8, key: &'static str) -> Self {
        let mut i = 0;
        while i < 3 {
            if kinds & (1 << i) != 0 {
                self.json[i] = Some(key);
            }
            i += 1;
        }
        self
    }

    /// The `/metrics` family, for every kind that has a value.
    const fn prom(self, name: &'static str, ty: PromType) -> Self {
        self.prom_for(ALL, name, ty)
    }

    const fn prom_for(mut self, kinds: u8, name: &'static str, ty: PromType) -> Self {
        self.prom = Some(Prom { name, ty, kinds });
        self
    }

    const fn help_for(mut self, kinds: u8, help: &'static str) -> Self {
        let mut i = 0;
        while i < 3 {
            if kinds & (1 << i) != 0 {
                self.help[i] = help;
            }
            i += 1;
        }
        self
    }

    const fn tag_for(mut self, kinds: u8, tag: &str) -> Self {
        let tag = Tag::parse(tag);
        let mut i = 0;
        while i < 3 {
            if kinds & (1 << i) != 0 {
                self.tags[i] = tag;
            }
            i += 1;
        }
        self
    }

    /// True if rows of `kind` have this field.
    pub fn applies(&self, kind: Kind) -> bool {
        match kind {
            Kind::Frontend => self.fe.is_some(),
            Kind::Backend => self.be.is_some(),
            Kind::Server => self.sv.is_some(),
        }
    }

    pub fn tag(&self, kind: Kind) -> Tag {
        self.tags[kind.index()]
    }

    pub fn help(&self, kind: Kind) -> &'static str {
        self.help[kind.index()]
    }

    /// The key in percore's JSON for rows of `kind`, if shown there.
    pub fn json_key(&self, kind: Kind) -> Option<&'static str> {
        self.json[kind.index()].filter(|_| self.applies(kind))
    }

    /// The `/metrics` family name (without prefix) for rows of `kind`.
    pub fn prom_name(&self, kind: Kind) -> Option<(&'static str, PromType)> {
        self.prom
            .filter(|p| p.kinds & kind.bit() != 0 && self.applies(kind))
            .map(|p| (p.name, p.ty))
    }
}

/// The hrsp_* fields, in [`crate::stats::RESPONSE_CLASSES`] order (the
/// JSON page and `/metrics` group them by class).
pub const HRSP: [&str; 6] = [
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
];

/// The field named `name`.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// HAProxy's names for `mode`.
fn mode(m: Mode) -> &'static str {
    match m {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

/// HAProxy's names for `balance`.
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

/// `qtime`/`ctime`/`rtime`/`ttime`: whole-run averages in ms (HAProxy
/// averages the last 1024 sessions).
fn avg_ms<'a>(h: &LatencyHisto) -> Val<'a> {
    Val::U64(h.mean_us() / 1000)
}

fn secs<'a>(d: std::time::Duration) -> Val<'a> {
    Val::U64(d.as_secs())
}

use PromType::{Counter, Gauge};

/// Every field: HAProxy's columns in position order (CSV and typed output
/// follow this order), then percore's own counters. Tags and positions
/// are HAProxy 2.6's (`show stat typed` of haproxy 2.6.12, checked by
/// tests/stats_formats.rs); columns percore has no value for stay so the
/// CSV keeps HAProxy's layout.
#[rustfmt::skip]
pub static FIELDS: &[Field] = &[
    stat(0, "pxname", "KNS:str", "Proxy name.").json_for(FE | BE, "name")
        .fe(|r| r.fe.name.as_str().into()).be(|r| r.be.name.as_str().into()).sv(|r| r.be.name.as_str().into()),
    stat(1, "svname", "KNS:str", "Server name; FRONTEND or BACKEND for the proxy's own row.").json_for(SV, "name")
        .fe(|_| "FRONTEND".into()).be(|_| "BACKEND".into()).sv(|r| r.srv.name.as_str().into()),
    stat(2, "qcur", "MGP:u32", "Connections waiting for a server slot.").json_for(BE, "queue_cur").prom_for(BE, "current_queue", Gauge)
        .be(|r| r.state.queue_cur.into())
        // percore queues per backend, never per server.
        .sv(|_| 0u64.into()),
    stat(3, "qmax", "MMP:u32", "Highest queue (sum of per-core peaks).").json_for(BE, "queue_max").prom_for(BE, "max_queue", Gauge)
        .be(|r| r.state.queue_max.into()).sv(|_| 0u64.into()),
    stat(4, "scur", "MGP:u32", "Current sessions.").json("sessions_cur").prom("current_sessions", Gauge)
        .fe(|r| r.c.sessions_cur.into()).be(|r| r.c.sessions_cur.into()).sv(|r| r.c.sessions_cur.into()),
    stat(5, "smax", "MMP:u32", "Highest current sessions (sum of per-core peaks).").json("sessions_max").prom("max_sessions", Gauge)
        .fe(|r| r.c.sessions_max.into()).be(|r| r.c.sessions_max.into()).sv(|r| r.c.sessions_max.into()),
    stat(6, "slim", "CLP:u32", "Session limit (maxconn).")
        .fe(|r| r.maxconn.into()).sv(|r| (r.state.admin.maxconn > 0).then_some(r.state.admin.maxconn).into()),
    stat(7, "stot", "MCP:u64", "Sessions accepted.").json("sessions_total").prom("sessions_total", Counter)
        .help_for(BE, "Sessions that reached a server.").help_for(SV, "Sessions sent to this server.")
        .fe(|r| r.c.sessions_total.into()).be(|r| r.c.sessions_total.into()).sv(|r| r.c.sessions_total.into()),
    stat(8, "bin", "MCP:u64", "Bytes received from clients.").json("bytes_in").prom("bytes_in_total", Counter)
        .help_for(BE, "Bytes sent to servers.").help_for(SV, "Bytes sent to the server.")
        .fe(|r| r.c.bytes_in.into()).be(|r| r.c.bytes_in.into()).sv(|r| r.c.bytes_in.into()),
    stat(9, "bout", "MCP:u64", "Bytes sent to clients.").json("bytes_out").prom("bytes_out_total", Counter)
        .help_for(BE, "Bytes received from servers.").help_for(SV, "Bytes received from the server.")
        .fe(|r| r.c.bytes_out.into()).be(|r| r.c.bytes_out.into()).sv(|r| r.c.bytes_out.into()),
    stat(10, "dreq", "MCP:u64", "Requests denied.").json("denied_requests").prom("requests_denied_total", Counter)
        .fe(|r| r.c.denied_requests.into()).be(|r| r.c.denied_requests.into()),
    stat(11, "dresp", "MCP:u64", "Responses denied.").json_for(FE | BE, "denied_responses").prom_for(FE, "responses_denied_total", Counter)
        .fe(|r| r.c.denied_responses.into()).be(|r| r.c.denied_responses.into())
        // Responses are only denied by frontend or backend rules.
        .sv(|_| 0u64.into()),
    stat(12, "ereq", "MCP:u64", "Invalid or aborted requests.").json("request_errors").prom("request_errors_total", Counter)
        .fe(|r| r.c.request_errors.into()),
    stat(13, "econ", "MCP:u64", "Failed connection attempts.").json("conn_errors").prom("connection_errors_total", Counter)
        .be(|r| r.c.conn_errors.into()).sv(|r| r.c.conn_errors.into()),
    stat(14, "eresp", "MCP:u64", "Server errors after connecting.").json("response_errors").prom("response_errors_total", Counter)
        .help_for(SV, "Errors after connecting.")
        .be(|r| r.c.response_errors.into()).sv(|r| r.c.response_errors.into()),
    stat(15, "wretr", "MCP:u64", "Connection retries.").json("retries").prom("retry_warnings_total", Counter)
        .be(|r| r.c.retries.into()).sv(|r| r.c.retries.into()),
    stat(16, "wredis", "MCP:u64", "Retries sent to another server.").json("redispatches").prom("redispatch_warnings_total", Counter)
        .help_for(SV, "Retries moved to another server.")
        .be(|r| r.c.redispatches.into()).sv(|r| r.c.redispatches.into()),
    stat(17, "status", "SGP:str", "OPEN for a frontend; UP/DOWN for a backend; the server's state.").json("status")
        .fe(|_| "OPEN".into()).be(|r| r.state.status_word().into()).sv(|r| r.state.status().look().word.into()),
    stat(18, "weight", "MaP:u32", "Server weight.").json_for(SV, "weight").prom_for(SV, "weight", Gauge)
        .help_for(BE, "Sum of the weights of the active servers taking traffic.")
        .be(|r| r.state.active_weight().into()).sv(|r| r.state.effective_weight().into()),
    stat(19, "act", "SGP:u32", "1 for an active server.").json_for(BE, "active_servers").prom_for(BE, "active_servers", Gauge)
        .tag_for(BE, "MGP:u32").help_for(BE, "Usable active servers.")
        .be(|r| r.state.usable_servers().0.into()).sv(|r| u32::from(!r.state.backup).into()),
    stat(20, "bck", "SGP:u32", "1 for a backup server.").json_for(BE, "backup_servers").prom_for(BE, "backup_servers", Gauge)
        .tag_for(BE, "MGP:u32").help_for(BE, "Usable backup servers.")
        .be(|r| r.state.usable_servers().1.into()).sv(|r| u32::from(r.state.backup).into()),
    stat(21, "chkfail", "MCP:u64", "Failed health checks."),
    stat(22, "chkdown", "MCP:u64", "UP to DOWN transitions caused by health checks."),
    stat(23, "lastchg", "MAP:u32", "Seconds since the server's last state change.").json_for(SV, "last_change_seconds").prom_for(SV, "last_change_seconds", Gauge)
        .help_for(BE, "Seconds since the last state change of any of its servers.")
        .be(|r| secs(r.state.since_change())).sv(|r| secs(r.state.since_change)),
    stat(24, "downtime", "MCP:u32", "Seconds spent DOWN."),
    stat(25, "qlimit", "CGS:u32", "Server queue limit (maxqueue)."),
    // HAProxy's relative process number; percore has always shown the OS
    // pid here, and keeps doing so for scripts that read it.
    stat(26, "pid", "KGP:u32", "Process id.")
        .fe(|r| r.pid.into()).be(|r| r.pid.into()).sv(|r| r.pid.into()),
    stat(27, "iid", "KGS:u32", "Proxy id: frontends 1.., then backends.")
        .fe(|r| r.iid.into()).be(|r| r.iid.into()).sv(|r| r.iid.into()),
    stat(28, "sid", "KGS:u32", "Server id within its backend, 0 for the proxy's own row.")
        .fe(|_| 0u32.into()).be(|_| 0u32.into()).sv(|r| r.sid.into()),
    stat(29, "throttle", "MaP:u32", "Slowstart throttle percentage."),
    stat(30, "lbtot", "MCP:u64", "Times picked by load balancing.").json_for(SV, "lbtot").prom_for(SV, "loadbalanced_total", Counter)
        .be(|r| r.state.lbtot().into()).sv(|r| r.state.lbtot.into()),
    stat(31, "tracked", "CNS:str", "Server whose state this one tracks."),
    stat(32, "type", "CGS:u32", "Object type: 0 frontend, 1 backend, 2 server.")
        .fe(|_| 0u32.into()).be(|_| 1u32.into()).sv(|_| 2u32.into()),
    stat(33, "rate", "MRP:u32", "Sessions over the last second.").tag_for(BE, "MGP:u32"),
    stat(34, "rate_lim", "CLP:u32", "Session rate limit."),
    stat(35, "rate_max", "MMP:u32", "Highest session rate.").tag_for(BE, "MGP:u32"),
    stat(36, "check_status", "MOP:str", "Last health check status."),
    stat(37, "check_code", "MOP:u32", "Last health check's layer 5-7 code."),
    stat(38, "check_duration", "MDP:u64", "Last health check's duration in ms."),
    stat(39, "hrsp_1xx", "MCP:u64", "HTTP responses 1xx.")
        .fe(|r| r.c.responses[0].into()).be(|r| r.c.responses[0].into()).sv(|r| r.c.responses[0].into()),
    stat(40, "hrsp_2xx", "MCP:u64", "HTTP responses 2xx.")
        .fe(|r| r.c.responses[1].into()).be(|r| r.c.responses[1].into()).sv(|r| r.c.responses[1].into()),
    stat(41, "hrsp_3xx", "MCP:u64", "HTTP responses 3xx.")
        .fe(|r| r.c.responses[2].into()).be(|r| r.c.responses[2].into()).sv(|r| r.c.responses[2].into()),
    stat(42, "hrsp_4xx", "MCP:u64", "HTTP responses 4xx.")
        .fe(|r| r.c.responses[3].into()).be(|r| r.c.responses[3].into()).sv(|r| r.c.responses[3].into()),
    stat(43, "hrsp_5xx", "MCP:u64", "HTTP responses 5xx.")
        .fe(|r| r.c.responses[4].into()).be(|r| r.c.responses[4].into()).sv(|r| r.c.responses[4].into()),
    stat(44, "hrsp_other", "MCP:u64", "HTTP responses with another status.")
        .fe(|r| r.c.responses[5].into()).be(|r| r.c.responses[5].into()).sv(|r| r.c.responses[5].into()),
    stat(45, "hanafail", "MCP:u64", "Failed health checks caused by observe/on-error."),
    stat(46, "req_rate", "MRP:u32", "HTTP requests over the last second."),
    stat(47, "req_rate_max", "MMP:u32", "Highest HTTP request rate."),
    stat(48, "req_tot", "MCP:u64", "HTTP requests received.").json("requests_total").prom("http_requests_total", Counter)
        .help_for(BE, "HTTP requests sent.")
        .fe(|r| r.c.requests_total.into()).be(|r| r.c.requests_total.into()),
    stat(49, "cli_abrt", "MCP:u64", "Sessions aborted by the client.").json("client_aborts").prom("client_aborts_total", Counter)
        .be(|r| r.c.client_aborts.into()).sv(|r| r.c.client_aborts.into()),
    stat(50, "srv_abrt", "MCP:u64", "Sessions aborted by the server.").json("server_aborts").prom("server_aborts_total", Counter)
        .be(|r| r.c.server_aborts.into()).sv(|r| r.c.server_aborts.into()),
    stat(51, "comp_in", "MCP:u64", "Bytes fed to the HTTP compressor."),
    stat(52, "comp_out", "MCP:u64", "Bytes out of the HTTP compressor."),
    stat(53, "comp_byp", "MCP:u64", "Bytes that bypassed the HTTP compressor."),
    stat(54, "comp_rsp", "MCP:u64", "HTTP responses compressed."),
    stat(55, "lastsess", "MAP:s32", "Seconds since the last session."),
    stat(56, "last_chk", "MOP:str", "Last health check contents or error."),
    stat(57, "last_agt", "MOP:str", "Last agent check contents or error."),
    // percore does not measure time in the queue yet.
    stat(58, "qtime", "MaP:u32", "Average queue time in ms.").be(|_| 0u64.into()),
    stat(59, "ctime", "MaP:u32", "Average connect time in ms over the whole run.").be(|r| avg_ms(&r.t.connect)),
    stat(60, "rtime", "MaP:u32", "Average response time in ms over the whole run.").be(|r| avg_ms(&r.t.response)),
    stat(61, "ttime", "MaP:u32", "Average total session time in ms over the whole run.").be(|r| avg_ms(&r.t.total)),
    stat(62, "agent_status", "MOP:str", "Last agent check status."),
    stat(63, "agent_code", "MOP:u32", "Last agent check code."),
    stat(64, "agent_duration", "MDP:u64", "Last agent check's duration in ms."),
    stat(65, "check_desc", "MOP:str", "Last health check status, in words."),
    stat(66, "agent_desc", "MOP:str", "Last agent check status, in words."),
    stat(67, "check_rise", "CGS:u32", "Health check rise."),
    stat(68, "check_fall", "CGS:u32", "Health check fall."),
    stat(69, "check_health", "CGS:u32", "Health check level."),
    stat(70, "agent_rise", "CGS:u32", "Agent check rise."),
    stat(71, "agent_fall", "CGS:u32", "Agent check fall."),
    stat(72, "agent_health", "CGS:u32", "Agent check level."),
    stat(73, "addr", "CGS:str", "Server address:port.")
        .sv(|r| r.state.admin.addr.unwrap_or(r.srv.addr).to_string().into()),
    stat(74, "cookie", "CNS:str", "Server cookie value."),
    stat(75, "mode", "CGS:str", "Proxy mode: tcp or http.")
        .fe(|r| mode(r.fe.mode).into()).be(|r| mode(r.be.mode).into()).sv(|r| mode(r.be.mode).into()),
    stat(76, "algo", "CGS:str", "Load balancing algorithm.").be(|r| algo(r.be.balance).into()),
    // Empty, so that dcon and dses sit at HAProxy's positions.
    stat(77, "conn_rate", "MRP:u32", "Connections over the last second."),
    stat(78, "conn_rate_max", "MMP:u32", "Highest conn_rate seen."),
    stat(79, "conn_tot", "MCP:u64", "Connections accepted."),
    stat(80, "intercepted", "MCP:u64", "Requests intercepted by the stats page or a rule."),
    stat(81, "dcon", "MCP:u64", "Connections denied by tcp-request connection rules.").json("denied_connections").prom("connections_denied_total", Counter)
        .fe(|r| r.c.denied_connections.into()),
    stat(82, "dses", "MCP:u64", "Sessions denied by tcp-request content rules.").json("denied_sessions").prom("sessions_denied_total", Counter)
        .fe(|r| r.c.denied_sessions.into()),
    // HAProxy's SSL stats module; percore's CSV puts it right after `dses`.
    stat(105, "ssl_failed_handshake", "MCP:u64", "TLS handshakes that failed: with clients (frontend), with servers (backend, server).")
        .json("ssl_failed_handshakes").prom("ssl_failed_handshakes_total", Counter)
        .fe(|r| r.c.ssl_failed_handshakes.into()).be(|r| r.c.ssl_failed_handshakes.into()).sv(|r| r.c.ssl_failed_handshakes.into()),
    own("proxy_errors", "MCP:u64", "Connections closed for a missing, malformed, truncated or slow PROXY protocol header.").json("proxy_errors").prom("proxy_protocol_errors_total", Counter)
        .fe(|r| r.c.proxy_errors.into()),
    own("h2_streams_refused", "MCP:u64", "HTTP/2 streams refused before reaching a server.").json("h2_streams_refused").prom("h2_streams_refused_total", Counter)
        .fe(|r| r.c.streams_refused.into()),
    own("h2_connection_errors", "MCP:u64", "HTTP/2 connections ended by a protocol error or abuse.").json("h2_connection_errors").prom("h2_connection_errors_total", Counter)
        .fe(|r| r.c.connection_protocol_errors.into()),
    own("queue_timeouts", "MCP:u64", "Connections that gave up in the queue.").json("queue_timeouts").prom("queue_timeouts_total", Counter)
        .be(|r| r.c.queue_timeouts.into()),
    own("no_server", "MCP:u64", "Connections refused: no usable server.").json("no_server").prom("no_server_total", Counter)
        .be(|r| r.c.no_server.into()),
    own("slots_used", "MGP:u32", "Connection slots held right now, connects in progress included.").json("slots_used")
        .sv(|r| r.state.slots_used.into()),
    own("backup", "CGS:u32", "True for a backup server.").json("backup")
        .sv(|r| r.state.backup.into()),
];

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn positions_increase_and_names_are_unique() {
        let mut last = None;
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            if let Some(pos) = f.pos {
                assert!(last < Some(pos), "{} out of order", f.name);
                last = Some(pos);
            }
        }
        // percore's own counters come last: the CSV is the prefix of the
        // table that has positions.
        let first_own = FIELDS.iter().position(|f| f.pos.is_none()).unwrap();
        assert!(FIELDS[first_own..].iter().all(|f| f.pos.is_none()));
    }

    #[test]
    fn rows_follow_the_csv_numbering() {
        let (config, snapshot, info) = sample();
        let v = View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        };
        let ids: Vec<(Kind, u32, u32)> = rows(&v)
            .iter()
            .map(|r| (r.kind(), r.iid(), r.sid()))
            .collect();
        assert_eq!(
            ids,
            [
                (Kind::Frontend, 1, 0),
                (Kind::Server, 2, 1),
                (Kind::Server, 2, 2),
                (Kind::Backend, 2, 0)
            ]
        );
        let r = &rows(&v)[2];
        assert_eq!(r.value("svname"), Val::from("s2"));
        assert_eq!(r.value("bck"), Val::from(1u32));
        assert_eq!(r.value("no_such_field"), Val::Empty);
        let act = field("act").unwrap();
        assert_eq!(act.tag(Kind::Backend), Tag::parse("MGP:u32"));
        assert_eq!(act.tag(Kind::Server), Tag::parse("SGP:u32"));
        assert_eq!(act.json_key(Kind::Server), None);
        assert_eq!(field("ereq").unwrap().json_key(Kind::Backend), None);
    }
}
