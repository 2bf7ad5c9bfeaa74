//! Per-core counters and their merge. Each core owns its own [`CoreStats`]
//! (plain integers and histograms in a `RefCell`, no atomics); totals across
//! cores are made by merging per-core [`Snapshot`]s, which the stats endpoint
//! collects over glommio channels (see `crate::admin::collect`).

mod clear;
mod counters;
mod histo;
mod merge;
mod snapshot;

pub use counters::{
    response_class, BackendCounters, FrontendCounters, ServerCounters, RESPONSE_CLASSES,
};
pub use histo::{BackendTimings, LatencyHisto};
pub use snapshot::{
    BackendState, Look, ServerAdmin, ServerState, ServerStatus, Snapshot, STATE_LABELS,
};

use crate::config::Config;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CoreStats {
    pub frontends: Vec<FrontendCounters>,
    pub backends: Vec<BackendCounters>,
    /// Indexed `[backend][server]`.
    pub servers: Vec<Vec<ServerCounters>>,
    /// Latency histograms, one set per backend.
    pub timings: Vec<BackendTimings>,
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
            timings: vec![BackendTimings::default(); config.backends.len()],
        }
    }

    pub fn accepted(&self) -> u64 {
        self.frontends.iter().map(|f| f.sessions_total).sum()
    }

    /// Sessions open on this core across all frontends (HAProxy's actconn,
    /// per core).
    pub fn current_sessions(&self) -> u64 {
        self.frontends.iter().map(|f| f.sessions_cur).sum()
    }
}
