//! Socket readiness from one edge-triggered epoll instance per core, instead
//! of one io_uring poll per wait.
//!
//! glommio 0.9 arms an io_uring POLL_ADD after every short read and for
//! every wait; each completion is queued as task work and, because glommio
//! cannot set IORING_SETUP_COOP_TASKRUN, announced to the running executor
//! with an inter-processor interrupt. Measured on keep-alive HTTP that was
//! about 2 polls and 1.5 IPIs per request, the largest cost after the
//! recv/send syscalls themselves (docs/benchmarks.md).
//!
//! Here a socket is added to the core's epoll once (`EPOLLET`), on its
//! first wait for accepted sockets (`reserve`): one that never waits never
//! joins. Reads and writes are plain non-blocking syscalls, and a task that
//! hits EAGAIN leaves its waker in the socket's entry. A driver task,
//! started on first use in each executor, collects events with
//! `epoll_wait(0)` and wakes those tasks, collecting again after they ran
//! while events keep coming; when a collect finds none right after one
//! that found some, it lingers in `epoll_pwait2` until glommio's loop is
//! due a turn (`TURN_DUE`, see `drive`), and gives glommio that turn
//! without sleeping (`glommio_turn`); another core that sends this one a
//! message a request waits for cuts the linger short (`Nudge`). Only
//! when a linger finds nothing does the driver wait for the epoll fd
//! itself through a single glommio poll. So io_uring costs one poll per idle
//! period, however many sockets the events concern, and an event that
//! arrives while no task waits costs only the kernel's epoll callback.
//!
//! Everything here is per thread (no locks, no atomics): an entry is only
//! ever touched by the executor that registered it. The one exception is
//! the `Nudge`, which other cores poke.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Waker;

use futures_lite::io::AsyncReadExt;

/// Events collected per `epoll_wait`.
const BATCH: usize = 256;

/// How often glommio's own loop gets a turn while the core has socket
/// events: glommio processes its timers, cross-core channels and io_uring
/// completions only when its run queue empties (or its 100 ms preemption
/// timer fires), and a driver that keeps finding events, or lingers in its
/// epoll set, never lets the queue empty. So glommio's timers (timeouts,
/// health-check intervals, periodic tasks) and the messages of other cores
/// that nothing waits on (statistics, health, runtime API commands) are at
/// most this late while the core is busy; a message a request waits for
/// (a stick-table update sent to the key's owner, its answer) pokes the
/// receiver's `Nudge` and gets its turn at once. An idle core's driver
/// sleeps through glommio once this has passed without an event.
///
/// Each turn costs glommio's loop re-arming its preemption timers (about 3
/// `io_uring_enter`), and a linger that runs out on a core that is merely
/// quiet (a WebSocket message every few hundred µs) costs a sleep through
/// glommio (about 9 system calls): at 1 ms a WebSocket message cost
/// 1.1–1.35× HAProxy's CPU, at 4 ms 0.95–1.03× (docs/benchmarks.md, "A
/// lone event, round 7"). 4 ms is also well within the millisecond-scale
/// timeouts an operator configures.
const TURN_DUE: std::time::Duration = std::time::Duration::from_millis(4);

/// The epoll data of a core's `Nudge` eventfd: no entry has this token
/// (entries are indexed from 0 and never reach `u32::MAX`).
const NUDGE_DATA: u64 = u64::MAX;

/// Lets another core ask this core's glommio loop for a turn now, rather
/// than when `TURN_DUE` says: a core that sends this one a message a
/// request is waiting for (a stick-table update to the key's owner, the
/// owner's answer) pokes it after the send. glommio wakes the receiving
/// task only in its own loop, and notifies a core's executor only while
/// glommio itself sleeps, not while the driver lingers in its epoll set.
///
/// A poke sets `wanted`, which the driver takes before every linger and
/// after every batch of events; if the driver is lingering (blocked in
/// `epoll_pwait2`), the poke also writes the eventfd, which is in the
/// driver's epoll set, so the linger ends. Both sides store their flag
/// before loading the other's (sequentially consistent), so either the
/// driver sees `wanted` before it blocks or the poker sees `lingering`
/// and writes: no poke is lost.
#[derive(Debug)]
pub struct Nudge {
    eventfd: OwnedFd,
    /// Another core asked for a turn since the driver last took one.
    wanted: AtomicBool,
    /// The driver is blocked (or about to block) in its linger.
    lingering: AtomicBool,
}

impl Nudge {
    fn new() -> io::Result<Nudge> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Nudge {
            // SAFETY: `fd` was just created and is owned by nobody else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            wanted: AtomicBool::new(false),
            lingering: AtomicBool::new(false),
        })
    }

    /// Asks for a turn of the owning core's glommio loop (called from
    /// another core, after sending it a message).
    pub fn poke(&self) {
        self.wanted.store(true, Ordering::SeqCst);
        if self.lingering.load(Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to an eventfd this
            // struct owns. A failure (EAGAIN: the counter is full, so a
            // wake-up is pending anyway) needs no handling.
            unsafe {
                libc::write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                );
            }
        }
    }

    /// Whether a turn was asked for since the last call (which takes it).
    fn take(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) && self.wanted.swap(false, Ordering::SeqCst)
    }

    /// Resets the eventfd's counter after it woke a linger.
    fn drain(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a valid u64 from an eventfd this
        // struct owns; non-blocking, and a failure (nothing to read)
        // leaves nothing to reset.
        unsafe {
            libc::read(
                self.eventfd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }
}

/// The `Nudge` of every core of a channel mesh, by the core's place in
/// the mesh: each core publishes its own once it joined, and pokes a
/// peer's after sending it a message. A peer that has not published yet
/// is not poked; its glommio loop still gets its turn within `TURN_DUE`.
#[derive(Debug)]
pub struct NudgeBoard {
    places: Box<[OnceLock<Arc<Nudge>>]>,
}

impl NudgeBoard {
    pub fn new(cores: usize) -> NudgeBoard {
        NudgeBoard {
            places: (0..cores).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Publishes the calling core's nudge at its place in the mesh.
    pub fn publish(&self, place: usize, nudge: Arc<Nudge>) {
        if let Some(slot) = self.places.get(place) {
            let _ = slot.set(nudge);
        }
    }

    /// Pokes the core at `place`, if it published its nudge.
    pub fn poke(&self, place: usize) {
        if let Some(nudge) = self.places.get(place).and_then(OnceLock::get) {
            nudge.poke();
        }
    }
}

/// A socket's entry: index in the core's table and its generation (entries
/// are reused; a stale event for an old generation is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    fn to_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    fn from_data(data: u64) -> Self {
        Token {
            index: data as u32,
            generation: (data >> 32) as u32,
        }
    }
}

#[derive(Default)]
struct Entry {
    generation: u32,
    live: bool,
    read: Option<Waker>,
    write: Option<Waker>,
    /// Counts read-side events (data, end of stream, error): a reader that
    /// found the socket drained at count N need not try again before it
    /// moves (an edge is reported for every arrival after the drain).
    read_events: u32,
    /// End of stream, hang-up or error was reported. Such an edge comes once
    /// and may arrive together with data, so after it a short read no
    /// longer proves the socket drained: the FIN or error is still to be
    /// read, and no further edge will announce it.
    read_closed: bool,
    /// Counts write-side events (room to write, connect done, error).
    write_events: u32,
    /// The socket, for adding EPOLLOUT to its interest on first need.
    fd: RawFd,
    /// EPOLLOUT is in the socket's interest set.
    write_interest: bool,
    /// The socket is in the epoll set. A socket reserved lazily joins it
    /// on its first wait; until then no event is reported for it.
    armed: bool,
}

/// The per-core epoll instance and the table of registered sockets.
pub struct Readiness {
    epfd: OwnedFd,
    entries: RefCell<Vec<Entry>>,
    free: RefCell<Vec<u32>>,
    driver_started: Cell<bool>,
    /// Events collected so far (how busy the core's sockets are).
    collected: Cell<u64>,
    /// `epoll_pwait2` is missing (a kernel before 5.11): no linger.
    no_linger: Cell<bool>,
    /// A task gave way (`collect_now`) and is queued again: the driver
    /// must not block in its epoll set while it waits to run.
    gave_way: Cell<bool>,
    /// Other cores' requests for a turn of this core's glommio loop.
    nudge: Arc<Nudge>,
}

thread_local! {
    static CORE: RefCell<Option<Rc<Readiness>>> = const { RefCell::new(None) };
}

impl Readiness {
    /// This thread's instance, created on first use; its driver task is
    /// spawned into the current glommio executor.
    pub fn current() -> io::Result<Rc<Readiness>> {
        CORE.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(r) = &*c {
                return Ok(Rc::clone(r));
            }
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just created and is owned by nobody else.
            let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
            let nudge = Nudge::new()?;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: NUDGE_DATA,
            };
            // SAFETY: valid epoll fd and event struct; the eventfd is open
            // for as long as the epoll instance (both live in `Readiness`).
            let rc = unsafe {
                libc::epoll_ctl(
                    epfd.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    nudge.eventfd.as_raw_fd(),
                    &mut ev,
                )
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            let r = Rc::new(Readiness {
                epfd,
                entries: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                driver_started: Cell::new(false),
                collected: Cell::new(0),
                no_linger: Cell::new(false),
                gave_way: Cell::new(false),
                nudge: Arc::new(nudge),
            });
            *c = Some(Rc::clone(&r));
            Ok(r)
        })
    }

    /// Adds `fd` to the epoll set (or re-targets it if it is still there
    /// from an earlier registration) and returns its token.
    ///
    /// `write_interest`: watch for room to write from the start (a connect
    /// in progress). Otherwise EPOLLOUT is added the first time a write
    /// waits (`wait_write`): a new socket is writable at once, and on a
    /// connection whose writes never fill the socket buffer (small
    /// request/response traffic) that event, and every later one, would
    /// only be queued, collected and dropped (HAProxy also polls for
    /// writing only on demand).
    pub fn register(self: &Rc<Self>, fd: RawFd, write_interest: bool) -> io::Result<Token> {
        let token = self.reserve(fd);
        let armed = {
            let mut entries = self.entries.borrow_mut();
            let e = &mut entries[token.index as usize];
            self.arm(e, token, write_interest)
        };
        if let Err(err) = armed {
            self.release(token);
            return Err(err);
        }
        Ok(token)
    }

    /// Takes an entry for `fd` without adding it to the epoll set: that
    /// happens on the socket's first wait (`wait_read`, `wait_write`). A
    /// connection whose reads and writes never have to wait (a request
    /// already there when it is accepted, a response that fits the socket
    /// buffer) then costs no epoll_ctl, no epoll entry to tear down at
    /// close and no event for every segment that arrives (HAProxy's
    /// speculative I/O does the same).
    pub fn reserve(self: &Rc<Self>, fd: RawFd) -> Token {
        self.start_driver();
        let mut entries = self.entries.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                entries.push(Entry::default());
                (entries.len() - 1) as u32
            }
        };
        let e = &mut entries[index as usize];
        e.live = true;
        e.read = None;
        e.write = None;
        e.read_events = 0;
        e.read_closed = false;
        e.write_events = 0;
        e.fd = fd;
        e.write_interest = false;
        e.armed = false;
        Token {
            index,
            generation: e.generation,
        }
    }

    /// Adds the entry's socket to the epoll set, or sets its interest to
    /// `write_interest` if it is there already. Adding re-polls the socket:
    /// whatever is ready at that moment is reported as a first edge, so
    /// nothing that happened before the socket joined is lost.
    fn arm(&self, e: &mut Entry, token: Token, write_interest: bool) -> io::Result<()> {
        let mut ev = interest(token, write_interest);
        let epfd = self.epfd.as_raw_fd();
        let op = if e.armed {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        // SAFETY: valid epoll fd and event struct; the fd is open while its
        // entry is live.
        let mut rc = unsafe { libc::epoll_ctl(epfd, op, e.fd, &mut ev) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST) {
            // The socket was registered before and handed over without
            // leaving the set (see `release`).
            // SAFETY: as above.
            rc = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, e.fd, &mut ev) };
        }
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        e.armed = true;
        e.write_interest = write_interest;
        Ok(())
    }

    /// Frees the entry. The fd is not removed from the epoll set: closing
    /// it does that, and until then its events carry a stale generation.
    pub fn release(&self, token: Token) {
        let mut entries = self.entries.borrow_mut();
        if let Some(e) = entries.get_mut(token.index as usize) {
            if e.generation == token.generation && e.live {
                e.live = false;
                e.generation = e.generation.wrapping_add(1);
                // Wakers are dropped outside of any borrow of a task.
                let (r, w) = (e.read.take(), e.write.take());
                self.free.borrow_mut().push(token.index);
                drop(entries);
                drop((r, w));
            }
        }
    }

    /// Frees the entry and takes its socket out of the epoll set first.
    /// For a socket whose file may stay open after this descriptor closes:
    /// a listener handed over to the next process (binary upgrade) lives
    /// on there, and the epoll set holds the open file, not the
    /// descriptor, so without this every connection it queues would still
    /// wake this core while it drains.
    pub fn forget(&self, token: Token) {
        if let Some(e) = self.entries.borrow().get(token.index as usize) {
            if e.generation == token.generation && e.live && e.armed {
                // SAFETY: valid epoll fd; the socket's fd is open while its
                // entry is live. A failure leaves the set as it was, which
                // `release` already copes with.
                unsafe {
                    libc::epoll_ctl(
                        self.epfd.as_raw_fd(),
                        libc::EPOLL_CTL_DEL,
                        e.fd,
                        std::ptr::null_mut(),
                    );
                }
            }
        }
        self.release(token);
    }

    /// This core's `Nudge`, for the other cores that send it messages.
    pub fn nudge(&self) -> Arc<Nudge> {
        Arc::clone(&self.nudge)
    }

    /// Socket events collected on this core so far.
    pub fn collected(&self) -> u64 {
        self.collected.get()
    }

    /// Whether end of stream, hang-up or an error was reported for `token`
    /// (see `Entry::read_closed`).
    pub fn read_closed(&self, token: Token) -> bool {
        self.entries
            .borrow()
            .get(token.index as usize)
            .is_some_and(|e| e.read_closed)
    }

    /// The read-event count of `token` (see `Entry::read_events`).
    pub fn read_events(&self, token: Token) -> u32 {
        self.entries
            .borrow()
            .get(token.index as usize)
            .map_or(0, |e| e.read_events)
    }

    /// The write-event count of `token` (see `Entry::write_events`).
    pub fn write_events(&self, token: Token) -> u32 {
        self.entries
            .borrow()
            .get(token.index as usize)
            .map_or(0, |e| e.write_events)
    }

    /// Wakes `waker` on the next read-side event of `token`. Fails only if
    /// a lazily reserved socket cannot join the epoll set.
    pub fn wait_read(&self, token: Token, waker: &Waker) -> io::Result<()> {
        let mut entries = self.entries.borrow_mut();
        if let Some(e) = entries.get_mut(token.index as usize) {
            if e.live && e.generation == token.generation && !e.armed {
                self.arm(e, token, false)?;
            }
            match &e.read {
                Some(w) if w.will_wake(waker) => {}
                _ => e.read = Some(waker.clone()),
            }
        }
        Ok(())
    }

    /// Wakes `waker` on the next write-side event of `token`.
    pub fn wait_write(&self, token: Token, waker: &Waker) {
        let mut entries = self.entries.borrow_mut();
        if let Some(e) = entries.get_mut(token.index as usize) {
            if e.live && e.generation == token.generation && !e.write_interest {
                // Joins the set or re-polls the socket: if room freed up
                // since the write that would block, the event is queued
                // now, not lost.
                if self.arm(e, token, true).is_err() {
                    // Cannot wait for room: wake the writer at once, so it
                    // retries (and meets the socket's error, if any).
                    waker.wake_by_ref();
                    return;
                }
            }
            match &e.write {
                Some(w) if w.will_wake(waker) => {}
                _ => e.write = Some(waker.clone()),
            }
        }
    }

    fn start_driver(self: &Rc<Self>) {
        if self.driver_started.replace(true) {
            return;
        }
        let me = Rc::clone(self);
        glommio::spawn_local(async move { me.drive().await }).detach();
    }

    /// Collects the events that came so far and wakes their tasks, now,
    /// from a task that has been busy a while: glommio runs queued tasks
    /// until the queue is empty or its preemption timer fires (100 ms)
    /// before it polls io_uring, where the driver's wait for the epoll fd
    /// completes; a transfer that never meets EAGAIN would keep every
    /// other connection of the core waiting that long. With this and a
    /// yield, the connections whose sockets became ready run first. The
    /// caller yields next: its task is queued, so the driver does not
    /// linger (block) until it ran.
    pub fn collect_now(&self) {
        self.gave_way.set(true);
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        self.collect(&mut events, None);
    }

    /// Collects events and wakes their tasks, for the executor's lifetime.
    async fn drive(&self) {
        let mut events: Vec<libc::epoll_event> =
            vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
        // The last collect found events: the core is busy and its next
        // event is likely near.
        let mut busy = false;
        // When glommio's loop last had its turn.
        let mut last_turn = std::time::Instant::now();
        loop {
            if self.collect(&mut events, None) > 0 {
                busy = true;
                // Collect again once the woken tasks ran: under load, more
                // events arrive meanwhile (a server's answer to the request
                // just sent), and a non-blocking epoll_wait costs one
                // system call where sleeping through glommio costs about
                // 9. Only a collect that finds nothing waits, so this
                // never spins on an idle core.
                futures_lite::future::yield_now().await;
                last_turn = self.turn_if_due(last_turn).await;
                continue;
            }
            if std::mem::take(&mut busy) && !self.no_linger.get() {
                // The tasks woken behind the driver (those the last woken
                // ones woke: an HTTP/2 stream waking its connection's
                // task) run before it may block.
                futures_lite::future::yield_now().await;
                last_turn = self.turn_if_due(last_turn).await;
                if self.gave_way.replace(false) {
                    // A large transfer's task gave way and is queued
                    // again: collect again once it ran rather than block
                    // (glommio still had its turn when due, above: such a
                    // transfer may raise no event for a while).
                    busy = true;
                    continue;
                }
                // Wait for the next event in this epoll set, blocking the
                // thread (not on the CPU), until glommio's loop is due a
                // turn, rather than sleep through glommio: a turn of its
                // reactor that sleeps re-arms its preemption timers in
                // each ring, enters the kernel for each and issues a
                // membarrier — about 9 system calls, docs/benchmarks.md.
                let linger = TURN_DUE.saturating_sub(last_turn.elapsed());
                self.nudge.lingering.store(true, Ordering::SeqCst);
                if self.nudge.take() {
                    // Another core poked after the turn just above.
                    self.nudge.lingering.store(false, Ordering::Relaxed);
                    glommio_turn().await;
                    last_turn = std::time::Instant::now();
                    busy = true;
                    continue;
                }
                let found = self.collect(&mut events, Some(linger));
                self.nudge.lingering.store(false, Ordering::Relaxed);
                if found > 0 {
                    busy = true;
                    futures_lite::future::yield_now().await;
                    continue;
                }
            }
            // Nothing came within the linger (or, the first time, right
            // away): the core is idle; sleep through glommio until the
            // epoll fd has events.
            wait_readable(self.epfd.as_raw_fd()).await;
            last_turn = std::time::Instant::now();
        }
    }

    /// [`glommio_turn`] if another core asked for one (`Nudge`) or
    /// `TURN_DUE` has passed since `last_turn`; returns when glommio last
    /// had its turn.
    async fn turn_if_due(&self, last_turn: std::time::Instant) -> std::time::Instant {
        if !self.nudge.take() && last_turn.elapsed() < TURN_DUE {
            return last_turn;
        }
        glommio_turn().await;
        std::time::Instant::now()
    }

    /// Collects the events there are, or (`linger`) the first that comes
    /// within that time, blocking the thread.
    fn collect(
        &self,
        events: &mut [libc::epoll_event],
        linger: Option<std::time::Duration>,
    ) -> usize {
        let n = match linger {
            // SAFETY: `events` is a valid, writable array of its length.
            None => unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    0,
                )
            },
            Some(linger) => {
                let timeout = libc::timespec {
                    tv_sec: linger.as_secs().try_into().unwrap_or(libc::time_t::MAX),
                    tv_nsec: linger.subsec_nanos().into(),
                };
                // SAFETY: `events` is a valid, writable array of its
                // length, `timeout` a valid timespec; no signal mask (its
                // size is then not read). A raw syscall: the C library's
                // wrapper is newer than some systems percore runs on.
                let rc = unsafe {
                    libc::syscall(
                        libc::SYS_epoll_pwait2,
                        self.epfd.as_raw_fd(),
                        events.as_mut_ptr(),
                        events.len() as libc::c_int,
                        &timeout as *const libc::timespec,
                        std::ptr::null::<libc::sigset_t>(),
                        0usize,
                    )
                };
                if rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                    self.no_linger.set(true);
                }
                rc as libc::c_int
            }
        };
        if n <= 0 {
            return 0;
        }
        let n = n as usize;
        self.collected.set(self.collected.get() + n as u64);
        let mut wake: Vec<Waker> = Vec::new();
        {
            let mut entries = self.entries.borrow_mut();
            for ev in &events[..n] {
                if ev.u64 == NUDGE_DATA {
                    // The driver takes the turn it asks for (`Nudge::take`).
                    self.nudge.drain();
                    continue;
                }
                let token = Token::from_data(ev.u64);
                let Some(e) = entries.get_mut(token.index as usize) else {
                    continue;
                };
                if !e.live || e.generation != token.generation {
                    continue;
                }
                let bits = ev.events as libc::c_int;
                let failed = bits & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
                if failed || bits & libc::EPOLLRDHUP != 0 {
                    e.read_closed = true;
                }
                if failed || bits & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0 {
                    e.read_events = e.read_events.wrapping_add(1);
                    wake.extend(e.read.take());
                }
                if failed || bits & libc::EPOLLOUT != 0 {
                    e.write_events = e.write_events.wrapping_add(1);
                    wake.extend(e.write.take());
                }
            }
        }
        for w in wake {
            w.wake();
        }
        n
    }
}

/// The epoll registration of a socket: always the read side, end of stream
/// and errors; room to write only with `write`.
fn interest(token: Token, write: bool) -> libc::epoll_event {
    let mut events =
        libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLET;
    if write {
        events |= libc::EPOLLOUT;
    }
    libc::epoll_event {
        events: events as u32,
        u64: token.to_data(),
    }
}

/// Lets glommio's loop have a turn without sleeping: a timer due a
/// moment from now parks the driver, glommio runs the other queued tasks,
/// polls its rings and runs its due timers and cross-core channels (about
/// 3 `io_uring_enter`, no membarrier), then wakes the driver from that
/// timer. While the core has events the driver never lets glommio's run
/// queue empty otherwise, and glommio's own preemption timer fires only
/// every 100 ms.
///
/// glommio runs its due timers before its cross-core channels, so the
/// driver is queued ahead of the tasks the turn woke (the receiver of
/// another core's answer, and the request that answer wakes in its turn).
/// Two yields let both run before the driver may block in a linger:
/// without them a stick-table request that crossed cores waited for the
/// next linger to run out (up to `TURN_DUE`).
async fn glommio_turn() {
    glommio::timer::sleep(std::time::Duration::from_micros(1)).await;
    futures_lite::future::yield_now().await;
    futures_lite::future::yield_now().await;
}

/// Waits until `fd` (the epoll fd) is readable, through one glommio poll.
/// glommio 0.9 offers no public "wait for readable" on an arbitrary fd; its
/// stream type arms exactly that poll when created, so a stream over a
/// duplicate of the fd is created for each wait, and a read on it waits for
/// that poll. The read is polled once, to leave the driver's waker with the
/// poll; the wake-up is the answer (reading again would only be a recv
/// failing with ENOTSOCK). Nothing else holds the driver's waker, and a
/// spurious wake costs one empty `epoll_wait`.
async fn wait_readable(fd: RawFd) {
    // SAFETY: duplicating an fd we own; the result is checked.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        // Out of descriptors: try again soon rather than spin.
        glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        return;
    }
    // SAFETY: `dup` is a fresh descriptor that the stream now owns.
    let mut waiter = unsafe { glommio::net::TcpStream::from_raw_fd(dup) };
    let mut byte = [0u8; 1];
    let mut read = std::pin::pin!(waiter.read(&mut byte));
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if registered {
            return std::task::Poll::Ready(());
        }
        registered = true;
        std::future::Future::poll(read.as_mut(), cx).map(|_| ())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the nudge's eventfd has a wake-up pending (without taking it).
    fn eventfd_readable(nudge: &Nudge) -> bool {
        let mut fds = libc::pollfd {
            fd: nudge.eventfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut fds, 1, 0) };
        n == 1 && fds.revents & libc::POLLIN != 0
    }

    #[test]
    fn a_poke_is_taken_once() {
        let nudge = Nudge::new().unwrap();
        assert!(!nudge.take());
        nudge.poke();
        assert!(nudge.take());
        assert!(!nudge.take(), "a poke asks for one turn");
    }

    #[test]
    fn a_poke_wakes_a_linger_only_while_there_is_one() {
        let nudge = Nudge::new().unwrap();
        // The driver is running or asleep in glommio: the flag is enough
        // (glommio notifies its own sleep), no system call.
        nudge.poke();
        assert!(!eventfd_readable(&nudge));
        assert!(nudge.take());
        // The driver lingers in its epoll set: only the eventfd ends that.
        nudge.lingering.store(true, Ordering::SeqCst);
        nudge.poke();
        assert!(eventfd_readable(&nudge));
        nudge.drain();
        assert!(!eventfd_readable(&nudge));
        assert!(
            nudge.take(),
            "the turn is still asked for after the wake-up"
        );
    }

    #[test]
    fn the_board_pokes_only_published_places() {
        let board = NudgeBoard::new(2);
        let nudge = Arc::new(Nudge::new().unwrap());
        board.poke(1);
        board.poke(7);
        board.publish(1, Arc::clone(&nudge));
        assert!(!nudge.take());
        board.poke(0);
        assert!(!nudge.take());
        board.poke(1);
        assert!(nudge.take());
    }
}
