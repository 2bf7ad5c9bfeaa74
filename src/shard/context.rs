//! [`CoreContext`]: one core's view of one generation of configuration.
//!
//! A reload builds a new generation on every core (`super::carry` fills it
//! with what the old one knew) and makes it current; the old one lives on
//! for as long as a session accepted under it does, so requests and
//! tunnels in flight finish as they started. When it ends, what it counted
//! after the switch is folded into the newest generation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use super::error_snapshot::ErrorSnapshots;
use super::h2pool::H2Pool;
use super::limit::ConnLimit;
use super::passive::Observer;
use super::pool::IdlePool;
use super::sessions::Sessions;
use super::stop::Event;
use super::tls::CoreTls;
use crate::backend::BackendRuntime;
use crate::config::Config;
use crate::log::CoreLog;
use crate::net::pipe::PipePool;
use crate::stats::CoreStats;
use crate::stick::StickCore;

/// What lives as long as the core, whatever the generation: the same in
/// every generation of one core.
#[derive(Clone)]
pub struct CoreShared {
    pub core_index: usize,
    pub core_count: usize,
    pub pipes: Rc<PipePool>,
    /// Access-log buffer; disabled unless the runtime attaches a writer.
    pub log: Rc<CoreLog>,
    /// Live client sessions (`show sess`, `shutdown session(s)`), of every
    /// generation.
    pub sessions: Rc<Sessions>,
    /// The core's current generation, for the older ones to find it. Weak:
    /// the `Shard` owns the current generation, and an old generation kept
    /// alive by a long session must keep no newer one alive.
    pub newest: Rc<RefCell<Weak<CoreContext>>>,
    /// The stick tables' entries this core owns, kept across reloads
    /// (a table whose definition did not change keeps its entries).
    pub stick: Rc<StickCore>,
}

impl CoreShared {
    pub fn new(config: &Config, core_index: usize, core_count: usize) -> Self {
        let tune = &config.global.tune;
        CoreShared {
            core_index,
            core_count,
            pipes: Rc::new(PipePool::new(tune.pipesize, tune.maxpipes)),
            log: Rc::new(CoreLog::disabled()),
            sessions: Rc::new(Sessions::new(core_index)),
            newest: Rc::new(RefCell::new(Weak::new())),
            stick: Rc::new(StickCore::new(core_count)),
        }
    }
}

pub struct CoreContext {
    /// Position of this core among the executors (0-based).
    pub core_index: usize,
    pub core_count: usize,
    /// 0 at start, one more per applied reload; the same on every core
    /// once a reload is acknowledged.
    pub generation: u64,
    pub config: Arc<Config>,
    /// One per `config.backends`, same order.
    pub backends: Vec<Rc<RefCell<BackendRuntime>>>,
    pub pipes: Rc<PipePool>,
    pub stats: RefCell<CoreStats>,
    /// Passive health checks: where sessions report server errors.
    pub health: Observer,
    /// Idle server connections for `mode = "http"` (`http-reuse`).
    pub http_pool: Rc<IdlePool>,
    /// HTTP/2 connections to `proto = "h2"` servers, shared by streams.
    pub h2_pool: Rc<H2Pool>,
    pub log: Rc<CoreLog>,
    pub sessions: Rc<Sessions>,
    /// Last invalid request per frontend and response per backend
    /// (`show errors`).
    pub error_snapshots: ErrorSnapshots,
    /// TLS acceptors and connectors of this core; the runtime installs
    /// them (`CoreTls::new`) before accepting.
    pub tls: CoreTls,
    /// One per `config.frontends`: this core's share of the frontend's
    /// `maxconn` (changed by the runtime API's `set maxconn frontend`).
    /// A frontend kept by a reload keeps its limit object, so connections
    /// of both generations count against one limit.
    pub frontend_limits: Vec<Rc<ConnLimit>>,
    /// Fired when a newer generation replaces this one.
    pub retired: Event,
    /// Stick tables (the same in every generation of the core).
    pub stick: Rc<StickCore>,
    /// Shared by every generation of the core: points at the current one.
    newest: Rc<RefCell<Weak<CoreContext>>>,
    /// Listening address -> (frontend, bind).
    binds: HashMap<SocketAddr, (usize, usize)>,
}

impl CoreContext {
    /// The first generation of a core (tests build cores this way too).
    pub fn new(config: Arc<Config>, core_index: usize, core_count: usize) -> Self {
        let shared = CoreShared::new(&config, core_index, core_count);
        Self::build(config, &shared, 0, None)
    }

    /// A generation with fresh per-config state; `limits`: frontend
    /// limits to keep, by frontend name.
    pub(crate) fn build(
        config: Arc<Config>,
        shared: &CoreShared,
        generation: u64,
        limits: Option<&HashMap<String, Rc<ConnLimit>>>,
    ) -> Self {
        let (core_index, core_count) = (shared.core_index, shared.core_count);
        shared.stick.configure(&config);
        let backends = config
            .backends
            .iter()
            .map(|b| Rc::new(RefCell::new(BackendRuntime::new(b, core_index, core_count))))
            .collect();
        let stats = RefCell::new(CoreStats::for_config(&config));
        let error_snapshots = ErrorSnapshots::new(&config, core_index, core_count);
        let health = Observer::new(&config, core_count, generation);
        let tls = CoreTls::none(&config);
        let frontend_limits = config
            .frontends
            .iter()
            .map(|f| match limits.and_then(|l| l.get(&f.name)) {
                Some(kept) => {
                    if kept.process_limit() != f.maxconn {
                        kept.set_process_limit(f.maxconn, core_index, core_count);
                    }
                    Rc::clone(kept)
                }
                None => ConnLimit::new(f.maxconn, core_index, core_count),
            })
            .collect();
        let binds = config
            .frontends
            .iter()
            .enumerate()
            .flat_map(|(f, fe)| {
                fe.binds
                    .iter()
                    .enumerate()
                    .map(move |(b, addr)| (*addr, (f, b)))
            })
            .collect();
        CoreContext {
            core_index,
            core_count,
            generation,
            config,
            backends,
            pipes: Rc::clone(&shared.pipes),
            stats,
            health,
            http_pool: Rc::new(IdlePool::new()),
            h2_pool: Rc::new(H2Pool::new()),
            log: Rc::clone(&shared.log),
            sessions: Rc::clone(&shared.sessions),
            error_snapshots,
            tls,
            frontend_limits,
            retired: Event::new(),
            stick: Rc::clone(&shared.stick),
            newest: Rc::clone(&shared.newest),
            binds,
        }
    }

    /// What this generation shares with every other of its core.
    pub fn shared(&self) -> CoreShared {
        CoreShared {
            core_index: self.core_index,
            core_count: self.core_count,
            pipes: Rc::clone(&self.pipes),
            log: Rc::clone(&self.log),
            sessions: Rc::clone(&self.sessions),
            newest: Rc::clone(&self.newest),
            stick: Rc::clone(&self.stick),
        }
    }

    /// The frontend and bind that listen on `addr` in this generation.
    pub fn bind_at(&self, addr: SocketAddr) -> Option<(usize, usize)> {
        self.binds.get(&addr).copied()
    }

    /// The addresses this generation listens on.
    pub fn bind_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.binds.keys().copied()
    }

    pub fn is_retired(&self) -> bool {
        self.retired.is_fired()
    }

    /// The newest generation of this core (this one unless retired).
    pub fn newest(self: &Rc<Self>) -> Rc<CoreContext> {
        self.newest
            .borrow()
            .upgrade()
            .unwrap_or_else(|| Rc::clone(self))
    }

    /// Makes `ctx` the generation the older ones find as the newest.
    pub(crate) fn make_newest(ctx: &Rc<CoreContext>) {
        *ctx.newest.borrow_mut() = Rc::downgrade(ctx);
    }

    /// Marks this generation replaced (its sessions find the newest one
    /// through the shared pointer).
    pub(crate) fn retire(&self) {
        self.retired.fire();
    }
}

impl Drop for CoreContext {
    /// The last session of a retired generation ended: what it counted
    /// since the switch joins the newest generation's counters.
    fn drop(&mut self) {
        if !self.retired.is_fired() {
            return;
        }
        let newest = self.newest.borrow().upgrade();
        if let Some(newest) = newest {
            super::carry::fold_into(self, &newest);
        }
    }
}

/// `nbsrv` and `srv_is_up` read this core's view of the backends: the
/// one its balancing uses.
impl crate::rules::sample::LiveState for CoreContext {
    fn usable_servers(&self, backend: usize) -> Option<i64> {
        let rt = self.backends.get(backend)?.borrow();
        Some((0..rt.server_count()).filter(|&s| rt.is_usable(s)).count() as i64)
    }

    fn server_up(&self, backend: usize, server: usize) -> Option<bool> {
        let rt = self.backends.get(backend)?.borrow();
        (server < rt.server_count())
            .then(|| rt.is_server_up(server) && !rt.is_server_disabled(server))
    }

    fn frontend_conns(&self, frontend: usize) -> Option<i64> {
        let here = self.stats.borrow().frontends.get(frontend)?.sessions_cur;
        let there = self
            .stick
            .peers_conns(self.generation, |c| c.frontends.get(frontend).copied());
        i64::try_from(here + there).ok()
    }

    fn backend_conns(&self, backend: usize) -> Option<i64> {
        let here = self.stats.borrow().backends.get(backend)?.sessions_cur;
        let there = self
            .stick
            .peers_conns(self.generation, |c| c.backends.get(backend).copied());
        i64::try_from(here + there).ok()
    }
}

impl CoreContext {
    /// This core's current connections per frontend and sessions per
    /// backend, for the other cores' `fe_conn`/`be_conn`.
    pub fn conn_counts(&self) -> crate::stick::core::ConnCounts {
        let stats = self.stats.borrow();
        crate::stick::core::ConnCounts {
            generation: self.generation,
            frontends: stats.frontends.iter().map(|f| f.sessions_cur).collect(),
            backends: stats.backends.iter().map(|b| b.sessions_cur).collect(),
        }
    }
}
