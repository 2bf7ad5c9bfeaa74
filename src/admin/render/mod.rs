//! The stats outputs, each a pure function of a merged [`Snapshot`], the
//! configuration (names, limits) and [`PageInfo`].

pub mod csv;
pub mod fields;
pub mod html;
pub mod json;
pub mod prometheus;
pub mod show_stat;
pub mod typed;

use std::time::Duration;

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
                    },
                ],
            }],
            log_lines: 3,
            log_dropped: 1,
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
        };
        (config, snapshot, info)
    }

    #[test]
    fn uptime_layout() {
        assert_eq!(uptime(Duration::from_secs(90_061)), "1d 1h01m01s");
    }
}
