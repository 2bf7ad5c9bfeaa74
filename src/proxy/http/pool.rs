//! The per-core pool of idle server connections (HAProxy's idle
//! connection lists, per core here as everything else).
//!
//! A connection enters the pool when the client connection that used it
//! ends while the server side is still reusable; `http-reuse` decides who
//! may take it (see `session.rs`). Pooled connections hold no server slot:
//! HAProxy's `maxconn` counts requests being served, not idle connections.
//! Entries idle longer than `PURGE_DELAY` (HAProxy `pool-purge-delay`,
//! 5 s by default) are closed by a purge task that runs while the pool is
//! not empty; each server keeps at most `MAX_IDLE_PER_SERVER`. Idle
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

/// Idle connections by (backend index, server index).
#[derive(Default)]
pub struct IdlePool {
    conns: RefCell<HashMap<(usize, usize), VecDeque<Idle>>>,
    purging: Cell<bool>,
}

impl IdlePool {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parks a reusable connection. Must run inside the core's executor
    /// (it may start the purge task).
    pub fn put(self: &Rc<Self>, backend: usize, server: usize, stream: Stream) {
        {
            let mut conns = self.conns.borrow_mut();
            let list = conns.entry((backend, server)).or_default();
            if list.len() >= MAX_IDLE_PER_SERVER {
                // The oldest is the likeliest to be closed by the server.
                // (A full pool is the steady state when every client
                // connection opens its own server connection, as the first
                // request of each does under `http-reuse safe`: evicting
                // must not shift the whole list.)
                if let Some(oldest) = list.pop_front() {
                    oldest.stream.tcp().linger_zero();
                }
            }
            list.push_back(Idle {
                stream,
                since: Instant::now(),
            });
        }
        if !self.purging.replace(true) {
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
    }

    /// The most recently parked connection to this server that is still
    /// open (a peek tells; the server may have closed it meanwhile).
    pub fn take(&self, backend: usize, server: usize) -> Option<Stream> {
        let mut conns = self.conns.borrow_mut();
        let list = conns.get_mut(&(backend, server))?;
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
        for list in conns.values_mut() {
            list.retain(|i| {
                let keep = now.duration_since(i.since) < PURGE_DELAY;
                if !keep {
                    i.stream.tcp().linger_zero();
                }
                keep
            });
            left += list.len();
        }
        conns.retain(|_, l| !l.is_empty());
        left
    }

    pub fn len(&self) -> usize {
        self.conns.borrow().values().map(VecDeque::len).sum()
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
