//! One executor's life: bind this core's listeners, accept until told to
//! stop, drain, report.

use super::parking::ParkingLot;
use super::signals::watch_control;
use crate::net::listener::{
    delay_request_ack, describe_bind_error, sockets_for, Inherited, Listed, ListenerRegistry,
};
use crate::net::{Acceptor, Stream};
use crate::proxy::http::{self, Ending};
use crate::proxy::inspect::{self, Inspected};
use crate::proxy::proxy_header::{self, NoHeader};
use crate::proxy::tcp;
use crate::shard::limit::core_share;
use crate::shard::stop::Event;
use crate::shard::CoreContext;
use crate::shard::Shard;
use crate::stats::CoreStats;
use glommio::sync::{Gate, Semaphore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
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
    /// Start-up result, sent twice: once bound (`Err` carries the one line
    /// explaining why this core could not start, e.g. a port already in
    /// use), once its thread has checked its ids after the word to go.
    pub ready: Sender<Result<(), String>>,
    /// One byte when every core is ready and privileges are dropped: start
    /// accepting. Closed without a byte: start-up failed, stop.
    pub go: OwnedFd,
    pub privileges: Arc<super::privileges::Plan>,
    /// This core's ends of the health channels (one per core, made by
    /// `health::mesh`); `None` runs without health checks.
    pub health: Option<crate::health::CoreLinks>,
    /// The stick tables' mesh (`crate::stick::core`), joined by every core.
    pub stick: crate::stick::StickMesh,
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
        stick,
        observe,
        listeners: registry,
        inherited,
        go,
        privileges,
    } = start;
    let mut ctx = CoreContext::new(Arc::clone(&config), index, count);
    if let Err(line) = super::privileges::prepare_core_thread(&privileges) {
        let _ = ready.send(Err(line));
        return report(index, cpu, &ctx, 0);
    }
    match crate::shard::tls::CoreTls::new(&config) {
        Ok(tls) => ctx.tls = tls,
        Err(line) => {
            let _ = ready.send(Err(line));
            return report(index, cpu, &ctx, 0);
        }
    }
    let shard = Shard::new(Rc::new(ctx));

    let mut listeners = Vec::new();
    for fe in &config.frontends {
        for addr in &fe.binds {
            for socket in sockets_for(*addr, fe.backlog, &inherited) {
                let bound = socket.and_then(|sock| {
                    if fe.mode == Mode::Http {
                        delay_request_ack(&sock)?;
                    }
                    Acceptor::new(sock)
                });
                match bound {
                    Ok(l) => listeners.push((*addr, Listed::new(l, *addr, &registry))),
                    Err(e) => {
                        let _ = ready.send(Err(format!(
                            "frontend \"{}\": cannot bind {addr}: {}",
                            fe.name,
                            describe_bind_error(&e)
                        )));
                        return report(index, cpu, &shard.current(), 0);
                    }
                }
            }
        }
    }
    // Before reporting ready, so that every core is connected and checks
    // are scheduled once percore says it started.
    if let Some(links) = health {
        crate::health::start(&shard, links).await;
    }
    // Updates of keys other cores own wait until the mesh is joined.
    glommio::spawn_local(Rc::clone(&shard.current().stick).join(stick)).detach();
    glommio::spawn_local(Rc::clone(&shard.current().stick).purge_loop()).detach();
    if shard.core_count() > 1 {
        glommio::spawn_local(publish_conns(Rc::clone(&shard))).detach();
    }
    let stats_listener = match super::observe::bind_stats(&shard.current()) {
        Ok(l) => l,
        Err(line) => {
            let _ = ready.send(Err(line));
            return report(index, cpu, &shard.current(), 0);
        }
    };
    let _ = ready.send(Ok(()));
    // Nothing is accepted before every core is ready and the process runs
    // as `user` (runtime/privileges.rs).
    if !wait_for_go(go).await {
        return report(index, cpu, &shard.current(), 0);
    }
    if let Err(line) = super::privileges::finish_core_thread(&privileges) {
        let _ = ready.send(Err(format!("core {index}: {line}")));
        return report(index, cpu, &shard.current(), 0);
    }
    let _ = ready.send(Ok(()));

    {
        let shard = Rc::clone(&shard);
        glommio::spawn_local(async move { watch_control(control, &shard.stop).await }).detach();
    }
    super::observe::start(&shard, observe, stats_listener);
    super::trim::start();

    let gate = Gate::new();
    let lot = ParkingLot::start(gate.clone());
    let accepting = Accepting {
        shard: Rc::clone(&shard),
        gate,
        lot,
        process_slots: Rc::new(Semaphore::new(core_share(
            config.global.maxconn,
            index,
            count,
        ))),
        registry,
        loops: RefCell::new(HashMap::new()),
    };
    let accepting = Rc::new(accepting);
    for (addr, listener) in listeners {
        accepting.start(addr, listener);
    }
    // Listener changes of reloads: start what a new generation added,
    // stop what it removed (after the switch, so nothing is refused).
    let watcher = {
        let accepting = Rc::clone(&accepting);
        glommio::spawn_local(async move {
            loop {
                let ctx = accepting.shard.current();
                futures_lite::future::or(ctx.retired.wait(), accepting.shard.stop.soft.wait())
                    .await;
                if accepting.shard.stop.soft.is_fired() {
                    return;
                }
                for switched in accepting.shard.take_switched() {
                    for addr in switched.closed {
                        accepting.stop(addr);
                    }
                    for (addr, listener) in switched.opened {
                        let listed = Listed::new(listener, addr, &accepting.registry);
                        accepting.start(addr, listed);
                    }
                }
            }
        })
    };
    shard.stop.soft.wait().await;
    if index == 0 {
        crate::notify::stopping();
    }
    watcher.await;
    // Every accept loop has seen the soft stop: wait for them to let go of
    // their listeners.
    let loops: Vec<_> = accepting.loops.borrow_mut().drain().collect();
    for running in loops.into_iter().flat_map(|(_, running)| running) {
        running.task.await;
    }

    // Listeners are closed: idle connections close (those accepted a moment
    // ago get the moment their request needs, in tasks of the gate), then
    // established connections drain until they end, the grace period runs
    // out, or a second signal asks for a hard stop.
    accepting.lot.stop();
    let grace = config.global.hard_stop_after;
    let drained = futures_lite::future::or(
        async {
            let _ = accepting.gate.close().await;
            true
        },
        async {
            futures_lite::future::or(shard.stop.hard.wait(), glommio::timer::sleep(grace)).await;
            false
        },
    )
    .await;
    let ctx = shard.current();
    let cut = if drained {
        0
    } else {
        let mut open: u64 = ctx.stats.borrow().current_sessions();
        for old in shard.retired() {
            open += old.stats.borrow().current_sessions();
        }
        open as usize
    };
    super::observe::finish(&ctx);
    let mut summary = report(index, cpu, &ctx, cut);
    for old in shard.retired() {
        let map = crate::config::diff::IndexMap::between(&old.config, &ctx.config);
        summary.stats.add_mapped(&old.stats.borrow(), &map);
    }
    summary
}

/// One core's accept loops, one per listening address, and what they
/// share: the process-wide connection slots, the gate that drains
/// sessions at stop, and the registry a binary upgrade hands over.
struct Accepting {
    shard: Rc<Shard>,
    gate: Gate,
    /// Connections waiting for a request, held without a task.
    lot: Rc<ParkingLot>,
    process_slots: Rc<Semaphore>,
    registry: Arc<ListenerRegistry>,
    /// Usually one per address; more on the core that took the sockets a
    /// previous process had beyond one per core of this one.
    loops: RefCell<HashMap<SocketAddr, Vec<AcceptLoop>>>,
}

struct AcceptLoop {
    /// Fired to stop this loop alone (its address left the config).
    stop: Rc<Event>,
    task: glommio::task::JoinHandle<()>,
}

impl Accepting {
    fn start(self: &Rc<Self>, addr: SocketAddr, listener: Listed<Acceptor>) {
        let stop = Rc::new(Event::new());
        let task = glommio::spawn_local(accept_loop(
            listener,
            addr,
            Rc::clone(self),
            Rc::clone(&stop),
        ))
        .detach();
        self.loops
            .borrow_mut()
            .entry(addr)
            .or_default()
            .push(AcceptLoop { stop, task });
    }

    fn stop(&self, addr: SocketAddr) {
        for running in self.loops.borrow_mut().remove(&addr).unwrap_or_default() {
            running.stop.fire();
        }
    }
}

/// The main thread's word to go: `true` for a byte, `false` when the
/// channel closed without one.
async fn wait_for_go(go: OwnedFd) -> bool {
    use futures_lite::AsyncReadExt;
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: we own the fd and give it to glommio whole.
    let mut stream = unsafe { glommio::net::UnixStream::from_raw_fd(go.into_raw_fd()) };
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte).await, Ok(1))
}

fn report(index: usize, cpu: usize, ctx: &CoreContext, cut: usize) -> CoreReport {
    CoreReport {
        index,
        cpu,
        stats: ctx.stats.borrow().clone(),
        cut,
    }
}

/// One accepted connection from its TLS handshake to its close, listed in
/// the core's session registry for all that time (the guard removes it
/// however the future ends, a dropped one included). Returns the
/// generation and frontend the connection ended under: an HTTP keep-alive
/// connection moves to the newest generation at a reload.
/// Boxes the future `make` builds, building it outside the connection's
/// task: written inline, `Box::pin(f(..)).await` made the task keep room
/// for the unboxed future too (the task of every connection grew from
/// 2.3 KB to 18 KB when the PROXY header, inspection and HTTP/2 steps were
/// added; 2.8 KB with this).
#[inline(never)]
fn boxed<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::pin(make())
}

pub(crate) async fn serve_connection(
    ctx: Rc<CoreContext>,
    (fe_index, bind_index): (usize, usize),
    mode: Mode,
    stream: crate::net::Conn,
    peer: std::net::SocketAddr,
) -> Ending {
    use std::os::fd::AsRawFd;
    let sessions = Rc::clone(&ctx.sessions);
    let registered = sessions.register(ctx.generation, fe_index, peer, stream.as_raw_fd());
    let session = registered.id();
    let accepted = std::time::Instant::now();
    let (mut stream, mut peer, mut proxied) = (stream, peer, None);
    // Client bytes already taken off the socket, for a mode tcp session
    // to send first (saves a read per connection; HTTP and TLS read
    // their own).
    let mut first = Vec::new();
    // `tcp-request connection` rules, on the socket's addresses, before
    // any byte is read.
    // What the connection tracks in stick tables, for its whole life.
    let tracked = crate::stick::Tracked::new(&ctx.stick);
    // Its variables: `sess` ones set by `tcp-request` rules live on in
    // the session's rules.
    let vars: Rc<crate::rules::vars::Vars> = Rc::default();
    let verdict = if ctx.config.frontends[fe_index]
        .tcp_rules
        .connection
        .is_empty()
    {
        crate::rules::tcp_request::ConnectionVerdict {
            reject: false,
            expect_proxy: false,
        }
    } else {
        boxed(|| inspect::connection(&ctx, fe_index, &stream, peer, (&tracked, &vars))).await
    };
    if verdict.reject {
        return Ending::Closed(ctx, fe_index);
    }
    // The PROXY header comes next, before TLS (HAProxy: accept-proxy is
    // read by the transport layer, bounded by `timeout client`).
    let fe = &ctx.config.frontends[fe_index];
    if verdict.expect_proxy || fe.bind_proxy.get(bind_index).copied().unwrap_or(false) {
        let limit = ctx.config.global.tune.bufsize;
        let keep = mode == Mode::Tcp && ctx.tls.acceptor(fe_index, bind_index).is_none();
        let received =
            boxed(|| proxy_header::receive(&mut stream, limit, fe.timeouts.client, keep)).await;
        match received {
            Ok((header, after)) => {
                first = after;
                (peer, proxied) = proxy_header::apply(header, peer);
                sessions.set_client(session, peer);
            }
            Err(NoHeader::Closed) => return Ending::Closed(ctx, fe_index),
            Err(NoHeader::Refused(e)) => {
                proxy_header::refused(&ctx, (fe_index, bind_index), peer, &e);
                return Ending::Closed(ctx, fe_index);
            }
        }
    }
    // TLS first (HAProxy: the handshake belongs to the client side,
    // bounded by `timeout client`); a failed handshake ends the
    // session before any server is involved.
    // The handshake and the TCP session are boxed so that the task
    // of a plain, idle HTTP connection stays small (HTTP's session
    // boxes itself once the client sends).
    let client = if ctx.tls.acceptor(fe_index, bind_index).is_some() {
        let client_timeout = ctx.config.frontends[fe_index].timeouts.client;
        boxed(|| ctx.tls.accept(fe_index, bind_index, stream, client_timeout)).await
    } else {
        Ok(Stream::Plain(stream))
    };
    // `tcp-request content` rules and, in mode tcp, use_backend.
    let mut routed = None;
    let client = match client {
        Ok(mut client) if inspect::wanted(&ctx.config.frontends[fe_index]) => {
            let taken = std::mem::take(&mut first);
            let inspected = boxed(|| {
                inspect::content(
                    &ctx,
                    fe_index,
                    &mut client,
                    (peer, proxied.as_ref()),
                    accepted,
                    taken,
                    (&tracked, &vars),
                )
            })
            .await;
            match inspected {
                Inspected::Reject => return Ending::Closed(ctx, fe_index),
                Inspected::Accept { backend, taken } => {
                    routed = backend;
                    first = taken;
                }
            }
            Ok(client)
        }
        other => other,
    };
    let ended = match (client, mode) {
        (Ok(client), Mode::Tcp) => {
            let client = (client, peer, proxied);
            let serve = || {
                let at = (routed, first);
                tcp::serve(
                    Rc::clone(&ctx),
                    fe_index,
                    at,
                    client,
                    session,
                    (tracked.clone(), Rc::clone(&vars)),
                )
            };
            boxed(serve).await;
            (ctx, fe_index)
        }
        (Ok(client), Mode::Http)
            if crate::proxy::h2::negotiated(&ctx, (fe_index, bind_index), &client) =>
        {
            let at = (fe_index, bind_index);
            boxed(|| crate::proxy::h2::serve(ctx, at, (client, peer, proxied), session)).await
        }
        (Ok(client), Mode::Http) => {
            // The HTTP session owns the registration from here: a
            // connection parked while idle keeps its entry.
            return http::serve(
                ctx,
                fe_index,
                (client, peer, proxied),
                registered,
                (tracked, vars),
            )
            .await;
        }
        // Scanners, plain HTTP on a TLS port, incompatible or
        // aborting clients end here, before any server.
        (Err(e), _) => {
            crate::proxy::tls::handshake_failed(&ctx, (fe_index, bind_index), peer, &e);
            (ctx, fe_index)
        }
    };
    drop(registered);
    drop(tracked);
    Ending::Closed(ended.0, ended.1)
}

/// Pause after an accept error that will not clear by itself right away
/// (out of descriptors or memory), so the loop neither spins nor exits.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

async fn accept_loop(
    listener: Listed<Acceptor>,
    addr: SocketAddr,
    accepting: Rc<Accepting>,
    stop: Rc<Event>,
) {
    let shard = &accepting.shard;
    // Any reason to stop taking new connections on this address, or to
    // look at the configuration again.
    let interrupted =
        |ctx: &CoreContext| shard.stop.soft.is_fired() || stop.is_fired() || ctx.is_retired();
    loop {
        if shard.stop.soft.is_fired() || stop.is_fired() {
            break;
        }
        let ctx = shard.current();
        let Some((fe_index, bind_index)) = ctx.bind_at(addr) else {
            // Removed by a reload whose listener change is on its way.
            stop.wait().await;
            break;
        };
        let frontend_slots = Rc::clone(&ctx.frontend_limits[fe_index]);
        let mode = ctx.config.frontends[fe_index].mode;
        let wake = || async {
            futures_lite::future::or(
                futures_lite::future::or(shard.stop.soft.wait(), stop.wait()),
                ctx.retired.wait(),
            )
            .await;
        };
        // Take the connection slots before accepting: at the limit we stop
        // accepting and the kernel backlog holds new clients, as in HAProxy.
        let slots = futures_lite::future::or(
            async {
                let p = accepting
                    .process_slots
                    .acquire_static_permit(1)
                    .await
                    .ok()?;
                let f = frontend_slots.acquire().await;
                Some((p, f))
            },
            async {
                wake().await;
                None
            },
        )
        .await;
        let Some(slots) = slots else { continue };
        if interrupted(&ctx) {
            continue;
        }
        // The wake is polled first: a reload is acknowledged once every
        // core applied it, which may be before this loop, woken by the
        // retirement, runs again; a connection that arrived meanwhile must
        // be accepted under the new generation, not the retired one (a
        // loaded machine served such a first request with the old routes).
        let accepted = futures_lite::future::or(
            async {
                wake().await;
                None
            },
            async { Some(listener.accept().await) },
        )
        .await;
        let (stream, peer) = match accepted {
            None => continue,
            Some(Ok(got)) => {
                // The runtime API may have lowered `maxconn` while this
                // loop waited in accept with its place already taken. A
                // stop must not wait for room that may never come (the
                // connection is closed unserved then).
                let room = futures_lite::future::or(
                    async {
                        frontend_slots.within_limit().await;
                        true
                    },
                    async {
                        shard.stop.soft.wait().await;
                        false
                    },
                )
                .await;
                if !room {
                    break;
                }
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
        let lot = Rc::clone(&accepting.lot);
        let session = async move {
            let ending = serve_connection(ctx, (fe_index, bind_index), mode, stream, peer).await;
            lot.conclude(ending, slots);
        };
        match accepting.gate.spawn(session) {
            Ok(task) => task.detach(),
            Err(_) => break, // gate closed: we are stopping
        };
    }
}

/// Every [`crate::stick::core::CONNS_EVERY`], sends this core's connection
/// counts (of its current generation) to the other cores, for `fe_conn`
/// and `be_conn`: each core adds the others' last counts to its own
/// exact one, so that a rule reads only this core's memory.
async fn publish_conns(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(crate::stick::core::CONNS_EVERY).await;
        let ctx = shard.current();
        ctx.stick.publish_conns(&ctx.conn_counts());
    }
}
