//! Observability endpoints: the stats page (HTML, CSV, JSON) and
//! Prometheus `/metrics`, served by every core on its own SO_REUSEPORT
//! listener, with counters merged from all cores over a glommio channel
//! mesh ([`collect`]).

pub mod apply;
pub mod cli;
pub mod collect;
pub mod http;
pub mod reload;
pub mod render;

pub use collect::{capture, mesh, Collector, CoreMsg, StatsMesh};
pub use http::StatsService;

use std::time::Instant;

/// What the main thread hands each core for observability: the stats mesh
/// to join, the log writer's sender, and the process start time.
pub struct ObserveStart {
    pub mesh: StatsMesh,
    pub log: Option<std::sync::mpsc::SyncSender<crate::log::Batch>>,
    pub clock: crate::log::Clock,
    pub started: Instant,
    /// Runtime API sockets to serve (core 0 only).
    pub admin_sockets: Vec<cli::BoundSocket>,
    /// Read end of the reload signals' pipe (SIGHUP, SIGUSR2; core 0 only).
    pub reload_signals: Option<std::os::fd::OwnedFd>,
    /// The process's listening sockets, for `_getsocks`.
    pub listeners: std::sync::Arc<crate::runtime::listener::ListenerRegistry>,
}
