//! Each core's own copy of the maps the runtime API changed.
//!
//! A core is one thread (one glommio executor), so its copies live in a
//! thread-local: the request path reads them with a `RefCell` borrow (no
//! lock, no atomic), and the runtime API's change is applied by every
//! core to its own copy between two polls of its tasks, before the
//! command is answered. Until a core's first change its maps are the ones
//! the configuration loaded (shared, read-only); a change copies the map
//! on that core (copy-on-write). Copies are keyed by the loaded map they
//! replace, so a reload (new maps) leaves them behind; they are dropped
//! when their configuration is.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::MapData;

struct Copy {
    of: Weak<MapData>,
    data: MapData,
}

thread_local! {
    static COPIES: RefCell<Vec<Copy>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with this core's version of `map`.
pub fn with_current<R>(map: &Arc<MapData>, f: impl FnOnce(&MapData) -> R) -> R {
    COPIES.with(|copies| {
        let copies = copies.borrow();
        match copies
            .iter()
            .find(|c| std::ptr::eq(c.of.as_ptr(), Arc::as_ptr(map)))
        {
            Some(c) => f(&c.data),
            None => f(map),
        }
    })
}

/// Changes this core's version of `map` (copying it first if needed).
pub fn change<R>(map: &Arc<MapData>, f: impl FnOnce(&mut MapData) -> R) -> R {
    COPIES.with(|copies| {
        let mut copies = copies.borrow_mut();
        // Copies of maps whose configuration is gone.
        copies.retain(|c| c.of.strong_count() > 0);
        let at = match copies
            .iter()
            .position(|c| std::ptr::eq(c.of.as_ptr(), Arc::as_ptr(map)))
        {
            Some(at) => at,
            None => {
                copies.push(Copy {
                    of: Arc::downgrade(map),
                    data: (**map).clone(),
                });
                copies.len() - 1
            }
        };
        f(&mut copies[at].data)
    })
}
