//! A reload's hand-over of server state from one generation's
//! [`BackendRuntime`] to the next, server by server (matched by name), as
//! HAProxy's `server-state-file` carries it across its reloads: health,
//! what the runtime API set, and the counters.

use super::runtime::BackendRuntime;
use super::server::ServerState;

impl BackendRuntime {
    /// Takes over the state of the servers of `old` that this backend still
    /// has; `servers[i]` is the index here of `old`'s server `i`. Totals
    /// move (the old generation keeps counting only what its sessions
    /// still do); connections open on `old` stay counted there, so this
    /// core's `maxconn` share is, for a moment, per generation, as it is
    /// per process across an HAProxy reload.
    pub fn carry_from(
        &mut self,
        old: &mut BackendRuntime,
        servers: &[Option<usize>],
        core_index: usize,
        core_count: usize,
    ) {
        for (from, to) in servers.iter().enumerate() {
            let (Some(to), Some(was)) = (*to, old.servers.get_mut(from)) else {
                continue;
            };
            let Some(now) = self.servers.get_mut(to) else {
                continue;
            };
            carry_server(was, now, core_index, core_count);
        }
        self.server_set_changed();
    }

    /// Adds what a retired generation's servers counted after the switch.
    pub fn fold_counters_from(&mut self, old: &BackendRuntime, servers: &[Option<usize>]) {
        for (from, to) in servers.iter().enumerate() {
            let (Some(to), Some(was)) = (*to, old.servers.get(from)) else {
                continue;
            };
            if let Some(now) = self.servers.get_mut(to) {
                now.counters.total_selected += was.counters.total_selected;
                now.counters.max_conns = now.counters.max_conns.max(was.counters.max_conns);
            }
        }
    }
}

/// One server's state, from `was` (old configuration) into `now` (new).
/// What the new configuration changed wins over what ran before, except
/// where an operator set something at run time: that stays, as with
/// HAProxy's state file.
fn carry_server(
    was: &mut ServerState,
    now: &mut ServerState,
    core_index: usize,
    core_count: usize,
) {
    // Health follows the checks; a server whose checks the new
    // configuration removed starts up, as a new unchecked server does.
    now.up = was.up || !now.checked;
    now.drain = was.drain;
    now.checks_off = was.checks_off;
    now.last_change = was.last_change;
    now.check = was.check;
    now.unchecked_health = was.unchecked_health;
    // Maintenance set through the runtime API stays; one from the old
    // configuration follows the new configuration.
    if was.disabled && !was.disabled_by_config {
        now.disabled = true;
        now.disabled_by_config = false;
    }
    if was.weight != was.initial_weight {
        now.weight = was.weight;
    }
    if was.maxconn != was.configured_maxconn {
        now.set_maxconn(was.maxconn, core_index, core_count);
    }
    if was.addr != was.configured_addr {
        now.addr = was.addr;
    }
    now.counters.total_selected = was.counters.total_selected;
    now.counters.max_conns = was.counters.max_conns;
    // The old generation now counts only what happens after the switch.
    was.counters.total_selected = 0;
    was.counters.max_conns = was.counters.current_conns;
}
