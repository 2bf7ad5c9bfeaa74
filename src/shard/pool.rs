//! The per-core pool of idle server connections (HAProxy's idle
//! connection lists, per core here as everything else).
//!
//! A connection enters the pool when the client connection that used it
//! ends while the server side is still reusable; `http-reuse` decides who
//! may take it (see `session.rs`). Pooled connections hold no server slot:
//! HAProxy's `maxconn` counts requests being served, not idle connections.
//! Entries idle longer than `PURGE_DELAY` (HAProxy `pool-purge-delay`,
//! 5 s by default) are closed by a purge task that runs while the pool is
//! not empty; each server keeps at most `MAX_IDLE_PER_SERVER`.
//!
//! As in HAProxy 2.6 (`srv_add_to_idle_list`), a connection is kept only
//! while the server's connections in use plus idle ones stay within what
//! recent traffic needed (`est_need_conns`: the peak of connections in use,
//! decaying by half each purge period), or when the server has no idle
//! connection at all. Under traffic where every client connection opens
//! its own server connection (`Connection: close` with `http-reuse safe`),
//! that closes a finished connection at once instead of parking it for
//! nobody and evicting it later, cold. Idle
//! connections are closed with an RST (SO_LINGER 0), as HAProxy closes
//! server connections it gives up: nothing is in flight on them, and the
//! FIN handshake and TIME_WAIT would cost the proxy's core for nothing.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::net::Stream;

pub const PURGE_DELAY: Duration = Duration::from_secs(5);
pub const MAX_IDLE_PER_SERVER: usize = 256;

struct Idle {
    stream: Stream,
    since: Instant,
}

/// One server's idle connections on this core and the estimate of how
/// many connections it needs.
struct ServerIdle {
    conns: VecDeque<Idle>,
    need: NeedEstimate,
}

/// HAProxy's estimate of the connections a server needs on this core.
#[derive(Debug)]
struct NeedEstimate {
    /// `est_need_conns`: at each purge period, the mean of the previous
    /// estimate and the period's peak, and at least that peak.
    est_need: u32,
    /// Peak of connections in use during the current period
    /// (`max_used_conns`).
    max_used: u32,
    period_start: Instant,
}

impl NeedEstimate {
    fn new(now: Instant) -> Self {
        NeedEstimate {
            est_need: 0,
            max_used: 0,
            period_start: now,
        }
    }

    /// Closes the purge periods that ended before `now` (lazily: nothing
    /// runs while no connection is parked), `in_use` being the current
    /// count that starts each new period's peak.
    fn roll(&mut self, now: Instant, in_use: u32) {
        // After two periods the estimate only repeats `in_use`; more need
        // not be walked.
        for _ in 0..2 {
            if now.duration_since(self.period_start) < PURGE_DELAY {
                return;
            }
            self.est_need = ((self.est_need + self.max_used) / 2).max(self.max_used);
            self.max_used = in_use;
            self.period_start += PURGE_DELAY;
        }
        if now.duration_since(self.period_start) >= PURGE_DELAY {
            self.est_need = in_use;
            self.period_start = now;
        }
    }

    /// Whether one more idle connection is worth keeping when `idle` are
    /// parked and `in_use` other connections to the server are busy
    /// (HAProxy's test, with `pool-low-conn` 0).
    fn wants_one_more(&mut self, now: Instant, in_use: u32, idle: usize) -> bool {
        self.roll(now, in_use);
        // The connection being parked was in use until now.
        let using = in_use + 1;
        self.max_used = self.max_used.max(using);
        if idle >= MAX_IDLE_PER_SERVER {
            return false;
        }
        let need = using.max(self.est_need).max(self.max_used);
        idle == 0 || using as usize + idle <= need as usize
    }
}

/// Idle connections by (backend index, server index).
#[derive(Default)]
pub struct IdlePool {
    conns: RefCell<HashMap<(usize, usize), ServerIdle>>,
    purging: Cell<bool>,
}

impl IdlePool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parks a reusable connection, or closes it if the server has enough
    /// idle ones for its recent traffic; `in_use`: the server's other
    /// connections busy with a request on this core. Must run inside the
    /// core's executor (it may start the purge task).
    pub fn put(self: &Rc<Self>, backend: usize, server: usize, stream: Stream, in_use: u32) {
        {
            let now = Instant::now();
            let mut conns = self.conns.borrow_mut();
            let entry = conns
                .entry((backend, server))
                .or_insert_with(|| ServerIdle {
                    conns: VecDeque::new(),
                    need: NeedEstimate::new(now),
                });
            if !entry.need.wants_one_more(now, in_use, entry.conns.len()) {
                stream.tcp().linger_zero();
                return;
            }
            entry.conns.push_back(Idle { stream, since: now });
        }
        self.start_purge();
    }

    /// Starts the task that closes long-idle connections, unless it runs.
    fn start_purge(self: &Rc<Self>) {
        if self.purging.replace(true) {
            return;
        }
        let pool = Rc::clone(self);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(PURGE_DELAY).await;
                if pool.purge(Instant::now()) == 0 {
                    break;
                }
            }
            pool.purging.set(false);
        })
        .detach();
    }

    /// The most recently parked connection to this server that is still
    /// open (a peek tells; the server may have closed it meanwhile).
    pub fn take(&self, backend: usize, server: usize) -> Option<Stream> {
        let mut conns = self.conns.borrow_mut();
        let list = &mut conns.get_mut(&(backend, server))?.conns;
        while let Some(idle) = list.pop_back() {
            if is_idle_and_open(&idle.stream) {
                return Some(idle.stream);
            }
        }
        None
    }

    /// Closes connections idle since before `now - PURGE_DELAY`; returns
    /// how many remain.
    fn purge(&self, now: Instant) -> usize {
        let mut conns = self.conns.borrow_mut();
        let mut left = 0;
        for entry in conns.values_mut() {
            entry.conns.retain(|i| {
                let keep = now.duration_since(i.since) < PURGE_DELAY;
                if !keep {
                    i.stream.tcp().linger_zero();
                }
                keep
            });
            left += entry.conns.len();
        }
        left
    }

    /// Closes every idle connection to one server (its address changed:
    /// they lead to the old one).
    pub fn drop_server(&self, backend: usize, server: usize) {
        if let Some(entry) = self.conns.borrow_mut().get_mut(&(backend, server)) {
            for idle in entry.conns.drain(..) {
                idle.stream.tcp().linger_zero();
            }
        }
    }

    /// Moves every idle connection into `next` (the pool of the
    /// generation that replaces this one) under the key `key` gives it;
    /// `None` (server removed, or its address changed) closes them.
    pub fn carry_into(
        &self,
        next: &Rc<IdlePool>,
        key: impl Fn(usize, usize) -> Option<(usize, usize)>,
    ) {
        let moved = {
            let mut from = self.conns.borrow_mut();
            let mut into = next.conns.borrow_mut();
            let mut moved = 0;
            for ((backend, server), entry) in from.drain() {
                match key(backend, server) {
                    Some(at) => {
                        moved += entry.conns.len();
                        into.insert(at, entry);
                    }
                    None => {
                        for idle in entry.conns {
                            idle.stream.tcp().linger_zero();
                        }
                    }
                }
            }
            moved
        };
        if moved > 0 {
            next.start_purge();
        }
    }

    pub fn len(&self) -> usize {
        self.conns.borrow().values().map(|e| e.conns.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An idle connection must have nothing to read: end of stream means the
/// server closed it, bytes mean it sent something unsolicited.
fn is_idle_and_open(stream: &Stream) -> bool {
    let mut byte = 0u8;
    // SAFETY: one-byte peek into a local on a socket we own.
    let n = unsafe {
        libc::recv(
            stream.tcp().as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_with_no_idle_connection_keeps_one() {
        let now = Instant::now();
        let mut need = NeedEstimate::new(now);
        assert!(need.wants_one_more(now, 40, 0));
    }

    #[test]
    fn connections_beyond_the_peak_in_use_are_closed() {
        // 32 clients, each on its own server connection (`Connection:
        // close` under `http-reuse safe`): as each finishes, 31 are busy.
        let now = Instant::now();
        let mut need = NeedEstimate::new(now);
        assert!(need.wants_one_more(now, 31, 0));
        assert!(!need.wants_one_more(now, 31, 1));
        // After a burst of 8 at once, up to 8 may idle while fewer run.
        let mut need = NeedEstimate::new(now);
        let kept = (0..8u32)
            .filter(|&i| need.wants_one_more(now, 7 - i, i as usize))
            .count();
        assert_eq!(kept, 8);
    }

    #[test]
    fn the_estimate_decays_by_half_each_purge_period() {
        let start = Instant::now();
        let mut need = NeedEstimate::new(start);
        need.wants_one_more(start, 99, 0); // peak 100 in the first period
        let p1 = start + PURGE_DELAY;
        // The first period ends: the estimate becomes 100; the new
        // period's peak starts from what is busy now (1 + the parked one).
        assert!(need.wants_one_more(p1, 1, 50));
        assert_eq!(need.est_need, 100);
        // One more period with a peak of 2: (100 + 2) / 2 = 51.
        let p2 = start + PURGE_DELAY * 2;
        assert!(need.wants_one_more(p2, 1, 49));
        assert_eq!(need.est_need, 51);
        assert!(!need.wants_one_more(p2, 1, 50));
        // Long quiet: the estimate falls to what is in use.
        let later = start + PURGE_DELAY * 20;
        assert!(!need.wants_one_more(later, 1, 5));
    }

    #[test]
    fn the_cap_per_server_holds() {
        let now = Instant::now();
        let mut need = NeedEstimate::new(now);
        need.est_need = 10_000;
        assert!(need.wants_one_more(now, 0, MAX_IDLE_PER_SERVER - 1));
        assert!(!need.wants_one_more(now, 0, MAX_IDLE_PER_SERVER));
    }
}
