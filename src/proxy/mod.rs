//! Per-connection sessions: what happens between accept and close.
//!
//! A session borrows everything it needs from its core's [`CoreContext`]:
//! the validated config (read-only), the core's backend states, its pipe pool
//! and its counters. Nothing here is shared with another core.

pub mod accesslog;
pub mod connect;
pub mod count;
pub mod error_snapshot;
pub mod http;
pub mod limit;
pub mod sessions;
pub mod tcp;
pub mod tls;

use crate::backend::BackendRuntime;
use crate::config::Config;
use crate::health::Observer;
use crate::log::CoreLog;
use crate::net::pipe::PipePool;
use crate::stats::CoreStats;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

pub struct CoreContext {
    /// Position of this core among the executors (0-based).
    pub core_index: usize,
    pub core_count: usize,
    pub config: Arc<Config>,
    /// One per `config.backends`, same order.
    pub backends: Vec<Rc<RefCell<BackendRuntime>>>,
    pub pipes: PipePool,
    pub stats: RefCell<CoreStats>,
    /// Passive health checks: where sessions report server errors.
    pub health: Observer,
    /// Idle server connections for `mode = "http"` (`http-reuse`).
    pub http_pool: Rc<http::IdlePool>,
    /// Access-log buffer; disabled unless the runtime attaches a writer.
    pub log: CoreLog,
    /// Live client sessions (`show sess`, `shutdown session(s)`).
    pub sessions: sessions::Sessions,
    /// Last invalid request per frontend and response per backend
    /// (`show errors`).
    pub error_snapshots: error_snapshot::ErrorSnapshots,
    /// TLS acceptors and connectors of this core; the runtime installs
    /// them (`tls::CoreTls::new`) before accepting.
    pub tls: tls::CoreTls,
    /// One per `config.frontends`: this core's share of the frontend's
    /// `maxconn` (changed by the runtime API's `set maxconn frontend`).
    pub frontend_limits: Vec<Rc<limit::ConnLimit>>,
}

impl CoreContext {
    pub fn new(config: Arc<Config>, core_index: usize, core_count: usize) -> Self {
        let backends = config
            .backends
            .iter()
            .map(|b| Rc::new(RefCell::new(BackendRuntime::new(b, core_index, core_count))))
            .collect();
        let tune = &config.global.tune;
        let pipes = PipePool::new(tune.pipesize, tune.maxpipes);
        let stats = RefCell::new(CoreStats::for_config(&config));
        let error_snapshots = error_snapshot::ErrorSnapshots::new(&config, core_index, core_count);
        let health = Observer::new(&config, core_count);
        let tls = tls::CoreTls::none(&config);
        let frontend_limits = config
            .frontends
            .iter()
            .map(|f| limit::ConnLimit::new(f.maxconn, core_index, core_count))
            .collect();
        CoreContext {
            core_index,
            core_count,
            config,
            backends,
            pipes,
            stats,
            health,
            http_pool: Rc::new(http::IdlePool::new()),
            sessions: sessions::Sessions::new(core_index),
            error_snapshots,
            log: CoreLog::disabled(),
            tls,
            frontend_limits,
        }
    }
}
