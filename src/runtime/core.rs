//! One executor's life: bind this core's listeners, accept until told to
//! stop, drain, report.

use super::listener::{delay_request_ack, sockets_for, Inherited, Listed, ListenerRegistry};
use super::stop::{watch_control, Stop};
use crate::net::{Acceptor, Stream};
use crate::proxy::limit::{core_share, ConnLimit};
use crate::proxy::{http, tcp, CoreContext};
use crate::stats::CoreStats;
use glommio::sync::{Gate, Semaphore};
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Mode};

/// Everything a core needs to start, handed over from the main thread.
pub struct CoreStart {
    pub index: usize,
    pub cpu: usize,
    pub count: usize,
    pub config: Arc<Config>,
    pub control: OwnedFd,
    /// Start-up result: `Err` carries the one line explaining why this core
    /// could not start (e.g. a port already in use).
    pub ready: Sender<Result<(), String>>,
    /// This core's ends of the health channels (one per core, made by
    /// `health::mesh`); `None` runs without health checks.
    pub health: Option<crate::health::CoreLinks>,
    /// Stats mesh, log writer, start time.
    pub observe: crate::admin::ObserveStart,
    /// This core's share of the listening sockets taken over from the
    /// previous process (binary upgrade), used before binding new ones.
    pub inherited: Inherited,
    /// Every core lists its listening sockets here (`_getsocks`).
    pub listeners: Arc<ListenerRegistry>,
}

/// What a core reports when it has stopped.
#[derive(Debug)]
pub struct CoreReport {
    pub index: usize,
    pub cpu: usize,
    pub stats: CoreStats,
    /// Connections still open when the grace period ran out.
    pub cut: usize,
}

pub async fn run_core(start: CoreStart) -> CoreReport {
    let CoreStart {
        index,
        cpu,
        count,
        config,
        control,
        ready,
        health,
        observe,
        inherited,
        listeners: registry,
    } = start;
    let mut ctx = CoreContext::new(Arc::clone(&config), index, count);
    match crate::proxy::tls::CoreTls::new(&config) {
        Ok(tls) => ctx.tls = tls,
        Err(line) => {
            let _ = ready.send(Err(line));
            return report(index, cpu, &ctx, 0);
        }
    }
    let ctx = Rc::new(ctx);

    let mut listeners = Vec::new();
    for (fe_index, fe) in config.frontends.iter().enumerate() {
        for (bind_index, addr) in fe.binds.iter().enumerate() {
            for socket in sockets_for(*addr, fe.backlog, &inherited) {
                let bound = socket.and_then(|sock| {
                    if fe.mode == Mode::Http {
                        delay_request_ack(&sock)?;
                    }
                    Acceptor::new(sock)
                });
                match bound {
                    Ok(l) => {
                        listeners.push((fe_index, bind_index, Listed::new(l, *addr, &registry)))
                    }
                    Err(e) => {
                        let _ = ready.send(Err(format!(
                            "frontend \"{}\": cannot bind {addr}: {}",
                            fe.name,
                            describe_bind_error(&e)
                        )));
                        return report(index, cpu, &ctx, 0);
                    }
                }
            }
        }
    }
    // Before reporting ready, so that every core is connected and checks
    // are scheduled once percore says it started.
    if let Some(links) = health {
        crate::health::start(&ctx, links).await;
    }
    let stats_listener = match super::observe::bind_stats(&ctx) {
        Ok(l) => l,
        Err(line) => {
            let _ = ready.send(Err(line));
            return report(index, cpu, &ctx, 0);
        }
    };
    let _ = ready.send(Ok(()));

    let stop = Rc::new(Stop::new());
    {
        let stop = Rc::clone(&stop);
        glommio::spawn_local(async move { watch_control(control, &stop).await }).detach();
    }
    super::observe::start(&ctx, observe, stats_listener, &stop);

    let gate = Gate::new();
    let process_slots = Rc::new(Semaphore::new(core_share(
        config.global.maxconn,
        index,
        count,
    )));
    let mut accept_loops = Vec::new();
    for (fe_index, bind_index, listener) in listeners {
        let frontend_slots = Rc::clone(&ctx.frontend_limits[fe_index]);
        let task = glommio::spawn_local(accept_loop(
            listener,
            (fe_index, bind_index),
            Rc::clone(&ctx),
            gate.clone(),
            Rc::clone(&stop),
            Rc::clone(&process_slots),
            frontend_slots,
        ));
        accept_loops.push(task);
    }
    for task in accept_loops {
        task.await;
    }

    // Listeners are closed: drain established connections until they end,
    // the grace period runs out, or a second signal asks for a hard stop.
    let grace = config.global.hard_stop_after;
    let drained = futures_lite::future::or(
        async {
            let _ = gate.close().await;
            true
        },
        async {
            futures_lite::future::or(stop.hard.wait(), glommio::timer::sleep(grace)).await;
            false
        },
    )
    .await;
    let cut = if drained {
        0
    } else {
        ctx.stats
            .borrow()
            .frontends
            .iter()
            .map(|f| f.sessions_cur as usize)
            .sum()
    };
    super::observe::finish(&ctx);
    report(index, cpu, &ctx, cut)
}

fn report(index: usize, cpu: usize, ctx: &CoreContext, cut: usize) -> CoreReport {
    CoreReport {
        index,
        cpu,
        stats: ctx.stats.borrow().clone(),
        cut,
    }
}

pub(crate) fn describe_bind_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EADDRINUSE) => "address already in use (another process listens there)".into(),
        Some(libc::EACCES) => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".into()
        }
        Some(libc::EADDRNOTAVAIL) => "address not available on this machine".into(),
        _ => e.to_string(),
    }
}

/// One accepted connection from its TLS handshake to its close, listed in
/// the core's session registry for all that time (the guard removes it
/// however the future ends, a dropped one included).
pub(crate) async fn serve_connection(
    ctx: &Rc<CoreContext>,
    (fe_index, bind_index): (usize, usize),
    mode: Mode,
    stream: crate::net::Conn,
    peer: std::net::SocketAddr,
) {
    use std::os::fd::AsRawFd;
    let registered = ctx.sessions.register(fe_index, peer, stream.as_raw_fd());
    let session = registered.id();
    // TLS first (HAProxy: the handshake belongs to the client side,
    // bounded by `timeout client`); a failed handshake ends the
    // session before any server is involved.
    // The handshake and the TCP session are boxed so that the task
    // of a plain, idle HTTP connection stays small (HTTP's session
    // boxes itself once the client sends).
    let client = if ctx.tls.acceptor(fe_index, bind_index).is_some() {
        let client_timeout = ctx.config.frontends[fe_index].timeouts.client;
        Box::pin(ctx.tls.accept(fe_index, bind_index, stream, client_timeout)).await
    } else {
        Ok(Stream::Plain(stream))
    };
    match (client, mode) {
        (Ok(client), Mode::Tcp) => {
            Box::pin(tcp::serve(Rc::clone(ctx), fe_index, client, peer, session)).await
        }
        (Ok(client), Mode::Http) => {
            http::serve(Rc::clone(ctx), fe_index, client, peer, session).await
        }
        // Scanners, plain HTTP on a TLS port, incompatible or
        // aborting clients end here, before any server.
        (Err(e), _) => crate::proxy::tls::handshake_failed(ctx, (fe_index, bind_index), peer, &e),
    }
    drop(registered);
}

/// Pause after an accept error that will not clear by itself right away
/// (out of descriptors or memory), so the loop neither spins nor exits.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

async fn accept_loop(
    listener: Listed<Acceptor>,
    (fe_index, bind_index): (usize, usize),
    ctx: Rc<CoreContext>,
    gate: Gate,
    stop: Rc<Stop>,
    process_slots: Rc<Semaphore>,
    frontend_slots: Rc<ConnLimit>,
) {
    let mode = ctx.config.frontends[fe_index].mode;
    loop {
        // Take the connection slots before accepting: at the limit we stop
        // accepting and the kernel backlog holds new clients, as in HAProxy.
        let slots = futures_lite::future::or(
            async {
                let p = process_slots.acquire_static_permit(1).await.ok()?;
                let f = frontend_slots.acquire().await;
                Some((p, f))
            },
            async {
                stop.soft.wait().await;
                None
            },
        )
        .await;
        let Some(slots) = slots else { return };
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stop.soft.wait().await;
            None
        })
        .await;
        let (stream, peer) = match accepted {
            None => return,
            Some(Ok(got)) => {
                // The runtime API may have lowered `maxconn` while this
                // loop waited in accept with its place already taken.
                frontend_slots.within_limit().await;
                got
            }
            Some(Err(e)) => {
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) {
                    eprintln!(
                        "[WARNING] frontend \"{}\": accept failed: {e}; pausing accepts",
                        ctx.config.frontends[fe_index].name
                    );
                    glommio::timer::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        {
            let mut stats = ctx.stats.borrow_mut();
            let fc = &mut stats.frontends[fe_index];
            fc.sessions_total += 1;
            fc.sessions_cur += 1;
            fc.sessions_max = fc.sessions_max.max(fc.sessions_cur);
        }
        let ctx = Rc::clone(&ctx);
        let session = async move {
            serve_connection(&ctx, (fe_index, bind_index), mode, stream, peer).await;
            ctx.stats.borrow_mut().frontends[fe_index].sessions_cur -= 1;
            drop(slots);
        };
        match gate.spawn(session) {
            Ok(task) => task.detach(),
            Err(_) => return, // gate closed: we are stopping
        };
    }
}
