//! The check loop of one server, on the core that checks its backend:
//! check, count the result, change and announce the state, wait.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::local_channel::LocalReceiver;

use super::log::{no_server_line, transition_line, Remaining};
use super::outcome::{CheckOutcome, Status};
use super::probe::Probe;
use super::router::{CheckerNote, PassiveReport, Router};
use super::state::{Health, Transition};
use crate::backend::CheckState;
use crate::config::{Config, OnError};
use crate::shard::CoreContext;

enum Event {
    Due,
    Passive(PassiveReport),
    Resume,
    Stopped,
}

/// HAProxy's `INI` status: no check has completed yet.
const STATUS_INITIALIZING: u8 = 1;
const RESULT_UNKNOWN: u8 = 0;
const RESULT_FAILED: u8 = 2;
const RESULT_PASSED: u8 = 3;

/// Runs forever (until the core stops) for server `server` of backend
/// `backend`, which must have `check` configured. While the server is in
/// maintenance or its checks are disabled (runtime API) the timer keeps
/// running but no check is sent; resuming starts from "up, check now".
pub async fn check_server(
    ctx: Rc<CoreContext>,
    router: Rc<Router>,
    backend: usize,
    server: usize,
    inbox: LocalReceiver<CheckerNote>,
) {
    let config: Arc<Config> = Arc::clone(&ctx.config);
    let be = &config.backends[backend];
    let srv = &be.servers[server];
    let Some(check) = srv.check.as_ref() else {
        return;
    };
    // After a reload the server's health carries over: the counter where
    // the previous checker left it (on this core) or at least its state.
    let carried = {
        let rt = ctx.backends[backend].borrow();
        (ctx.generation > 0).then(|| (rt.server_check(server), rt.is_server_up(server)))
    };
    let mut health = match carried {
        Some((Some(last), _)) => Health::resumed(check.rise, check.fall, last.health),
        Some((None, false)) => Health::resumed(check.rise, check.fall, 0),
        _ => Health::new(check.rise, check.fall),
    };
    // Under a reload, a state change another core sent while it ran the
    // other configuration was ignored there; the first result after it is
    // sent to every core once, so all agree again.
    let mut resync = ctx.generation > 0;
    let mut generation = 0u64;
    let publish = |health: &Health, status: u8, result: u8| {
        ctx.backends[backend].borrow_mut().set_server_check(
            server,
            CheckState {
                status,
                result,
                health: health.counter(),
            },
        );
    };
    if !matches!(carried, Some((Some(_), _))) {
        publish(&health, STATUS_INITIALIZING, RESULT_UNKNOWN);
    }
    // Spread the first checks over one interval so that servers (and
    // backends on other cores) are not all checked in the same instant.
    let mut delay = spread(check.inter, backend, server);
    loop {
        let event = futures_lite::future::or(
            async {
                match inbox.recv().await {
                    Some(CheckerNote::Passive(report)) => Event::Passive(report),
                    Some(CheckerNote::Resume) => Event::Resume,
                    None => Event::Stopped,
                }
            },
            async {
                glommio::timer::sleep(delay).await;
                Event::Due
            },
        )
        .await;
        let paused = ctx.backends[backend].borrow().server_checks_paused(server);
        let (transition, outcome, hurry) = match event {
            Event::Stopped => return,
            Event::Resume | Event::Due | Event::Passive(_) if paused => {
                delay = check.inter;
                continue;
            }
            Event::Resume => {
                // HAProxy's srv_clr_admin_flag: "start OK but check
                // immediately".
                health = Health::new(check.rise, check.fall);
                publish(&health, STATUS_INITIALIZING, RESULT_UNKNOWN);
                delay = Duration::ZERO;
                continue;
            }
            Event::Due => {
                let target = check_target(srv, ctx.backends[backend].borrow().server_addr(server));
                let probe = Probe {
                    kind: &be.check,
                    check,
                    target,
                    timeouts: &be.timeouts,
                    bufsize: config.global.tune.bufsize,
                };
                let outcome = probe.run().await;
                // Paused while the probe ran: its result no longer counts.
                if ctx.backends[backend].borrow().server_checks_paused(server) {
                    delay = check.inter;
                    continue;
                }
                (health.record(outcome.passed()), outcome, false)
            }
            Event::Passive(report) => {
                let observe = check.observe.map_or(OnError::FailCheck, |o| o.on_error);
                let outcome = CheckOutcome::new(Status::Analyze).with_info(format!(
                    "Detected {} consecutive errors, last one was: {}",
                    report.count,
                    report.error.description()
                ));
                let transition = match observe {
                    OnError::FastInter => None,
                    OnError::FailCheck => health.record(false),
                    OnError::SuddenDeath => health.sudden_death(),
                    OnError::MarkDown => health.mark_down(),
                };
                (transition, outcome, true)
            }
        };
        let result = if outcome.passed() {
            RESULT_PASSED
        } else {
            RESULT_FAILED
        };
        publish(&health, outcome.status.haproxy_number(), result);
        if let Some(transition) = transition {
            generation += 1;
            announce(
                &ctx, &router, backend, server, transition, &outcome, generation,
            )
            .await;
        } else if std::mem::take(&mut resync) {
            generation += 1;
            let up = ctx.backends[backend].borrow().is_server_up(server);
            router
                .broadcast_state(backend, server, up, generation, ctx.generation)
                .await;
        }
        resync = false;
        delay = health.interval(check);
        if hurry {
            delay = delay.min(check.fastinter);
        }
    }
}

/// Where to check: the configured check address, following a runtime
/// change of the server's address in whatever the check did not set
/// itself (`check-addr` keeps its IP, `port` its port), as HAProxy does.
fn check_target(srv: &crate::config::Server, now: SocketAddr) -> SocketAddr {
    let Some(check) = srv.check.as_ref() else {
        return now;
    };
    let mut target = check.addr;
    if check.addr.ip() == srv.addr.ip() {
        target.set_ip(now.ip());
    }
    if check.addr.port() == srv.addr.port() {
        target.set_port(now.port());
    }
    target
}

/// Applies a change on this core, waits until every other core applied it,
/// then logs it, so that after the log line no core uses the old state.
async fn announce(
    ctx: &CoreContext,
    router: &Rc<Router>,
    backend: usize,
    server: usize,
    transition: Transition,
    outcome: &CheckOutcome,
    generation: u64,
) {
    let up = transition == Transition::Up;
    ctx.backends[backend].borrow_mut().set_server_up(server, up);
    router
        .broadcast_state(backend, server, up, generation, ctx.generation)
        .await;
    let rt = ctx.backends[backend].borrow();
    let mut remaining = Remaining {
        active: 0,
        backup: 0,
    };
    for idx in (0..rt.server_count()).filter(|&i| rt.is_usable(i)) {
        if rt.is_server_backup(idx) {
            remaining.backup += 1;
        } else {
            remaining.active += 1;
        }
    }
    eprintln!(
        "{}",
        transition_line(
            rt.name(),
            rt.server_name(server),
            rt.is_server_backup(server),
            transition,
            outcome,
            remaining,
        )
    );
    if !up && !rt.has_usable_server() {
        eprintln!("{}", no_server_line(rt.name()));
    }
}

/// A pseudo-random start offset in `[0, inter)`, different per server and
/// per run.
fn spread(inter: Duration, backend: usize, server: usize) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = u64::from(nanos) ^ ((backend as u64) << 32) ^ (server as u64).rotate_left(17) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let span = inter.as_micros().max(1) as u64;
    Duration::from_micros(x % span)
}
