//! Client connections that wait for a request, held without a task.
//!
//! An edge node spends its life with mostly idle keep-alive clients, and
//! HAProxy keeps no stream for an idle connection: only the connection
//! itself. Here a connection whose first request has not come when it is
//! accepted, or that has waited `IDLE_GRACE` for its next one
//! (`proxy::http::session`), leaves its task and is parked in this core's
//! table as an `http::Idle`: its socket, addresses, session registry
//! entry, deadline, about 230 bytes (a PROXY header's facts, a private
//! server connection and `sess` variables, when it has them, are boxed
//! beside). The task, its timer and its buffers are gone.
//!
//! A parked connection is woken by its socket or its deadline:
//! - the socket's entry in the core's epoll (`net::readiness`) is given a
//!   waker that names the connection's place in the table (index and
//!   generation packed in the waker's data word: no allocation, nothing to
//!   free). The readiness driver wakes it like any task's waker; the lot
//!   notes the place and wakes its own task.
//! - deadlines sit in an ordered set, served by one glommio timer for the
//!   earliest.
//!
//! Either way the lot's task takes the connection out and spawns a task
//! that resumes it (`http::resume`): it reads, answers (a passed first
//! deadline is a 408, as in the session), or finds nothing and is parked
//! again. At a soft stop, once the listeners are closed, every parked
//! connection is closed, as HAProxy closes idle connections when it stops,
//! except one accepted less than `IDLE_GRACE` ago that has not sent its
//! first request yet: it gets the rest of that moment, as it would have had
//! inside a task, so that a client whose request was on its way is served
//! (`http::finish_fresh`; a binary upgrade loses no connection).
//!
//! Everything here belongs to one core: no lock, no atomic.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::{Rc, Weak};
use std::task::{Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Instant;

use glommio::sync::{Gate, StaticPermit};

use crate::proxy::http::{self, Ending, Idle};
use crate::shard::limit::ConnPermit;
use crate::shard::CoreContext;

/// What an accepted connection holds until it ends: its place under the
/// process-wide and its frontend's `maxconn`.
pub(crate) type Slots = (StaticPermit, ConnPermit);

/// A connection parked with the connection slots it holds.
pub(crate) struct Parked {
    idle: Idle,
    slots: Slots,
}

/// How a connection taken out of the table is served.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Its socket or its deadline woke it (`http::resume`).
    Woken,
    /// At a stop, accepted a moment ago: it gets the rest of its first
    /// moment for a request on its way (`http::finish_fresh`).
    Fresh,
}

/// A place in the table: its index and the generation that tells the
/// connection there now from one that was there before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    fn to_word(self) -> usize {
        // usize is 64 bits on every target percore builds for (Linux,
        // x86_64 and aarch64), so both halves fit.
        ((self.generation as usize) << 32) | self.index as usize
    }

    fn from_word(word: usize) -> Key {
        Key {
            index: word as u32,
            generation: (word >> 32) as u32,
        }
    }
}

#[derive(Default)]
struct Place {
    generation: u32,
    parked: Option<Parked>,
}

/// This core's parked connections.
pub(crate) struct ParkingLot {
    table: RefCell<Vec<Place>>,
    free: RefCell<Vec<u32>>,
    /// (deadline, index) of every parked connection that has a deadline.
    deadlines: RefCell<BTreeSet<(Instant, u32)>>,
    /// Places whose socket reported a read-side event.
    woken: RefCell<Vec<Key>>,
    /// The lot's task, while it waits.
    task: RefCell<Option<Waker>>,
    /// The deadline the task's timer is set for (`None`: no timer).
    timer_at: Cell<Option<Instant>>,
    /// A connection with an earlier deadline than `timer_at` was parked.
    rearm: Cell<bool>,
    /// Resumed connections run as tasks of this gate (drained at stop).
    gate: Gate,
    stopping: Cell<bool>,
}

thread_local! {
    /// This thread's lot, for the wakers of its places.
    static LOT: RefCell<Weak<ParkingLot>> = const { RefCell::new(Weak::new()) };
}

impl ParkingLot {
    /// Makes this core's lot and starts its task, which runs until
    /// [`ParkingLot::stop`].
    pub(crate) fn start(gate: Gate) -> Rc<ParkingLot> {
        let lot = Rc::new(ParkingLot {
            table: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            deadlines: RefCell::new(BTreeSet::new()),
            woken: RefCell::new(Vec::new()),
            task: RefCell::new(None),
            timer_at: Cell::new(None),
            rearm: Cell::new(false),
            gate,
            stopping: Cell::new(false),
        });
        LOT.with(|l| *l.borrow_mut() = Rc::downgrade(&lot));
        let running = Rc::clone(&lot);
        glommio::spawn_local(async move { running.run().await }).detach();
        lot
    }

    /// The core is stopping and its listeners are closed: closes every
    /// parked connection, but serves those accepted a moment ago whose
    /// first request may be on its way in tasks of the gate (which the stop
    /// drains; so this must come before the gate closes). From now on a
    /// connection that would be parked is closed.
    pub(crate) fn stop(self: &Rc<Self>) {
        if self.stopping.replace(true) {
            return;
        }
        let parked: Vec<Parked> = self
            .table
            .borrow_mut()
            .iter_mut()
            .filter_map(|p| p.parked.take())
            .collect();
        self.deadlines.borrow_mut().clear();
        let now = Instant::now();
        for p in parked {
            if p.idle.is_fresh(now) {
                self.serve(p, Resume::Fresh);
            } else {
                close(p);
            }
        }
        self.wake_task();
    }

    /// Parks `parked`, or closes it if its socket cannot be waited on or
    /// the core is stopping.
    fn park(&self, parked: Parked) {
        if self.stopping.get() {
            close(parked);
            return;
        }
        let deadline = parked.idle.deadline;
        let key = {
            let mut table = self.table.borrow_mut();
            let index = match self.free.borrow_mut().pop() {
                Some(i) => i,
                None => {
                    table.push(Place::default());
                    (table.len() - 1) as u32
                }
            };
            let place = &mut table[index as usize];
            place.parked = Some(parked);
            Key {
                index,
                generation: place.generation,
            }
        };
        if let Some(d) = deadline {
            self.deadlines.borrow_mut().insert((d, key.index));
            if self.timer_at.get().is_none_or(|at| d < at) {
                self.rearm.set(true);
                self.wake_task();
            }
        }
        let waiting = {
            let table = self.table.borrow();
            let Some(parked) = &table[key.index as usize].parked else {
                return;
            };
            parked.idle.socket().wake_on_read(&place_waker(key))
        };
        match waiting {
            Ok(false) => {}
            // Something may have come already: resume it at once.
            Ok(true) => self.woken_at(key),
            // The socket cannot join the epoll set: nothing would ever
            // wake it.
            Err(_) => {
                if let Some(parked) = self.take(key) {
                    close(parked);
                }
            }
        }
    }

    /// A place's socket reported a read-side event.
    fn woken_at(&self, key: Key) {
        self.woken.borrow_mut().push(key);
        self.wake_task();
    }

    fn wake_task(&self) {
        if let Some(w) = self.task.borrow_mut().take() {
            w.wake();
        }
    }

    /// Takes the connection at `key` out of the table, if it is still
    /// there.
    fn take(&self, key: Key) -> Option<Parked> {
        let parked = {
            let mut table = self.table.borrow_mut();
            let place = table.get_mut(key.index as usize)?;
            if place.generation != key.generation {
                return None;
            }
            let parked = place.parked.take()?;
            place.generation = place.generation.wrapping_add(1);
            parked
        };
        self.free.borrow_mut().push(key.index);
        if let Some(d) = parked.idle.deadline {
            self.deadlines.borrow_mut().remove(&(d, key.index));
        }
        Some(parked)
    }

    /// Serves a connection taken out of the table in a task of its own.
    fn resume(self: &Rc<Self>, parked: Parked) {
        if self.stopping.get() {
            close(parked);
            return;
        }
        self.serve(parked, Resume::Woken);
    }

    /// Spawns the task that serves `parked` in the gate (closes it if the
    /// gate is closed); the task ends by handing it back here.
    fn serve(self: &Rc<Self>, parked: Parked, how: Resume) {
        if !self.gate.is_open() {
            close(parked);
            return;
        }
        let lot = Rc::clone(self);
        let Parked { idle, slots } = parked;
        let task = self.gate.spawn(async move {
            let ending = match how {
                Resume::Woken => http::resume(idle).await,
                Resume::Fresh => http::finish_fresh(idle).await,
            };
            lot.conclude(ending, slots);
        });
        if let Ok(task) = task {
            task.detach();
        }
    }

    /// Where a connection's task ends: closed, or parked here.
    pub(crate) fn conclude(&self, ending: Ending, slots: Slots) {
        match ending {
            Ending::Closed(ctx, frontend) => closed(&ctx, frontend),
            Ending::Idle(idle) => self.park(Parked { idle, slots }),
        }
    }

    async fn run(self: Rc<Self>) {
        while !self.stopping.get() {
            let woken = std::mem::take(&mut *self.woken.borrow_mut());
            for key in woken {
                if let Some(parked) = self.take(key) {
                    self.resume(parked);
                }
            }
            let now = Instant::now();
            loop {
                let first = self.deadlines.borrow().first().copied();
                let Some((deadline, index)) = first.filter(|(d, _)| *d <= now) else {
                    break;
                };
                let generation = self.table.borrow()[index as usize].generation;
                match self.take(Key { index, generation }) {
                    Some(parked) => self.resume(parked),
                    // Not expected (a taken connection leaves the set), but
                    // a stale deadline must not stop the others.
                    None => {
                        self.deadlines.borrow_mut().remove(&(deadline, index));
                    }
                }
            }
            let next = self.deadlines.borrow().first().map(|(d, _)| *d);
            self.timer_at.set(next);
            self.rearm.set(false);
            let work = std::future::poll_fn(|cx| {
                if !self.woken.borrow().is_empty() || self.rearm.get() || self.stopping.get() {
                    return Poll::Ready(());
                }
                *self.task.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            });
            let timer = async {
                match next {
                    Some(at) => {
                        glommio::timer::sleep(at.saturating_duration_since(Instant::now())).await
                    }
                    None => std::future::pending().await,
                }
            };
            futures_lite::future::or(work, timer).await;
        }
        self.task.borrow_mut().take();
    }
}

/// Closes a parked connection quietly.
fn close(parked: Parked) {
    let Parked { idle, slots } = parked;
    let (ctx, frontend) = idle.close();
    closed(&ctx, frontend);
    drop(slots);
}

/// A connection ended: it no longer counts as open on its frontend.
fn closed(ctx: &CoreContext, frontend: usize) {
    ctx.stats.borrow_mut().frontends[frontend].sessions_cur -= 1;
}

/// The waker given to a parked connection's socket: it carries the
/// connection's key and tells this thread's lot.
fn place_waker(key: Key) -> Waker {
    // SAFETY: the vtable's functions uphold RawWaker's contract: the data
    // word is a plain integer (never dereferenced, nothing to free), so
    // cloning copies it and dropping does nothing. Waking on a thread
    // other than the lot's finds no lot or a key of another table, whose
    // generation check makes it a spurious wake at worst; in practice the
    // waker lives in the core's readiness table and is woken there.
    unsafe { Waker::from_raw(RawWaker::new(key.to_word() as *const (), &PLACE_WAKER)) }
}

static PLACE_WAKER: RawWakerVTable =
    RawWakerVTable::new(place_clone, place_wake, place_wake, place_drop);

fn place_clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &PLACE_WAKER)
}

fn place_wake(data: *const ()) {
    let key = Key::from_word(data as usize);
    // `try_with`: a wake during thread teardown finds nothing to tell.
    let _ = LOT.try_with(|l| {
        if let Some(lot) = l.borrow().upgrade() {
            lot.woken_at(key);
        }
    });
}

fn place_drop(_: *const ()) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_the_waker_word() {
        let key = Key {
            index: 123_456,
            generation: u32::MAX - 1,
        };
        assert_eq!(Key::from_word(key.to_word()), key);
    }

    #[test]
    fn a_place_waker_is_plain_data() {
        let key = Key {
            index: 7,
            generation: 9,
        };
        let a = place_waker(key);
        let b = a.clone();
        assert!(a.will_wake(&b));
        assert!(!a.will_wake(&place_waker(Key {
            index: 7,
            generation: 10
        })));
        // No lot on this thread: a wake is a no-op, not a crash.
        b.wake();
        drop(a);
    }

    #[test]
    fn a_parked_connection_stays_small() {
        // What an idle client costs besides its registry and epoll
        // entries (docs/benchmarks.md, round 5): keep it that way.
        let size = std::mem::size_of::<Place>();
        assert!(size <= 320, "a place in the table is {size} bytes");
    }
}
