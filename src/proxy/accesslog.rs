//! What a session needs to write its access-log line: whether its frontend
//! logs, and the core's connection counts at that moment.

use crate::config::BackendId;
use crate::log::{ConnCounts, LogRecord};
use crate::shard::CoreContext;

/// True when `frontend` logs and the core has a log writer; sessions check
/// this once at accept so a non-logging frontend pays nothing more.
pub fn enabled(ctx: &CoreContext, frontend: usize) -> bool {
    ctx.config.frontends[frontend].log.enabled && ctx.log.is_enabled()
}

/// `%ac/%fc/%bc/%sc` as this core sees them.
pub fn conn_counts(
    ctx: &CoreContext,
    frontend: usize,
    backend: Option<BackendId>,
    server: Option<usize>,
) -> ConnCounts {
    let stats = ctx.stats.borrow();
    ConnCounts {
        actconn: stats.current_sessions(),
        feconn: stats.frontends[frontend].sessions_cur,
        beconn: backend.map_or(0, |b| stats.backends[b].sessions_cur),
        srv_conn: backend
            .zip(server)
            .map_or(0, |(b, s)| stats.servers[b][s].sessions_cur),
    }
}

/// Queues the line in the frontend's format, unless `option dontlognull`
/// applies: no byte from the client and a normal end (errors are logged).
/// `conn`: the connection's facts, for `%[...]` samples of a custom format.
pub fn emit(
    ctx: &CoreContext,
    frontend: usize,
    record: &LogRecord<'_>,
    conn: Option<&crate::rules::ConnFacts>,
) {
    let log = &ctx.config.frontends[frontend].log;
    if log.dontlognull && record.bytes_uploaded == 0 && record.end.is_none() {
        return;
    }
    let level = conn.and_then(|c| c.log_level.get());
    let facts = conn.map(|conn| crate::rules::Facts {
        conn,
        req: None,
        res: None,
        payload: None,
    });
    let severity = match level {
        Some(crate::rules::LogLevel::Silent) => return,
        Some(crate::rules::LogLevel::Severity(s)) => s,
        None => crate::log::syslog::SEVERITY_INFO,
    };
    let sd = log.sd.as_deref();
    ctx.log
        .log_with(&log.format, record, facts.as_ref(), severity, sd);
}
