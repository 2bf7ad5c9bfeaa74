//! What one core owns, in one place: its current generation of
//! configuration ([`CoreContext`]: config, backends runtime, TLS, idle
//! server connections, counters), the generations a reload retired that
//! still serve their sessions, the state shared by all of them (pipes,
//! log buffer, session registry), stop signalling and the reload being
//! applied.
//!
//! Layers: `proxy` (sessions), `health` (checks) and `admin` (stats, runtime
//! API, reload) are peers above this module; `runtime` starts the cores and
//! owns their listeners. A reload is two calls on every core, both from
//! [`reload`]: `prepare` (TLS built, new addresses bound: everything that can
//! fail) then `commit` (the switch, which cannot).

pub mod carry;
pub mod context;
pub mod error_snapshot;
pub mod h2pool;
pub mod limit;
pub mod offload;
pub mod passive;
pub mod pool;
pub mod reload;
pub mod sessions;
pub mod stop;
pub mod tls;

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

pub use context::{CoreContext, CoreShared};
pub use passive::Observer;

use crate::config::Config;
use stop::Stop;

/// One core's state for the executor's whole life.
pub struct Shard {
    current: RefCell<Rc<CoreContext>>,
    /// Generations replaced by a reload; alive while a session holds one.
    retired: RefCell<Vec<Weak<CoreContext>>>,
    /// A reload prepared on this core, waiting for its commit.
    prepared: RefCell<Option<reload::Prepared>>,
    /// Listener changes of committed reloads, for the runtime.
    switched: RefCell<Vec<reload::Switched>>,
    pub stop: Stop,
}

impl Shard {
    pub fn new(first: Rc<CoreContext>) -> Rc<Shard> {
        CoreContext::make_newest(&first);
        Rc::new(Shard {
            current: RefCell::new(first),
            retired: RefCell::new(Vec::new()),
            prepared: RefCell::new(None),
            switched: RefCell::new(Vec::new()),
            stop: Stop::new(),
        })
    }

    /// The generation new connections and new requests use.
    pub fn current(&self) -> Rc<CoreContext> {
        Rc::clone(&self.current.borrow())
    }

    pub fn core_index(&self) -> usize {
        self.current.borrow().core_index
    }

    pub fn core_count(&self) -> usize {
        self.current.borrow().core_count
    }

    /// Retired generations still serving sessions, oldest first.
    pub fn retired(&self) -> Vec<Rc<CoreContext>> {
        let mut retired = self.retired.borrow_mut();
        retired.retain(|w| w.strong_count() > 0);
        retired.iter().filter_map(Weak::upgrade).collect()
    }

    /// The configuration of every generation still alive on this core, by
    /// generation number (to name what old sessions use).
    pub fn configs(&self) -> Vec<(u64, Arc<Config>)> {
        let mut all: Vec<(u64, Arc<Config>)> = self
            .retired()
            .iter()
            .map(|g| (g.generation, Arc::clone(&g.config)))
            .collect();
        let current = self.current();
        all.push((current.generation, Arc::clone(&current.config)));
        all
    }

    /// Listener changes of the reloads committed since the last call.
    pub fn take_switched(&self) -> Vec<reload::Switched> {
        std::mem::take(&mut *self.switched.borrow_mut())
    }

    fn switch_to(&self, next: Rc<CoreContext>) -> Rc<CoreContext> {
        let old = std::mem::replace(&mut *self.current.borrow_mut(), next);
        self.retired.borrow_mut().push(Rc::downgrade(&old));
        old
    }
}
