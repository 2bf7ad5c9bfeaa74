//! A core's observability at start and stop: attach the log writer, bind
//! the stats listener, join the stats mesh, run the log flush timer. Kept
//! out of `core.rs` so that file only calls in.

use std::rc::Rc;

use glommio::net::TcpListener;

use crate::admin::cli::Cli;
use crate::admin::{Collector, ObserveStart, StatsService};
use crate::net::listener::bind_reuseport;
use crate::shard::CoreContext;
use crate::shard::Shard;

/// listen(2) backlog of the stats socket: scrapes are few.
const STATS_BACKLOG: u32 = 128;

/// Binds this core's stats listener if `[stats]` is configured; `Err` is
/// the one line for the start-up failure report.
pub fn bind_stats(ctx: &CoreContext) -> Result<Option<TcpListener>, String> {
    let Some(page) = &ctx.config.stats else {
        return Ok(None);
    };
    bind_reuseport(page.bind, STATS_BACKLOG)
        .map(Some)
        .map_err(|e| {
            format!(
                "stats: cannot bind {}: {}",
                page.bind,
                crate::net::listener::describe_bind_error(&e)
            )
        })
}

/// Starts this core's observability tasks (call once the core is ready).
pub fn start(shard: &Rc<Shard>, observe: ObserveStart, listener: Option<TcpListener>) {
    let ctx = &shard.current();
    if let Some(sender) = observe.log {
        ctx.log.attach(sender, observe.clock);
        let ctx = Rc::clone(ctx);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(crate::log::FLUSH_EVERY).await;
                ctx.log.flush();
            }
        })
        .detach();
    }
    let collector = Rc::new(Collector::default());
    glommio::spawn_local(Rc::clone(&collector).run(observe.mesh, Rc::clone(shard))).detach();
    if let Some(signals) = observe.reload_signals {
        let shard = Rc::clone(shard);
        let collector = Rc::clone(&collector);
        glommio::spawn_local(super::signals::watch_reloads(signals, move || {
            let shard = Rc::clone(&shard);
            let collector = Rc::clone(&collector);
            async move {
                crate::admin::reload::reload(&shard, &collector).await;
            }
        }))
        .detach();
    }
    if shard.core_index() == 0 {
        if let Some(every) = crate::notify::status_every() {
            glommio::spawn_local(notify_status(
                Rc::clone(shard),
                Rc::clone(&collector),
                every,
            ))
            .detach();
        }
    }
    if !observe.admin_sockets.is_empty() {
        let cli = Rc::new(Cli {
            shard: Rc::clone(shard),
            collector: Rc::clone(&collector),
            started: observe.started,
            hostname: crate::log::syslog::hostname(),
            clock: observe.clock,
            refused_lines: std::cell::Cell::new(0),
            listeners: observe.listeners,
        });
        let timeout = ctx.config.global.stats_timeout;
        for socket in observe.admin_sockets {
            glommio::spawn_local(crate::admin::cli::serve(
                socket,
                Rc::clone(&cli),
                timeout,
                Rc::clone(shard),
            ))
            .detach();
        }
    }
    if let (Some(listener), Some(page)) = (listener, ctx.config.stats.clone()) {
        let service = Rc::new(StatsService::new(
            page,
            Rc::clone(shard),
            collector,
            observe.started,
        ));
        glommio::spawn_local(service.serve(listener, Rc::clone(shard))).detach();
    }
}

/// Core 0's task under systemd: every `every`, asks each core for its
/// counters and sends the status (and the watchdog's ping when all
/// answered), until the soft stop.
async fn notify_status(shard: Rc<Shard>, collector: Rc<Collector>, every: std::time::Duration) {
    use crate::admin::apply::{CoreAnswer, CoreRequest};
    loop {
        let stopped = futures_lite::future::or(
            async {
                shard.stop.soft.wait().await;
                true
            },
            async {
                glommio::timer::sleep(every).await;
                false
            },
        )
        .await;
        if stopped {
            return;
        }
        let got = collector.ask_all(&shard, CoreRequest::Snapshot).await;
        let connections: u64 = got
            .answers
            .iter()
            .filter_map(|a| match a {
                CoreAnswer::Snapshot(_, s) => Some(s.stats.current_sessions()),
                _ => None,
            })
            .sum();
        crate::notify::status(connections, shard.core_count(), got.missing);
    }
}

/// Hands the last log lines to the writer and lets go of it.
pub fn finish(ctx: &CoreContext) {
    ctx.log.close();
}
