//! The runtime API's `show info`: HAProxy 2.6's process fields, in
//! HAProxy's order and with HAProxy's names and typed tags, as plain
//! `Name: value` lines, `typed` lines (`<pos>.<name>.1:<tag>:<value>`) or
//! `json`, each optionally with `desc`. One table, [`INFO`], serves all
//! three.
//!
//! Every field percore knows has its real value (see the table); fields
//! for features percore does not have (memory pools, SSL and compression
//! rates, peers, resolvers, ...) show the value HAProxy shows when they
//! are unused, 0. Fields HAProxy leaves empty here are left empty too, so
//! they have no line: `ZlibMemUsage`/`MaxZlibMemUsage` (HAProxy built
//! without zlib, as Debian's is), `description` (unset), and
//! `Release_date`, which percore has no equivalent of.
//!
//! As with `show stat`, the output lacks the empty line that ends every
//! answer on HAProxy's CLI; the socket adds it.

use std::fmt::Write;

use super::typed::{Tag, Val};
use super::{uptime, View};
use crate::config::Mode;
use crate::log::format::json_str;

/// HAProxy's process number: percore is one process.
const PROCESS_NUM: u32 = 1;

pub type InfoRead = for<'a> fn(&View<'a>) -> Val<'a>;

/// One `show info` field.
pub struct InfoField {
    pub pos: u16,
    pub name: &'static str,
    pub tag: Tag,
    pub help: &'static str,
    pub read: InfoRead,
}

const fn info(
    pos: u16,
    name: &'static str,
    tag: &str,
    help: &'static str,
    read: InfoRead,
) -> InfoField {
    InfoField {
        pos,
        name,
        tag: Tag::parse(tag),
        help,
        read,
    }
}

/// What HAProxy shows for a feature that is not in use.
fn zero<'a>(_: &View<'a>) -> Val<'a> {
    Val::U64(0)
}

fn empty<'a>(_: &View<'a>) -> Val<'a> {
    Val::Empty
}

fn usize_val<'a>(n: usize) -> Val<'a> {
    Val::U64(u64::try_from(n).unwrap_or(u64::MAX))
}

/// Sockets percore listens on for clients and for the stats page (each
/// core has its own SO_REUSEPORT copy; HAProxy counts a bind once too).
fn listeners(v: &View<'_>) -> u64 {
    let binds: usize = v.config.frontends.iter().map(|f| f.binds.len()).sum();
    u64::try_from(binds + usize::from(v.config.stats.is_some())).unwrap_or(u64::MAX)
}

/// HAProxy counts a request per HTTP request, and one per session on a
/// TCP frontend.
fn cum_req(v: &View<'_>) -> u64 {
    v.config
        .frontends
        .iter()
        .zip(&v.snapshot.stats.frontends)
        .map(|(fe, c)| match fe.mode {
            Mode::Http => c.requests_total,
            Mode::Tcp => c.sessions_total,
        })
        .sum()
}

/// Every byte written: to clients (frontends' `bout`) and to servers
/// (backends' `bin`), as HAProxy counts every send.
fn bytes_out(v: &View<'_>) -> u64 {
    let s = &v.snapshot.stats;
    let to_clients: u64 = s.frontends.iter().map(|c| c.bytes_out).sum();
    let to_servers: u64 = s.backends.iter().map(|c| c.bytes_in).sum();
    to_clients + to_servers
}

/// HAProxy 2.6's info fields, in its order. Positions and tags are
/// HAProxy's (checked by tests/stats_formats.rs).
#[rustfmt::skip]
pub static INFO: &[InfoField] = &[
    // "Name: HAProxy" would make scripts believe they talk to HAProxy and
    // its version; the fields after it are HAProxy's.
    info(0, "Name", "POS:str", "Product name", |_| "percore".into()),
    info(1, "Version", "POS:str", "Product version", |v| v.info.version.into()),
    info(2, "Release_date", "POS:str", "Date of latest source code update (none for percore)", empty),
    info(3, "Nbthread", "CGS:u32", "Number of executors (one per core)", |v| usize_val(v.info.cores)),
    info(4, "Nbproc", "CGS:u32", "Number of started worker processes (always 1)", |_| 1u32.into()),
    info(5, "Process_num", "KGP:u32", "Relative worker process number (1)", |_| 1u32.into()),
    info(6, "Pid", "SGP:u32", "This process's identifier for the system", |v| v.info.pid.into()),
    info(7, "Uptime", "MDP:str", "How long ago this process was started (days+hours+minutes+seconds)", |v| uptime(v.info.uptime).into()),
    info(8, "Uptime_sec", "MDP:u32", "How long ago this process was started (seconds)", |v| v.info.uptime.as_secs().into()),
    info(9, "Memmax_MB", "CLP:u32", "Hard limit on memory usage in MB (none)", zero),
    info(10, "PoolAlloc_MB", "MGP:u32", "Memory allocated in pools in MB (percore has no pools)", zero),
    info(11, "PoolUsed_MB", "MGP:u32", "Pool memory in use in MB (percore has no pools)", zero),
    info(12, "PoolFailed", "MCP:u32", "Failed pool allocations", zero),
    info(13, "Ulimit-n", "CLP:u32", "Limit on the number of file descriptors (soft RLIMIT_NOFILE)", |v| v.info.ulimit_n.into()),
    // percore sizes its fd limit for connections and pipes; any fd may be
    // a socket.
    info(14, "Maxsock", "CLP:u32", "Limit on the number of sockets (the fd limit)", |v| v.info.ulimit_n.into()),
    info(15, "Maxconn", "CLP:u32", "Limit on the number of connections in force", |v| v.info.maxconn.into()),
    info(16, "Hard_maxconn", "CLP:u32", "Configured limit on the number of connections", |v| v.config.global.maxconn.into()),
    info(17, "CurrConns", "MGP:u32", "Current number of client connections", |v| v.snapshot.stats.current_sessions().into()),
    info(18, "CumConns", "MCP:u32", "Client connections accepted since start", |v| v.snapshot.stats.accepted().into()),
    info(19, "CumReq", "MCP:u32", "Requests since start (HTTP requests, and TCP sessions)", |v| cum_req(v).into()),
    info(20, "MaxSslConns", "MMP:u32", "Limit on SSL endpoints, 0=unlimited", zero),
    info(21, "CurrSslConns", "MGP:u32", "Current SSL endpoints (not counted by percore)", zero),
    info(22, "CumSslConns", "MCP:u32", "SSL endpoints since start (not counted by percore)", zero),
    info(23, "Maxpipes", "CLP:u32", "Limit on the number of pipes for splicing (per core limit times cores)", |v| usize_val(v.config.global.tune.maxpipes.saturating_mul(v.info.cores))),
    info(24, "PipesUsed", "MGP:u32", "Pipes in use", |v| v.snapshot.pipes_used.into()),
    info(25, "PipesFree", "MGP:u32", "Pipes allocated and available", |v| v.snapshot.pipes_free.into()),
    info(26, "ConnRate", "MRP:u32", "Connections over the last second (not measured)", zero),
    info(27, "ConnRateLimit", "CLP:u32", "Limit on ConnRate (none)", zero),
    info(28, "MaxConnRate", "MMP:u32", "Highest ConnRate (not measured)", zero),
    info(29, "SessRate", "MRP:u32", "Sessions over the last second (not measured)", zero),
    info(30, "SessRateLimit", "CLP:u32", "Limit on SessRate (none)", zero),
    info(31, "MaxSessRate", "MRP:u32", "Highest SessRate (not measured)", zero),
    info(32, "SslRate", "MRP:u32", "SSL connections over the last second (not measured)", zero),
    info(33, "SslRateLimit", "CLP:u32", "Limit on SslRate (none)", zero),
    info(34, "MaxSslRate", "MMP:u32", "Highest SslRate (not measured)", zero),
    info(35, "SslFrontendKeyRate", "MGP:u32", "SSL keys created on frontends over the last second (not measured)", zero),
    info(36, "SslFrontendMaxKeyRate", "MMP:u32", "Highest SslFrontendKeyRate (not measured)", zero),
    info(37, "SslFrontendSessionReuse_pct", "MGP:u32", "Percent of frontend SSL connections that reused a session (not measured)", zero),
    info(38, "SslBackendKeyRate", "MRP:u32", "SSL keys created on backends over the last second (not measured)", zero),
    info(39, "SslBackendMaxKeyRate", "MMP:u32", "Highest SslBackendKeyRate (not measured)", zero),
    info(40, "SslCacheLookups", "MCP:u32", "SSL session cache lookups (not counted)", zero),
    info(41, "SslCacheMisses", "MCP:u32", "SSL session cache misses (not counted)", zero),
    info(42, "CompressBpsIn", "MRP:u32", "Bytes into the HTTP compressor over the last second (no compression)", zero),
    info(43, "CompressBpsOut", "MRP:u32", "Bytes out of the HTTP compressor over the last second (no compression)", zero),
    info(44, "CompressBpsRateLim", "CLP:u32", "Limit on CompressBpsOut (none)", zero),
    info(45, "ZlibMemUsage", "MGP:u32", "Memory used by zlib (no zlib)", empty),
    info(46, "MaxZlibMemUsage", "CLP:u32", "Limit on ZlibMemUsage (no zlib)", empty),
    info(47, "Tasks", "MGP:u32", "Tasks (not counted)", zero),
    info(48, "Run_queue", "MGP:u32", "Runnable tasks (not counted)", zero),
    info(49, "Idle_pct", "MaP:u32", "Percent of the cores' time since start not used by percore", |v| v.info.idle_pct.into()),
    info(50, "node", "COS:str", "Node name (the host name)", |v| v.info.hostname.as_str().into()),
    info(51, "description", "COS:str", "Node description (none)", empty),
    info(52, "Stopping", "MGP:u32", "1 if the process is stopping, otherwise 0", |v| u32::from(v.info.stopping).into()),
    info(53, "Jobs", "MGP:u32", "Active jobs: client connections and listeners", |v| (v.snapshot.stats.current_sessions() + listeners(v)).into()),
    info(54, "Unstoppable Jobs", "MGP:u32", "Jobs a stop does not wait for", zero),
    info(55, "Listeners", "MGP:u32", "Listening sockets (binds and the stats page)", |v| listeners(v).into()),
    info(56, "ActivePeers", "MGP:u32", "Active peers connections (no peers)", zero),
    info(57, "ConnectedPeers", "MGP:u32", "Connected peers (no peers)", zero),
    info(58, "DroppedLogs", "MGP:u32", "Access-log lines dropped since start", |v| v.snapshot.log_dropped.into()),
    info(59, "BusyPolling", "MGP:u32", "1 if busy-polling is in use (never)", zero),
    info(60, "FailedResolutions", "MGP:u32", "Failed DNS resolutions (no resolvers)", zero),
    info(61, "TotalBytesOut", "MGP:u64", "Bytes sent to clients and servers since start", |v| bytes_out(v).into()),
    info(62, "TotalSplicdedBytesOut", "MGP:u64", "Bytes sent through a pipe since start (not counted)", zero),
    info(63, "BytesOutRate", "MRP:u64", "Bytes sent over the last second (not measured)", zero),
    info(64, "DebugCommandsIssued", "MGP:u32", "Debug commands issued", zero),
    info(65, "CumRecvLogs", "MCP:u32", "Log messages received by log forwarding (none)", zero),
    info(66, "Build info", "POS:str", "Build info", |v| v.info.version.into()),
    info(67, "Memmax_bytes", "CLP:u32", "Hard limit on memory usage in bytes (none)", zero),
    info(68, "PoolAlloc_bytes", "MGP:u64", "Memory allocated in pools in bytes (percore has no pools)", zero),
    info(69, "PoolUsed_bytes", "MGP:u64", "Pool memory in use in bytes (percore has no pools)", zero),
    info(70, "Start_time_sec", "MDP:u32", "Start time in seconds since the epoch", |v| v.info.start_time_sec.into()),
    info(71, "Tainted", "SGP:str", "Experimental features used (none)", |_| "0".into()),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Plain,
    Typed,
    Json,
}

/// A parsed `show info` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShowInfo {
    pub format: Format,
    /// Plain and typed lines end with `:"<help>"` (ignored by JSON, as
    /// HAProxy does).
    pub desc: bool,
}

impl ShowInfo {
    /// Parses the words after `show info`: `[typed|json] [desc]`, other
    /// words ignored (`float` changes nothing: percore has no float
    /// fields).
    pub fn parse(words: &[&str]) -> ShowInfo {
        let mut cmd = ShowInfo::default();
        for w in words {
            match *w {
                "typed" => cmd.format = Format::Typed,
                "json" => cmd.format = Format::Json,
                "desc" => cmd.desc = true,
                _ => {}
            }
        }
        cmd
    }
}

/// `show info ...`: the answer to `cmd`.
pub fn show_info(v: &View<'_>, cmd: ShowInfo) -> String {
    let mut out = String::with_capacity(4096);
    let fields = INFO.iter().filter_map(|f| {
        let val = (f.read)(v);
        (!val.is_empty()).then_some((f, val))
    });
    if cmd.format == Format::Json {
        out.push('[');
        for (i, (f, val)) in fields.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{{\"field\":{{\"pos\":{},\"name\":", f.pos);
            json_str(&mut out, f.name);
            let _ = write!(out, "}},\"processNum\":{PROCESS_NUM},\"tags\":");
            f.tag.write_json(&mut out);
            out.push_str(",\"value\":");
            val.write_json_typed(f.tag.ty, &mut out);
            out.push('}');
        }
        out.push_str("]\n");
        return out;
    }
    for (f, val) in fields {
        if cmd.format == Format::Typed {
            let _ = write!(out, "{}.{}.{PROCESS_NUM}:", f.pos, f.name);
            f.tag.write(&mut out);
            out.push(':');
        } else {
            let _ = write!(out, "{}: ", f.name);
        }
        val.write(&mut out);
        if cmd.desc {
            let _ = write!(out, ":\"{}\"", f.help);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    fn run(words: &[&str]) -> String {
        let (config, snapshot, info) = sample();
        let v = View {
            config: &config,
            snapshot: &snapshot,
            info: &info,
        };
        show_info(&v, ShowInfo::parse(words))
    }

    #[test]
    fn positions_increase() {
        assert!(INFO.windows(2).all(|w| w[0].pos + 1 == w[1].pos));
        assert_eq!(INFO[0].pos, 0);
    }

    #[test]
    fn plain_lines_carry_percores_values() {
        let text = run(&[]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Name: percore");
        assert_eq!(lines[1], "Version: 9.9.9");
        // Release_date (empty) has no line.
        assert_eq!(lines[2], "Nbthread: 1");
        for line in [
            "Pid: 77",
            "Uptime: 1d 1h01m01s",
            "Uptime_sec: 90061",
            "Ulimit-n: 4096",
            "Maxconn: 1000",
            "CurrConns: 1",
            "CumConns: 1",
            "Idle_pct: 97",
            "node: lb1",
            "Stopping: 0",
            "DroppedLogs: 1",
            "Listeners: 1",
            "Jobs: 2",
            "Start_time_sec: 1700000000",
            "Tainted: 0",
        ] {
            assert!(lines.contains(&line), "{line} in {text}");
        }
        assert!(!text.contains("Zlib") && !text.contains("description"));
        assert!(text.ends_with("Tainted: 0\n"));
        assert!(run(&["desc"]).starts_with("Name: percore:\"Product name\"\n"));
    }

    #[test]
    fn typed_and_json_lines_are_haproxys() {
        let typed = run(&["typed"]);
        assert!(typed.starts_with(
            "0.Name.1:POS:str:percore\n1.Version.1:POS:str:9.9.9\n3.Nbthread.1:CGS:u32:1\n"
        ));
        assert!(typed.contains("\n49.Idle_pct.1:MaP:u32:97\n"));
        assert!(typed.contains("\n61.TotalBytesOut.1:MGP:u64:0\n"));
        let json = run(&["json"]);
        assert!(json.starts_with("[{\"field\":{\"pos\":0,\"name\":\"Name\"},\"processNum\":1,\"tags\":{\"origin\":\"Product\",\"nature\":\"Output\",\"scope\":\"Service\"},\"value\":{\"type\":\"str\",\"value\":\"percore\"}},"));
        assert!(json.ends_with("\"value\":{\"type\":\"str\",\"value\":\"0\"}}]\n"));
        assert_eq!(run(&["json", "desc"]), json);
    }
}
