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

/// The last active check as the checking core saw it, in HAProxy's numbers
/// (`show servers state`): published by the checker on its core only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckState {
    /// HAProxy's `HCHK_STATUS_*` value of the last result (1, INI, before
    /// the first).
    pub status: u8,
    /// HAProxy's `CHK_RES_*`: 0 unknown, 2 failed, 3 passed.
    pub result: u8,
    /// HAProxy's health counter, 0 to rise + fall - 1.
    pub health: u32,
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
    /// The address in the configuration (`addr` may be changed at run
    /// time; a reload keeps such a change).
    pub(crate) configured_addr: SocketAddr,
    /// The configuration has active checks for this server.
    pub(crate) checked: bool,
    pub(crate) weight: u32,
    /// The configured weight, which `set weight N%` scales and `get weight`
    /// reports as "initial".
    pub(crate) initial_weight: u32,
    pub(crate) backup: bool,
    /// In maintenance (HAProxy's MAINT admin state): takes no traffic at
    /// all and is not checked.
    pub(crate) disabled: bool,
    /// The maintenance came from the configuration (`disabled = true`,
    /// HAProxy's CMAINT flag); cleared with the maintenance itself.
    pub(crate) disabled_by_config: bool,
    /// Draining (HAProxy's DRAIN admin state): no new connections from
    /// balancing, persistent ones still accepted, checks continue.
    pub(crate) drain: bool,
    /// Active checks stopped by `disable health`: the server counts as up.
    pub(crate) checks_off: bool,
    pub(crate) up: bool,
    /// Process-wide `maxconn` as configured or set at run time (0 = none);
    /// `slots` is this core's share of it.
    pub(crate) maxconn: u32,
    /// `maxconn` as configured (0 = none).
    pub(crate) configured_maxconn: u32,
    /// This core's slot limit; `None` = unlimited.
    pub(crate) slots: Option<u32>,
    pub(crate) counters: ServerCounters,
    /// Smooth weighted round-robin accumulator (`roundrobin` only).
    pub(crate) swrr_current: i64,
    /// Last up/down or maintenance change (start if none), for the stats.
    pub(crate) last_change: std::time::Instant,
    /// Set on the core that checks the server.
    pub(crate) check: Option<CheckState>,
    /// HAProxy keeps a health counter for servers it does not check too:
    /// `rise` (2) at start, 0 once the server has been in maintenance.
    pub(crate) unchecked_health: u32,
}

impl ServerState {
    pub(crate) fn new(cfg: &config::Server, core_index: usize, core_count: usize) -> Self {
        ServerState {
            name: cfg.name.clone(),
            addr: cfg.addr,
            configured_addr: cfg.addr,
            checked: cfg.check.is_some(),
            weight: cfg.weight,
            initial_weight: cfg.weight,
            backup: cfg.backup,
            disabled: cfg.disabled,
            disabled_by_config: cfg.disabled,
            drain: false,
            checks_off: false,
            // Servers start up, as in HAProxy before the first check result.
            up: true,
            maxconn: cfg.maxconn.unwrap_or(0),
            configured_maxconn: cfg.maxconn.unwrap_or(0),
            // `maxconn 0` means "no limit" in HAProxy.
            slots: cfg
                .maxconn
                .filter(|&m| m > 0)
                .map(|m| maxconn_share(m, core_index, core_count)),
            counters: ServerCounters::default(),
            swrr_current: 0,
            last_change: std::time::Instant::now(),
            check: None,
            unchecked_health: if cfg.disabled { 0 } else { 2 },
        }
    }

    /// May be handed out by balancing.
    pub(crate) fn is_usable(&self) -> bool {
        self.accepts_persistent() && !self.drain && self.weight > 0
    }

    /// May take a connection that persistence (a cookie) sends to it:
    /// HAProxy lets drained and weight-0 servers take those, never a server
    /// in maintenance or down.
    pub(crate) fn accepts_persistent(&self) -> bool {
        !self.disabled && self.up
    }

    /// Sets the process-wide limit and this core's share of it.
    pub(crate) fn set_maxconn(&mut self, maxconn: u32, core_index: usize, core_count: usize) {
        self.maxconn = maxconn;
        self.slots = (maxconn > 0).then(|| maxconn_share(maxconn, core_index, core_count));
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
