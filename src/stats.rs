//! Per-core counters. Each core owns its own `CoreStats` (plain integers, no
//! atomics); totals across cores are made by merging per-core snapshots.

use crate::config::Config;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrontendCounters {
    pub sessions_total: u64,
    pub sessions_cur: u64,
    pub sessions_max: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackendCounters {
    pub sessions_total: u64,
    pub conn_errors: u64,
    pub retries: u64,
    pub redispatches: u64,
    pub queue_timeouts: u64,
    pub no_server: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerCounters {
    pub sessions_total: u64,
    pub conn_errors: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CoreStats {
    pub frontends: Vec<FrontendCounters>,
    pub backends: Vec<BackendCounters>,
    /// Indexed `[backend][server]`.
    pub servers: Vec<Vec<ServerCounters>>,
}

impl CoreStats {
    pub fn for_config(config: &Config) -> Self {
        CoreStats {
            frontends: vec![FrontendCounters::default(); config.frontends.len()],
            backends: vec![BackendCounters::default(); config.backends.len()],
            servers: config
                .backends
                .iter()
                .map(|b| vec![ServerCounters::default(); b.servers.len()])
                .collect(),
        }
    }

    pub fn accepted(&self) -> u64 {
        self.frontends.iter().map(|f| f.sessions_total).sum()
    }

    /// Adds another core's counters into this one. `*_max` fields add up
    /// too: cores are independent, so the process-wide peak is at most the
    /// sum of per-core peaks.
    pub fn merge(&mut self, other: &CoreStats) {
        for (a, b) in self.frontends.iter_mut().zip(&other.frontends) {
            a.sessions_total += b.sessions_total;
            a.sessions_cur += b.sessions_cur;
            a.sessions_max += b.sessions_max;
            a.bytes_in += b.bytes_in;
            a.bytes_out += b.bytes_out;
        }
        for (a, b) in self.backends.iter_mut().zip(&other.backends) {
            a.sessions_total += b.sessions_total;
            a.conn_errors += b.conn_errors;
            a.retries += b.retries;
            a.redispatches += b.redispatches;
            a.queue_timeouts += b.queue_timeouts;
            a.no_server += b.no_server;
        }
        for (sa, sb) in self.servers.iter_mut().zip(&other.servers) {
            for (a, b) in sa.iter_mut().zip(sb) {
                a.sessions_total += b.sessions_total;
                a.conn_errors += b.conn_errors;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_every_counter() {
        let mut a = CoreStats {
            frontends: vec![FrontendCounters {
                sessions_total: 2,
                bytes_in: 10,
                ..Default::default()
            }],
            backends: vec![BackendCounters {
                retries: 1,
                ..Default::default()
            }],
            servers: vec![vec![ServerCounters {
                sessions_total: 2,
                conn_errors: 1,
            }]],
        };
        let b = a.clone();
        a.merge(&b);
        assert_eq!(a.frontends[0].sessions_total, 4);
        assert_eq!(a.frontends[0].bytes_in, 20);
        assert_eq!(a.backends[0].retries, 2);
        assert_eq!(a.servers[0][0].conn_errors, 2);
        assert_eq!(a.accepted(), 4);
    }
}
