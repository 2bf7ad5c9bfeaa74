//! The stats outputs, each a pure function of a merged [`Snapshot`], the
//! configuration (names, limits) and [`PageInfo`]: the stats page (HTML,
//! CSV, JSON), `/metrics`, and the runtime API's `show stat` and `show
//! info` ([`show_stat`], [`info`]).

pub mod csv;
pub mod fields;
pub mod html;
pub mod info;
pub mod json;
pub mod prometheus;
pub mod show_stat;
pub mod typed;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::stats::Snapshot;

/// Process facts shown next to the counters.
#[derive(Debug, Clone)]
pub struct PageInfo {
    pub pid: u32,
    /// `None` with `hide-version`.
    pub version: Option<&'static str>,
    pub uptime: Duration,
    /// Executors running.
    pub cores: usize,
    pub hostname: String,
    /// The stats page path, for the links on the page.
    pub uri: String,
    /// HTML auto-refresh, unless disabled by `;norefresh`.
    pub refresh: Option<Duration>,
    /// Process-wide connection limit in force (show info `Maxconn`): the
    /// configured one unless changed at run time.
    pub maxconn: u32,
    /// Soft RLIMIT_NOFILE (show info `Ulimit-n` and `Maxsock`).
    pub ulimit_n: u64,
    /// A soft stop is under way (show info `Stopping`).
    pub stopping: bool,
    /// Start time in seconds since the Unix epoch (show info
    /// `Start_time_sec`).
    pub start_time_sec: u64,
    /// Share of the cores' time since start that percore did not use, in
    /// percent (show info `Idle_pct`; HAProxy measures the last second).
    pub idle_pct: u32,
}

impl PageInfo {
    /// The facts as of now for a process started at `started`: pid,
    /// version, uptime, fd limit and CPU use read from the OS, `maxconn`
    /// from the configuration. The page's `uri`/`refresh` are left empty
    /// and `stopping` false for the caller to set.
    pub fn now(started: Instant, cores: usize, hostname: String, config: &Config) -> PageInfo {
        let uptime = started.elapsed();
        let start_time_sec = SystemTime::now()
            .checked_sub(uptime)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        PageInfo {
            pid: std::process::id(),
            version: Some(env!("CARGO_PKG_VERSION")),
            uptime,
            cores,
            hostname,
            uri: String::new(),
            refresh: None,
            maxconn: config.global.maxconn,
            ulimit_n: fd_limit(),
            stopping: false,
            start_time_sec,
            idle_pct: idle_pct(cpu_time(), uptime, cores),
        }
    }
}

/// The soft RLIMIT_NOFILE; 0 if it cannot be read.
fn fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

/// User plus system CPU time of the whole process.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0).saturating_mul(1000),
        )
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Percent of `cores` x `uptime` not spent on the CPU; 100 at start.
fn idle_pct(cpu: Duration, uptime: Duration, cores: usize) -> u32 {
    let available = uptime.as_secs_f64() * cores.max(1) as f64;
    if available <= 0.0 {
        return 100;
    }
    let busy = (cpu.as_secs_f64() / available).clamp(0.0, 1.0);
    ((1.0 - busy) * 100.0).round() as u32
}

/// What one request asked for.
pub struct View<'a> {
    pub config: &'a Config,
    pub snapshot: &'a Snapshot,
    pub info: &'a PageInfo,
}

/// HAProxy's uptime layout: `0d 1h02m03s`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "{}d {}h{:02}m{:02}s",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::CoreStats;
    use std::path::Path;

    pub fn sample() -> (Config, Snapshot, PageInfo) {
        let config = crate::config::load_str(
            r#"
[[frontend]]
name = "fe"
bind = ["127.0.0.1:1"]
default_backend = "be"
timeout = { client = "1s" }
[[backend]]
name = "be"
timeout = { connect = "1s", server = "1s" }
servers = [
  { name = "s1", addr = "127.0.0.1:2" },
  { name = "s2", addr = "127.0.0.1:3", backup = true },
]
"#,
            Path::new("t.toml"),
        )
        .unwrap();
        let mut stats = CoreStats::for_config(&config);
        stats.frontends[0].session_started();
        stats.frontends[0].bytes_in = 1234;
        stats.backends[0].session_started();
        stats.servers[0][0].session_started();
        stats.timings[0].connect.record(Duration::from_micros(250));
        stats.timings[0].total.record(Duration::from_millis(40));
        let mut snapshot = Snapshot {
            cores: 1,
            stats,
            backends: vec![crate::stats::BackendState {
                queue_cur: 0,
                queue_max: 2,
                servers: vec![
                    crate::stats::ServerState {
                        up_cores: 1,
                        disabled_cores: 0,
                        cores: 1,
                        weight: 1,
                        backup: false,
                        since_change: Duration::from_secs(83),
                        slots_used: 1,
                        lbtot: 1,
                        admin: Default::default(),
                    },
                    crate::stats::ServerState {
                        up_cores: 0,
                        disabled_cores: 0,
                        cores: 1,
                        weight: 1,
                        backup: true,
                        since_change: Duration::from_secs(5),
                        slots_used: 0,
                        lbtot: 0,
                        admin: Default::default(),
                    },
                ],
            }],
            log_lines: 3,
            log_dropped: 1,
            frontend_maxconn: vec![None],
            pipes_used: 0,
            pipes_free: 0,
        };
        snapshot.cores = 1;
        let info = PageInfo {
            pid: 77,
            version: Some("9.9.9"),
            uptime: Duration::from_secs(90_061),
            cores: 1,
            hostname: "lb1".into(),
            uri: "/stats".into(),
            refresh: Some(Duration::from_secs(5)),
            maxconn: 1000,
            ulimit_n: 4096,
            stopping: false,
            start_time_sec: 1_700_000_000,
            idle_pct: 97,
        };
        (config, snapshot, info)
    }

    #[test]
    fn idle_share_of_the_cores_time() {
        let s = Duration::from_secs;
        assert_eq!(idle_pct(s(1), s(10), 2), 95);
        assert_eq!(idle_pct(s(30), s(10), 2), 0);
        assert_eq!(idle_pct(s(0), Duration::ZERO, 2), 100);
    }

    #[test]
    fn now_reads_the_process() {
        let (config, _, _) = sample();
        let info = PageInfo::now(Instant::now(), 2, "h".into(), &config);
        assert_eq!(info.pid, std::process::id());
        assert!(info.ulimit_n > 0);
        assert!(info.start_time_sec > 1_600_000_000);
        assert_eq!(info.maxconn, config.global.maxconn);
    }

    #[test]
    fn uptime_layout() {
        assert_eq!(uptime(Duration::from_secs(90_061)), "1d 1h01m01s");
    }
}
