//! What one core asks every core to do for the runtime API, and how each
//! core does it to its own state. A request is plain data (`Send`); each
//! core applies it with one synchronous call between two polls of its
//! tasks, so a change is in force on that core before it answers.

use std::net::SocketAddr;

use crate::backend::BackendRuntime;
use crate::shard::error_snapshot::{self, ErrorSnapshot};
use crate::shard::sessions::{self, SessionInfo};
use std::sync::Arc;

use crate::config::Config;
use crate::shard::{reload, Shard};
use crate::stats::Snapshot;

/// Typed ids of what a request names, resolved from names by the core that
/// took the command (every core runs the same configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRef {
    pub backend: usize,
    pub server: usize,
}

/// A change to one server, HAProxy's `set server`/`set weight`/`disable`/
/// `enable` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerChange {
    /// `state ready`: out of maintenance and drain.
    Ready,
    /// `state drain`: out of maintenance, no new balanced traffic.
    Drain,
    /// `state maint`: no traffic, no checks.
    Maint,
    Weight(u32),
    /// `disable health` (true) / `enable health` (false).
    ChecksOff(bool),
    Addr(SocketAddr),
    /// Process-wide; 0 removes the limit.
    Maxconn(u32),
}

#[derive(Debug, Clone)]
pub enum CoreRequest {
    Snapshot,
    Server(ServerRef, ServerChange),
    /// `set maxconn frontend`: the process-wide value.
    FrontendMaxconn {
        frontend: usize,
        maxconn: u32,
    },
    ClearCounters {
        all: bool,
    },
    /// `show sess`: this core's live sessions.
    Sessions,
    /// `show errors`: this core's captured invalid messages.
    Errors,
    /// `shutdown sessions server`, by name: sessions of every generation
    /// alive use it.
    ShutdownServerSessions {
        backend: String,
        server: String,
    },
    /// `shutdown session <id>` (only the owning core finds it).
    ShutdownSession(u64),
    /// `add map`, `set map`, `del map`, `clear map`: to every map loaded
    /// from the file (`Config::maps` indexes; one per match kind).
    Map {
        maps: Vec<usize>,
        change: crate::maps::MapChange,
    },
    /// A reload, first step: build and bind what can fail.
    PrepareReload {
        generation: u64,
        config: Arc<Config>,
    },
    /// A reload, second step: switch to the prepared generation.
    CommitReload {
        generation: u64,
    },
    /// A reload that another core could not prepare.
    AbortReload {
        generation: u64,
    },
    /// `show table`, `clear table`, `set table` on this core's entries.
    Table(TableRequest),
}

/// What a stick-table command asks of each core (validated by the core
/// that took the command).
#[derive(Debug, Clone)]
pub enum TableRequest {
    /// How many entries the core holds (`show table` without a name).
    Count { name: String },
    Show {
        name: String,
        filters: Vec<crate::stick::Filter>,
        key: Option<crate::stick::Key>,
    },
    Clear {
        name: String,
        filters: Vec<crate::stick::Filter>,
        key: Option<crate::stick::Key>,
    },
    Set {
        name: String,
        key: crate::stick::Key,
        data: Vec<(crate::stick::DataType, i64)>,
    },
}

#[derive(Debug)]
pub enum CoreAnswer {
    /// A snapshot and the configuration generation it describes.
    Snapshot(u64, Box<Snapshot>),
    Sessions(Vec<SessionInfo>),
    Errors(Box<ErrorSnapshot>),
    /// How many things the request found (sessions shut down).
    Count(usize),
    /// A step of a reload failed on this core: why, in one line.
    Failed(String),
    /// This core's part of a stick table (`None`: no such table here).
    Table(Option<Box<crate::stick::core::TableDump>>),
    Done,
}

/// Applies `request` on this core.
pub fn apply(shard: &Shard, request: &CoreRequest) -> CoreAnswer {
    let ctx = &shard.current();
    match request {
        CoreRequest::Snapshot => {
            let (generation, snapshot) = super::capture(shard);
            CoreAnswer::Snapshot(generation, Box::new(snapshot))
        }
        CoreRequest::Server(at, change) => {
            if let Some(backend) = ctx.backends.get(at.backend) {
                let resume = change_server(
                    &mut backend.borrow_mut(),
                    at.server,
                    *change,
                    (ctx.core_index, ctx.core_count),
                );
                if matches!(change, ServerChange::Addr(_)) {
                    ctx.http_pool.drop_server(at.backend, at.server);
                    ctx.h2_pool.drop_server(at.backend, at.server);
                }
                if resume {
                    ctx.health.resume_checks(at.backend, at.server);
                }
            }
            CoreAnswer::Done
        }
        CoreRequest::FrontendMaxconn { frontend, maxconn } => {
            if let Some(limit) = ctx.frontend_limits.get(*frontend) {
                limit.set_process_limit(Some(*maxconn), ctx.core_index, ctx.core_count);
            }
            CoreAnswer::Done
        }
        CoreRequest::Sessions => CoreAnswer::Sessions(sessions::snapshot_sessions(ctx)),
        CoreRequest::Errors => CoreAnswer::Errors(Box::new(error_snapshot::snapshot_errors(ctx))),
        CoreRequest::ShutdownServerSessions { backend, server } => {
            let at: Vec<(u64, usize, usize)> = shard
                .configs()
                .iter()
                .filter_map(|(generation, config)| {
                    let (b, be) = config
                        .backends
                        .iter()
                        .enumerate()
                        .find(|(_, b)| b.name == *backend)?;
                    let s = be.servers.iter().position(|s| s.name == *server)?;
                    Some((*generation, b, s))
                })
                .collect();
            CoreAnswer::Count(sessions::shutdown_server_sessions(ctx, &at))
        }
        CoreRequest::PrepareReload { generation, config } => {
            match reload::prepare(shard, *generation, Arc::clone(config)) {
                Ok(()) => CoreAnswer::Done,
                Err(line) => CoreAnswer::Failed(line),
            }
        }
        CoreRequest::CommitReload { generation } => {
            if reload::commit(shard, *generation) {
                CoreAnswer::Done
            } else {
                CoreAnswer::Failed(format!(
                    "core {}: reload {generation} was not prepared",
                    ctx.core_index
                ))
            }
        }
        CoreRequest::AbortReload { generation } => {
            reload::abort(shard, *generation);
            CoreAnswer::Done
        }
        CoreRequest::ShutdownSession(uid) => {
            CoreAnswer::Count(usize::from(sessions::shutdown_session(ctx, *uid)))
        }
        CoreRequest::Table(request) => {
            let stick = &ctx.stick;
            match request {
                TableRequest::Show { name, filters, key } => {
                    CoreAnswer::Table(stick.list(name, filters, key.as_ref(), true).map(Box::new))
                }
                TableRequest::Count { name } => {
                    CoreAnswer::Table(stick.list(name, &[], None, false).map(Box::new))
                }
                TableRequest::Clear { name, filters, key } => {
                    CoreAnswer::Count(stick.clear(name, filters, key.as_ref()).unwrap_or(0))
                }
                TableRequest::Set { name, key, data } => match stick.set(name, key, data) {
                    Ok(()) => CoreAnswer::Done,
                    Err(d) => CoreAnswer::Failed(format!("{} not stored", d.name())),
                },
            }
        }
        CoreRequest::Map { maps, change } => {
            for &i in maps {
                if let Some(map) = ctx.config.maps.get(i) {
                    crate::maps::core::change(map, |data| data.apply(change));
                }
            }
            CoreAnswer::Done
        }
        CoreRequest::ClearCounters { all } => {
            ctx.stats.borrow_mut().clear(*all);
            for backend in &ctx.backends {
                backend.borrow_mut().clear_counters(*all);
            }
            CoreAnswer::Done
        }
    }
}

/// Returns whether the server's checks may have to resume.
fn change_server(
    rt: &mut BackendRuntime,
    server: usize,
    change: ServerChange,
    (core_index, core_count): (usize, usize),
) -> bool {
    if server >= rt.server_count() {
        return false;
    }
    let was_paused = rt.server_checks_paused(server);
    match change {
        ServerChange::Ready => {
            rt.set_server_drain(server, false);
            rt.set_server_disabled(server, false);
        }
        ServerChange::Drain => {
            rt.set_server_disabled(server, false);
            rt.set_server_drain(server, true);
        }
        ServerChange::Maint => {
            rt.set_server_drain(server, false);
            rt.set_server_disabled(server, true);
        }
        ServerChange::Weight(w) => rt.set_server_weight(server, w),
        ServerChange::ChecksOff(off) => rt.set_server_checks_off(server, off),
        ServerChange::Addr(addr) => rt.set_server_addr(server, addr),
        ServerChange::Maxconn(m) => rt.set_server_maxconn(server, m, core_index, core_count),
    }
    was_paused && !rt.server_checks_paused(server)
}
