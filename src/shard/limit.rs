//! A frontend's connection limit on one core (its share of `maxconn`),
//! which the runtime API can change while connections are open (`set
//! maxconn frontend`). The accept loops of the frontend's binds take a
//! [`ConnPermit`] before accepting, so at the limit new clients wait in the
//! kernel's backlog as in HAProxy; dropping the permit lets one in.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Per-core share of a process-wide limit: cores share nothing, so each
/// gets floor(limit / cores) plus one of the remainder, and at least 1.
pub fn core_share(limit: u32, index: usize, count: usize) -> u64 {
    let count = count.max(1) as u64;
    let limit = u64::from(limit);
    let share = limit / count + u64::from((index as u64) < limit % count);
    share.max(1)
}

/// `None`: no limit.
pub struct ConnLimit {
    /// The process-wide value this core's share comes from (stats).
    process: Cell<Option<u32>>,
    limit: Cell<Option<u64>>,
    used: Cell<u64>,
    /// Accept loops waiting for room (one per bind at most).
    waiting: RefCell<Vec<Waker>>,
}

impl ConnLimit {
    /// `process`: the frontend's `maxconn`; this core takes its share.
    pub fn new(process: Option<u32>, core_index: usize, core_count: usize) -> Rc<ConnLimit> {
        let limit = ConnLimit {
            process: Cell::new(None),
            limit: Cell::new(None),
            used: Cell::new(0),
            waiting: RefCell::new(Vec::new()),
        };
        limit.set_process_limit(process, core_index, core_count);
        Rc::new(limit)
    }

    pub fn process_limit(&self) -> Option<u32> {
        self.process.get()
    }

    /// A new process-wide limit: this core takes its share (0 holds every
    /// new connection back, which HAProxy allows at run time).
    pub fn set_process_limit(&self, process: Option<u32>, core_index: usize, core_count: usize) {
        self.process.set(process);
        self.set_limit(process.map(|m| match m {
            0 => 0,
            m => core_share(m, core_index, core_count),
        }));
    }

    #[cfg(test)]
    fn with_share(limit: Option<u64>) -> Rc<ConnLimit> {
        Rc::new(ConnLimit {
            process: Cell::new(None),
            limit: Cell::new(limit),
            used: Cell::new(0),
            waiting: RefCell::new(Vec::new()),
        })
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit.get()
    }

    /// A new limit applies to the next accepts; connections above it are
    /// not cut, they just keep new ones waiting until they end.
    fn set_limit(&self, limit: Option<u64>) {
        self.limit.set(limit);
        self.wake();
    }

    fn has_room(&self) -> bool {
        self.limit.get().is_none_or(|l| self.used.get() < l)
    }

    /// Waits until the frontend is below its limit and takes one place.
    pub async fn acquire(self: &Rc<Self>) -> ConnPermit {
        poll_fn(|cx| {
            if self.has_room() {
                return Poll::Ready(());
            }
            let mut waiting = self.waiting.borrow_mut();
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        self.used.set(self.used.get() + 1);
        ConnPermit(Rc::clone(self))
    }

    /// Waits until the frontend is within its limit again: a connection
    /// accepted while the limit was lowered under it waits here, unserved,
    /// until others end or the limit is raised.
    pub async fn within_limit(&self) {
        poll_fn(|cx| {
            if self.limit.get().is_none_or(|l| self.used.get() <= l) {
                return Poll::Ready(());
            }
            self.waiting.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn wake(&self) {
        for waker in self.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

/// One place under a frontend's limit, given back when dropped.
pub struct ConnPermit(Rc<ConnLimit>);

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let limit = &self.0;
        limit.used.set(limit.used.get().saturating_sub(1));
        // Usually nobody waits and this costs a borrow.
        limit.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn shares_add_up_to_the_limit() {
        for limit in [1u32, 2, 3, 7, 100, 50_000] {
            for count in 1..=5 {
                let total: u64 = (0..count).map(|i| core_share(limit, i, count)).sum();
                assert!(total >= u64::from(limit), "{limit}/{count}");
                assert!(
                    total <= u64::from(limit).max(count as u64),
                    "{limit}/{count}"
                );
            }
        }
    }

    #[test]
    fn waits_at_the_limit_and_follows_a_new_one() {
        let limit = ConnLimit::with_share(Some(1));
        let first = future::block_on(limit.acquire());
        let mut second = Box::pin(limit.acquire());
        assert!(future::block_on(future::poll_once(&mut second)).is_none());
        limit.set_limit(Some(2));
        assert!(future::block_on(future::poll_once(&mut second)).is_some());
        drop(first);
        limit.set_limit(Some(0));
        let mut third = Box::pin(limit.acquire());
        assert!(future::block_on(future::poll_once(&mut third)).is_none());
        limit.set_limit(None);
        assert!(future::block_on(future::poll_once(&mut third)).is_some());
    }
}
