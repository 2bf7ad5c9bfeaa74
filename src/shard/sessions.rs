//! The live client sessions of one core, for the runtime API's `show sess`,
//! `shutdown session <id>` and `shutdown sessions server <b>/<s>`.
//!
//! A slab (a `Vec` of entries and a free list threaded through the unused
//! ones) indexed by [`SessionId`]. The accept loop registers a session when
//! it accepts the connection and the returned [`Registered`] guard removes
//! it when the session's future ends or is dropped. Sessions note which
//! server they use: TCP once connected, HTTP per request (set when the
//! request gets its server connection, cleared when it lets go of it).
//!
//! Cost on the data path: one slab insert and one removal per connection,
//! and two plain field writes per HTTP request (server set and cleared) plus
//! one read when the request is logged (was it killed?). No allocation per
//! connection once the slab has grown to the core's high-water mark, none
//! per request, no lock, no atomic: the registry belongs to its core and
//! the runtime API reads it with a synchronous call between two polls.
//!
//! Killing a session shuts down its sockets (`shutdown(2)`, both ways): the
//! client's, which lives as long as the session, and the server
//! connection's while the session holds one (the entry keeps its
//! descriptor only between `set_server` and `clear_server`, never across a
//! point where the connection is dropped or pooled). Every read and write of
//! the session then fails at once, so a tunnel, an exchange, a head being
//! read or an error page being sent end through their usual paths: counters,
//! server slots and the log line are settled as for any other end, and the
//! log's termination state starts with `K` as HAProxy's does. The waits
//! that are not on those sockets race [`Sessions::unless_killed`]: getting
//! a server connection (backend queue, connect, pause between retries) and
//! an `http-request tarpit` hold.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use crate::config::Config;

use super::CoreContext;

/// Bits of a session's unique id below the core index: the id is
/// `core << 48 | n`, where `n` counts this core's sessions from 1.
const CORE_SHIFT: u32 = 48;
const COUNTER_MASK: u64 = (1 << CORE_SHIFT) - 1;

/// The core that owns the session with unique id `uid` (where the runtime
/// API sends `shutdown session <id>`).
pub fn core_of(uid: u64) -> usize {
    (uid >> CORE_SHIFT) as usize
}

/// A session of this core: its slab slot and its unique id (which tells a
/// reused slot from the session that had it before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionId {
    index: u32,
    uid: u64,
}

impl SessionId {
    /// Process-wide unique id, as `show sess` prints it (`0x<uid>`).
    pub fn uid(self) -> u64 {
        self.uid
    }
}

/// One live session, as `show sess` shows it. Plain data, sent across
/// cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub uid: u64,
    /// The configuration generation `frontend`, `backend` and `server`
    /// index (a session accepted before a reload keeps its own).
    pub generation: u64,
    pub frontend: usize,
    /// The client's address (the accepted socket's peer).
    pub client: SocketAddr,
    pub accepted: Instant,
    /// The backend the session (TCP) or its current request (HTTP) goes to.
    pub backend: Option<usize>,
    /// The server the session or its current request is using.
    pub server: Option<usize>,
    /// Shut down by the runtime API, not ended yet.
    pub killed: bool,
}

struct Entry {
    uid: u64,
    generation: u64,
    frontend: usize,
    client: SocketAddr,
    accepted: Instant,
    backend: Option<usize>,
    server: Option<usize>,
    client_fd: RawFd,
    /// The server connection's socket while the session holds one for the
    /// server above.
    server_fd: Option<RawFd>,
    killed: bool,
    /// The session task, while it waits in [`Sessions::unless_killed`].
    waker: Option<Waker>,
}

enum Slot {
    Live(Entry),
    /// Unused; the next unused slot, if any.
    Free(Option<u32>),
}

#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Option<u32>,
    live: usize,
}

impl Slab {
    fn get(&self, id: SessionId) -> Option<&Entry> {
        match self.slots.get(id.index as usize) {
            Some(Slot::Live(e)) if e.uid == id.uid => Some(e),
            _ => None,
        }
    }

    fn get_mut(&mut self, id: SessionId) -> Option<&mut Entry> {
        match self.slots.get_mut(id.index as usize) {
            Some(Slot::Live(e)) if e.uid == id.uid => Some(e),
            _ => None,
        }
    }

    fn insert(&mut self, entry: Entry) -> u32 {
        self.live += 1;
        match self.free {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                if let Slot::Free(next) = slot {
                    self.free = *next;
                }
                *slot = Slot::Live(entry);
                index
            }
            None => {
                self.slots.push(Slot::Live(entry));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, id: SessionId) {
        if self.get(id).is_some() {
            self.slots[id.index as usize] = Slot::Free(self.free);
            self.free = Some(id.index);
            self.live -= 1;
        }
    }

    fn live(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Live(e) => Some(e),
            Slot::Free(_) => None,
        })
    }
}

/// The registry of one core (`CoreContext::sessions`).
pub struct Sessions {
    core: u64,
    /// Sessions registered so far on this core.
    counter: Cell<u64>,
    slab: RefCell<Slab>,
}

impl Sessions {
    pub fn new(core_index: usize) -> Self {
        Sessions {
            core: core_index as u64,
            counter: Cell::new(0),
            slab: RefCell::new(Slab::default()),
        }
    }

    /// Adds a session accepted from `client` on `frontend`; `client_fd` is
    /// its socket, open for as long as the returned guard lives.
    pub fn register(
        self: &Rc<Self>,
        generation: u64,
        frontend: usize,
        client: SocketAddr,
        client_fd: RawFd,
    ) -> Registered {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let uid = self.core << CORE_SHIFT | (n & COUNTER_MASK);
        let index = self.slab.borrow_mut().insert(Entry {
            uid,
            generation,
            frontend,
            client,
            accepted: Instant::now(),
            backend: None,
            server: None,
            client_fd,
            server_fd: None,
            killed: false,
            waker: None,
        });
        Registered {
            sessions: Rc::clone(self),
            id: SessionId { index, uid },
        }
    }

    /// A keep-alive connection's next request runs under a newer
    /// configuration generation, where its frontend is `frontend`.
    pub fn rebind(&self, id: SessionId, generation: u64, frontend: usize) {
        if let Some(e) = self.slab.borrow_mut().get_mut(id) {
            e.generation = generation;
            e.frontend = frontend;
            e.backend = None;
            e.server = None;
        }
    }

    /// The client's address is the one a PROXY header carried.
    pub fn set_client(&self, id: SessionId, client: SocketAddr) {
        if let Some(e) = self.slab.borrow_mut().get_mut(id) {
            e.client = client;
        }
    }

    /// The session is routed to `backend` (TCP: its default backend).
    pub fn set_backend(&self, id: SessionId, backend: usize) {
        if let Some(e) = self.slab.borrow_mut().get_mut(id) {
            e.backend = Some(backend);
        }
    }

    /// The session (or its request) uses `server` of `backend` over the
    /// connection whose socket is `fd`. The caller must call
    /// [`Sessions::clear_server`] before that connection is dropped or
    /// handed to anyone else (the idle pool): a kill shuts `fd` down.
    /// `fd`: the server socket the session alone uses, if any (an HTTP/2
    /// stream's connection carries other sessions' requests: a kill must
    /// not shut it down).
    pub fn set_server(&self, id: SessionId, backend: usize, server: usize, fd: Option<RawFd>) {
        if let Some(e) = self.slab.borrow_mut().get_mut(id) {
            e.backend = Some(backend);
            e.server = Some(server);
            e.server_fd = fd;
        }
    }

    /// The session no longer uses a server connection (the HTTP request is
    /// over; the backend stays, as the last one used).
    pub fn clear_server(&self, id: SessionId) {
        if let Some(e) = self.slab.borrow_mut().get_mut(id) {
            e.server = None;
            e.server_fd = None;
        }
    }

    /// Whether the runtime API shut the session down.
    pub fn is_killed(&self, id: SessionId) -> bool {
        self.slab.borrow().get(id).is_some_and(|e| e.killed)
    }

    /// Runs `fut` unless the session is killed first (then `None`, and
    /// `fut` is dropped). For waits that are not on the session's sockets.
    /// `fut` is polled first: one that is ready at once costs nothing more.
    /// The caller pins it (`pin!`, `Box::pin`): taken by value and pinned
    /// here, it would be kept twice in this future's state (rustc's layout,
    /// rust-lang/rust #62958), and a session's connect path is awaited for
    /// every request.
    pub async fn unless_killed<T>(
        &self,
        id: SessionId,
        mut fut: impl Future<Output = T> + Unpin,
    ) -> Option<T> {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = Pin::new(&mut fut).poll(cx) {
                return Poll::Ready(Some(v));
            }
            let mut slab = self.slab.borrow_mut();
            match slab.get_mut(id) {
                Some(e) if e.killed => Poll::Ready(None),
                Some(e) => {
                    if !e.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        e.waker = Some(cx.waker().clone());
                    }
                    Poll::Pending
                }
                None => Poll::Pending,
            }
        })
        .await
    }

    /// Live sessions of this core, in registration order of their slots.
    pub fn snapshot(&self) -> Vec<SessionInfo> {
        let slab = self.slab.borrow();
        let mut out: Vec<SessionInfo> = slab
            .live()
            .map(|e| SessionInfo {
                uid: e.uid,
                generation: e.generation,
                frontend: e.frontend,
                client: e.client,
                accepted: e.accepted,
                backend: e.backend,
                server: e.server,
                killed: e.killed,
            })
            .collect();
        out.sort_unstable_by_key(|s| s.uid);
        out
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.slab.borrow().live
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shuts down every live session `pick` selects and not killed yet;
    /// returns how many.
    fn kill_where(&self, mut pick: impl FnMut(&Entry) -> bool) -> usize {
        let mut wake = Vec::new();
        let mut killed = 0;
        {
            let mut slab = self.slab.borrow_mut();
            for slot in &mut slab.slots {
                let Slot::Live(e) = slot else { continue };
                if e.killed || !pick(e) {
                    continue;
                }
                e.killed = true;
                killed += 1;
                shut_down(e.client_fd);
                if let Some(fd) = e.server_fd {
                    shut_down(fd);
                }
                wake.extend(e.waker.take());
            }
        }
        // Woken outside the borrow: a waker only schedules its task, but
        // nothing here should depend on that.
        for w in wake {
            w.wake();
        }
        killed
    }
}

/// Both directions of a session's socket, so that every pending and future
/// read sees end of stream and every write fails, whatever the session is
/// doing; the session closes the socket itself when it ends.
fn shut_down(fd: RawFd) {
    // SAFETY: `fd` is the socket of a live session: the client's, open
    // until its session ends (and the registry forgets it when the session
    // ends), or its current server connection's, which the session keeps
    // open between `set_server` and `clear_server`. shutdown(2) touches no
    // memory; an error (the peer already gone: ENOTCONN) needs no action.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// A registered session; dropping it (the session ended or its future was
/// dropped) removes it from the registry. It owns its registry, so that an
/// idle connection parked without a task (`runtime::parking`) keeps its
/// entry.
pub struct Registered {
    sessions: Rc<Sessions>,
    id: SessionId,
}

impl Registered {
    pub fn id(&self) -> SessionId {
        self.id
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.slab.borrow_mut().remove(self.id);
    }
}

/// The live sessions of the core that runs `ctx`, oldest first.
pub fn snapshot_sessions(ctx: &CoreContext) -> Vec<SessionInfo> {
    ctx.sessions.snapshot()
}

/// HAProxy's `shutdown sessions server <b>/<s>`: ends every session of
/// this core that currently uses the server, which is server `server` of
/// backend `backend` in configuration generation `generation`, for each
/// `(generation, backend, server)` of `at`; returns how many.
pub fn shutdown_server_sessions(ctx: &CoreContext, at: &[(u64, usize, usize)]) -> usize {
    ctx.sessions.kill_where(|e| {
        at.iter()
            .any(|&(g, b, s)| e.generation == g && e.backend == Some(b) && e.server == Some(s))
    })
}

/// HAProxy's `shutdown session <id>`: ends the session with unique id
/// `uid` if this core has it (see [`core_of`]); returns whether it did.
pub fn shutdown_session(ctx: &CoreContext, uid: u64) -> bool {
    ctx.sessions.kill_where(|e| e.uid == uid) > 0
}

/// HAProxy's `show sess`, one line per session, sorted by id (so per core,
/// oldest first, as HAProxy lists each thread's streams):
///
/// ```text
/// 0x1000000000002: proto=tcpv4 src=127.0.0.1:35220 fe=fe_tcp be=be_tcp srv=s1 age=1m8s
/// ```
///
/// The fields percore knows, in HAProxy 2.6's order and spelling: the id
/// (`0x` and hex, unique in the process but not a pointer), `proto` (the
/// listener's family: `tcpv4`, `tcpv6`), `src` (an IPv6 address without
/// brackets, as HAProxy prints it), `fe`, `be` (`<NONE>` before a backend is
/// chosen; in HTTP, the backend of the current or last request once it got
/// its server connection), `srv` (`<none>` while no server is in use) and
/// `age` (HAProxy's `human_time`). HAProxy's internal fields are left out: `ts` (task state),
/// `epoch` (CLI dump epoch), `calls`, `rate`, `cpu`, `lat` (scheduler
/// counters), `rq[...]`/`rp[...]` (channel flags and analysers),
/// `scf`/`scb` (stream connector flags and fds), `exp` and `rc`/`c_exp`.
///
/// Unlike HAProxy, whose HTTP/1 streams exist only while a request is in
/// progress, an HTTP client connection is listed while it waits for its
/// next request too (with `srv=<none>`), and from the accept (TLS
/// handshake included).
/// `configs`: the configuration of each generation alive, by number; a
/// session of a generation not listed is named by the last one.
pub fn render_show_sess(
    now: Instant,
    sessions: &[SessionInfo],
    configs: &[(u64, std::sync::Arc<Config>)],
) -> String {
    use std::fmt::Write;
    let mut sorted: Vec<&SessionInfo> = sessions.iter().collect();
    sorted.sort_unstable_by_key(|s| s.uid);
    let mut out = String::with_capacity(sorted.len() * 100);
    for s in sorted {
        let proto = if s.client.is_ipv4() { "tcpv4" } else { "tcpv6" };
        let Some(config) = configs
            .iter()
            .find(|(g, _)| *g == s.generation)
            .or(configs.last())
            .map(|(_, c)| c)
        else {
            continue;
        };
        let fe = config
            .frontends
            .get(s.frontend)
            .map_or("?", |f| f.name.as_str());
        let be = s.backend.and_then(|b| config.backends.get(b));
        let be_name = be.map_or("<NONE>", |b| b.name.as_str());
        let srv = be
            .zip(s.server)
            .and_then(|(b, i)| b.servers.get(i))
            .map_or("<none>", |srv| srv.name.as_str());
        let age = now.saturating_duration_since(s.accepted).as_secs();
        let _ = writeln!(
            out,
            "0x{:x}: proto={proto} src={}:{} fe={fe} be={be_name} srv={srv} age={}",
            s.uid,
            s.client.ip(),
            s.client.port(),
            human_time(age)
        );
    }
    out
}

/// HAProxy's `human_time`: at most two units among `d`, `h`, `m`, `s`, the
/// largest first, zero units skipped, `0s` for zero (`59s`, `1m`, `1m8s`,
/// `1h1m`, `2d3h`, `1d5s`).
pub fn human_time(secs: u64) -> String {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let mut out = String::new();
    let mut left = 2;
    if secs >= DAY {
        out.push_str(&format!("{}d", secs / DAY));
        left -= 1;
    }
    if left > 0 && secs % DAY / HOUR > 0 {
        out.push_str(&format!("{}h", secs % DAY / HOUR));
        left -= 1;
    }
    if left > 0 && secs % HOUR / MINUTE > 0 {
        out.push_str(&format!("{}m", secs % HOUR / MINUTE));
        left -= 1;
    }
    if (left > 0 && !secs.is_multiple_of(MINUTE)) || secs == 0 {
        out.push_str(&format!("{}s", secs % MINUTE));
    }
    out
}

#[cfg(test)]
mod tests;
