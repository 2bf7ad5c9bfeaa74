//! Health checks, HAProxy style.
//!
//! - Active checks: every backend is checked by exactly one core
//!   ([`owner_core`]), which runs one loop per server with `check = true`
//!   ([`checker`]): a TCP connect, a `tcp-check` script or an HTTP request
//!   ([`probe`]), counted with `rise`/`fall` ([`state`]) and paced by
//!   `inter`/`fastinter`/`downinter`.
//! - A state change is applied on the checking core, sent to every other
//!   core over glommio shared channels ([`links`], [`router`]) and logged
//!   once all cores have applied it ([`log`]); each core applies it with
//!   `BackendRuntime::set_server_up`, so `acquire` stops handing out a down
//!   server, backups take over when no primary is left, and with no server
//!   at all `acquire` fails with `NoServer`.
//! - Passive checks (`observe`): sessions report connection failures (and,
//!   in HTTP mode, 5xx answers) through the core's [`Observer`]; reaching
//!   `error-limit` sends one report to the checking core, which applies
//!   `on-error`.
//!
//! Nothing here is shared between cores except the channels.

pub mod checker;
pub mod links;
pub mod log;
pub mod outcome;
pub mod probe;
pub mod router;
pub mod state;

use std::rc::Rc;

pub use links::{mesh, CoreLinks};

use crate::shard::{CoreContext, Shard};

pub use crate::shard::passive::owner_core;

/// Connects this core's health channels, starts applying what other cores
/// send, and starts the checks of the backends this core owns, again after
/// every reload. Returns once the channels are up (every core must call
/// it, or the others wait until its ends are dropped).
pub async fn start(shard: &Rc<Shard>, links: CoreLinks) {
    let connected = links.connect().await;
    let router = router::Router::start(shard, connected);
    start_generation(&shard.current(), &router);
    let shard = Rc::clone(shard);
    glommio::spawn_local(async move {
        loop {
            let ctx = shard.current();
            ctx.retired.wait().await;
            // The old generation's checkers end with their inboxes; the
            // new one's start from the state the reload carried over.
            router.new_generation(shard.current().generation);
            start_generation(&shard.current(), &router);
        }
    })
    .detach();
}

fn start_generation(ctx: &Rc<CoreContext>, router: &Rc<router::Router>) {
    ctx.health.attach(Rc::new(Rc::clone(router)));
    let count = router.core_count();
    for (b, backend) in ctx.config.backends.iter().enumerate() {
        if owner_core(b, count) != router.core_index() {
            continue;
        }
        for (s, server) in backend.servers.iter().enumerate() {
            // A server in maintenance is not checked (HAProxy neither), but
            // its checker waits: the runtime API may take it out.
            if server.check.is_none() {
                continue;
            }
            let inbox = router.inbox(b, s);
            glommio::spawn_local(checker::check_server(
                Rc::clone(ctx),
                Rc::clone(router),
                b,
                s,
                inbox,
            ))
            .detach();
        }
    }
}
