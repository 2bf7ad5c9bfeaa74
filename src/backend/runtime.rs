//! [`BackendRuntime`]: one backend as one core sees it — server health and
//! weights, the balance algorithm's state, connection counts against this
//! core's `maxconn` shares, and the queue of connections waiting for a slot.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use crate::config::{self, Balance, HashType};

use super::ring::Ring;
use super::select::{hash_client_ip, weight_map, Rng};
use super::server::{CheckState, ServerCounters, ServerState};
use super::slot::{Outcome, Waiter};

/// Result of running the balance algorithm once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    Server(usize),
    /// Servers are usable but none this connection may use has a free slot.
    Full,
    /// No server is usable at all.
    NoServer,
}

/// What the request being balanced brings to the choice (HTTP): the hash
/// of what `balance uri|url_param|hdr` reads, and the server its
/// persistence cookie names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PickHint {
    /// `None`: the request lacks what is hashed; HAProxy then balances
    /// round robin.
    pub hash: Option<u64>,
    /// Taken if usable; a full one is waited for (HAProxy queues on the
    /// server); an unusable one falls back to balancing.
    pub sticky: Option<usize>,
}

/// Per-core state of one configured backend. Owned by one executor (wrap it
/// in `Rc<RefCell<_>>` and share it between that core's connection tasks);
/// nothing in it is shared with other cores.
///
/// Server indexes are positions in the configured `servers` list.
#[derive(Debug)]
pub struct BackendRuntime {
    name: String,
    balance: Balance,
    hash_type: HashType,
    /// `random(N)`: servers drawn per pick.
    draws: u32,
    allbackups: bool,
    retries: u32,
    redispatch: Option<i32>,
    queue_timeout: Option<Duration>,
    pub(crate) servers: Vec<ServerState>,
    /// The servers balancing draws from right now, in declaration order:
    /// the usable primaries or, when there are none, the usable backups
    /// (only the first unless `allbackups`). Recomputed on every health or
    /// weight change, never per pick.
    active: Vec<usize>,
    /// Weight map of `active` (`static-rr`, map-based hashing).
    map: Vec<usize>,
    /// Consistent-hash ring of `active` (`hash-type consistent` only).
    ring: Ring,
    /// `static-rr`: next position in `map`; `leastconn`: position in
    /// `active` where the tie-breaking scan starts.
    cursor: usize,
    rng: Rng,
    pub(crate) queue: VecDeque<Rc<Waiter>>,
    queue_max: usize,
}

impl BackendRuntime {
    /// `core_index` in `0..core_count` decides this core's share of each
    /// server's `maxconn` (see [`super::maxconn_share`]).
    pub fn new(cfg: &config::Backend, core_index: usize, core_count: usize) -> Self {
        let servers = cfg
            .servers
            .iter()
            .map(|s| ServerState::new(s, core_index, core_count))
            .collect();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (core_index as u64).rotate_right(7);
        let mut rt = BackendRuntime {
            name: cfg.name.clone(),
            balance: cfg.balance,
            hash_type: cfg.balance_params.hash_type,
            draws: cfg.balance_params.draws.max(1),
            allbackups: cfg.allbackups,
            retries: cfg.retries,
            redispatch: cfg.redispatch,
            // HAProxy: "If unspecified, the same value as the backend's
            // connection timeout is used".
            queue_timeout: cfg.timeouts.queue.or(cfg.timeouts.connect),
            servers,
            active: Vec::new(),
            map: Vec::new(),
            ring: Ring::default(),
            cursor: 0,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            queue_max: 0,
        };
        rt.recompute_active();
        rt
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// Extra connection attempts after a failed one (`retries`).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// `option redispatch <interval>`; `None` when retries stay on the server
    /// that failed.
    pub fn redispatch(&self) -> Option<i32> {
        self.redispatch
    }

    /// How long a connection may wait in the queue: `timeout queue`, or
    /// `timeout connect` when unset, as in HAProxy. `None`: forever.
    pub fn queue_timeout(&self) -> Option<Duration> {
        self.queue_timeout
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Panics if `idx >= server_count()` (indexes come from this backend).
    pub fn server_addr(&self, idx: usize) -> SocketAddr {
        self.servers[idx].addr
    }

    pub fn server_name(&self, idx: usize) -> &str {
        &self.servers[idx].name
    }

    pub fn server_index(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.name == name)
    }

    pub fn server_weight(&self, idx: usize) -> u32 {
        self.servers[idx].weight
    }

    pub fn is_server_up(&self, idx: usize) -> bool {
        self.servers[idx].up
    }

    /// In maintenance (`disabled`).
    pub fn is_server_disabled(&self, idx: usize) -> bool {
        self.servers[idx].disabled
    }

    pub fn is_server_backup(&self, idx: usize) -> bool {
        self.servers[idx].backup
    }

    /// Whether any server (a backup included) can take traffic now; when
    /// not, `acquire` fails with `NoServer`.
    pub fn has_usable_server(&self) -> bool {
        !self.active.is_empty()
    }

    /// When the server last went up, down, into or out of maintenance
    /// (start time if it never did).
    pub fn server_last_change(&self, idx: usize) -> std::time::Instant {
        self.servers[idx].last_change
    }

    /// This core's connection limit on the server; `None`: unlimited.
    pub fn server_slot_limit(&self, idx: usize) -> Option<u32> {
        self.servers[idx].slots
    }

    pub fn server_counters(&self, idx: usize) -> ServerCounters {
        self.servers[idx].counters
    }

    /// Connections waiting in this core's queue for a slot.
    pub fn queue_current(&self) -> usize {
        self.queue.len()
    }

    /// Highest `queue_current` seen.
    pub fn queue_max(&self) -> usize {
        self.queue_max
    }

    /// Not disabled, up, and weight > 0. A usable backup takes traffic only
    /// while no primary is usable.
    pub fn is_usable(&self, idx: usize) -> bool {
        self.servers[idx].is_usable()
    }

    /// Health state (for the health checks). Marking the last usable server
    /// down fails every queued connection with `NoServer`; bringing one up
    /// lets queued connections use it.
    pub fn set_server_up(&mut self, idx: usize, up: bool) {
        if self.servers[idx].up != up {
            self.servers[idx].last_change = std::time::Instant::now();
        }
        self.servers[idx].up = up;
        self.server_set_changed();
    }

    /// Administrative maintenance (HAProxy `disable server`). Leaving it,
    /// the server starts up again with its checks resuming, as HAProxy's
    /// `srv_clr_admin_flag` does ("start OK but check immediately").
    pub fn set_server_disabled(&mut self, idx: usize, disabled: bool) {
        let server = &mut self.servers[idx];
        if server.disabled != disabled {
            server.last_change = std::time::Instant::now();
            if disabled {
                // HAProxy zeroes the health counter of a server going into
                // maintenance, checked or not.
                server.unchecked_health = 0;
                if let Some(check) = &mut server.check {
                    check.health = 0;
                }
            } else {
                server.up = true;
            }
        }
        server.disabled = disabled;
        if !disabled {
            server.disabled_by_config = false;
        }
        self.server_set_changed();
    }

    /// Runtime weight change (HAProxy `set weight`); 0 drains the server.
    pub fn set_server_weight(&mut self, idx: usize, weight: u32) {
        self.servers[idx].weight = weight;
        self.server_set_changed();
    }

    /// The configured weight (`get weight` shows it as "initial").
    pub fn server_initial_weight(&self, idx: usize) -> u32 {
        self.servers[idx].initial_weight
    }

    /// HAProxy's `set server ... state drain`: balancing stops choosing the
    /// server, persistent connections still reach it, checks go on.
    pub fn set_server_drain(&mut self, idx: usize, drain: bool) {
        if self.servers[idx].drain != drain {
            self.servers[idx].last_change = std::time::Instant::now();
        }
        self.servers[idx].drain = drain;
        self.server_set_changed();
    }

    pub fn is_server_draining(&self, idx: usize) -> bool {
        self.servers[idx].drain
    }

    /// In maintenance because the configuration said `disabled = true`, and
    /// not taken out of it since (HAProxy's CMAINT flag).
    pub fn is_server_disabled_by_config(&self, idx: usize) -> bool {
        self.servers[idx].disabled && self.servers[idx].disabled_by_config
    }

    /// `disable health` / `enable health`: with active checks off the
    /// server counts as up (HAProxy: "considered UP unless an agent check
    /// forces it down").
    pub fn set_server_checks_off(&mut self, idx: usize, off: bool) {
        self.servers[idx].checks_off = off;
        if off {
            self.set_server_up(idx, true);
        }
    }

    /// Whether active checks are suspended: `disable health`, or
    /// maintenance (HAProxy pauses the checks of a server in maintenance).
    pub fn server_checks_paused(&self, idx: usize) -> bool {
        self.servers[idx].checks_off || self.servers[idx].disabled
    }

    pub fn server_checks_off(&self, idx: usize) -> bool {
        self.servers[idx].checks_off
    }

    /// HAProxy's `set server ... addr`: new connections (and checks) go to
    /// `addr`; established ones stay where they are.
    pub fn set_server_addr(&mut self, idx: usize, addr: SocketAddr) {
        self.servers[idx].addr = addr;
    }

    /// HAProxy's `set maxconn server`: `0` removes the limit. This core
    /// takes its share, and queued connections get any slots it frees.
    pub fn set_server_maxconn(
        &mut self,
        idx: usize,
        maxconn: u32,
        core_index: usize,
        core_count: usize,
    ) {
        self.servers[idx].set_maxconn(maxconn, core_index, core_count);
        self.dispatch_queue();
    }

    /// The checker publishes its last result here (on its own core).
    pub fn set_server_check(&mut self, idx: usize, check: CheckState) {
        self.servers[idx].check = Some(check);
    }

    /// `show servers state`'s health counter of a server without checks.
    pub fn server_unchecked_health(&self, idx: usize) -> u32 {
        self.servers[idx].unchecked_health
    }

    /// The last check, on the core that checks the server; `None` elsewhere.
    pub fn server_check(&self, idx: usize) -> Option<CheckState> {
        self.servers[idx].check
    }

    /// Process-wide `maxconn` (0 = unlimited), as configured or set.
    pub fn server_maxconn(&self, idx: usize) -> u32 {
        self.servers[idx].maxconn
    }

    /// `clear counters`: peaks start again from the current values; with
    /// `all`, the totals restart from zero too.
    pub fn clear_counters(&mut self, all: bool) {
        self.queue_max = self.queue.len();
        for s in &mut self.servers {
            let c = &mut s.counters;
            c.max_conns = c.current_conns;
            if all {
                c.total_selected = 0;
            }
        }
    }

    pub(super) fn server_set_changed(&mut self) {
        self.recompute_active();
        if self.active.is_empty() {
            for waiter in std::mem::take(&mut self.queue) {
                waiter.settle(Outcome::NoServer);
            }
        } else {
            self.dispatch_queue();
        }
    }

    fn recompute_active(&mut self) {
        let usable = |backup: bool| {
            self.servers
                .iter()
                .enumerate()
                .filter(move |(_, s)| s.backup == backup && s.is_usable())
                .map(|(i, _)| i)
        };
        let mut active: Vec<usize> = usable(false).collect();
        if active.is_empty() {
            let backups = usable(true);
            active = if self.allbackups {
                backups.collect()
            } else {
                backups.take(1).collect()
            };
        }
        let weighted: Vec<(usize, u32)> = active
            .iter()
            .map(|&i| (i, self.servers[i].weight))
            .collect();
        self.map = weight_map(&weighted);
        if self.hash_type == HashType::Consistent {
            self.ring = Ring::build(
                active
                    .iter()
                    .map(|&i| (i, self.servers[i].name.as_str(), self.servers[i].weight)),
            );
        }
        self.active = active;
        // A new set starts a fresh smooth round robin cycle.
        for s in &mut self.servers {
            s.swrr_current = 0;
        }
    }

    /// Runs the balance algorithm for one connection from `client`, skipping
    /// servers in `avoid` unless that would leave nothing usable. Does not
    /// take the slot.
    pub(crate) fn pick(&mut self, client: IpAddr, hint: PickHint, avoid: &[usize]) -> Pick {
        if self.active.is_empty() {
            return Pick::NoServer;
        }
        if let Some(s) = hint.sticky {
            if s < self.servers.len() && self.servers[s].accepts_persistent() && !avoid.contains(&s)
            {
                return if self.servers[s].has_free_slot() {
                    Pick::Server(s)
                } else {
                    Pick::Full
                };
            }
        }
        // Redispatch may land on a server that already failed when it is
        // the only one left, as in HAProxy.
        let avoid = if self.active.iter().all(|s| avoid.contains(s)) {
            &[][..]
        } else {
            avoid
        };
        let chosen = match self.balance {
            Balance::RoundRobin => self.pick_smooth_rr(avoid),
            Balance::StaticRr => self.pick_static_rr(avoid),
            Balance::LeastConn => self.pick_leastconn(avoid),
            Balance::First => self.pick_first(avoid),
            Balance::Source => self.pick_hashed(hash_client_ip(client), avoid),
            Balance::Random if self.draws > 1 => self.pick_random_of(self.draws, avoid),
            Balance::Random => self.pick_random(avoid),
            Balance::Uri | Balance::UrlParam | Balance::Hdr => match hint.hash {
                Some(hash) => self.pick_hashed(hash, avoid),
                None => self.pick_smooth_rr(avoid),
            },
        };
        chosen.map_or(Pick::Full, Pick::Server)
    }

    fn eligible(&self, idx: usize, avoid: &[usize]) -> bool {
        !avoid.contains(&idx) && self.servers[idx].has_free_slot()
    }

    /// Smooth weighted round robin: every eligible server gains its weight,
    /// the highest total wins and pays back the sum. Spreads a heavy server's
    /// turns through the cycle instead of running them back to back, and
    /// adapts immediately when a server is full or excluded.
    fn pick_smooth_rr(&mut self, avoid: &[usize]) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for pos in 0..self.active.len() {
            let idx = self.active[pos];
            if !self.eligible(idx, avoid) {
                continue;
            }
            let s = &mut self.servers[idx];
            s.swrr_current += i64::from(s.weight);
            total += i64::from(s.weight);
            let current = s.swrr_current;
            if best.is_none_or(|b| current > self.servers[b].swrr_current) {
                best = Some(idx);
            }
        }
        let idx = best?;
        self.servers[idx].swrr_current -= total;
        Some(idx)
    }

    /// Walks the precomputed weight map; a full or excluded server loses its
    /// turn.
    fn pick_static_rr(&mut self, avoid: &[usize]) -> Option<usize> {
        let len = self.map.len();
        for step in 0..len {
            let pos = (self.cursor + step) % len;
            let idx = self.map[pos];
            if self.eligible(idx, avoid) {
                self.cursor = (pos + 1) % len;
                return Some(idx);
            }
        }
        None
    }

    /// Lowest `(conns + 1) / weight` (HAProxy's leastconn key, so weight
    /// still matters when servers are idle); the scan starts after the last
    /// pick so ties rotate.
    fn pick_leastconn(&mut self, avoid: &[usize]) -> Option<usize> {
        let len = self.active.len();
        let start = self.cursor % len;
        let mut best: Option<(usize, usize)> = None;
        for step in 0..len {
            let pos = (start + step) % len;
            let idx = self.active[pos];
            if !self.eligible(idx, avoid) {
                continue;
            }
            if best.is_none_or(|(_, b)| self.less_loaded(idx, b)) {
                best = Some((pos, idx));
            }
        }
        let (pos, idx) = best?;
        self.cursor = pos + 1;
        Some(idx)
    }

    fn less_loaded(&self, a: usize, b: usize) -> bool {
        let key = |i: usize| {
            let s = &self.servers[i];
            (u64::from(s.counters.current_conns) + 1, u64::from(s.weight))
        };
        let ((ca, wa), (cb, wb)) = (key(a), key(b));
        ca * wb < cb * wa
    }

    /// First server in declaration order with a free slot; weights only
    /// matter in that weight 0 excludes a server.
    fn pick_first(&self, avoid: &[usize]) -> Option<usize> {
        self.active
            .iter()
            .copied()
            .find(|&idx| self.eligible(idx, avoid))
    }

    /// The hash (of the client's IP for `source`, of the request for the
    /// HTTP algorithms) indexes the weight map, or the ring with `hash-type
    /// consistent`. A full server keeps its keys (they queue), so
    /// stickiness survives overload; an avoided one hands them to the next
    /// server in the map or on the ring.
    fn pick_hashed(&self, hash: u64, avoid: &[usize]) -> Option<usize> {
        let idx = if self.hash_type == HashType::Consistent && !self.ring.is_empty() {
            self.ring.walk(hash).find(|idx| !avoid.contains(idx))?
        } else {
            let len = self.map.len();
            let start = (hash % len as u64) as usize;
            (0..len)
                .map(|step| self.map[(start + step) % len])
                .find(|idx| !avoid.contains(idx))?
        };
        self.servers[idx].has_free_slot().then_some(idx)
    }

    /// `random(N)`: N weighted random draws, the least loaded wins (the
    /// "power of N choices": nearly least-connections balance at the cost
    /// of a few random numbers, without scanning every server).
    fn pick_random_of(&mut self, draws: u32, avoid: &[usize]) -> Option<usize> {
        let mut best: Option<usize> = None;
        for _ in 0..draws {
            let Some(idx) = self.pick_random(avoid) else {
                break;
            };
            if best.is_none_or(|b| self.less_loaded(idx, b)) {
                best = Some(idx);
            }
        }
        best
    }

    fn pick_random(&mut self, avoid: &[usize]) -> Option<usize> {
        let total: u64 = self
            .active
            .iter()
            .filter(|&&idx| self.eligible(idx, avoid))
            .map(|&idx| u64::from(self.servers[idx].weight))
            .sum();
        if total == 0 {
            return None;
        }
        let mut r = self.rng.below(total);
        for &idx in &self.active {
            if !self.eligible(idx, avoid) {
                continue;
            }
            let w = u64::from(self.servers[idx].weight);
            if r < w {
                return Some(idx);
            }
            r -= w;
        }
        None
    }

    pub(crate) fn has_free_slot(&self, idx: usize) -> bool {
        self.servers[idx].has_free_slot()
    }

    pub(crate) fn take_slot(&mut self, idx: usize) {
        self.servers[idx].take_slot();
    }

    pub(crate) fn release_slot(&mut self, idx: usize) {
        self.servers[idx].release_slot();
        self.dispatch_queue();
    }

    pub(crate) fn enqueue(
        &mut self,
        client: IpAddr,
        hint: PickHint,
        avoid: &[usize],
    ) -> Rc<Waiter> {
        let waiter = Rc::new(Waiter::new(client, hint, avoid.to_vec()));
        self.queue.push_back(Rc::clone(&waiter));
        self.queue_max = self.queue_max.max(self.queue.len());
        waiter
    }

    pub(crate) fn dequeue(&mut self, waiter: &Rc<Waiter>) {
        if let Some(pos) = self.queue.iter().position(|w| Rc::ptr_eq(w, waiter)) {
            self.queue.remove(pos);
        }
    }

    /// Hands free slots to queued connections, oldest first, taking the slot
    /// on the waiter's behalf so a newcomer cannot overtake it between the
    /// wake-up and the waiter's next poll (HAProxy also assigns the server
    /// when it dequeues). A waiter that cannot use any free slot (its
    /// `source` server is full, or it avoids the free one) keeps its place
    /// and the scan moves on.
    fn dispatch_queue(&mut self) {
        let mut pos = 0;
        while pos < self.queue.len() {
            let waiter = Rc::clone(&self.queue[pos]);
            match self.pick(waiter.client, waiter.hint, &waiter.avoid) {
                Pick::Server(idx) => {
                    self.take_slot(idx);
                    self.queue.remove(pos);
                    waiter.settle(Outcome::Granted(idx));
                }
                Pick::Full => {
                    let constrained = !waiter.avoid.is_empty()
                        || self.balance == Balance::Source
                        || waiter.hint != PickHint::default();
                    if !constrained {
                        // Every slot open to this waiter is taken, and nobody
                        // queued after it has more options.
                        return;
                    }
                    pos += 1;
                }
                Pick::NoServer => return,
            }
        }
    }
}
