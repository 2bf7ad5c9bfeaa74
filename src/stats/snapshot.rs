//! A core's counters plus the live state of its backends, as sent to the
//! core that serves a stats request. Everything here is `Send`: snapshots
//! are the only stats data that crosses cores.

use super::CoreStats;
use crate::backend::CheckState;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

/// One server as the merged cores see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// How many of the merged cores have the server up (health).
    pub up_cores: u32,
    /// How many have it in maintenance (`disabled`).
    pub disabled_cores: u32,
    pub cores: u32,
    /// Weight as configured or set at run time (the first core's).
    pub weight: u32,
    pub backup: bool,
    /// Time since the last up/down/maintenance change (the most recent over
    /// the merged cores); since start if it never changed.
    pub since_change: Duration,
    /// Connection slots held right now (includes connects in progress).
    pub slots_used: u64,
    /// Times load balancing picked this server (csv: lbtot).
    pub lbtot: u64,
    /// What the runtime API set and the checks found.
    pub admin: ServerAdmin,
}

/// A server's runtime-API state and last check, for `show servers state`.
/// Every core holds the same settings; the check is known to the core that
/// runs it only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerAdmin {
    /// Cores on which the server is draining.
    pub drain_cores: u32,
    /// In maintenance since start because the configuration said so.
    pub config_maint: bool,
    /// `disable health` is in force.
    pub checks_off: bool,
    pub initial_weight: u32,
    /// Process-wide `maxconn` (0 = none).
    pub maxconn: u32,
    /// Where new connections go (the runtime API may have changed it).
    pub addr: Option<SocketAddr>,
    pub check: Option<CheckState>,
    /// The health counter HAProxy shows for a server it does not check.
    pub unchecked_health: u32,
}

/// A server's state as the merged cores see it. Every output (CSV, typed,
/// JSON, Prometheus, HTML, `show stat up`) reads how to show a state from
/// [`ServerStatus::look`], so a new state (DRAIN, "MAINT (via be/srv)") is
/// a variant, the rule in [`ServerState::status`] that yields it, and one
/// arm there (plus its label in [`STATE_LABELS`] if it is a new label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Up,
    Down,
    Maint,
    /// Up, but draining (runtime API `set server ... state drain`).
    Drain,
    /// Cores disagree (a health change is still propagating).
    Partial {
        up: u32,
        of: u32,
    },
}

/// Every Prometheus `state` label a server can have: `/metrics` writes one
/// sample per label (1 for the current state, 0 for the others), so the
/// full set must be known up front.
pub const STATE_LABELS: [&str; 5] = ["UP", "DOWN", "MAINT", "DRAIN", "PARTIAL"];

/// How one state is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// HAProxy's status word (csv `status`).
    pub word: Cow<'static, str>,
    /// Prometheus `state` label, one of [`STATE_LABELS`].
    pub label: &'static str,
    /// Stats page row class for an active and for a backup server.
    pub css: [&'static str; 2],
    /// Counted as usable by its backend (csv `act`/`bck`, backend status
    /// and weight), given a non-zero weight.
    pub usable: bool,
    /// Kept by `show stat ... up`: "up or not checked".
    pub reported_up: bool,
    /// Left out by `show stat ... no-maint`.
    pub maint: bool,
}

impl ServerStatus {
    pub fn look(self) -> Look {
        let (word, label, css, usable, reported_up, maint) = match self {
            ServerStatus::Up => (
                "UP".into(),
                "UP",
                ["active_up", "backup_up"],
                true,
                true,
                false,
            ),
            ServerStatus::Down => (
                "DOWN".into(),
                "DOWN",
                ["active_down", "backup_down"],
                false,
                false,
                false,
            ),
            ServerStatus::Maint => ("MAINT".into(), "MAINT", ["maintain"; 2], false, false, true),
            // Up and checked, but balancing gives it nothing new.
            ServerStatus::Drain => ("DRAIN".into(), "DRAIN", ["draining"; 2], false, true, false),
            // Not usable until every core agrees: the backend counts only
            // servers all cores send traffic to.
            ServerStatus::Partial { up, of } => (
                format!("UP {up}/{of}").into(),
                "PARTIAL",
                ["partial"; 2],
                false,
                true,
                false,
            ),
        };
        Look {
            word,
            label,
            css,
            usable,
            reported_up,
            maint,
        }
    }

    pub fn word(self) -> String {
        self.look().word.into_owned()
    }
}

impl ServerState {
    pub fn status(&self) -> ServerStatus {
        if self.cores > 0 && self.disabled_cores == self.cores {
            ServerStatus::Maint
        } else if self.up_cores >= self.cores
            && self.cores > 0
            && self.admin.drain_cores == self.cores
        {
            ServerStatus::Drain
        } else if self.up_cores >= self.cores {
            ServerStatus::Up
        } else if self.up_cores == 0 {
            ServerStatus::Down
        } else {
            ServerStatus::Partial {
                up: self.up_cores,
                of: self.cores,
            }
        }
    }

    /// The weight balancing uses: 0 while draining (HAProxy's `weight`
    /// stats column shows this one).
    pub fn effective_weight(&self) -> u32 {
        if self.status() == ServerStatus::Drain {
            0
        } else {
            self.weight
        }
    }

    fn merge(&mut self, other: &ServerState) {
        self.up_cores += other.up_cores;
        self.disabled_cores += other.disabled_cores;
        self.cores += other.cores;
        self.since_change = self.since_change.min(other.since_change);
        self.slots_used += other.slots_used;
        self.lbtot += other.lbtot;
        self.admin.drain_cores += other.admin.drain_cores;
        self.admin.check = self.admin.check.or(other.admin.check);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendState {
    /// Connections waiting for a server slot (csv: qcur).
    pub queue_cur: u64,
    /// Sum of per-core queue peaks (csv: qmax).
    pub queue_max: u64,
    pub servers: Vec<ServerState>,
}

impl BackendState {
    /// Servers usable for traffic: (active, backup) counts.
    pub fn usable_servers(&self) -> (u32, u32) {
        let mut counts = (0, 0);
        for s in &self.servers {
            if s.status().look().usable && s.weight > 0 {
                if s.backup {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
            }
        }
        counts
    }

    /// HAProxy's backend status word: UP while a server can take traffic.
    pub fn status_word(&self) -> &'static str {
        if self.usable_servers() != (0, 0) {
            "UP"
        } else {
            "DOWN"
        }
    }

    /// Sum of the weights of active servers taking traffic (csv `weight`
    /// of the BACKEND row).
    pub fn active_weight(&self) -> u32 {
        self.servers
            .iter()
            .filter(|s| s.status().look().usable && !s.backup)
            .map(|s| s.weight)
            .sum()
    }

    /// Times load balancing picked any of the servers.
    pub fn lbtot(&self) -> u64 {
        self.servers.iter().map(|s| s.lbtot).sum()
    }

    /// Time since the most recent change of any server.
    pub fn since_change(&self) -> Duration {
        self.servers
            .iter()
            .map(|s| s.since_change)
            .min()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Cores merged into this snapshot.
    pub cores: u32,
    pub stats: CoreStats,
    pub backends: Vec<BackendState>,
    /// Access-log lines handed to the log writer.
    pub log_lines: u64,
    /// Access-log lines dropped because a buffer was full.
    pub log_dropped: u64,
    /// Per frontend: process-wide `maxconn` in force (configured or set by
    /// the runtime API); `None`: unlimited.
    pub frontend_maxconn: Vec<Option<u32>>,
    /// Splice pipes lent out to connections right now (show info
    /// `PipesUsed`).
    pub pipes_used: u64,
    /// Splice pipes open and waiting in the pools (show info `PipesFree`).
    pub pipes_free: u64,
}

impl Snapshot {
    pub fn merge(&mut self, other: &Snapshot) {
        self.cores += other.cores;
        self.stats.merge(&other.stats);
        for (a, b) in self.backends.iter_mut().zip(&other.backends) {
            a.queue_cur += b.queue_cur;
            a.queue_max += b.queue_max;
            for (sa, sb) in a.servers.iter_mut().zip(&b.servers) {
                sa.merge(sb);
            }
        }
        self.log_lines += other.log_lines;
        self.log_dropped += other.log_dropped;
        self.pipes_used += other.pipes_used;
        self.pipes_free += other.pipes_free;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(up: bool, disabled: bool, secs: u64) -> ServerState {
        ServerState {
            up_cores: u32::from(up),
            disabled_cores: u32::from(disabled),
            cores: 1,
            weight: 1,
            backup: false,
            since_change: Duration::from_secs(secs),
            slots_used: 1,
            lbtot: 5,
            admin: ServerAdmin::default(),
        }
    }

    fn snapshot(s: ServerState) -> Snapshot {
        Snapshot {
            cores: 1,
            stats: CoreStats::default(),
            backends: vec![BackendState {
                queue_cur: 1,
                queue_max: 3,
                servers: vec![s],
            }],
            log_lines: 10,
            log_dropped: 1,
            frontend_maxconn: Vec::new(),
            pipes_used: 2,
            pipes_free: 5,
        }
    }

    #[test]
    fn every_status_has_a_declared_label() {
        for st in [
            ServerStatus::Up,
            ServerStatus::Down,
            ServerStatus::Maint,
            ServerStatus::Drain,
            ServerStatus::Partial { up: 1, of: 2 },
        ] {
            assert!(STATE_LABELS.contains(&st.look().label), "{st:?}");
        }
        assert_eq!(ServerStatus::Partial { up: 1, of: 2 }.word(), "UP 1/2");
    }

    #[test]
    fn merged_status_follows_the_cores() {
        let mut a = snapshot(server(true, false, 50));
        a.merge(&snapshot(server(true, false, 20)));
        let s = &a.backends[0].servers[0];
        assert_eq!(s.status(), ServerStatus::Up);
        assert_eq!(s.since_change, Duration::from_secs(20));
        assert_eq!((s.slots_used, s.lbtot), (2, 10));
        assert_eq!((a.backends[0].queue_cur, a.backends[0].queue_max), (2, 6));
        assert_eq!((a.cores, a.log_lines, a.log_dropped), (2, 20, 2));
        assert_eq!((a.pipes_used, a.pipes_free), (4, 10));

        let mut mixed = snapshot(server(true, false, 1));
        mixed.merge(&snapshot(server(false, false, 1)));
        assert_eq!(mixed.backends[0].servers[0].status().word(), "UP 1/2");
        let mut down = snapshot(server(false, false, 1));
        down.merge(&snapshot(server(false, false, 1)));
        assert_eq!(down.backends[0].servers[0].status(), ServerStatus::Down);
        assert_eq!(down.backends[0].usable_servers(), (0, 0));
        let maint = snapshot(server(true, true, 1));
        assert_eq!(maint.backends[0].servers[0].status(), ServerStatus::Maint);
    }
}
