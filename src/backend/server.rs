//! One server as seen by one core: its configuration, health, the core's
//! share of its `maxconn`, and its counters.

use std::net::SocketAddr;

use crate::config;

/// This core's share of a process-wide server `maxconn`.
///
/// HAProxy enforces `maxconn` over the whole process; percore has no shared
/// counters, so the limit is split statically across cores: core `i` of `n`
/// gets `floor(M / n)`, plus one if `i < M % n`, so the shares sum to exactly
/// `M` whenever `M >= n`. Every core gets at least 1, because a share of 0
/// would make the server unusable on that core and silently turn a small
/// limit into a partial outage; the price is that with `M < n` the process
/// as a whole may run up to `n` connections on that server instead of `M`.
/// A static split can leave one core queueing while another has free slots;
/// that is the accepted cost of not sharing state between cores.
pub fn maxconn_share(maxconn: u32, core_index: usize, core_count: usize) -> u32 {
    let cores = core_count.max(1) as u64;
    let index = core_index as u64 % cores;
    let m = u64::from(maxconn);
    let share = m / cores + u64::from(index < m % cores);
    // share <= maxconn, so it fits in u32.
    (share as u32).max(1)
}

/// Per-server counters kept by one core (the stats module sums cores).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Connection slots currently held on this server.
    pub current_conns: u32,
    /// Highest `current_conns` seen.
    pub max_conns: u32,
    /// Times this server was handed out by load balancing (HAProxy's
    /// "LbTot").
    pub total_selected: u64,
}

#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    pub(crate) weight: u32,
    pub(crate) backup: bool,
    pub(crate) disabled: bool,
    pub(crate) up: bool,
    /// This core's slot limit; `None` = unlimited.
    pub(crate) slots: Option<u32>,
    pub(crate) counters: ServerCounters,
    /// Smooth weighted round-robin accumulator (`roundrobin` only).
    pub(crate) swrr_current: i64,
    /// Last up/down or maintenance change (start if none), for the stats.
    pub(crate) last_change: std::time::Instant,
}

impl ServerState {
    pub(crate) fn new(cfg: &config::Server, core_index: usize, core_count: usize) -> Self {
        ServerState {
            name: cfg.name.clone(),
            addr: cfg.addr,
            weight: cfg.weight,
            backup: cfg.backup,
            disabled: cfg.disabled,
            // Servers start up, as in HAProxy before the first check result.
            up: true,
            // `maxconn 0` means "no limit" in HAProxy.
            slots: cfg
                .maxconn
                .filter(|&m| m > 0)
                .map(|m| maxconn_share(m, core_index, core_count)),
            counters: ServerCounters::default(),
            swrr_current: 0,
            last_change: std::time::Instant::now(),
        }
    }

    pub(crate) fn is_usable(&self) -> bool {
        !self.disabled && self.up && self.weight > 0
    }

    pub(crate) fn has_free_slot(&self) -> bool {
        self.slots
            .is_none_or(|limit| self.counters.current_conns < limit)
    }

    pub(crate) fn take_slot(&mut self) {
        let c = &mut self.counters;
        c.current_conns += 1;
        c.max_conns = c.max_conns.max(c.current_conns);
        c.total_selected += 1;
    }

    pub(crate) fn release_slot(&mut self) {
        self.counters.current_conns = self.counters.current_conns.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_splits_exactly_when_maxconn_at_least_cores() {
        for &(m, n) in &[(10u32, 1usize), (10, 2), (10, 3), (7, 4), (100, 7), (5, 5)] {
            let shares: Vec<u32> = (0..n).map(|i| maxconn_share(m, i, n)).collect();
            assert_eq!(shares.iter().sum::<u32>(), m, "m={m} n={n} {shares:?}");
            let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(hi - lo <= 1, "uneven split {shares:?}");
            // Extra slots go to the lowest core indexes.
            assert!(shares.windows(2).all(|w| w[0] >= w[1]), "{shares:?}");
        }
    }

    #[test]
    fn share_examples() {
        assert_eq!(maxconn_share(10, 0, 3), 4);
        assert_eq!(maxconn_share(10, 1, 3), 3);
        assert_eq!(maxconn_share(10, 2, 3), 3);
        assert_eq!(maxconn_share(1, 0, 1), 1);
    }

    #[test]
    fn share_is_at_least_one() {
        assert_eq!(maxconn_share(3, 0, 8), 1);
        assert_eq!(maxconn_share(3, 2, 8), 1);
        assert_eq!(maxconn_share(3, 7, 8), 1);
        assert_eq!(maxconn_share(0, 0, 2), 1);
    }

    #[test]
    fn share_tolerates_zero_cores() {
        assert_eq!(maxconn_share(10, 0, 0), 10);
    }
}
